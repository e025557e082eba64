"""The paper's task on the sparse loss path: the summed squared error of a sparse batch.

Rows with one active feature f of value v have error ``v^2`` times an entry of the
one-feature table (:func:`unit_squared_errors`): along one feature the model is linear on
each side of 0. Rows with two or more actives are run through the MLP, in one of two forms:

* the **direct** form (:func:`direct_sparse_sse`) scatters every entry's ``v W_in[f]`` and
  label into compact rows and computes ``relu(pre) W_out - y``;
* the **Gram** form (:func:`gram_sparse_sse`) writes a row's squared error as
  ``h G hᵀ - 2 h·t + |y|^2`` with ``h = relu(pre)``, ``G = W_out W_outᵀ`` (d × d) and
  ``t = W_out yᵀ``. Both ``pre`` and ``t`` are sums of one table row per entry, so a row is
  gathered from its first two entries (every such row has two) plus a short list of
  extras, never scattered from every entry. At the paper's shapes it has 40% of the direct
  form's matmul work and about 0.65× its CPU time per training step (docs/performance.md).

Both are exact; they differ in float32 rounding order only. Training on a CPU takes the
Gram form (:func:`ccjax.engine.extra_capacity_for`); other platforms, evaluation and
``Shapes(extra_capacity=None)`` keep the direct form.
"""

import jax
import jax.numpy as jnp

from .._linalg import matmul
from .._types import AnyArray, Array, Float
from ._batch_layout import RowLayout
from ._data import SparseBatch
from ._model import FeatureMLP


def unit_squared_errors(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]
) -> Float[Array, "2 n_features"]:
    """``|f(±e_j) - y(±e_j)|^2`` for the unit inputs ``+e_j`` (row 0) and ``-e_j`` (row 1).

    Along one feature the model is linear on each side of 0, so an input ``v e_j`` has
    squared error ``v^2`` times row 0 (v > 0) or row 1 (v < 0) at column j.

    Args:
        params: One model's feature-space weights.
        scaled_mixing: The label map ``s M``, (n_features, n_features).

    Returns:
        The squared errors, (2, n_features), summed (not averaged) over the n outputs.
    """
    n_features = params.w_in.shape[0]
    mixing_columns = scaled_mixing.T  # row j is M[:, j], the label a unit x_j adds
    both_signs = jax.nn.relu(jnp.concatenate([params.w_in, -params.w_in]))  # rows j, then n + j
    unit_label = jnp.concatenate([jnp.eye(n_features, dtype=params.w_out.dtype) + mixing_columns, -mixing_columns])
    return jnp.sum((matmul(both_signs, params.w_out) - unit_label) ** 2, axis=1).reshape(2, n_features)


def direct_sparse_sse(
    params: FeatureMLP, batch: SparseBatch, scaled_mixing, layout: RowLayout, multi_capacity: int
) -> Float[Array, ""]:
    """SSE of a sparse batch in the direct form (module docstring): one-feature rows from
    :func:`unit_squared_errors`, rows with two or more actives scattered into compact rows.

    Args:
        params: One model's feature-space weights.
        batch: The model's sparse batch.
        scaled_mixing (Array): The label map ``s M``, (n_features, n_features).
        layout: The batch's row layout (:func:`~ccjax.problem.row_layout`).
        multi_capacity: Compact rows for the rows with two or more actives (static).

    Returns:
        The scalar SSE; exact where the rows with two or more actives fit ``multi_capacity``.
    """
    n_features = params.w_in.shape[0]
    v, f = batch.values, batch.features
    mixing_columns = scaled_mixing.T  # row f is M[:, f], the label a unit x_f adds

    # One active feature f with value v: error = |v| * (relu(±W_in[f]) W_out - label[f, ±]).
    unit_sq = unit_squared_errors(params, scaled_mixing).reshape(-1)[jnp.where(v > 0, f, n_features + f)]
    single_sse = jnp.sum(jnp.where(layout.count == 1, v * v * unit_sq, 0.0))

    # Two or more active features: gather them into compact rows and run the MLP.
    d_mlp, dtype = params.w_in.shape[1], params.w_in.dtype
    pre = jnp.zeros((multi_capacity, d_mlp), dtype).at[layout.slot].add(v[:, None] * params.w_in[f], mode="drop")
    target = jnp.zeros((multi_capacity, n_features), dtype)
    target = target.at[layout.slot].add(v[:, None] * mixing_columns[f], mode="drop")
    target = target.at[layout.slot, f].add(jax.nn.relu(v), mode="drop")
    multi_sse = jnp.sum((matmul(jax.nn.relu(pre), params.w_out) - target) ** 2)
    return single_sse + multi_sse


@jax.custom_vjp
def quadratic_form(rows: Float[Array, "rows d"], gram: Float[Array, "d d"]) -> Float[Array, ""]:
    """``sum_r rows[r] G rows[r]ᵀ`` for a symmetric G, with the backward pass that uses the
    symmetry (``2 rows G``: one matmul fewer than autodiff's)."""
    return jnp.sum(rows * matmul(rows, gram))


def _quadratic_form_forward(rows, gram):
    rows_gram = matmul(rows, gram)
    return jnp.sum(rows * rows_gram), (rows, rows_gram)


def _quadratic_form_backward(residuals, cotangent):
    rows, rows_gram = residuals
    return 2.0 * cotangent * rows_gram, cotangent * matmul(rows.T, rows)


quadratic_form.defvjp(_quadratic_form_forward, _quadratic_form_backward)


def gram_sparse_sse(params: FeatureMLP, batch: SparseBatch, scaled_mixing, layout: RowLayout) -> Float[Array, ""]:
    """SSE of a sparse batch in the Gram form (module docstring; ``layout`` made with an
    ``extra_capacity``). Tables have one row per feature and sign: row f for v > 0, n + f for v < 0.

    Args:
        params: One model's feature-space weights.
        batch: The model's sparse batch.
        scaled_mixing (Array): The label map ``s M``, (n_features, n_features).
        layout: The batch's row layout, with ``firsts`` and ``extras``.

    Returns:
        The scalar SSE; exact where the layout's rows and extras fit their capacities.
    """
    n, d = params.w_in.shape
    v = batch.values
    sign_row = jnp.where(v > 0, batch.features, n + batch.features)
    mixing_columns = scaled_mixing.T  # row f: the label a unit x_f adds through s M
    labels = jnp.concatenate([jnp.eye(n, dtype=v.dtype) + mixing_columns, mixing_columns])  # per unit v
    readout = matmul(mixing_columns, params.w_out.T)  # row f: W_out (s M)[:, f]
    label_readout = jnp.concatenate([params.w_out.T + readout, readout])  # W_out yᵀ per unit v
    gram = matmul(params.w_out, params.w_out.T)

    # One active feature: an entry weighs its table row by v^2; -e_f is v = -1, so its label is -labels[n + f].
    single = jnp.where(layout.count == 1, v * v, 0.0)
    weight = jnp.zeros(2 * n, v.dtype).at[sign_row].add(single)
    unit_hidden = jax.nn.relu(jnp.concatenate([params.w_in, -params.w_in]))
    sign = jnp.concatenate([jnp.ones(n, v.dtype), -jnp.ones(n, v.dtype)])
    single_sse = (
        quadratic_form(jnp.sqrt(weight)[:, None] * unit_hidden, gram)
        - 2.0 * jnp.sum(weight * sign * jnp.sum(unit_hidden * label_readout, axis=1))
        + jnp.sum(weight * jnp.sum(labels * labels, axis=1))
    )

    # Two or more: pre-activations and W_out yᵀ from one table, the labels from another.
    weights = jnp.concatenate([jnp.concatenate([params.w_in, params.w_in]), label_readout], axis=1)  # (2n, 2d)
    pre_and_readout = _multi_rows(weights, v, sign_row, layout)
    hidden = jax.nn.relu(pre_and_readout[:, :d])
    target = _multi_rows(labels, v, sign_row, layout)
    multi_sse = quadratic_form(hidden, gram) - 2.0 * jnp.sum(hidden * pre_and_readout[:, d:]) + jnp.sum(target * target)
    return single_sse + multi_sse


def _multi_rows(table, v, sign_row, layout: RowLayout):
    """``sum over a row's entries of v * table[sign_row]``, for each compact row with two or more
    actives: its first two entries gathered, the extras added."""
    used = jnp.arange(layout.firsts.shape[0]) < layout.n_multi
    second = jnp.minimum(layout.firsts + 1, v.shape[0] - 1)
    rows = jnp.where(used, v[layout.firsts], 0.0)[:, None] * table[sign_row[layout.firsts]]
    rows = rows + jnp.where(used, v[second], 0.0)[:, None] * table[sign_row[second]]
    extra_used = jnp.arange(layout.extras.shape[0]) < layout.n_extra
    extra_values = jnp.where(extra_used, v[layout.extras], 0.0)[:, None] * table[sign_row[layout.extras]]
    return rows.at[layout.slot[layout.extras]].add(extra_values, mode="drop")
