"""The references of one static combination beside its trained models: the built model
(:func:`choose_built`, chosen on selection samples with the evaluation's budget) on the
evaluation's very samples and, as a check, on fresh ones, and the shared-neuron probe
(:func:`probe`) of the trained and the built models."""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._types import PRNGKeyArray
from ..problem._keys import seed_key
from ..problem._tasks import Task
from ._built import SELECTION_SEED, Weights, builder, choose_built
from ._built import SETTINGS as BUILT_SETTINGS
from ._evaluate import MeanSem
from ._models import Params
from ._probe import PROBE_ROWS, PROBE_SEED, probe, signed_inputs

FRESH_SEED = 20_260_004  # the built reference's check samples, apart from the evaluation's
SETTINGS = {"built": BUILT_SETTINGS, "fresh_seed": FRESH_SEED, "probe": [PROBE_SEED, PROBE_ROWS]}
"""Every setting the reference arrays depend on besides the trained models (in the stage keys)."""

ARRAYS = {
    "built_loss": "the built reference's loss on the same samples (NaN: the task has no builder)",
    "built_loss_sem": "its standard error",
    "built_fresh_loss": "the built reference's loss on fresh samples (a check of built_loss)",
    "built_fresh_loss_sem": "its standard error",
    "built_structure": "the built reference's k (embedding), rank (semi-NMF) or q (universal AND); 0: the naive model",
    "built_scale": "the built reference's readout scale c",
    "probe_opposite": "the loss on two active features sharing neurons, opposite signs (NaN: unsigned inputs)",
    "probe_equal": "the same, equal signs",
    "probe_naive_opposite": "the naive model's loss on the opposite-sign probe rows",
    "probe_naive_equal": "the naive model's loss on the equal-sign probe rows",
    "probe_built_opposite": "the built reference's loss on its own opposite-sign probe rows",
    "probe_built_equal": "the built reference's loss on its own equal-sign probe rows",
}
"""What :func:`reference_arrays` gives for every model, by name (losses L)."""

LossScore = Callable[[Params, jax.Array, PRNGKeyArray], MeanSem]
"""``score(stacked params, ps, key)``: each model's loss L at its p on the samples of ``key``."""


def in_chunks(loss: LossScore, size: int, key: PRNGKeyArray) -> Callable[[Weights, np.ndarray], np.ndarray]:
    """A :func:`choose_built` score: ``loss``'s mean on the samples of ``key``, run on ``size``
    models at a time (padded), so that a program compiled for ``size`` trained models serves."""

    def score(params: Weights, ps: np.ndarray) -> np.ndarray:
        count = len(ps)
        pad = np.concatenate([np.arange(count), np.full(-count % size, count - 1)])
        losses = []
        for start in range(0, len(pad), size):
            rows = pad[start : start + size]
            chunk = {name: value[rows] for name, value in params.items()}
            losses.append(np.asarray(loss(chunk, jnp.asarray(ps[rows], jnp.float32), key).mean))
        return np.concatenate(losses)[:count]

    return score


def _built_arrays(task: Task, n: int, d: int, ps: np.ndarray, key, loss: LossScore, probes) -> dict:
    """The built reference of each model's p (``ps``, one per model), chosen on selection samples,
    scored on the evaluation's and on fresh samples, and probed; each built model is scored once per
    trained model, so that the trained models' compiled evaluation and probe serve it too."""
    distinct, index = np.unique(ps, return_inverse=True)
    score = in_chunks(loss, len(ps), seed_key(SELECTION_SEED))
    params, settings = choose_built(task, n, d, distinct, seed_key(SELECTION_SEED + 1), score)
    params, settings = {name: value[index] for name, value in params.items()}, settings[index]
    ps32 = jnp.asarray(ps, jnp.float32)
    same, fresh = loss(params, ps32, key), loss(params, ps32, seed_key(FRESH_SEED))
    arrays = {"built_loss": same.mean, "built_loss_sem": same.sem}
    arrays |= {"built_fresh_loss": fresh.mean, "built_fresh_loss_sem": fresh.sem}
    arrays |= {"built_structure": settings[:, 0], "built_scale": settings[:, 1]}
    if signed_inputs(task):
        built_probe = probes(params, ps32)
        arrays |= {"probe_built_opposite": built_probe.opposite.mean, "probe_built_equal": built_probe.equal.mean}
    return arrays


def reference_arrays(
    task: Task, params: Params, n: int, d: int, ps: np.ndarray, key: PRNGKeyArray, loss: LossScore
) -> dict[str, np.ndarray]:
    """Every array of :data:`ARRAYS` for each of the trained models ``params`` (each at its p in ``ps``).

    Args:
        task: The search task.
        params: The trained models, stacked on a leading (models,) axis.
        n: Number of input features n.
        d: Number of neurons d.
        ps: Each model's feature probability, (models,).
        key: PRNG key of the evaluation's samples (the rows the trained models were scored on).
        loss: ``loss(stacked params, ps, key)``: each model's loss L at its p on the samples of ``key``, as
            the search scores the trained models (e.g. :func:`evaluate_loss` under ``vmap``).

    Returns:
        Each array of :data:`ARRAYS` by name, float64, (models,); NaN where the task has no builder
            (the ``built_*`` and ``probe_built_*`` arrays) or unsigned inputs (the ``probe_*`` arrays).
    """
    ps = np.asarray(ps, np.float64)
    probes = jax.jit(jax.vmap(lambda q, p: probe(task, q, n, d, p)))
    arrays = dict.fromkeys(ARRAYS, np.full(len(ps), np.nan))
    if builder(task) is not None:
        arrays |= _built_arrays(task, n, d, ps, key, loss, probes)
    if signed_inputs(task):
        trained = probes(params, jnp.asarray(ps, jnp.float32))
        arrays |= {f"probe_{name}": estimate.mean for name, estimate in trained._asdict().items()}
    return {name: np.asarray(value, np.float64) for name, value in arrays.items()}
