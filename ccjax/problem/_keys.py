"""Keys made from integer seeds, with the PRNG implementation pinned.

``jax.random.key(seed)`` follows the ``jax_default_prng_impl`` setting, which a user may
have changed (TPU users often pick ``"rbg"``). rbg's random bits under ``vmap`` depend on
how many keys are batched together, so a sweep's results would depend on its group size
and models per call. Every key ccjax makes from a seed is a threefry key instead: the
same bits for the same seed under any setting, with or without ``vmap``.
"""

import jax

from .._types import Integer, PRNGKeyArray

KEY_IMPL = "threefry2x32"


def seed_key(seed: int | Integer[jax.Array, ""]) -> PRNGKeyArray:
    """The threefry key of ``seed`` (traceable), whatever ``jax_default_prng_impl`` says.

    Args:
        seed: The integer seed: a Python int or an integer scalar array (may be traced).

    Returns:
        A typed ``threefry2x32`` key: the same random bits for the same seed under any PRNG setting.
    """
    return jax.random.key(seed, impl=KEY_IMPL)
