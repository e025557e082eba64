"""Paper experiment 8 (rank of M): L/p against the (effective) rank of the mixing matrix.

Labels are relu(x) + |s| M x with a low-rank M = U V^T (U, V ~ N(0, 1), n_features x r),
or its flat-spectrum variant (U, V replaced by their QR Q factors), and a mixing scale s
that is learned with the weights (same AdamW, from s = 0.01; the labels use its magnitude,
as the authors' code does). Data: exactly one active feature per sample. The paper states
that lower rank gives lower loss; this run measures L/p (exact), the learned |s| and the
effective rank exp(entropy of normalised singular values).

--convention spec (default) follows docs/paper.md: M keeps its diagonal; lr 3e-3 with a
half-cosine decay, batch 2048, 10,000 steps; families low-rank and low-rank-flat, ranks
1,2,5,10,20,30,50,75,100. --convention paper-code follows the authors' nb6 code: M's
diagonal zeroed, lr 1e-3 constant, batch 1024, 30,000 steps; family low-rank, ranks
5,7,10,15,20,50,100, plus a full-rank point (i.i.d. N(0, 1) M, zero diagonal). --ranks,
--families, --steps, --scale-init and --full-rank override a convention's defaults.

--zero-diagonal / --no-zero-diagonal set M's diagonal independently of the recipe
(default: the convention's own), for the paired comparison of the two Ms: the same seeds
give the same U, V, initial weights and data, so only the diagonal differs.

Default --out: results/<stem>, and the figure is <stem>.png, where <stem> is rank_sweep
(spec) or rank_sweep_paper_code, plus _zero_diagonal or _diagonal_kept when the diagonal
is not the convention's own.
"""

import argparse
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

import ccjax
from ccjax import analysis, baselines
from ccjax.measure.statistics import finite_mean, mean_and_sem

from . import _rank_conventions as conventions
from ._cli import (
    count,
    format_mean_sem,
    format_table,
    logged_steps,
    mixing_formulas,
    plot_seed_mean,
    record_sweep_timings,
    say,
)
from ._compare import Comparison, as_float, format_number, format_pm, is_missing
from ._experiment import Session, family_first, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Stage

EXPERIMENT = "rank_sweep"
# Experiment 8, docs/paper.md §6.8: only the qualitative claim, no numbers.
PAPER_CLAIM = "lower rank gives lower loss (docs/paper.md §6.8; no numbers are published)"
TREND_SEMS = 2.0  # a trend is called when the mean slope is this many SEMs from zero
FULL = "full_rank_"  # the prefix of the full-rank point's arrays
MODEL_ARRAYS = {  # name: (trailing axes, meaning); per model of the family sweep (F, K, R) or full-rank point (K)
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
ARRAYS = {  # the full-rank arrays only with --full-rank
    "convention": "() the convention: spec or paper-code",
    "families": "(F,) mixing families",
    "ranks": "(R,) ranks r of M (ascending)",
    "seeds": "(K,) seeds; a seed fixes U and V (the rank-r M uses their first r columns), init and data",
    "history_step": "(T,) step at the end of each logging interval",
    **{name: f"(F, K, R{axes}) {text}" for name, (axes, text) in MODEL_ARRAYS.items()},
    **{
        FULL + name: f"(K{axes}) full-rank point (i.i.d. N(0, 1) M, the same seeds): {text}"
        for name, (axes, text) in MODEL_ARRAYS.items()
    },
}
DEFINITIONS = {  # manifest fields: what the run computes
    "labels": "relu(x) + |s| M x (row vectors: x @ M.T): the magnitude of a scale s learned by the same AdamW "
    "(from scale_init), as docs/paper.md §3 and the authors' code (mlpinsoup.py)",
    "effective_rank": "exp(-sum_i w_i ln w_i), w = singular values of the unscaled M / their sum "
    "(ccjax.analysis.effective_rank; the same for s M)",
    "evaluation": "exact: L/p = n c_1 on exactly-one data (ccjax.exactly_one_loss_per_feature)",
    "references": {
        "naive": "W_in[f, f] = W_out[f, f] = 1 for f < 50, evaluated on each model's labels (naive_loss)",
        "naive_clean": "naive model on clean labels, (n - d) / n / 6",
    },
}
TREND_DEFINITION = (
    "per family (the full-rank point is not part of it); slope: least-squares slope of L/p against "
    "ln(effective rank) within each seed "
    "(L/p per e-fold of effective rank; > 0 means lower rank, lower loss), mean and SEM over seeds; "
    "spearman: Spearman correlation of rank and L/p within each seed, mean and SEM over seeds; "
    "rises: adjacent rank pairs whose seed-mean L/p rises with rank, out of steps"
)
TABLE_NOTE = (
    "eff. rank: of the unscaled M (seed mean); |s| half/end: learned |scale| at mid-training over its final "
    "value (seed mean; 1 = settled); rms(sM) = |s| ||M||_F / n; naive: the naive model on each model's labels."
)

_effective_ranks = jax.jit(jax.vmap(analysis.effective_rank))


@jax.jit
def _naive_losses(scaled_mixing):
    naive = baselines.naive_model(scaled_mixing.shape[-1], conventions.SPEC.d_mlp)
    return jax.vmap(ccjax.exactly_one_loss_per_feature, in_axes=(None, 0))(naive, scaled_mixing)


def model_arrays(result: ccjax.SweepResult) -> dict:
    """The :data:`MODEL_ARRAYS` of a sweep, each with the sweep's grid axes in front."""
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
        "effective_rank": per_model(_effective_ranks(flat(result.mixing))),
        "mixing_rms": scale * norm / result.config.n_features,
        "naive_loss": per_model(_naive_losses(flat(result.scaled_mixing))),
        "final_train_loss_per_feature": np.asarray(history.train_loss_per_feature)[..., -1],
        "train_loss_per_feature_history": np.asarray(history.train_loss_per_feature),
        "scale_history": np.asarray(history.scale),
        "mixing": np.asarray(result.mixing),
        "w_in": np.asarray(result.params.w_in),
        "w_out": np.asarray(result.params.w_out),
    }


def run(args: argparse.Namespace, session: Session) -> tuple[dict, dict]:
    config, seeds, families = args.config, args.seeds, args.families
    full_config = dataclasses.replace(config, mixing=conventions.FULL_RANK_FAMILY) if args.full_rank else None
    say(conventions.describe_run(args))
    label = conventions.run_label(args.convention, config.zero_diagonal)
    with session.timed("train"):
        axes = {"seed": seeds, "mixing": families, "mixing_rank": args.ranks}
        results = [train_sweep(config, axes, f"low-rank M, learned scale, exactly-one, {label}", session)]
        if full_config:
            results.append(train_sweep(full_config, {"seed": seeds}, f"full-rank M, learned scale, {label}", session))
    record_sweep_timings(session.timings, results)
    arrays = {name: np.asarray(getattr(args, name)) for name in ("convention", "families", "ranks", "seeds")}
    arrays["history_step"] = logged_steps(results[0])
    arrays |= {name: family_first(value) for name, value in model_arrays(results[0]).items()}  # (F, K, R, ...)
    if full_config:
        arrays |= {FULL + name: value for name, value in model_arrays(results[1]).items()}
    return arrays, {
        **conventions.manifest_fields(args.convention, config.zero_diagonal),
        "config": dataclasses.asdict(config),
        "full_rank_config": dataclasses.asdict(full_config) if full_config else None,
        "mixing": mixing_formulas(families) | ({"full_rank": conventions.FULL_RANK_FORMULA} if full_config else {}),
        **DEFINITIONS,
        "paper_claim": PAPER_CLAIM,
        "trend": {"definition": TREND_DEFINITION, **trend(arrays)},
        "naive_loss_per_feature": ccjax.naive_loss_per_feature(config.n_features, config.d_mlp),
    }


def trend(arrays: dict) -> dict:
    """Per family: how L/p changes with rank, paired within each seed (:data:`TREND_DEFINITION`)."""
    families = zip(arrays["families"], arrays["effective_rank"], arrays["loss"], strict=True)
    trends = {str(family): analysis.rank_trend(arrays["ranks"], *per_seed) for family, *per_seed in families}
    return {family: None if stats is None else stats._asdict() for family, stats in trends.items()}


def _verdict(stats: dict) -> str:
    slope, sem = stats["slope"], stats["slope_sem"]
    if not np.isfinite(sem):
        direction = "the paper's direction" if slope > 0 else "AGAINST the paper's direction"
        return f"one seed, no SEM, no verdict (the slope's sign is {direction})"
    if slope > TREND_SEMS * sem:
        return f"lower rank, lower L/p (slope > {TREND_SEMS:g} SEM above 0): agrees with the paper"
    if slope < -TREND_SEMS * sem:
        return f"lower rank, HIGHER L/p (slope > {TREND_SEMS:g} SEM below 0): contradicts the paper"
    return f"no trend at {TREND_SEMS:g} SEM"


def _trend_line(family: str, stats: dict | None) -> str:
    if stats is None:
        return f"  {family}: one rank, no trend"
    sem = f" +- {stats['slope_sem']:.5f}" if np.isfinite(stats["slope_sem"]) else ""
    rho_sem = f" +- {stats['spearman_sem']:.2f}" if np.isfinite(stats["spearman_sem"]) else ""
    return (
        f"  {family}: d(L/p)/d ln(eff. rank) = {stats['slope']:+.5f}{sem} "
        f"(> 0 in {stats['seeds_with_positive_slope']}/{stats['n_seeds']} seeds); "
        f"Spearman(rank, L/p) = {stats['spearman']:+.2f}{rho_sem}; "
        f"mean L/p rises in {stats['rises']}/{stats['steps']} rank steps -> {_verdict(stats)}"
    )


def _row(family: str, rank: str, arrays: dict, index, prefix: str = "") -> list[str]:
    loss, scale, effective, rms, naive = (
        arrays[prefix + name][index] for name in ("loss", "scale", "effective_rank", "mixing_rms", "naive_loss")
    )
    ratio = analysis.settled_ratio(arrays["history_step"], arrays[prefix + "scale_history"])[index]
    settled = f"{ratio.mean():.2f}" if np.all(np.isfinite(ratio)) else "-"
    means = [format_mean_sem(loss), format_mean_sem(scale, 5), settled, format_mean_sem(rms), format_mean_sem(naive)]
    return [family, rank, f"{effective.mean():.2f}", *means]


def summary(arrays: dict, manifest: dict) -> str:
    """The run's recipe, a table row per (family, rank), and the trend against the paper's claim."""
    families, ranks, full = [str(family) for family in arrays["families"]], arrays["ranks"], FULL + "loss" in arrays
    headers = ["family", "rank", "eff. rank", "L/p", "|scale|", "|s| half/end", "rms(sM)", "naive, these labels"]
    rows = [
        _row(family, str(rank), arrays, (f, slice(None), r))
        for f, family in enumerate(families)
        for r, rank in enumerate(ranks)
    ]
    rows += [_row(conventions.FULL_RANK_FAMILY, "full", arrays, slice(None), FULL)] if full else []
    title, recipe = conventions.heading(manifest)
    naive = f"naive L/p on clean labels = {manifest['naive_loss_per_feature']:.4f}"
    setting = (
        f"learned scale, exactly-one data; {count(len(arrays['seeds']), 'seed')} (mean +- SEM); L/p exact; {naive}"
    )
    lines = [title, f"  {recipe}", setting, "", format_table(headers, rows), TABLE_NOTE]
    if full:
        full_rank = conventions.FULL_RANK_FAMILY
        lines.append(f"{full_rank} / full: {conventions.FULL_RANK_FORMULA}, trained on the same seeds.")
    if conventions.convention_of(manifest) == "paper-code":
        lines += ["", "not matched to the authors' code (manifest: paper_code):"]
        lines += [f"  - {item}" for item in manifest.get("paper_code", {}).get("not_matched", [])]
    lines += ["", f"paper: {PAPER_CLAIM}.", "trend per family (paired over the ranks of each seed):"]
    lines += [_trend_line(family, stats) for family, stats in trend(arrays).items()]
    for family, loss in zip(families, arrays["loss"], strict=True):
        if full:  # against the lowest and the highest rank, paired by seed
            low, high = (format_mean_sem(arrays[FULL + "loss"] - loss[:, r]) for r in (0, -1))
            pair = f"L/p(full) - L/p(r={ranks[0]}) = {low}, L/p(full) - L/p(r={ranks[-1]}) = {high}"
            lines.append(f"  full rank vs {family} (paired by seed): {pair}")
    return "\n".join(lines)


def figure_name(manifest: dict) -> str:
    """``<default --out stem>.png``: each convention and diagonal its own file."""
    stem = conventions.output_stem(conventions.convention_of(manifest), conventions.zero_diagonal_of(manifest))
    return f"{stem}.png"


PANELS = (  # (array, y label, title) of the panels against the effective rank of M
    ("loss", "L/p on exactly-one data (exact)", "L/p against the rank of M"),
    ("scale", "learned |scale|", "learned mixing scale"),
    ("mixing_rms", "RMS entry of s M  (|s| ||M||_F / n)", "size of the learned label mixing"),
)


def figure(arrays: dict, manifest: dict):
    """L/p, the learned |s| and rms(sM) against the effective rank of M (each seed's points, the seed means, on L/p
    +- SEM; the full-rank point), and |s| during training."""
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    families = [str(family) for family in arrays["families"]]
    naive, full = manifest["naive_loss_per_feature"], FULL + "loss" in arrays
    fig, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    axes = [grid[0, 0], grid[0, 1], grid[1, 0]]
    for i, (ax, (name, ylabel, title)) in enumerate(zip(axes, PANELS, strict=True)):
        for f, family in enumerate(families):
            effective, values, color = arrays["effective_rank"][f], arrays[name][f], f"C{f}"
            ax.scatter(effective.ravel(), values.ravel(), s=10, color=color, alpha=0.35, linewidths=0)
            x, label = finite_mean(effective), ccjax.MIXING_FAMILIES[family].label
            plot_seed_mean(ax, x, values, "o-", band=i == 0, ms=4, color=color, label=label)  # log panels: no band
            if i == 0:
                naive_loss = finite_mean(arrays["naive_loss"][f])
                ax.plot(x, naive_loss, ls=":", lw=1.2, color=color, label="naive model on these labels")
        if full:
            effective, values = arrays[FULL + "effective_rank"], arrays[FULL + name]
            ax.scatter(effective, values, s=14, marker="s", color="C3", alpha=0.35, linewidths=0)
            mean, sem = mean_and_sem(values)
            yerr = sem if i == 0 and np.isfinite(sem) else None
            ax.errorbar(effective.mean(), mean, yerr=yerr, fmt="s", ms=6, color="C3", label=conventions.FULL_RANK_LABEL)
        if i == 0:  # the naive model on mixed labels may lie far above: the range keeps clean naive and the models
            ax.axhline(naive, **NAIVE_STYLE, label=f"naive, clean labels ({naive:.4f})", zorder=1)
            losses = np.concatenate([arrays["loss"].ravel(), *([arrays[FULL + "loss"]] if full else [])])
            ax.set_ylim(min(float(losses.min()), naive) - 0.003, max(float(losses.max()), naive) + 0.01)
        ax.set(xscale="log", xlabel="effective rank of M", ylabel=ylabel, title=title)
        ax.grid(True, alpha=0.3)
    for ax in axes[1:]:
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    _scale_history_panel(grid[1, 1], arrays, families)
    title, recipe = conventions.heading(manifest)
    fig.suptitle(
        f"{title}\n{recipe}; exactly-one data\n({count(len(arrays['seeds']), 'seed')}: points at each seed's own "
        "effective rank; lines: seed means; L/p band: +- SEM)"
    )
    return fig


def _scale_history_panel(ax, arrays: dict, families: list[str]) -> None:
    """Learned |scale| over training, over its final value (seed mean), one line per (family, rank)."""
    import matplotlib.pyplot as plt

    steps, ranks, styles = arrays["history_step"], arrays["ranks"], ["-", "--", ":", "-."]
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(ranks)))

    def relative(history):  # (K, ..., T) -> seed mean of |s| / final |s|
        return np.nanmean(analysis.relative_to_final(history), axis=0)

    for f in range(len(families)):
        for r, (rank, mean) in enumerate(zip(ranks, relative(arrays["scale_history"][f]), strict=True)):
            label = f"r = {rank}" if f == 0 else None
            ax.plot(steps, mean, ls=styles[f % len(styles)], color=colors[r], lw=1.2, label=label)
    if FULL + "scale_history" in arrays:
        ax.plot(steps, relative(arrays[FULL + "scale_history"]), color="C3", lw=1.5, label="full rank")
    ax.axhline(1.0, color="0.6", lw=0.8)
    key = ", ".join(f"{styles[f % len(styles)]} {family}" for f, family in enumerate(families))
    title = f"learned scale during training ({key})"
    ax.set(xlabel="training step", ylabel="|scale| / final |scale|", title=title, ylim=(0, 1.5))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    """The paper's qualitative claim, lower rank, lower L/p: a slope of L/p against ln(effective rank) above 2 SEM
    over seeds. Counted only for the M the published figure was most likely made with (the authors' recipe with M's
    diagonal zeroed, erratum 5); shown, not counted, for the others."""
    convention, zero_diagonal = conventions.convention_of(manifest), conventions.zero_diagonal_of(manifest)
    diagonal = "diagonal zeroed" if zero_diagonal else "diagonal kept"
    rows = []
    for family, stats in manifest["trend"].items():
        if not isinstance(stats, dict):  # a family with one rank, or the "definition" text
            continue
        slope, sem = stats["slope"], stats["slope_sem"]
        agrees = not is_missing(slope) and not is_missing(sem) and as_float(slope) > 2 * as_float(sem)
        per_fold = f"slope {format_pm(slope, sem, sign='+')} per e-fold of eff. rank ({stats['n_seeds']} seeds)"
        ours = format_number(slope) if is_missing(slope) else per_fold
        note = f"Spearman(rank, L/p) {format_number(stats['spearman'], 2, sign='+')}"
        if not (convention == "paper-code" and zero_diagonal):
            verdict = "the paper's direction" if agrees else "NOT the paper's direction"
            note, agrees = f"{note}; {diagonal} under the {convention} recipe: {verdict} (see erratum 5)", None
        quantity = f"{convention} recipe, {diagonal}, {family}: lower rank gives lower L/p"
        rows.append(Comparison(EXPERIMENT, quantity, "yes (qualitative)", ours, agrees, note))
    return rows


def _stage(order: float, convention: str, zero_diagonal: bool, quick_ranks: str, what: str) -> Stage:
    """The stage of one convention and diagonal, named after its default --out (:func:`output_stem`)."""
    args = ("--convention", convention) if convention != "spec" else ()
    if zero_diagonal != conventions.CONVENTIONS[convention].config.zero_diagonal:
        args += (f"--{'' if zero_diagonal else 'no-'}zero-diagonal",)
    name, quick = conventions.output_stem(convention, zero_diagonal), (*args, "--ranks", quick_ranks, *QUICK_TRAIN)
    return Stage(name, f"Experiment 8: rank of M ({what})", order, args, quick, compare)


# Experiment 8 twice over: each recipe with M's diagonal kept and zeroed, paired by seed (erratum 5).
STAGES = (
    _stage(8.0, "spec", False, "1,20,100", "spec convention: M = U Vᵀ, diagonal kept"),
    _stage(8.1, "spec", True, "1,20,100", "spec recipe, diagonal zeroed: the pair of the above"),
    _stage(8.2, "paper-code", True, "5,50", "the authors' code 046b67a: diagonal zeroed, 30k steps, lr 1e-3"),
    _stage(8.3, "paper-code", False, "5,50", "the authors' recipe, diagonal kept: the pair of the above"),
)

SPEC = Experiment.from_module(
    __name__,
    title="L/p against the rank of M, learned scale, exactly-one data",
    figures={figure_name: figure},
    axes={"family": "families", "seed": "seeds", "rank": "ranks"},
    options=conventions.OPTIONS,
    resolve=conventions.resolve_defaults,
    defaults={"out": None},  # resolved per convention and diagonal (output_stem)
)
build_parser, main, resolve_defaults = SPEC.build_parser, SPEC.main, conventions.resolve_defaults

if __name__ == "__main__":
    sys.exit(main())
