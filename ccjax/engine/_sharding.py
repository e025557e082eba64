"""The model axis over devices: a 1-D mesh ``("model",)``, padding to fill it, and moving
stacked models between the host and the mesh, also when the mesh spans several
processes (``jax.distributed``; docs/running.md, "Several hosts").

In a multi-process run ``jax.devices()`` lists every process's devices, but a process
can only read and write the shards on its own (addressable) devices. So host arrays
become global arrays through :func:`put_models` (each process supplies its own rows),
and global arrays come back through :func:`to_host` (gathered across processes). In a
single process these are a plain transfer each way.
"""

from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MODEL_AXIS = "model"  # mesh axis the models are sharded over


def _all_local(devices: Sequence[jax.Device]) -> bool:
    return all(device.process_index == jax.process_index() for device in devices)


def model_sharding(devices: Sequence[jax.Device] | None, n_models: int) -> tuple[list, Mesh, NamedSharding]:
    """Devices to use, their 1-D mesh and the sharding of a leading model axis over it.

    On one process at most one device per model is used, so none idles on padding.
    Devices of several processes are all kept: every process takes part in every call.
    """
    devices = list(jax.devices() if devices is None else devices)
    if _all_local(devices):
        devices = devices[:n_models]
    mesh = Mesh(np.array(devices), (MODEL_AXIS,))
    return devices, mesh, NamedSharding(mesh, PartitionSpec(MODEL_AXIS))


def pad_models(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with its last model repeated along axis 0 up to ``size`` models."""
    return np.concatenate([array, np.repeat(array[-1:], size - len(array), axis=0)])


def _is_key(leaf) -> bool:
    return jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _span(index: tuple[slice, ...], n_models: int) -> tuple[int, int]:
    start, stop, _ = index[0].indices(n_models)
    return start, stop


def process_rows(sharding: NamedSharding, n_models: int) -> slice:
    """The models (rows of a leading axis of ``n_models``) that this process's devices
    hold under ``sharding``: all of them on one process."""
    spans = sorted({_span(index, n_models) for index in sharding.addressable_devices_indices_map((n_models,)).values()})
    start, stop = spans[0][0], spans[-1][1]
    if sum(b - a for a, b in spans) != stop - start:
        raise ValueError("this process's devices do not hold one contiguous block of the model axis")
    return slice(start, stop)


def put_models(tree, sharding: NamedSharding, n_models: int, rows: slice | None = None):
    """Global arrays with a leading axis of ``n_models`` sharded by ``sharding``, from
    host arrays that hold the models ``rows`` of it (default: all). Each process need
    only hold its own :func:`process_rows`. Key arrays stay key arrays."""
    rows = slice(0, n_models) if rows is None else rows

    def put(leaf):
        if _is_key(leaf):
            return jax.random.wrap_key_data(put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        host = np.asarray(leaf)

        def shard(index):
            start, stop = _span(index, n_models)
            return host[(slice(start - rows.start, stop - rows.start), *index[1:])]

        return jax.make_array_from_callback((n_models, *host.shape[1:]), sharding, shard)

    return jax.tree.map(put, tree)


def local_models(tree, rows: slice):
    """Host copies of this process's models ``rows`` (:func:`process_rows`) of global
    arrays; the inverse of :func:`put_models`. Key arrays stay key arrays."""

    def get(leaf):
        if _is_key(leaf):
            return jax.random.wrap_key_data(get(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf))
        host = np.empty((rows.stop - rows.start, *leaf.shape[1:]), leaf.dtype)
        for shard in leaf.addressable_shards:
            start, stop = _span(shard.index, leaf.shape[0])
            host[start - rows.start : stop - rows.start] = np.asarray(shard.data)
        return host

    return jax.tree.map(get, tree)


def to_host(array) -> np.ndarray:
    """``array`` as one whole host array on every process; a global array that spans
    several processes is gathered from all of them (every process must call this)."""
    if isinstance(array, jax.Array) and not array.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(array, tiled=True))
    return np.asarray(jax.device_get(array))


def agreed_min(value: int) -> int:
    """The smallest ``value`` over all processes (every process must call this)."""
    if jax.process_count() == 1:
        return int(value)
    return int(np.min(multihost_utils.process_allgather(np.int64(value))))


def same_on_every_process(value: int) -> bool:
    """Whether every process holds the same ``value`` (every process must call this)."""
    if jax.process_count() == 1:
        return True
    values = multihost_utils.process_allgather(np.int64(value))
    return bool(np.all(values == values[0]))


def plan_models_per_call(
    fits: Callable[[Sequence[jax.Device], int], int], devices: Sequence[jax.Device], n_models: int
) -> int:
    """Models per call from a memory rule ``fits(devices, n_models)``
    (:mod:`ccjax.engine`). When ``devices`` span several processes, each process applies
    it to its own devices and its share of the models, and all take the smallest answer
    times the number of processes, so that every process plans the same calls."""
    if _all_local(devices):
        return fits(devices, n_models)
    local = [device for device in devices if device.process_index == jax.process_index()]
    n_processes = len({device.process_index for device in devices})
    per_process = agreed_min(fits(local, -(-n_models // n_processes)))
    return min(n_models, per_process * n_processes)
