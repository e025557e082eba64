"""The model axis over devices: a 1-D mesh ``("model",)`` and padding to fill it."""

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MODEL_AXIS = "model"  # mesh axis the models are sharded over


def model_sharding(devices: Sequence[jax.Device] | None, n_models: int) -> tuple[list, Mesh, NamedSharding]:
    """Devices to use (at most one per model, so none idles on padding), their 1-D mesh
    and the sharding of a leading model axis over it."""
    devices = list(jax.devices() if devices is None else devices)[:n_models]
    mesh = Mesh(np.array(devices), (MODEL_AXIS,))
    return devices, mesh, NamedSharding(mesh, PartitionSpec(MODEL_AXIS))


def pad_models(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with its last model repeated along axis 0 up to ``size`` models."""
    return np.concatenate([array, np.repeat(array[-1:], size - len(array), axis=0)])
