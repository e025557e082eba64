"""How many CC models train at once: :class:`TrainConfig`, the pure training run, sweep
axes and grids, the sweep (one jitted, vmapped, sharded call), static axes, memory
planning, checkpoints, progress and the persistent compilation cache.

Imports :mod:`ccjax.problem` only.
"""

from ._axes import Axis, traced, traced_axes
from ._batch_size import MIN_ACTIVE_FEATURES_PER_BATCH, check_batch_size
from ._checkpoint import CheckpointError, SweepCheckpoint, sweep_fingerprint
from ._compile_cache import CompileCacheCounts, counting_compile_cache, default_compile_cache_dir, enable_compile_cache
from ._config import INPUT_PATHS, Hyper, InputPathChoice, TrainConfig
from ._memory import auto_eval_models_per_call, auto_models_per_call
from ._progress import ProgressBar, describe_point, describe_progress, format_duration
from ._static_axes import over_static_axes, static_combinations, sweep_static
from ._sweep import Progress, SweepResult, sweep
from ._sweep_plan import Grid, make_grid
from ._train import (
    History,
    RunState,
    Shapes,
    extra_capacity_for,
    hyper_from_config,
    init_run,
    lr_factor,
    shapes_for,
    train,
    train_step,
)

__all__ = [
    "INPUT_PATHS",
    "MIN_ACTIVE_FEATURES_PER_BATCH",
    "Axis",
    "CheckpointError",
    "CompileCacheCounts",
    "Grid",
    "History",
    "Hyper",
    "InputPathChoice",
    "Progress",
    "ProgressBar",
    "RunState",
    "Shapes",
    "SweepCheckpoint",
    "SweepResult",
    "TrainConfig",
    "auto_eval_models_per_call",
    "auto_models_per_call",
    "check_batch_size",
    "counting_compile_cache",
    "default_compile_cache_dir",
    "describe_point",
    "describe_progress",
    "enable_compile_cache",
    "format_duration",
    "extra_capacity_for",
    "hyper_from_config",
    "init_run",
    "lr_factor",
    "make_grid",
    "over_static_axes",
    "shapes_for",
    "static_combinations",
    "sweep",
    "sweep_fingerprint",
    "sweep_static",
    "train",
    "train_step",
    "traced",
    "traced_axes",
]
