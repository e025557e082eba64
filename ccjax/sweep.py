"""Sweeps: a grid of training runs as one jitted, vmapped, sharded computation.

Named axes (``seed`` and any of ``p``, ``lr``, ``weight_decay``, ``scale``) are
flattened onto one *model* axis, in row-major grid order. ``seed`` picks the run's key
(``jax.random.key(seed)``), so runs that share a seed share W_E, M, the initial weights
and the data stream; seeds share nothing. The model axis is padded to a multiple of
the device count and sharded over a 1-D mesh ``("model",)`` with ``NamedSharding``;
inside the compiled call each device (``shard_map``) runs its models in ``vmap``-ed
groups (:func:`default_group_size`).

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

from .direct import Estimate
from .evaluate import DEFAULT_REL_SEM, LossCurve, loss_curve
from .mixing import MIXING_NAMES
from .model import FeatureMLP
from .sharding import MODEL_AXIS, model_sharding, pad_models
from .train import (
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

    def flat(self, name: str) -> np.ndarray:
        """The value of axis ``name`` for every model, in model-axis order."""
        index = self.names.index(name)
        return np.array([point[index] for point in itertools.product(*self.values)])


# What each swept value allows; TrainConfig checks the same for single runs.
_ALLOWED = {
    "p": (lambda v: (v > 0) & (v <= 1), "in (0, 1]"),
    "lr": (lambda v: v > 0, "positive"),
    "weight_decay": (lambda v: v >= 0, "non-negative"),
    "scale": (lambda v: np.ones_like(v, bool), "finite"),
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
    if "mixing" in grid.names and config.full_model and set(grid.flat("mixing")) != {"embedding"}:
        raise ValueError("full_model realises only the faithful embedding mixing; do not sweep 'mixing'")


def _flat_hyper(config: TrainConfig, grid: Grid, padded: int) -> Hyper:
    columns = []
    for name in Hyper._fields:
        values = grid.flat(name) if name in grid.names else np.full(grid.size, getattr(config, name))
        columns.append(pad_models(hyper_values(name, values), padded))
    return Hyper(*columns)


def _init_all(shapes: Shapes, seeds, hyper: Hyper, initial_params: FeatureMLP | None = None) -> RunState:
    keys = jax.vmap(jax.random.key)(seeds)
    return jax.vmap(lambda k, h, w: init_run(shapes.config, k, h, w))(keys, hyper, initial_params)


def _flat_initial_params(config: TrainConfig, grid: Grid, padded: int, initial_params: FeatureMLP) -> FeatureMLP:
    """Grid-shaped initial weights, checked, on the padded model axis (like the seeds)."""
    check_initial_params(config, initial_params, grid.shape)
    lead = len(grid.shape)

    def flat(leaf):
        leaf = np.asarray(leaf, np.float32)
        return pad_models(leaf.reshape((grid.size,) + leaf.shape[lead:]), padded)

    return jax.tree.map(flat, initial_params)


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


class SweepResult(NamedTuple):
    """Trained models and histories, with leading grid axes ``grid.shape``."""

    config: TrainConfig
    grid: Grid
    params: FeatureMLP  # feature-space weights (full models are mapped through W_E)
    mixing: np.ndarray  # (*grid, n, n), unscaled M
    scale: np.ndarray  # (*grid,), the mixing scale in the labels (learned or fixed)
    history: History  # each field (*grid, n_logs)
    compile_seconds: float
    run_seconds: float
    n_devices: int

    @property
    def scaled_mixing(self) -> np.ndarray:
        """The label map ``s M`` of every model, (*grid, n, n)."""
        return np.asarray(self.scale)[..., None, None] * self.mixing


def sweep(
    config: TrainConfig,
    axes: Mapping[str, Sequence],
    *,
    chunk_intervals: int | None = None,
    devices: Sequence[jax.Device] | None = None,
    group_size: int | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    initial_params: FeatureMLP | None = None,
) -> SweepResult:
    """Train every grid point of ``axes`` under ``config`` in one jitted computation.

    ``axes`` maps names to value lists, e.g. ``{"seed": range(5), "scale": [0, 1]}``.
    ``chunk_intervals`` logging intervals run per compiled call (default: about 20
    chunks per run). ``devices`` defaults to all visible devices. ``group_size`` models
    are vmapped together on each device (default :func:`default_group_size`).
    ``initial_params`` (a :class:`FeatureMLP` with leading axes ``grid.shape``) starts
    every model from given weights instead of the random init, e.g. to fine-tune the
    models of an earlier sweep (``result.params``); see :func:`ccjax.train.init_run`.
    Not supported with ``config.full_model``.
    """
    grid = make_grid(axes)
    _check_grid_fits_config(config, grid)
    if "p" in grid.names and config.scale_steps_for_sparsity:
        raise ValueError("sweeping p with scale_steps_for_sparsity is not supported: steps are shared")
    devices, mesh, sharding = model_sharding(devices, grid.size)
    n_devices = len(devices)
    per_device = -(-grid.size // n_devices)
    group_size = group_size or default_group_size(devices[0].platform) or per_device
    n_groups = -(-per_device // group_size)
    group_size = -(-per_device // n_groups)  # spread models evenly over the groups
    padded = n_devices * n_groups * group_size
    p_max = float(np.max(grid.flat("p"))) if "p" in grid.names else config.p
    shapes = shapes_for(config, p_max)
    n_logs = config.n_logs
    chunk_intervals = chunk_intervals or max(1, -(-n_logs // 20))

    seeds = pad_models(grid.flat("seed").astype(np.uint32), padded)
    hyper = _flat_hyper(config, grid, padded)
    if initial_params is not None:
        initial_params = _flat_initial_params(config, grid, padded, initial_params)

    start = time.perf_counter()
    # Initialise on one device, then shard: XLA:CPU deadlocked running the QR of the
    # flat-spectrum mixing family on several CPU devices at once (jax 0.10.2).
    state = jax.device_put(_init_jit(shapes, seeds, hyper, initial_params), sharding)
    hyper = jax.device_put(hyper, sharding)
    compiled = _chunk_jit.lower(shapes, chunk_intervals, group_size, mesh, state, hyper, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - start

    histories = []
    run_start = time.perf_counter()
    for first in range(0, n_logs, chunk_intervals):
        state, history = compiled(state, hyper, jnp.int32(first))
        history = jax.device_get(history)
        histories.append(history)
        if on_progress is not None:
            steps_done = min((first + chunk_intervals) * config.log_every, config.total_steps)
            elapsed = time.perf_counter() - run_start
            on_progress(Progress(steps_done, config.total_steps, grid.size, compile_seconds, elapsed, history))
    run_seconds = time.perf_counter() - run_start

    def to_grid(array):
        array = np.asarray(array)[: grid.size]
        return array.reshape(grid.shape + array.shape[1:])

    history = History(*(np.concatenate(field, axis=1)[:, :n_logs] for field in zip(*histories, strict=True)))
    params = jax.vmap(feature_params)(state)
    scales = jax.vmap(lambda s, h: current_scale(shapes.config, h, s))(state, hyper)
    return SweepResult(
        config=config,
        grid=grid,
        params=jax.tree.map(to_grid, params),
        mixing=to_grid(state.mixing),
        scale=to_grid(scales),
        history=History(*(to_grid(field) for field in history)),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
        n_devices=n_devices,
    )


EVAL_SEED = 0x5EED  # key of the evaluation samples (shared by all models; never a training key's stream)


def evaluation_key() -> jax.Array:
    """The default key of :func:`evaluate_sweep` and :func:`sweep_curves`."""
    return jax.random.fold_in(jax.random.key(0), EVAL_SEED)


def sweep_curves(
    result: SweepResult, p_values: Sequence[float], *, key: jax.Array | None = None, **options
) -> LossCurve:
    """L/p at every p of ``p_values`` for every model of a sweep (grid-shaped fields).

    :func:`ccjax.evaluate.loss_curve` on the sweep's params and label maps ``s M``;
    ``options`` go to it (``rel_sem``, ``devices``, ``on_progress``, ...).
    """
    key = evaluation_key() if key is None else key
    return loss_curve(result.params, result.scaled_mixing, p_values, key, **options)


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
