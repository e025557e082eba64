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
import math
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from .._types import Array, Float, PRNGKeyArray
from ..problem._data import SparseBatch, default_capacity, sample_exactly_one, sample_sparse, to_dense
from ..problem._loss import InputPath, batch_loss, default_multi_capacity
from ..problem._mixing import MIXING_FAMILIES, MIXING_NAMES, make_mixing
from ..problem._model import FeatureMLP, ResidualMLP, init_feature_mlp, init_residual_mlp, to_feature_space
from ..problem._tasks import MIXED_RELU, Task, logged_terms
from ._axes import (
    RunValues,
    hyper_from_config,
    hyper_type,
    neutral_config,
    non_negative,
    positive,
    positive_integer,
    probability,
    traced,
)

SCHEDULES = ("half-cosine", "quarter-cosine", "constant")
DATA_KINDS = ("bernoulli", "exactly-one")
INPUT_PATHS = ("auto", "sparse", "dense")


SPARSE_PATH_MAX_ACTIVES = 3.0  # "auto" input path: sparse on CPU up to n p actives per row


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run. Defaults are the paper's (§4).

    ``zero_diagonal`` zeroes M's diagonal after drawing it (the paper code's low-rank
    experiment does, ``paper_code/nb6_mixing_matrix_rank.py``; the spec's M keep theirs).
    ``scale`` multiplies the mixing matrix in the labels; with ``learn_scale`` it is
    instead trained by the same AdamW, starting at ``scale_init``, and the labels use its
    magnitude |scale| (docs/paper.md §3, as the authors' code does). ``full_model``
    trains Braun et al.'s residual MLP (d_embed wide) through the fixed W_E instead of
    the reduced feature-space MLP. ``input_path`` picks how the loss touches the sparse
    inputs ("auto": sparse on CPU, dense on GPU/TPU); both are exact.
    """

    n_features: int = 100
    d_mlp: int = 50
    d_embed: int = 1000
    batch_size: int = 2048
    steps: int = 10_000
    p: float = traced(0.01, neutral=max, allowed=probability, description="in (0, 1]")
    lr: float = traced(3e-3, neutral=1.0, allowed=positive, description="positive")
    weight_decay: float = traced(1e-2, neutral=0.0, allowed=non_negative, description="non-negative")
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    schedule: Literal["half-cosine", "quarter-cosine", "constant"] = "half-cosine"
    scale_steps_for_sparsity: bool = False
    data: Literal["bernoulli", "exactly-one"] = "bernoulli"
    scale: float = traced(1.0, neutral=1.0)  # before mixing: Hyper keeps its field order
    mixing: str = traced("embedding", neutral="embedding", choices=MIXING_NAMES, description="families")
    mixing_rank: int = traced(10, neutral=1, allowed=positive_integer, description="a positive integer")
    zero_diagonal: bool = False
    learn_scale: bool = False
    scale_init: float = 0.01
    full_model: bool = False
    log_every: int = 100
    input_path: Literal["auto", "sparse", "dense"] = "auto"

    def __post_init__(self):
        for name in ("n_features", "d_mlp", "d_embed", "batch_size", "steps", "log_every", "mixing_rank"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value > 0, f"{name} must be a positive integer, got {value!r}")
        _check(self.d_mlp <= self.n_features, f"d_mlp ({self.d_mlp}) must not exceed n_features ({self.n_features})")
        _check(
            self.mixing_rank <= self.n_features or not getattr(MIXING_FAMILIES.get(self.mixing), "needs_rank", False),
            f"mixing_rank ({self.mixing_rank}) must not exceed n_features ({self.n_features})",
        )
        _check(0.0 < self.p <= 1.0, f"p must be in (0, 1], got {self.p!r}")
        for name in ("lr", "eps"):
            _check(
                math.isfinite(getattr(self, name)) and getattr(self, name) > 0, f"{name} must be positive and finite"
            )
        _check(math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be ≥ 0 and finite")
        _check(0 <= self.b1 < 1 and 0 <= self.b2 < 1, "b1 and b2 must be in [0, 1)")
        _check(math.isfinite(self.scale), f"scale must be finite, got {self.scale!r}")
        _check(math.isfinite(self.scale_init), f"scale_init must be finite, got {self.scale_init!r}")
        _check(self.schedule in SCHEDULES, f"unknown schedule {self.schedule!r}; choose one of {SCHEDULES}")
        _check(self.data in DATA_KINDS, f"unknown data {self.data!r}; choose one of {DATA_KINDS}")
        _check(self.mixing in MIXING_NAMES, f"unknown mixing {self.mixing!r}; choose one of {MIXING_NAMES}")
        _check(self.input_path in INPUT_PATHS, f"unknown input_path {self.input_path!r}; choose one of {INPUT_PATHS}")
        _check(
            not self.full_model or self.mixing == "embedding",
            "full_model realises only the faithful embedding mixing; use mixing='embedding'",
        )
        _check(self.batch_size * self.n_features < 2**31, "batch_size * n_features must be below 2**31")

    @property
    def total_steps(self) -> int:
        """Steps actually run: ``steps``, or ``steps / (1 - (1-p)^n)`` with step scaling.

        The paper's small-p scaling (§4), rounded down, gives 15,773 steps at p = 0.01
        and 105,033 at p = 0.001.
        """
        if not self.scale_steps_for_sparsity:
            return self.steps
        return math.floor(self.steps / (1.0 - (1.0 - self.p) ** self.n_features))

    @property
    def feature_rate(self) -> float:
        """Expected fraction of active features: p, or 1/n for exactly-one data.

        Losses are reported per feature, L / feature_rate (the paper's L/p).
        """
        return 1.0 / self.n_features if self.data == "exactly-one" else self.p

    @property
    def n_logs(self) -> int:
        """History entries: one every ``log_every`` steps, plus the final step."""
        return -(-self.total_steps // self.log_every)

    def resolved_input_path(self, p_max: float | None = None) -> InputPath:
        """``input_path`` with "auto" resolved: sparse on CPU for sparse data, else dense.

        On a 2-core CPU the sparse path beat the dense one at p = 0.02 (n p = 2 actives
        per row; 478 vs 410 model-steps/s) and lost from p = 0.05 on (333 vs 446; at
        p = 0.2, 122 vs 356), so "auto" takes it up to ``n p <= 3`` (``p_max``: the
        largest p of a sweep). Exactly-one data is always sparse on CPU.
        """
        if self.input_path != "auto":
            return self.input_path
        p_max = self.p if p_max is None else p_max
        sparse_data = self.data == "exactly-one" or self.n_features * p_max <= SPARSE_PATH_MAX_ACTIVES
        return "sparse" if jax.default_backend() == "cpu" and sparse_data else "dense"


# Any config class's traced values (its own hyper_type NamedTuple): a config subclass
# that declares more axes has a Hyper of its own.
HyperValues = tuple
Hyper = hyper_type(TrainConfig)
Hyper.__module__ = __name__
Hyper.__doc__ = """Per-model values of :class:`TrainConfig`'s traced fields (:func:`ccjax.engine.traced`),
which may differ under ``vmap``: p, lr, weight_decay, scale, mixing (the family's index
in :data:`ccjax.MIXING_NAMES`) and mixing_rank (the rank of the low-rank families)."""


class Shapes(NamedTuple):
    """The static part of a run: fixed for every model in one compiled call."""

    config: TrainConfig  # traced fields at their neutral values (neutral_config): sweeps share compilations
    capacity: int
    multi_capacity: int
    path: InputPath
    task: Task = MIXED_RELU  # the labels and loss trained on


def shapes_for(config: TrainConfig, p_max: float | None = None, task: Task = MIXED_RELU) -> Shapes:
    """Static shapes for runs of ``config`` on ``task`` whose p never exceeds ``p_max``."""
    task.check_feature_mlp(config.n_features)
    p_max = config.p if p_max is None else p_max
    if config.data == "exactly-one":
        capacity, multi_capacity = config.batch_size, 1
    else:
        capacity = default_capacity(config.batch_size, config.n_features, p_max)
        multi_capacity = default_multi_capacity(config.batch_size, config.n_features, p_max)
    neutral = dataclasses.replace(neutral_config(config, {"p": [p_max]}), input_path="auto")
    return Shapes(neutral, capacity, multi_capacity, config.resolved_input_path(p_max), task)


class RunState(NamedTuple):
    """One model's training state. ``w_e`` is kept only for the full residual model."""

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
    (learned or fixed).
    """

    step: Float[Array, " n_logs"]
    train_loss_per_feature: Float[Array, " n_logs"]
    relu_term_per_feature: Float[Array, " n_logs"]
    mixing_term_per_feature: Float[Array, " n_logs"]
    scale: Float[Array, " n_logs"]


def lr_factor(schedule: str, step, total_steps: int):
    """Learning-rate multiplier at ``step``: half-cosine (paper), quarter-cosine (Braun)."""
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


def train_step(shapes: Shapes, hyper: HyperValues, state: RunState, step, axis_name: str | None = None):
    """One AdamW step of one run (paper §3: sample a batch, loss and gradient, update).

    The step :func:`train` and :func:`ccjax.sweep` repeat inside their compiled loops;
    ``axis_name`` names the ``vmap`` axis of models trained together (``None`` for one).
    Returns the new state and the batch loss L (mean over batch and features).
    """
    config = shapes.config
    batch = sample_batch(shapes, jax.random.fold_in(state.data_key, step), RunValues(config, hyper).p)

    def loss_fn(trainable):
        params = to_feature_space(trainable["params"], state.w_e)
        scale = current_scale(config, hyper, state._replace(trainable=trainable))
        return batch_loss(
            params,
            batch,
            scale * state.mixing,
            batch_size=config.batch_size,
            path=shapes.path,
            multi_capacity=shapes.multi_capacity,
            axis_name=axis_name,
            task=shapes.task,
        )

    loss, grads = jax.value_and_grad(loss_fn)(state.trainable)
    optimizer = _optimizer(config, hyper)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    return state._replace(trainable=trainable, opt_state=opt_state), loss


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

    Pure and jittable with ``config`` static: ``jax.jit(train, static_argnums=0)``.
    ``hyper`` overrides the config's p, lr, weight decay and scale with traced values.
    ``initial_params`` starts from given feature-space weights instead of the random
    init (fine-tuning; fresh optimizer state, M and data still from ``key``; see
    :func:`init_run`). For many models use :func:`ccjax.sweep`, which also shards
    and shows progress.

    To ``vmap`` it over models yourself, name the axis and pass the same name, e.g.
    ``jax.vmap(functools.partial(train, config, axis_name="models"), axis_name="models")``:
    the models then share the decision to take a rare branch (a batch that overflowed its
    sparse capacity), which otherwise runs on every step under ``vmap`` (4 models at paper
    shapes on CPU: 4x the CPU time per step on the sparse path, 1.8x on the dense path).
    Results are the same either way.
    """
    hyper = hyper_from_config(config) if hyper is None else hyper
    expected = hyper_type(type(config))._fields
    _check(getattr(hyper, "_fields", None) == expected, f"hyper must hold the traced fields {expected}")
    shapes = shapes_for(config, task=task)
    state = init_run(config, key, hyper, initial_params)
    state, history = run_intervals(shapes, hyper, state, 0, config.n_logs, axis_name)
    return state.trainable["params"], history
