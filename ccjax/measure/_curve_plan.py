"""A loss curve's plan: which k to estimate, the sample budget and the call layout,
fixed on the host before anything is compiled (docs/paper.md §4).

:func:`plan_curve` checks the arguments of :func:`ccjax.loss_curve`, picks the k whose
``c_k`` are estimated (skipping k of negligible binomial weight at every p, with a bound
on what they could add), and splits the models into calls over the devices.
:func:`samples_needed` is the allocation of each round (Neyman allocation from the
current estimates) and :func:`chunk_counts` lays a round's samples out in compiled
chunks. All of it is host arithmetic, cheap and testable on its own.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding

from ..engine._memory import auto_eval_models_per_call, call_slices
from ..engine._sharding import model_sharding, plan_models_per_call

DEFAULT_REL_SEM = 0.003  # the target: SE <= 0.3% of L/p at every p
PILOT_SAMPLES = 256  # per k, to fit beta_k and the variance the allocation uses
MIN_SAMPLES = 64  # per estimated k in the main run
MAX_SAMPLES_PER_K = 4_000_000  # per estimated k in the main run
CHUNK_SIZE = 4096  # samples per compiled call
TRUNCATION_TOLERANCE = 1e-6  # bound on the L/p that skipped k could add, at every p
SAFETY = 0.9  # aim at SAFETY * rel_sem, since the allocation uses estimated variances
MAX_ROUNDS = 4  # allocation rounds after the pilot


def binomial_weights(p_values: Sequence[float] | np.ndarray, n_features: int) -> np.ndarray:
    """``Binom(k; n, p)`` for k = 0..n (columns) at each p (rows), in float64: the weights of
    ``L(p) = sum_k Binom(k; n, p) c_k`` (docs/paper.md §4, "Evaluation by the number of active features").

    Args:
        p_values: the feature probabilities, (P,).
        n_features: the number of features n.

    Returns:
        The probabilities of exactly k active features, (P, n + 1), computed in log space.
    """
    p = np.asarray(p_values, np.float64)[:, None]
    k = np.arange(n_features + 1, dtype=np.float64)[None, :]
    log_choose = (
        math.lgamma(n_features + 1) - np.vectorize(math.lgamma)(k + 1) - np.vectorize(math.lgamma)(n_features - k + 1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        log_successes = np.where(k > 0, k * np.log(p), 0.0)
        log_failures = np.where(k < n_features, (n_features - k) * np.log1p(-p), 0.0)
        log_w = log_choose + log_successes + log_failures
    return np.exp(log_w)


def check_p(p_values) -> np.ndarray:
    """``p_values`` as a 1-D float64 array, each in (0, 1] (else a ValueError)."""
    p = np.atleast_1d(np.asarray(p_values, np.float64))
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p must be a non-empty 1-D list of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0.0) or np.any(p > 1.0):
        raise ValueError(f"every p must be in (0, 1], got {p.tolist()}")
    return p


def check_rel_sem(rel_sem, p: np.ndarray) -> np.ndarray:
    """The relative standard error each p must meet: one positive number, or one per p."""
    rel_sem = np.asarray(rel_sem, np.float64)
    if rel_sem.shape not in ((), p.shape) or not np.all(rel_sem > 0):
        raise ValueError(f"rel_sem must be positive: one number, or one per p ({p.size}); got {rel_sem.tolist()}")
    return np.broadcast_to(rel_sem, p.shape)


def check_sample_counts(**counts) -> None:
    """Each named sample count must be an integer >= 2."""
    for name, value in counts.items():
        if int(value) < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")


class CurvePlan(NamedTuple):
    """Everything :func:`ccjax.loss_curve` fixes before it runs a sample."""

    p: np.ndarray  # (P,)
    rel_sem: np.ndarray  # (P,), the relative standard error each p must meet
    weights: np.ndarray  # (P, n + 1), Binom(k; n, p)
    estimated: np.ndarray  # (n + 1,) bool, the k whose c_k is estimated by Monte Carlo
    truncation_bound: np.ndarray  # (P,), bounds the L/p that the skipped k could add
    exact_c1: bool  # c_1 is exact (the task's one_feature hook), else estimated
    pilot_samples: int  # per estimated k
    min_samples: int  # per estimated k in the main run
    max_samples_per_k: int
    chunk_size: int  # samples per compiled call
    calls: tuple[slice, ...]  # the flat models of each call; calls take turns
    sharding: NamedSharding  # of a call's model axis
    padded: int  # models per call after padding to a multiple of the devices

    @property
    def n_features(self) -> int:
        return self.weights.shape[1] - 1

    @property
    def n_estimated(self) -> int:
        return int(np.count_nonzero(self.estimated))


def select_k(
    p: np.ndarray, weights: np.ndarray, bound_slope: float | None, exact_c1: bool, truncation_tolerance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which k to estimate, and the bound on the L/p the others could add at each p
    (``weights``: :func:`binomial_weights` at ``p``).

    Skipping k adds at most ``w_k k B / p`` to L/p (``c_k <= k B``, B = ``bound_slope``,
    the largest over the models); a k is skipped only if that is below
    ``truncation_tolerance / n`` at every p, so all skipped k add at most the tolerance.
    Without a bound (``bound_slope`` None) only k of zero weight at every p are skipped.
    k = 0 is never estimated (``c_0 = 0``), nor k = 1 when ``c_1`` is exact.
    """
    n_features = weights.shape[1] - 1
    first = 2 if exact_c1 else 1
    estimated = np.zeros(n_features + 1, bool)
    if bound_slope is None:
        worst = np.zeros_like(weights)
        estimated[first:] = weights[:, first:].max(axis=0) > 0.0
    else:
        worst = weights * np.arange(n_features + 1) * bound_slope / p[:, None]
        estimated[first:] = worst[:, first:].max(axis=0) > truncation_tolerance / n_features
    return estimated, (worst * ~estimated)[:, 2:].sum(axis=1)


def call_layout(
    n_models: int,
    n_features: int,
    d_mlp: int,
    chunk_size: int,
    devices: Sequence[jax.Device] | None,
    max_models_per_call: int | None,
) -> tuple[tuple[slice, ...], NamedSharding, int]:
    """The models' calls (at most ``max_models_per_call`` each, default from the free
    memory: :func:`~ccjax.engine.auto_eval_models_per_call`), the sharding of a call's
    model axis and the padded number of models per call."""
    devices = list(jax.devices() if devices is None else devices)
    per_call = max_models_per_call or plan_models_per_call(
        lambda devices, n_models: auto_eval_models_per_call(n_features, d_mlp, chunk_size, devices, n_models),
        devices,
        n_models,
    )
    calls = call_slices(n_models, per_call)
    per_call = calls[0].stop
    devices, _, sharding = model_sharding(devices, per_call)
    return tuple(calls), sharding, -(-per_call // len(devices)) * len(devices)


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only copy, so that a plan cannot change after it is made."""
    array = np.array(array)
    array.flags.writeable = False
    return array


class CurveOptions(NamedTuple):
    """The sampling options of :func:`ccjax.loss_curve` (documented there)."""

    rel_sem: float | Sequence[float] | np.ndarray = DEFAULT_REL_SEM
    pilot_samples: int = PILOT_SAMPLES
    min_samples: int = MIN_SAMPLES
    max_samples_per_k: int = MAX_SAMPLES_PER_K
    truncation_tolerance: float = TRUNCATION_TOLERANCE
    chunk_size: int = CHUNK_SIZE
    devices: Sequence[jax.Device] | None = None
    max_models_per_call: int | None = None


def check_options(p_values, options: CurveOptions) -> tuple[np.ndarray, CurveOptions]:
    """``p_values`` checked (:func:`check_p`) and ``options`` checked, with ``rel_sem``
    one per p (:func:`check_rel_sem`); a ValueError for a bad value."""
    p = check_p(p_values)
    rel_sem = check_rel_sem(options.rel_sem, p)
    check_sample_counts(
        pilot_samples=options.pilot_samples, min_samples=options.min_samples, chunk_size=options.chunk_size
    )
    return p, options._replace(rel_sem=rel_sem)


def plan_curve(
    p_values: Sequence[float] | np.ndarray,
    n_models: int,
    n_features: int,
    d_mlp: int,
    bound_slope: float | None,
    *,
    exact_c1: bool = True,
    **options,
) -> CurvePlan:
    """The plan of :func:`ccjax.loss_curve` (its sampling options: the fields of
    :class:`CurveOptions`, any other name is a TypeError) for ``n_models`` models whose
    loss bound slope is at most ``bound_slope`` (None: no bound); compiles nothing."""
    p, checked = check_options(p_values, CurveOptions(**options))
    return make_curve_plan(p, checked, n_models, n_features, d_mlp, bound_slope, exact_c1)


def make_curve_plan(
    p: np.ndarray,
    options: CurveOptions,
    n_models: int,
    n_features: int,
    d_mlp: int,
    bound_slope: float | None,
    exact_c1: bool,
) -> CurvePlan:
    """:func:`plan_curve` of ``p`` and ``options`` already checked (:func:`check_options`)."""
    weights = binomial_weights(p, n_features)  # (P, n + 1)
    estimated, truncation_bound = select_k(p, weights, bound_slope, exact_c1, options.truncation_tolerance)
    devices, max_models_per_call = options.devices, options.max_models_per_call
    calls, sharding, padded = call_layout(n_models, n_features, d_mlp, options.chunk_size, devices, max_models_per_call)
    return CurvePlan(
        p=_read_only(p),
        rel_sem=_read_only(options.rel_sem),
        weights=_read_only(weights),
        estimated=_read_only(estimated),
        truncation_bound=_read_only(truncation_bound),
        exact_c1=exact_c1,
        pilot_samples=options.pilot_samples,
        min_samples=options.min_samples,
        max_samples_per_k=options.max_samples_per_k,
        chunk_size=options.chunk_size,
        calls=calls,
        sharding=sharding,
        padded=padded,
    )


def samples_needed(plan: CurvePlan, c1: np.ndarray, c_estimate: np.ndarray, residual_var: np.ndarray) -> np.ndarray:
    """Samples each k needs so that every p meets ``SAFETY * rel_sem`` for every model
    (Neyman allocation, the largest over p's and models), clipped to the plan's bounds;
    0 for k not estimated.

    ``c1`` (models,), and ``c_estimate`` and ``residual_var`` (models, n + 1): the current
    ``c_k`` and the variance of a sample's control-variate residual at each k.
    """
    n_features, estimated, weights = plan.n_features, plan.estimated, plan.weights
    # L(p) in L units from the current c_k, and the variance each p may have.
    interaction = (c_estimate - c1[:, None] * np.arange(n_features + 1)) * estimated
    loss = plan.p[None, :] * n_features * c1[:, None] + interaction @ weights.T  # (models, P)
    allowed_var = np.maximum((SAFETY * plan.rel_sem[None, :] * loss) ** 2, 1e-300)
    sigma = np.sqrt(residual_var) * estimated  # (models, n + 1)
    weighted = weights[None, :, :] * sigma[:, None, :]  # (models, P, n + 1)
    needed = weighted * weighted.sum(axis=2, keepdims=True) / allowed_var[:, :, None]
    target = np.ceil(needed.max(axis=(0, 1)))
    return np.where(estimated, np.clip(target, plan.min_samples, plan.max_samples_per_k), 0).astype(np.int64)


def chunk_counts(counts_per_k: np.ndarray, chunk_size: int) -> np.ndarray:
    """The active-feature count of every sample, ``counts_per_k[k]`` samples of each k in
    order, padded with k = 0 samples to whole chunks: (chunks, chunk_size) int32."""
    counts = np.repeat(np.arange(len(counts_per_k)), counts_per_k).astype(np.int32)
    counts = np.concatenate([counts, np.zeros(-len(counts) % chunk_size, np.int32)])
    return counts.reshape(-1, chunk_size)
