"""What the rank-of-M experiment measures on each model of a learned-scale sweep (docs/paper.md §6.8):
:func:`rank_sweep_measures`, described field by field in :data:`RANK_SWEEP_MEASURES` (a sweep's arrays:
:func:`rank_sweep_arrays`, :func:`describe_rank_sweep_arrays`); and how L/p changes with the rank of M in
each family (:func:`rank_trends`, :func:`describe_rank_trend`)."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Real

from .._types import AnyArray, Float
from ..engine._sweep import SweepResult
from ..problem import MIXED_RELU
from . import baselines
from ._curves import exactly_one_loss_per_feature
from ._sweep_arrays import family_first, logged_steps
from .analysis import RankTrend, effective_rank, rank_trend

RANK_SWEEP_MEASURES = {  # name: (trailing axes after the sweep's grid, meaning)
    "loss": ("", "exact exactly-one L/p of the trained model on its labels relu(x) + |s| M x"),
    "scale": ("", "|s| at the end of training: the magnitude of the learned scale, what the labels use"),
    "effective_rank": (
        "",
        "exp(entropy of the normalised singular values) of the unscaled M (a scale does not change it)",
    ),
    "mixing_rms": ("", "RMS entry of the label map |s| M, |s| ||M||_F / n (comparable to a Gaussian sigma)"),
    "naive_loss": ("", "exact exactly-one L/p of the naive model on the same labels relu(x) + |s| M x"),
    "final_train_loss_per_feature": ("", "training L/p over the last logging interval"),
    "train_loss_per_feature_history": (", T", "training L/p per logging interval"),
    "scale_history": (", T", "|s| at the end of each logging interval"),
    "mixing": (", n_features, n_features", "unscaled M of each model"),
    "w_in": (", n_features, d_mlp", "trained W_in"),
    "w_out": (", d_mlp, n_features", "trained W_out"),
}
"""What :func:`rank_sweep_measures` returns for every model, by name: its axes after the grid's
(T: logging intervals) and what it is."""

RANK_SWEEP_DEFINITIONS = {
    "labels": "relu(x) + |s| M x (row vectors: x @ M.T): the magnitude of a scale s learned by the same AdamW "
    "(from scale_init), as docs/paper.md §3 and the authors' code (mlpinsoup.py)",
    "effective_rank": "exp(-sum_i w_i ln w_i), w = singular values of the unscaled M / their sum "
    "(ccjax.measure.analysis.effective_rank; the same for s M)",
    "evaluation": "exact: L/p = n c_1 on exactly-one data (ccjax.exactly_one_loss_per_feature)",
    "references": {
        "naive": "W_in[f, f] = W_out[f, f] = 1 for f < 50, evaluated on each model's labels (naive_loss)",
        "naive_clean": "naive model on clean labels, (n - d) / n / 6",
    },
}
"""How :func:`rank_sweep_measures` defines the labels, the effective rank, the evaluation and the naive
references (as recorded in a rank sweep's manifest)."""

_effective_ranks_jit = jax.jit(jax.vmap(effective_rank))


def _naive_losses(scaled_mixing: Float[AnyArray, "models n_features n_features"], d_mlp: int):
    naive = baselines.naive_model(scaled_mixing.shape[-1], d_mlp)
    return jax.vmap(exactly_one_loss_per_feature, in_axes=(None, 0))(naive, scaled_mixing)


_naive_losses_jit = jax.jit(_naive_losses, static_argnums=1)


def rank_sweep_measures(result: SweepResult) -> dict[str, np.ndarray]:
    """Every field of :data:`RANK_SWEEP_MEASURES` for each model of ``result`` (a sweep with a
    learned scale, §6.8), each with the sweep's grid axes in front: the exact exactly-one L/p
    (``loss``, L/p) of the model and of the naive model (``naive_loss``) on the model's labels
    ``relu(x) + |s| M x``, the learned ``|s|``, the effective rank of the unscaled M, the RMS
    entry of ``|s| M``, the logged training L/p and ``|s|``, M and the weights.

    The exact losses are the paper's mixed-ReLU labels, so a sweep trained on another task is
    refused rather than evaluated on labels it was not trained on.

    Args:
        result: the trained sweep, on the paper's task (:data:`~ccjax.problem.MIXED_RELU`).

    Returns:
        ``{name: array}`` in the order of :data:`RANK_SWEEP_MEASURES`, each (*grid, ...) with the axes it lists.

    Raises:
        ValueError: if ``result`` was trained on another task.
    """
    if result.task != MIXED_RELU:
        raise ValueError(
            f"rank_sweep_measures evaluates the paper's mixed-ReLU labels; this sweep was trained on {result.task!r}"
        )
    grid, history = result.grid.shape, result.history

    def flat(array):  # the grid's axes as one model axis
        array = np.asarray(array)
        return jnp.asarray(array.reshape(-1, *array.shape[len(grid) :]))

    def per_model(values):
        return np.asarray(values, np.float64).reshape(grid)

    scale = np.asarray(result.scale, np.float64)  # |s|: the labels use the learned scale's magnitude
    norm = np.linalg.norm(np.asarray(result.mixing, np.float64), axis=(-2, -1))
    return {
        "loss": baselines.exactly_one_losses(result.params, result.scaled_mixing),
        "scale": scale,
        "effective_rank": per_model(_effective_ranks_jit(flat(result.mixing))),
        "mixing_rms": scale * norm / result.config.n_features,
        "naive_loss": per_model(_naive_losses_jit(flat(result.scaled_mixing), result.config.d_mlp)),
        "final_train_loss_per_feature": np.asarray(history.train_loss_per_feature)[..., -1],
        "train_loss_per_feature_history": np.asarray(history.train_loss_per_feature),
        "scale_history": np.asarray(history.scale),
        "mixing": np.asarray(result.mixing),
        "w_in": np.asarray(result.params.w_in),
        "w_out": np.asarray(result.params.w_out),
    }


def rank_sweep_arrays(results: Sequence[SweepResult], prefix: str = "full_rank_") -> dict[str, np.ndarray]:
    """The saved arrays of a rank sweep (§6.8): ``history_step``, the (T,) logged steps; then
    :func:`rank_sweep_measures` of ``results[0]``, a sweep over (seed, family, rank), with the
    family axis first, (F, K, R, ...); then those of each further sweep of ``results`` (a single
    M over the same seeds, such as the full-rank point) with ``prefix`` before their names, (K, ...).

    Args:
        results: the sweeps: first the (seed, family, rank) one, then any single-M sweeps over its seeds.
        prefix: the name prefix of the further sweeps' measures.

    Returns:
        ``{name: array}``, as :func:`describe_rank_sweep_arrays` describes them.

    Raises:
        ValueError: if a sweep was trained on a task other than the paper's (:func:`rank_sweep_measures`).
    """
    measures = [rank_sweep_measures(result) for result in results]
    arrays = {"history_step": logged_steps(results[0])}  # the same for every model
    arrays |= {name: family_first(value) for name, value in measures[0].items()}
    return arrays | {prefix + name: value for point in measures[1:] for name, value in point.items()}


def describe_rank_sweep_arrays(point: str, prefix: str = "full_rank_") -> dict[str, str]:
    """What each array of :func:`~ccjax.measure.rank_sweep_arrays` holds, by name (§6.8): ``history_step``,
    every measure of :data:`~ccjax.measure.RANK_SWEEP_MEASURES` over (families F, seeds K, ranks R), and the
    same with ``prefix`` for the single-M sweep over the K seeds, which ``point`` describes.

    Args:
        point: what the single-M sweep is, put before each of its descriptions (e.g. ``"full-rank point"``).
        prefix: the name prefix of its arrays.

    Returns:
        ``{name: "(shape) description"}``.
    """
    measures = RANK_SWEEP_MEASURES.items()
    return {
        "history_step": "(T,) step at the end of each logging interval",
        **{name: f"(F, K, R{axes}) {text}" for name, (axes, text) in measures},
        **{prefix + name: f"(K{axes}) {point}: {text}" for name, (axes, text) in measures},
    }


RANK_TREND_DEFINITION = (
    "slope: least-squares slope of L/p against ln(effective rank) within each seed "
    "(L/p per e-fold of effective rank; > 0 means lower rank, lower loss), mean and SEM over seeds; "
    "spearman: Spearman correlation of rank and L/p within each seed, mean and SEM over seeds; "
    "rises: adjacent rank pairs whose seed-mean L/p rises with rank, out of steps"
)
"""What the fields of :func:`rank_trends`' :class:`~ccjax.measure.analysis.RankTrend` mean, for L/p."""


def rank_trends(
    families: Sequence[str] | np.ndarray,
    ranks: Real[np.ndarray, " ranks"],
    effective_rank: Real[np.ndarray, "families seeds ranks"],
    loss: Real[np.ndarray, "families seeds ranks"],
) -> dict[str, RankTrend | None]:
    """:func:`~ccjax.measure.analysis.rank_trend` of L/p (``loss``) against the rank of M for each family
    of a rank sweep, by family name (None for a family with one rank), paired within each seed (§6.8).

    Args:
        families: the family names, (families,).
        ranks: the ranks of M, (ranks,), ascending.
        effective_rank: the effective rank of each model's M, (families, seeds, ranks).
        loss: each model's L/p, (families, seeds, ranks).

    Returns:
        ``{family: RankTrend or None}``.
    """
    per_family = zip(families, effective_rank, loss, strict=True)
    return {str(family): rank_trend(ranks, *per_seed) for family, *per_seed in per_family}


def describe_rank_trend(trend: RankTrend | None, sigmas: float = 2.0) -> str:
    """One line on a :class:`~ccjax.measure.analysis.RankTrend` of L/p: the slope per e-fold of effective
    rank (mean +- SEM over seeds), the Spearman correlation, the rises of the seed-mean L/p, and
    the verdict on the paper's claim, lower rank gives lower loss (§6.8), when the mean slope is
    more than ``sigmas`` SEMs above (agrees) or below (contradicts) zero.

    Args:
        trend: the trend (:func:`rank_trends`), or None for a family with one rank.
        sigmas: the SEMs the mean slope must be from zero for a verdict.

    Returns:
        The line (``"one rank, no trend"`` for None).
    """
    if trend is None:
        return "one rank, no trend"
    slope_sem = f" +- {trend.slope_sem:.5f}" if np.isfinite(trend.slope_sem) else ""
    rho_sem = f" +- {trend.spearman_sem:.2f}" if np.isfinite(trend.spearman_sem) else ""
    return (
        f"d(L/p)/d ln(eff. rank) = {trend.slope:+.5f}{slope_sem} "
        f"(> 0 in {trend.seeds_with_positive_slope}/{trend.n_seeds} seeds); "
        f"Spearman(rank, L/p) = {trend.spearman:+.2f}{rho_sem}; "
        f"mean L/p rises in {trend.rises}/{trend.steps} rank steps -> {_verdict(trend.slope, trend.slope_sem, sigmas)}"
    )


def _verdict(slope: float, sem: float, sigmas: float) -> str:
    if not np.isfinite(sem):
        direction = "the paper's direction" if slope > 0 else "AGAINST the paper's direction"
        return f"one seed, no SEM, no verdict (the slope's sign is {direction})"
    if slope > sigmas * sem:
        return f"lower rank, lower L/p (slope > {sigmas:g} SEM above 0): agrees with the paper"
    if slope < -sigmas * sem:
        return f"lower rank, HIGHER L/p (slope > {sigmas:g} SEM below 0): contradicts the paper"
    return f"no trend at {sigmas:g} SEM"
