"""Matmuls at an explicit precision.

The effects ccjax measures are about 1% of the loss, so TPU/GPU default matmul
precision (bfloat16 passes / TF32) is not acceptable. Every matmul in the library goes
through :func:`matmul`, which asks XLA for full float32 (``Precision.HIGHEST``) on every
platform instead of relying on the platform default.
"""

import jax.numpy as jnp
from jax import lax

MATMUL_PRECISION = lax.Precision.HIGHEST
MATMUL_PRECISION_NAME = "highest"


def matmul(a, b):
    """``a @ b`` at float32 precision on every platform.

    Args:
        a (Array): The left operand, (..., m, k) (any shapes ``jnp.matmul`` accepts).
        b (Array): The right operand, (..., k, n).

    Returns:
        (Array): ``jnp.matmul(a, b)``, (..., m, n), computed at ``Precision.HIGHEST`` (no bfloat16 or TF32 passes).
    """
    return jnp.matmul(a, b, precision=MATMUL_PRECISION)
