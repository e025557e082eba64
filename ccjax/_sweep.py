"""Sweeps: a grid of training runs as one jitted, vmapped, sharded computation.

Named axes (``seed`` and any of ``p``, ``lr``, ``weight_decay``, ``scale``) are
flattened onto one *model* axis, in row-major grid order. ``seed`` picks the run's key
(:func:`~ccjax.keys.seed_key`: threefry), so runs that share a seed share W_E, M, the initial weights
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
"""

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec

from ._train import (
    SWEEPABLE,
    History,
    Hyper,
    RunState,
    Shapes,
    TrainConfig,
    check_initial_params,
    current_scale,
    feature_params,
    hyper_values,
    init_run,
    run_intervals,
    shapes_for,
)
from .checkpoint import CheckpointError, SweepCheckpoint, host_leaves, is_key, restore_state, sweep_fingerprint
from .direct import Estimate
from .evaluate import DEFAULT_REL_SEM, LossCurve, loss_curve
from .keys import seed_key
from .memory import auto_models_per_call, call_slices
from .mixing import MIXING_FAMILIES, MIXING_NAMES
from .model import FeatureMLP
from .sharding import (
    MODEL_AXIS,
    local_models,
    model_sharding,
    pad_models,
    plan_models_per_call,
    process_rows,
    put_models,
    same_on_every_process,
    to_host,
)

GROUP_AXIS = "group"  # vmap axis of the models run together on one device


class Grid(NamedTuple):
    """Named sweep axes; ``shape`` is the grid shape, row-major over ``names``."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def ndim(self) -> int:
        return len(self.names)

    def point(self, index: int | np.integer) -> dict:
        """The axis values of flat model ``index`` (row-major), as plain Python values."""
        coords = np.unravel_index(index, self.shape)
        return {name: values[i].item() for name, values, i in zip(self.names, self.values, coords, strict=True)}

    def flat(self, name: str) -> np.ndarray:
        """The value of axis ``name`` for every model, in model-axis order."""
        index = self.names.index(name)
        return np.array([point[index] for point in itertools.product(*self.values)])


# What each swept value allows; TrainConfig checks the same for single runs.
_ALLOWED = {
    "p": (lambda v: (v > 0) & (v <= 1), "in (0, 1]"),
    "lr": (lambda v: v > 0, "positive"),
    "weight_decay": (lambda v: v >= 0, "non-negative"),
    "scale": (lambda v: np.ones_like(v, bool), "a real number"),
    "mixing_rank": (lambda v: (v >= 1) & (v == np.round(v)), "a positive integer"),
}


def _check_swept_values(name: str, array: np.ndarray) -> None:
    if name == "mixing":
        unknown = [value for value in array.tolist() if value not in MIXING_NAMES]
        if unknown:
            raise ValueError(f"axis 'mixing' has unknown families {unknown}; choose from {', '.join(MIXING_NAMES)}")
        return
    try:
        values = array.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"axis {name!r} must hold numbers, got {array.tolist()}") from None
    allowed, description = _ALLOWED[name]
    bad = ~np.isfinite(values) | ~allowed(np.nan_to_num(values))
    if bad.any():
        raise ValueError(
            f"axis {name!r} has non-finite or out-of-range values {values[bad].tolist()}: "
            f"each must be finite and {description}"
        )


def make_grid(axes: Mapping[str, Sequence]) -> Grid:
    """Validate named axes: ``seed`` (non-negative ints) first, then swept values."""
    if "seed" not in axes:
        raise ValueError("a sweep needs a 'seed' axis")
    names = ["seed", *[name for name in axes if name != "seed"]]
    values = []
    for name in names:
        if name != "seed" and name not in SWEEPABLE:
            raise ValueError(f"cannot sweep {name!r}; sweepable axes are seed, {', '.join(SWEEPABLE)}")
        array = np.asarray(list(axes[name]))
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"axis {name!r} must be a non-empty list of values")
        if name == "seed":
            if not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
                raise ValueError(f"seeds must be non-negative integers, got {array.tolist()}")
        else:
            _check_swept_values(name, array)
        values.append(array)
    return Grid(tuple(names), tuple(values))


def _check_grid_fits_config(config: TrainConfig, grid: Grid) -> None:
    if "mixing_rank" in grid.names and grid.flat("mixing_rank").max() > config.n_features:
        raise ValueError(f"axis 'mixing_rank' exceeds n_features ({config.n_features})")
    ranked = "mixing" in grid.names and any(MIXING_FAMILIES[name].needs_rank for name in set(grid.flat("mixing")))
    if ranked and "mixing_rank" not in grid.names and config.mixing_rank > config.n_features:
        raise ValueError(f"mixing_rank ({config.mixing_rank}) must not exceed n_features ({config.n_features})")
    if "mixing" in grid.names and config.full_model and set(grid.flat("mixing")) != {"embedding"}:
        raise ValueError("full_model realises only the faithful embedding mixing; do not sweep 'mixing'")


def _flat_hyper(config: TrainConfig, grid: Grid) -> Hyper:
    """Every model's swept values (the config's where an axis is not swept), in grid order."""
    columns = []
    for name in Hyper._fields:
        values = grid.flat(name) if name in grid.names else np.full(grid.size, getattr(config, name))
        columns.append(hyper_values(name, values))
    return Hyper(*columns)


def _init_all(shapes: Shapes, seeds, hyper: Hyper, initial_params: FeatureMLP | None = None) -> RunState:
    """Every model's initial state, one model at a time (``lax.map``, not ``vmap``): a
    batched matmul's rounding can depend on the batch size, and a model's start must not
    depend on how many models share the call."""

    def one(model):
        seed, hyper, weights = model
        return init_run(shapes.config, seed_key(seed), hyper, weights)

    return lax.map(one, (seeds, hyper, initial_params))


def _chunk(
    shapes: Shapes, n_intervals: int, group_size: int, mesh: Mesh, state: RunState, hyper: Hyper, first_interval
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
_init_jit = jax.jit(_init_all, static_argnums=(0,))


def default_group_size(platform: str) -> int | None:
    """Models vmapped together per device: 1 on CPU, all of them elsewhere.

    On CPU a vmapped group's arrays outgrow the cache and XLA gains no parallelism from
    them: at paper shapes on one CPU device, K = 64 ran at 822 model-steps/s in groups of
    1 against 655 in groups of 8 and 681 all together (2-core CPU; groups of 1 have since
    dropped the vmap, which is faster still). GPUs and TPUs want the widest batch.
    """
    return 1 if platform == "cpu" else None


class Progress(NamedTuple):
    """What the host knows after each chunk (passed to ``on_progress``)."""

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

    @property
    def scaled_mixing(self) -> np.ndarray:
        """The label map ``s M`` of every model, (*grid, n, n)."""
        return np.asarray(self.scale)[..., None, None] * self.mixing

    @property
    def diverged(self) -> np.ndarray:
        """(*grid,) True where the model's loss became NaN or infinite."""
        return self.diverged_step >= 0

    def diverged_points(self) -> list[dict]:
        """Grid coordinates (and ``step``) of every diverged model, in grid order."""
        return diverged_points(self.grid, self.diverged_step.reshape(-1))


def diverged_points(grid: Grid, diverged_step: np.ndarray) -> list[dict]:
    """``grid.point(i) | {"step": s}`` for every flat model ``i`` with ``diverged_step[i] >= 0``."""
    return [grid.point(index) | {"step": int(diverged_step[index])} for index in np.flatnonzero(diverged_step >= 0)]


def _first_non_finite_step(history: History) -> np.ndarray:
    """Per model, the step of the first log with a non-finite value (-1 if none)."""
    bad = ~np.isfinite(history.train_loss) | ~np.isfinite(history.relu_term) | ~np.isfinite(history.mixing_term)
    bad |= ~np.isfinite(history.scale)
    first = np.argmax(bad, axis=1)
    return np.where(bad.any(axis=1), np.asarray(history.step)[np.arange(len(first)), first], -1).astype(np.int64)


class _Call(NamedTuple):
    """One model chunk: which flat models it trains, and its (padded) inputs."""

    models: slice
    seeds: np.ndarray
    hyper: Hyper
    initial_params: FeatureMLP | None


def _take(leaf, models: slice, padded: int):
    """Models ``models`` of a stacked host leaf, padded to ``padded`` (key arrays too)."""
    if is_key(leaf):
        data = pad_models(np.asarray(jax.random.key_data(leaf))[models], padded)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    return pad_models(np.asarray(leaf)[models], padded)


def _split_calls(slices: list[slice], padded: int, seeds, hyper: Hyper, initial_params) -> list[_Call]:
    calls = []
    for models in slices:

        def take(array, models=models):
            return pad_models(np.asarray(array)[models], padded)

        init = None if initial_params is None else jax.tree.map(take, initial_params)
        calls.append(_Call(models, take(seeds), Hyper(*(take(column) for column in hyper)), init))
    return calls


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
) -> SweepResult:
    """Train every grid point of ``axes`` under ``config`` in one jitted computation.

    ``axes`` maps names to value lists, e.g. ``{"seed": range(5), "scale": [0, 1]}``.
    ``chunk_intervals`` logging intervals run per compiled call (default: about 20
    chunks per run). ``devices`` defaults to all visible devices. ``group_size`` models
    are vmapped together on each device (default :func:`default_group_size`).

    ``max_models_per_call`` caps the models trained by one compiled call; a larger grid
    is trained in equal model chunks, one after another within each chunk of steps.
    By default the cap comes from the free memory (:func:`auto_models_per_call`).
    Results do not depend on it, nor on the number of devices.

    ``on_checkpoint`` receives a :class:`~ccjax.checkpoint.SweepCheckpoint` (host
    arrays) after every chunk of steps; pass one back as ``resume`` to continue from it
    with the same final results as an uninterrupted run. Models whose loss turns NaN or
    infinite are reported in ``Progress.diverged`` and ``SweepResult.diverged_step``;
    the others train on unaffected.

    ``initial_params`` (a :class:`FeatureMLP` with leading axes ``grid.shape``) starts
    every model from given weights instead of the random init, e.g. to fine-tune the
    models of an earlier sweep (``result.params``); see :func:`ccjax.train.init_run`.
    Not supported with ``config.full_model``.

    Under ``jax.distributed`` (``devices`` default to every process's), every process
    calls this with the same arguments; each initialises and trains only the models on
    its own devices, ``on_progress`` and ``on_checkpoint`` run on every process with the
    whole (gathered) values, and every process gets the whole result.
    """
    grid = make_grid(axes)
    _check_grid_fits_config(config, grid)
    if "p" in grid.names and config.scale_steps_for_sparsity:
        raise ValueError("sweeping p with scale_steps_for_sparsity is not supported: steps are shared")
    for name, value in (("chunk_intervals", chunk_intervals), ("group_size", group_size)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    if max_models_per_call is not None and (
        not isinstance(max_models_per_call, int | np.integer) or max_models_per_call < 1
    ):
        raise ValueError(f"max_models_per_call must be a positive integer or None, got {max_models_per_call!r}")
    fingerprint = sweep_fingerprint(config, grid, initial_params)
    if initial_params is not None:
        check_initial_params(config, initial_params, grid.shape)
        initial_params = jax.tree.map(
            lambda leaf: np.asarray(leaf, np.float32).reshape((grid.size,) + np.shape(leaf)[grid.ndim :]),
            initial_params,
        )
    p_max = float(np.max(grid.flat("p"))) if "p" in grid.names else config.p
    shapes = shapes_for(config, p_max)
    all_devices = list(jax.devices() if devices is None else devices)
    fixed_group = group_size or default_group_size(all_devices[0].platform)  # None: all of a device's models
    per_call = max_models_per_call or plan_models_per_call(
        lambda devices, n_models: auto_models_per_call(shapes, devices, n_models, fixed_group), all_devices, grid.size
    )
    slices = call_slices(grid.size, per_call)
    n_calls, per_call = len(slices), slices[0].stop
    devices, mesh, sharding = model_sharding(all_devices, per_call)
    n_devices = len(devices)
    per_device = -(-per_call // n_devices)
    group_size = fixed_group or per_device
    n_groups = -(-per_device // group_size)
    group_size = -(-per_device // n_groups)  # spread models evenly over the groups
    padded = n_devices * n_groups * group_size
    rows = process_rows(sharding, padded)  # the models this process's devices hold (all on one process)
    n_logs = config.n_logs
    chunk_intervals = chunk_intervals or max(1, -(-n_logs // 20))

    seeds = grid.flat("seed").astype(np.uint32)
    calls = _split_calls(slices, padded, seeds, _flat_hyper(config, grid), initial_params)

    start = time.perf_counter()

    def initial_state(call: _Call):
        # This process's models, initialised on one device, then sharded: XLA:CPU deadlocked
        # running the QR of the flat-spectrum mixing family on several CPU devices at once (jax 0.10.2).
        own = jax.tree.map(lambda leaf: leaf[rows], (call.seeds, call.hyper, call.initial_params))
        return put_models(_init_jit(shapes, *own), sharding, padded, rows)

    def on_devices(state):
        """A call's state on the mesh: as it is, or from this process's parked rows."""
        if all(isinstance(leaf, jax.Array) and leaf.sharding == sharding for leaf in jax.tree.leaves(state)):
            return state
        return put_models(state, sharding, padded, rows)

    if resume is None:
        states = [None] * n_calls
        histories, first_interval = [], 0
        diverged_step = np.full(grid.size, -1, np.int64)
    else:
        template = jax.eval_shape(lambda: _init_jit(shapes, calls[0].seeds, calls[0].hyper, calls[0].initial_params))
        restored = restore_state(resume, template, fingerprint, grid.size)
        states = [jax.tree.map(lambda leaf, c=c: _take(leaf, c.models, padded)[rows], restored) for c in calls]
        histories, first_interval = [resume.history], resume.intervals_done
        diverged_step = _first_non_finite_step(resume.history)
    if not same_on_every_process(first_interval):
        raise CheckpointError(
            "the processes would resume from different checkpoints (or none): every process must read the same "
            "checkpoint, so keep them on a file system that all processes see"
        )
    states[0] = initial_state(calls[0]) if states[0] is None else on_devices(states[0])
    hypers = [put_models(call.hyper, sharding, padded) for call in calls]
    compiled = _chunk_jit.lower(shapes, chunk_intervals, group_size, mesh, states[0], hypers[0], jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - start

    def host_state():
        # Parked rows of one process are not the whole state: gather them through the mesh.
        whole = rows == slice(0, padded)
        return tuple(
            np.concatenate(parts)
            for parts in zip(
                *(
                    host_leaves(state if whole else on_devices(state), call.models.stop - call.models.start)
                    for state, call in zip(states, calls, strict=True)
                ),
                strict=True,
            )
        )

    run_start = time.perf_counter()
    for first in range(first_interval, n_logs, chunk_intervals):
        chunk_history = []
        for index, call in enumerate(calls):
            state = states[index]
            state = initial_state(call) if state is None else on_devices(state)
            state, history = compiled(state, hypers[index], jnp.int32(first))
            # One call keeps its state on the devices; several take turns, parked on the host.
            states[index] = state if n_calls == 1 else local_models(state, rows)
            count = call.models.stop - call.models.start
            chunk_history.append(jax.tree.map(lambda a, n=count: to_host(a)[:n], history))
        kept = min(chunk_intervals, n_logs - first)
        history = History(*(np.concatenate(field, axis=0)[:, :kept] for field in zip(*chunk_history, strict=True)))
        histories.append(history)
        new_step = np.where(diverged_step < 0, _first_non_finite_step(history), -1)
        diverged_step = np.where(new_step >= 0, new_step, diverged_step)
        if on_progress is not None:
            steps_done = min((first + chunk_intervals) * config.log_every, config.total_steps)
            elapsed = time.perf_counter() - run_start
            newly = tuple(diverged_points(grid, new_step))
            n_diverged = int(np.count_nonzero(diverged_step >= 0))
            on_progress(
                Progress(
                    steps_done, config.total_steps, grid.size, compile_seconds, elapsed, history, newly, n_diverged
                )
            )
        if on_checkpoint is not None:
            full = History(*(np.concatenate(field, axis=1) for field in zip(*histories, strict=True)))
            on_checkpoint(SweepCheckpoint(fingerprint, first + kept, host_state(), full))
    run_seconds = time.perf_counter() - run_start

    params_parts, mixing_parts, scale_parts = [], [], []
    for index, call in enumerate(calls):
        state = on_devices(states[index])  # every call ran (or was resumed) at least once
        count = call.models.stop - call.models.start
        params = jax.vmap(feature_params)(state)
        scales = jax.vmap(lambda s, h: current_scale(shapes.config, h, s))(state, hypers[index])
        params_parts.append(jax.tree.map(lambda a, n=count: to_host(a)[:n], params))
        mixing_parts.append(to_host(state.mixing)[:count])
        scale_parts.append(to_host(scales)[:count])

    def to_grid(array):
        array = np.asarray(array)
        return array.reshape(grid.shape + array.shape[1:])

    params = jax.tree.map(lambda *parts: to_grid(np.concatenate(parts)), *params_parts)
    weights_finite = np.all(
        [np.isfinite(leaf).reshape(grid.size, -1).all(axis=1) for leaf in jax.tree.leaves(params)], axis=0
    )
    history = History(*(np.concatenate(field, axis=1)[:, :n_logs] for field in zip(*histories, strict=True)))
    diverged_step = np.where((diverged_step < 0) & ~weights_finite, config.total_steps, diverged_step)
    return SweepResult(
        config=config,
        grid=grid,
        params=params,
        mixing=to_grid(np.concatenate(mixing_parts)),
        scale=to_grid(np.concatenate(scale_parts)),
        history=History(*(to_grid(field) for field in history)),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        n_devices=n_devices,
        diverged_step=to_grid(diverged_step),
        models_per_call=per_call,
    )


EVAL_SEED = 0x5EED  # key of the evaluation samples (shared by all models; never a training key's stream)


def evaluation_key() -> jax.Array:
    """The default key of :func:`evaluate_sweep` and :func:`sweep_curves`."""
    return jax.random.fold_in(seed_key(0), EVAL_SEED)


def sweep_curves(
    result: SweepResult, p_values: Sequence[float] | np.ndarray, *, key: jax.Array | None = None, **options
) -> LossCurve:
    """L/p at every p of ``p_values`` for every model of a sweep (grid-shaped fields).

    :func:`ccjax.evaluate.loss_curve` on the sweep's params and label maps ``s M``;
    ``options`` go to it (``rel_sem``, ``devices``, ``on_progress``, ...). Diverged
    models (``result.diverged``) get NaN.
    """
    key = evaluation_key() if key is None else key
    diverged = result.diverged[..., None, None]
    params = jax.tree.map(lambda leaf: np.where(diverged, np.nan, leaf), result.params)  # NaN: excluded
    return loss_curve(params, result.scaled_mixing, p_values, key, **options)


def evaluate_sweep(
    result: SweepResult,
    p: float | None = None,
    *,
    rel_sem: float = DEFAULT_REL_SEM,
    key: jax.Array | None = None,
    **options,
) -> Estimate:
    """L/p of every model of a sweep, at ``p`` (default: each model's training p).

    Uses :func:`sweep_curves` at the distinct p's, to a relative standard error of
    ``rel_sem``. Returns an :class:`~ccjax.direct.Estimate` whose fields have the
    grid's shape; its sample counts are the exactly-k evaluations behind each value.
    """
    grid, config = result.grid, result.config
    if p is None:
        p_flat = grid.flat("p") if "p" in grid.names else np.full(grid.size, config.p)
    else:
        p_flat = np.full(grid.size, p)
    distinct, column = np.unique(p_flat, return_inverse=True)
    curve = sweep_curves(result, distinct, key=key, rel_sem=rel_sem, **options)

    def pick(array):
        flat = np.asarray(array).reshape(grid.size, len(distinct))
        return flat[np.arange(grid.size), column].reshape(grid.shape)

    evaluations = np.full(grid.shape, curve.n_evaluations)
    return Estimate(pick(curve.loss_per_feature), pick(curve.sem), evaluations, evaluations)
