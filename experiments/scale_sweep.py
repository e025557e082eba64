"""Loss per feature L/p of the CC model against the scale of the mixing matrix M.

Labels are relu(x) + scale * M x. With --mixing embedding, M = I - W_E W_E^T is the
reduced form of Braun et al.'s residual CC model (scale 1 is that model; scale 0 is
clean labels, where trained models sit on the naive line L/p = 0.0833).
Every (seed, scale) model is trained in one vectorised, sharded sweep.
"""

import sys
from pathlib import Path

import jax
import numpy as np

import ccjax
from ccjax.engine import INPUT_PATHS
from ccjax.measure.statistics import finite_mean, mean_and_sem

from ._cli import count, format_duration, format_table, say, scale_list
from ._compare import Comparison, compare_value, index_of
from ._experiment import Session, excluding_diverged, train_sweep
from ._spec import (
    QUICK_TRAIN,
    Experiment,
    Option,
    Stage,
    eval_rel_sem_option,
    positive_float,
    positive_int,
    seeds_option,
    single_p_options,
)

EXPERIMENT = "scale_sweep"
TAIL_FRACTION = 0.1  # the ReLU/mixing split is averaged over the last 10% of training logs
ARRAYS = {
    "scales": "(S,) mixing scales",
    "seeds": "(K,) seeds; a seed fixes W_E, M, the initial weights and the data stream",
    "loss_per_feature": "(K, S) L/p at the training p",
    "loss_per_feature_sem": "(K, S) Monte Carlo standard error of loss_per_feature",
    "n_evaluations": "(K, S) exactly-k samples the evaluation ran each model on",
    "history_step": "(K, S, n_logs) training step of each log",
    "history_train_loss_per_feature": "(K, S, n_logs) mean training L/p over each logging interval",
    "history_relu_term_per_feature": "(K, S, n_logs) ReLU term of L/p on a fresh batch at the logged step",
    "history_mixing_term_per_feature": "(K, S, n_logs) mixing term of L/p on the same batch",
    "history_scale": "(K, S, n_logs) |mixing scale| in use",
    "final_scale": "(K, S) mixing scale in the labels at the end (fixed here)",
    "diverged_step": "(K, S) first logged step with a NaN/inf loss (-1: the model stayed finite)",
    "w_in": "(K, S, n_features, d_mlp) trained feature-space W_in (full models mapped through W_E)",
    "w_out": "(K, S, d_mlp, n_features) trained feature-space W_out",
    "mixing": "(K, S, n_features, n_features) unscaled mixing matrix M",
}


MIXING_HELP = (
    "mixing family: 'embedding' is M = I - W_E W_E^T (faithful sign), "
    "'embedding-code-sign' is W_E W_E^T - I (the paper code's sign)"
)
FULL_MODEL_HELP = "train Braun et al.'s full residual CC model through the fixed W_E (needs --mixing embedding)"
INPUT_PATH_HELP = "how the loss reads sparse inputs (both exact): auto = sparse on CPU, dense on GPU/TPU"
FIGURE_HELP = f"the figure's path (.png, .pdf, .svg); default: {EXPERIMENT}.png in the --figures folder"
OPTIONS = (
    Option("--scales", scale_list, "0,0.5,1,2", "comma-separated mixing scales (>= 0) to train at", metavar="LIST"),
    seeds_option("5"),
    *single_p_options(),
    Option("--lr", positive_float, None, "peak AdamW learning rate (half-cosine decay to 0)", field="lr"),
    Option("--mixing", str, None, MIXING_HELP, choices=ccjax.MIXING_NAMES, field="mixing"),
    Option("--d-embed", positive_int, None, "residual width d_embed of the embedding W_E", field="d_embed"),
    Option("--full-model", None, False, FULL_MODEL_HELP, field="full_model"),
    Option("--log-every", positive_int, None, "steps between training-history logs", field="log_every"),
    Option("--input-path", str, None, INPUT_PATH_HELP, choices=INPUT_PATHS, field="input_path"),
    eval_rel_sem_option(0.001),
    Option("--figure", Path, None, FIGURE_HELP, group="output"),
)


def full_model_needs_embedding(args):
    """``--full-model`` realises only the faithful embedding mixing."""
    if args.full_model and args.mixing != "embedding":
        raise ValueError(
            f"--full-model trains the residual CC model, whose mixing is --mixing embedding; got --mixing {args.mixing}"
        )
    return args


def run(args, session: Session) -> tuple[dict, dict]:
    """Run the sweep and its evaluation; return the arrays and the manifest fields of this experiment."""
    config, seeds, scales, eval_rel_sem = args.config, args.seeds, args.scales, args.eval_rel_sem
    devices = jax.devices()
    say(
        f"{count(len(seeds) * len(scales), 'model')} ({count(len(seeds), 'seed')} x {count(len(scales), 'scale')}, "
        f"{config.mixing} mixing{', full residual model' if config.full_model else ''}) on "
        f"{len(devices)} {devices[0].device_kind} device(s)"
    )
    if config.mixing == "none" and len(scales) > 1:
        say("note: --mixing none has M = 0, so every scale trains the same clean model")
    with session.timed("total"):
        result = train_sweep(config, {"seed": seeds, "scale": scales}, "seed x scale", session)
        say(f"evaluating L/p at p = {config.p:g} to a relative standard error of {eval_rel_sem:g} ...")
        with session.timed("eval"):
            estimate = ccjax.evaluate_sweep(result, rel_sem=eval_rel_sem)
        say(f"evaluated in {format_duration(session.timings['eval_seconds'])}")
    session.timings |= {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds}

    history = result.history
    arrays = {
        "scales": np.asarray(scales, np.float64),
        "seeds": np.asarray(seeds, np.int64),
        "loss_per_feature": estimate.loss_per_feature,
        "loss_per_feature_sem": estimate.sem,
        "n_evaluations": estimate.n_samples,
        **{f"history_{name}": getattr(history, name) for name in history._fields},
        "final_scale": result.scale,
        "diverged_step": result.diverged_step,
        "w_in": result.params.w_in,
        "w_out": result.params.w_out,
        "mixing": result.mixing,
    }
    return arrays, {
        "mixing": {
            "name": config.mixing,
            "formula": ccjax.MIXING_FAMILIES[config.mixing].formula,
            "labels": "relu(x) + scale * M x, for row vectors x @ M.T",
        },
        "input_path": config.resolved_input_path(),
        "evaluation": {
            "p": config.p,
            "rel_sem": eval_rel_sem,
            "method": "L(p) = sum_k Binom(k; n, p) c_k with exact c_1 and Monte Carlo c_k (ccjax.measure)",
            "data": "exactly-k samples from ccjax.evaluation_key(), shared by every model",
        },
        "n_devices": result.n_devices,
    }


def tail_mean(history_field: np.ndarray, steps: np.ndarray, total_steps: int) -> np.ndarray:
    """Mean of a (K, S, n_logs) history field over the logs in the last 10% of training.

    The split is measured on one 2048-sample batch per log, which is noisy; the learning
    rate has decayed to ≈2% of its peak by then, so these logs see nearly the final model.
    """
    in_tail = steps[0, 0] >= (1.0 - TAIL_FRACTION) * total_steps
    in_tail[-1] = True
    return history_field[..., in_tail].mean(axis=-1)


def summary(arrays: dict, manifest: dict) -> str:
    arrays = excluding_diverged(arrays)
    config = ccjax.io.saved_config(manifest)
    naive = manifest["naive_loss_per_feature"]
    loss_mean, loss_sem = mean_and_sem(arrays["loss_per_feature"])
    total = int(arrays["history_step"].max())
    relu = finite_mean(tail_mean(arrays["history_relu_term_per_feature"], arrays["history_step"], total))
    mixing = finite_mean(tail_mean(arrays["history_mixing_term_per_feature"], arrays["history_step"], total))
    mc_sem = finite_mean(arrays["loss_per_feature_sem"])

    def number(value, signed=False):
        return "n/a" if not np.isfinite(value) else f"{value:+.4f}" if signed else f"{value:.4f}"

    rows = [
        [f"{scale:g}", number(m), number(s), number(m - naive, True), number(r), number(x, True), number(mc)]
        for scale, m, s, r, x, mc in zip(arrays["scales"], loss_mean, loss_sem, relu, mixing, mc_sem, strict=True)
    ]
    headers = ["scale", "L/p", "SEM seeds", "L/p - naive", "ReLU term", "mixing term", "MC SEM"]
    return "\n".join(
        [
            f"{describe_run(manifest)}; naive L/p = {naive:.4f}",
            format_table(headers, rows),
            f"L/p: mean over {count(len(arrays['seeds']), 'seed')} at p = {config.p:g}, each from "
            f"{int(arrays['n_evaluations'].min()):,} exactly-k evaluations (MC SEM: mean per-model standard error).",
            f"ReLU + mixing term: the training split of L/p over the last {TAIL_FRACTION:.0%} of steps "
            "(noisier than L/p).",
        ]
    )


def describe_run(manifest: dict) -> str:
    """The figure and table title, derived from the saved config."""
    config = ccjax.io.saved_config(manifest)
    model = "full residual CC model" if config.full_model else "reduced CC model"
    parts = [f"p = {config.p:g}", f"{config.steps:,} steps", count(len(manifest["axes"]["seed"]), "seed")]
    if config.mixing.startswith("embedding") or config.full_model:
        parts.append(f"d_embed = {config.d_embed}")
    return f"{model}, {ccjax.MIXING_FAMILIES[config.mixing].label}: " + ", ".join(parts)


def figure(arrays: dict, manifest: dict):
    arrays = excluding_diverged(arrays)
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter

    from ccjax import plot

    config = ccjax.io.saved_config(manifest)
    scales, steps = arrays["scales"], arrays["history_step"]
    total = int(steps.max())
    xlabel = "mixing scale s (labels relu(x) + s·M x)"
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    plot.plot_scale_sweep(
        scales,
        arrays["loss_per_feature"],
        naive=manifest["naive_loss_per_feature"],
        title=f"loss per feature at p = {config.p:g}",
        xlabel=xlabel,
        ax=left,
    )
    plot.plot_loss_terms(
        scales,
        tail_mean(arrays["history_relu_term_per_feature"], steps, total),
        tail_mean(arrays["history_mixing_term_per_feature"], steps, total),
        title=f"L/p = ReLU term + mixing term (last {TAIL_FRACTION:.0%} of training)",
        xlabel=xlabel,
        ax=middle,
    )
    curves = {f"s = {scale:g}": arrays["history_train_loss_per_feature"][:, j] for j, scale in enumerate(scales)}
    plot.plot_history(
        steps[0, 0],
        curves,
        naive=manifest["naive_loss_per_feature"],
        title="training loss (mean over seeds)",
        ylabel="training L/p",
        ax=right,
    )
    # Log scale shows the early transient and the converged values together; plain
    # decimal tick labels read better than powers of ten over this narrow range.
    right.set_yscale("log")
    right.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
    right.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    fig.suptitle(describe_run(manifest))
    return fig


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    scales = arrays["scales"]
    loss = arrays["loss_per_feature"]  # (K, S)
    config = ccjax.io.saved_config(manifest)
    rows = []
    if 0.0 in scales:
        rows.append(
            compare_value("scale_sweep", "clean labels (scale 0), p = 0.01", 0.0835, loss[:, index_of(scales, 0)])
        )
    if 1.0 in scales and config.mixing == "embedding":
        what = "full 1000-dim residual CC model" if config.full_model else "reduced model, faithful M = I − W_E W_Eᵀ"
        rows.append(compare_value("scale_sweep", f"{what}, p = 0.01", 0.067, loss[:, index_of(scales, 1)]))
    return rows


STAGES = (
    Stage(
        "scale_sweep",
        "§2: the CC model is the feature-space MLP with M = I − W_E W_Eᵀ",
        0.0,
        quick_args=("--scales", "0,1", *QUICK_TRAIN),
        compare=compare,
        figure_flag="--figure",
    ),
    Stage(
        "scale_sweep_full_model",
        "§2: the full residual CC model",
        0.5,
        ("--full-model", "--scales", "1", "--seeds", "3"),
        ("--full-model", "--scales", "1", "--seeds", "1", "--steps", "100"),
        compare=compare,
        figure_flag="--figure",
    ),
)

SPEC = Experiment.from_module(
    __name__,
    title="L/p against the mixing scale; labels relu(x) + scale * M x",
    config=ccjax.TrainConfig(),  # the paper's training setup (docs/paper.md §4)
    axes={"seed": "seeds", "scale": "scales"},
    options=OPTIONS,
    resolve=full_model_needs_embedding,
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
