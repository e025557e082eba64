"""The model axis over devices: a 1-D mesh ``("model",)``, padding to fill it, and the
free memory that decides how many models one call may hold."""

import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MODEL_AXIS = "model"  # mesh axis the models are sharded over
MEMORY_FRACTION = 0.5  # the share of free memory one call may plan to use


def free_memory_bytes(devices: Sequence[jax.Device]) -> int | None:
    """Free memory the model axis can use: on GPU/TPU the devices' free memory, on CPU
    the host's available memory (all CPU devices share it); None if unknown."""
    if devices[0].platform != "cpu":
        stats = devices[0].memory_stats() or {}
        if "bytes_limit" not in stats:
            return None
        return len(devices) * (stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def models_per_call(n_models: int, per_call: int | None) -> tuple[int, int]:
    """``(calls, models per call)``: ``n_models`` split into equal calls of at most ``per_call``."""
    per_call = min(per_call or n_models, n_models)
    calls = -(-n_models // per_call)
    return calls, -(-n_models // calls)


def model_sharding(devices: Sequence[jax.Device] | None, n_models: int) -> tuple[list, Mesh, NamedSharding]:
    """Devices to use (at most one per model, so none idles on padding), their 1-D mesh
    and the sharding of a leading model axis over it."""
    devices = list(jax.devices() if devices is None else devices)[:n_models]
    mesh = Mesh(np.array(devices), (MODEL_AXIS,))
    return devices, mesh, NamedSharding(mesh, PartitionSpec(MODEL_AXIS))


def pad_models(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with its last model repeated along axis 0 up to ``size`` models."""
    return np.concatenate([array, np.repeat(array[-1:], size - len(array), axis=0)])
