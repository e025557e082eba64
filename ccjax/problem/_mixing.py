"""Mixing matrices M: the labels are ``relu(x) + scale * M x`` (docs/paper.md §2–3).

Sign and orientation, derived once. The CC model of Braun et al. computes, for a row
vector x, ``out = (x W_E + relu(x W_E W_in) W_out) W_E^T`` and is trained on
``y = x + relu(x)``. With ``G = W_E W_E^T``::

    out - y = relu(x W_E W_in) W_out W_E^T - (relu(x) + x (I - G)).

So the residual model is the feature-space MLP ``f(x) = relu(x W_in') W_out'`` (with
``W_in' = W_E W_in``, ``W_out' = W_out W_E^T``) fitted to ``relu(x) + M x`` with

    M = I - W_E W_E^T      (the *faithful* sign, ``"embedding"``).

The authors' code builds ``W_E W_E^T - I`` instead (``"embedding-code-sign"``), while its
legend states the faithful formula; at p = 0.01 that changes L/p from ≈0.067 to ≈0.064.

ccjax writes samples as row vectors, so "M x" for a row is ``x @ M.T``: a single active
feature f with value v adds ``v * M[:, f]`` to the label.

Every family is one :class:`MixingFamily` record in :data:`MIXING_FAMILIES` (builder,
formula, labels, whether it needs a rank); :func:`make_mixing`, the experiment CLIs'
choices and every label and legend read it from there.
"""

import dataclasses
import types
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

from .._checks import check_size, is_concrete
from .._linalg import matmul
from .._types import Array, Float, Int, PRNGKeyArray


def embedding(key: PRNGKeyArray, n_features: int, d_embed: int) -> Float[Array, "n_features d_embed"]:
    """W_E of Braun et al.: standard normal rows scaled to unit norm (paper §1).

    Args:
        key: PRNG key.
        n_features: Number of features n (rows of W_E).
        d_embed: Width of the residual stream (1000 in Braun et al.).

    Returns:
        W_E, (n_features, d_embed) float32, each row of unit norm.

    Raises:
        ValueError: If ``n_features`` or ``d_embed`` is not a positive integer.
    """
    check_size("n_features", n_features)
    check_size("d_embed", d_embed)
    w = jax.random.normal(key, (n_features, d_embed), jnp.float32)
    return w / jnp.linalg.norm(w, axis=1, keepdims=True)


def embedding_mixing(
    w_e: Float[Array, "n_features d_embed"], code_sign: bool = False
) -> Float[Array, "n_features n_features"]:
    """``I - W_E W_E^T`` (faithful), or ``W_E W_E^T - I`` with ``code_sign=True``.

    The embedding family of docs/paper.md §2–3 (the sign is discussed in §2).

    Args:
        w_e: The embedding W_E, (n_features, d_embed), with unit-norm rows (:func:`embedding`).
        code_sign: Use the sign of the authors' code, ``W_E W_E^T - I``, instead of the faithful one.

    Returns:
        M, (n_features, n_features), with its diagonal set exactly to zero.
    """
    gram = matmul(w_e, w_e.T)
    faithful = jnp.eye(w_e.shape[0], dtype=gram.dtype) - gram
    # The diagonal is exactly zero in exact arithmetic (unit-norm rows); make it so.
    faithful = faithful * (1.0 - jnp.eye(w_e.shape[0], dtype=gram.dtype))
    return -faithful if code_sign else faithful


def asymmetric_gaussian(key: PRNGKeyArray, n_features: int) -> Float[Array, "n_features n_features"]:
    """i.i.d. N(0, 1) entries, diagonal included; the scale is σ (paper §3).

    Args:
        key: PRNG key.
        n_features: Number of features n.

    Returns:
        The unscaled M, (n_features, n_features) float32.
    """
    return jax.random.normal(key, (n_features, n_features), jnp.float32)


def symmetric_gaussian(key: PRNGKeyArray, n_features: int) -> Float[Array, "n_features n_features"]:
    """The upper triangle (diagonal included) of an N(0, 1) matrix, mirrored (paper §3).

    Args:
        key: PRNG key.
        n_features: Number of features n.

    Returns:
        The unscaled, symmetric M, (n_features, n_features) float32.
    """
    upper = jnp.triu(jax.random.normal(key, (n_features, n_features), jnp.float32))
    return upper + jnp.triu(upper, 1).T


def low_rank(
    key: PRNGKeyArray, n_features: int, rank: int | Int[Array, ""], flat_spectrum: bool = False
) -> Float[Array, "n_features n_features"]:
    """``U V^T`` with U, V ~ N(0, 1) of shape (n_features, rank) (paper §3, experiment 8).

    With ``flat_spectrum`` U and V are replaced by the Q factors of their QR
    decompositions, so all ``rank`` non-zero singular values equal 1. ``rank`` may be a
    traced integer (so a sweep can vary it): U and V are drawn (n_features, n_features)
    and their columns from ``rank`` on are zeroed. The first r columns of the Q factor
    of a square Gaussian matrix are the Q factor of its first r columns, so both
    variants have the stated distribution for every rank.

    Args:
        key: PRNG key; its two halves draw U and V.
        n_features: Number of features n.
        rank: The rank r in [0, n_features]: a Python int or a (possibly traced) integer scalar.
        flat_spectrum: Replace U and V by their QR decompositions' Q factors (the ``"low-rank-flat"`` family).

    Returns:
        The unscaled M, (n_features, n_features) float32, of rank at most ``rank``.
    """
    u_key, v_key = jax.random.split(key)
    u = jax.random.normal(u_key, (n_features, n_features), jnp.float32)
    v = jax.random.normal(v_key, (n_features, n_features), jnp.float32)
    if flat_spectrum:
        u, v = jnp.linalg.qr(u)[0], jnp.linalg.qr(v)[0]
    kept = (jnp.arange(n_features) < rank).astype(jnp.float32)
    return matmul(u * kept[None, :], v.T)


MixingBuilder = Callable[
    [PRNGKeyArray, Float[Array, "n_features d_embed"], int | Int[Array, ""]], Float[Array, "n_features n_features"]
]


@dataclasses.dataclass(frozen=True)
class MixingFamily:
    """One mixing family: how M is drawn, and how it is named in manifests, tables and legends.

    The families of docs/paper.md §3, one record each in :data:`MIXING_FAMILIES`.

    Attributes:
        name: The family's name, as :func:`make_mixing`, ``TrainConfig.mixing`` and the CLIs take it.
        build: ``build(key, w_e, rank)`` returns the unscaled (n_features, n_features) M from a key of
            its own, the embedding W_E, (n_features, d_embed), drawn for the same model (the embedding
            families use it) and the rank (the low-rank families use it).
        formula: The formula of M, recorded in every manifest.
        label: The title of the family in figures and tables.
        short_label: The family's name in a crowded legend or table column.
        needs_rank: Whether ``build`` needs a rank (the low-rank families).
    """

    name: str
    build: MixingBuilder
    formula: str
    label: str
    short_label: str
    needs_rank: bool = False


# The registry: adding a family is one record here. Its order fixes each family's index
# (the traced ``Hyper.mixing`` of a sweep), so append new families at the end.
_FAMILIES = (
    MixingFamily(
        "none",
        lambda key, w_e, rank: jnp.zeros((w_e.shape[0], w_e.shape[0]), jnp.float32),
        "M = 0 (clean labels relu(x))",
        "clean (M = 0)",
        "clean",
    ),
    MixingFamily(
        "embedding",
        lambda key, w_e, rank: embedding_mixing(w_e),
        "M = I - W_E W_E^T (faithful sign, equivalent to the residual CC model)",
        "embedding M = I - W_E W_E^T",
        "embedding (faithful)",
    ),
    MixingFamily(
        "embedding-code-sign",
        lambda key, w_e, rank: embedding_mixing(w_e, code_sign=True),
        "M = W_E W_E^T - I (the sign in the paper's code)",
        "embedding M = W_E W_E^T - I (code sign)",
        "embedding (code sign)",
    ),
    MixingFamily(
        "symmetric",
        lambda key, w_e, rank: symmetric_gaussian(key, w_e.shape[0]),
        "M = symmetrised N(0, 1) (upper triangle mirrored)",
        "symmetric Gaussian M",
        "symmetric",
    ),
    MixingFamily(
        "asymmetric",
        lambda key, w_e, rank: asymmetric_gaussian(key, w_e.shape[0]),
        "M ~ N(0, 1) i.i.d.",
        "asymmetric Gaussian M",
        "asymmetric",
    ),
    MixingFamily(
        "low-rank",
        lambda key, w_e, rank: low_rank(key, w_e.shape[0], rank),
        "M = U V^T, U and V ~ N(0, 1) of shape (n_features, r)",
        "low-rank M = U V^T (Gaussian spectrum)",
        "low-rank",
        needs_rank=True,
    ),
    MixingFamily(
        "low-rank-flat",
        lambda key, w_e, rank: low_rank(key, w_e.shape[0], rank, flat_spectrum=True),
        "M = Q_U Q_V^T, the Q factors of the QR decompositions of U and V (r singular values 1)",
        "low-rank M, flat spectrum",
        "low-rank, flat",
        needs_rank=True,
    ),
)
MIXING_FAMILIES: Mapping[str, MixingFamily] = types.MappingProxyType({family.name: family for family in _FAMILIES})
MIXING_NAMES: tuple[str, ...] = tuple(MIXING_FAMILIES)


def _family_index(name: str | int | Int[Array, ""], rank) -> int | Int[Array, ""]:
    """``name``'s index in :data:`MIXING_NAMES` (a traced index as it is), after checking that a
    concrete name or index exists and that a low-rank family named either way has a rank."""
    index = name
    if isinstance(name, str):
        if name not in MIXING_FAMILIES:
            raise ValueError(f"unknown mixing {name!r}; choose one of {', '.join(MIXING_NAMES)}")
        index = MIXING_NAMES.index(name)
    elif is_concrete(index) and not 0 <= int(index) < len(MIXING_NAMES):
        raise ValueError(f"mixing index {int(index)} is out of range; there are {len(MIXING_NAMES)} families")
    if is_concrete(index) and MIXING_FAMILIES[MIXING_NAMES[int(index)]].needs_rank and rank is None:
        by_index = "" if isinstance(name, str) else f" (index {int(index)})"
        raise ValueError(f"mixing {MIXING_NAMES[int(index)]!r}{by_index} needs a rank")
    return index


def make_mixing(
    name: str | int | Int[Array, ""],
    key: PRNGKeyArray,
    n_features: int,
    d_embed: int,
    rank: int | Int[Array, ""] | None = None,
) -> tuple[Float[Array, "n_features n_features"], Float[Array, "n_features d_embed"]]:
    """The mixing matrix of a named family, and the embedding W_E it came from.

    W_E is returned for every family (drawn from ``key`` either way) so that the full
    residual model and the reduced model can share one code path (docs/paper.md §2–3).

    Args:
        name: One of :data:`MIXING_NAMES`, or its index there: a traced integer lets a sweep vary the
            family (a ``lax.switch`` over :data:`MIXING_FAMILIES`); a name or a Python int compiles one.
        key: PRNG key; its two halves draw W_E and the family's M.
        n_features: Number of features n.
        d_embed: Width of W_E's residual stream (1000 in Braun et al.).
        rank: The rank of the low-rank families, in [0, n_features] (required for them, may be
            traced); None stands for ``n_features`` where ``name`` is a traced index (the other
            families ignore it).

    Returns:
        ``(mixing, w_e)``: the unscaled M, (n_features, n_features), and W_E, (n_features, d_embed).

    Raises:
        ValueError: If ``name`` is unknown or a concrete index is out of range, a low-rank family
            named by string or by a concrete index gets no rank, or a concrete ``rank`` leaves
            [0, n_features].
    """
    index = _family_index(name, rank)
    if rank is not None and is_concrete(rank) and not 0 <= int(rank) <= n_features:
        raise ValueError(f"rank must be in [0, n_features = {n_features}], got {int(rank)}")
    rank = n_features if rank is None else rank
    embed_key, family_key = jax.random.split(key)
    w_e = embedding(embed_key, n_features, d_embed)
    branches = [lambda family=family: family.build(family_key, w_e, rank) for family in MIXING_FAMILIES.values()]
    if isinstance(index, int):
        return branches[index](), w_e
    return jax.lax.switch(index, branches), w_e
