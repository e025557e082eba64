"""Paper experiment 3: L/p at p = 0.01 against the mixing magnitude sigma (docs/paper.md §6.3).

The right panel of the paper's main figure. Labels are ``relu(x) + sigma M x`` with a
symmetric or asymmetric Gaussian M; every (seed, family, sigma) model -- 5 x 2 x 41 = 410
by default -- is trained in ONE jitted sweep over the axes seed x mixing x scale, then
evaluated at p = 0.01 with :func:`ccjax.evaluate_sweep`. A seed fixes the unscaled M, the
initial weights and the data stream, so the sigmas of a seed differ only in sigma.

The curve is U-shaped. The analysis (pure numpy, below) locates the minimum of the
seed-mean curve with a parabola fitted around its lowest grid point, finds where the
mean curve rises back through the naive line L/p = 1/12 (linear interpolation between
grid points), and puts bootstrap-over-seeds uncertainties on both.

    python -m experiments.sigma_sweep                          # 41 sigmas x 2 families x 5 seeds
    python -m experiments.sigma_sweep --points 21 --seeds 3 --steps 2000
    python -m experiments.sigma_sweep --plot-only
"""

import argparse
import math
import operator
import sys
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

import ccjax

from ._cli import (
    count,
    count_families,
    finite_mean,
    format_duration,
    format_mean_sem,
    format_table,
    mean_and_sem,
    mixing_formulas,
    plot_seed_mean,
    positive_float,
    positive_int,
    record_sweep_timings,
    say,
    shared_mixing,
    sigma_list,
)
from ._compare import READ_ERROR, Comparison, compare_range, compare_value, format_number, format_pm
from ._experiment import Session, family_first, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, families_option, seeds_option, unscaled_steps_option

# Experiment 3, docs/paper.md §6.3: the minimum of L/p at p = 0.01 over sigma, where it lies
# and where the curve crosses the naive line again, read off the figure (one seed per sigma, ±0.001).
PUBLISHED = {
    "symmetric": {"min_value": 0.065, "argmin": (0.028, 0.036), "crossing": 0.064},
    "asymmetric": {"min_value": 0.075, "argmin": (0.02, 0.028), "crossing": 0.047},
}
PUBLISHED_AT_ZERO = 0.083

EXPERIMENT = "sigma_sweep"
FAMILIES = ("symmetric", "asymmetric")
PAPER = ccjax.TrainConfig(mixing=FAMILIES[0])  # p = 0.01, 10,000 steps (docs/paper.md §4)
PAPER_SIGMA_MAX = 0.08
PAPER_POINTS = 41  # sigma in linspace(0, 0.08, 41)
P_EVAL = PAPER.p
HALF_WIDTH = 3  # grid points on each side of the lowest one in the parabola fit
BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
INTERVAL = (16.0, 84.0)  # percentiles of the bootstrap interval (about +-1 sigma)
ARRAYS = {
    "families": "(F,) Gaussian mixing families",
    "sigmas": "(S,) mixing magnitudes sigma (ascending; the labels are relu(x) + sigma M x)",
    "seeds": "(K,) seeds; a seed fixes M, the initial weights and the data stream (shared by every sigma)",
    "loss_per_feature": "(F, K, S) L/p at p = 0.01",
    "loss_per_feature_sem": "(F, K, S) its Monte Carlo standard error",
    "final_train_loss_per_feature": "(F, K, S) training L/p over the last logging interval",
    "history_step": "(T,) step at the end of each logging interval",
    "train_loss_per_feature_history": "(F, K, S, T) training L/p per logging interval",
    "mixing": "(F, K, n_features, n_features) unscaled M of each seed (shared by every sigma)",
    "w_in": "(F, K, S, n_features, d_mlp) trained W_in",
    "w_out": "(F, K, S, d_mlp, n_features) trained W_out",
    "n_evaluations": "() exactly-k samples behind every L/p (shared by every model)",
}

DESCRIPTION = """\
Paper experiment 3 (sigma sweep): L/p at p = 0.01 against the mixing magnitude sigma.

Labels are relu(x) + sigma M x with a symmetric or asymmetric Gaussian M. At sigma = 0
the trained models sit on the naive line (L/p = 0.0833); moderate sigma takes them below
it, large sigma above it. Every (seed, family, sigma) model is trained in one jitted
sweep. The summary gives the minimum of the seed-mean curve (parabola fit) and where it
crosses the naive line again, with bootstrap-over-seeds uncertainties.
"""


# --- analysis of a curve over sigma (pure numpy) ---------------------------------------------


class Minimum(NamedTuple):
    """The lowest point of a curve: ``sigma`` and ``value`` from the parabola fit when
    ``fitted``, else the lowest grid point (``index``)."""

    sigma: float
    value: float
    index: int
    fitted: bool


def _check_curve(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be 1-D of equal, non-zero length, got {x.shape} and {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    return x, y


def curve_minimum(x, y, half_width: int = HALF_WIDTH) -> Minimum:
    """The minimum of the curve ``y(x)``: a least-squares parabola through the lowest grid
    point and ``half_width`` neighbours on each side (fewer at the grid's ends).

    The vertex is used when the parabola opens upwards and its vertex lies within the
    fitted points; otherwise (too few points, a monotone stretch) the lowest grid point.
    """
    x, y = _check_curve(x, y)
    i = int(np.argmin(y))
    lo, hi = max(0, i - half_width), min(x.size, i + half_width + 1)
    if hi - lo >= 3:
        dx = x[lo:hi] - x[i]  # centred, for conditioning
        a, b, c = np.polyfit(dx, y[lo:hi], 2)
        if a > 0:
            vertex = -b / (2.0 * a)
            if dx[0] <= vertex <= dx[-1]:
                return Minimum(float(x[i] + vertex), float(c - b * b / (4.0 * a)), i, True)
    return Minimum(float(x[i]), float(y[i]), i, False)


def upper_crossing(x, y, level: float) -> float:
    """Where ``y`` rises back to ``level`` above its lowest grid point, by linear
    interpolation between the two grid points around it.

    NaN when the curve never goes below ``level`` or stays below it to the end of the grid.
    """
    x, y = _check_curve(x, y)
    i = int(np.argmin(y))
    if not y[i] < level:
        return math.nan
    above = np.flatnonzero(y[i:] >= level)
    if above.size == 0:
        return math.nan
    j = i + int(above[0])
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def bootstrap_seeds(
    values, statistic: Callable[[np.ndarray], tuple[float, ...]], n_boot: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED
) -> np.ndarray:
    """``statistic`` of the seed-mean curve of each of ``n_boot`` resamples of the seeds.

    ``values`` is (K seeds, S); each resample draws K seeds with replacement. Returns
    (n_boot, len(statistic's tuple)).
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"values must be (seeds, points), got {values.shape}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    means = finite_mean(values[picks], axis=1)  # (n_boot, S); diverged models (NaN) left out
    return np.array([statistic(mean) for mean in means], np.float64).reshape(n_boot, -1)


class Spread(NamedTuple):
    """Bootstrap spread of one statistic: the SD of its finite resamples, their
    ``INTERVAL`` percentiles, and the fraction of resamples where it is defined (finite)."""

    se: float
    low: float
    high: float
    defined: float


def spread(samples, n_seeds: int) -> Spread:
    """:class:`Spread` of bootstrap ``samples``; all NaN for one seed (no resampling spread)."""
    samples = np.asarray(samples, np.float64)
    finite = samples[np.isfinite(samples)]
    defined = finite.size / samples.size if samples.size else math.nan
    if n_seeds < 2 or finite.size < 2:
        return Spread(math.nan, math.nan, math.nan, defined)
    low, high = np.percentile(finite, INTERVAL)
    # Identical samples have no spread by definition; numpy's two-pass std of equal values
    # can round to ~1e-18 rather than 0, depending on its version and SIMD kernels.
    deviation = 0.0 if finite.min() == finite.max() else float(finite.std(ddof=1))
    return Spread(deviation, float(low), float(high), defined)


def analyse_family(sigmas, values, level: float, *, n_boot: int = BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> dict:
    """Minimum and naive-line crossing of the seed-mean curve of ``values`` (K, S), with
    bootstrap-over-seeds spreads, plus the mean +- SEM at sigma = 0 (if on the grid)."""
    sigmas, values = np.asarray(sigmas, np.float64), np.asarray(values, np.float64)
    mean = finite_mean(values)  # diverged models (NaN) are left out
    n_seeds = values.shape[0]
    minimum = curve_minimum(sigmas, mean)
    crossing = upper_crossing(sigmas, mean, level)

    def statistic(curve):
        m = curve_minimum(sigmas, curve)
        return m.sigma, m.value, upper_crossing(sigmas, curve, level)

    samples = bootstrap_seeds(values, statistic, n_boot, seed)
    out = {
        "min_sigma": minimum.sigma,
        "min_value": minimum.value,
        "min_fitted": minimum.fitted,
        "grid_min_sigma": float(sigmas[minimum.index]),
        "grid_min_value": float(mean[minimum.index]),
        "crossing": crossing,
        "level": level,
        "n_seeds": n_seeds,
        "n_boot": n_boot,
    }
    for name, column in (("min_sigma", 0), ("min_value", 1), ("crossing", 2)):
        s = spread(samples[:, column], n_seeds)
        out |= {f"{name}_se": s.se, f"{name}_low": s.low, f"{name}_high": s.high, f"{name}_defined": s.defined}
    zero = np.flatnonzero(sigmas == 0.0)
    if zero.size:
        at_zero, at_zero_sem = mean_and_sem(values[:, zero[0]])
        out |= {"at_zero": float(at_zero), "at_zero_sem": float(at_zero_sem)}
    return out


# --- the run ----------------------------------------------------------------------------------


def sigma_grid(args: argparse.Namespace) -> list[float]:
    if args.sigmas is not None:
        return args.sigmas
    return np.linspace(0.0, PAPER_SIGMA_MAX, args.points).tolist()


def with_sigma_grid(args: argparse.Namespace) -> argparse.Namespace:
    args.sigma_grid = sigma_grid(args)
    return args


def run(args: argparse.Namespace, session: Session) -> tuple[dict, dict]:
    """Train every (seed, family, sigma) model, evaluate it at p = 0.01, and analyse the curves."""
    result = train(args, session)
    mixing = shared_mixing(result.mixing, sigma_axis=2)  # every sigma of a (seed, family) shares its M
    estimate, n_evaluations = evaluate(result, args.eval_rel_sem, session)
    arrays = {
        "families": np.asarray(args.families),
        "sigmas": np.asarray(args.sigma_grid, np.float64),
        "seeds": np.asarray(args.seeds),
        "loss_per_feature": family_first(estimate.loss_per_feature),
        "loss_per_feature_sem": family_first(estimate.sem),
        "final_train_loss_per_feature": family_first(result.history.train_loss_per_feature[..., -1]),
        "history_step": np.asarray(result.history.step)[0, 0, 0],
        "train_loss_per_feature_history": family_first(result.history.train_loss_per_feature),
        "mixing": family_first(mixing),
        "w_in": family_first(result.params.w_in),
        "w_out": family_first(result.params.w_out),
        "n_evaluations": np.asarray(n_evaluations),
    }
    naive = ccjax.naive_loss_per_feature(args.config.n_features, args.config.d_mlp)
    return arrays, manifest_extras(args) | {"analysis": analyses(arrays, naive, args.bootstrap)}


def train(args: argparse.Namespace, session: Session) -> ccjax.SweepResult:
    """The one sweep over seed x family x sigma."""
    sigmas, seeds, families, base = args.sigma_grid, args.seeds, args.families, args.config
    n_models = len(seeds) * len(families) * len(sigmas)
    say(
        f"{count(len(seeds), 'seed')} x {count_families(len(families))} x {count(len(sigmas), 'sigma')}: "
        f"{n_models} models x {base.total_steps:,} steps in one sweep"
    )
    with session.timed("train"):
        axes = {"seed": seeds, "mixing": families, "scale": sigmas}
        result = train_sweep(base, axes, "Gaussian M, fixed sigma", session)
    record_sweep_timings(session.timings, [result])
    return result


def evaluate(result: ccjax.SweepResult, rel_sem: float, session: Session) -> tuple[ccjax.measure.Estimate, int]:
    """Every model's L/p at p = 0.01 to ``rel_sem``, and the number of samples behind it."""
    say(f"evaluating {count(result.grid.size, 'model')} at p = {P_EVAL:g} to {rel_sem:g} relative SE ...")
    with session.timed("eval"):
        estimate = ccjax.evaluate_sweep(result, P_EVAL, rel_sem=rel_sem)
    n_evaluations = int(np.asarray(estimate.n_samples).flat[0])
    say(f"evaluated in {format_duration(session.timings['eval_seconds'])} on {n_evaluations:,} exactly-k samples")
    return estimate, n_evaluations


def manifest_extras(args: argparse.Namespace) -> dict:
    """The manifest's fields beyond the common ones and the analysis: mixing, evaluation, analysis method."""
    return {
        "mixing": mixing_formulas(args.families),
        "evaluation": {
            "p": P_EVAL,
            "rel_sem": args.eval_rel_sem,
            "method": "ccjax.evaluate_sweep: L(p) = sum_k Binom(k; n, p) c_k, exact c_1, Monte Carlo c_k",
        },
        "analysis_method": {
            "minimum": f"least-squares parabola through the lowest grid point of the seed-mean curve and "
            f"{HALF_WIDTH} neighbours on each side; its vertex (else the lowest grid point)",
            "crossing": "first sigma above the lowest grid point where the seed-mean curve reaches the naive "
            "L/p, by linear interpolation between grid points",
            "n_boot": args.bootstrap,
            "uncertainty": f"bootstrap over seeds ({args.bootstrap} resamples, numpy seed {BOOTSTRAP_SEED}): "
            f"SD and {INTERVAL[0]:g}/{INTERVAL[1]:g} percentiles; 'defined' is the fraction of resamples "
            "whose curve crosses",
        },
    }


def analyses(arrays: dict, naive: float, n_boot: int) -> dict:
    """:func:`analyse_family` of every family, from the saved arrays (deterministic, so
    ``--plot-only`` reproduces the numbers)."""
    return {
        str(family): analyse_family(arrays["sigmas"], arrays["loss_per_feature"][f], naive, n_boot=n_boot)
        for f, family in enumerate(arrays["families"])
    }


def saved_analyses(arrays: dict, manifest: dict) -> dict:
    """:func:`analyses` with the naive L/p and resample count a manifest records."""
    return analyses(arrays, manifest["naive_loss_per_feature"], manifest["analysis_method"]["n_boot"])


def _pm(value: float, se: float, digits: int = 4) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}" if not math.isfinite(se) else f"{value:.{digits}f} +- {se:.{digits}f}"


def _interval(low: float, high: float, digits: int = 4) -> str:
    return "" if not (math.isfinite(low) and math.isfinite(high)) else f" [{low:.{digits}f}, {high:.{digits}f}]"


def analysis_rows(family: str, stats: dict, sigma_max: float) -> list[list[str]]:
    """The summary rows of one family: quantity, ours, paper."""
    paper = PUBLISHED[family]
    rows = []
    if "at_zero" in stats:
        rows.append(["L/p at sigma = 0", _pm(stats["at_zero"], stats["at_zero_sem"]), f"~{PUBLISHED_AT_ZERO}"])
    fit = "parabola vertex" if stats["min_fitted"] else "lowest grid point"
    value = _pm(stats["min_value"], stats["min_value_se"]) + _interval(stats["min_value_low"], stats["min_value_high"])
    rows.append([f"minimum L/p ({fit})", value, f"~{paper['min_value']}"])
    where = _pm(stats["min_sigma"], stats["min_sigma_se"]) + _interval(stats["min_sigma_low"], stats["min_sigma_high"])
    low, high = paper["argmin"]
    rows.append(["sigma at the minimum", where, f"~{low}-{high}"])
    rows.append(
        [
            "lowest grid point of the mean (sigma, L/p)",
            f"{stats['grid_min_sigma']:.4f}, {stats['grid_min_value']:.4f}",
            "-",
        ]
    )
    if math.isfinite(stats["crossing"]):
        crossing = _pm(stats["crossing"], stats["crossing_se"]) + _interval(
            stats["crossing_low"], stats["crossing_high"]
        )
    elif stats["grid_min_value"] >= stats["level"]:
        crossing = "never below naive on the grid"
    else:
        crossing = f"does not cross within the grid (sigma <= {sigma_max:g})"
    defined = stats["crossing_defined"]
    if stats["n_seeds"] > 1 and math.isfinite(defined) and 0 < defined < 1:
        crossing += f" (crosses in {100 * defined:.0f}% of resamples)"
    rows.append([f"sigma where it crosses naive {stats['level']:.4f} again", crossing, f"~{paper['crossing']}"])
    return rows


def summary(arrays: dict, manifest: dict) -> str:
    families = [str(family) for family in arrays["families"]]
    sigmas = arrays["sigmas"]
    naive = manifest["naive_loss_per_feature"]
    n_seeds = len(arrays["seeds"])
    lines = [
        f"sigma sweep: L/p at p = {manifest['evaluation']['p']:g}, {manifest['config']['steps']:,} steps; "
        f"{count(n_seeds, 'seed')} (mean +- SEM over seeds); evaluation rel. SE "
        f"{manifest['evaluation']['rel_sem']:g}; naive L/p = {naive:.4f}",
        "",
    ]
    headers = ["sigma", *(ccjax.MIXING_FAMILIES[family].label for family in families)]
    rows = [
        [f"{sigma:.3f}", *(format_mean_sem(arrays["loss_per_feature"][f, :, s]) for f in range(len(families)))]
        for s, sigma in enumerate(sigmas)
    ]
    lines.append(format_table(headers, rows))
    n_boot = manifest["analysis_method"]["n_boot"]
    for family, stats in saved_analyses(arrays, manifest).items():
        lines += ["", f"{ccjax.MIXING_FAMILIES[family].label}:"]
        lines.append(format_table(["quantity", "ours", "paper"], analysis_rows(family, stats, float(sigmas.max()))))
    lines += [
        "",
        f"ours: seed-mean curve; +- bootstrap SD over seeds ({n_boot} resamples), "
        f"[{INTERVAL[0]:g}th, {INTERVAL[1]:g}th percentile]. paper: one seed per sigma, read off the figure "
        "(about +-0.001).",
    ]
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    families = [str(family) for family in arrays["families"]]
    naive = manifest["naive_loss_per_feature"]
    fig, ax = plt.subplots(figsize=(8.0, 5.4), layout="constrained")
    all_stats = saved_analyses(arrays, manifest)
    for f, family in enumerate(families):
        color = f"C{FAMILIES.index(family) + 2}"  # the paper's colours: green symmetric, red asymmetric
        _plot_seeds(ax, arrays["sigmas"], arrays["loss_per_feature"][f], family, color)
        _plot_analysis(ax, family, all_stats[family], naive, color)
        _plot_published(ax, family, naive, color)
    ax.axhline(naive, **NAIVE_STYLE, label=f"naive ({naive:.4f}); x on it: paper's crossings", zorder=1)
    ax.set(
        xlabel="mixing magnitude sigma",
        ylabel=f"loss per feature L/p at p = {manifest['evaluation']['p']:g}",
        title=f"sigma sweep ({count(len(arrays['seeds']), 'seed')}; dots: single seeds)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5)
    return fig


def _plot_seeds(ax, sigmas, values, family: str, color: str) -> None:
    """One family's L/p of every seed (dots) and their mean +- SEM over sigma."""
    ax.plot(np.broadcast_to(sigmas, values.shape).ravel(), values.ravel(), ".", color=color, alpha=0.25, ms=3)
    label = f"{ccjax.MIXING_FAMILIES[family].label} (mean +- SEM)"
    plot_seed_mean(ax, sigmas, values, "o-", ms=3, color=color, label=label, alpha=0.25)


def _plot_analysis(ax, family: str, stats: dict, naive: float, color: str) -> None:
    """One family's minimum (star) and naive-line crossing (diamond), with bootstrap SD error bars."""

    def error(name):
        return stats[f"{name}_se"] if math.isfinite(stats[f"{name}_se"]) else None

    label = f"{family}: minimum {stats['min_value']:.4f} at sigma {stats['min_sigma']:.4f}"
    marker = {"color": color, "mec": "k", "mew": 0.6, "capsize": 3, "zorder": 4}
    ax.errorbar(
        stats["min_sigma"],
        stats["min_value"],
        xerr=error("min_sigma"),
        yerr=error("min_value"),
        fmt="*",
        ms=12,
        label=label,
        **marker,
    )
    if math.isfinite(stats["crossing"]):
        label = f"{family}: crosses naive at sigma {stats['crossing']:.4f}"
        ax.errorbar(stats["crossing"], naive, xerr=error("crossing"), fmt="D", ms=6, label=label, **marker)


def _plot_published(ax, family: str, naive: float, color: str) -> None:
    """The paper's minimum (with its sigma range) and crossing of one family, as crosses."""
    paper = PUBLISHED[family]
    low, high = paper["argmin"]
    ax.errorbar(
        (low + high) / 2,
        paper["min_value"],
        xerr=(high - low) / 2,
        fmt="x",
        ms=8,
        mew=1.5,
        color=color,
        capsize=4,
        alpha=0.7,
        zorder=3,
        label=f"paper, {family}: minimum ~{paper['min_value']} at sigma {low}-{high}",
    )
    ax.plot([paper["crossing"]], [naive], "x", ms=8, mew=1.5, color=color, alpha=0.7, zorder=3)


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    rows = []
    for family, analysed in manifest["analysis"].items():
        published = PUBLISHED.get(family)
        if published is None:
            continue
        rows += _sigma_minimum_rows(family, published, analysed)
        if "at_zero" in analysed:
            rows.append(
                compare_value(
                    "sigma_sweep",
                    f"{family}: L/p at σ = 0",
                    PUBLISHED_AT_ZERO,
                    arrays["loss_per_feature"][list(arrays["families"]).index(family), :, 0],
                )
            )
    return rows


def _sigma_minimum_rows(family: str, published: dict, analysed: dict) -> list[Comparison]:
    """One family's minimum L/p over σ, the σ at the minimum and the σ where L/p crosses naive."""
    value, se = analysed["min_value"], analysed["min_value_se"]
    interval = f"{format_number(analysed['min_sigma_low'])}–{format_number(analysed['min_sigma_high'])}"
    low, high = published["argmin"]
    return [
        compare_range(
            "sigma_sweep",
            f"{family}: minimum L/p over σ",
            published["min_value"],
            published["min_value"],
            value,
            se,
            read_error=READ_ERROR,
            ours=f"{format_pm(value, se)} ({analysed['n_seeds']} seeds, bootstrap)",
            note="parabola vertex of the seed-mean curve",
        ),
        compare_range(
            "sigma_sweep",
            f"{family}: σ at the minimum",
            low,
            high,
            analysed["min_sigma"],
            analysed["min_sigma_se"],
            note=f"bootstrap 16–84%: {interval}",
        ),
        compare_range(
            "sigma_sweep",
            f"{family}: σ where L/p crosses naive",
            published["crossing"],
            published["crossing"],
            analysed["crossing"],
            analysed["crossing_se"],
            read_error=0.002,
            note="paper: one seed per σ, read off (±0.002)",
        ),
    ]


STAGES = (
    Stage(
        "sigma_sweep",
        "Experiment 3: σ sweep",
        3.0,
        quick_args=("--sigmas", "0,0.02,0.04,0.06,0.08", *QUICK_TRAIN, "--eval-rel-sem", "0.01"),
        compare=compare,
    ),
)

SPEC = Experiment.from_module(
    __name__,
    title="L/p at p = 0.01 against the mixing magnitude sigma",
    config=PAPER,
    axes={"seed": "seeds", "mixing": "families", "scale": "sigma_grid"},
    options=(
        Option("--sigmas", sigma_list, None, "mixing magnitudes (>= 0); overrides --points", "LIST", exclusive="grid"),
        Option(
            "--points",
            positive_int,
            PAPER_POINTS,
            f"sigmas evenly spaced in [0, {PAPER_SIGMA_MAX:g}]",
            exclusive="grid",
        ),
        families_option(FAMILIES, field="mixing", to_field=operator.itemgetter(0)),
        seeds_option("5"),
        unscaled_steps_option(),
        Option(
            "--eval-rel-sem",
            positive_float,
            0.001,
            "relative standard error of each model's L/p at p = 0.01 (well below the spread over seeds)",
        ),
        Option("--bootstrap", positive_int, BOOTSTRAP, "bootstrap resamples of the seeds for the analysis"),
    ),
    published={
        **PUBLISHED,
        "at_zero": PUBLISHED_AT_ZERO,
        "note": "read off the published figure (about +-0.001); one seed per sigma",
    },
    resolve=with_sigma_grid,
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
