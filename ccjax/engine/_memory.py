"""How many models one compiled call may hold: free memory, rough per-model costs for
training and for evaluation, and equal splits of the model axis.

The estimates are deliberately rough (a few arrays per model); ``max_models_per_call``
(:func:`ccjax.sweep`, :func:`ccjax.loss_curve`, ``--max-models-per-call``) overrides them.
How models are split never changes results beyond float rounding (training: bitwise).
"""

import os
import warnings
from collections.abc import Sequence

import jax

from ..problem._keys import seed_key
from ._train import Shapes, hyper_from_config, init_run

MEMORY_FRACTION = 0.5  # the share of free memory one call may plan to use


def _device_free_bytes(device: jax.Device) -> int | None:
    """``bytes_limit - bytes_in_use`` of one accelerator; None if it does not report them."""
    try:
        stats = device.memory_stats()
    except (NotImplementedError, RuntimeError):  # backends without allocator statistics
        stats = None
    if not stats or "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))


def free_memory_bytes(devices: Sequence[jax.Device]) -> int | None:
    """Free memory the model axis can use; None if unknown.

    On GPU/TPU the model axis is split evenly over ``devices``, so the device with the
    least free memory bounds every device's share: the minimum free memory times the
    device count (unknown if any device reports none). On CPU the host's available
    memory, which all CPU devices share.
    """
    if devices[0].platform != "cpu":
        free = [_device_free_bytes(device) for device in devices]
        if any(bytes_ is None for bytes_ in free):
            return None
        return len(devices) * min(free)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


# Assumed free memory per device (per host on CPU) when it is unknown: half of the
# smallest accelerator memory ccjax's users run on (8 GiB, a TPU v2 core).
UNKNOWN_FREE_BYTES = 4 * 2**30


def planning_memory_bytes(devices: Sequence[jax.Device]) -> int:
    """:func:`free_memory_bytes`, or with a warning :data:`UNKNOWN_FREE_BYTES` per device
    (one share for all CPU devices) when the devices do not report it."""
    free = free_memory_bytes(devices)
    if free is not None:
        return free
    shares = 1 if devices[0].platform == "cpu" else len(devices)
    warnings.warn(
        f"{devices[0].platform} devices report no free memory (memory_stats() is empty); planning with "
        f"{UNKNOWN_FREE_BYTES / 2**30:.0f} GiB per device. Set max_models_per_call "
        "(--max-models-per-call) to size the calls yourself",
        RuntimeWarning,
        stacklevel=3,
    )
    return shares * UNKNOWN_FREE_BYTES


def call_slices(n_models: int, per_call: int | None) -> list[slice]:
    """``n_models`` split into equal consecutive calls of at most ``per_call`` models (one
    call when ``per_call`` is None)."""
    per_call = min(per_call or n_models, n_models)
    calls = -(-n_models // per_call)
    size = -(-n_models // calls)
    return [slice(start, min(start + size, n_models)) for start in range(0, n_models, size)]


# A rough count of the (batch, width) float32 arrays live at once in one model's training step.
STEP_ARRAYS = 8


def estimate_model_bytes(shapes: Shapes) -> tuple[int, int]:
    """(resident, step): bytes a model's training state holds for the whole call (state
    in and out plus the host copy), and bytes its training step needs while it runs."""
    config = shapes.config
    abstract = jax.eval_shape(lambda: init_run(config, seed_key(0), hyper_from_config(config)))  # compiles nothing
    state = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(abstract) if hasattr(leaf, "size"))
    width = 2 * config.n_features + config.d_mlp + (2 * config.d_embed if config.full_model else 0)
    return 3 * state, STEP_ARRAYS * config.batch_size * width * 4


def auto_models_per_call(shapes: Shapes, devices: Sequence[jax.Device], n_models: int, group_size: int | None) -> int:
    """How many models one call may train so that it fits in ``MEMORY_FRACTION`` of the
    free memory (:func:`planning_memory_bytes`): :func:`models_that_fit` for the bytes
    :func:`estimate_model_bytes` gives ``shapes``. A rough estimate: pass
    ``max_models_per_call`` to override it.

    Args:
        shapes: The static shapes of the runs (:func:`~ccjax.engine.shapes_for`).
        devices: The devices the model axis is split over.
        n_models: Models to train in all; the answer never exceeds it.
        group_size: Models vmapped together per device (CPU), or None (all of a device's models).

    Returns:
        Models per call, at least 1.
    """
    return models_that_fit(estimate_model_bytes(shapes), devices, n_models, group_size)


def models_that_fit(
    model_bytes: tuple[int, int], devices: Sequence[jax.Device], n_models: int, group_size: int | None
) -> int:
    """How many models of ``model_bytes`` (resident, step: :func:`estimate_model_bytes`) one
    call may train within ``MEMORY_FRACTION`` of the free memory of ``devices``.

    On CPU a device runs ``group_size`` models at a time, so only those need step memory;
    elsewhere every model of the call does."""
    free = planning_memory_bytes(devices)
    resident, step = model_bytes
    budget = MEMORY_FRACTION * free
    if group_size is not None:  # fixed groups: step memory for n_devices * group_size models only
        fitting = (budget - len(devices) * group_size * step) // resident
    else:
        fitting = budget // (resident + step)
    return int(max(1, min(n_models, fitting)))


# A rough count of the (chunk_size, width) float32 arrays one model's chunk statistics hold.
EVAL_ARRAYS = 6


def auto_eval_models_per_call(
    n_features: int, d_mlp: int, chunk_size: int, devices: Sequence[jax.Device], n_models: int
) -> int:
    """How many models one evaluation call may hold within ``MEMORY_FRACTION`` of the free
    memory (:func:`planning_memory_bytes`): each model's forward pass over a chunk of
    ``chunk_size`` samples is vmapped together with the others of the call.

    Args:
        n_features: Number of input features n.
        d_mlp: Number of neurons.
        chunk_size: Samples per evaluation chunk.
        devices: The devices the model axis is split over.
        n_models: Models to evaluate in all; the answer never exceeds it.

    Returns:
        Models per call, at least 1.
    """
    free = planning_memory_bytes(devices)
    per_model = EVAL_ARRAYS * chunk_size * (n_features + d_mlp) * 4
    return int(max(1, min(n_models, MEMORY_FRACTION * free // per_model)))
