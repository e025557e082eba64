"""A sweep's training state between chunks, for checkpoints and ``resume`` (pure; the
files are written by :mod:`ccjax.io`).

A :class:`SweepCheckpoint` holds, for every model of the grid, each leaf of its
:class:`~ccjax.engine.RunState` (weights, optimizer state, mixing matrix, data key as raw
key data) after ``intervals_done`` logging intervals, and the history logged so far. The
step is ``intervals_done * log_every``; the data of step t is drawn from
``fold_in(data_key, t)``, so the data key and the step are the whole RNG state.

``fingerprint`` identifies the sweep (config, grid, initial weights): a checkpoint
resumes only the sweep that wrote it. It does not cover how the work was split (models
per call, devices, chunk length), which does not change the results.
"""

import dataclasses
import hashlib
import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..problem._keys import KEY_IMPL
from ..problem._tasks import MIXED_RELU
from ._sharding import to_host
from ._train import History

CHECKPOINT_FORMAT_VERSION = 2  # 2: History's losses are named ..._per_feature


class CheckpointError(ValueError):
    """A checkpoint does not belong to the sweep being resumed, or is malformed."""


class SweepCheckpoint(NamedTuple):
    """Everything needed to continue a sweep exactly where it stopped (host arrays).

    Attributes:
        fingerprint: The :func:`sweep_fingerprint` of the sweep that wrote it; only that sweep resumes it.
        intervals_done: Logging intervals trained; the step is ``intervals_done * log_every``.
        state_leaves: The leaves of every model's :class:`~ccjax.engine.RunState`, each (n_models, ...),
            with keys as raw key data.
        history: The history logged so far, each field (n_models, intervals_done).
    """

    fingerprint: str
    intervals_done: int
    state_leaves: tuple[np.ndarray, ...]  # RunState leaves, each (n_models, ...); keys as key data
    history: History  # each field (n_models, intervals_done)


def sweep_fingerprint(config, grid, initial_params=None, task=None) -> str:
    """SHA-256 of what determines a sweep's results: the config, the grid, the initial
    weights and the task (``None`` or the default task: the paper's labels).

    How the work is split (models per call, devices, chunk length) is not covered: it does
    not change the results.

    Args:
        config (TrainConfig): The sweep's config (a :class:`~ccjax.TrainConfig`).
        grid (Grid): The sweep's grid (:func:`~ccjax.make_grid`).
        initial_params (FeatureMLP | None): The starting weights, with leading axes ``grid.shape``, or
            None (random init).
        task (Task | None): The task trained on; None or the default task leave the fingerprint as it always was.

    Returns:
        The hex digest, 64 characters.
    """
    digest = hashlib.sha256()
    description = {
        "format": CHECKPOINT_FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "grid": {name: np.asarray(values).tolist() for name, values in zip(grid.names, grid.values, strict=True)},
    }
    if task is not None and task != MIXED_RELU:  # the paper's task keeps the fingerprints it always had
        description["task"] = f"{type(task).__module__}.{type(task).__qualname__}{task!r}"
    digest.update(json.dumps(description, sort_keys=True).encode())
    if initial_params is not None:
        for leaf in jax.tree.leaves(initial_params):
            digest.update(np.ascontiguousarray(np.asarray(leaf, np.float32)).tobytes())
    return digest.hexdigest()


def is_key(leaf) -> bool:
    return jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def host_leaves(state, n_models: int) -> tuple[np.ndarray, ...]:
    """The leaves of a stacked state as host arrays of its first ``n_models`` models
    (gathered from every process when the state spans several; all must call this)."""
    leaves = [jax.random.key_data(leaf) if is_key(leaf) else leaf for leaf in jax.tree.leaves(state)]
    return tuple(to_host(leaf)[:n_models] for leaf in leaves)


def restore_state(checkpoint: SweepCheckpoint, template, fingerprint: str, n_models: int):
    """The stacked state of ``checkpoint``, shaped like ``template`` (a stacked state or
    its ``jax.eval_shape``), after checking it belongs to the sweep ``fingerprint``."""
    if checkpoint.fingerprint != fingerprint:
        raise CheckpointError(
            "the checkpoint belongs to a different sweep (its config, grid or initial weights differ); "
            "resume with the settings that wrote it, or start afresh"
        )
    leaves, treedef = jax.tree.flatten(template)
    if len(checkpoint.state_leaves) != len(leaves):
        raise CheckpointError(
            f"the checkpoint holds {len(checkpoint.state_leaves)} state arrays, expected {len(leaves)}"
        )
    restored = []
    for index, (saved, expected) in enumerate(zip(checkpoint.state_leaves, leaves, strict=True)):
        shape = jax.eval_shape(jax.random.key_data, expected) if is_key(expected) else expected
        want = (n_models, *shape.shape[1:])
        if saved.shape != want or saved.dtype != shape.dtype:
            raise CheckpointError(
                f"state array {index} has shape {saved.shape} and dtype {saved.dtype}; expected {want} {shape.dtype}"
            )
        restored.append(jax.random.wrap_key_data(saved, impl=KEY_IMPL) if is_key(expected) else saved)
    history_shape = (n_models, checkpoint.intervals_done)
    for name, field in zip(History._fields, checkpoint.history, strict=True):
        if np.shape(field) != history_shape:
            raise CheckpointError(f"history field {name!r} has shape {np.shape(field)}, expected {history_shape}")
    return jax.tree.unflatten(treedef, restored)


def checkpoint_arrays(checkpoint: SweepCheckpoint) -> dict[str, np.ndarray | np.generic]:
    """The checkpoint as named arrays (for an ``.npz``)."""
    arrays = {
        "format_version": np.int64(CHECKPOINT_FORMAT_VERSION),
        "fingerprint": np.str_(checkpoint.fingerprint),
        "intervals_done": np.int64(checkpoint.intervals_done),
        "n_state_leaves": np.int64(len(checkpoint.state_leaves)),
    }
    arrays |= {f"state_{index}": leaf for index, leaf in enumerate(checkpoint.state_leaves)}
    arrays |= {
        f"history_{name}": np.asarray(field) for name, field in zip(History._fields, checkpoint.history, strict=True)
    }
    return arrays


def checkpoint_from_arrays(arrays: dict[str, np.ndarray]) -> SweepCheckpoint:
    """Inverse of :func:`checkpoint_arrays`; raises :class:`CheckpointError` on a bad layout."""
    try:
        version = int(arrays["format_version"])
        if version != CHECKPOINT_FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint format version {version} is not supported (this ccjax reads version "
                f"{CHECKPOINT_FORMAT_VERSION})"
            )
        n_leaves = int(arrays["n_state_leaves"])
        return SweepCheckpoint(
            fingerprint=str(arrays["fingerprint"]),
            intervals_done=int(arrays["intervals_done"]),
            state_leaves=tuple(arrays[f"state_{index}"] for index in range(n_leaves)),
            history=History(*(arrays[f"history_{name}"] for name in History._fields)),
        )
    except KeyError as error:
        raise CheckpointError(f"the checkpoint lacks the array {error.args[0]!r}") from None
