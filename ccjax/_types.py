"""Named shape aliases shared by every module.

Dimension names are the same everywhere: ``model``, ``batch``, ``n_features``,
``d_mlp``, ``d_embed`` and ``capacity`` (the fixed number of slots of a sparse batch).
Functions are annotated for one model; ``vmap`` adds the leading ``model`` axis.
"""

import numpy as np
from jaxtyping import Array, Bool, Float, Int, Integer, Key, PRNGKeyArray

# A device array or a host (NumPy) one: sweep results and loaded files hold host arrays.
AnyArray = Array | np.ndarray

__all__ = ["AnyArray", "Array", "Bool", "Float", "Int", "Integer", "Key", "PRNGKeyArray"]
