"""Paper experiment 1: models trained at ten feature probabilities, evaluated over 100 (docs/paper.md §6.1).

Trains one sweep over seeds per training p (the step count depends on p through the
paper's ``1/(1 - (1-p)^n)`` scaling, so each p is its own compiled call), evaluates
every model's L/p at 100 values of p with :func:`ccjax.loss_curve`, prints L/p at
p_eval = p_train next to the published values, and draws the curves plus the per-model
figures (input-output responses, W_out ⊙ W_in bars, ±1 one-hot heatmaps) of the
sparsest and densest model.

    python -m experiments.sparsity_regimes                      # the paper's run (asymmetric, sigma = 0.02)
    python -m experiments.sparsity_regimes --mixing embedding --scale 1   # the CC model itself
    python -m experiments.sparsity_regimes --plot-only
"""

import argparse
import dataclasses
import sys
import time

import jax
import numpy as np

import ccjax

from ._cli import (
    HelpFormatter,
    count,
    format_duration,
    format_table,
    mean_and_sem,
    positive_float,
    positive_int,
    say,
    scale_list,
    seed_list,
)
from ._experiment import add_output_arguments, base_manifest, run_cli, train_sweep

EXPERIMENT = "sparsity_regimes"
PAPER = ccjax.TrainConfig(mixing="asymmetric", scale=0.02, scale_steps_for_sparsity=True)
PAPER_P_TRAIN = "0.001,0.002,0.005,0.01,0.02,0.05,0.1,0.2,0.5,1"
# L/p at p_eval = p_train read off the paper's figure (docs/paper.md §6.1; ±0.001).
PUBLISHED = {0.001: 0.072, 0.002: 0.0727, 0.005: 0.0744, 0.01: 0.0758, 0.02: 0.0776, 0.05: 0.0796}
PUBLISHED |= {0.1: 0.0802, 0.2: 0.0791, 0.5: 0.072, 1.0: 0.054}
RESPONSE_VALUES = np.linspace(-1.0, 1.0, 101)
ARRAYS = {
    "p_train": "(T,) training feature probabilities",
    "seeds": "(K,) seeds; a seed fixes M, the initial weights and the data stream",
    "steps": "(T,) training steps at each p_train (after the sparsity scaling)",
    "p_eval": "(P,) evaluation probabilities of the curves",
    "loss_per_feature": "(T, K, P) L/p of each model at each p_eval",
    "loss_per_feature_sem": "(T, K, P) its Monte Carlo standard error",
    "at_train_p": "(T, K) L/p of each model at its own training p",
    "at_train_p_sem": "(T, K) its Monte Carlo standard error",
    "final_train_loss": "(T, K) training L/p over the last logging interval",
    "w_in": "(T, K, n_features, d_mlp) trained W_in",
    "w_out": "(T, K, d_mlp, n_features) trained W_out",
    "mixing": "(K, n_features, n_features) unscaled M of each seed (shared by every p_train)",
    "n_evaluations": "() exactly-k samples behind all curves (shared by every model)",
}

DESCRIPTION = """\
Paper experiment 1 (sparsity regimes): train at each p_train, evaluate L/p over p_eval.

Sparse-trained models beat the naive model (L/p = 0.0833) at low p_eval and lose to it
at high p_eval; dense-trained ones the reverse. The paper's run used an asymmetric
Gaussian mixing matrix with sigma = 0.02 (the default here); --mixing embedding --scale 1
is the CC model itself, --mixing none --scale 0 clean labels.
"""


def probability_list(text: str) -> list[float]:
    values = scale_list(text)
    if any(not 0.0 < value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError(f"every p must be in (0, 1], got {text}")
    return sorted(set(values))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{EXPERIMENT}", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    run = parser.add_argument_group("run")
    run.add_argument("--p-train", type=probability_list, default=PAPER_P_TRAIN, metavar="LIST", help="training p's")
    run.add_argument("--seeds", type=seed_list, default="3", metavar="N|LIST", help="a count N or a list of seeds")
    run.add_argument("--mixing", choices=ccjax.MIXING_NAMES, default=PAPER.mixing, help="mixing family of M")
    run.add_argument("--scale", type=positive_float_or_zero, default=PAPER.scale, help="mixing scale sigma")
    run.add_argument("--steps", type=positive_int, default=PAPER.steps, help="training steps before sparsity scaling")
    run.add_argument(
        "--no-step-scaling",
        action="store_true",
        help="train every p for --steps steps (the paper scales steps by 1/(1 - (1-p)^n))",
    )
    run.add_argument("--eval-points", type=positive_int, default=100, help="p_eval values, geometric in [1e-3, 1]")
    run.add_argument(
        "--eval-rel-sem", type=positive_float, default=0.003, help="relative standard error of every L/p value"
    )
    add_output_arguments(parser, EXPERIMENT)
    return parser


def positive_float_or_zero(text: str) -> float:
    values = scale_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text}")
    return values[0]


def run(args: argparse.Namespace, parser: argparse.ArgumentParser, argv: list[str]) -> tuple[dict, dict]:
    start = time.perf_counter()
    try:
        base = dataclasses.replace(
            PAPER,
            mixing=args.mixing,
            scale=args.scale,
            steps=args.steps,
            scale_steps_for_sparsity=not args.no_step_scaling,
        )
    except ValueError as error:
        parser.error(str(error))
    configs = [dataclasses.replace(base, p=p) for p in args.p_train]
    total = sum(config.total_steps for config in configs) * len(args.seeds)
    say(f"{count(len(configs), 'training p')} x {count(len(args.seeds), 'seed')}: {total:,} model-steps in all")
    results = []
    for config in configs:
        results.append(
            train_sweep(
                config,
                {"seed": args.seeds},
                f"p = {config.p:g}, {ccjax.MIXING_FAMILIES[config.mixing].label}",
                args.session,
            )
        )
    train_seconds = time.perf_counter() - start

    params = jax.tree.map(lambda *leaves: np.stack(leaves), *(result.params for result in results))
    scaled = np.stack([result.scaled_mixing for result in results])
    p_eval = np.geomspace(1e-3, 1.0, args.eval_points)
    p_all = np.concatenate([p_eval, args.p_train])
    say(f"evaluating {count(len(configs) * len(args.seeds), 'model')} at {len(p_all)} p's ...")
    eval_start = time.perf_counter()
    curve = ccjax.loss_curve(params, scaled, p_all, ccjax.evaluation_key(), rel_sem=args.eval_rel_sem)
    eval_seconds = time.perf_counter() - eval_start
    say(f"evaluated in {format_duration(eval_seconds)} on {curve.n_evaluations:,} exactly-k samples")

    n_eval, diagonal = len(p_eval), np.arange(len(configs))
    arrays = {
        "p_train": np.asarray(args.p_train),
        "seeds": np.asarray(args.seeds),
        "steps": np.asarray([config.total_steps for config in configs]),
        "p_eval": p_eval,
        "loss_per_feature": curve.loss_per_feature[..., :n_eval],
        "loss_per_feature_sem": curve.sem[..., :n_eval],
        "at_train_p": curve.loss_per_feature[diagonal, :, n_eval + diagonal],
        "at_train_p_sem": curve.sem[diagonal, :, n_eval + diagonal],
        "final_train_loss": np.stack([result.history.train_loss[:, -1] for result in results]),
        "w_in": params.w_in,
        "w_out": params.w_out,
        "mixing": results[0].mixing,
        "n_evaluations": np.asarray(curve.n_evaluations),
    }
    manifest = base_manifest(EXPERIMENT, "L/p over p_eval of models trained at each p_train", argv) | {
        "config": dataclasses.asdict(base),
        "axes": {"p_train": list(args.p_train), "seed": list(args.seeds)},
        "mixing": {"name": base.mixing, "formula": ccjax.MIXING_FAMILIES[base.mixing].formula, "scale": base.scale},
        "evaluation": {
            "rel_sem": args.eval_rel_sem,
            "method": "L(p) = sum_k Binom(k; n, p) c_k, exact c_1, Monte Carlo c_k (ccjax.loss_curve)",
            "max_truncation_bound": float(curve.truncation_bound.max()),
        },
        "published_at_train_p": {str(p): value for p, value in PUBLISHED.items()},
        "naive_loss_per_feature": ccjax.naive_loss_per_feature(base.n_features, base.d_mlp),
        "timings": {"train_seconds": train_seconds, "eval_seconds": eval_seconds},
        "arrays": ARRAYS,
    }
    return arrays, manifest


def summary(arrays: dict, manifest: dict) -> str:
    mean, sem = mean_and_sem(arrays["at_train_p"], axis=1)
    naive = manifest["naive_loss_per_feature"]
    rows = []
    for p, steps, m, s in zip(arrays["p_train"], arrays["steps"], mean, sem, strict=True):
        published = PUBLISHED.get(float(p))
        paper = "-" if published is None else f"{published:.4f}"
        difference = "-" if published is None else f"{m - published:+.4f}"
        sem_text = "n/a" if not np.isfinite(s) else f"{s:.4f}"
        rows.append([f"{p:g}", f"{steps:,}", f"{m:.4f}", sem_text, paper, difference, f"{m - naive:+.4f}"])
    headers = ["p_train", "steps", "L/p at p_train", "SEM seeds", "paper", "ours - paper", "vs naive"]
    mixing = manifest["mixing"]
    return "\n".join(
        [
            f"{ccjax.MIXING_FAMILIES[mixing['name']].label}, scale {mixing['scale']:g}; "
            f"{count(len(arrays['seeds']), 'seed')}; naive L/p = {naive:.4f}",
            format_table(headers, rows),
            "paper: values read off the published figure (about +-0.001); asymmetric sigma = 0.02, 1 seed per p.",
        ]
    )


def curves_figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    from ccjax import plot

    figure, ax = plt.subplots(figsize=(8.0, 5.2), layout="constrained")
    labels = [f"p_train = {p:g}" for p in arrays["p_train"]]
    dots = [(p, value) for p, value in zip(arrays["p_train"], arrays["at_train_p"].mean(axis=1), strict=True)]
    plot.plot_loss_curves(
        arrays["p_eval"],
        arrays["loss_per_feature"],
        labels,
        dots=dots,
        naive=manifest["naive_loss_per_feature"],
        ax=ax,
        title=f"sparsity regimes: {ccjax.MIXING_FAMILIES[manifest['mixing']['name']].label}, "
        f"scale {manifest['mixing']['scale']:g} "
        f"({count(len(arrays['seeds']), 'seed')}; dots: p_eval = p_train)",
    )
    return figure


def models_figure(arrays: dict, manifest: dict):
    """Responses, W_out ⊙ W_in bars and one-hot heatmaps of the sparsest and densest model (seed 0)."""
    import matplotlib.pyplot as plt

    from ccjax import plot

    figure = plt.figure(figsize=(20, 9.5), layout="constrained")
    rows = figure.subfigures(2, 1)
    for row, index in zip(rows, (0, len(arrays["p_train"]) - 1), strict=True):
        params = ccjax.FeatureMLP(arrays["w_in"][index, 0], arrays["w_out"][index, 0])
        left, middle, right = row.subfigures(1, 3, width_ratios=[1, 1, 1.6])
        plot.plot_response_curves(
            RESPONSE_VALUES,
            np.asarray(ccjax.feature_response(params, RESPONSE_VALUES)),
            ax=left.subplots(),
            title="output j for input v e_j",
        )
        plot.plot_neuron_bars(
            np.asarray(ccjax.neuron_contributions(params)), ax=middle.subplots(), title="W_out * W_in per neuron"
        )
        plot.plot_one_hot_heatmaps(
            np.asarray(ccjax.one_hot_response(params, 1.0)),
            np.asarray(ccjax.one_hot_response(params, -1.0)),
            fig=right,
            title="response to +e_i (left) and -e_i (right)",
        )
        row.suptitle(f"model trained at p = {arrays['p_train'][index]:g} (seed {arrays['seeds'][0]})")
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    figures = {f"{EXPERIMENT}.png": curves_figure, f"{EXPERIMENT}_models.png": models_figure}
    return run_cli(parser, argv, EXPERIMENT, lambda args, argv: run(args, parser, argv), summary, figures)


if __name__ == "__main__":
    sys.exit(main())
