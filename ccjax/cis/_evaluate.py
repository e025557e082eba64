"""Evaluate search-task models on fresh samples: the task's loss, MSE, the naive model's
loss on the same samples, and how naive-like the trained solution is.

Every estimate is a mean over ``batches`` independent batches, with its standard error
over them. The naive model's loss is measured on the very samples each model sees, so
``naive - trained`` is a paired difference.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._types import Array, Float, PRNGKeyArray
from ..problem._data import default_capacity
from ..problem._tasks import Task
from ._models import MODEL_FAMILIES, Params


class MeanSem(NamedTuple):
    """A Monte Carlo mean of a loss (L) and its standard error (any leading model axes).

    Attributes:
        mean: The mean over batches, in units of L; scalar, or stacked over leading model axes.
        sem: Its standard error, ``std(ddof=1) / sqrt(batches)`` over the batch means; same shape.
    """

    mean: Float[Array, "..."]
    sem: Float[Array, "..."]


class Evaluation(NamedTuple):
    """One model's (or stacked models') evaluation at its training p.

    Attributes:
        loss: The task's own loss L (:meth:`Task.sample_loss`, mean over rows).
        mse: The mean squared error over rows and outputs.
        naive_loss: The naive model's loss L on the same samples (:meth:`Task.naive_predictions`).
        naive_mse: The naive model's mean squared error on the same samples.
        naive_like_share: The output-variance share of the ``d_mlp`` best-served outputs
            (:func:`naive_like_share`): 1 for a naive-like model; a scalar per model.
    """

    loss: MeanSem  # the task's own loss
    mse: MeanSem  # mean squared error over outputs
    naive_loss: MeanSem  # the naive model's loss on the same samples
    naive_mse: MeanSem  # and its mean squared error
    naive_like_share: Float[Array, "..."]  # output variance share of the d_mlp best-served outputs


def _estimate(per_batch: Float[Array, " batches"]) -> MeanSem:
    return MeanSem(per_batch.mean(), per_batch.std(ddof=1) / jnp.sqrt(per_batch.shape[0]))


def naive_like_share(
    prediction_var: Float[Array, " n_out"], error: Float[Array, " n_out"], label_var: Float[Array, " n_out"], d_mlp: int
) -> Float[Array, ""]:
    """The share of the outputs' variance carried by the ``d_mlp`` best-served outputs
    (smallest error relative to the label's variance): 1 for the naive model, which
    varies on its d_mlp computed outputs alone; ``d_mlp / n_out`` for a model that spreads
    its outputs evenly.

    Args:
        prediction_var: Each output's variance of the model's prediction over the samples, (n_out,).
        error: Each output's mean squared error over the samples, (n_out,).
        label_var: Each output's variance of the label over the samples, (n_out,).
        d_mlp: Number of neurons d: how many best-served outputs count.

    Returns:
        The share, a scalar in [0, 1]: the summed ``prediction_var`` of the d_mlp outputs of smallest
            ``error / label_var`` over the summed ``prediction_var`` of all outputs.
    """
    relative_error = error / jnp.maximum(label_var, 1e-30)
    best = jnp.argsort(relative_error)[:d_mlp]
    return prediction_var[best].sum() / prediction_var.sum()


def _labels_and_predictions(task: Task, params: Params, n_features: int, p, key, batch_size: int, capacity: int):
    """One batch of fresh samples at ``p``: the task's labels and the model's predictions, each (batch, n_out)."""
    x = task.sample_inputs(key, batch_size, n_features, p, capacity)
    return task.labels(x, None), MODEL_FAMILIES[task.family].apply(params, x)


def evaluate_model(
    task: Task,
    params: Params,
    n_features: int,
    d_mlp: int,
    p,
    key: PRNGKeyArray,
    batches: int,
    batch_size: int,
    capacity: int,
) -> Evaluation:
    """One model's :class:`Evaluation` on ``batches`` fresh batches at feature probability
    ``p``; the naive model is scored on the same samples (a paired difference).

    Args:
        task: The search task: its model family, inputs, labels, loss and naive model.
        params: One model's parameters, of the task's model family (:data:`MODEL_FAMILIES`).
        n_features: Number of input features n.
        d_mlp: Number of neurons d (the outputs the naive model computes).
        p (float | Array): Feature probability in (0, 1]; a traced scalar under ``vmap``.
        key: PRNG key of the evaluation samples: equal keys give equal samples.
        batches: Number of independent batches (at least 2 for a finite SEM).
        batch_size: Rows per batch.
        capacity: Sparse entry slots, as in :meth:`Task.sample_inputs`, for the largest p evaluated.

    Returns:
        The evaluation: each :class:`MeanSem` is the mean over batches and its standard error.
    """

    def one_batch(batch_key):
        target, prediction = _labels_and_predictions(task, params, n_features, p, batch_key, batch_size, capacity)
        naive = task.naive_predictions(target, n_features, d_mlp, p)
        losses = (task.sample_loss(prediction, target).mean(), jnp.mean((prediction - target) ** 2))
        moments = (prediction.mean(0), (prediction**2).mean(0), ((prediction - target) ** 2).mean(0))
        moments += (target.mean(0), (target**2).mean(0))
        return losses + (task.sample_loss(naive, target).mean(), jnp.mean((naive - target) ** 2)), moments

    (loss, mse, naive, naive_mse), (f1, f2, err, y1, y2) = jax.lax.map(one_batch, jax.random.split(key, batches))
    f1, f2, err, y1, y2 = (moment.mean(0) for moment in (f1, f2, err, y1, y2))
    share = naive_like_share(f2 - f1**2, err, y2 - y1**2, d_mlp)
    return Evaluation(_estimate(loss), _estimate(mse), _estimate(naive), _estimate(naive_mse), share)


def evaluate_loss(
    task: Task,
    params: Params,
    n_features: int,
    p,
    key: PRNGKeyArray,
    batches: int,
    batch_size: int,
    capacity: int,
) -> MeanSem:
    """The ``loss`` of :func:`evaluate_model` alone, on the same samples (equal keys, equal
    value), without the naive model and the per-output moments: what the built references'
    choice and scores need. At thousands of outputs (``and-pairs-32``) it is several times
    cheaper on the CPU, where the moments' column means dominate.

    Args:
        task: The search task.
        params: One model's parameters, of the task's model family.
        n_features: Number of input features n.
        p (float | Array): Feature probability in (0, 1]; a traced scalar under ``vmap``.
        key: PRNG key of the samples, as in :func:`evaluate_model`.
        batches: Number of independent batches (at least 2 for a finite SEM).
        batch_size: Rows per batch.
        capacity: Sparse entry slots, as in :func:`evaluate_model`.

    Returns:
        The task's loss L: the mean over batches and its standard error.
    """

    def one_batch(batch_key):
        target, prediction = _labels_and_predictions(task, params, n_features, p, batch_key, batch_size, capacity)
        return task.sample_loss(prediction, target).mean()

    return _estimate(jax.lax.map(one_batch, jax.random.split(key, batches)))


def naive_monte_carlo(
    task: Task, n_features: int, d_mlp: int, p, key: PRNGKeyArray, batches: int = 64, batch_size: int = 4096
) -> MeanSem:
    """The naive model's expected loss by Monte Carlo, for any task (a check of
    :meth:`Task.naive_loss`, and the reference where there is no closed form).

    Args:
        task: The search task whose naive model (:meth:`Task.naive_predictions`) is scored.
        n_features: Number of input features n.
        d_mlp: Number of neurons d (the outputs the naive model computes).
        p (float): Feature probability in (0, 1]; a Python float (it sizes the sampler's capacity).
        key: PRNG key of the samples.
        batches: Number of independent batches (default 64).
        batch_size: Rows per batch (default 4096).

    Returns:
        The naive model's loss L (not L/p): the mean over batches and its standard error.
    """

    capacity = default_capacity(batch_size, n_features, p)

    def one_batch(batch_key):
        target = task.labels(task.sample_inputs(batch_key, batch_size, n_features, p, capacity), None)
        return task.sample_loss(task.naive_predictions(target, n_features, d_mlp, p), target).mean()

    return _estimate(jax.lax.map(one_batch, jax.random.split(key, batches)))
