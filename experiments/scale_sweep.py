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
from ccjax import measure
from ccjax.engine import INPUT_PATHS
from ccjax.measure import excluding_diverged
from ccjax.measure.statistics import finite_mean, mean_and_sem
from ccjax.report import Comparison, compare_value, count, format_table, index_of

from . import _spec
from ._cli import say, scale_list
from ._experiment import Session, train_and_evaluate
from ._spec import Option, Stage

EXPERIMENT = "scale_sweep"
TAIL_FRACTION, TERMS = 0.1, ("relu", "mixing")  # the ReLU/mixing split is averaged over the last 10% of training logs
LABELS = "relu(x) + scale * M x, for row vectors x @ M.T"
EVALUATION = {
    "method": "L(p) = sum_k Binom(k; n, p) c_k with exact c_1 and Monte Carlo c_k (ccjax.measure)",
    "data": "exactly-k samples from ccjax.evaluation_key(), shared by every model",
}
ARRAYS = {
    "scales": "(S,) mixing scales",
    "seeds": "(K,) seeds; a seed fixes W_E, M, the initial weights and the data stream",
    **measure.describe_sweep_arrays("K, S"),
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
    _spec.seeds_option("5"),
    *_spec.single_p_options(),
    Option("--lr", _spec.positive_float, None, "peak AdamW learning rate (half-cosine decay to 0)", field="lr"),
    Option("--mixing", str, None, MIXING_HELP, choices=ccjax.MIXING_NAMES, field="mixing"),
    Option("--d-embed", _spec.positive_int, None, "residual width d_embed of the embedding W_E", field="d_embed"),
    Option("--full-model", None, False, FULL_MODEL_HELP, field="full_model"),
    Option("--log-every", _spec.positive_int, None, "steps between training-history logs", field="log_every"),
    Option("--input-path", str, None, INPUT_PATH_HELP, choices=INPUT_PATHS, field="input_path"),
    _spec.eval_rel_sem_option(0.001),
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
    devices, full_model = jax.devices(), ", full residual model" if config.full_model else ""
    grid = f"{count(len(seeds), 'seed')} x {count(len(scales), 'scale')}, {config.mixing} mixing{full_model}"
    say(f"{count(len(seeds) * len(scales), 'model')} ({grid}) on {len(devices)} {devices[0].device_kind} device(s)")
    if config.mixing == "none" and len(scales) > 1:
        say("note: --mixing none has M = 0, so every scale trains the same clean model")
    result, estimate = train_and_evaluate(
        config, {"seed": seeds, "scale": scales}, "seed x scale", session, rel_sem=eval_rel_sem
    )
    axes = {"scales": np.asarray(scales, np.float64), "seeds": np.asarray(seeds, np.int64)}
    mixing = {"name": config.mixing, "formula": ccjax.MIXING_FAMILIES[config.mixing].formula, "labels": LABELS}
    return axes | measure.sweep_arrays(result, estimate=estimate), {
        "mixing": mixing,
        "input_path": config.resolved_input_path(),
        "evaluation": {"p": config.p, "rel_sem": eval_rel_sem, **EVALUATION},
        "n_devices": result.n_devices,
    }


def loss_terms(arrays: dict) -> tuple[np.ndarray, np.ndarray]:
    """The ReLU and mixing terms of each model's training L/p over the last 10% of training, (K, S) each."""
    step = arrays["history_step"][0, 0]
    return tuple(measure.tail_mean(arrays[f"history_{term}_term_per_feature"], step, TAIL_FRACTION) for term in TERMS)


def summary(arrays: dict, manifest: dict) -> str:
    arrays, naive = excluding_diverged(arrays), manifest["naive_loss_per_feature"]
    mean, sem = mean_and_sem(arrays["loss_per_feature"])
    relu, mixing = (finite_mean(term) for term in loss_terms(arrays))
    columns = (mean, sem, mean - naive, relu, mixing, finite_mean(arrays["loss_per_feature_sem"]))
    signed = (False, False, True, False, True, False)

    def number(value, signed):
        return "n/a" if not np.isfinite(value) else f"{value:+.4f}" if signed else f"{value:.4f}"

    rows = [[f"{scale:g}", *map(number, row, signed)] for scale, *row in zip(arrays["scales"], *columns, strict=True)]
    headers = ["scale", "L/p", "SEM seeds", "L/p - naive", "ReLU term", "mixing term", "MC SEM"]
    p, seeds, n_evaluations = ccjax.io.saved_config(manifest).p, len(arrays["seeds"]), arrays["n_evaluations"].min()
    return "\n".join(
        [
            f"{describe_run(manifest)}; naive L/p = {naive:.4f}",
            format_table(headers, rows),
            f"L/p: mean over {count(seeds, 'seed')} at p = {p:g}, each from {int(n_evaluations):,} exactly-k "
            "evaluations (MC SEM: mean per-model standard error).",
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
    from ccjax import plot

    arrays = excluding_diverged(arrays)
    return plot.plot_sweep_overview(
        arrays["scales"],
        arrays["loss_per_feature"],
        arrays["history_step"][0, 0],
        arrays["history_train_loss_per_feature"],
        naive=manifest["naive_loss_per_feature"],
        x_name="s",
        xlabel="mixing scale s (labels relu(x) + s·M x)",
        loss_title=f"loss per feature at p = {ccjax.io.saved_config(manifest).p:g}",
        terms=loss_terms(arrays),
        terms_title=f"L/p = ReLU term + mixing term (last {TAIL_FRACTION:.0%} of training)",
        history_ylabel="training L/p",
        decimal_ticks=True,  # the log scale shows the early transient and the converged values together
        title=describe_run(manifest),
    )


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    scales, loss, config = arrays["scales"], arrays["loss_per_feature"], ccjax.io.saved_config(manifest)  # loss: (K, S)
    what = "full 1000-dim residual CC model" if config.full_model else "reduced model, faithful M = I − W_E W_Eᵀ"
    published = [(0.0, "clean labels (scale 0)", 0.0835, True), (1.0, what, 0.067, config.mixing == "embedding")]
    return [
        compare_value(EXPERIMENT, f"{quantity}, p = 0.01", value, loss[:, index_of(scales, scale)])
        for scale, quantity, value, applies in published
        if applies and scale in scales
    ]


TITLE, FULL_TITLE = "§2: the CC model is the feature-space MLP with M = I − W_E W_Eᵀ", "§2: the full residual CC model"
FULL = ("--full-model", "--scales", "1")
FULL_ARGS, FULL_QUICK = (*FULL, "--seeds", "3"), (*FULL, "--seeds", "1", "--steps", "100")
REPORTED = {"compare": compare, "figure_flag": "--figure"}
STAGES = (
    Stage(EXPERIMENT, TITLE, 0.0, quick_args=("--scales", "0,1", *_spec.QUICK_TRAIN), **REPORTED),
    Stage(f"{EXPERIMENT}_full_model", FULL_TITLE, 0.5, FULL_ARGS, FULL_QUICK, **REPORTED),
)
SPEC = _spec.Experiment.from_module(
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
