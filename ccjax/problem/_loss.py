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
  This cuts the step's FLOPs about 7× at p = 0.01 (faster on CPU). With an
  ``extra_capacity`` (training's default) the rows with two or more actives take the
  Gram form, which is faster still (:mod:`ccjax.problem._sparse_sse`).

Where a batch does not fit a fast path's capacities, the loss falls back to the exact whole
dense batch (:func:`needs_whole_batch`); the training step decides this outside the
differentiation, so each branch keeps its own residuals.

Labels and loss come from a :class:`~ccjax.problem.Task` (default
:data:`~ccjax.problem.MIXED_RELU`); the sparse path is its ``sparse_sse`` hook, and a task
without it takes the dense path. :func:`loss_terms` is specific to the default task.
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._types import Array, Bool, Float
from ._batch_layout import RowLayout, compact_rows, row_layout
from ._batch_layout import default_extra_capacity as default_extra_capacity
from ._batch_layout import default_multi_capacity as default_multi_capacity
from ._batch_layout import default_row_capacity as default_row_capacity
from ._data import SparseBatch, any_across, to_dense
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


Branch = Literal["auto", "fast", "whole"]


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
    extra_capacity: int | None = None,
    branch: Branch = "auto",
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
        extra_capacity: Sparse path: hold this many entries past the second of their row
            (:func:`default_extra_capacity`; more fall back) and take the task's Gram form (the
            paper's task: fewer FLOPs, no scatter of every entry). None: the direct form.
        branch: ``"auto"`` takes the fast path unless :func:`needs_whole_batch`; ``"whole"`` always runs
            the exact whole dense batch; ``"fast"`` never falls back (nor draws the dense path's overflow
            tail), exact only on batches that need no fallback: to differentiate each branch on its own
            (as :func:`ccjax.engine.train_step` does) or to measure the common path's cost.

    Returns:
        The scalar loss L (not L/p).

    Raises:
        ValueError: If ``path`` is neither ``"sparse"`` nor ``"dense"``, or ``branch`` is unknown.
    """
    if path not in ("sparse", "dense"):
        raise ValueError(f"unknown input path {path!r}; choose 'sparse' or 'dense'")
    if branch not in ("auto", "fast", "whole"):
        raise ValueError(f"unknown branch {branch!r}; choose 'auto', 'fast' or 'whole'")
    multi_capacity = batch_size if multi_capacity is None else multi_capacity
    options = (batch_size, path, (multi_capacity, row_capacity, extra_capacity), axis_name, task)
    return _branch_sse(params, batch, scaled_mixing, options, branch) / (batch_size * params.w_in.shape[0])


def _branch_sse(params, batch, scaled_mixing, options, branch):
    """The SSE along ``branch`` (:func:`batch_loss`)."""
    batch_size, path, capacities, axis_name, task = options
    n_features = params.w_in.shape[0]
    prepared = _prepare_fast_path(batch, n_features, batch_size, path, capacities, task)
    if prepared is None and branch == "fast":
        batch = batch._replace(overflow=jnp.array(False))

    def whole(_):
        return dense_sse(params, to_dense(batch, batch_size, n_features, axis_name), scaled_mixing, task)

    def fast(_):
        return _fast_sse(params, batch, scaled_mixing, prepared[0], capacities[0], task)

    if prepared is None or branch == "whole":
        return whole(None)
    if branch == "fast":
        return fast(None)
    return lax.cond(any_across(prepared[1], axis_name), whole, fast, None)  # decided once for all models


def needs_whole_batch(
    batch: SparseBatch,
    n_features: int,
    *,
    batch_size: int,
    path: InputPath = "sparse",
    task: Task = MIXED_RELU,
    multi_capacity: int | None = None,
    row_capacity: int | None = None,
    extra_capacity: int | None = None,
    axis_name: str | None = None,
) -> Bool[Array, ""] | None:
    """Whether :func:`batch_loss`'s fast path cannot take ``batch`` (its sparse entries overflowed,
    or it holds more rows than the path's capacity), or None where the path has no fast path.

    With the predicate outside, a caller can differentiate each branch on its own, ``lax.cond(
    needs_whole_batch(...), grad of branch="whole", grad of branch="fast")``: the gradient of a
    ``lax.cond`` inside the loss would carry every branch's residuals (the whole batch's dense
    activations) through the step that almost always takes the fast one.

    Args:
        batch: The model's sparse batch.
        n_features: Features per row.
        batch_size: Rows of the batch (static).
        path: ``"sparse"`` or ``"dense"``, as for :func:`batch_loss`.
        task: The labels and loss (default: the paper's).
        multi_capacity: Sparse path: rows with 2+ actives held (default ``batch_size``).
        row_capacity: Dense path: non-empty rows held, or None (no fast path).
        extra_capacity: Sparse path: entries past the second of their row held, or None (the direct form).
        axis_name: The ``vmap`` axis over models, or None; named, the answer is or'ed over its models.

    Returns:
        A scalar bool (or'ed over ``axis_name``'s models), or None.
    """
    multi_capacity = batch_size if multi_capacity is None else multi_capacity
    capacities = (multi_capacity, row_capacity, extra_capacity)
    prepared = _prepare_fast_path(batch, n_features, batch_size, path, capacities, task)
    return None if prepared is None else any_across(prepared[1], axis_name)


def _prepare_fast_path(batch, n_features, batch_size, path, capacities, task):
    """The data side of ``batch_loss``'s fast path, ``(rows or layout, needs_whole)``: the compacted
    non-empty rows (dense path) or the row layout (sparse path); None where there is no fast path."""
    multi_capacity, row_capacity, extra_capacity = capacities
    if path == "dense" or task.sparse_sse is None:
        if row_capacity is None or task.compact_dense_sse is None:
            return None
        rows, n_rows = compact_rows(batch, batch_size, n_features, row_capacity)
        return rows, batch.overflow | (n_rows > row_capacity)
    layout = row_layout(batch, batch_size, multi_capacity, extra_capacity)
    too_many = layout.n_multi > multi_capacity
    if extra_capacity is not None:
        too_many = too_many | (layout.n_extra > extra_capacity)
    return layout, batch.overflow | too_many


def _fast_sse(params, batch, scaled_mixing, prepared, multi_capacity, task):
    """The fast path's SSE on what :func:`_prepare_fast_path` made."""
    if isinstance(prepared, RowLayout):
        return task.sparse_sse(params, batch, scaled_mixing, prepared, multi_capacity)
    return task.compact_dense_sse(params, prepared, scaled_mixing)
