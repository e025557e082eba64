"""Argument checks at the public boundary: a clear ``ValueError`` that names the argument,
says what it got and what is allowed. Traced values (inside ``jit``/``vmap``) cannot be
inspected and pass unchecked; static sizes always can."""

import jax
import numpy as np


def is_concrete(value) -> bool:
    """Whether ``value`` is known now (not a tracer inside ``jit``/``vmap``)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


def check_size(name: str, value, minimum: int = 1) -> None:
    """``value`` must be a Python/NumPy integer >= ``minimum`` (a static shape)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_probability(name: str, value) -> None:
    """A feature probability in (0, 1], checked where it is concrete."""
    if not is_concrete(value):
        return
    values = np.asarray(value, np.float64)
    if not np.all(np.isfinite(values) & (values > 0) & (values <= 1)):
        raise ValueError(f"{name} must be in (0, 1], got {values.tolist()}")


def check_width(d_mlp: int, n_features: int) -> None:
    """The CC model computes n_features ReLUs with at most as many neurons (0 allowed:
    the zero model)."""
    check_size("n_features", n_features)
    check_size("d_mlp", d_mlp, minimum=0)
    if d_mlp > n_features:
        raise ValueError(f"d_mlp ({d_mlp}) must not exceed n_features ({n_features})")


def check_finite(name: str, value) -> None:
    """A real number that is not NaN or infinite, checked where it is concrete."""
    if is_concrete(value) and not np.all(np.isfinite(np.asarray(value, np.float64))):
        raise ValueError(f"{name} must be finite, got {np.asarray(value).tolist()}")
