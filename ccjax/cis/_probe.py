"""A probe that a sign-gated linear readout fails: exactly two active features that share neurons.

With one active feature, a model whose ReLUs only gate the input's sign is a linear map of it
(the built references of :mod:`ccjax.cis._built`), and the search's samples at small p are
mostly such rows. Two active features that feed the same neurons are where a linear readout
goes wrong: of opposite signs, the negative one switches off neurons the positive one needs;
of equal signs, their contributions add inside the ReLUs. Each model is probed on its own
worst pairs: every feature i with the partner j whose positive input weights overlap i's most
(cosine of ``relu(W_in)`` rows), so that every probed pair shares neurons, for trained and
built models alike. The naive model is scored on the trained model's probe rows.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._linalg import matmul
from .._types import Array, Float, Int, PRNGKeyArray
from ..problem._tasks import Task
from ._evaluate import MeanSem, _estimate
from ._models import MODEL_FAMILIES, Params

PROBE_SEED = 20_260_003  # the probe's magnitudes, apart from every other stream
PROBE_ROWS = 32  # rows per (feature, partner) pair


class Probe(NamedTuple):
    """Losses L on the probe's rows: two active features that share neurons.

    Attributes:
        opposite: The model's loss with the feature positive and its partner negative.
        equal: The model's loss with both positive.
        naive_opposite: The naive model's loss on the same opposite-sign rows.
        naive_equal: The naive model's loss on the same equal-sign rows.
    """

    opposite: MeanSem
    equal: MeanSem
    naive_opposite: MeanSem
    naive_equal: MeanSem


def signed_inputs(task: Task) -> bool:
    """Whether the task's inputs keep a negative sign (the probe needs them; ``and-pairs``' do not).

    Args:
        task: A search task.

    Returns:
        True where :meth:`Task.input_values` maps a negative value to a negative input.
    """
    return bool(task.input_values(jnp.full((1, 1), -0.5, jnp.float32))[0, 0] < 0)


def shared_partners(w_in: Float[Array, "n_features d_mlp"]) -> Int[Array, " n_features"]:
    """Each feature's partner: the other feature whose positive input weights overlap its own most.

    Args:
        w_in: The model's first-layer weights, (n_features, d_mlp).

    Returns:
        For each feature i, the j ≠ i of largest cosine between ``relu(W_in)`` rows i and j, (n_features,).
    """
    positive = jax.nn.relu(w_in)
    unit = positive / jnp.maximum(jnp.linalg.norm(positive, axis=1, keepdims=True), 1e-30)
    overlap = matmul(unit, unit.T)
    return jnp.argmax(jnp.where(jnp.eye(w_in.shape[0], dtype=bool), -jnp.inf, overlap), axis=1)


def probe_rows(
    task: Task, partners: Int[Array, " n_features"], key: PRNGKeyArray, sign: float
) -> Float[Array, "rows n_features"]:
    """:data:`PROBE_ROWS` rows per feature i: i active at +|u|, its partner at ``sign`` · |u'|,
    magnitudes in (0, 1], through the task's :meth:`Task.input_values`.

    Args:
        task: The search task.
        partners: Each feature's partner, (n_features,) (:func:`shared_partners`).
        key: PRNG key of the magnitudes.
        sign: The partner's sign, -1.0 (opposite signs) or 1.0 (equal signs).

    Returns:
        The inputs, (n_features · PROBE_ROWS, n_features).
    """
    n = partners.shape[0]
    magnitude = 1.0 - jax.random.uniform(key, (2, n, PROBE_ROWS))  # in (0, 1]
    rows = jnp.arange(n * PROBE_ROWS)
    first, second = jnp.repeat(jnp.arange(n), PROBE_ROWS), jnp.repeat(partners, PROBE_ROWS)
    x = jnp.zeros((n * PROBE_ROWS, n), jnp.float32).at[rows, first].set(magnitude[0].ravel())
    return task.input_values(x.at[rows, second].set(sign * magnitude[1].ravel()))


def probe(task: Task, params: Params, n_features: int, d_mlp: int, p) -> Probe:
    """One model's :class:`Probe`: its loss on its own shared-neuron pairs, and the naive model's there.

    Args:
        task: The search task (signed inputs: :func:`signed_inputs`).
        params: One model's parameters, of the task's model family (with a ``w_in``).
        n_features: Number of input features n.
        d_mlp: Number of neurons d (the outputs the naive model computes).
        p (float | Array): Feature probability, for the naive model's constant.

    Returns:
        The losses L, each the mean over rows of :meth:`Task.sample_loss` and its standard error.
    """
    apply, partners = MODEL_FAMILIES[task.family].apply, shared_partners(params["w_in"])
    losses = []
    for sign in (-1.0, 1.0):
        x = probe_rows(task, partners, jax.random.fold_in(jax.random.key(PROBE_SEED), sign > 0), sign)
        target = task.labels(x, None)
        naive = task.naive_predictions(target, n_features, d_mlp, p)
        losses.append((task.sample_loss(apply(params, x), target), task.sample_loss(naive, target)))
    (opposite, naive_opposite), (equal, naive_equal) = losses
    return Probe(*(_estimate(loss) for loss in (opposite, equal, naive_opposite, naive_equal)))
