"""Train many models of one search task at once: one compile per static combination.

:func:`train_models` trains one model per (seed, p, lr) triple, ``vmap``-ped, with the
paper's recipe (docs/paper.md §4: AdamW, batch 2048, fresh samples each step, a
half-cosine learning-rate decay), taken from a :class:`ccjax.TrainConfig`: its
``n_features``, ``d_mlp``, ``batch_size``, ``total_steps``, ``weight_decay``, betas,
eps and schedule (its mixing fields are not used: no search task has a mixing matrix).
The run goes in compiled chunks of ``chunk_steps`` so that ``on_progress`` can report.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._types import Array, Float, Int
from ..engine._train import TrainConfig, lr_factor
from ..problem._data import default_capacity
from ..problem._keys import seed_key
from ..problem._tasks import Task
from ._models import MODEL_FAMILIES, Params


class TrainedModels(NamedTuple):
    """What :func:`train_models` returns.

    Attributes:
        params: The models' parameters, each array stacked on a leading (models,) axis.
        chunk_losses: Each model's training loss L, mean over each chunk's steps, (models, chunks).
        initial_loss: Each model's training loss L at its first step (before any update), (models,).
    """

    params: Params
    chunk_losses: np.ndarray
    initial_loss: np.ndarray


def _optimizer(config: TrainConfig, lr) -> optax.GradientTransformation:
    total = config.total_steps
    return optax.adamw(
        lambda count: lr * lr_factor(config.schedule, count, total),
        b1=config.b1,
        b2=config.b2,
        eps=config.eps,
        weight_decay=config.weight_decay,
    )


def init_model(task: Task, config: TrainConfig, seed, lr):
    """One model's parameters, optimizer state and data key, from its seed.

    Args:
        task: The search task: its model family and number of outputs.
        config: The training recipe: n_features, d_mlp and the optimizer's settings.
        seed (int | Array): The model's seed (may be traced): it gives the initial weights and the data stream.
        lr (float | Array): The model's peak learning rate (may be traced).

    Returns:
        params (dict): The family's initial parameters.
        opt_state (optax.OptState): The AdamW state.
        data_key (PRNGKeyArray): The PRNG key of the training samples.
    """
    init_key, data_key = jax.random.split(seed_key(seed))
    n, d = config.n_features, config.d_mlp
    params = MODEL_FAMILIES[task.family].init(init_key, n, d, task.n_outputs(n))
    return params, _optimizer(config, lr).init(params), data_key


def family_batch_loss(task: Task, params: Params, x: Float[Array, "batch n_features"]) -> Float[Array, ""]:
    """L: the mean over rows of the task's per-row loss, for ``params`` of the task's model family.

    Args:
        task: The search task: its model family, labels and loss.
        params: One model's parameters, of the task's model family.
        x: Input rows, (batch, n_features).

    Returns:
        The scalar loss L.
    """
    prediction = MODEL_FAMILIES[task.family].apply(params, x)
    return jnp.mean(task.sample_loss(prediction, task.labels(x, None)))


def train_chunk(
    task: Task, config: TrainConfig, state, p, lr, steps: Int[Array, " chunk"], capacity: int, axis_name=None
):
    """``len(steps)`` training steps of one model; returns the new state and each step's
    loss. ``capacity`` and ``axis_name``: as in :meth:`Task.sample_inputs`."""
    optimizer = _optimizer(config, lr)

    def step(carry, _):
        params, opt_state, key = carry
        key, batch_key = jax.random.split(key)
        x = task.sample_inputs(batch_key, config.batch_size, config.n_features, p, capacity, axis_name)
        loss, grads = jax.value_and_grad(lambda q: family_batch_loss(task, q, x))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), loss

    return jax.lax.scan(step, state, steps)


def train_models(
    task: Task,
    config: TrainConfig,
    seeds,
    ps,
    lrs,
    chunk_steps: int = 1000,
    on_progress: Callable[[int, int], None] | None = None,
) -> TrainedModels:
    """Train ``len(seeds)`` models (``seeds``, ``ps``, ``lrs`` are equal-length lists, one
    entry per model) in one ``vmap``; returns their stacked parameters, the mean training
    loss of each chunk, shape (models, chunks), and each model's loss at its first step.

    Args:
        task: The search task to train.
        config: The training recipe (see the module docstring); its ``lr`` is not used.
        seeds (Sequence[int] | Array): One seed per model, (models,).
        ps (Sequence[float] | Array): One feature probability in (0, 1] per model, (models,).
        lrs (Sequence[float] | Array): One peak learning rate per model, (models,).
        chunk_steps: Steps per compiled chunk (default 1000); the last chunk may be shorter.
        on_progress: Called as ``on_progress(done_steps, total_steps)`` after each chunk, or None.

    Returns:
        The :class:`TrainedModels`: parameters, each chunk's mean loss and the first step's loss.
    """
    seeds, ps, lrs = jnp.asarray(seeds), jnp.asarray(ps, jnp.float32), jnp.asarray(lrs, jnp.float32)
    state = jax.jit(jax.vmap(lambda s, lr: init_model(task, config, s, lr)))(seeds, lrs)
    capacity = default_capacity(config.batch_size, config.n_features, float(jnp.max(ps)))
    one_model = lambda st, p, lr, t: train_chunk(task, config, st, p, lr, t, capacity, "model")  # noqa: E731
    chunk = jax.jit(jax.vmap(one_model, (0, 0, 0, None), axis_name="model"))
    losses, first, total = [], None, config.total_steps
    for start in range(0, total, chunk_steps):
        state, loss = chunk(state, ps, lrs, jnp.arange(start, min(start + chunk_steps, total)))
        losses.append(np.asarray(loss.mean(axis=1)))
        first = np.asarray(loss[:, 0]) if first is None else first
        if on_progress is not None:
            on_progress(min(start + chunk_steps, total), total)
    return TrainedModels(state[0], np.stack(losses, axis=1), first)
