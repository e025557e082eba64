"""Paper experiment 8: L/p against the rank of the mixing matrix M (docs/paper.md §3, §6.8).

Trains, on exactly-one data with a learned mixing scale, one model per (seed, family,
rank), where M = U V^T with U, V ~ N(0, 1) of shape (100, r) (``low-rank``) or their QR
Q factors (``low-rank-flat``: r equal non-zero singular values). Everything is one jitted
sweep over the axes seed x family x rank. A seed fixes U and V (the rank-r M of a seed
uses their first r columns), the initial weights and the data stream, so the ranks of a
seed are a paired comparison. Every L/p is exact on exactly-one data
(:func:`ccjax.exactly_one_loss_per_feature`, L/p = n c_1); the only noise is over seeds.

Two conventions (``--convention``):

* ``spec`` (default): docs/paper.md §3-4. M keeps its diagonal; AdamW lr 3e-3 with a
  half-cosine decay, batch 2048, 10,000 steps; both families, ranks 1..100.
* ``paper-code``: the authors' public code (``paper_code/nb6_mixing_matrix_rank.py`` with
  ``mlpinsoup.py``) as closely as ccjax allows. M's diagonal is zeroed after forming
  U V^T (so every "rank r" M is in fact full rank); AdamW lr 1e-3 constant, weight decay
  1e-2, batch 1024, 30,000 steps; scale from 0.01; the code's ranks 5, 7, 10, 15, 20, 50,
  100 of the ``low-rank`` family, plus its "full rank" point, an i.i.d. N(0, 1) M (ccjax's
  ``asymmetric`` family) with zero diagonal, trained as a second sweep over the same seeds
  (so it shares each seed's initial weights and data). What ccjax cannot match is listed
  in the manifest and printed. The conventions' recipes, defaults and notes on the authors'
  code are tables in ``_rank_conventions``; this module is the grid, the analysis and the figure.

``--zero-diagonal`` / ``--no-zero-diagonal`` set M's diagonal independently of the
training recipe (default: the convention's own choice, kept for ``spec`` and zeroed for
``paper-code``), so the two Ms can be compared in pairs: the same recipe and seeds (the
same U, V, initial weights and data), only the diagonal differs. A run whose diagonal is
not its convention's own writes ``rank_sweep_zero_diagonal`` (spec recipe, zeroed) or
``rank_sweep_paper_code_diagonal_kept`` (paper-code recipe, kept).

The paper publishes only the qualitative claim "lower rank gives lower loss", so the
summary measures that trend: the slope of L/p against ln(effective rank) and Spearman's
rank correlation, per seed, with their mean and SEM over seeds.

    python -m experiments.rank_sweep                     # 2 families x 9 ranks x 5 seeds
    python -m experiments.rank_sweep --convention paper-code   # 7 ranks + full rank, 5 seeds
    python -m experiments.rank_sweep --convention paper-code --no-zero-diagonal  # its pair: diagonal kept
    python -m experiments.rank_sweep --ranks 1,10,50 --seeds 2 --steps 2000
    python -m experiments.rank_sweep --plot-only
"""

import argparse
import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

import ccjax
from ccjax import baselines

from . import _rank_conventions as conventions
from ._cli import (
    choice_list,
    count,
    finite_float,
    finite_mean,
    format_mean_sem,
    format_table,
    logged_steps,
    mean_and_sem,
    plot_seed_mean,
    positive_int,
    record_sweep_timings,
    say,
)
from ._compare import Comparison, as_float, format_number, format_pm, is_missing
from ._experiment import Session, family_first, train_sweep
from ._rank_conventions import HELP, convention_of, resolve_defaults, zero_diagonal_of
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, seeds_option

# Experiment 8, docs/paper.md §6.8: only the qualitative claim, no numbers.
PAPER_CLAIM = "lower rank gives lower loss (docs/paper.md §6.8; no numbers are published)"

EXPERIMENT = "rank_sweep"
TREND_SEMS = 2.0  # a trend is called when the mean slope is this many SEMs from zero
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
FULL_RANK_ARRAYS = {
    f"full_rank_{name}": f"(K{axes}) full-rank point (i.i.d. N(0, 1) M, the same seeds): {text}"
    for name, (axes, text) in MODEL_ARRAYS.items()
}
ARRAYS = {  # the full-rank arrays only with --full-rank
    "convention": "() the convention: spec or paper-code",
    "families": "(F,) mixing families",
    "ranks": "(R,) ranks r of M (ascending)",
    "seeds": "(K,) seeds; a seed fixes U and V (the rank-r M uses their first r columns), init and data",
    "history_step": "(T,) step at the end of each logging interval",
    **{name: f"(F, K, R{axes}) {text}" for name, (axes, text) in MODEL_ARRAYS.items()},
    **FULL_RANK_ARRAYS,
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

DESCRIPTION = """\
Paper experiment 8 (rank of M): L/p against the (effective) rank of the mixing matrix.

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


@jax.jit
def _exact_losses(params: ccjax.FeatureMLP, scaled_mixing):
    return jax.vmap(ccjax.exactly_one_loss_per_feature)(params, scaled_mixing)


@jax.jit
def _naive_losses(scaled_mixing):
    naive = baselines.naive_model(scaled_mixing.shape[-1], conventions.SPEC.d_mlp)
    return jax.vmap(ccjax.exactly_one_loss_per_feature, in_axes=(None, 0))(naive, scaled_mixing)


_effective_ranks = jax.jit(jax.vmap(ccjax.analysis.effective_rank))


def _flat(array, lead: int):
    array = np.asarray(array)
    return jnp.asarray(array.reshape(-1, *array.shape[lead:]))


def model_arrays(result: ccjax.SweepResult) -> dict:
    """The per-model arrays of :data:`MODEL_ARRAYS`, each with the sweep's grid axes in front."""
    grid = result.grid.shape
    lead = len(grid)
    n = result.config.n_features
    params = jax.tree.map(lambda leaf: _flat(leaf, lead), result.params)
    scaled = _flat(result.scaled_mixing, lead)
    scale = np.asarray(result.scale, np.float64)  # |s|: the labels use the learned scale's magnitude
    return {
        "loss": np.asarray(_exact_losses(params, scaled), np.float64).reshape(grid),
        "scale": scale,
        "effective_rank": np.asarray(_effective_ranks(_flat(result.mixing, lead)), np.float64).reshape(grid),
        "mixing_rms": scale * np.linalg.norm(np.asarray(result.mixing, np.float64), axis=(-2, -1)) / n,
        "naive_loss": np.asarray(_naive_losses(scaled), np.float64).reshape(grid),
        "final_train_loss_per_feature": np.asarray(result.history.train_loss_per_feature)[..., -1],
        "train_loss_per_feature_history": np.asarray(result.history.train_loss_per_feature),
        "scale_history": np.asarray(result.history.scale),
        "mixing": np.asarray(result.mixing),
        "w_in": np.asarray(result.params.w_in),
        "w_out": np.asarray(result.params.w_out),
    }


def run(args: argparse.Namespace, session: Session) -> tuple[dict, dict]:
    ranks, seeds, families, convention, base = args.ranks, args.seeds, args.families, args.convention, args.config
    full_config = dataclasses.replace(base, mixing=conventions.FULL_RANK_FAMILY) if args.full_rank else None
    say(conventions.describe_run(convention, base, families, len(seeds), len(ranks), args.full_rank))
    axes = {"seed": seeds, "mixing": families, "mixing_rank": ranks}
    label = conventions.run_label(convention, base.zero_diagonal)
    with session.timed("train"):
        result = train_sweep(base, axes, f"low-rank M, learned scale, exactly-one, {label}", session)
        full = None
        if full_config is not None:
            full = train_sweep(full_config, {"seed": seeds}, f"full-rank M, learned scale, {label}", session)
    record_sweep_timings(session.timings, [result] + ([full] if full else []))
    arrays = {
        "convention": np.asarray(convention),
        "families": np.asarray(families),
        "ranks": np.asarray(ranks),
        "seeds": np.asarray(seeds),
        "history_step": logged_steps(result),
        **{name: family_first(value) for name, value in model_arrays(result).items()},  # (F, K, R, ...)
    }
    if full is not None:
        arrays |= {f"full_rank_{name}": value for name, value in model_arrays(full).items()}
    extras = {
        **conventions.manifest_fields(convention, base.zero_diagonal),
        "config": dataclasses.asdict(base),
        "full_rank_config": dataclasses.asdict(full_config) if full_config else None,
        "mixing": {family: ccjax.MIXING_FAMILIES[family].formula for family in families}
        | ({"full_rank": conventions.FULL_RANK_FORMULA} if full_config else {}),
        **DEFINITIONS,
        "paper_claim": PAPER_CLAIM,
        "trend": {"definition": TREND_DEFINITION, **trend(arrays)},
        "naive_loss_per_feature": ccjax.naive_loss_per_feature(base.n_features, base.d_mlp),
    }
    return arrays, extras


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected: ranks are distinct, losses continuous)."""
    rank_x, rank_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.all(rank_y == rank_y[0]):
        return float("nan")
    return float(np.corrcoef(rank_x, rank_y)[0, 1])


TREND_DEFINITION = (
    "per family (the full-rank point is not part of it); slope: least-squares slope of L/p against "
    "ln(effective rank) within each seed "
    "(L/p per e-fold of effective rank; > 0 means lower rank, lower loss), mean and SEM over seeds; "
    "spearman: Spearman correlation of rank and L/p within each seed, mean and SEM over seeds; "
    "rises: adjacent rank pairs whose seed-mean L/p rises with rank, out of steps"
)


def trend(arrays: dict) -> dict:
    """Per family: how L/p changes with rank, paired within each seed (see TREND_DEFINITION)."""
    out = {}
    for f, family in enumerate(str(family) for family in arrays["families"]):
        loss, effective = arrays["loss"][f], arrays["effective_rank"][f]  # (K, R)
        if loss.shape[1] < 2:
            out[family] = None
            continue
        slopes = np.array([np.polyfit(np.log(x), y, 1)[0] for x, y in zip(effective, loss, strict=True)])
        rhos = np.array([_spearman(np.asarray(arrays["ranks"]), y) for y in loss])
        slope, slope_sem = mean_and_sem(slopes)
        rho, rho_sem = mean_and_sem(rhos)
        steps = np.diff(finite_mean(loss))
        out[family] = {
            "slope": float(slope),
            "slope_sem": float(slope_sem),
            "spearman": float(rho),
            "spearman_sem": float(rho_sem),
            "rises": int(np.sum(steps > 0)),
            "steps": int(steps.size),
            "seeds_with_positive_slope": int(np.sum(slopes > 0)),
            "n_seeds": int(slopes.size),
        }
    return out


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


def half_scale_ratio(arrays: dict, prefix: str = "") -> np.ndarray:
    """(F, K, R), or (K,) with ``prefix="full_rank_"``: |s| at the logged step nearest half
    the run over the final |s|.

    A convergence check for the learned scale: near 1 when it settled by mid-training.
    """
    steps, history = arrays["history_step"], arrays[f"{prefix}scale_history"].astype(np.float64)
    if steps.size < 2:  # one logging interval: nothing to compare with
        return np.full(history.shape[:-1], np.nan)
    half = int(np.argmin(np.abs(steps - steps[-1] / 2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return history[..., half] / history[..., -1]


def _row(family: str, rank: str, arrays: dict, index, ratio: np.ndarray, prefix: str = "") -> list[str]:
    def values(name):
        return arrays[f"{prefix}{name}"][index]

    row = [family, rank, f"{values('effective_rank').mean():.2f}"]
    row += [format_mean_sem(values("loss")), format_mean_sem(values("scale"), 5)]
    row += [f"{ratio[index].mean():.2f}" if np.all(np.isfinite(ratio[index])) else "-"]
    row += [format_mean_sem(values("mixing_rms")), format_mean_sem(values("naive_loss"))]
    return row


TABLE_NOTE = (
    "eff. rank: of the unscaled M (seed mean); |s| half/end: learned |scale| at mid-training over its final "
    "value (seed mean; 1 = settled); rms(sM) = |s| ||M||_F / n; naive: the naive model on each model's labels."
)


def summary(arrays: dict, manifest: dict) -> str:
    """The run's recipe, the table of every (family, rank), and the trend against the paper's claim."""
    has_full = "full_rank_loss" in arrays
    title, recipe = conventions.heading(manifest)
    lines = [
        title,
        f"  {recipe}",
        f"learned scale, exactly-one data; {count(len(arrays['seeds']), 'seed')} (mean +- SEM); L/p exact; naive L/p "
        f"on clean labels = {manifest['naive_loss_per_feature']:.4f}",
        "",
        _table(arrays),
        TABLE_NOTE,
    ]
    if has_full:
        lines.append(
            f"{conventions.FULL_RANK_FAMILY} / full: {conventions.FULL_RANK_FORMULA}, trained on the same seeds."
        )
    if conventions.convention_of(manifest) == "paper-code":
        lines += ["", "not matched to the authors' code (manifest: paper_code):"]
        lines += [f"  - {item}" for item in manifest.get("paper_code", {}).get("not_matched", [])]
    lines += ["", f"paper: {PAPER_CLAIM}.", "trend per family (paired over the ranks of each seed):"]
    lines += [_trend_line(family, stats) for family, stats in trend(arrays).items()]
    if has_full:
        lines += _full_rank_lines(arrays)
    return "\n".join(lines)


def _table(arrays: dict) -> str:
    """The summary's table: a row per (family, rank), then the full-rank point's row if any."""
    headers = ["family", "rank", "eff. rank", "L/p", "|scale|", "|s| half/end", "rms(sM)", "naive, these labels"]
    ratio = half_scale_ratio(arrays)
    rows = [
        _row(family, str(rank), arrays, (f, slice(None), r), ratio)
        for f, family in enumerate(str(family) for family in arrays["families"])
        for r, rank in enumerate(arrays["ranks"])
    ]
    if "full_rank_loss" in arrays:
        full_ratio = half_scale_ratio(arrays, "full_rank_")
        rows.append(_row(conventions.FULL_RANK_FAMILY, "full", arrays, slice(None), full_ratio, "full_rank_"))
    return format_table(headers, rows)


def _trend_line(family: str, stats: dict | None) -> str:
    """One family's line of the trend (:func:`trend`) and its verdict."""
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


def _full_rank_lines(arrays: dict) -> list[str]:
    """The full-rank point's L/p against each family's lowest and highest rank, paired by seed."""
    full, ranks = arrays["full_rank_loss"], arrays["ranks"]
    lines = []
    for f, family in enumerate(str(family) for family in arrays["families"]):
        low, high = arrays["loss"][f, :, 0], arrays["loss"][f, :, -1]
        lines.append(
            f"  full rank vs {family} (paired by seed): L/p(full) - L/p(r={ranks[0]}) = "
            f"{format_mean_sem(full - low)}, L/p(full) - L/p(r={ranks[-1]}) = {format_mean_sem(full - high)}"
        )
    return lines


def figure_name(manifest: dict) -> str:
    """``<output_stem>.png``: each convention and diagonal its own file."""
    return f"{conventions.manifest_stem(manifest)}.png"


PANELS = (  # (array, y label, title) of the panels against the effective rank of M
    ("loss", "L/p on exactly-one data (exact)", "L/p against the rank of M"),
    ("scale", "learned |scale|", "learned mixing scale"),
    ("mixing_rms", "RMS entry of s M  (|s| ||M||_F / n)", "size of the learned label mixing"),
)


def figure(arrays: dict, manifest: dict):
    """L/p, the learned |s| and rms(sM) against the effective rank of M, and |s| during training."""
    import matplotlib.pyplot as plt

    families = [str(family) for family in arrays["families"]]
    fig, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    axes = [grid[0, 0], grid[0, 1], grid[1, 0]]
    for f, family in enumerate(families):
        _family_points(axes, arrays, f, family)
    if "full_rank_loss" in arrays:
        _full_rank_points(axes, arrays)
    _naive_line(axes[0], arrays, manifest["naive_loss_per_feature"])
    for ax, (_, ylabel, title) in zip(axes, PANELS, strict=True):
        ax.set(xscale="log", xlabel="effective rank of M", ylabel=ylabel, title=title)
        ax.grid(True, alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    _scale_history_panel(grid[1, 1], arrays, families)
    title, recipe = conventions.heading(manifest)
    fig.suptitle(
        f"{title}\n{recipe}; exactly-one data\n({count(len(arrays['seeds']), 'seed')}: points at each seed's own "
        "effective rank; lines: seed means; L/p band: +- SEM)"
    )
    return fig


def _family_points(axes: list, arrays: dict, f: int, family: str) -> None:
    """Family ``f`` on the :data:`PANELS`: each seed's points, the seed means (L/p: +- SEM), naive on its labels."""
    color = f"C{f}"
    effective = arrays["effective_rank"][f]  # (K, R)
    x = finite_mean(effective)
    for i, (ax, (name, _, _)) in enumerate(zip(axes, PANELS, strict=True)):
        values = arrays[name][f]
        ax.scatter(effective.ravel(), values.ravel(), s=10, color=color, alpha=0.35, linewidths=0)
        label = ccjax.MIXING_FAMILIES[family].label
        # A band on L/p only: the log-scale panels show the seeds' points instead.
        plot_seed_mean(ax, x, values, "o-", band=i == 0, alpha=0.2, ms=4, color=color, label=label)
    naive_mean = finite_mean(arrays["naive_loss"][f])
    axes[0].plot(x, naive_mean, ls=":", lw=1.2, color=color, label="naive model on these labels")


def _full_rank_points(axes: list, arrays: dict) -> None:
    """The full-rank point on the :data:`PANELS`: each seed's point and the seed mean (L/p: +- SEM)."""
    effective = arrays["full_rank_effective_rank"]  # (K,)
    for i, (ax, (name, _, _)) in enumerate(zip(axes, PANELS, strict=True)):
        values = arrays[f"full_rank_{name}"]
        ax.scatter(effective, values, s=14, marker="s", color="C3", alpha=0.35, linewidths=0)
        mean, sem = mean_and_sem(values)
        yerr = sem if i == 0 and np.isfinite(sem) else None
        ax.errorbar(effective.mean(), mean, yerr=yerr, fmt="s", ms=6, color="C3", label=conventions.FULL_RANK_LABEL)


def _naive_line(ax, arrays: dict, naive: float) -> None:
    """The clean naive L/p on the loss panel, whose y range keeps it and the trained models in view."""
    from ccjax.plot import NAIVE_STYLE

    ax.axhline(naive, **NAIVE_STYLE, label=f"naive, clean labels ({naive:.4f})", zorder=1)
    # The naive model on mixed labels may lie far above: it does not set the range.
    losses = [arrays["loss"].ravel(), *([arrays["full_rank_loss"]] if "full_rank_loss" in arrays else [])]
    all_losses = np.concatenate(losses)
    low, high = min(float(all_losses.min()), naive), max(float(all_losses.max()), naive)
    ax.set_ylim(low - 0.003, high + 0.01)


def _scale_history_panel(ax, arrays: dict, families: list[str]) -> None:
    """Learned |scale| over training, over its final value (seed mean), one line per (family, rank)."""
    import matplotlib.pyplot as plt

    steps, ranks = arrays["history_step"], arrays["ranks"]
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(ranks)))
    styles = ["-", "--", ":", "-."]

    def relative(history):  # (..., T) -> seed mean of |s| / final |s|
        history = history.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nanmean(history / history[..., -1:], axis=0)

    for f in range(len(families)):
        mean = relative(arrays["scale_history"][f])  # (R, T)
        for r, rank in enumerate(ranks):
            label = f"r = {rank}" if f == 0 else None
            ax.plot(steps, mean[r], ls=styles[f % len(styles)], color=colors[r], lw=1.2, label=label)
    if "full_rank_scale_history" in arrays:
        ax.plot(steps, relative(arrays["full_rank_scale_history"]), color="C3", lw=1.5, label="full rank")
    ax.axhline(1.0, color="0.6", lw=0.8)
    family_key = ", ".join(f"{styles[f % len(styles)]} {family}" for f, family in enumerate(families))
    ax.set(
        xlabel="training step",
        ylabel="|scale| / final |scale|",
        title=f"learned scale during training ({family_key})",
        ylim=(0, 1.5),
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)


FIGURES = {figure_name: figure}
OPTIONAL = argparse.BooleanOptionalAction


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    """The paper's claim is qualitative: lower rank, lower L/p (slope of L/p against
    ln(effective rank) > 0, 2 SEM over seeds). Counted only for the M the published figure
    was most likely made with (the authors' recipe with M's diagonal zeroed, erratum 5)."""

    convention, zero_diagonal = convention_of(manifest), zero_diagonal_of(manifest)
    counted = convention == "paper-code" and zero_diagonal
    diagonal = "diagonal zeroed" if zero_diagonal else "diagonal kept"
    rows = []
    for family, stats in manifest["trend"].items():
        if not isinstance(stats, dict):  # a family with one rank, or the "definition" text
            continue
        slope, sem = stats["slope"], stats["slope_sem"]
        agrees = not is_missing(slope) and not is_missing(sem) and as_float(slope) > 2 * as_float(sem)
        if is_missing(slope):
            ours = format_number(slope)
        else:
            ours = f"slope {format_pm(slope, sem, sign='+')} per e-fold of eff. rank ({stats['n_seeds']} seeds)"
        note = f"Spearman(rank, L/p) {format_number(stats['spearman'], 2, sign='+')}"
        if not counted:
            # Not the M of the paper's figure: shown, not counted (erratum 5).
            verdict = "the paper's direction" if agrees else "NOT the paper's direction"
            note += f"; {diagonal} under the {convention} recipe: {verdict} (see erratum 5)"
            agrees = None
        quantity = f"{convention} recipe, {diagonal}, {family}: lower rank gives lower L/p"
        rows.append(Comparison("rank_sweep", quantity, "yes (qualitative)", ours, agrees, note))
    return rows


# Experiment 8 twice over: each recipe with M's diagonal kept and zeroed, paired by seed (erratum 5).
STAGES = (
    Stage(
        "rank_sweep",
        "Experiment 8: rank of M (spec convention: M = U Vᵀ, diagonal kept)",
        8.0,
        quick_args=("--ranks", "1,20,100", *QUICK_TRAIN),
        compare=compare,
    ),
    Stage(
        "rank_sweep_zero_diagonal",
        "Experiment 8: rank of M (spec recipe, diagonal zeroed: the pair of the above)",
        8.1,
        ("--zero-diagonal",),
        ("--zero-diagonal", "--ranks", "1,20,100", *QUICK_TRAIN),
        compare=compare,
    ),
    Stage(
        "rank_sweep_paper_code",
        "Experiment 8: rank of M (the authors' code 046b67a: diagonal zeroed, 30k steps, lr 1e-3)",
        8.2,
        ("--convention", "paper-code"),
        ("--convention", "paper-code", "--ranks", "5,50", *QUICK_TRAIN),
        compare=compare,
    ),
    Stage(
        "rank_sweep_paper_code_diagonal_kept",
        "Experiment 8: rank of M (the authors' recipe, diagonal kept: the pair of the above)",
        8.3,
        ("--convention", "paper-code", "--no-zero-diagonal"),
        ("--convention", "paper-code", "--no-zero-diagonal", "--ranks", "5,50", *QUICK_TRAIN),
        compare=compare,
    ),
)

SPEC = Experiment.from_module(
    __name__,
    title="L/p against the rank of M, learned scale, exactly-one data",
    axes={"family": "families", "seed": "seeds", "rank": "ranks"},
    options=(
        Option("--convention", str, "spec", HELP["convention"], choices=conventions.CONVENTIONS),
        Option("--ranks", conventions.rank_list, None, HELP["ranks"], metavar="LIST"),
        Option("--families", choice_list(conventions.FAMILIES), None, HELP["families"], metavar="LIST"),
        Option("--full-rank", None, None, HELP["full_rank"], action=OPTIONAL),
        Option("--zero-diagonal", None, None, HELP["zero_diagonal"], action=OPTIONAL),
        seeds_option("5"),
        Option("--steps", positive_int, None, HELP["steps"]),
        Option("--scale-init", finite_float, None, HELP["scale_init"]),
    ),
    resolve=resolve_defaults,
    defaults={"out": None},  # resolved per convention and diagonal (output_stem)
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
