"""Loss per feature L/p over whole curves of p, exact where possible (docs/paper.md §4).

With no biases an all-zero input has zero loss, so (docs/paper.md, "Evaluation by the number of active features")

    L(p) = sum_k Binom(k; n, p) c_k,

where ``c_k`` is the expected loss L given exactly k active features (uniform random
support, values U[-1, 1]). One set of ``c_k`` serves every p, so a curve over 100 p's
costs little more than one p.

* ``c_1`` is exact (:func:`one_feature_loss`): along one feature the model is linear on
  each side of 0.
* For k >= 2, ``c_k = k c_1 + r_k``: ``k c_1`` is the expectation of the *additive*
  loss ``A(x) = sum_i loss(x_i e_i)`` (each active feature alone), and the interaction
  ``r_k`` is estimated by Monte Carlo on ``loss(x) - beta_k (A(x) - k c_1)``: a control
  variate with known mean, so the estimate stays unbiased for any ``beta_k``.
  ``beta_k`` is fitted on a pilot run; a model without interference between features
  (the naive model) gets zero variance.
* Samples are drawn once and shared by every model and every p. A pilot run measures
  the per-k variance; the main run allocates samples across k (Neyman allocation, the
  maximum over requested p's and models) so that every p meets the requested relative
  standard error, topping up when the pilot underestimated.
* k's whose binomial weight is negligible at every requested p are skipped, with a
  rigorous bound on what they could add (:attr:`LossCurve.truncation_bound`), from
  ``c_k <= k (||W_in|| ||W_out|| + 1 + ||s M||)^2 / (3 n)``.

The labels, the loss and these exact pieces (``c_1``, the control variate, the bound)
come from a :class:`~ccjax.tasks.Task`, default the paper's
:data:`~ccjax.tasks.MIXED_RELU`; a task that does not declare a piece gets plain Monte
Carlo on exactly-k samples in its place (:mod:`ccjax.tasks`).

The evaluation is host-driven (a pilot, then allocated rounds of fixed-size compiled
chunks), like :func:`ccjax.sweep`; each chunk is one jitted call for all models,
with the model axis sharded over the devices. Under ``jax.distributed`` the devices of
every process share the models; each chunk's statistics are gathered to every process,
which all run the same host-side allocation.
"""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from ._linalg import matmul
from ._types import AnyArray, Array, Float, Int, PRNGKeyArray
from .data import sample_exactly_k
from .direct import Estimate
from .memory import auto_eval_models_per_call, call_slices
from .model import FeatureMLP, forward
from .sharding import model_sharding, pad_models, plan_models_per_call, to_host
from .tasks import MIXED_RELU, Task

DEFAULT_REL_SEM = 0.003  # the target: SE <= 0.3% of L/p at every p
PILOT_SAMPLES = 256  # per k, to fit beta_k and the variance the allocation uses
MIN_SAMPLES = 64  # per estimated k in the main run
CHUNK_SIZE = 4096  # samples per compiled call
TRUNCATION_TOLERANCE = 1e-6  # bound on the L/p that skipped k could add, at every p
SAFETY = 0.9  # aim at SAFETY * rel_sem, since the allocation uses estimated variances
MAX_ROUNDS = 4  # allocation rounds after the pilot


def _one_feature_hook(task: Task):
    if task.one_feature is None:
        raise ValueError(
            f"{type(task).__name__} declares no exact one_feature hook; estimate c_1 with loss_curve instead"
        )
    return task.one_feature


def one_feature_loss(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"], task: Task = MIXED_RELU
) -> Float[Array, ""]:
    """Exact ``c_1``: the expected loss L given exactly one active feature, from the
    task's ``one_feature`` hook (ValueError without one).

    For the default task the feature j is uniform and its value v ~ U[-1, 1]; the
    squared error is ``v^2`` times a unit squared error
    (:func:`~ccjax.loss.unit_squared_errors`), and ``E[v^2; v > 0] = 1/6``.
    """
    return _one_feature_hook(task)(params, scaled_mixing).c1


def exactly_one_loss_per_feature(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"], task: Task = MIXED_RELU
) -> Float[Array, ""]:
    """Exact L/p on exactly-one data (paper §4 variant; experiments 6 and 8).

    The feature rate of exactly-one data is 1/n, so L/p = n c_1. (The paper code
    divides by p = 0.01 = 1/n for n = 100.)
    """
    return params.w_in.shape[0] * one_feature_loss(params, scaled_mixing, task)


def naive_loss_per_feature(n_features: int = 100, d_mlp: int = 50) -> float:
    """L/p of the naive model on clean labels: ``(n - d)/n · 1/6`` (paper §5), 0.0833."""
    return MIXED_RELU.naive_loss_per_feature(n_features, d_mlp)


def binomial_weights(p_values: Sequence[float] | np.ndarray, n_features: int) -> np.ndarray:
    """``Binom(k; n, p)`` for k = 0..n (columns) at each p (rows), in float64."""
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


def loss_bound_slope(
    params: FeatureMLP, scaled_mixing: Float[Array, "n_features n_features"], task: Task = MIXED_RELU
) -> Float[Array, ""]:
    """A slope B with ``c_k <= k B`` for every k: the task's ``loss_bound_slope`` hook."""
    if task.loss_bound_slope is None:
        raise ValueError(f"{type(task).__name__} declares no loss_bound_slope hook")
    return task.loss_bound_slope(params, scaled_mixing)


class _Exact(NamedTuple):
    """Per-model exact parts; zeros (and no control-variate parts) where the task
    declares no hook for them."""

    c1: Float[Array, " model"]
    control_variate_parts: Any
    bound_slope: Float[Array, " model"]
    c1_second_moment: Float[Array, " model"]


def _exact_parts(params: FeatureMLP, scaled_mixing, task: Task = MIXED_RELU) -> _Exact:
    def one(params, scaled_mixing):
        zero = jnp.zeros((), params.w_in.dtype)
        parts = None if task.additive_loss is None else task.control_variate_parts(params, scaled_mixing)
        c1, second = (zero, zero) if task.one_feature is None else task.one_feature(params, scaled_mixing)
        slope = zero if task.loss_bound_slope is None else task.loss_bound_slope(params, scaled_mixing)
        return _Exact(c1, parts, slope, second)

    return jax.vmap(one)(params, scaled_mixing)


N_STATS = 7  # u, a, u^2, a^2, u a, r, r^2 (see _chunk_stats)


def _chunk_stats(
    params: FeatureMLP,
    scaled_mixing: Float[Array, "model n_features n_features"],
    exact: _Exact,
    beta: Float[Array, "model k"],
    shift: Float[Array, "model k"],
    counts: Int[Array, " chunk"],
    key: PRNGKeyArray,
    task: Task = MIXED_RELU,
) -> Float[Array, "model 7 k"]:
    """Per-k sums over one chunk of exactly-k samples, for every model.

    With ``loss`` the sample's L and ``A`` its additive loss: ``u = loss - shift_k``,
    ``a = A - k c_1`` and ``r = u - beta_k a``; returns the sums of u, a, u², a², u a,
    r and r² over the samples of each k (k = 0 holds the padding). Without the task's
    control variate, ``a = 0`` (so ``beta_k`` fits to 0 and ``r = u``).
    """
    n_features = params.w_in.shape[1]
    x = sample_exactly_k(key, counts, n_features)
    one_hot = jax.nn.one_hot(counts, n_features + 1, dtype=jnp.float32)

    def one(params, scaled_mixing, exact, beta, shift):
        loss = task.sample_loss(forward(params, x), task.labels(x, scaled_mixing))
        u = loss - shift[counts]
        if task.additive_loss is None:
            a = jnp.zeros_like(loss)
        else:
            a = task.additive_loss(exact.control_variate_parts, x) - counts * exact.c1
        r = u - beta[counts] * a
        stats = jnp.stack([u, a, u * u, a * a, u * a, r, r * r])
        return matmul(stats, one_hot)

    return jax.vmap(one)(params, scaled_mixing, exact, beta, shift)


_chunk_stats_jit = jax.jit(_chunk_stats, static_argnames="task")
_exact_parts_jit = jax.jit(_exact_parts, static_argnames="task")


class LossCurve(NamedTuple):
    """L/p at each requested p for a stack of models, with its ingredients.

    Leading ``models`` axes are those of the params passed in. ``c`` holds ``c_k``
    for k = 0..n (``c_0 = 0``; NaN for skipped k), ``c_sem`` its standard error
    (0 where exact). ``samples[k]`` is the number of exactly-k samples behind ``c_k``
    (shared by all models); ``n_evaluations`` counts every sample the model was run
    on, pilot and chunk padding included.
    ``truncation_bound[i]`` bounds the L/p that skipped k could add at ``p[i]``.
    ``loss_variance`` is Var(L | k) (pilot estimates; exact at k = 1), used to predict
    the standard error of direct Monte Carlo (:func:`direct_sem`).
    """

    p: np.ndarray  # (P,)
    loss_per_feature: np.ndarray  # (*models, P)
    sem: np.ndarray  # (*models, P)
    c: np.ndarray  # (*models, n + 1)
    c_sem: np.ndarray  # (*models, n + 1)
    loss_variance: np.ndarray  # (*models, n + 1)
    samples: np.ndarray  # (n + 1,)
    n_evaluations: int
    truncation_bound: np.ndarray  # (P,)
    seconds: float


class _Moments:
    """Running float64 sums of the chunk statistics, per model and k."""

    def __init__(self, n_models: int, n_k: int):
        self.sums = np.zeros((n_models, N_STATS, n_k))
        self.count = np.zeros(n_k, np.int64)

    def add(self, stats: np.ndarray, counts: np.ndarray):
        self.sums += stats
        self.count += np.bincount(counts, minlength=self.count.size)

    def mean(self, index: int) -> np.ndarray:
        return self.sums[:, index] / np.maximum(self.count, 1)


def _check_p(p_values) -> np.ndarray:
    p = np.atleast_1d(np.asarray(p_values, np.float64))
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p must be a non-empty 1-D list of probabilities, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p <= 0.0) or np.any(p > 1.0):
        raise ValueError(f"every p must be in (0, 1], got {p.tolist()}")
    return p


def _check_models(params: FeatureMLP, scaled_mixing) -> tuple[tuple[int, ...], int, int]:
    w_in, w_out, mixing = np.shape(params.w_in), np.shape(params.w_out), np.shape(scaled_mixing)
    if len(w_in) < 3:
        raise ValueError(
            f"params must be stacked with a leading model axis, got W_in of shape {w_in}; "
            "for one model use jax.tree.map(lambda a: a[None], params)"
        )
    lead, (n_features, d_mlp) = w_in[:-2], w_in[-2:]
    if w_out != lead + (d_mlp, n_features):
        raise ValueError(f"W_out has shape {w_out}, expected {lead + (d_mlp, n_features)} to match W_in {w_in}")
    if mixing != lead + (n_features, n_features):
        raise ValueError(f"scaled_mixing has shape {mixing}, expected {lead + (n_features, n_features)}")
    return lead, n_features, d_mlp


def _finite_models(params: FeatureMLP, scaled_mixing, n_models: int) -> np.ndarray:
    """(n_models,) True where every weight and mixing entry of the model is finite."""
    leaves = [*jax.tree.leaves(params), scaled_mixing]
    return np.all([np.isfinite(np.asarray(leaf)).reshape(n_models, -1).all(axis=1) for leaf in leaves], axis=0)


def _finite_curve(params, scaled_mixing, p, key, lead, finite, start, options) -> "LossCurve":
    """:func:`loss_curve` of the finite models only, NaN for the others (e.g. diverged
    training runs), so that one bad model cannot corrupt the shared sample allocation."""
    n_models = len(finite)

    def select(array):
        array = np.asarray(array)
        return array.reshape((n_models,) + array.shape[len(lead) :])[finite]

    n_features = scaled_mixing.shape[-1]
    if finite.any():
        curve = loss_curve(jax.tree.map(select, params), select(scaled_mixing), p, key, **options)
    else:
        nan = np.full((0, n_features + 1), np.nan)
        curve = LossCurve(
            p,
            np.full((0, p.size), np.nan),
            np.full((0, p.size), np.nan),
            nan,
            nan,
            nan,
            np.zeros(n_features + 1, np.int64),
            0,
            np.zeros(p.size),
            0.0,
        )

    def scatter(array):
        full = np.full((n_models,) + array.shape[1:], np.nan)
        full[finite] = array
        return full.reshape(lead + array.shape[1:])

    return curve._replace(
        loss_per_feature=scatter(curve.loss_per_feature),
        sem=scatter(curve.sem),
        c=scatter(curve.c),
        c_sem=scatter(curve.c_sem),
        loss_variance=scatter(curve.loss_variance),
        seconds=time.perf_counter() - start,
    )


def loss_curve(
    params: FeatureMLP,
    scaled_mixing: Float[AnyArray, "*models n_features n_features"],
    p_values: Sequence[float] | np.ndarray,
    key: PRNGKeyArray,
    *,
    rel_sem: float | Sequence[float] | np.ndarray = DEFAULT_REL_SEM,
    pilot_samples: int = PILOT_SAMPLES,
    min_samples: int = MIN_SAMPLES,
    max_samples_per_k: int = 4_000_000,
    truncation_tolerance: float = TRUNCATION_TOLERANCE,
    chunk_size: int = CHUNK_SIZE,
    devices: Sequence[jax.Device] | None = None,
    max_models_per_call: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    task: Task = MIXED_RELU,
) -> LossCurve:
    """L/p at every p of ``p_values`` for stacked models, each to ``rel_sem`` relative SE.

    ``rel_sem`` is one target for every p, or one per p.
    ``params`` and ``scaled_mixing`` (the label map ``s M`` of each model) carry the
    same leading model axes. Every model sees the same samples (common random numbers),
    so differences between models are estimated more precisely than each value.
    ``on_progress(done, planned)`` is called after each chunk with sample counts.
    Models with non-finite weights or mixing (diverged runs) get NaN and do not take
    part in the sample allocation. ``max_models_per_call`` caps the models evaluated
    together (default: :func:`auto_eval_models_per_call`, from the free memory); the
    others wait their turn on the same samples, so only float rounding depends on it.

    ``task`` (:mod:`ccjax.tasks`) gives the labels and loss; each of its exact hooks is
    used only if declared. Without ``one_feature``, ``c_1`` is estimated like every
    other ``c_k``; without the control variate, ``c_k`` is plain Monte Carlo on
    exactly-k samples; without ``loss_bound_slope``, no k of non-zero weight is skipped.
    """
    start = time.perf_counter()
    p = _check_p(p_values)
    lead, n_features, d_mlp = _check_models(params, scaled_mixing)
    rel_sem = np.asarray(rel_sem, np.float64)
    if rel_sem.shape not in ((), p.shape) or not np.all(rel_sem > 0):
        raise ValueError(f"rel_sem must be positive: one number, or one per p ({p.size}); got {rel_sem.tolist()}")
    rel_sem = np.broadcast_to(rel_sem, p.shape)
    for name, value in (("pilot_samples", pilot_samples), ("min_samples", min_samples), ("chunk_size", chunk_size)):
        if int(value) < 2:
            raise ValueError(f"{name} must be an integer >= 2, got {value!r}")

    n_models = math.prod(lead)
    finite = _finite_models(params, scaled_mixing, n_models)
    if not finite.all():
        options = dict(rel_sem=rel_sem, pilot_samples=pilot_samples, min_samples=min_samples, chunk_size=chunk_size)
        options |= dict(max_samples_per_k=max_samples_per_k, truncation_tolerance=truncation_tolerance)
        options |= dict(devices=devices, max_models_per_call=max_models_per_call, on_progress=on_progress, task=task)
        return _finite_curve(params, scaled_mixing, p, key, lead, finite, start, options)
    devices = list(jax.devices() if devices is None else devices)
    per_call = max_models_per_call or plan_models_per_call(
        lambda devices, n_models: auto_eval_models_per_call(n_features, d_mlp, chunk_size, devices, n_models),
        devices,
        n_models,
    )
    calls = call_slices(n_models, per_call)
    per_call = calls[0].stop
    devices, _, sharding = model_sharding(devices, per_call)
    padded = -(-per_call // len(devices)) * len(devices)

    def put(flat, rows: slice):
        return jax.device_put(pad_models(np.asarray(flat, np.float32)[rows], padded), sharding)

    def flat_models(array):
        return np.reshape(array, (n_models,) + np.shape(array)[len(lead) :])

    params, scaled_mixing = jax.tree.map(flat_models, params), flat_models(scaled_mixing)
    # Models take turns in calls of ``per_call``, each call holding its share on the devices.
    call_params = [jax.tree.map(lambda leaf, rows=rows: put(leaf, rows), params) for rows in calls]
    call_mixing = [put(scaled_mixing, rows) for rows in calls]
    # The exact parts (an SVD per model) on one device, then split: XLA:CPU deadlocked
    # running decompositions on several CPU devices at once (jax 0.10.2; see ccjax.sweep).
    exact = jax.device_get(_exact_parts_jit(params, scaled_mixing, task=task))
    call_exact = [jax.tree.map(lambda leaf, rows=rows: put(leaf, rows), exact) for rows in calls]

    c1, bound_slope = (np.asarray(a, np.float64) for a in (exact.c1, exact.bound_slope))
    exact_c1 = task.one_feature is not None  # else c1 = 0 here and c_1 is estimated

    # Which k to estimate: skipping k adds at most w_k k B / p to L/p; skip only k whose
    # worst case over the requested p's is below tolerance / n, so all skipped add <= tolerance.
    weights = binomial_weights(p, n_features)  # (P, n + 1)
    first = 2 if exact_c1 else 1
    estimated = np.zeros(n_features + 1, bool)
    if task.loss_bound_slope is None:
        worst = np.zeros_like(weights)
        estimated[first:] = weights[:, first:].max(axis=0) > 0.0
    else:
        worst = weights * np.arange(n_features + 1) * bound_slope.max() / p[:, None]
        estimated[first:] = worst[:, first:].max(axis=0) > truncation_tolerance / n_features
    truncation_bound = (worst * ~estimated)[:, 2:].sum(axis=1)
    ks = np.flatnonzero(estimated)

    replicated = NamedSharding(sharding.mesh, PartitionSpec())
    chunk_index = [0]
    done = [0]

    def run(counts_per_k: np.ndarray, beta: np.ndarray, shift: np.ndarray, moments: _Moments, planned: int):
        counts = np.repeat(np.arange(n_features + 1), counts_per_k).astype(np.int32)
        counts = np.concatenate([counts, np.zeros(-len(counts) % chunk_size, np.int32)])
        beta_d, shift_d = [put(beta, rows) for rows in calls], [put(shift, rows) for rows in calls]
        for chunk in counts.reshape(-1, chunk_size):
            chunk_key = jax.random.fold_in(key, chunk_index[0])
            chunk_index[0] += 1
            chunk_d = jax.device_put(chunk, replicated)
            inputs = zip(call_params, call_mixing, call_exact, beta_d, shift_d, calls, strict=True)
            # One call at a time, each finished before the next starts (see above).
            stats = [
                np.asarray(to_host(_chunk_stats_jit(*call, chunk_d, chunk_key, task=task)), np.float64)[
                    : rows.stop - rows.start
                ]
                for *call, rows in inputs
            ]
            moments.add(np.concatenate(stats), chunk)
            done[0] += int(np.count_nonzero(chunk))
            if on_progress is not None:
                on_progress(done[0], planned)

    # Pilot: variances and control-variate coefficients.
    k_grid = np.arange(n_features + 1)
    pilot = _Moments(n_models, n_features + 1)
    pilot_shift = c1[:, None] * k_grid[None, :]
    run(np.where(estimated, pilot_samples, 0), np.zeros_like(pilot_shift), pilot_shift, pilot, len(ks) * pilot_samples)
    n_pilot = np.maximum(pilot.count, 2)
    mean_u, mean_a = pilot.mean(0), pilot.mean(1)
    var_u = (pilot.mean(2) - mean_u**2) * n_pilot / (n_pilot - 1)
    var_a = (pilot.mean(3) - mean_a**2) * n_pilot / (n_pilot - 1)
    cov = (pilot.mean(4) - mean_u * mean_a) * n_pilot / (n_pilot - 1)
    beta = np.where(var_a > 1e-30, cov / np.where(var_a > 1e-30, var_a, 1.0), 0.0) * estimated
    shift = pilot_shift + mean_u * estimated  # the pilot's c_k, to centre the main run's sums
    residual_var = np.maximum(var_u - 2 * beta * cov + beta**2 * var_a, 0.0)
    c_pilot = shift.copy()
    loss_variance = np.where(estimated, np.maximum(var_u, 0.0), 0.0)

    main = _Moments(n_models, n_features + 1)
    for _ in range(MAX_ROUNDS):
        # L(p) in L units from the current c_k, and the variance each p may have.
        interaction = (c_pilot - c1[:, None] * k_grid) * estimated
        loss = p[None, :] * n_features * c1[:, None] + interaction @ weights.T  # (models, P)
        allowed_var = np.maximum((SAFETY * rel_sem[None, :] * loss) ** 2, 1e-300)
        sigma = np.sqrt(residual_var) * estimated  # (models, n + 1)
        weighted = weights[None, :, :] * sigma[:, None, :]  # (models, P, n + 1)
        needed = weighted * weighted.sum(axis=2, keepdims=True) / allowed_var[:, :, None]
        target = np.ceil(needed.max(axis=(0, 1)))
        target = np.where(estimated, np.clip(target, min_samples, max_samples_per_k), 0).astype(np.int64)
        deficit = np.maximum(target - main.count, 0)
        if deficit.sum() == 0:
            break
        run(deficit, beta, shift, main, int(main.count.sum() + deficit.sum()))
        n_main = np.maximum(main.count, 2)
        mean_r = main.mean(5)
        residual_var = np.where(estimated, np.maximum(main.mean(6) - mean_r**2, 0.0) * n_main / (n_main - 1), 0.0)
        c_pilot = np.where(estimated, shift + mean_r, c_pilot)

    n_main = np.maximum(main.count, 2)
    mean_r = main.mean(5)
    var_r = np.maximum((main.mean(6) - mean_r**2) * n_main / (n_main - 1), 0.0)
    c = np.where(estimated, shift + mean_r, np.nan)
    c[:, 0] = 0.0
    if exact_c1:
        c[:, 1] = c1
    c_var = np.where(estimated, var_r / n_main, 0.0)
    interaction = np.where(estimated, c - c1[:, None] * k_grid, 0.0)
    loss = p[None, :] * n_features * c1[:, None] + interaction @ weights.T
    loss_sem = np.sqrt(c_var @ (weights**2).T)
    if exact_c1:
        loss_variance[:, 1] = np.asarray(exact.c1_second_moment, np.float64) - c1**2

    def shaped(array):
        return array.reshape(lead + array.shape[1:])

    return LossCurve(
        p=p,
        loss_per_feature=shaped(loss / p),
        sem=shaped(loss_sem / p),
        c=shaped(c),
        c_sem=shaped(np.sqrt(c_var)),
        loss_variance=shaped(loss_variance),
        samples=np.where(k_grid > 0, main.count, 0),
        n_evaluations=int(main.count.sum() + pilot.count.sum()),
        truncation_bound=truncation_bound,
        seconds=time.perf_counter() - start,
    )


def loss_per_feature(
    params: FeatureMLP,
    scaled_mixing: Float[AnyArray, "*models n_features n_features"],
    p: float,
    key: PRNGKeyArray,
    **options,
) -> Estimate:
    """L/p at one p for stacked models (:func:`loss_curve` with a single p)."""
    curve = loss_curve(params, scaled_mixing, [p], key, **options)
    shape = curve.loss_per_feature.shape[:-1]
    evaluations = np.full(shape, curve.n_evaluations)
    return Estimate(curve.loss_per_feature[..., 0], curve.sem[..., 0], evaluations, evaluations)


def direct_sem(curve: LossCurve, n_nonempty: float = 1e6) -> np.ndarray:
    """The standard error of L/p that direct Bernoulli-p Monte Carlo with ``n_nonempty``
    non-empty samples per p (the paper's estimator) would have, at each p of ``curve``.

    From the c_k and Var(L | k) of the curve: the direct estimate averages L over all
    ``n_nonempty / (1 - (1-p)^n)`` samples, empty ones included.
    """
    n_features = curve.c.shape[-1] - 1
    weights = binomial_weights(curve.p, n_features)
    c = np.nan_to_num(curve.c)
    second = curve.loss_variance + c**2
    mean = c @ weights.T
    variance = second @ weights.T - mean**2
    total = n_nonempty / (1.0 - weights[:, 0])
    return np.sqrt(np.maximum(variance, 0.0) / total) / curve.p
