"""The two forms of the CC model and the weight map between them (docs/paper.md §1–2).

* :class:`FeatureMLP`: the reduced 100 → 50 → 100 bias-free MLP ``relu(x W_in) W_out``
  that the paper studies.
* :class:`ResidualMLP`: the MLP of Braun et al.'s residual CC model, acting on the
  d_embed-wide residual stream ``x W_E``; ``W_E`` is fixed and passed in.

:func:`to_feature_space` maps residual weights to feature-space weights
(``W_in' = W_E W_in``, ``W_out' = W_out W_E^T``); under it both models give identical
outputs and losses (see :mod:`ccjax.problem` for the derivation).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from .._checks import check_size
from .._linalg import matmul
from .._types import AnyArray, Array, Float, PRNGKeyArray


class FeatureMLP(eqx.Module):
    """Feature-space MLP weights: ``W_in`` (n_features, d_mlp), ``W_out`` (d_mlp, n_features).

    The reduced model ``relu(x W_in) W_out`` of docs/paper.md §2. Stacked models carry
    leading model axes on both fields.

    Attributes:
        w_in: ``W_in``, (*models, n_features, d_mlp): the input weights of the d_mlp neurons.
        w_out: ``W_out``, (*models, d_mlp, n_features): the output weights.
    """

    w_in: Float[AnyArray, "*models n_features d_mlp"]
    w_out: Float[AnyArray, "*models d_mlp n_features"]


class ResidualMLP(eqx.Module):
    """Residual-stream MLP weights: ``W_in`` (d_embed, d_mlp), ``W_out`` (d_mlp, d_embed).

    The MLP of Braun et al.'s CC model (docs/paper.md §1), read and written through the
    fixed embedding W_E. Stacked models carry leading model axes on both fields.

    Attributes:
        w_in: ``W_in``, (*models, d_embed, d_mlp): reads the residual stream.
        w_out: ``W_out``, (*models, d_mlp, d_embed): writes back to the residual stream.
    """

    w_in: Float[AnyArray, "*models d_embed d_mlp"]
    w_out: Float[AnyArray, "*models d_mlp d_embed"]


def _uniform(key, shape, bound):
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _init_weights(key: PRNGKeyArray, n_features: int, d_mlp: int, width: int) -> tuple[Array, Array]:
    """``W_in`` (width, d_mlp) ~ U(±sqrt(6/d_mlp)) and ``W_out`` (d_mlp, width) ~
    U(±sqrt(6/n_features)) from the two halves of ``key``, for either form of the model
    (``width`` is n_features for the feature-space form, d_embed for the residual one)."""
    in_key, out_key = jax.random.split(key)
    w_in = _uniform(in_key, (width, d_mlp), (6.0 / d_mlp) ** 0.5)
    return w_in, _uniform(out_key, (d_mlp, width), (6.0 / n_features) ** 0.5)


def init_feature_mlp(key: PRNGKeyArray, n_features: int, d_mlp: int) -> FeatureMLP:
    """The paper code's init: W_in ~ U(±sqrt(6/d_mlp)), W_out ~ U(±sqrt(6/n_features)).

    docs/paper.md §4 (Initialisation).

    Args:
        key: PRNG key; its two halves draw ``W_in`` and ``W_out``.
        n_features: Number of input features n (100 in the paper).
        d_mlp: Number of ReLU neurons (50 in the paper).

    Returns:
        The float32 weights of one model: ``w_in`` (n_features, d_mlp), ``w_out`` (d_mlp, n_features).

    Raises:
        ValueError: If ``n_features`` or ``d_mlp`` is not a positive integer.
    """
    check_size("n_features", n_features)
    check_size("d_mlp", d_mlp)
    return FeatureMLP(*_init_weights(key, n_features, d_mlp, n_features))


def init_residual_mlp(key: PRNGKeyArray, n_features: int, d_mlp: int, d_embed: int) -> ResidualMLP:
    """Residual weights with the same bounds as :func:`init_feature_mlp`.

    Because W_E has unit-norm rows, ``W_E W_in`` and ``W_out W_E^T`` then have the same
    entry variance as the reduced model's init, so both forms start alike (docs/paper.md §1, §4).

    Args:
        key: PRNG key; its two halves draw ``W_in`` and ``W_out``.
        n_features: Number of input features n; sets the ``W_out`` bound sqrt(6/n_features).
        d_mlp: Number of ReLU neurons; sets the ``W_in`` bound sqrt(6/d_mlp).
        d_embed: Width of the residual stream (1000 in Braun et al.).

    Returns:
        The float32 weights of one model: ``w_in`` (d_embed, d_mlp), ``w_out`` (d_mlp, d_embed).

    Raises:
        ValueError: If ``n_features``, ``d_mlp`` or ``d_embed`` is not a positive integer.
    """
    check_size("n_features", n_features)
    check_size("d_mlp", d_mlp)
    check_size("d_embed", d_embed)
    return ResidualMLP(*_init_weights(key, n_features, d_mlp, d_embed))


def to_feature_space(params: FeatureMLP | ResidualMLP, w_e: Float[Array, "n_features d_embed"] | None) -> FeatureMLP:
    """The feature-space weights equivalent to ``params`` (identity for a FeatureMLP).

    The map ``W_in' = W_E W_in``, ``W_out' = W_out W_E^T`` of docs/paper.md §2, under
    which both forms give identical outputs and losses.

    Args:
        params: One model's weights, feature-space or residual.
        w_e: The fixed embedding W_E, (n_features, d_embed), with which the residual model was
            trained; used only for a :class:`ResidualMLP` (None is fine for a :class:`FeatureMLP`).

    Returns:
        Feature-space weights: ``w_in`` (n_features, d_mlp), ``w_out`` (d_mlp, n_features).
    """
    if isinstance(params, FeatureMLP):
        return params
    return FeatureMLP(w_in=matmul(w_e, params.w_in), w_out=matmul(params.w_out, w_e.T))


def forward(params: FeatureMLP, x: Float[Array, "batch n_features"]) -> Float[Array, "batch n_features"]:
    """``relu(x W_in) W_out``, the reduced model's output (paper §2).

    Args:
        params: One model's feature-space weights.
        x: Input rows, (batch, n_features).

    Returns:
        The model's output, (batch, n_features).
    """
    return matmul(jax.nn.relu(matmul(x, params.w_in)), params.w_out)


def residual_forward(
    params: ResidualMLP, w_e: Float[Array, "n_features d_embed"], x: Float[Array, "batch n_features"]
) -> Float[Array, "batch n_features"]:
    """Braun et al.'s CC model: ``r = x W_E; r = r + relu(r W_in) W_out; out = r W_E^T``.

    docs/paper.md §1 (trained on :func:`~ccjax.problem.residual_labels`).

    Args:
        params: One model's residual-stream weights.
        w_e: The fixed embedding W_E, (n_features, d_embed); the unembedding is ``W_E^T``.
        x: Input rows, (batch, n_features).

    Returns:
        The model's output, (batch, n_features).
    """
    r = matmul(x, w_e)
    r = r + matmul(jax.nn.relu(matmul(r, params.w_in)), params.w_out)
    return matmul(r, w_e.T)
