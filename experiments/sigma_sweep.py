"""Paper experiment 3 (sigma sweep): L/p at p = 0.01 against the mixing magnitude sigma.

Labels are relu(x) + sigma M x with a symmetric or asymmetric Gaussian M. At sigma = 0
the trained models sit on the naive line (L/p = 0.0833); moderate sigma takes them below
it, large sigma above it. Every (seed, family, sigma) model is trained in one jitted
sweep. The summary gives the minimum of the seed-mean curve (parabola fit) and where it
crosses the naive line again, with bootstrap-over-seeds uncertainties.
"""

import operator
import sys

import numpy as np

import ccjax
from ccjax import measure, report
from ccjax.report import READ_ERROR, Comparison, compare_range, compare_value, format_number, format_pm

from . import _cli
from ._experiment import Session, train_and_evaluate
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
EVALUATION = "ccjax.evaluate_sweep: L(p) = sum_k Binom(k; n, p) c_k, exact c_1, Monte Carlo c_k"
ARRAYS = measure.SIGMA_SWEEP_ARRAYS


def with_sigma_grid(args):
    """``args.sigma_grid``: ``--sigmas``, else ``--points`` sigmas evenly spaced in [0, PAPER_SIGMA_MAX]."""
    args.sigma_grid = np.linspace(0.0, PAPER_SIGMA_MAX, args.points).tolist() if args.sigmas is None else args.sigmas
    return args


def run(args, session: Session) -> tuple[dict, dict]:
    """Train every (seed, family, sigma) model in one sweep, evaluate it at p = 0.01, and analyse the curves."""
    sigmas, seeds, families, config, count = args.sigma_grid, args.seeds, args.families, args.config, report.count
    grid = f"{count(len(seeds), 'seed')} x {report.count_families(len(families))} x {count(len(sigmas), 'sigma')}"
    _cli.say(f"{grid}: {len(seeds) * len(families) * len(sigmas)} models x {config.total_steps:,} steps in one sweep")
    axes, what = {"seed": seeds, "mixing": families, "scale": sigmas}, "Gaussian M, fixed sigma"
    result, estimate = train_and_evaluate(config, axes, what, session, rel_sem=args.eval_rel_sem, p=P_EVAL)
    arrays = {"families": np.asarray(families), "sigmas": np.asarray(sigmas, np.float64), "seeds": np.asarray(seeds)}
    arrays |= measure.sigma_sweep_arrays(result, estimate)
    naive, n_boot = ccjax.naive_loss_per_feature(config.n_features, config.d_mlp), args.bootstrap
    loss = arrays["loss_per_feature"]
    return arrays, {
        "mixing": _cli.mixing_formulas(families),
        "evaluation": {"p": P_EVAL, "rel_sem": args.eval_rel_sem, "method": EVALUATION},
        "analysis_method": measure.describe_dip_statistics(n_boot, BOOTSTRAP_SEED, "sigma", "the naive L/p"),
        "analysis": measure.dip_analyses(arrays["sigmas"], loss, families, naive, n_boot, BOOTSTRAP_SEED, "sigma"),
    }


def summary(arrays: dict, manifest: dict) -> str:
    sigmas, evaluation, naive = arrays["sigmas"], manifest["evaluation"], manifest["naive_loss_per_feature"]
    labels = [ccjax.MIXING_FAMILIES[str(family)].label for family in arrays["families"]]
    loss = arrays["loss_per_feature"]
    rows = [[f"{sigma:.3f}", *map(report.format_mean_sem, loss[:, :, s])] for s, sigma in enumerate(sigmas)]
    lines = [
        f"sigma sweep: L/p at p = {evaluation['p']:g}, {ccjax.io.saved_config(manifest).steps:,} steps; "
        f"{report.count(len(arrays['seeds']), 'seed')} (mean +- SEM over seeds); evaluation rel. SE "
        f"{evaluation['rel_sem']:g}; naive L/p = {naive:.4f}",
        "",
        report.format_table(["sigma", *labels], rows),
    ]
    analysis = measure.saved_dip_analyses(manifest["analysis"], "sigma")  # as dip_analyses computed it
    for label, (family, stats) in zip(labels, analysis.items(), strict=True):  # ours (describe_dip) next to the paper
        low, high = PUBLISHED[family]["argmin"]
        paper = PUBLISHED[family] | {"at_zero": PUBLISHED["at_zero"], "min_x": f"{low}-{high}"}
        described = measure.describe_dip(stats, "sigma", float(sigmas.max())).items()
        rows = [[what, ours, f"~{paper[key]}" if key in paper else "-"] for key, (what, ours) in described]
        lines += ["", f"{label}:", report.format_table(["quantity", "ours", "paper"], rows)]
    n_boot, (low, high) = manifest["analysis_method"]["n_boot"], measure.statistics.INTERVAL
    spread = f"+- bootstrap SD over seeds ({n_boot} resamples), [{low:g}th, {high:g}th percentile]"
    lines += ["", f"ours: seed-mean curve; {spread}. paper: one seed per sigma, read off the figure (about +-0.001)."]
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    from ccjax import plot

    stats, naive = measure.saved_dip_analyses(manifest["analysis"], "sigma"), manifest["naive_loss_per_feature"]
    loss, p = arrays["loss_per_feature"], manifest["evaluation"]["p"]
    title = f"sigma sweep ({report.count(len(arrays['seeds']), 'seed')}; dots: single seeds)"
    return plot.plot_sigma_sweep(arrays["sigmas"], loss, stats, PUBLISHED, naive=naive, p=p, title=title)


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
            estimate = stats[name], stats[f"{name}_se"]
            rows.append(compare_range(EXPERIMENT, f"{family}: {quantity}", *published, *estimate, **options))
        if "at_zero" in stats:
            at_zero = arrays["loss_per_feature"][f, :, 0]
            rows.append(compare_value(EXPERIMENT, f"{family}: L/p at σ = 0", PUBLISHED["at_zero"], at_zero))
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
TITLE = "L/p at p = 0.01 against the mixing magnitude sigma"
AXES = {"seed": "seeds", "mixing": "families", "scale": "sigma_grid"}
SPEC = Experiment.from_module(__name__, title=TITLE, config=PAPER, axes=AXES, options=OPTIONS, resolve=with_sigma_grid)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
