"""Paper experiment 3 (sigma sweep): L/p at p = 0.01 against the mixing magnitude sigma.

Labels are relu(x) + sigma M x with a symmetric or asymmetric Gaussian M. At sigma = 0
the trained models sit on the naive line (L/p = 0.0833); moderate sigma takes them below
it, large sigma above it. Every (seed, family, sigma) model is trained in one jitted
sweep. The summary gives the minimum of the seed-mean curve (parabola fit) and where it
crosses the naive line again, with bootstrap-over-seeds uncertainties.
"""

import math
import operator
import sys

import numpy as np

import ccjax
from ccjax.measure.statistics import HALF_WIDTH, INTERVAL, dip_statistics

from . import _cli
from ._compare import READ_ERROR, Comparison, compare_range, compare_value, format_number, format_pm
from ._experiment import Session, family_first, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, families_option, seeds_option, unscaled_steps_option

# docs/paper.md §6.3, per family: the minimum of L/p at p = 0.01 over sigma, where it lies and where the
# curve crosses the naive line again; and L/p at sigma = 0. Read off the figure (one seed per sigma, ±0.001).
PUBLISHED = {
    "symmetric": {"min_value": 0.065, "argmin": (0.028, 0.036), "crossing": 0.064},
    "asymmetric": {"min_value": 0.075, "argmin": (0.02, 0.028), "crossing": 0.047},
    "at_zero": 0.083,
    "note": "read off the published figure (about +-0.001); one seed per sigma",
}

EXPERIMENT = "sigma_sweep"
FAMILIES = ("symmetric", "asymmetric")
PAPER = ccjax.TrainConfig(mixing=FAMILIES[0])  # p = 0.01, 10,000 steps (docs/paper.md §4)
PAPER_SIGMA_MAX, PAPER_POINTS = 0.08, 41  # sigma in linspace(0, 0.08, 41)
P_EVAL = PAPER.p
BOOTSTRAP, BOOTSTRAP_SEED = 2000, 0
LOW, HIGH = INTERVAL  # percentiles of the bootstrap interval (about +-1 SD)
ANALYSIS_METHOD = {
    "minimum": f"least-squares parabola through the lowest grid point of the seed-mean curve and "
    f"{HALF_WIDTH} neighbours on each side; its vertex (else the lowest grid point)",
    "crossing": "first sigma above the lowest grid point where the seed-mean curve reaches the naive "
    "L/p, by linear interpolation between grid points",
}
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


def analyses(arrays: dict, naive: float, n_boot: int) -> dict:
    """Per family, :func:`dip_statistics` of its L/p curves below the naive line (``min_x`` named
    ``min_sigma``), from the saved arrays (deterministic: ``--plot-only`` agrees)."""
    out = {}
    for family, values in zip(arrays["families"], arrays["loss_per_feature"], strict=True):
        stats = dip_statistics(arrays["sigmas"], values, naive, n_boot, BOOTSTRAP_SEED)
        out[str(family)] = {key.replace("min_x", "min_sigma"): value for key, value in stats.items()}
    return out


def with_sigma_grid(args):
    """``args.sigma_grid``: ``--sigmas``, else ``--points`` sigmas evenly spaced in [0, PAPER_SIGMA_MAX]."""
    args.sigma_grid = np.linspace(0.0, PAPER_SIGMA_MAX, args.points).tolist() if args.sigmas is None else args.sigmas
    return args


def run(args, session: Session) -> tuple[dict, dict]:
    """Train every (seed, family, sigma) model in one sweep, evaluate it at p = 0.01, and analyse the curves."""
    sigmas, seeds, families, config = args.sigma_grid, args.seeds, args.families, args.config
    _cli.say(
        f"{_cli.count(len(seeds), 'seed')} x {_cli.count_families(len(families))} x {_cli.count(len(sigmas), 'sigma')}"
        f": {len(seeds) * len(families) * len(sigmas)} models x {config.total_steps:,} steps in one sweep"
    )
    with session.timed("train"):
        axes = {"seed": seeds, "mixing": families, "scale": sigmas}
        result = train_sweep(config, axes, "Gaussian M, fixed sigma", session)
    _cli.record_sweep_timings(session.timings, [result])
    n_models = _cli.count(result.grid.size, "model")
    _cli.say(f"evaluating {n_models} at p = {P_EVAL:g} to {args.eval_rel_sem:g} relative SE ...")
    with session.timed("eval"):
        estimate = ccjax.evaluate_sweep(result, P_EVAL, rel_sem=args.eval_rel_sem)
    n_evaluations = int(np.asarray(estimate.n_samples).flat[0])
    _cli.say(
        f"evaluated in {_cli.format_duration(session.timings['eval_seconds'])} on {n_evaluations:,} exactly-k samples"
    )
    history = result.history.train_loss_per_feature
    arrays = {
        "families": np.asarray(families),
        "sigmas": np.asarray(sigmas, np.float64),
        "seeds": np.asarray(seeds),
        "loss_per_feature": family_first(estimate.loss_per_feature),
        "loss_per_feature_sem": family_first(estimate.sem),
        "final_train_loss_per_feature": family_first(history[..., -1]),
        "history_step": _cli.logged_steps(result),
        "train_loss_per_feature_history": family_first(history),
        "mixing": family_first(_cli.shared_mixing(result.mixing, sigma_axis=2)),  # all sigmas of a seed share M
        "w_in": family_first(result.params.w_in),
        "w_out": family_first(result.params.w_out),
        "n_evaluations": np.asarray(n_evaluations),
    }
    method = "ccjax.evaluate_sweep: L(p) = sum_k Binom(k; n, p) c_k, exact c_1, Monte Carlo c_k"
    uncertainty = (
        f"bootstrap over seeds ({args.bootstrap} resamples, numpy seed {BOOTSTRAP_SEED}): SD and {LOW:g}/{HIGH:g} "
        "percentiles; 'defined' is the fraction of resamples whose curve crosses"
    )
    naive = ccjax.naive_loss_per_feature(config.n_features, config.d_mlp)
    return arrays, {
        "mixing": _cli.mixing_formulas(families),
        "evaluation": {"p": P_EVAL, "rel_sem": args.eval_rel_sem, "method": method},
        "analysis_method": ANALYSIS_METHOD | {"n_boot": args.bootstrap, "uncertainty": uncertainty},
        "analysis": analyses(arrays, naive, args.bootstrap),
    }


def estimate(stats: dict, name: str, error: str = "_se") -> str:
    """``value +- error [low, high]`` of an analysed quantity (its ``name + error``, ``_low`` and ``_high``
    entries), leaving out what is missing or not finite ("-" for the value)."""
    value, se, low, high = (stats.get(name + suffix, math.nan) for suffix in ("", error, "_low", "_high"))
    interval = f" [{low:.4f}, {high:.4f}]" if math.isfinite(low) and math.isfinite(high) else ""
    if not math.isfinite(value):
        return "-" + interval
    return f"{value:.4f}" + (f" +- {se:.4f}" if math.isfinite(se) else "") + interval


def analysis_rows(family: str, stats: dict, sigma_max: float) -> list[list[str]]:
    """The summary rows of one family: quantity, ours, paper."""
    paper, (low, high) = PUBLISHED[family], PUBLISHED[family]["argmin"]
    if math.isfinite(stats["crossing"]):
        crossing = estimate(stats, "crossing")
    elif stats["grid_min_value"] >= stats["level"]:
        crossing = "never below naive on the grid"
    else:
        crossing = f"does not cross within the grid (sigma <= {sigma_max:g})"
    defined = stats["crossing_defined"]
    if stats["n_seeds"] > 1 and math.isfinite(defined) and 0 < defined < 1:
        crossing += f" (crosses in {100 * defined:.0f}% of resamples)"
    rows = []
    if "at_zero" in stats:
        rows.append(["L/p at sigma = 0", estimate(stats, "at_zero", "_sem"), f"~{PUBLISHED['at_zero']}"])
    fit = "parabola vertex" if stats["min_fitted"] else "lowest grid point"
    grid_min = f"{stats['grid_min_sigma']:.4f}, {stats['grid_min_value']:.4f}"
    return rows + [
        [f"minimum L/p ({fit})", estimate(stats, "min_value"), f"~{paper['min_value']}"],
        ["sigma at the minimum", estimate(stats, "min_sigma"), f"~{low}-{high}"],
        ["lowest grid point of the mean (sigma, L/p)", grid_min, "-"],
        [f"sigma where it crosses naive {stats['level']:.4f} again", crossing, f"~{paper['crossing']}"],
    ]


def summary(arrays: dict, manifest: dict) -> str:
    sigmas, evaluation = arrays["sigmas"], manifest["evaluation"]
    naive, n_boot = manifest["naive_loss_per_feature"], manifest["analysis_method"]["n_boot"]
    labels = [ccjax.MIXING_FAMILIES[str(family)].label for family in arrays["families"]]
    rows = [
        [f"{sigma:.3f}", *(_cli.format_mean_sem(values) for values in arrays["loss_per_feature"][:, :, s])]
        for s, sigma in enumerate(sigmas)
    ]
    lines = [
        f"sigma sweep: L/p at p = {evaluation['p']:g}, {ccjax.io.saved_config(manifest).steps:,} steps; "
        f"{_cli.count(len(arrays['seeds']), 'seed')} (mean +- SEM over seeds); evaluation rel. SE "
        f"{evaluation['rel_sem']:g}; naive L/p = {naive:.4f}",
        "",
        _cli.format_table(["sigma", *labels], rows),
    ]
    for label, (family, stats) in zip(labels, analyses(arrays, naive, n_boot).items(), strict=True):
        rows = analysis_rows(family, stats, float(sigmas.max()))
        lines += ["", f"{label}:", _cli.format_table(["quantity", "ours", "paper"], rows)]
    lines += [
        "",
        f"ours: seed-mean curve; +- bootstrap SD over seeds ({n_boot} resamples), "
        f"[{LOW:g}th, {HIGH:g}th percentile]. paper: one seed per sigma, read off the figure "
        "(about +-0.001).",
    ]
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    """Per family: L/p of every seed (dots) and their mean +- SEM; our minimum (star) and naive-line
    crossing (diamond) with bootstrap SD error bars; the paper's minimum (with its sigma range) and crossing (x)."""
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    naive, sigmas = manifest["naive_loss_per_feature"], arrays["sigmas"]
    fig, ax = plt.subplots(figsize=(8.0, 5.4), layout="constrained")
    stats_by_family = analyses(arrays, naive, manifest["analysis_method"]["n_boot"])
    for values, (family, stats) in zip(arrays["loss_per_feature"], stats_by_family.items(), strict=True):
        color = f"C{FAMILIES.index(family) + 2}"  # the paper's colours: green symmetric, red asymmetric
        ax.plot(np.broadcast_to(sigmas, values.shape).ravel(), values.ravel(), ".", color=color, alpha=0.25, ms=3)
        label = f"{ccjax.MIXING_FAMILIES[family].label} (mean +- SEM)"
        _cli.plot_seed_mean(ax, sigmas, values, "o-", ms=3, color=color, label=label, alpha=0.25)
        se = {name: stats[f"{name}_se"] for name in ("min_sigma", "min_value", "crossing")}
        se = {name: value if math.isfinite(value) else None for name, value in se.items()}  # none for one seed
        marker = {"color": color, "mec": "k", "mew": 0.6, "capsize": 3, "zorder": 4}
        x, y = stats["min_sigma"], stats["min_value"]
        label = f"{family}: minimum {y:.4f} at sigma {x:.4f}"
        ax.errorbar(x, y, xerr=se["min_sigma"], yerr=se["min_value"], fmt="*", ms=12, label=label, **marker)
        if math.isfinite(stats["crossing"]):
            label = f"{family}: crosses naive at sigma {stats['crossing']:.4f}"
            ax.errorbar(stats["crossing"], naive, xerr=se["crossing"], fmt="D", ms=6, label=label, **marker)
        paper, (low, high) = PUBLISHED[family], PUBLISHED[family]["argmin"]
        label = f"paper, {family}: minimum ~{paper['min_value']} at sigma {low}-{high}"
        cross = {"ms": 8, "mew": 1.5, "color": color, "alpha": 0.7, "zorder": 3}
        ax.errorbar(
            (low + high) / 2, paper["min_value"], xerr=(high - low) / 2, fmt="x", capsize=4, label=label, **cross
        )
        ax.plot([paper["crossing"]], [naive], "x", **cross)
    ax.axhline(naive, **NAIVE_STYLE, label=f"naive ({naive:.4f}); x on it: paper's crossings", zorder=1)
    ax.set(
        xlabel="mixing magnitude sigma",
        ylabel=f"loss per feature L/p at p = {manifest['evaluation']['p']:g}",
        title=f"sigma sweep ({_cli.count(len(arrays['seeds']), 'seed')}; dots: single seeds)",
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5)
    return fig


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    """Per family: the minimum L/p over σ, the σ at the minimum and where L/p crosses naive, and L/p at σ = 0."""
    rows = []
    for f, (family, stats) in enumerate(manifest["analysis"].items()):
        paper = PUBLISHED[family]
        interval = f"{format_number(stats['min_sigma_low'])}–{format_number(stats['min_sigma_high'])}"
        ours = f"{format_pm(stats['min_value'], stats['min_value_se'])} ({stats['n_seeds']} seeds, bootstrap)"
        minimum = {"read_error": READ_ERROR, "ours": ours, "note": "parabola vertex of the seed-mean curve"}
        crossing = {"read_error": 0.002, "note": "paper: one seed per σ, read off (±0.002)"}
        for quantity, name, published, options in (
            ("minimum L/p over σ", "min_value", [paper["min_value"]] * 2, minimum),
            ("σ at the minimum", "min_sigma", paper["argmin"], {"note": f"bootstrap 16–84%: {interval}"}),
            ("σ where L/p crosses naive", "crossing", [paper["crossing"]] * 2, crossing),
        ):
            estimate = (stats[name], stats[f"{name}_se"])
            rows.append(compare_range(EXPERIMENT, f"{family}: {quantity}", *published, *estimate, **options))
        if "at_zero" in stats:
            zero = arrays["loss_per_feature"][f, :, 0]
            rows.append(compare_value(EXPERIMENT, f"{family}: L/p at σ = 0", PUBLISHED["at_zero"], zero))
    return rows


QUICK = ("--sigmas", "0,0.02,0.04,0.06,0.08", *QUICK_TRAIN, "--eval-rel-sem", "0.01")
STAGES = (Stage(EXPERIMENT, "Experiment 3: σ sweep", 3.0, quick_args=QUICK, compare=compare),)
POINTS_HELP = f"sigmas evenly spaced in [0, {PAPER_SIGMA_MAX:g}]"
REL_SEM_HELP = "relative standard error of each model's L/p at p = 0.01 (well below the spread over seeds)"
OPTIONS = (
    Option("--sigmas", _cli.sigma_list, None, "mixing magnitudes (>= 0); overrides --points", "LIST", exclusive="grid"),
    Option("--points", _cli.positive_int, PAPER_POINTS, POINTS_HELP, exclusive="grid"),
    families_option(FAMILIES, field="mixing", to_field=operator.itemgetter(0)),
    seeds_option("5"),
    unscaled_steps_option(),
    Option("--eval-rel-sem", _cli.positive_float, 0.001, REL_SEM_HELP),
    Option("--bootstrap", _cli.positive_int, BOOTSTRAP, "bootstrap resamples of the seeds for the analysis"),
)
SPEC = Experiment.from_module(
    __name__,
    title="L/p at p = 0.01 against the mixing magnitude sigma",
    config=PAPER,
    axes={"seed": "seeds", "mixing": "families", "scale": "sigma_grid"},
    options=OPTIONS,
    resolve=with_sigma_grid,
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
