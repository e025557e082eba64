"""Built (untrained) references: for every search task, a model of the task's own form, made
by hand and scored by the same evaluation on the same samples as the trained models.

- The ReLU tasks (``"mlp"`` family): a non-negative sparse embedding ``W_in`` (k ones per
  row at random neurons) and ``W_out = c · pinv(W_in)``. With one active feature and
  ``W_in ≥ 0`` the ReLU only gates the input's sign, so on each feature the model is a
  linear map, a rank-d approximation of the identity: it computes nothing a sign-gated
  linear readout does not. The naive model (one neuron per served feature) is a candidate
  too.
- ``two-step`` (``"two-layer"``): the one-layer semi-NMF model ``relu(x U) c V`` of
  ``relu(A)`` (:func:`semi_nmf_reference`, the paper's §5 mechanism), written in the two
  layers: the first layer's hidden activations ``a = relu(x U) ≥ 0`` are ``h pinv(V)`` of its
  intermediates ``h = a V``, so the second layer re-reads them exactly.
- ``and-pairs`` (``"mlp-bias"``): the universal-AND construction of Hänni et al. 2024
  (arXiv:2408.05451, §3): each neuron reads a random subset of the features (each with
  probability q) with bias −1, so it fires when two of its features are active; the AND of
  (i, j) is read as ``c`` times the mean of the neurons that read both, and a pair that no
  neuron reads gets the naive constant p². The naive construction (d pairs exact) is one of
  the candidates, so the built reference is never worse than naive on the selection samples.

Each builder makes a few candidates on a small grid (k or q, and the scale c), in numpy; the
one of least loss L on separate *selection* samples (:data:`SELECTION_SEED`) is the reference
(:func:`choose_built`), evaluated on the search's evaluation samples and, as a check, on fresh ones. Where the
naive model is a candidate (the ReLU tasks, ``and-pairs``), its structure is recorded as 0.
"""

from collections.abc import Callable

import jax
import numpy as np

from .._types import Float, PRNGKeyArray
from ..problem._tasks import Task
from ._and_pairs import AndPairs
from ._two_step import TwoStep, semi_nmf_reference

SELECTION_SEED = 20_260_002  # the samples that choose a built reference, apart from the evaluation's
EMBEDDING_WIDTHS = (2, 4, 8, 16)  # k: neurons per feature of the sparse embedding
EMBEDDING_SCALES = (0.4, 0.7, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0)  # c: 1/c about the readout's diagonal
SEMI_NMF_SCALES = (0.25, 0.5, 0.75, 1.0, 1.25)
AND_SHARED_NEURONS = (0.5, 1.0, 2.0, 4.0)  # d q², the expected number of neurons reading a given pair
AND_SCALES = (0.5, 0.75, 1.0)

Weights = dict[str, np.ndarray]
"""One model's parameters as numpy arrays (a model family's names), or several stacked on a leading axis."""
Candidates = tuple[list[Weights], Float[np.ndarray, "candidates 2"]]
"""A builder's candidate models and each one's (structure, scale)."""


def _rng(key: PRNGKeyArray) -> np.random.Generator:
    """A numpy generator seeded from a jax key: the builders draw in numpy (no compiles)."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())


def sparse_embedding(
    rng: np.random.Generator, n_features: int, d_mlp: int, width: int
) -> Float[np.ndarray, "n_features d_mlp"]:
    """A non-negative embedding: ``width`` ones per row, at distinct neurons drawn uniformly.

    Args:
        rng: The numpy generator that draws the neurons.
        n_features: Rows n.
        d_mlp: Columns (neurons) d; ``width`` is clipped to it.
        width: Ones per row, k.

    Returns:
        ``W_in``, (n_features, d_mlp) float64 of zeros and ones.
    """
    order = np.argsort(rng.random((n_features, d_mlp)), axis=1)[:, : min(width, d_mlp)]
    w_in = np.zeros((n_features, d_mlp))
    w_in[np.arange(n_features)[:, None], order] = 1.0
    return w_in


def _embedding_candidates(task: Task, n: int, d: int, p: float, key: PRNGKeyArray) -> Candidates:
    """The naive model (structure 0) and the sparse embedding with the scaled pseudo-inverse readout,
    for k × c (structure = k)."""
    models, settings, rng = [{"w_in": np.eye(n, d), "w_out": np.eye(d, n)}], [(0.0, 1.0)], _rng(key)
    for width in EMBEDDING_WIDTHS:
        w_in = sparse_embedding(rng, n, d, width)
        readout = np.linalg.pinv(w_in)
        models += [{"w_in": w_in, "w_out": scale * readout} for scale in EMBEDDING_SCALES]
        settings += [(min(width, d), scale) for scale in EMBEDDING_SCALES]
    return models, np.asarray(settings)


def _semi_nmf_candidates(task: TwoStep, n: int, d: int, p: float, key: PRNGKeyArray) -> Candidates:
    """The one-layer semi-NMF model of relu(A) in the two-layer form, for each c (structure = rank d)."""
    factors = semi_nmf_reference(task, n, d, key)
    u, v = np.asarray(factors["w_in"], np.float64), np.asarray(factors["w_out"], np.float64)
    layers = {"w_in": u, "w_out": v, "w_in_2": np.linalg.pinv(v)}
    return [layers | {"w_out_2": scale * v} for scale in SEMI_NMF_SCALES], np.asarray([(d, c) for c in SEMI_NMF_SCALES])


def _naive_and(pairs: np.ndarray, n: int, d: int, p: float) -> Weights:
    """The naive model as weights: neuron a computes pair a's AND exactly, ``relu(x_i + x_j - 1)``."""
    served = np.arange(min(d, len(pairs)))
    w_in, w_out = np.zeros((n, d)), np.zeros((d, len(pairs)))
    w_in[pairs[served, 0], served] = w_in[pairs[served, 1], served] = 1.0
    w_out[served, served] = 1.0
    b_out = np.full(len(pairs), p**2)
    b_out[served] = 0.0
    return {"w_in": w_in, "b_in": -np.ones(d), "w_out": w_out, "b_out": b_out}


def universal_and(pairs: np.ndarray, wiring: Float[np.ndarray, "n d"], p: float, scale: float) -> Weights:
    """Hänni et al.'s (2024) universal AND on a given wiring: neuron a reads feature i where
    ``wiring[i, a] = 1`` (weight 1, bias −1, so it fires when two of its features are active); the AND
    of pair (i, j) is ``scale`` times the mean of the neurons that read both, or the naive constant p²
    where none does.

    Args:
        pairs: The task's pairs, (m, 2) feature indices (:meth:`AndPairs.pairs`).
        wiring: Which neurons read which features, (n, d) zeros and ones (random, each one with probability q).
        p: Feature probability (the constant p² of unread pairs).
        scale: The readout's scale c.

    Returns:
        The ``"mlp-bias"`` weights ``w_in`` (n, d), ``b_in`` (d,), ``w_out`` (d, m), ``b_out`` (m,), float64.
    """
    w_in = np.asarray(wiring, np.float64)
    shared = w_in[pairs[:, 0]] * w_in[pairs[:, 1]]  # (m, d): the neurons that read both features of a pair
    count = shared.sum(axis=1)
    w_out = (scale * shared / np.maximum(count, 1.0)[:, None]).T
    return {"w_in": w_in, "b_in": -np.ones(w_in.shape[1]), "w_out": w_out, "b_out": np.where(count > 0, 0.0, p**2)}


def _and_candidates(task: AndPairs, n: int, d: int, p: float, key: PRNGKeyArray) -> Candidates:
    """The naive construction (structure 0) and the universal AND for each d q² × c (structure = q)."""
    pairs, rng = task.pairs(n), _rng(key)
    models, settings = [_naive_and(pairs, n, d, p)], [(0.0, 1.0)]
    for shared in AND_SHARED_NEURONS:
        q = min(1.0, float(np.sqrt(shared / d)))
        wiring = (rng.random((n, d)) < q).astype(np.float64)  # one wiring per q, read at every c
        models += [universal_and(pairs, wiring, p, scale) for scale in AND_SCALES]
        settings += [(q, scale) for scale in AND_SCALES]
    return models, np.asarray(settings)


SETTINGS = {
    "selection_seed": SELECTION_SEED,
    "embedding": [EMBEDDING_WIDTHS, EMBEDDING_SCALES],
    "semi_nmf": SEMI_NMF_SCALES,
    "and": [AND_SHARED_NEURONS, AND_SCALES],
}
"""Every setting the built references depend on (a search's stage keys include them)."""


def builder(task: Task) -> Callable[[Task, int, int, float, PRNGKeyArray], Candidates] | None:
    """The candidates' builder of ``task``: ``builder(task)(task, n, d, p, key) -> (models, settings)``.

    Args:
        task: A search task.

    Returns:
        The semi-NMF builder for a :class:`TwoStep`, the universal AND for an :class:`AndPairs`, the
            sparse embedding for any other task of the ``"mlp"`` family (signed inputs); None otherwise.
    """
    if isinstance(task, TwoStep):
        return _semi_nmf_candidates
    if isinstance(task, AndPairs):
        return _and_candidates
    return _embedding_candidates if task.family == "mlp" else None


def stack(models: list[Weights]) -> Weights:
    """Models' parameters stacked on a leading axis, float32.

    Args:
        models: One dict of arrays per model, all with the same names and shapes.

    Returns:
        One dict: each array stacked, (models, ...).
    """
    return {name: np.stack([model[name] for model in models]).astype(np.float32) for name in models[0]}


def choose_built(
    task: Task, n: int, d: int, ps: np.ndarray, key: PRNGKeyArray, score: Callable[[Weights, np.ndarray], np.ndarray]
) -> tuple[Weights, Float[np.ndarray, "ps 2"]]:
    """The built reference at each p: of its builder's candidates (:func:`builder`), the one that
    ``score`` gives the least loss L, scored on selection samples (never the evaluation's).

    Args:
        task: The search task; :func:`builder` must have a builder for it.
        n: Number of input features n.
        d: Number of neurons d.
        ps: Feature probabilities in (0, 1], (ps,).
        key: PRNG key of the candidates' structure (the same at every p).
        score: ``score(stacked params, ps)``: each model's loss L at its p on the selection samples,
            e.g. the mean of :func:`evaluate_model`'s ``loss`` with a key of :data:`SELECTION_SEED`.

    Returns:
        params: The chosen models' parameters, stacked on a leading (ps,) axis, float32.
        settings: Each chosen model's (structure, scale): (k, c) for the sparse embedding, (d, c) for
            semi-NMF, (q, c) for the universal AND; structure 0: the naive model; (ps, 2).
    """
    built = [builder(task)(task, n, d, float(p), key) for p in ps]
    every = stack([model for models, _ in built for model in models])
    sizes = [len(models) for models, _ in built]
    losses = np.split(np.asarray(score(every, np.repeat(np.asarray(ps, np.float64), sizes))), np.cumsum(sizes)[:-1])
    best = [int(np.argmin(loss)) for loss in losses]
    chosen = stack([models[i] for (models, _), i in zip(built, best, strict=True)])
    return chosen, np.stack([settings[i] for (_, settings), i in zip(built, best, strict=True)])
