"""Sweeps: a grid of training runs as one jitted, vmapped, sharded computation.

Named axes (``seed`` and any traced config field: ``p``, ``lr``, ``weight_decay``,
``mixing``, ``scale``, ``mixing_rank``; :mod:`ccjax.engine`) are flattened onto one *model*
axis, in row-major grid order. ``seed`` picks the run's key
(:func:`~ccjax.problem.seed_key`: threefry), so runs that share a seed share W_E, M, the initial weights
and the data stream; seeds share nothing. The model axis is padded to a multiple of
the device count and sharded over a 1-D mesh ``("model",)`` with ``NamedSharding``;
inside the compiled call each device (``shard_map``) runs its models in ``vmap``-ed
groups (:func:`default_group_size`). Under ``jax.distributed`` the mesh spans every
process's devices: each process initialises and trains only its own models, and the
host-side results (history, checkpoints, trained models) are gathered to every process.

Training runs in chunks: one compiled call runs ``chunk_intervals`` logging intervals
for every model, and the host reports progress between calls. The chunk function is
compiled once per shape (the swept values are traced), ahead of time, so compile time
is reported separately from run time.

:func:`sweep` is four steps: plan (:func:`ccjax.engine._sweep_plan.make_plan`, compiles
nothing), then (:func:`_run_plan`) initialise or restore (:func:`_start_or_resume`),
run the chunks (:func:`_run_chunks`) and assemble the result (:func:`_assemble`).
"""

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from ..problem._keys import seed_key
from ..problem._mixing import MIXING_NAMES
from ..problem._model import FeatureMLP
from ..problem._tasks import MIXED_RELU, Task
from ._axes import traced_axes
from ._checkpoint import CheckpointError, SweepCheckpoint, host_leaves, is_key, restore_state
from ._config import HyperValues, InputPathChoice, TrainConfig
from ._sharding import MODEL_AXIS, local_models, pad_models, put_models, same_on_every_process, to_host
from ._sweep_plan import Call, Grid, SweepOptions, SweepPlan, default_group_size, make_grid, make_plan, plan_sweep
from ._train import (
    History,
    RunState,
    Shapes,
    current_scale,
    feature_params,
    init_run,
    run_intervals,
)

__all__ = [  # with the planning names re-exported from ccjax.engine
    "GROUP_AXIS",
    "Grid",
    "Progress",
    "SweepResult",
    "default_group_size",
    "diverged_points",
    "make_grid",
    "plan_sweep",
    "sweep",
]

GROUP_AXIS = "group"  # vmap axis of the models run together on one device


def _init_all(
    shapes: Shapes, family: int | None, seeds, hyper: HyperValues, initial_params: FeatureMLP | None = None
) -> RunState:
    """Every model's initial state, one model at a time (``lax.map``, not ``vmap``): a
    batched matmul's rounding can depend on the batch size, and a model's start must not
    depend on how many models share the call. ``family``: the mixing family's index when
    every model has the same one, so that only that family compiles (the ``lax.switch`` over
    all of them took 3.8 s to compile against 1.3 s for one, on the 2-core CPU); None when
    the sweep varies it."""

    def one(model):
        seed, hyper, weights = model
        hyper = hyper if family is None else hyper._replace(mixing=family)
        return init_run(shapes.config, seed_key(seed), hyper, weights)

    return lax.map(one, (seeds, hyper, initial_params))


def _chunk(
    shapes: Shapes, n_intervals: int, group_size: int, mesh: Mesh, state: RunState, hyper: HyperValues, first_interval
):
    """One compiled chunk for all models.

    Each device takes its shard of the model axis (``shard_map``) and runs it in groups
    of ``group_size`` models: a group is ``vmap``-ed, groups follow one another
    (``lax.map``). On CPU small groups keep each step's arrays in cache; on GPU/TPU one
    group holds every local model.
    """
    _chunk.traces += 1  # trace-time counter, read by tests

    def run_group(group):
        state, hyper = group
        if group_size == 1:  # no vmap: XLA CPU runs batch-1 batched matmuls far slower
            squeeze = lambda a: a[0]  # noqa: E731
            out = run_intervals(shapes, *jax.tree.map(squeeze, (hyper, state)), first_interval, n_intervals)
            return jax.tree.map(lambda a: a[None], out)
        run = lambda s, h: run_intervals(shapes, h, s, first_interval, n_intervals, axis_name=GROUP_AXIS)  # noqa: E731
        return jax.vmap(run, axis_name=GROUP_AXIS)(state, hyper)

    def local(state, hyper):
        group = lambda a: a.reshape((-1, group_size) + a.shape[1:])  # noqa: E731
        ungroup = lambda a: a.reshape((-1,) + a.shape[2:])  # noqa: E731
        out = lax.map(run_group, jax.tree.map(group, (state, hyper)))
        return jax.tree.map(ungroup, out)

    spec = PartitionSpec(MODEL_AXIS)
    return jax.shard_map(local, mesh=mesh, in_specs=(spec, spec), out_specs=(spec, spec), check_vma=False)(state, hyper)


_chunk.traces = 0
_chunk_jit = jax.jit(_chunk, static_argnums=(0, 1, 2, 3), donate_argnums=(4,))
_init_jit = jax.jit(_init_all, static_argnums=(0, 1))


def _one_family(plan: SweepPlan) -> int | None:
    """The index of the mixing family every model of ``plan`` has, or None if the grid varies it."""
    if "mixing" in plan.grid.names or "mixing" not in traced_axes(type(plan.config)):
        return None
    return MIXING_NAMES.index(plan.config.mixing)


class Progress(NamedTuple):
    """What the host knows after each chunk (passed to ``on_progress``).

    Attributes:
        steps_done: Steps trained so far (including those before a resume).
        total_steps: Steps of the whole run.
        n_models: Models in the sweep.
        compile_seconds: Seconds spent initialising (or restoring) and compiling before training.
        run_seconds: Seconds spent training so far in this call (not counting before a resume).
        history: The chunk's history, (n_models, intervals); it may hold padding rows past
            ``n_models`` and intervals past the last step.
        diverged: The models that diverged in this chunk, each :meth:`Grid.point` plus ``"step"``.
        n_diverged: Models diverged so far.
    """

    steps_done: int
    total_steps: int
    n_models: int
    compile_seconds: float
    run_seconds: float
    history: History  # the chunk's history, (n_models, intervals)
    diverged: tuple[dict, ...] = ()  # models that diverged in this chunk (:meth:`Grid.point` + "step")
    n_diverged: int = 0  # models diverged so far


class SweepResult(NamedTuple):
    """Trained models and histories, with leading grid axes ``grid.shape``.

    ``diverged_step`` is the first logged step at which a model's loss or weights were
    NaN or infinite, and -1 for models that stayed finite. A diverged model's weights
    and history are kept as they are (non-finite); the other models are unaffected.

    Attributes:
        config: The config of the sweep.
        grid: The sweep's grid.
        params: Feature-space weights (full models are mapped through W_E), (*grid, n, d_mlp)
            and (*grid, d_mlp, n).
        mixing: The unscaled M of every model, (*grid, n, n).
        scale: The mixing scale in the labels (learned or fixed), (*grid,).
        history: The training history, each field (*grid, n_logs).
        compile_seconds: Seconds spent initialising (or restoring) and compiling.
        run_seconds: Seconds spent training.
        n_devices: Devices the models were sharded over.
        diverged_step: (*grid,) int64, the first non-finite logged step; -1 where the model stayed finite.
        models_per_call: Models trained by one compiled call.
        task: The labels and loss the models were trained on.
        input_path: The loss's input path the models trained on and why (:meth:`TrainConfig.input_path_choice`
            for the models vmapped together on a device); None where not recorded.
    """

    config: TrainConfig
    grid: Grid
    params: FeatureMLP  # feature-space weights (full models are mapped through W_E)
    mixing: np.ndarray  # (*grid, n, n), unscaled M
    scale: np.ndarray  # (*grid,), the mixing scale in the labels (learned or fixed)
    history: History  # each field (*grid, n_logs)
    compile_seconds: float
    run_seconds: float
    n_devices: int
    diverged_step: np.ndarray  # (*grid,), -1 where the model stayed finite
    models_per_call: int
    task: Task = MIXED_RELU  # the labels and loss the models were trained on
    input_path: InputPathChoice | None = None  # the path trained on and why

    @property
    def scaled_mixing(self) -> np.ndarray:
        """The label map ``s M`` of every model, (*grid, n, n)."""
        return np.asarray(self.scale)[..., None, None] * self.mixing

    @property
    def diverged(self) -> np.ndarray:
        """(*grid,) True where the model's loss became NaN or infinite."""
        return self.diverged_step >= 0

    def diverged_points(self) -> list[dict]:
        """Grid coordinates (and ``step``) of every diverged model, in grid order.

        Returns:
            One :meth:`Grid.point` dict per diverged model, with ``"step"``: the step it diverged by.
        """
        return diverged_points(self.grid, self.diverged_step.reshape(-1))


def diverged_points(grid: Grid, diverged_step: np.ndarray) -> list[dict]:
    """``grid.point(i) | {"step": s}`` for every flat model ``i`` with ``diverged_step[i] >= 0``."""
    return [grid.point(index) | {"step": int(diverged_step[index])} for index in np.flatnonzero(diverged_step >= 0)]


def _first_non_finite_step(history: History) -> np.ndarray:
    """Per model, the step of the first log with a non-finite value (-1 if none)."""
    bad = (
        ~np.isfinite(history.train_loss_per_feature)
        | ~np.isfinite(history.relu_term_per_feature)
        | ~np.isfinite(history.mixing_term_per_feature)
    )
    bad |= ~np.isfinite(history.scale)
    first = np.argmax(bad, axis=1)
    return np.where(bad.any(axis=1), np.asarray(history.step)[np.arange(len(first)), first], -1).astype(np.int64)


def _take(leaf, models: slice, padded: int):
    """Models ``models`` of a stacked host leaf, padded to ``padded`` (key arrays too)."""
    if is_key(leaf):
        data = pad_models(np.asarray(jax.random.key_data(leaf))[models], padded)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    return pad_models(np.asarray(leaf)[models], padded)


@dataclasses.dataclass
class _Training:
    """Where training stands: each call's state (None until it first runs; parked on the
    host between turns when there are several calls), the host history so far, the next
    logging interval, and each model's first non-finite step (-1: none)."""

    states: list
    histories: list[History]
    first_interval: int
    diverged_step: np.ndarray


def _initial_state(plan: SweepPlan, call: Call) -> RunState:
    """This process's models of ``call``, initialised on one device, then sharded: XLA:CPU
    deadlocked running the QR of the flat-spectrum mixing family on several CPU devices at
    once (jax 0.10.2)."""
    own = jax.tree.map(lambda leaf: leaf[plan.rows], (call.seeds, call.hyper, call.initial_params))
    return put_models(_init_jit(plan.shapes, _one_family(plan), *own), plan.sharding, plan.padded, plan.rows)


def _on_devices(plan: SweepPlan, state: RunState) -> RunState:
    """A call's state on the mesh: as it is, or from this process's parked rows."""
    if all(isinstance(leaf, jax.Array) and leaf.sharding == plan.sharding for leaf in jax.tree.leaves(state)):
        return state
    return put_models(state, plan.sharding, plan.padded, plan.rows)


def _start_or_resume(plan: SweepPlan, resume: SweepCheckpoint | None) -> _Training:
    """Fresh training (the first call initialised), or the state of ``resume`` on the devices."""
    if resume is None:
        training = _Training([None] * plan.n_calls, [], 0, np.full(plan.grid.size, -1, np.int64))
    else:
        first = plan.calls[0]
        template = jax.eval_shape(
            lambda: _init_jit(plan.shapes, _one_family(plan), first.seeds, first.hyper, first.initial_params)
        )
        restored = restore_state(resume, template, plan.fingerprint, plan.grid.size)
        take = lambda leaf, c: _take(leaf, c.models, plan.padded)[plan.rows]  # noqa: E731
        states = [jax.tree.map(lambda leaf, c=c: take(leaf, c), restored) for c in plan.calls]
        training = _Training(states, [resume.history], resume.intervals_done, _first_non_finite_step(resume.history))
    if not same_on_every_process(training.first_interval):
        raise CheckpointError(
            "the processes would resume from different checkpoints (or none): every process must read the same "
            "checkpoint, so keep them on a file system that all processes see"
        )
    state = training.states[0]
    training.states[0] = _initial_state(plan, plan.calls[0]) if state is None else _on_devices(plan, state)
    return training


def _compile(plan: SweepPlan, state: RunState, hyper):
    """The chunk function of the plan's shapes, compiled ahead of time."""
    args = (plan.shapes, plan.chunk_intervals, plan.group_size, plan.mesh, state, hyper, jnp.int32(0))
    return _chunk_jit.lower(*args).compile()


def _host_state(plan: SweepPlan, states: list) -> tuple[np.ndarray, ...]:
    """Every model's state leaves as whole host arrays (for a checkpoint)."""
    whole = plan.rows == slice(0, plan.padded)  # else parked rows of one process: gather them through the mesh
    per_call = [
        host_leaves(state if whole else _on_devices(plan, state), call.n_models)
        for state, call in zip(states, plan.calls, strict=True)
    ]
    return tuple(np.concatenate(parts) for parts in zip(*per_call, strict=True))


def _run_chunk(plan: SweepPlan, compiled, training: _Training, hypers: list, first: int) -> History:
    """Every call trained for one chunk of intervals from ``first`` (``training.states``
    updated); returns the chunk's host history, (n_models, intervals run)."""
    parts = []
    for index, call in enumerate(plan.calls):
        state = training.states[index]
        state = _initial_state(plan, call) if state is None else _on_devices(plan, state)
        state, history = compiled(state, hypers[index], jnp.int32(first))
        # One call keeps its state on the devices; several take turns, parked on the host.
        training.states[index] = state if plan.n_calls == 1 else local_models(state, plan.rows)
        parts.append(jax.tree.map(lambda a, n=call.n_models: to_host(a)[:n], history))
    kept = min(plan.chunk_intervals, plan.config.n_logs - first)
    return History(*(np.concatenate(field, axis=0)[:, :kept] for field in zip(*parts, strict=True)))


def _run_chunks(
    plan: SweepPlan,
    compiled,
    training: _Training,
    hypers: list,
    compile_seconds: float,
    on_progress: Callable[[Progress], None] | None,
    on_checkpoint: Callable[[SweepCheckpoint], None] | None,
) -> float:
    """Train to the last step, one chunk after another, reporting after each; returns the run seconds."""
    config, grid = plan.config, plan.grid
    run_start = time.perf_counter()
    for first in range(training.first_interval, config.n_logs, plan.chunk_intervals):
        history = _run_chunk(plan, compiled, training, hypers, first)
        training.histories.append(history)
        new_step = np.where(training.diverged_step < 0, _first_non_finite_step(history), -1)
        training.diverged_step = np.where(new_step >= 0, new_step, training.diverged_step)
        if on_progress is not None:
            steps_done = min((first + plan.chunk_intervals) * config.log_every, config.total_steps)
            elapsed = time.perf_counter() - run_start
            newly = tuple(diverged_points(grid, new_step))
            n_diverged = int(np.count_nonzero(training.diverged_step >= 0))
            total = config.total_steps
            on_progress(Progress(steps_done, total, grid.size, compile_seconds, elapsed, history, newly, n_diverged))
        if on_checkpoint is not None:
            full = History(*(np.concatenate(field, axis=1) for field in zip(*training.histories, strict=True)))
            intervals_done = first + history.step.shape[1]
            on_checkpoint(SweepCheckpoint(plan.fingerprint, intervals_done, _host_state(plan, training.states), full))
    return time.perf_counter() - run_start


def _final_models(plan: SweepPlan, states: list, hypers: list):
    """Every model's feature-space weights, unscaled M and label scale, as flat host arrays."""
    params_parts, mixing_parts, scale_parts = [], [], []
    for state, hyper, call in zip(states, hypers, plan.calls, strict=True):
        state = _on_devices(plan, state)  # every call ran (or was resumed) at least once
        params = jax.vmap(feature_params)(state)
        scales = jax.vmap(lambda s, h: current_scale(plan.shapes.config, h, s))(state, hyper)
        params_parts.append(jax.tree.map(lambda a, n=call.n_models: to_host(a)[:n], params))
        mixing_parts.append(to_host(state.mixing)[: call.n_models])
        scale_parts.append(to_host(scales)[: call.n_models])
    params = jax.tree.map(lambda *parts: np.concatenate(parts), *params_parts)
    return params, np.concatenate(mixing_parts), np.concatenate(scale_parts)


def _assemble(
    plan: SweepPlan, training: _Training, hypers: list, compile_seconds: float, run_seconds: float
) -> SweepResult:
    """The grid-shaped result; models whose final weights are non-finite count as diverged."""
    grid, config = plan.grid, plan.config
    params, mixing, scale = _final_models(plan, training.states, hypers)

    def to_grid(array):
        array = np.asarray(array)
        return array.reshape(grid.shape + array.shape[1:])

    leaves = jax.tree.leaves(params)
    weights_finite = np.all([np.isfinite(leaf).reshape(grid.size, -1).all(axis=1) for leaf in leaves], axis=0)
    fields = zip(*training.histories, strict=True)
    history = History(*(np.concatenate(field, axis=1)[:, : config.n_logs] for field in fields))
    diverged = training.diverged_step
    diverged_step = np.where((diverged < 0) & ~weights_finite, config.total_steps, diverged)
    return SweepResult(
        config=config,
        grid=grid,
        params=jax.tree.map(to_grid, params),
        mixing=to_grid(mixing),
        scale=to_grid(scale),
        history=History(*(to_grid(field) for field in history)),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        n_devices=plan.n_devices,
        diverged_step=to_grid(diverged_step),
        models_per_call=plan.models_per_call,
        task=plan.shapes.task,
        input_path=plan.input_path,
    )


def _run_plan(
    plan: SweepPlan,
    resume: SweepCheckpoint | None,
    on_progress: Callable[[Progress], None] | None,
    on_checkpoint: Callable[[SweepCheckpoint], None] | None,
) -> SweepResult:
    """The sweep of ``plan``: initialise or restore, compile, run the chunks, assemble."""
    start = time.perf_counter()
    training = _start_or_resume(plan, resume)
    hypers = [put_models(call.hyper, plan.sharding, plan.padded) for call in plan.calls]
    compiled = _compile(plan, training.states[0], hypers[0])
    compile_seconds = time.perf_counter() - start
    run_seconds = _run_chunks(plan, compiled, training, hypers, compile_seconds, on_progress, on_checkpoint)
    return _assemble(plan, training, hypers, compile_seconds, run_seconds)


def sweep(
    config: TrainConfig,
    axes: Mapping[str, Sequence],
    *,
    chunk_intervals: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    group_size: int | None = None,
    max_models_per_call: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_checkpoint: Callable[[SweepCheckpoint], None] | None = None,
    resume: SweepCheckpoint | None = None,
    initial_params: FeatureMLP | None = None,
    task: Task = MIXED_RELU,
) -> SweepResult:
    """Train every grid point of ``axes`` under ``config`` on ``task`` (:mod:`ccjax.problem`;
    default the paper's labels) in one jitted computation; the result keeps the task.

    Under ``jax.distributed`` (``devices`` default to every process's), every process calls this with the same
    arguments; each initialises and trains only the models on its own devices, ``on_progress`` and
    ``on_checkpoint`` run on every process with the whole (gathered) values, and every process gets the whole result.

    Args:
        config: The base config; a traced field without an axis keeps its value for every model.
        axes: Axis names to value lists, e.g. ``{"seed": range(5), "scale": [0, 1]}`` (:func:`ccjax.make_grid`).
        chunk_intervals: Logging intervals run per compiled call (default: about 20 chunks per run).
        devices: The devices the models are sharded over (default: all visible devices).
        group_size: Models vmapped together on each device (default :func:`default_group_size`).
        max_models_per_call: Caps the models trained by one compiled call; a larger grid is trained in equal model
            chunks, one after another within each chunk of steps (default: from the free memory,
            :func:`auto_models_per_call`). Results do not depend on it, nor on the number of devices.
        on_progress: Called with a :class:`~ccjax.engine.Progress` after every chunk of steps, or None.
        on_checkpoint: Receives a :class:`~ccjax.engine.SweepCheckpoint` (host arrays) after every chunk of steps.
        resume: A checkpoint from ``on_checkpoint`` to continue, with the same final results as an uninterrupted run.
        initial_params: A :class:`FeatureMLP` with leading axes ``grid.shape`` to start every model from instead of
            the random init, e.g. to fine-tune an earlier sweep's ``result.params`` (:func:`ccjax.engine.init_run`).
            Not supported with ``config.full_model``.
        task: The labels and loss trained on (default: the paper's).

    Returns:
        The models and histories, with leading axes ``grid.shape``. Models whose loss turns NaN or infinite are
            reported in ``Progress.diverged`` and ``SweepResult.diverged_step``; the others train on unaffected.

    Raises:
        ValueError: If the axes, options or ``initial_params`` are invalid for ``config``.
        CheckpointError: If ``resume`` belongs to another sweep or is malformed.
    """
    options = SweepOptions(chunk_intervals, devices, group_size, max_models_per_call, initial_params, task)
    return _run_plan(make_plan(config, axes, options), resume, on_progress, on_checkpoint)
