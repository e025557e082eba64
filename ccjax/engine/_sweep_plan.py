"""A sweep's plan: its grid, checks and layout, fixed before anything is compiled.

:func:`plan_sweep` validates the axes against the config's declared sweep axes
(:mod:`ccjax.engine`), flattens the grid onto one model axis (row-major), splits it into
calls of at most ``models_per_call`` models, and lays each call out over the devices
(padding, groups). It only computes host values (no jit, nothing compiled), so it is
cheap and testable on its own; :func:`ccjax.sweep` runs the plan.
"""

import dataclasses
import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding

from ..problem._model import FeatureMLP
from ..problem._tasks import MIXED_RELU, Task
from ._axes import hyper_type, traced_axes
from ._checkpoint import sweep_fingerprint
from ._config import InputPathChoice, TrainConfig
from ._memory import call_slices, estimate_model_bytes, models_that_fit
from ._sharding import model_sharding, pad_models, plan_models_per_call, process_rows
from ._train import Shapes, check_initial_params, extra_capacity_for, input_path_for, shapes_for


class Grid(NamedTuple):
    """Named sweep axes; ``shape`` is the grid shape, row-major over ``names``.

    Attributes:
        names: The axis names, ``"seed"`` first.
        values: Each axis's values, a 1-D array per name.
    """

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
        """The axis values of flat model ``index`` (row-major), as plain Python values.

        Args:
            index: The model's position on the flat model axis, in [0, size).

        Returns:
            Axis name to the model's value.
        """
        coords = np.unravel_index(index, self.shape)
        return {name: values[i].item() for name, values, i in zip(self.names, self.values, coords, strict=True)}

    def flat(self, name: str) -> np.ndarray:
        """The value of axis ``name`` for every model, in model-axis order.

        Args:
            name: One of ``names``.

        Returns:
            The values, (size,).
        """
        index = self.names.index(name)
        return np.array([point[index] for point in itertools.product(*self.values)])


def make_grid(axes: Mapping[str, Sequence], config_type: type = TrainConfig) -> Grid:
    """Validate named axes: ``seed`` (non-negative ints) first, then traced axes of
    ``config_type`` (:func:`ccjax.engine.traced`), each checked as its field declares.

    Args:
        axes: Axis name to a non-empty list of values; must include ``"seed"``.
        config_type: The config class whose traced fields may be swept.

    Returns:
        The grid, ``seed`` first, then the other axes in the given order.

    Raises:
        ValueError: If ``seed`` is missing or not non-negative integers, a name is not sweepable,
            an axis is empty or not 1-D, or a value is not allowed.
    """
    if "seed" not in axes:
        raise ValueError("a sweep needs a 'seed' axis")
    sweepable = traced_axes(config_type)
    names = ["seed", *[name for name in axes if name != "seed"]]
    values = []
    for name in names:
        if name != "seed" and name not in sweepable:
            raise ValueError(f"cannot sweep {name!r}; sweepable axes are seed, {', '.join(sweepable)}")
        array = np.asarray(list(axes[name]))
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"axis {name!r} must be a non-empty list of values")
        if name == "seed":
            if not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
                raise ValueError(f"seeds must be non-negative integers, got {array.tolist()}")
        else:
            sweepable[name].check(name, array)
        values.append(array)
    return Grid(tuple(names), tuple(values))


def check_grid_fits_config(config: TrainConfig, grid: Grid) -> None:
    """Raise a ValueError unless every combination of swept values makes a valid config
    (the config's own checks, e.g. ``mixing_rank <= n_features``)."""
    if "p" in grid.names and config.scale_steps_for_sparsity:
        raise ValueError("sweeping p with scale_steps_for_sparsity is not supported: steps are shared")
    if "mixing_rank" in grid.names:  # a swept rank is meant to be used, whatever the family
        largest = int(np.max(grid.values[grid.names.index("mixing_rank")]))
        if largest > config.n_features:
            raise ValueError(f"swept mixing_rank ({largest}) must not exceed n_features ({config.n_features})")
    axes = traced_axes(type(config))
    swept = [(name, values) for name, values in zip(grid.names, grid.values, strict=True) if name != "seed"]
    columns = [[axes[name].config_value(v) for v in dict.fromkeys(values.tolist())] for name, values in swept]
    for point in itertools.product(*columns):
        changes = dict(zip([name for name, _ in swept], point, strict=True))
        try:
            dataclasses.replace(config, **changes)
        except ValueError as error:
            raise ValueError(f"the grid point {changes} does not fit the config: {error}") from None


def flat_hyper(config: TrainConfig, grid: Grid):
    """Every model's traced values (the config's where an axis is not swept), in grid order."""
    columns = []
    for name, axis in traced_axes(type(config)).items():
        values = grid.flat(name) if name in grid.names else np.full(grid.size, getattr(config, name))
        columns.append(axis.encode(values))
    return hyper_type(type(config))(*columns)


def default_group_size(platform: str) -> int | None:
    """Models vmapped together per device: 1 on CPU, all of them elsewhere.

    On CPU a vmapped group's arrays outgrow the cache and XLA gains no parallelism from
    them: at paper shapes on one CPU device, K = 64 ran at 822 model-steps/s in groups of
    1 against 655 in groups of 8 and 681 all together (2-core CPU; groups of 1 have since
    dropped the vmap, which is faster still). GPUs and TPUs want the widest batch.
    """
    return 1 if platform == "cpu" else None


class Call(NamedTuple):
    """One model chunk: which flat models it trains, and its (padded) host inputs."""

    models: slice
    seeds: np.ndarray
    hyper: tuple  # the config's Hyper
    initial_params: FeatureMLP | None

    @property
    def n_models(self) -> int:
        return self.models.stop - self.models.start


def split_calls(slices: list[slice], padded: int, seeds, hyper, initial_params) -> tuple[Call, ...]:
    """Each call's models of the flat inputs, padded to ``padded`` models."""
    calls = []
    for models in slices:

        def take(array, models=models):
            return pad_models(np.asarray(array)[models], padded)

        init = None if initial_params is None else jax.tree.map(take, initial_params)
        calls.append(Call(models, take(seeds), type(hyper)(*(take(column) for column in hyper)), init))
    return tuple(calls)


class SweepPlan(NamedTuple):
    """Everything a sweep fixes before it compiles: grid, shapes, calls and their layout."""

    config: TrainConfig
    grid: Grid
    fingerprint: str  # identifies the sweep's checkpoints (:func:`ccjax.engine.sweep_fingerprint`)
    shapes: Shapes
    chunk_intervals: int  # logging intervals per compiled call
    calls: tuple[Call, ...]
    models_per_call: int
    n_devices: int
    mesh: Mesh
    sharding: NamedSharding  # of the model axis
    group_size: int  # models vmapped together on a device
    padded: int  # models per call after padding to fill every device's groups
    rows: slice  # the padded models this process's devices hold
    input_path: InputPathChoice  # the path shapes.path holds, and why (for its group_size models)

    @property
    def n_calls(self) -> int:
        return len(self.calls)


def _check_options(**options) -> None:
    for name, value in options.items():
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def _flat_initial_params(config: TrainConfig, grid: Grid, initial_params: FeatureMLP | None):
    """``initial_params`` (leading axes ``grid.shape``) checked and flattened onto the model axis."""
    if initial_params is None:
        return None
    check_initial_params(config, initial_params, grid.shape)
    flat = lambda leaf: np.asarray(leaf, np.float32).reshape((grid.size,) + np.shape(leaf)[grid.ndim :])  # noqa: E731
    return jax.tree.map(flat, initial_params)


def _layout(devices: list, per_call: int, fixed_group: int | None):
    """Mesh, sharding, group size and padded size of calls of ``per_call`` models."""
    devices, mesh, sharding = model_sharding(devices, per_call)
    per_device = -(-per_call // len(devices))
    group_size = fixed_group or per_device
    n_groups = -(-per_device // group_size)
    group_size = -(-per_device // n_groups)  # spread models evenly over the groups
    padded = len(devices) * n_groups * group_size
    return len(devices), mesh, sharding, group_size, padded


class SweepOptions(NamedTuple):
    """The planning options of :func:`ccjax.sweep` (documented there); None: the default."""

    chunk_intervals: int | None = None
    devices: Sequence[jax.Device] | None = None
    group_size: int | None = None
    max_models_per_call: int | None = None
    initial_params: FeatureMLP | None = None
    task: Task = MIXED_RELU


def plan_sweep(config: TrainConfig, axes: Mapping[str, Sequence], **options) -> SweepPlan:
    """The plan of ``sweep(config, axes, **options)``, for its planning options (the
    fields of :class:`SweepOptions`; any other name is a TypeError); compiles nothing."""
    return make_plan(config, axes, SweepOptions(**options))


def make_plan(config: TrainConfig, axes: Mapping[str, Sequence], options: SweepOptions) -> SweepPlan:
    """The plan of a sweep of ``axes`` under ``config`` with ``options``; compiles nothing."""
    grid = make_grid(axes, type(config))
    check_grid_fits_config(config, grid)
    chunk_intervals, devices, group_size, max_models_per_call, initial_params, task = options
    _check_options(chunk_intervals=chunk_intervals, group_size=group_size, max_models_per_call=max_models_per_call)
    fingerprint = sweep_fingerprint(config, grid, initial_params, task)
    initial_params = _flat_initial_params(config, grid, initial_params)
    p_max = float(np.max(grid.flat("p"))) if "p" in grid.names else config.p
    shapes = shapes_for(config, p_max, task)
    all_devices = list(jax.devices() if devices is None else devices)
    fixed_group = group_size or default_group_size(all_devices[0].platform)  # None: all of a device's models
    # (devices, n_models) -> count; the bytes are estimated once, here, so the plan passes no config on
    fits = functools.partial(models_that_fit, estimate_model_bytes(shapes), group_size=fixed_group)
    per_call = max_models_per_call or plan_models_per_call(fits, all_devices, grid.size)
    slices = call_slices(grid.size, per_call)
    n_devices, mesh, sharding, group_size, padded = _layout(all_devices, slices[0].stop, fixed_group)
    seeds = grid.flat("seed").astype(np.uint32)
    platform = all_devices[0].platform
    input_path = input_path_for(config, p_max, task, group_size, platform)
    return SweepPlan(
        config=config,
        grid=grid,
        fingerprint=fingerprint,
        shapes=shapes._replace(path=input_path.path, extra_capacity=extra_capacity_for(config, p_max, platform)),
        chunk_intervals=chunk_intervals or max(1, -(-config.n_logs // 20)),
        calls=split_calls(slices, padded, seeds, flat_hyper(config, grid), initial_params),
        models_per_call=slices[0].stop,
        n_devices=n_devices,
        mesh=mesh,
        sharding=sharding,
        group_size=group_size,
        padded=padded,
        rows=process_rows(sharding, padded),  # the models this process's devices hold (all on one process)
        input_path=input_path,
    )
