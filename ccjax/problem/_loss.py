"""Labels, the MSE objective, and its split into a ReLU term and a mixing term.

Labels (docs/paper.md §2–3): ``y = relu(x) + scale * M x``, written ``x @ M.T`` for row
vectors. The loss L is the mean over batch and features of ``(f(x) - y)^2``; the paper
reports L/p, the *loss per feature*.

The paper's central decomposition splits L into

* the **ReLU term**  ``mean (f(x) - relu(x))^2``: how well the model computes ReLUs;
* the **mixing term** ``mean(-2 (f(x) - relu(x)) · (s M x) + (s M x)^2)``: what the
  mixing matrix adds. It can be negative: a model that partly reproduces ``s M x``
  beats the naive model through this term alone.

Two exact ways to compute the training loss on a :class:`~ccjax.problem.SparseBatch`:

* ``dense``: scatter to a dense batch and run the MLP (fast on GPU/TPU). With a
  ``row_capacity`` and a task that declares ``compact_dense_sse`` (the paper's does), only
  the non-empty rows are scattered and run (63% of them at the paper's p = 0.01; an empty
  row's error is exactly 0), through a hand-written backward pass.
* ``sparse``: rows with one active feature f and value v have error
  ``|v| * e[f, sign v]`` with a per-feature error vector computed once per step
  (the model is linear along one feature on each side of 0); rows with two or more
  actives are compacted and run densely; empty rows have zero loss (no biases).
  This cuts the step's FLOPs about 7× at p = 0.01 (faster on CPU).

Labels and loss come from a :class:`~ccjax.problem.Task` (default
:data:`~ccjax.problem.MIXED_RELU`); the sparse path is its ``sparse_sse`` hook, and a task
without it takes the dense path. :func:`loss_terms` is specific to the default task.
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._types import Array, Float, Int
from ._data import SparseBatch, any_across, default_capacity, row_starts, to_dense
from ._model import FeatureMLP, forward
from ._tasks import MIXED_RELU, Task, mixed_relu_labels
from ._tasks import unit_squared_errors as unit_squared_errors

InputPath = Literal["sparse", "dense"]
labels = mixed_relu_labels  # the default task's labels, with an optional scale


class LossTerms(NamedTuple):
    """L, its ReLU term and its mixing term (means over batch and features).

    Every field is in units of L, not L/p (divide by p for the paper's loss per feature).

    Attributes:
        loss: L, the mean over batch and features of ``(f(x) - y)^2``; the sum of the two terms.
        relu_term: ``mean (f(x) - relu(x))^2``, how well the model computes the ReLUs.
        mixing_term: ``mean(-2 (f(x) - relu(x)) · (s M x) + (s M x)^2)``, what the mixing adds
            (may be negative).
    """

    loss: Float[Array, ""]
    relu_term: Float[Array, ""]
    mixing_term: Float[Array, ""]


def residual_labels(x: Float[Array, "batch n_features"]) -> Float[Array, "batch n_features"]:
    """Braun et al.'s labels for the residual CC model: ``x + relu(x)``.

    docs/paper.md §1.

    Args:
        x: Input rows, (batch, n_features).

    Returns:
        The labels, (batch, n_features).
    """
    return x + jax.nn.relu(x)


def mse(prediction: Float[Array, "batch n_features"], target: Float[Array, "batch n_features"]) -> Float[Array, ""]:
    """Mean over batch and features of the squared error.

    Args:
        prediction: Model outputs, (batch, n_features).
        target: Labels, (batch, n_features).

    Returns:
        The scalar mean squared error: L for a model's outputs and labels (docs/paper.md §4).
    """
    return jnp.mean((prediction - target) ** 2)


def loss_terms(
    params: FeatureMLP,
    x: Float[Array, "batch n_features"],
    mixing: Float[Array, "n_features n_features"],
    scale=1.0,
) -> LossTerms:
    """L and its split into the ReLU term and the mixing term (module docstring).

    For the paper's labels ``relu(x) + scale * M x`` only (:meth:`MixedReLU.loss_split
    <ccjax.problem.MixedReLU.loss_split>`).

    Args:
        params: One model's feature-space weights.
        x: Dense input rows, (batch, n_features).
        mixing: The unscaled mixing matrix M, (n_features, n_features).
        scale (float | Array): The mixing scale s in the labels (a float or scalar array; default 1).

    Returns:
        L, the ReLU term and the mixing term, each in units of L (not L/p).
    """
    relu_term, mixing_term = MIXED_RELU.loss_split(params, x, mixing, scale)
    return LossTerms(relu_term + mixing_term, relu_term, mixing_term)


def default_multi_capacity(batch_size: int, n_features: int, p: float) -> int:
    """Rows with ≥2 active features the sparse path holds: mean + 5 sd + 16 (see
    :func:`ccjax.problem.default_capacity`; more rows fall back to the dense path)."""
    q0 = (1.0 - p) ** n_features
    q1 = n_features * p * (1.0 - p) ** (n_features - 1)
    return default_capacity(batch_size, 1, max(0.0, 1.0 - q0 - q1))  # rows that qualify: Binomial(B, q)


# The dense path compacts the non-empty rows only where that drops at least this fraction of
# the rows' work (so the CPU's dense path, taken from n p > 3 on, keeps its full batch).
COMPACT_MIN_SAVING = 0.1


def default_row_capacity(batch_size: int, n_features: int, p: float) -> int | None:
    """Non-empty rows the compact dense path holds (mean + 5 sd + 16; more rows fall back
    to the full dense batch), or None where compacting would save less than 10% of the rows.

    At the paper's shapes (2,048 rows, n = 100, p = 0.01) 63% of rows are non-empty on
    average, and 1,424 rows are held.

    Args:
        batch_size: Rows per batch.
        n_features: Features per row.
        p: The largest feature probability of the runs.

    Returns:
        The row capacity, or None (the dense path then runs the whole batch).
    """
    capacity = default_capacity(batch_size, 1, 1.0 - (1.0 - p) ** n_features)  # non-empty rows: Binomial(B, q)
    return capacity if capacity <= (1.0 - COMPACT_MIN_SAVING) * batch_size else None


def compact_rows(
    batch: SparseBatch, batch_size: int, n_features: int, row_capacity: int
) -> tuple[Float[Array, "row_capacity n_features"], Int[Array, ""]]:
    """The batch's non-empty rows, in order, as a dense (row_capacity, n_features) array.

    Rows past ``row_capacity`` are dropped (the caller falls back when the count exceeds
    it); unused rows are 0. Entries past an overflow are not drawn (see :func:`to_dense`).

    Args:
        batch: One batch's sparse entries.
        batch_size: Rows of the batch it was drawn with.
        n_features: Features per row.
        row_capacity: Rows to hold.

    Returns:
        ``(rows, count)``: the compacted rows and the number of non-empty rows.
    """
    starts = row_starts(batch, batch_size)
    # An unused slot (value 0) lands on the last row and adds 0; entries of one row have distinct
    # features, so adding is setting. One flat index per entry: fewer bytes than (row, feature).
    index = (jnp.cumsum(starts) - 1) * n_features + batch.features
    flat = jnp.zeros(row_capacity * n_features, jnp.float32).at[index].add(batch.values, mode="drop")
    return flat.reshape(row_capacity, n_features), jnp.sum(starts)


class _RowLayout(NamedTuple):
    count: Int[Array, " capacity"]  # active features in each entry's row
    slot: Int[Array, " capacity"]  # compact row index of multi-feature rows, else out of range
    n_multi: Int[Array, ""]


def _row_layout(batch: SparseBatch, batch_size: int, multi_capacity: int) -> _RowLayout:
    valid = (batch.rows < batch_size).astype(jnp.int32)
    counts = jnp.zeros(batch_size + 1, jnp.int32).at[batch.rows].add(valid)
    count = counts[batch.rows]
    is_multi = count >= 2
    starts = is_multi & row_starts(batch, batch_size)
    slot = jnp.where(is_multi, jnp.cumsum(starts) - 1, multi_capacity)
    return _RowLayout(count, slot, jnp.sum(starts))


def dense_sse(
    params: FeatureMLP,
    x: Float[Array, "batch n_features"],
    scaled_mixing: Float[Array, "n_features n_features"],
    task: Task = MIXED_RELU,
) -> Float[Array, ""]:
    """Summed loss of a dense batch (:meth:`Task.summed_loss`; for the default
    ``relu(x) + (s M) x`` labels, the sum of squared errors).

    Args:
        params: One model's feature-space weights.
        x: Dense input rows, (batch, n_features).
        scaled_mixing: The label map ``s M``, (n_features, n_features) (None for a task that
            ignores it).
        task: The labels and loss (default: the paper's).

    Returns:
        The scalar summed loss, ``batch * n_out`` times L.
    """
    return task.summed_loss(forward(params, x), task.labels(x, scaled_mixing))


def batch_loss(
    params: FeatureMLP,
    batch: SparseBatch,
    scaled_mixing: Float[Array, "n_features n_features"],
    *,
    batch_size: int,
    path: InputPath = "sparse",
    multi_capacity: int | None = None,
    axis_name: str | None = None,
    task: Task = MIXED_RELU,
    row_capacity: int | None = None,
    rare_branches: bool = True,
) -> Float[Array, ""]:
    """L (mean over batch and features) of a sparse batch, computed along ``path``.

    Args:
        params: One model's feature-space weights.
        batch: The model's sparse batch.
        scaled_mixing: The label map ``s M``, (n_features, n_features).
        batch_size: Rows of the batch (static).
        path: ``"sparse"`` or ``"dense"`` (equal to float rounding; dense for a task without ``sparse_sse``).
        multi_capacity: Rows with 2+ actives the sparse path holds (default ``batch_size``; more fall back).
        axis_name: The ``vmap`` axis over models, or None. Named, the fallback (and the dense path's tail,
            :func:`~ccjax.problem.to_dense`) is taken by all models together: a real branch, not a select.
        task: The labels and loss (default: the paper's).
        row_capacity: Dense path, task with a ``compact_dense_sse`` hook: run only the non-empty rows,
            compacted into this many (:func:`default_row_capacity`; more fall back). None: every row.
        rare_branches: False leaves out the fallbacks, exact only on batches that need none: to measure
            the cost of the path almost every step takes, never to train.

    Returns:
        The scalar loss L (not L/p).

    Raises:
        ValueError: If ``path`` is neither ``"sparse"`` nor ``"dense"``.
    """
    if path not in ("sparse", "dense"):
        raise ValueError(f"unknown input path {path!r}; choose 'sparse' or 'dense'")
    n_features = params.w_in.shape[0]
    if not rare_branches:
        batch = batch._replace(overflow=jnp.array(False))

    def dense(_):
        return dense_sse(params, to_dense(batch, batch_size, n_features, axis_name), scaled_mixing, task)

    fast = _fast_path(params, batch, scaled_mixing, batch_size, path, multi_capacity, row_capacity, task)
    if fast is None:
        return dense(None) / (batch_size * n_features)
    fallback = any_across(fast[1], axis_name) if rare_branches else jnp.array(False)  # once for all models
    return lax.cond(fallback, dense, fast[0], None) / (batch_size * n_features)


def _fast_path(params, batch, scaled_mixing, batch_size, path, multi_capacity, row_capacity, task):
    """``batch_loss``'s fast path, as ``(sse, fallback)``: a function of a dummy argument giving the
    SSE, and whether the batch needs the whole dense batch instead; None where there is none."""
    if path == "dense" or task.sparse_sse is None:
        if row_capacity is None or task.compact_dense_sse is None:
            return None
        rows, n_rows = compact_rows(batch, batch_size, params.w_in.shape[0], row_capacity)
        compact = lambda _: task.compact_dense_sse(params, rows, scaled_mixing)  # noqa: E731
        return compact, batch.overflow | (n_rows > row_capacity)
    multi_capacity = batch_size if multi_capacity is None else multi_capacity
    layout = _row_layout(batch, batch_size, multi_capacity)
    sparse = lambda _: task.sparse_sse(params, batch, scaled_mixing, layout, multi_capacity)  # noqa: E731
    return sparse, batch.overflow | (layout.n_multi > multi_capacity)
