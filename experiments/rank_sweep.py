"""Paper experiment 8 (rank of M): L/p against the (effective) rank of the mixing matrix.

Labels are relu(x) + |s| M x with a low-rank M = U V^T (U, V ~ N(0, 1), n_features x r),
or its flat-spectrum variant (U, V replaced by their QR Q factors), and a mixing scale s
that is learned with the weights (same AdamW, from s = 0.01; the labels use its magnitude,
as the authors' code does). Data: exactly one active feature per sample. The paper states
that lower rank gives lower loss; this run measures L/p (exact), the learned |s| and the
effective rank exp(entropy of normalised singular values).

--convention spec (default) follows docs/paper.md (M's diagonal kept, lr 3e-3 half-cosine, batch 2048),
paper-code the authors' nb6 code (diagonal zeroed, lr 1e-3 constant, batch 1024, plus a full-rank point),
each with its own default grid and steps (see the options). --zero-diagonal / --no-zero-diagonal set M's
diagonal whatever the recipe, for the paired comparison of the two Ms (the same seeds give the same U, V,
initial weights and data). Default --out: results/<stem>, and the figure is <stem>.png, where <stem> is
rank_sweep or rank_sweep_paper_code, plus _zero_diagonal or _diagonal_kept when the diagonal is not the
convention's own.
"""

import argparse
import sys

import numpy as np

from ccjax import analysis, measure
from ccjax.report import count, format_mean_sem, format_table

from . import _rank_conventions as conventions
from ._cli import say
from ._experiment import Session, train_sweeps
from ._spec import Experiment

EXPERIMENT = "rank_sweep"
PAPER_CLAIM = "lower rank gives lower loss (docs/paper.md §6.8; no numbers are published)"
TREND_SEMS = 2.0  # a trend is called when the mean slope is this many SEMs from zero
FULL = "full_rank_"  # the prefix of the full-rank point's arrays
ARRAYS = {  # the full-rank arrays only with --full-rank
    "convention": "() the convention: spec or paper-code",
    "families": "(F,) mixing families",
    "ranks": "(R,) ranks r of M (ascending)",
    "seeds": "(K,) seeds; a seed fixes U and V (the rank-r M uses their first r columns), init and data",
    **measure.describe_rank_sweep_arrays("full-rank point (i.i.d. N(0, 1) M, the same seeds)", FULL),
}
TREND_DEFINITION = f"per family (the full-rank point is not part of it); {measure.RANK_TREND_DEFINITION}"
TABLE_NOTE = (
    "eff. rank: of the unscaled M (seed mean); |s| half/end: learned |scale| at mid-training over its final "
    "value (seed mean; 1 = settled); rms(sM) = |s| ||M||_F / n; naive: the naive model on each model's labels."
)


def run(args: argparse.Namespace, session: Session) -> tuple[dict, dict]:
    config, full_config, seeds = args.config, args.full_config, args.seeds
    say(conventions.describe_run(args))
    label = conventions.CONVENTIONS[args.convention].run_label(config.zero_diagonal)
    axes = {"seed": seeds, "mixing": args.families, "mixing_rank": args.ranks}
    sweeps = [(config, axes, f"low-rank M, learned scale, exactly-one, {label}")]
    sweeps += [(full_config, {"seed": seeds}, f"full-rank M, learned scale, {label}")] if full_config else []
    results = train_sweeps(session, sweeps)
    arrays = {name: np.asarray(getattr(args, name)) for name in ("convention", "families", "ranks", "seeds")}
    arrays |= measure.rank_sweep_arrays(results, FULL)  # (F, K, R, ...) and the full-rank point's (K, ...)
    return arrays, {
        **conventions.manifest_fields(args),
        **measure.RANK_SWEEP_DEFINITIONS,
        "paper_claim": PAPER_CLAIM,
        "trend": {"definition": TREND_DEFINITION} | {f: t and t._asdict() for f, t in trends(arrays).items()},
        "naive_loss_per_feature": measure.naive_loss_per_feature(config.n_features, config.d_mlp),
    }


def trends(arrays: dict) -> dict:
    """Per family: how L/p changes with rank, paired within each seed (:data:`TREND_DEFINITION`)."""
    return measure.rank_trends(arrays["families"], arrays["ranks"], arrays["effective_rank"], arrays["loss"])


def _row(family: str, rank: str, arrays: dict, index, prefix: str = "") -> list[str]:
    names = ("loss", "scale", "effective_rank", "mixing_rms", "naive_loss")
    loss, scale, effective, rms, naive = (arrays[prefix + name][index] for name in names)
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
    seeds, naive = count(len(arrays["seeds"]), "seed"), manifest["naive_loss_per_feature"]
    setting = f"learned scale, exactly-one data; {seeds} (mean +- SEM); L/p exact; "
    setting += f"naive L/p on clean labels = {naive:.4f}"
    lines = [conventions.heading(manifest), setting, "", format_table(headers, rows), TABLE_NOTE]
    lines += [conventions.FULL_RANK_NOTE] if full else []
    if conventions.saved(manifest)[0].name == "paper-code":  # what ccjax does not match in the authors' code
        items = manifest.get("paper_code", {}).get("not_matched", [])
        lines += ["", "not matched to the authors' code (manifest: paper_code):", *(f"  - {item}" for item in items)]
    lines += ["", f"paper: {PAPER_CLAIM}.", "trend per family (paired over the ranks of each seed):"]
    lines += [f"  {f}: {measure.describe_rank_trend(t, TREND_SEMS)}" for f, t in trends(arrays).items()]
    for family, loss in zip(families, arrays["loss"], strict=True) if full else ():  # vs the lowest and highest rank
        low, high = (format_mean_sem(arrays[FULL + "loss"] - loss[:, r]) for r in (0, -1))
        pair = f"L/p(full) - L/p(r={ranks[0]}) = {low}, L/p(full) - L/p(r={ranks[-1]}) = {high}"
        lines.append(f"  full rank vs {family} (paired by seed): {pair}")
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    """L/p, the learned |s| and rms(sM) against the effective rank of M (each seed's points, the seed means, on L/p
    +- SEM; the full-rank point), and |s| during training."""
    from ccjax import plot

    def models(prefix: str) -> plot.RankModels:
        return plot.RankModels(*(arrays[prefix + name] for name in plot.RankModels._fields))

    seeds, families = count(len(arrays["seeds"]), "seed"), [str(family) for family in arrays["families"]]
    title = f"{conventions.heading(manifest, '')}; exactly-one data\n({seeds}: points at each seed's own effective "
    title += "rank; lines: seed means; L/p band: +- SEM)"
    full = {"full": models(FULL) if FULL + "loss" in arrays else None, "full_label": conventions.FULL_RANK_LABEL}
    naive = manifest["naive_loss_per_feature"]
    return plot.plot_rank_sweep(
        arrays["ranks"], arrays["history_step"], families, models(""), naive=naive, title=title, **full
    )


STAGES = conventions.STAGES  # each recipe with M's diagonal kept and zeroed, paired by seed (erratum 5)
SPEC = Experiment.from_module(
    __name__,
    title="L/p against the rank of M, learned scale, exactly-one data",
    figures={conventions.figure_name: figure},
    axes={"family": "families", "seed": "seeds", "rank": "ranks"},
    options=conventions.OPTIONS,
    resolve=conventions.resolve_defaults,
    defaults={"out": None},  # resolved per convention and diagonal (output_stem)
)
build_parser, main, resolve_defaults = SPEC.build_parser, SPEC.main, conventions.resolve_defaults

if __name__ == "__main__":
    sys.exit(main())
