"""Paper experiment 4: train with mixing, then fine-tune the same models on clean labels (docs/paper.md §6.4).

Phase 1 trains K models on labels ``relu(x) + s M x`` (default: the CC model's own
embedding mixing, faithful sign ``M = I - W_E W_E^T``, s = 1; p = 0.01, 10,000 steps).
Phase 2 continues **the same models** (``ccjax.sweep(..., initial_params=phase-1
params)``, a fresh AdamW and learning-rate schedule) for 10,000 steps on clean labels
``relu(x)`` (mixing "none"). L/p is evaluated at p with the evaluation engine after
phase 1 on its mixed labels and on clean labels, and after phase 2 on clean labels.

The paper reports that after fine-tuning the loss returns to about 0.083, the naive
model's 1/12: the gain over naive lives in the mixing term. **Erratum:** the published
figure joins the training curve of a model trained with mixing to that of a *different*
model trained on clean labels; here phase 2 starts from phase 1's weights, so the
joined curve is one model's history.

Data streams: phase 1 of seed k uses ``key(k)`` (as every other experiment); phase 2
uses ``key(k + 2**31)``, so its data stream is new (not a replay of phase 1's batches),
and it is still a function of the seed alone: two runs with different ``--mixing``
fine-tune on the same clean batches (common random numbers). Seeds must be below 2**31.

    python -m experiments.transplant
    python -m experiments.transplant --plot-only
"""

import argparse
import dataclasses
import sys

import jax
import numpy as np

import ccjax

from ._cli import (
    count,
    format_duration,
    format_table,
    logged_steps,
    mean_and_sem,
    non_negative_float,
    plot_seed_mean,
    positive_int,
    probability,
    say,
    seed_list,
)
from ._compare import Comparison, compare_value
from ._experiment import Session, train_sweep
from ._spec import Experiment, Option, Stage, eval_rel_sem_option

# Experiment 4, docs/paper.md §2, §6.2, §6.4 (p = 0.01, read off figures, about +-0.001): after
# fine-tuning on clean labels the loss returns to ~0.083; a model trained on the embedding
# M reaches ~0.067 with the faithful sign and ~0.0644 with the paper code's sign.
PUBLISHED = {
    "p": 0.01,
    "finetuned_clean": 0.083,
    "phase1_mixed": {"embedding": 0.067, "embedding-code-sign": 0.0644},
    "note": "read off the paper's figures (about +-0.001); the published transplant figure joined two "
    "different models (an erratum), here phase 2 fine-tunes phase 1's models",
}

EXPERIMENT = "transplant"
PHASE2_SEED_OFFSET = 2**31  # phase 2 of seed k runs with key(k + 2**31): a fresh data stream
MAX_LOGS = 100  # history entries per phase at most (log_every = steps / 100, at least 1)
EVALUATIONS = ("phase 1, mixed labels", "phase 1, clean labels", "phase 2, clean labels")
ARRAYS = {
    "seeds": "(K,) seeds of phase 1 (key(seed): M, initial weights, data)",
    "phase2_seeds": "(K,) seeds of phase 2 (seed + 2**31: its data stream)",
    "stages": "(3,) what each row of loss_per_feature evaluates",
    "loss_per_feature": "(3, K) L/p at p: phase 1 on mixed labels, phase 1 on clean, phase 2 on clean",
    "loss_per_feature_sem": "(3, K) its Monte Carlo standard error",
    "phase1_step": "(N1,) step of each phase-1 history entry",
    "phase1_train_loss_per_feature": "(K, N1) phase-1 training L/p (mixed labels), mean over each logging interval",
    "phase2_step": "(N2,) step of each phase-2 history entry, counted from the start of phase 2",
    "phase2_train_loss_per_feature": "(K, N2) phase-2 training L/p (clean labels), mean over each logging interval",
    "phase1_w_in": "(K, n_features, d_mlp) W_in after phase 1",
    "phase1_w_out": "(K, d_mlp, n_features) W_out after phase 1",
    "w_in": "(K, n_features, d_mlp) W_in after phase 2 (fine-tuned from phase1_w_in)",
    "w_out": "(K, d_mlp, n_features) W_out after phase 2",
    "weight_change": "(K,) ||W_2 - W_1|| / ||W_1|| over (W_in, W_out) from phase 1 to phase 2",
    "mixing": "(K, n_features, n_features) unscaled M of each seed in phase 1",
    "scale": "() mixing scale s of phase 1",
}
DESCRIPTION = """\
Paper experiment 4 (transplant / fine-tune): train with mixing, then fine-tune the same
models on clean labels.

Phase 1 trains on relu(x) + s M x (default: the CC model's embedding M, faithful sign,
s = 1); phase 2 continues from phase 1's weights on clean labels relu(x), with a fresh
optimizer and a fresh data stream. The gain over the naive model (L/p = 0.0833) comes
from the mixing term, so after fine-tuning the loss returns to about 0.083. (The
published figure joined two different models; here it is one model throughout.)
"""


def phase1_seeds(text: str) -> list[int]:
    seeds = seed_list(text)
    if max(seeds) >= PHASE2_SEED_OFFSET:
        raise argparse.ArgumentTypeError(f"seeds must be below 2**31 (phase 2 uses seed + 2**31), got {text!r}")
    return seeds


MIXING_HELP = (
    "phase-1 mixing family: 'embedding' is M = I - W_E W_E^T (faithful sign), "
    "'embedding-code-sign' W_E W_E^T - I (the paper code's sign)"
)
OPTIONS = (
    Option("--seeds", phase1_seeds, "5", "a count N or a list of seeds", metavar="N|LIST"),
    Option("--mixing", str, None, MIXING_HELP, choices=ccjax.MIXING_NAMES, field="mixing"),
    Option("--scale", non_negative_float, None, "phase-1 mixing scale s (>= 0)", field="scale"),
    Option("--p", probability, None, "feature probability p (training and evaluation)", field="p"),
    Option("--steps", positive_int, None, "phase-1 training steps (with mixing)", field="steps"),
    Option("--finetune-steps", positive_int, 10_000, "phase-2 fine-tuning steps (clean labels)"),
    eval_rel_sem_option(0.001),
)


def _log_every(steps: int) -> int:
    return max(1, -(-steps // MAX_LOGS))


def run(args, session: Session) -> tuple[dict, dict]:
    """Train phase 1 with mixing, fine-tune the same models on clean labels, evaluate the three stages."""
    seeds = list(args.seeds)
    phase2_seeds = [seed + PHASE2_SEED_OFFSET for seed in seeds]
    phase1, phase2 = _phase_configs(args)
    with session.timed("train"):
        first = train_sweep(
            phase1,
            {"seed": seeds},
            f"phase 1 ({ccjax.MIXING_FAMILIES[args.mixing].label}, scale {args.scale:g})",
            session,
        )
        second = train_sweep(
            phase2,
            {"seed": phase2_seeds},
            "phase 2 (fine-tuning the same models, clean labels)",
            session,
            initial_params=first.params,
        )
    curve = _evaluate_stages(args, session, first, second)
    arrays = {
        "seeds": np.asarray(seeds),
        "phase2_seeds": np.asarray(phase2_seeds, np.int64),
        "stages": np.asarray(EVALUATIONS),
        "loss_per_feature": curve.loss_per_feature[..., 0],
        "loss_per_feature_sem": curve.sem[..., 0],
        "phase1_step": logged_steps(first),
        "phase1_train_loss_per_feature": np.asarray(first.history.train_loss_per_feature),
        "phase2_step": logged_steps(second),
        "phase2_train_loss_per_feature": np.asarray(second.history.train_loss_per_feature),
        "phase1_w_in": np.asarray(first.params.w_in),
        "phase1_w_out": np.asarray(first.params.w_out),
        "w_in": np.asarray(second.params.w_in),
        "w_out": np.asarray(second.params.w_out),
        "weight_change": _weight_change(first.params, second.params),
        "mixing": np.asarray(first.mixing),
        "scale": np.asarray(args.scale),
    }
    return arrays, _manifest_extras(args, phase1, phase2, phase2_seeds, curve)


def _phase_configs(args) -> tuple[ccjax.TrainConfig, ccjax.TrainConfig]:
    """Phase 1 (the run's config) and phase 2 (``--finetune-steps`` on clean labels), each logging <= MAX_LOGS times."""
    phase1 = dataclasses.replace(args.config, log_every=_log_every(args.steps))
    phase2 = dataclasses.replace(
        phase1, steps=args.finetune_steps, mixing="none", scale=0.0, log_every=_log_every(args.finetune_steps)
    )
    return phase1, phase2


def _evaluate_stages(args, session: Session, first: ccjax.SweepResult, second: ccjax.SweepResult) -> ccjax.LossCurve:
    """L/p at p of the :data:`EVALUATIONS`, all in one call: every model sees the same samples."""
    stacked = jax.tree.map(lambda a, b: np.stack([a, a, b]), first.params, second.params)
    clean = np.zeros_like(first.scaled_mixing)
    label_maps = np.stack([first.scaled_mixing, clean, clean]).astype(np.float32)
    n_models = count(3 * len(args.seeds), "model")
    say(f"evaluating {n_models} at p = {args.p:g} (relative SE {args.eval_rel_sem:g}) ...")
    with session.timed("eval"):
        curve = ccjax.loss_curve(stacked, label_maps, [args.p], ccjax.evaluation_key(), rel_sem=args.eval_rel_sem)
    say(f"evaluated in {format_duration(session.timings['eval_seconds'])}")
    return curve


def _weight_change(before: ccjax.FeatureMLP, after: ccjax.FeatureMLP) -> np.ndarray:
    """(K,) ||W_2 - W_1|| / ||W_1|| of each model, over (W_in, W_out) together."""

    def flat_weights(params):
        leaves = [np.asarray(leaf) for leaf in (params.w_in, params.w_out)]
        return np.concatenate([leaf.reshape(len(leaf), -1) for leaf in leaves], 1)

    start, end = flat_weights(before), flat_weights(after)
    return np.linalg.norm(end - start, axis=1) / np.linalg.norm(start, axis=1)


def _manifest_extras(args, phase1, phase2, phase2_seeds: list[int], curve: ccjax.LossCurve) -> dict:
    """The manifest's fields of this run: both phases' configs and seeds, the mixing and the evaluation."""
    return {  # "config": both phases, in place of the framework's one config
        "config": {"phase1": dataclasses.asdict(phase1), "phase2": dataclasses.asdict(phase2)},
        "mixing": {"name": args.mixing, "formula": ccjax.MIXING_FAMILIES[args.mixing].formula, "scale": args.scale},
        "seeds": {
            "phase1": list(args.seeds),
            "phase2": phase2_seeds,
            "note": "phase 2 of seed k uses key(k + 2**31): a data stream distinct from phase 1's; "
            "it starts from phase 1's weights (initial_params) with a fresh AdamW and schedule",
        },
        "evaluation": {
            "p": args.p,
            "rel_sem": args.eval_rel_sem,
            "method": "ccjax.loss_curve (exact c_1, control-variate c_k); clean labels: M = 0",
            "n_evaluations": int(curve.n_evaluations),
        },
    }


def _published(manifest: dict) -> tuple[float | None, float | None]:
    """The paper's (phase-1 mixed, fine-tuned clean) L/p for this run's settings, if any."""
    mixing = manifest["mixing"]
    if manifest["evaluation"]["p"] != PUBLISHED["p"]:
        return None, None
    phase1 = PUBLISHED["phase1_mixed"].get(mixing["name"]) if mixing["scale"] == 1.0 else None
    return phase1, PUBLISHED["finetuned_clean"]


def summary(arrays: dict, manifest: dict) -> str:
    naive = manifest["naive_loss_per_feature"]
    loss, eval_sem = arrays["loss_per_feature"], arrays["loss_per_feature_sem"]
    mean, sem = mean_and_sem(loss, axis=1)
    published_phase1, published_finetuned = _published(manifest)
    steps1, steps2 = manifest["config"]["phase1"]["steps"], manifest["config"]["phase2"]["steps"]
    published = [published_phase1, None, published_finetuned]
    rows = []
    for i, stage in enumerate(EVALUATIONS):
        cell = f"{mean[i]:.4f} +- {sem[i]:.4f}" if np.isfinite(sem[i]) else f"{mean[i]:.4f}"
        step = steps1 if i < 2 else steps1 + steps2
        paper = f"~{published[i]:g}" if published[i] is not None else "-"
        rows.append([stage, f"{step:,}", cell, f"{mean[i] - naive:+.4f}", paper])
    mixing = manifest["mixing"]
    lines = [
        f"transplant (paper experiment 4): phase 1 on {ccjax.MIXING_FAMILIES[mixing['name']].label}, "
        f"scale {mixing['scale']:g}; "
        f"phase 2 fine-tunes the same models on clean labels; p = {manifest['evaluation']['p']:g}",
        f"{count(len(arrays['seeds']), 'seed')} (mean +- SEM over seeds); naive L/p = {naive:.4f}; "
        f"largest evaluation rel. SE {np.max(eval_sem / loss):.2%}",
        format_table(["model", "after step", "L/p", "- naive", "paper"], rows),
        f"weights moved by {np.mean(arrays['weight_change']):.1%} (||W_2 - W_1|| / ||W_1||, mean over seeds) "
        "in phase 2",
    ]
    if published_phase1 is None and published_finetuned is not None:
        lines.append("(the paper gives phase 1 only for the embedding M at scale 1)")
    lines.append(
        "paper: values read off its figures (about +-0.001); its transplant figure joined two different models "
        "(erratum), here phase 2 continues phase 1's models."
    )
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    """Both phases' training L/p against the total step, with the evaluated stages and the paper's values."""
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    naive = manifest["naive_loss_per_feature"]
    steps1 = manifest["config"]["phase1"]["steps"]
    fig, ax = plt.subplots(figsize=(8.5, 5.0), layout="constrained")
    end = _training_curves(ax, arrays, manifest)
    ax.axvline(steps1, color="0.6", linestyle=":", linewidth=1)
    ax.axhline(naive, **NAIVE_STYLE, label=f"naive ({naive:.4f})", zorder=1)
    mean = _evaluated_marks(ax, arrays, steps1, end)
    paper = _paper_marks(ax, manifest, steps1, end)
    ax.set_ylim(*_y_range(arrays, np.concatenate([mean, [naive], paper])))
    ax.set(
        xlabel="total training step (phase 2 starts at the dotted line)",
        ylabel=f"loss per feature L/p (p = {manifest['evaluation']['p']:g})",
        title="transplant: train with mixing, then fine-tune the same models on clean labels "
        f"({count(len(arrays['seeds']), 'seed')}, mean +- SEM)",
    )
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8, loc="upper right")
    return fig


def _training_curves(ax, arrays: dict, manifest: dict):
    """Each phase's training L/p (seed mean +- SEM) against the total step; the last step of phase 2."""
    mixing = manifest["mixing"]
    step2 = manifest["config"]["phase1"]["steps"] + arrays["phase2_step"]
    label1 = f"phase 1: training L/p, {ccjax.MIXING_FAMILIES[mixing['name']].label} (s = {mixing['scale']:g})"
    plot_seed_mean(
        ax, arrays["phase1_step"], arrays["phase1_train_loss_per_feature"], color="C0", label=label1, alpha=0.25
    )
    label2 = "phase 2: training L/p, clean labels (same models)"
    plot_seed_mean(ax, step2, arrays["phase2_train_loss_per_feature"], color="C1", label=label2, alpha=0.25)
    return step2[-1]


def _evaluated_marks(ax, arrays: dict, steps1: int, end) -> np.ndarray:
    """The three evaluated stages' L/p (seed mean +- SEM) where each stage ends; their means."""
    mean, sem = mean_and_sem(arrays["loss_per_feature"], axis=1)
    sem = np.nan_to_num(sem)
    marks = [
        (steps1, 0, "o", "C0", f"evaluated: phase 1, mixed labels ({mean[0]:.4f})"),
        (steps1, 1, "s", "C1", f"evaluated: phase 1 on clean labels ({mean[1]:.4f})"),
        (end, 2, "D", "C1", f"evaluated: phase 2, clean labels ({mean[2]:.4f})"),
    ]
    for x, i, marker, color, label in marks:
        style = {"marker": marker, "color": color, "mec": "k", "ms": 7, "capsize": 3, "zorder": 5}
        ax.errorbar(x, mean[i], yerr=sem[i], label=label, **style)
    return mean


def _paper_marks(ax, manifest: dict, steps1: int, end) -> list[float]:
    """The paper's values for these settings, if any, after phase 1 and after phase 2; those values."""
    published_phase1, published_finetuned = _published(manifest)
    points = [(x, y) for x, y in [(steps1, published_phase1), (end, published_finetuned)] if y is not None]
    if points:
        ax.plot(*np.array(points).T, "kx", ms=9, mew=2, zorder=6, label="paper (read off, +-0.001)")
    return [y for _, y in points]


def _y_range(arrays: dict, shown: np.ndarray) -> tuple[float, float]:
    """A y range holding ``shown`` and most of the training curves after the first tenth of phase 1."""
    # The first tenth of phase 1 is left out: the random init's large loss.
    late = arrays["phase1_train_loss_per_feature"][:, len(arrays["phase1_step"]) // 10 :]
    tail = np.concatenate([late.ravel(), arrays["phase2_train_loss_per_feature"].ravel()])
    return min(shown.min(), np.percentile(tail, 1)) - 0.004, max(shown.max(), np.percentile(tail, 95)) + 0.006


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    rows = []
    mixing = manifest["mixing"]
    if mixing["name"] in PUBLISHED["phase1_mixed"] and mixing["scale"] == 1.0:
        rows.append(
            compare_value(
                "transplant",
                f"phase 1 ({mixing['name']}, s = 1), L/p at p = 0.01",
                PUBLISHED["phase1_mixed"][mixing["name"]],
                arrays["loss_per_feature"][0],
            )
        )
    rows.append(
        compare_value(
            "transplant",
            "the same models fine-tuned on clean labels, L/p at p = 0.01",
            PUBLISHED["finetuned_clean"],
            arrays["loss_per_feature"][2],
            note="paper's figure spliced two models; ours fine-tunes the same weights",
        )
    )
    return rows


STAGES = (
    Stage(
        "transplant",
        "Experiment 4: transplant / fine-tune",
        4.0,
        quick_args=("--seeds", "2", "--steps", "200", "--finetune-steps", "200"),
        compare=compare,
    ),
)

SPEC = Experiment.from_module(
    __name__,
    title="train with mixing, then fine-tune the same models on clean labels",
    config=ccjax.TrainConfig(),  # p = 0.01, 10,000 steps, embedding M (faithful sign), scale 1
    options=OPTIONS,
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
