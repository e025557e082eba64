"""Named shape aliases shared by every module.

Dimension names are the same everywhere: ``model``, ``batch``, ``n_features``,
``d_mlp``, ``d_embed`` and ``capacity`` (the fixed number of slots of a sparse batch).
Functions are annotated for one model; ``vmap`` adds the leading ``model`` axis.
"""

from jaxtyping import Array, Bool, Float, Int, Integer, Key, PRNGKeyArray

__all__ = ["Array", "Bool", "Float", "Int", "Integer", "Key", "PRNGKeyArray"]
