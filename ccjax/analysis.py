"""Mechanism analyses of one model against its mixing matrix (paper-spec.md §6.5, §6.8).

Each function takes one model (and its label map) and returns arrays; ``vmap`` over
stacked params for a sweep.
"""

import jax.numpy as jnp

from ._types import Array, Float


def effective_rank(matrix: Float[Array, "rows cols"]) -> Float[Array, ""]:
    """``exp(entropy of the normalised singular values)`` (paper experiment 8).

    n for any multiple of an orthogonal n×n matrix, r for r equal non-zero singular
    values, 1 for a rank-one matrix; 0/0 (the zero matrix) gives nan.
    """
    singular = jnp.linalg.svd(matrix.astype(jnp.float32), compute_uv=False)
    weights = singular / jnp.sum(singular)
    entropy = -jnp.sum(jnp.where(weights > 0, weights * jnp.log(jnp.where(weights > 0, weights, 1.0)), 0.0))
    return jnp.exp(entropy)
