"""Direct Monte Carlo L/p at one p: the paper's estimator (docs/paper.md §4).

Plain Monte Carlo over fresh Bernoulli-p batches, computed exactly along the sparse or
dense path of :func:`ccjax.problem.batch_loss`. Written for one model; ``vmap`` it over
stacked models. :mod:`ccjax.measure` is the faster, exact-where-possible engine; this
one is the reference it is tested and benchmarked against.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from .._types import Array, Float, Int, PRNGKeyArray
from ..problem._data import default_capacity, row_starts, sample_sparse
from ..problem._loss import InputPath, batch_loss, default_multi_capacity
from ..problem._model import FeatureMLP
from ..problem._tasks import MIXED_RELU, Task

EVAL_BATCH_SIZE = 8192


class Estimate(NamedTuple):
    """A Monte Carlo estimate of L/p with its standard error and the samples behind it.

    ``n_nonempty`` counts samples with at least one active feature (the paper's unit). Each
    field is a scalar for one model, or carries the models' leading axes.

    Attributes:
        loss_per_feature: the estimate of L/p.
        sem: its standard error (NaN where it cannot be estimated, e.g. from one batch).
        n_samples: the samples behind it, empty ones included.
        n_nonempty: those with at least one active feature.
    """

    loss_per_feature: Float[Array, ""]
    sem: Float[Array, ""]
    n_samples: Int[Array, ""]
    n_nonempty: Int[Array, ""]


class EvalPlan(NamedTuple):
    """Static sizes of an evaluation: batches of ``batch_size`` rows, sparse capacities.

    Attributes:
        n_batches: the number of batches, each an independent sample of the loss.
        batch_size: rows (samples) per batch.
        capacity: the sparse entries (active features) a batch holds (:func:`~ccjax.problem.default_capacity`).
        multi_capacity: the rows with two or more active features the sparse path holds
            (:func:`~ccjax.problem.default_multi_capacity`; more fall back to the dense path).
    """

    n_batches: int
    batch_size: int
    capacity: int
    multi_capacity: int


def plan_evaluation(
    p_min: float, p_max: float, n_features: int, min_nonempty: float = 1e6, batch_size: int = EVAL_BATCH_SIZE
) -> EvalPlan:
    """Enough batches that every p in [p_min, p_max] sees ≥ ``min_nonempty`` non-empty
    samples with overwhelming probability (expected count minus 6 standard deviations).

    Args:
        p_min: the smallest feature probability to evaluate (it needs the most batches).
        p_max: the largest, which sets the sparse capacities.
        n_features: the number of features n.
        min_nonempty: the non-empty samples each p must see (the paper: about 1e6, docs/paper.md §4).
        batch_size: rows per batch.

    Returns:
        The :class:`EvalPlan`: the fewest batches found (grown by about 10% at a time) and the capacities at ``p_max``.
    """
    q = 1.0 - (1.0 - p_min) ** n_features  # P(sample non-empty) at the smallest p
    n_batches = 1
    while True:
        total = n_batches * batch_size
        if total * q - 6.0 * math.sqrt(total * q * (1.0 - q)) >= min_nonempty:
            break
        n_batches = max(n_batches + 1, int(n_batches * 1.1))
    return EvalPlan(
        n_batches,
        batch_size,
        default_capacity(batch_size, n_features, p_max),
        default_multi_capacity(batch_size, n_features, p_max),
    )


def direct_loss_per_feature(
    params: FeatureMLP,
    scaled_mixing: Float[Array, "n_features n_features"],
    key: PRNGKeyArray,
    p,
    plan: EvalPlan,
    *,
    path: InputPath = "sparse",
    axis_name: str | None = None,
    task: Task = MIXED_RELU,
) -> Estimate:
    """L/p at feature probability ``p`` against the labels of ``task`` (default
    ``relu(x) + (s M) x``), with the task's loss: the paper's direct estimator (docs/paper.md §4).

    The SEM is over ``plan.n_batches`` independent batches.

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).
        scaled_mixing: its label map ``s M``, (n_features, n_features).
        key: the key of the batches.
        p (float | Array): the feature probability, a scalar (may be traced, e.g. vmapped over models).
        plan: the batches and capacities (:func:`plan_evaluation`).
        path: ``"sparse"`` or ``"dense"``: how :func:`~ccjax.problem.batch_loss` computes each batch's L
            (the same value to float rounding).
        axis_name: the name of the ``vmap`` axis over models, if any, so that the sparse path's dense fallback
            is taken by all models together (:func:`~ccjax.problem.batch_loss`).
        task: the labels and loss.

    Returns:
        An :class:`Estimate` of scalars: the mean L/p over the batches, its SEM (NaN for one batch),
        ``n_batches * batch_size`` samples and the non-empty ones among them.
    """
    losses, nonempty = _batch_losses(params, scaled_mixing, key, p, plan, path, axis_name, task)
    p = jnp.asarray(p, jnp.float32)
    per_feature = losses / p
    sem = jnp.std(per_feature, ddof=1) / jnp.sqrt(plan.n_batches) if plan.n_batches > 1 else jnp.nan
    return Estimate(
        jnp.mean(per_feature),
        jnp.asarray(sem, jnp.float32),
        jnp.int32(plan.n_batches * plan.batch_size),
        jnp.sum(nonempty),
    )


def _batch_losses(params, scaled_mixing, key, p, plan: EvalPlan, path: InputPath, axis_name, task: Task):
    """L of each of ``plan.n_batches`` fresh Bernoulli-p batches (n_batches,), and the
    non-empty samples of each (n_batches,): the scan of :func:`direct_loss_per_feature`."""
    n_features = params.w_in.shape[0]

    def one_batch(_, batch_key):
        batch = sample_sparse(batch_key, plan.batch_size, n_features, p, plan.capacity)
        loss = batch_loss(
            params,
            batch,
            scaled_mixing,
            batch_size=plan.batch_size,
            path=path,
            multi_capacity=plan.multi_capacity,
            axis_name=axis_name,
            task=task,
        )
        nonempty = jnp.sum(row_starts(batch, plan.batch_size))
        return None, (loss, nonempty)

    _, (losses, nonempty) = lax.scan(one_batch, None, jax.random.split(key, plan.n_batches))
    return losses, nonempty
