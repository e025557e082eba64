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
come from a :class:`~ccjax.problem.Task`, default the paper's
:data:`~ccjax.problem.MIXED_RELU`; a task that does not declare a piece gets plain Monte
Carlo on exactly-k samples in its place (:mod:`ccjax.problem`).

The evaluation is host-driven, like :func:`ccjax.sweep`: a plan fixed before anything
is compiled (:func:`ccjax.measure._curve_plan.plan_curve`: the k to estimate, the sample budget,
the calls), a pilot, then allocated rounds of fixed-size compiled chunks, and the
assembly of the curve (:func:`loss_curve` runs these pieces in turn). Each chunk is one
jitted call for all models, with the model axis sharded over the devices. Under
``jax.distributed`` the devices of every process share the models; each chunk's
statistics are gathered to every process, which all run the same host-side allocation.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .._linalg import matmul
from .._types import AnyArray, Array, Float, Int, PRNGKeyArray
from ..engine._sharding import pad_models, to_host
from ..problem._data import sample_exactly_k
from ..problem._model import FeatureMLP, forward
from ..problem._tasks import MIXED_RELU, Task
from ._curve_plan import (
    CHUNK_SIZE,
    DEFAULT_REL_SEM,
    MAX_ROUNDS,
    MAX_SAMPLES_PER_K,
    MIN_SAMPLES,
    PILOT_SAMPLES,
    TRUNCATION_TOLERANCE,
    CurveOptions,
    CurvePlan,
    binomial_weights,
    check_options,
    check_p,
    chunk_counts,
    make_curve_plan,
    samples_needed,
)
from ._direct import Estimate


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
    task's ``one_feature`` hook (ValueError without one; docs/paper.md §4, "Evaluation by the
    number of active features").

    For the default task the feature j is uniform and its value v ~ U[-1, 1]; the
    squared error is ``v^2`` times a unit squared error
    (:func:`~ccjax.problem.unit_squared_errors`), and ``E[v^2; v > 0] = 1/6``.

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).
        scaled_mixing: its label map ``s M``, (n_features, n_features).
        task: the labels and loss; it must declare ``one_feature``.

    Returns:
        ``c_1``, a scalar in L units (mean over features of the squared error).

    Raises:
        ValueError: if ``task`` declares no ``one_feature`` hook.
    """
    return _one_feature_hook(task)(params, scaled_mixing).c1


def exactly_one_loss_per_feature(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"], task: Task = MIXED_RELU
) -> Float[Array, ""]:
    """Exact L/p on exactly-one data (paper §4 variant; experiments 6 and 8).

    The feature rate of exactly-one data is 1/n, so L/p = n c_1. (The paper code
    divides by p = 0.01 = 1/n for n = 100.)

    Args:
        params: one model, W_in (n_features, d_mlp) and W_out (d_mlp, n_features).
        scaled_mixing: its label map ``s M``, (n_features, n_features).
        task: the labels and loss; it must declare ``one_feature`` (:func:`one_feature_loss`).

    Returns:
        L/p on exactly-one data, a scalar.

    Raises:
        ValueError: if ``task`` declares no ``one_feature`` hook.
    """
    return params.w_in.shape[0] * one_feature_loss(params, scaled_mixing, task)


def naive_loss_per_feature(n_features: int = 100, d_mlp: int = 50, p: float = 0.01, task: Task = MIXED_RELU) -> float:
    """L/p of ``task``'s naive model at feature probability ``p``: :meth:`Task.naive_loss`
    divided by p. For the paper's task, ``(n - d)/n · 1/6`` at every p (paper §5), 0.0833.

    Args:
        n_features: the number of features n.
        d_mlp: the number of neurons d; the naive model represents the first d features.
        p: the feature probability.
        task: the labels and loss; it must have a closed-form naive loss.

    Returns:
        The naive model's L/p.

    Raises:
        ValueError: if ``task`` has no closed-form naive loss (use :func:`ccjax.cis.naive_monte_carlo`).
    """
    loss = task.naive_loss(n_features, d_mlp, p)
    if loss is None:
        raise ValueError(f"{type(task).__name__} has no closed-form naive loss; use ccjax.cis.naive_monte_carlo")
    return loss / p


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
    """L/p at each requested p for a stack of models, with its ingredients (docs/paper.md §4).

    Leading ``models`` axes are those of the params passed in; n is the number of features.
    A model with non-finite weights or mixing (a diverged run) has NaN in every per-model field.

    Attributes:
        p: the feature probabilities, (P,).
        loss_per_feature: L/p of each model at each p, (*models, P).
        sem: its standard error, (*models, P).
        c: ``c_k``, the expected L given exactly k active features, for k = 0..n, (*models, n + 1);
            ``c_0 = 0``, NaN for skipped k.
        c_sem: the standard error of ``c``, (*models, n + 1); 0 where exact.
        loss_variance: Var(L | k) (pilot estimates; exact at k = 1), (*models, n + 1), used to predict
            the standard error of direct Monte Carlo (:func:`direct_sem`).
        samples: ``samples[k]``, the number of exactly-k samples behind ``c_k`` (shared by all models), (n + 1,).
        n_evaluations: every sample the models were run on, pilot and chunk padding included.
        truncation_bound: ``truncation_bound[i]`` bounds the L/p that skipped k could add at ``p[i]``, (P,).
        seconds: the wall-clock time of the evaluation.
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


def _flat_models(tree, lead: tuple):
    """Every leaf of ``tree`` with its leading model axes ``lead`` flattened into one."""
    n_models = math.prod(lead)
    return jax.tree.map(lambda array: np.reshape(array, (n_models,) + np.shape(array)[len(lead) :]), tree)


def _put(plan: CurvePlan, flat, rows: slice) -> jax.Array:
    """Models ``rows`` of a flat host array, padded and sharded as one call's inputs."""
    return jax.device_put(pad_models(np.asarray(flat, np.float32)[rows], plan.padded), plan.sharding)


def _models_on_devices(plan: CurvePlan, params: FeatureMLP, scaled_mixing, exact: _Exact) -> tuple:
    """Each call's params, label maps and exact parts on the devices. Models take turns
    in calls, each call holding its share on the devices."""
    put_tree = lambda tree, rows: jax.tree.map(lambda leaf: _put(plan, leaf, rows), tree)  # noqa: E731
    return tuple(
        (put_tree(params, rows), _put(plan, scaled_mixing, rows), put_tree(exact, rows)) for rows in plan.calls
    )


@dataclasses.dataclass
class _Sampler:
    """Runs exactly-k samples through every call's models, one compiled chunk at a time.

    Chunk ``i``, counted over the pilot and the main run, draws its samples with
    ``fold_in(key, i)``; ``samples_done`` counts the samples run so far (padding left
    out), reported to ``on_progress``.
    """

    plan: CurvePlan
    models: tuple  # per call: params, label maps and exact parts on the devices
    key: PRNGKeyArray
    task: Task
    on_progress: Callable[[int, int], None] | None
    chunks_run: int = 0
    samples_done: int = 0

    def run(self, counts_per_k: np.ndarray, beta: np.ndarray, shift: np.ndarray, moments: _Moments, planned: int):
        """Adds the statistics of ``counts_per_k[k]`` samples of each k to ``moments``."""
        plan = self.plan
        beta_d, shift_d = ([_put(plan, array, rows) for rows in plan.calls] for array in (beta, shift))
        replicated = NamedSharding(plan.sharding.mesh, PartitionSpec())
        for chunk in chunk_counts(counts_per_k, plan.chunk_size):
            chunk_key = jax.random.fold_in(self.key, self.chunks_run)
            self.chunks_run += 1
            chunk_d = jax.device_put(chunk, replicated)
            # One call at a time, each finished before the next starts (see loss_curve).
            stats = [
                np.asarray(to_host(_chunk_stats_jit(*models, b, s, chunk_d, chunk_key, task=self.task)), np.float64)[
                    : rows.stop - rows.start
                ]
                for models, b, s, rows in zip(self.models, beta_d, shift_d, plan.calls, strict=True)
            ]
            moments.add(np.concatenate(stats), chunk)
            self.samples_done += int(np.count_nonzero(chunk))
            if self.on_progress is not None:
                self.on_progress(self.samples_done, planned)


class _Fit(NamedTuple):
    """Per model and k (models, n + 1): the control-variate coefficient ``beta_k``, the
    shift that centres the main run's sums (the pilot's ``c_k``), the variance of one
    sample's residual, the current ``c_k`` and Var(L | k) (pilot estimates)."""

    beta: np.ndarray
    shift: np.ndarray
    residual_var: np.ndarray
    c_estimate: np.ndarray
    loss_variance: np.ndarray


def _pilot(sampler: _Sampler, c1: np.ndarray) -> tuple[_Fit, int]:
    """The pilot run: ``pilot_samples`` of each estimated k fit ``beta_k`` and the
    variances the allocation uses. Returns the fit and the samples run (padding included)."""
    plan = sampler.plan
    estimated = plan.estimated
    pilot = _Moments(len(c1), plan.n_features + 1)
    pilot_shift = c1[:, None] * np.arange(plan.n_features + 1)[None, :]
    counts = np.where(estimated, plan.pilot_samples, 0)
    sampler.run(counts, np.zeros_like(pilot_shift), pilot_shift, pilot, plan.n_estimated * plan.pilot_samples)
    n_pilot = np.maximum(pilot.count, 2)
    mean_u, mean_a = pilot.mean(0), pilot.mean(1)
    var_u = (pilot.mean(2) - mean_u**2) * n_pilot / (n_pilot - 1)
    var_a = (pilot.mean(3) - mean_a**2) * n_pilot / (n_pilot - 1)
    cov = (pilot.mean(4) - mean_u * mean_a) * n_pilot / (n_pilot - 1)
    beta = np.where(var_a > 1e-30, cov / np.where(var_a > 1e-30, var_a, 1.0), 0.0) * estimated
    shift = pilot_shift + mean_u * estimated  # the pilot's c_k, to centre the main run's sums
    residual_var = np.maximum(var_u - 2 * beta * cov + beta**2 * var_a, 0.0)
    loss_variance = np.where(estimated, np.maximum(var_u, 0.0), 0.0)
    return _Fit(beta, shift, residual_var, shift.copy(), loss_variance), int(pilot.count.sum())


def _main_rounds(sampler: _Sampler, c1: np.ndarray, fit: _Fit) -> _Moments:
    """Up to ``MAX_ROUNDS`` rounds, each topping every k up to
    :func:`~ccjax.measure._curve_plan.samples_needed` from the current estimates (more when the
    pilot underestimated a variance), then refitting them; returns the main run's sums."""
    plan = sampler.plan
    estimated = plan.estimated
    main = _Moments(len(c1), plan.n_features + 1)
    for _ in range(MAX_ROUNDS):
        deficit = np.maximum(samples_needed(plan, c1, fit.c_estimate, fit.residual_var) - main.count, 0)
        if deficit.sum() == 0:
            break
        sampler.run(deficit, fit.beta, fit.shift, main, int(main.count.sum() + deficit.sum()))
        n_main = np.maximum(main.count, 2)
        mean_r = main.mean(5)
        residual_var = np.where(estimated, np.maximum(main.mean(6) - mean_r**2, 0.0) * n_main / (n_main - 1), 0.0)
        c_estimate = np.where(estimated, fit.shift + mean_r, fit.c_estimate)
        fit = fit._replace(residual_var=residual_var, c_estimate=c_estimate)
    return main


def _assemble_curve(
    plan: CurvePlan, lead: tuple, exact: _Exact, fit: _Fit, main: _Moments, n_pilot: int, start: float
) -> LossCurve:
    """``c_k`` from the main run's residual means, their errors, and L/p with its error at
    every p (docs/paper.md §4), shaped like the models passed in (``lead``)."""
    estimated, weights, p = plan.estimated, plan.weights, plan.p
    k_grid = np.arange(plan.n_features + 1)
    c1 = np.asarray(exact.c1, np.float64)
    n_main = np.maximum(main.count, 2)
    mean_r = main.mean(5)
    var_r = np.maximum((main.mean(6) - mean_r**2) * n_main / (n_main - 1), 0.0)
    c = np.where(estimated, fit.shift + mean_r, np.nan)
    c[:, 0] = 0.0
    loss_variance = fit.loss_variance.copy()
    if plan.exact_c1:
        c[:, 1] = c1
        loss_variance[:, 1] = np.asarray(exact.c1_second_moment, np.float64) - c1**2
    c_var = np.where(estimated, var_r / n_main, 0.0)
    interaction = np.where(estimated, c - c1[:, None] * k_grid, 0.0)
    loss = p[None, :] * plan.n_features * c1[:, None] + interaction @ weights.T
    loss_sem = np.sqrt(c_var @ (weights**2).T)
    shaped = lambda array: array.reshape(lead + array.shape[1:])  # noqa: E731
    return LossCurve(
        p=p.copy(),
        loss_per_feature=shaped(loss / p),
        sem=shaped(loss_sem / p),
        c=shaped(c),
        c_sem=shaped(np.sqrt(c_var)),
        loss_variance=shaped(loss_variance),
        samples=np.where(k_grid > 0, main.count, 0),
        n_evaluations=int(main.count.sum() + n_pilot),
        truncation_bound=plan.truncation_bound.copy(),
        seconds=time.perf_counter() - start,
    )


def _finite_models_curve(
    params: FeatureMLP,
    scaled_mixing,
    p: np.ndarray,
    key: PRNGKeyArray,
    lead: tuple,
    options: CurveOptions,
    task: Task,
    on_progress: Callable[[int, int], None] | None,
    start: float,
) -> LossCurve:
    """:func:`loss_curve` of models that are all finite (``p`` and ``options`` checked):
    the exact parts, the plan, the pilot, the rounds and the assembly."""
    params, scaled_mixing = _flat_models(params, lead), _flat_models(scaled_mixing, lead)
    n_models, n_features, d_mlp = np.shape(params.w_in)
    # The exact parts (an SVD per model) on one device, then split: XLA:CPU deadlocked
    # running decompositions on several CPU devices at once (jax 0.10.2; see ccjax.sweep).
    exact = jax.device_get(_exact_parts_jit(params, scaled_mixing, task=task))
    bound_slope = None if task.loss_bound_slope is None else float(np.asarray(exact.bound_slope, np.float64).max())
    exact_c1 = task.one_feature is not None
    plan = make_curve_plan(p, options, n_models, n_features, d_mlp, bound_slope, exact_c1)
    sampler = _Sampler(plan, _models_on_devices(plan, params, scaled_mixing, exact), key, task, on_progress)
    c1 = np.asarray(exact.c1, np.float64)
    fit, n_pilot = _pilot(sampler, c1)
    main = _main_rounds(sampler, c1, fit)
    return _assemble_curve(plan, lead, exact, fit, main, n_pilot, start)


def loss_curve(
    params: FeatureMLP,
    scaled_mixing: Float[AnyArray, "*models n_features n_features"],
    p_values: Sequence[float] | np.ndarray,
    key: PRNGKeyArray,
    *,
    rel_sem: float | Sequence[float] | np.ndarray = DEFAULT_REL_SEM,
    pilot_samples: int = PILOT_SAMPLES,
    min_samples: int = MIN_SAMPLES,
    max_samples_per_k: int = MAX_SAMPLES_PER_K,
    truncation_tolerance: float = TRUNCATION_TOLERANCE,
    chunk_size: int = CHUNK_SIZE,
    devices: Sequence[jax.Device] | None = None,
    max_models_per_call: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    task: Task = MIXED_RELU,
) -> LossCurve:
    """L/p at every p of ``p_values`` for stacked models, each to ``rel_sem`` relative SE (docs/paper.md §4).

    Args:
        params: the models, W_in (*models, n_features, d_mlp) and W_out (*models, d_mlp, n_features). Models with
            non-finite weights or mixing (diverged runs) get NaN and do not take part in the sample allocation.
        scaled_mixing: each model's label map ``s M``, (*models, n_features, n_features).
        p_values: the feature probabilities, (P,), each in (0, 1].
        key: the key of the samples. Every model sees the same samples (common random numbers), so differences
            between models are estimated more precisely than each value.
        rel_sem: the target standard error relative to L/p: one for every p, or one per p.
        pilot_samples: pilot samples per estimated k (they fit ``beta_k`` and the variances).
        min_samples: the fewest main-run samples per estimated k.
        max_samples_per_k: the most main-run samples per estimated k.
        truncation_tolerance: the most L/p that all skipped k together may add, at every p.
        chunk_size: samples per compiled call.
        devices: the devices the model axis is sharded over (default: ``jax.devices()``).
        max_models_per_call: caps the models evaluated together (default: :func:`auto_eval_models_per_call`,
            from the free memory); the others wait their turn on the same samples, so only float rounding depends on it.
        on_progress: called as ``on_progress(done, planned)`` after each chunk, with sample counts.
        task: the labels and loss (:mod:`ccjax.problem`); each exact hook is used only if declared. Without
            ``one_feature``, ``c_1`` is estimated like every other ``c_k``; without the control variate, ``c_k``
            is plain Monte Carlo on exactly-k samples; without ``loss_bound_slope``, no k of non-zero weight is skipped.

    Returns:
        The :class:`LossCurve`, its per-model fields with the models' leading axes.

    Raises:
        ValueError: for a p outside (0, 1], params without a model axis or of mismatched shapes, or a bad option.
    """
    start = time.perf_counter()
    sampling = (rel_sem, pilot_samples, min_samples, max_samples_per_k, truncation_tolerance, chunk_size)
    options = CurveOptions(*sampling, devices, max_models_per_call)
    return _checked_curve(params, scaled_mixing, p_values, key, options, task, on_progress, start)


def _checked_curve(params, scaled_mixing, p_values, key, options: CurveOptions, task: Task, on_progress, start):
    """:func:`loss_curve` from its gathered options: the checks, then the curve (of the finite
    models only, :func:`_finite_curve`, when some are not finite)."""
    p = check_p(p_values)
    lead = _check_models(params, scaled_mixing)[0]
    p, options = check_options(p, options)
    finite = _finite_models(params, scaled_mixing, math.prod(lead))
    if not finite.all():
        curve_options = options._asdict() | dict(on_progress=on_progress, task=task)
        return _finite_curve(params, scaled_mixing, p, key, lead, finite, start, curve_options)
    return _finite_models_curve(params, scaled_mixing, p, key, lead, options, task, on_progress, start)


def loss_per_feature(
    params: FeatureMLP,
    scaled_mixing: Float[AnyArray, "*models n_features n_features"],
    p: float,
    key: PRNGKeyArray,
    **options,
) -> Estimate:
    """L/p at one p for stacked models (:func:`loss_curve` with a single p).

    Args:
        params: the models, W_in (*models, n_features, d_mlp) and W_out (*models, d_mlp, n_features).
        scaled_mixing: each model's label map ``s M``, (*models, n_features, n_features).
        p: the feature probability, in (0, 1].
        key: the key of the samples (shared by every model).
        **options (Any): the keyword options of :func:`loss_curve` (``rel_sem``, ``task``, ...).

    Returns:
        An :class:`~ccjax.measure.Estimate` with the models' leading axes: L/p, its standard error,
        and as both sample counts the curve's ``n_evaluations`` (exactly-k samples, pilot included).
    """
    curve = loss_curve(params, scaled_mixing, [p], key, **options)
    shape = curve.loss_per_feature.shape[:-1]
    evaluations = np.full(shape, curve.n_evaluations)
    return Estimate(curve.loss_per_feature[..., 0], curve.sem[..., 0], evaluations, evaluations)


def direct_sem(curve: LossCurve, n_nonempty: float = 1e6) -> np.ndarray:
    """The standard error of L/p that direct Bernoulli-p Monte Carlo with ``n_nonempty``
    non-empty samples per p (the paper's estimator) would have, at each p of ``curve``.

    From the c_k and Var(L | k) of the curve: the direct estimate averages L over all
    ``n_nonempty / (1 - (1-p)^n)`` samples, empty ones included.

    Args:
        curve: a :func:`loss_curve` result (its ``c`` and ``loss_variance``).
        n_nonempty: the non-empty samples per p of the direct estimator (the paper: about 1e6, docs/paper.md §4).

    Returns:
        The predicted standard error of L/p, (*models, P).
    """
    n_features = curve.c.shape[-1] - 1
    weights = binomial_weights(curve.p, n_features)
    c = np.nan_to_num(curve.c)
    second = curve.loss_variance + c**2
    mean = c @ weights.T
    variance = second @ weights.T - mean**2
    total = n_nonempty / (1.0 - weights[:, 0])
    return np.sqrt(np.maximum(variance, 0.0) / total) / curve.p
