"""Per-model response analyses: what one model does to single-feature inputs.

These are paper experiment 1's per-model figures (docs/paper.md §6.1; the paper code's
``nb1a_input_output_behaviour``, ``nb1b_weight_bars`` and ``nb1c_interference_heatmaps``):

* :func:`feature_response`: each feature's input–output curve, to compare with relu(v);
* :func:`one_hot_response`: the outputs for ±1 one-hot inputs (self-response on the
  diagonal, interference off it);
* :func:`neuron_contributions`: ``W_in ⊙ W_out`` per neuron, the pieces of each feature's
  self-response slope.

Each function takes one model; ``vmap`` over stacked models. With no biases the model is
linear along one feature on each side of 0, so these few numbers pin down its whole
single-feature behaviour.
"""

import jax
import jax.numpy as jnp

from .._types import AnyArray, Array, Float
from ..problem._model import FeatureMLP, forward


def feature_response(params: FeatureMLP, values: Float[AnyArray, " n_values"]) -> Float[Array, "n_values n_features"]:
    """Entry [k, j]: output j for the input ``values[k] · e_j`` (only feature j active).

    The input–output response curves of paper experiment 1 (nb1a), one per feature; the
    ideal is ``relu(v)``. Computed in closed form,
    ``out_j(v e_j) = Σ_h relu(v W_in[j, h]) W_out[h, j]``, which is :func:`~ccjax.problem.forward`
    restricted to the diagonal, at O(n_values · n_features · d_mlp) cost instead of a
    full n_features² forward pass per value.

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).
        values: the input values v, (n_values,) (e.g. a grid over [-1, 1]).

    Returns:
        The responses, (n_values, n_features), in the weights' dtype.
    """
    values = jnp.asarray(values, dtype=params.w_in.dtype)
    hidden = jax.nn.relu(values[:, None, None] * params.w_in[None])  # (n_values, n_features, d_mlp)
    return jnp.sum(hidden * params.w_out.T[None], axis=-1)


def one_hot_response(params: FeatureMLP, sign=1.0) -> Float[Array, "n_features n_features"]:
    """Row i: the model's output for the input ``sign · e_i``.

    The ±1 one-hot heatmaps of paper experiment 1 (nb1c): rows are the active input
    feature, columns the output feature; the diagonal is the self-response, the rest is
    interference. ``sign`` may be a traced scalar (e.g. vmapped over ±1).

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).
        sign (float | Array): the input value of the active feature (+1 or -1).

    Returns:
        The outputs, (n_features, n_features): row i active input feature, column j output feature.
    """
    n_features = params.w_in.shape[0]
    return forward(params, sign * jnp.eye(n_features, dtype=params.w_in.dtype))


def neuron_contributions(params: FeatureMLP) -> Float[AnyArray, "d_mlp n_features"]:
    """Entry [h, i] = ``W_in[i, h] · W_out[h, i]``: neuron h's part of feature i's self-response.

    The ``W_out ⊙ W_in`` stacked bars of paper experiment 1 (nb1b). Along ``v e_i`` the
    output of feature i is ``Σ_h relu(v W_in[i, h]) W_out[h, i]``, so its slope is

    * for v > 0: ``Σ_h [W_in[i, h] > 0] · contributions[h, i]`` (neurons with positive input weight);
    * for v < 0: ``Σ_h [W_in[i, h] < 0] · contributions[h, i]`` (neurons with negative input weight).

    Summed over all neurons, a column gives ``out_i(e_i) − out_i(−e_i)`` (the sum of the
    two slopes), i.e. ``diag(W_in W_out)``; the naive model has one 1 per neuron.

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).

    Returns:
        The contributions, (d_mlp, n_features).
    """
    return params.w_in.T * params.w_out
