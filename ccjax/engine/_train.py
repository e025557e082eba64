"""Training one CC model: a frozen config and a pure training run (docs/paper.md §4).

``train(config, key) -> (params, history)`` is one pure, jittable function. Shapes and
structure come from the (hashable, static) :class:`TrainConfig`; its fields declared
with :func:`~ccjax.engine.traced` (p, lr, weight decay, mixing family, mixing scale and
rank) travel as a traced :class:`Hyper`, so a sweep can ``vmap`` one run over them. Code
here reads the config through :class:`~ccjax.engine._axes.RunValues`, so a field made traced is
read from its traced value without further edits. The sweep (:mod:`ccjax.sweep`) reuses
the pieces below (:func:`init_run`, :func:`run_intervals`) to run in host-visible chunks.

Randomness: ``key`` is split into a mixing key (W_E and M), an init key and a data key;
step t's batch uses ``fold_in(data_key, t)``. Runs that share a key share W_E, the
initial weights and the data stream (common random numbers).
"""

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._types import Array, Float, PRNGKeyArray
from ..problem._data import SparseBatch, default_capacity, sample_exactly_one, sample_sparse, to_dense
from ..problem._loss import (
    InputPath,
    batch_loss,
    default_extra_capacity,
    default_multi_capacity,
    default_row_capacity,
    needs_whole_batch,
)
from ..problem._mixing import make_mixing
from ..problem._model import FeatureMLP, ResidualMLP, init_feature_mlp, init_residual_mlp, to_feature_space
from ..problem._tasks import MIXED_RELU, Task, logged_terms
from ._axes import (
    RunValues,
    hyper_from_config,
    hyper_type,
    neutral_config,
)
from ._config import HyperValues, InputPathChoice, TrainConfig, _check


class Shapes(NamedTuple):
    """The static part of a run: fixed for every model in one compiled call.

    Attributes:
        config: The config with its traced fields at their neutral values (:func:`neutral_config
            <ccjax.engine._axes.neutral_config>`), so that sweeps share compilations.
        capacity: Sparse entry slots per batch (:func:`~ccjax.problem.default_capacity` at the largest p).
        multi_capacity: Rows with two or more actives the sparse loss path holds.
        path: The loss's input path, ``"sparse"`` or ``"dense"`` (:meth:`TrainConfig.input_path_choice`
            for one model; :func:`ccjax.sweep` resolves it again for its models per device group).
        task: The labels and loss trained on.
        row_capacity: Non-empty rows the dense path runs (:func:`~ccjax.problem.default_row_capacity`), or
            None for the whole batch (the dense step before compaction: ``shapes._replace(row_capacity=None)``).
        extra_capacity: Entries past the second of their row the sparse path holds
            (:func:`~ccjax.problem.default_extra_capacity`), which selects its Gram form, on a CPU
            (:func:`extra_capacity_for`); None for the direct form (the sparse step before it:
            ``shapes._replace(extra_capacity=None)``, and the step on other platforms).
    """

    config: TrainConfig  # traced fields at their neutral values (neutral_config): sweeps share compilations
    capacity: int
    multi_capacity: int
    path: InputPath
    task: Task = MIXED_RELU  # the labels and loss trained on
    row_capacity: int | None = None  # non-empty rows the dense path runs; None: the whole batch
    extra_capacity: int | None = None  # sparse path: the Gram form's extras; None: the direct form


def input_path_for(
    config: TrainConfig, p_max: float, task: Task, models_together: int = 1, platform: str | None = None
) -> InputPathChoice:
    """:meth:`TrainConfig.input_path_choice`, except that a task without a ``sparse_sse`` hook
    always takes the dense path (:func:`~ccjax.problem.batch_loss`)."""
    if task.sparse_sse is None:
        return InputPathChoice("dense", f"the task {task.name!r} has no sparse_sse hook, so only the dense path")
    return config.input_path_choice(p_max, models_together, platform)


# The sparse step's Gram form was measured faster on a CPU only (docs/performance.md, "The sparse
# step on a CPU"); elsewhere the sparse step keeps the direct form it was measured with.
GRAM_FORM_PLATFORMS = ("cpu",)


def extra_capacity_for(config: TrainConfig, p_max: float, platform: str | None = None) -> int | None:
    """:attr:`Shapes.extra_capacity` on ``platform``: the Gram form's extras
    (:func:`~ccjax.problem.default_extra_capacity`) on a CPU, where it was measured faster;
    None (the direct form) elsewhere and for exactly-one data.

    Args:
        config: The runs' config.
        p_max: The largest p of the runs.
        platform: The platform the runs compile for (default: ``jax.default_backend()``).

    Returns:
        The extra capacity, or None.
    """
    if config.data == "exactly-one" or (platform or jax.default_backend()) not in GRAM_FORM_PLATFORMS:
        return None
    return default_extra_capacity(config.batch_size, config.n_features, p_max)


def shapes_for(config: TrainConfig, p_max: float | None = None, task: Task = MIXED_RELU) -> Shapes:
    """Static shapes for runs of ``config`` on ``task`` whose p never exceeds ``p_max``.

    Args:
        config: The run's config.
        p_max: The largest p of the runs (default: ``config.p``); it sizes the sparse batches.
        task: The labels and loss trained on.

    Returns:
        The shapes of the compiled run.

    Raises:
        ValueError: If ``task`` cannot be trained by :func:`ccjax.train` (:meth:`Task.check_feature_mlp`).
    """
    task.check_feature_mlp(config.n_features)
    p_max = config.p if p_max is None else p_max
    if config.data == "exactly-one":
        capacity, multi_capacity, row_capacity = config.batch_size, 1, None
    else:
        capacity = default_capacity(config.batch_size, config.n_features, p_max)
        multi_capacity = default_multi_capacity(config.batch_size, config.n_features, p_max)
        row_capacity = default_row_capacity(config.batch_size, config.n_features, p_max)
    neutral = dataclasses.replace(neutral_config(config, {"p": [p_max]}), input_path="auto")
    path = input_path_for(config, p_max, task).path
    return Shapes(neutral, capacity, multi_capacity, path, task, row_capacity, extra_capacity_for(config, p_max))


class RunState(NamedTuple):
    """One model's training state. ``w_e`` is kept only for the full residual model.

    Attributes:
        trainable: ``{"params": weights}``, plus ``"scale"`` (a float32 scalar) with ``learn_scale``;
            the weights are a :class:`~ccjax.FeatureMLP`, or a :class:`~ccjax.problem.ResidualMLP`
            for ``full_model``.
        opt_state: AdamW's state for ``trainable``.
        mixing: The unscaled mixing matrix M, (n_features, n_features).
        w_e: The embedding W_E, (n_features, d_embed), for the full model; None otherwise.
        data_key: The data key; step t's batch is drawn from ``fold_in(data_key, t)``.
    """

    trainable: dict
    opt_state: optax.OptState
    mixing: Float[Array, "n_features n_features"]
    w_e: Float[Array, "n_features d_embed"] | None
    data_key: PRNGKeyArray


class History(NamedTuple):
    """Logged every ``log_every`` steps (and at the last step); every loss is L/p, as the
    ``_per_feature`` in its name says (L, the mean over batch and features, divided by p).

    ``train_loss_per_feature`` is the mean training loss over the interval;
    ``relu_term_per_feature`` and ``mixing_term_per_feature`` split the loss on a fresh batch
    at the logged step (they sum to it; for a task without the ``loss_split`` hook, the ReLU
    term is that whole loss and the mixing term 0). ``scale`` is the mixing scale in use
    (learned or fixed). Each field is (n_logs,) for one run, with leading model or grid axes
    when stacked.

    Attributes:
        step: The step of each log (the end of its interval), as float32.
        train_loss_per_feature: The mean training loss over the interval, L/p.
        relu_term_per_feature: The ReLU term on a fresh batch at the logged step, L/p.
        mixing_term_per_feature: The mixing term on the same batch, L/p.
        scale: The mixing scale |s| in the labels at the logged step.
    """

    step: Float[Array, " n_logs"]
    train_loss_per_feature: Float[Array, " n_logs"]
    relu_term_per_feature: Float[Array, " n_logs"]
    mixing_term_per_feature: Float[Array, " n_logs"]
    scale: Float[Array, " n_logs"]


def lr_factor(schedule: str, step, total_steps: int):
    """Learning-rate multiplier at ``step``: half-cosine (paper), quarter-cosine (Braun).

    docs/paper.md §4: ``0.5 (1 + cos(π t/T))`` or ``cos(π/2 · t/(T - 1))``.

    Args:
        schedule: ``"half-cosine"``, ``"quarter-cosine"`` or any other value for a constant 1.
        step (int | Array): The step t (an int or a traced scalar).
        total_steps: The run's total steps T.

    Returns:
        (Array): The multiplier, a float32 scalar (the shape of ``step``).
    """
    t = jnp.asarray(step, jnp.float32)
    if schedule == "half-cosine":
        return 0.5 * (1.0 + jnp.cos(jnp.pi * t / total_steps))
    if schedule == "quarter-cosine":
        return jnp.cos(0.5 * jnp.pi * t / max(total_steps - 1, 1))
    return jnp.ones_like(t)


def _optimizer(config: TrainConfig, hyper: HyperValues) -> optax.GradientTransformation:
    """AdamW with the schedule; built from traced values so it can differ per model."""
    run = RunValues(config, hyper)
    total = config.total_steps
    return optax.adamw(
        lambda count: run.lr * lr_factor(config.schedule, count, total),
        b1=run.b1,
        b2=run.b2,
        eps=run.eps,
        weight_decay=run.weight_decay,
    )


def current_scale(config: TrainConfig, hyper: HyperValues, state: RunState) -> Float[Array, ""]:
    """The mixing scale in the labels: the fixed ``hyper.scale``, or the magnitude of the
    learned one (docs/paper.md §3; the authors' ``mlpinsoup.py`` puts |scale| in the labels)."""
    return jnp.abs(state.trainable["scale"]) if config.learn_scale else RunValues(config, hyper).scale


def feature_params(state: RunState) -> FeatureMLP:
    """The model as feature-space weights (mapped through W_E for the full model)."""
    return to_feature_space(state.trainable["params"], state.w_e)


def check_initial_params(config: TrainConfig, initial_params: FeatureMLP, lead: tuple[int, ...] = ()) -> None:
    """Raise a ValueError unless ``initial_params`` fits ``config`` with leading axes ``lead``.

    Only feature-space weights (:class:`FeatureMLP`) can start a run, so ``full_model``
    configs are rejected. Shapes are static, so this also works on traced weights.
    """
    if config.full_model:
        raise ValueError(
            "initial_params is not supported with full_model=True (only feature-space FeatureMLP weights can "
            "start a run); train the reduced model (full_model=False) to fine-tune"
        )
    if not isinstance(initial_params, FeatureMLP):
        raise ValueError(f"initial_params must be a ccjax.FeatureMLP, got {type(initial_params).__name__}")
    n, d = config.n_features, config.d_mlp
    for name, tail, what in (("w_in", (n, d), "(n_features, d_mlp)"), ("w_out", (d, n), "(d_mlp, n_features)")):
        actual, expected = tuple(np.shape(getattr(initial_params, name))), (*lead, *tail)
        if actual != expected:
            where = f"the grid shape {lead} + {what}" if lead else what
            raise ValueError(f"initial_params.{name} has shape {actual}; expected {expected}, {where}")


def init_run(
    config: TrainConfig, key: PRNGKeyArray, hyper: HyperValues, initial_params: FeatureMLP | None = None
) -> RunState:
    """Mixing matrix, initial weights, optimizer state and data key for one run.

    ``initial_params`` (a :class:`FeatureMLP`) replaces the random initial weights, so a
    run can continue from given weights (fine-tuning); the optimizer state is fresh and
    the mixing matrix and data key are still drawn from ``key``. A learned scale still
    starts at ``scale_init``. Not supported with ``full_model``.

    Args:
        config: The run's config.
        key: The run's key, split into the mixing (W_E and M), init and data keys.
        hyper: The run's traced values (:func:`~ccjax.engine.hyper_from_config` for the config's own).
        initial_params: Feature-space weights to start from, (n_features, d_mlp) and (d_mlp, n_features);
            None for the random init.

    Returns:
        The initial state of the run.

    Raises:
        ValueError: If ``initial_params`` is not a :class:`FeatureMLP` of the config's shapes, or the
            config has ``full_model``.
    """
    run = RunValues(config, hyper)
    mixing_key, init_key, data_key = jax.random.split(key, 3)
    mixing, w_e = make_mixing(run.mixing, mixing_key, config.n_features, config.d_embed, run.mixing_rank)
    if config.zero_diagonal:
        mixing = mixing * (1.0 - jnp.eye(config.n_features, dtype=mixing.dtype))
    params: FeatureMLP | ResidualMLP
    if initial_params is not None:
        check_initial_params(config, initial_params)
        params = jax.tree.map(lambda leaf: jnp.asarray(leaf, jnp.float32), initial_params)
        w_e = None
    elif config.full_model:
        params = init_residual_mlp(init_key, config.n_features, config.d_mlp, config.d_embed)
    else:
        params = init_feature_mlp(init_key, config.n_features, config.d_mlp)
        w_e = None
    trainable = {"params": params}
    if config.learn_scale:
        trainable["scale"] = jnp.float32(run.scale_init)
    opt_state = _optimizer(config, hyper).init(trainable)
    return RunState(trainable, opt_state, mixing, w_e, data_key)


def sample_batch(shapes: Shapes, key: PRNGKeyArray, p) -> SparseBatch:
    """The training batch distribution of the config (Bernoulli-p or exactly-one)."""
    config = shapes.config
    if config.data == "exactly-one":
        return sample_exactly_one(key, config.batch_size, config.n_features)
    return sample_sparse(key, config.batch_size, config.n_features, p, shapes.capacity)


def train_step(
    shapes: Shapes, hyper: HyperValues, state: RunState, step, axis_name: str | None = None, rare_branches: bool = True
):
    """One AdamW step of one run (paper §4: sample a batch, loss and gradient, update).

    The step :func:`train` and :func:`ccjax.sweep` repeat inside their compiled loops.

    Args:
        shapes: The run's static shapes (:func:`shapes_for`).
        hyper: The run's traced values.
        state: The run's state before the step.
        step (int | Array): The step t (an int or a traced scalar); its batch is drawn from ``fold_in(data_key, t)``.
        axis_name: The ``vmap`` axis of models trained together (``None`` for one).
        rare_branches: False compiles only the path almost every step takes, without the fallbacks
            of :func:`~ccjax.problem.batch_loss`: for measuring its cost, never for training.

    Returns:
        (tuple[RunState, Array]): ``(state, loss)``: the new state and the batch loss L (mean over
            batch and features, not L/p).
    """
    config = shapes.config
    batch = sample_batch(shapes, jax.random.fold_in(state.data_key, step), RunValues(config, hyper).p)
    loss, grads = _loss_and_grads(shapes, hyper, state, batch, axis_name, rare_branches)
    optimizer = _optimizer(config, hyper)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    return state._replace(trainable=trainable, opt_state=opt_state), loss


def _loss_and_grads(shapes: Shapes, hyper: HyperValues, state: RunState, batch: SparseBatch, axis_name, rare_branches):
    """L of ``batch`` and its gradient in the trainable values. The fallback to the whole batch
    (:func:`~ccjax.problem.needs_whole_batch`) is decided outside the differentiation, so each
    branch keeps its own residuals: the fast branch does not carry the whole batch's dense
    activations (20% of the CPU step at paper shapes)."""
    config = shapes.config
    options = dict(
        batch_size=config.batch_size,
        path=shapes.path,
        multi_capacity=shapes.multi_capacity,
        axis_name=axis_name,
        task=shapes.task,
        row_capacity=shapes.row_capacity,
        extra_capacity=shapes.extra_capacity,
    )

    def loss_fn(trainable, branch):
        params = to_feature_space(trainable["params"], state.w_e)
        scale = current_scale(config, hyper, state._replace(trainable=trainable))
        return batch_loss(params, batch, scale * state.mixing, branch=branch, **options)

    def on(branch):
        return lambda trainable: jax.value_and_grad(loss_fn)(trainable, branch)

    whole = needs_whole_batch(batch, config.n_features, **options) if rare_branches else None
    if whole is None:
        return on("auto" if rare_branches else "fast")(state.trainable)
    return lax.cond(whole, on("whole"), on("fast"), state.trainable)


def _feature_rate(config: TrainConfig, hyper: HyperValues):
    """The per-model divisor of L in L/p (p, or 1/n for exactly-one data)."""
    return jnp.float32(1.0 / config.n_features) if config.data == "exactly-one" else RunValues(config, hyper).p


def _log_terms(shapes: Shapes, hyper: HyperValues, state: RunState, step, axis_name):
    """ReLU and mixing terms (L/p) on a fresh dense batch at ``step`` (:func:`~ccjax.problem._tasks.logged_terms`)."""
    config = shapes.config
    log_key = jax.random.fold_in(jax.random.fold_in(state.data_key, step), 1)
    batch = sample_batch(shapes, log_key, RunValues(config, hyper).p)
    x = to_dense(batch, config.batch_size, config.n_features, axis_name)
    scale = current_scale(config, hyper, state)
    relu_term, mixing_term = logged_terms(shapes.task, feature_params(state), x, state.mixing, scale)
    rate = _feature_rate(config, hyper)
    return relu_term / rate, mixing_term / rate, jnp.abs(scale)


def run_intervals(
    shapes: Shapes,
    hyper: HyperValues,
    state: RunState,
    first_interval,
    n_intervals: int,
    axis_name: str | None = None,
) -> tuple[RunState, History]:
    """Run ``n_intervals`` logging intervals of ``log_every`` steps from ``first_interval``.

    Steps at or past ``total_steps`` are skipped (so a fixed-size chunk can end a run);
    the skip is a real branch because the step counter is shared by all models. Pass the
    ``vmap`` axis name when the run is vmapped over models, so the rare data branches
    stay real branches too (:func:`ccjax.problem._data.any_across`).
    """
    config = shapes.config
    total = config.total_steps

    def step_body(state, step):
        def do(state):
            return train_step(shapes, hyper, state, step, axis_name)

        state, loss = lax.cond(step < total, do, lambda s: (s, jnp.float32(0.0)), state)
        return state, loss

    def interval_body(state, interval):
        start = interval * config.log_every
        steps = start + jnp.arange(config.log_every)
        state, losses = lax.scan(step_body, state, steps)
        n_run = jnp.clip(total - start, 0, config.log_every)
        last = jnp.minimum(start + config.log_every, total)
        relu_term, mixing_term, scale = _log_terms(shapes, hyper, state, last, axis_name)
        train_loss = jnp.sum(losses) / jnp.maximum(n_run, 1) / _feature_rate(config, hyper)
        return state, History(last.astype(jnp.float32), train_loss, relu_term, mixing_term, scale)

    intervals = first_interval + jnp.arange(n_intervals)
    return lax.scan(interval_body, state, intervals)


def train(
    config: TrainConfig,
    key: PRNGKeyArray,
    hyper: HyperValues | None = None,
    initial_params: FeatureMLP | None = None,
    *,
    axis_name: str | None = None,
    task: Task = MIXED_RELU,
) -> tuple[FeatureMLP | ResidualMLP, History]:
    """Train one model from ``key`` on ``task`` (default: the paper's labels ``relu(x) + s M x``
    under MSE); returns the trained weights and the loss history.

    Pure and jittable with ``config`` static: ``jax.jit(train, static_argnums=0)``; the
    training of docs/paper.md §4. For many models use :func:`ccjax.sweep`, which also shards
    and shows progress.

    Args:
        config: The run's config (static).
        key: The run's key; runs that share it share W_E, M, the initial weights and the data.
        hyper: Traced values overriding the config's traced fields (p, lr, weight decay, scale,
            mixing, mixing_rank), as the config's ``Hyper``; None: the config's own.
        initial_params: Feature-space weights to start from instead of the random init (fine-tuning;
            fresh optimizer state, M and data still from ``key``; see :func:`init_run`), or None.
        axis_name: To ``vmap`` it over models yourself, name the axis and pass the same name, e.g.
            ``jax.vmap(functools.partial(train, config, axis_name="models"), axis_name="models")``:
            the models then share the decision to take a rare branch (a batch that overflowed its
            sparse capacity), which otherwise runs on every step under ``vmap`` (4 models at paper
            shapes on CPU: 4x the CPU time per step on the sparse path, 1.8x on the dense path).
            Results are the same either way.
        task: The labels and loss (default: the paper's); it must train the reduced MLP on the
            default inputs (:meth:`Task.check_feature_mlp`).

    Returns:
        ``(params, history)``: the trained weights (a :class:`FeatureMLP`, or a :class:`ResidualMLP`
            with ``full_model``) and the :class:`History`, (n_logs,) per field.

    Raises:
        ValueError: If ``hyper`` lacks the config's traced fields, ``task`` cannot be trained
            here, or ``initial_params`` does not fit the config.
    """
    hyper = hyper_from_config(config) if hyper is None else hyper
    expected = hyper_type(type(config))._fields
    _check(getattr(hyper, "_fields", None) == expected, f"hyper must hold the traced fields {expected}")
    shapes = shapes_for(config, task=task)
    state = init_run(config, key, hyper, initial_params)
    state, history = run_intervals(shapes, hyper, state, 0, config.n_logs, axis_name)
    return state.trainable["params"], history
