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
from ccjax.report import Comparison, compare_value, count, format_table, index_of

from . import _spec
from ._cli import positive_float, positive_int, say, scale_list
from ._experiment import Session, train_and_evaluate
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, eval_rel_sem_option, seeds_option, single_p_options

EXPERIMENT = "scale_sweep"
TAIL_FRACTION = 0.1  # the ReLU/mixing split of L/p is averaged over the last 10% of training logs
LABELS = "relu(x) + scale * M x, for row vectors x @ M.T"
EVALUATION = {"method": "L(p) = sum_k Binom(k; n, p) c_k with exact c_1 and Monte Carlo c_k (ccjax.measure)"}
EVALUATION["data"] = "exactly-k samples from ccjax.evaluation_key(), shared by every model"
ARRAYS = {
    "scales": "(S,) mixing scales",
    "seeds": "(K,) seeds; a seed fixes W_E, M, the initial weights and the data stream",
    **measure.describe_sweep_arrays("K, S"),
}

FULL_MODEL_HELP = "train Braun et al.'s full residual CC model through the fixed W_E (needs --mixing embedding)"
INPUT_PATH_HELP = "how the loss reads sparse inputs (both exact): auto = the one measured faster on the platform"
FIGURE_HELP = f"the figure's path (.png, .pdf, .svg); default: {EXPERIMENT}.png in the --figures folder"
OPTIONS = (
    Option("--scales", scale_list, "0,0.5,1,2", "comma-separated mixing scales (>= 0) to train at", metavar="LIST"),
    seeds_option("5"),
    *single_p_options(),
    Option("--lr", positive_float, None, "peak AdamW learning rate (half-cosine decay to 0)", field="lr"),
    _spec.mixing_option("mixing family"),
    Option("--d-embed", positive_int, None, "residual width d_embed of the embedding W_E", field="d_embed"),
    Option("--full-model", None, False, FULL_MODEL_HELP, field="full_model"),
    Option("--log-every", positive_int, None, "steps between training-history logs", field="log_every"),
    Option("--input-path", str, None, INPUT_PATH_HELP, choices=ccjax.engine.INPUT_PATHS, field="input_path"),
    eval_rel_sem_option(0.001),
    Option("--figure", Path, None, FIGURE_HELP, group="output"),
)


def full_model_needs_embedding(args):
    """``--full-model`` realises only the faithful embedding mixing."""
    if args.full_model and args.mixing != "embedding":
        needs = "--full-model trains the residual CC model, whose mixing is --mixing embedding"
        raise ValueError(f"{needs}; got --mixing {args.mixing}")
    return args


def run(args, session: Session) -> tuple[dict, dict]:
    config, seeds, scales, eval_rel_sem = args.config, args.seeds, args.scales, args.eval_rel_sem
    devices, full_model = jax.devices(), ", full residual model" if config.full_model else ""
    grid = f"{count(len(seeds), 'seed')} x {count(len(scales), 'scale')}, {config.mixing} mixing{full_model}"
    say(f"{count(len(seeds) * len(scales), 'model')} ({grid}) on {len(devices)} {devices[0].device_kind} device(s)")
    if config.mixing == "none" and len(scales) > 1:
        say("note: --mixing none has M = 0, so every scale trains the same clean model")
    axes = {"seed": seeds, "scale": scales}
    result, estimate = train_and_evaluate(config, axes, "seed x scale", session, rel_sem=eval_rel_sem)
    arrays = {"scales": np.asarray(scales, np.float64), "seeds": np.asarray(seeds, np.int64)}
    mixing = {"name": config.mixing, "formula": ccjax.MIXING_FAMILIES[config.mixing].formula, "labels": LABELS}
    extras = {"mixing": mixing, "evaluation": {"p": config.p, "rel_sem": eval_rel_sem, **EVALUATION}}
    return arrays | measure.sweep_arrays(result, estimate=estimate), extras | {"n_devices": result.n_devices}


HEADERS = ("scale", "L/p", "SEM seeds", "L/p - naive", "ReLU term", "mixing term", "MC SEM")
FORMATS = (".4f", ".4f", "+.4f", ".4f", "+.4f", ".4f")  # of each column after the scale (differences signed)
TERMS_NOTE = f"ReLU + mixing term: the training split of L/p over the last {TAIL_FRACTION:.0%} of steps"
TERMS_NOTE += " (noisier than L/p)."


def summary(arrays: dict, manifest: dict) -> str:
    arrays, naive = measure.excluding_diverged(arrays), manifest["naive_loss_per_feature"]
    mean, sem = measure.statistics.mean_and_sem(arrays["loss_per_feature"])
    relu, mixing = (measure.statistics.finite_mean(term) for term in measure.tail_loss_terms(arrays, TAIL_FRACTION))
    columns = (mean, sem, mean - naive, relu, mixing, measure.statistics.finite_mean(arrays["loss_per_feature_sem"]))
    text = [[f"{v:{fmt}}" if np.isfinite(v) else "n/a" for v in col] for col, fmt in zip(columns, FORMATS, strict=True)]
    rows = list(zip([f"{scale:g}" for scale in arrays["scales"]], *text, strict=True))  # "n/a": no finite value
    p, seeds, n_evaluations = ccjax.io.saved_config(manifest).p, len(arrays["seeds"]), arrays["n_evaluations"].min()
    evaluations = f"L/p: mean over {count(seeds, 'seed')} at p = {p:g}, each from {int(n_evaluations):,} exactly-k "
    evaluations += "evaluations (MC SEM: mean per-model standard error)."
    title = f"{describe_run(manifest)}; naive L/p = {naive:.4f}"
    return "\n".join([title, format_table(HEADERS, rows), evaluations, TERMS_NOTE])


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

    arrays, p = measure.excluding_diverged(arrays), ccjax.io.saved_config(manifest).p
    curves = arrays["scales"], arrays["loss_per_feature"], arrays["history_step"][0, 0]
    curves += (arrays["history_train_loss_per_feature"], measure.tail_loss_terms(arrays, TAIL_FRACTION))
    naive, title = manifest["naive_loss_per_feature"], describe_run(manifest)
    return plot.plot_mixing_scale_sweep(*curves, naive=naive, p=p, tail_fraction=TAIL_FRACTION, title=title)


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
    Stage(EXPERIMENT, TITLE, 0.0, quick_args=("--scales", "0,1", *QUICK_TRAIN), **REPORTED),
    Stage(f"{EXPERIMENT}_full_model", FULL_TITLE, 0.5, FULL_ARGS, FULL_QUICK, **REPORTED),
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
