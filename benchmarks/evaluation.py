"""Evaluation benchmark: whole L/p curves by the c_k decomposition vs the paper's per-p sampling.

    python -m benchmarks.evaluation                  # 64 trained models, 100 p's
    python -m benchmarks.evaluation --train-steps 500 --direct-nonempty 1e5   # quicker

Trains a stack of models (16 mixing scales x 4 seeds, embedding M, p = 0.01), then:

1. evaluates every model at 100 p's (1e-3 ... 1) with :func:`ccjax.loss_curve` to a
   relative standard error of 0.3% at every p;
2. again, to the largest relative standard error that the paper's estimator (direct
   Bernoulli-p Monte Carlo on 1e6 non-empty samples per p) has over the p's, predicted
   from step 1 (:func:`ccjax.direct_sem`): equal precision where it is worst;
3. again, to the paper's standard error at *each* p. Near p = 1 every sample has about
   n actives, so both methods need about as many samples there;
4. times that direct estimator (:func:`ccjax.direct_loss_per_feature`) on all models
   at a few p's, checks its measured standard error against the prediction, and
   extrapolates its cost to 100 p's.

Model evaluations count the samples the model is run on: for the engine every sample
(pilot and padding included), for direct sampling the non-empty ones (empty samples
cost the sparse path almost nothing).
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

import ccjax
from ccjax.report import format_table
from experiments._cli import (
    ArgumentParser,
    HelpFormatter,
    format_duration,
    positive_float,
    positive_int,
    say,
    use_every_cpu_core,
)
from experiments._experiment import train_sweep

EXPERIMENT = "eval_benchmark"
PAPER_NONEMPTY = 1e6  # docs/paper.md §4: about 1e6 non-empty samples per p


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m benchmarks.evaluation",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--scales", type=positive_int, default=16, help="mixing scales in [0, 2] (x 4 seeds)")
    parser.add_argument("--seeds", type=positive_int, default=4, help="seeds per scale")
    parser.add_argument("--train-steps", type=positive_int, default=10_000, help="training steps of the models")
    parser.add_argument("--points", type=positive_int, default=100, help="p values, geometric in [1e-3, 1]")
    parser.add_argument("--rel-sem", type=positive_float, default=0.003, help="target relative standard error")
    parser.add_argument(
        "--direct-p", type=str, default="0.001,0.01,0.1,1", help="p's at which the direct estimator is timed"
    )
    parser.add_argument(
        "--direct-nonempty", type=positive_float, default=PAPER_NONEMPTY, help="non-empty samples per p, direct"
    )
    parser.add_argument("--out", type=Path, default=Path("results") / EXPERIMENT, help="folder for the JSON report")
    return parser


def time_direct(params, scaled, p: float, nonempty: float):
    """One jitted, vmapped direct evaluation of every model at ``p``; (estimate, seconds incl. compile, run s)."""
    n_features = params.w_in.shape[-2]
    plan = ccjax.measure.plan_evaluation(p, p, n_features, nonempty)
    # The faster exact path for this p on this platform (as training's "auto" picks it).
    path = dataclasses.replace(ccjax.TrainConfig(), p=p).resolved_input_path()
    one = lambda prm, m: ccjax.direct_loss_per_feature(prm, m, jax.random.key(1), p, plan, path=path)  # noqa: E731
    run = jax.jit(jax.vmap(one))
    start = time.perf_counter()
    compiled = run.lower(params, scaled).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    estimate = jax.block_until_ready(compiled(params, scaled))
    return estimate, compile_seconds, time.perf_counter() - start


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[float]]:
    """The parsed options and the --direct-p probabilities; a usage error on a bad --direct-p."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        direct_p = [float(text) for text in args.direct_p.split(",") if text.strip()]
    except ValueError:
        parser.error(f"--direct-p: expected comma-separated probabilities, got {args.direct_p!r}")
    if not direct_p or any(not 0 < p <= 1 for p in direct_p):
        parser.error(f"--direct-p: every p must be in (0, 1], got {args.direct_p!r}")
    return args, direct_p


def train_models(args: argparse.Namespace) -> ccjax.SweepResult:
    """Train the stack of models: ``--scales`` mixing scales in [0, 2] x ``--seeds`` seeds."""
    config = dataclasses.replace(ccjax.TrainConfig(), steps=args.train_steps)
    scales = np.linspace(0.0, 2.0, args.scales).round(4).tolist()
    return train_sweep(config, {"seed": list(range(args.seeds)), "scale": scales}, "embedding M, p = 0.01")


class EngineRuns(NamedTuple):
    """The engine's three evaluations of every model, and the paper's predicted standard errors."""

    curve: ccjax.LossCurve  # at --rel-sem
    rel: np.ndarray  # its relative standard errors
    paper_sem: np.ndarray  # the paper's estimator's standard error, (*grid, P)
    paper_rel: np.ndarray  # its smallest relative standard error over the models, per p
    worst_paper_rel: float  # the paper's relative standard error at its worst p
    worst: ccjax.LossCurve  # at worst_paper_rel
    matched: ccjax.LossCurve  # at paper_rel, p by p
    matched_rel: np.ndarray  # its relative standard errors


def run_engine(result: ccjax.SweepResult, p: np.ndarray, rel_sem: float) -> EngineRuns:
    """Steps 1-3: evaluate every model at every p to ``rel_sem``, then to the paper's worst and per-p SE."""
    n_models = result.grid.size
    say(f"engine: {n_models} models x {len(p)} p's at rel. SE {rel_sem:g} ...")
    ccjax.loss_curve(result.params, result.scaled_mixing, p[:2], jax.random.key(99), rel_sem=0.05)  # compile
    curve = ccjax.sweep_curves(result, p, rel_sem=rel_sem)
    rel = curve.sem / curve.loss_per_feature
    paper_sem = ccjax.direct_sem(curve, PAPER_NONEMPTY)  # (*grid, P)
    paper_rel = (paper_sem / curve.loss_per_feature).reshape(n_models, -1).min(axis=0)
    worst_paper_rel = float((paper_sem / curve.loss_per_feature).max(axis=-1).min())
    say(f"engine at the paper's worst-p relative SE ({worst_paper_rel:.3%}) ...")
    worst = ccjax.sweep_curves(result, p, rel_sem=worst_paper_rel)
    say("engine at the paper's SE at each p ...")
    matched = ccjax.sweep_curves(result, p, rel_sem=paper_rel)
    matched_rel = matched.sem / matched.loss_per_feature
    return EngineRuns(curve, rel, paper_sem, paper_rel, worst_paper_rel, worst, matched, matched_rel)


def measure_direct_at(result: ccjax.SweepResult, params, scaled, p_direct: float, args: argparse.Namespace) -> dict:
    """Step 4 at one p: time the direct estimator on every model and check its SE against the engine's."""
    say(f"direct Monte Carlo at p = {p_direct:g}, {args.direct_nonempty:,.0f} non-empty samples per model ...")
    estimate, compile_seconds, seconds = time_direct(params, scaled, p_direct, args.direct_nonempty)
    reference = ccjax.sweep_curves(result, [p_direct], rel_sem=args.rel_sem)
    predicted = ccjax.direct_sem(reference, float(np.min(estimate.n_nonempty))).reshape(-1)
    z = (np.asarray(estimate.loss_per_feature) - reference.loss_per_feature.reshape(-1)) / np.hypot(
        np.asarray(estimate.sem), reference.sem.reshape(-1)
    )
    return {
        "p": p_direct,
        "nonempty_per_model": int(np.min(estimate.n_nonempty)),
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "max_rel_sem": float(np.max(np.asarray(estimate.sem) / np.asarray(estimate.loss_per_feature))),
        "measured_over_predicted_sem": float(np.median(np.asarray(estimate.sem) / predicted)),
        "max_abs_z_vs_engine": float(np.max(np.abs(z))),
    }


def measure_direct(result: ccjax.SweepResult, direct_p: list[float], args: argparse.Namespace) -> list[dict]:
    """Step 4: the direct estimator timed and checked at each of ``direct_p``, one row per p."""
    n_models = result.grid.size
    flat = lambda a: np.asarray(a).reshape(n_models, *np.shape(a)[2:])  # noqa: E731
    params = jax.tree.map(flat, result.params)
    scaled = flat(result.scaled_mixing)
    return [measure_direct_at(result, params, scaled, p_direct, args) for p_direct in direct_p]


def engine_report(args: argparse.Namespace, runs: EngineRuns) -> dict:
    """The report's three engine sections: evaluations, wall time and standard errors of each run."""
    curve, worst, matched = runs.curve, runs.worst, runs.matched
    return {
        "engine_target": {
            "rel_sem": args.rel_sem,
            "evaluations_per_model": curve.n_evaluations,
            "seconds": curve.seconds,
            "max_rel_sem": float(runs.rel.max()),
            "max_truncation_bound": float(curve.truncation_bound.max()),
        },
        "engine_paper_worst_se": {
            "rel_sem": runs.worst_paper_rel,
            "evaluations_per_model": worst.n_evaluations,
            "seconds": worst.seconds,
            "max_rel_sem": float((worst.sem / worst.loss_per_feature).max()),
        },
        "engine_paper_se": {
            "evaluations_per_model": matched.n_evaluations,
            "seconds": matched.seconds,
            "max_sem_over_paper_sem": float(np.max(matched.sem / runs.paper_sem)),
        },
    }


def build_report(
    args: argparse.Namespace, n_models: int, n_p: int, environment: dict, runs: EngineRuns, direct_rows: list[dict]
) -> dict:
    """The JSON report: the engine's runs, the paper's sampling (its cost extrapolated), the direct timings."""
    direct_seconds_per_p = float(np.mean([row["seconds"] for row in direct_rows]))
    return {
        "n_models": n_models,
        "n_p": n_p,
        "environment": environment,
        **engine_report(args, runs),
        "paper_sampling": {
            "nonempty_per_p": PAPER_NONEMPTY,
            "evaluations_per_model": PAPER_NONEMPTY * n_p,
            "predicted_rel_sem_range": [float(runs.paper_rel.min()), float(runs.paper_rel.max())],
            "max_rel_sem_over_models": float((runs.paper_sem / runs.curve.loss_per_feature).max()),
            "seconds_extrapolated": direct_seconds_per_p * n_p * PAPER_NONEMPTY / args.direct_nonempty,
        },
        "direct_measured": direct_rows,
    }


def summary_rows(args: argparse.Namespace, runs: EngineRuns, paper: dict) -> list[list[str]]:
    """The summary table's rows: each engine run and the paper's sampling, cost and precision."""
    curve, worst, matched = runs.curve, runs.worst, runs.matched
    return [
        [
            f"engine, {args.rel_sem:.1%} SE",
            f"{curve.n_evaluations:,}",
            f"{paper['evaluations_per_model'] / curve.n_evaluations:,.0f}x",
            format_duration(curve.seconds),
            f"{runs.rel.max():.3%}",
        ],
        [
            f"engine, {runs.worst_paper_rel:.3%} SE (paper's worst p)",
            f"{worst.n_evaluations:,}",
            f"{paper['evaluations_per_model'] / worst.n_evaluations:,.0f}x",
            format_duration(worst.seconds),
            f"{(worst.sem / worst.loss_per_feature).max():.3%}",
        ],
        [
            "engine, paper's SE at each p",
            f"{matched.n_evaluations:,}",
            f"{paper['evaluations_per_model'] / matched.n_evaluations:,.0f}x",
            format_duration(matched.seconds),
            f"{runs.matched_rel.max():.3%}",
        ],
        [
            "paper: 1e6 non-empty per p",
            f"{paper['evaluations_per_model']:,.0f}",
            "1x",
            format_duration(paper["seconds_extrapolated"]) + " (extrapolated)",
            f"{paper['max_rel_sem_over_models']:.3%}",
        ],
    ]


def print_summary(args: argparse.Namespace, report: dict, runs: EngineRuns) -> None:
    """Print the comparison table and the direct estimator's measurements."""
    environment = report["environment"]
    print(
        f"{report['n_models']} models x {report['n_p']} p's on {environment['device_count']} "
        f"{environment['device_kind']} device(s)"
    )
    rows = summary_rows(args, runs, report["paper_sampling"])
    print(format_table(["method", "evaluations / model", "fewer", "wall time", "max rel. SE"], rows))
    print(
        "direct sampling measured at "
        + ", ".join(
            f"p = {row['p']:g}: {row['seconds']:.1f}s, SE {row['measured_over_predicted_sem']:.2f}x predicted, "
            f"max |z| vs engine {row['max_abs_z_vs_engine']:.1f}"
            for row in report["direct_measured"]
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; exit status 0 (2 on a usage error)."""
    args, direct_p = parse_args(argv)
    use_every_cpu_core()

    result = train_models(args)
    p = np.geomspace(1e-3, 1.0, args.points)
    environment = ccjax.io.environment_info()
    runs = run_engine(result, p, args.rel_sem)
    direct_rows = measure_direct(result, direct_p, args)

    report = build_report(args, result.grid.size, len(p), environment, runs, direct_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{EXPERIMENT}.json").write_text(json.dumps(report, indent=2))
    print_summary(args, report, runs)
    say(f"wrote {args.out / (EXPERIMENT + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
