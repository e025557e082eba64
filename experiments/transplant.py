"""Paper experiment 4 (transplant / fine-tune): train with mixing, then fine-tune the same models on clean labels.

Phase 1 trains on relu(x) + s M x (default: the CC model's embedding M, faithful sign, s = 1); phase 2
continues from phase 1's weights on clean labels relu(x), with a fresh optimizer and a fresh data stream.
The gain over the naive model (L/p = 0.0833) comes from the mixing term, so after fine-tuning the loss
returns to about 0.083. (The published figure joined two different models; here it is one model throughout.)
"""

import argparse
import dataclasses
import sys

import numpy as np

import ccjax
from ccjax import measure
from ccjax.report import Comparison, compare_value, count, format_mean_sem, format_table

from . import _cli
from ._experiment import Session, train_sweep
from ._spec import Experiment, Option, Stage, eval_rel_sem_option, mixing_option

# Experiment 4, docs/paper.md §2, §6.2, §6.4: L/p after fine-tuning on clean labels, and of phase 1 by sign of M.
PUBLISHED = {
    "p": 0.01,
    "finetuned_clean": 0.083,
    "phase1_mixed": {"embedding": 0.067, "embedding-code-sign": 0.0644},
    "note": "read off the paper's figures (about +-0.001); the published transplant figure joined two "
    "different models (an erratum), here phase 2 fine-tunes phase 1's models",
}

EXPERIMENT = "transplant"
SEEDS_NOTE = "phase 2 of seed k: key(k + 2**31), a data stream of its own, from phase 1's weights, a fresh AdamW"
ARRAYS = measure.TRANSPLANT_ARRAYS


def phase1_seeds(text: str) -> list[int]:
    seeds = _cli.seed_list(text)
    if max(seeds) >= measure.PHASE2_SEED_OFFSET:
        raise argparse.ArgumentTypeError(f"seeds must be below 2**31 (phase 2 uses seed + 2**31), got {text!r}")
    return seeds


OPTIONS = (
    Option("--seeds", phase1_seeds, "5", "a count N or a list of seeds", metavar="N|LIST"),
    mixing_option("phase-1 mixing family"),
    Option("--scale", _cli.non_negative_float, None, "phase-1 mixing scale s (>= 0)", field="scale"),
    Option("--p", _cli.probability, None, "feature probability p (training and evaluation)", field="p"),
    Option("--steps", _cli.positive_int, None, "phase-1 training steps (with mixing)", field="steps"),
    Option("--finetune-steps", _cli.positive_int, 10_000, "phase-2 fine-tuning steps (clean labels)"),
    eval_rel_sem_option(0.001),
)


def run(args, session: Session) -> tuple[dict, dict]:
    """Train phase 1 with mixing, fine-tune the same models on clean labels, evaluate the three stages."""
    seeds, phase2_seeds = args.seeds, measure.phase2_seeds(args.seeds)
    phase1, phase2 = measure.fine_tuning_configs(args.config, args.finetune_steps)  # at most 100 logs each
    with session.timed("train"):
        what = f"phase 1 ({ccjax.MIXING_FAMILIES[args.mixing].label}, scale {args.scale:g})"
        first = train_sweep(phase1, {"seed": seeds}, what, session)
        what = "phase 2 (fine-tuning the same models, clean labels)"
        second = train_sweep(phase2, {"seed": phase2_seeds}, what, session, initial_params=first.params)
    _cli.say(f"evaluating {count(3 * len(seeds), 'model')} at p = {args.p:g} (relative SE {args.eval_rel_sem:g}) ...")
    with session.timed("eval"):  # the FINE_TUNING_STAGES in one call: every model sees the same samples
        key, rel_sem = ccjax.evaluation_key(), args.eval_rel_sem
        curve = measure.fine_tuning_curve(first.params, second.params, first.scaled_mixing, [args.p], key, rel_sem)
    _cli.say(f"evaluated in {_cli.format_duration(session.timings['eval_seconds'])}")
    evaluation = {"p": args.p, "rel_sem": args.eval_rel_sem, "method": measure.FINE_TUNING_EVALUATION}
    return measure.transplant_arrays(seeds, first, second, curve, args.scale), {  # "config": both phases
        "config": {"phase1": dataclasses.asdict(phase1), "phase2": dataclasses.asdict(phase2)},
        "mixing": {"name": args.mixing, "formula": ccjax.MIXING_FAMILIES[args.mixing].formula, "scale": args.scale},
        "seeds": {"phase1": seeds, "phase2": phase2_seeds, "note": SEEDS_NOTE},
        "evaluation": evaluation | {"n_evaluations": int(curve.n_evaluations)},
    }


def published(manifest: dict) -> tuple[float | None, float | None]:
    """The paper's L/p (phase 1 on mixed labels, fine-tuned on clean labels) for a saved run: only at
    its p, phase 1 only at scale 1 and for the families it gives; None where it gives none."""
    mixing = manifest["mixing"]
    if manifest["evaluation"]["p"] != PUBLISHED["p"]:
        return None, None
    phase1 = PUBLISHED["phase1_mixed"].get(mixing["name"]) if mixing["scale"] == 1.0 else None
    return phase1, PUBLISHED["finetuned_clean"]


def summary(arrays: dict, manifest: dict) -> str:
    naive, mixing, p = manifest["naive_loss_per_feature"], manifest["mixing"], manifest["evaluation"]["p"]
    loss, (paper1, paper2) = arrays["loss_per_feature"], published(manifest)
    steps1, steps2 = (ccjax.io.saved_config(manifest["config"], phase).steps for phase in ("phase1", "phase2"))
    at_step, stages = (steps1, steps1, steps1 + steps2), measure.FINE_TUNING_STAGES
    stages = zip(stages, at_step, loss, measure.statistics.mean_and_sem(loss, axis=1)[0], strict=True)
    rows = [
        [stage, f"{step:,}", format_mean_sem(values), f"{mean - naive:+.4f}", "-" if paper is None else f"~{paper:g}"]
        for (stage, step, values, mean), paper in zip(stages, (paper1, None, paper2), strict=True)
    ]
    lines = [
        f"transplant (paper experiment 4): phase 1 on {ccjax.MIXING_FAMILIES[mixing['name']].label}, "
        f"scale {mixing['scale']:g}; phase 2 fine-tunes the same models on clean labels; p = {p:g}",
        f"{count(len(arrays['seeds']), 'seed')} (mean +- SEM over seeds); naive L/p = {naive:.4f}; "
        f"largest evaluation rel. SE {np.max(arrays['loss_per_feature_sem'] / loss):.2%}",
        format_table(["model", "after step", "L/p", "- naive", "paper"], rows),
        f"phase 2 moved the weights by {np.mean(arrays['weight_change']):.1%} (||W_2 - W_1|| / ||W_1||, seed mean)",
        *(["(the paper gives phase 1 only for the embedding M at scale 1)"] if paper1 is None and paper2 else []),
        f"paper: {PUBLISHED['note']}.",
    ]
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    """Both phases' training L/p against the total step, with the evaluated stages and the paper's values."""
    from ccjax import plot

    mixing, seeds = manifest["mixing"], count(len(arrays["seeds"]), "seed")
    return plot.plot_fine_tuning(
        *(plot.TrainingCurve(arrays[f"phase{i}_step"], arrays[f"phase{i}_train_loss_per_feature"]) for i in (1, 2)),
        arrays["loss_per_feature"],
        phase1_steps=ccjax.io.saved_config(manifest["config"], "phase1").steps,
        naive=manifest["naive_loss_per_feature"],
        published=published(manifest),
        phase1_label=f"phase 1: training L/p, {ccjax.MIXING_FAMILIES[mixing['name']].label} (s = {mixing['scale']:g})",
        ylabel=f"loss per feature L/p (p = {manifest['evaluation']['p']:g})",
        title=f"transplant: train with mixing, then fine-tune the same models on clean labels ({seeds}, mean +- SEM)",
    )


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    """Phase 1's L/p (embedding M, s = 1) and the fine-tuned models' next to the paper's; none at another p."""
    (phase1, clean), loss = published(manifest), arrays["loss_per_feature"]
    if clean is None:
        return []
    quantity = f"phase 1 ({manifest['mixing']['name']}, s = 1), L/p at p = 0.01"
    rows = [] if phase1 is None else [compare_value(EXPERIMENT, quantity, phase1, loss[0])]
    quantity = "the same models fine-tuned on clean labels, L/p at p = 0.01"
    note = "paper's figure spliced two models; ours fine-tunes the same weights"
    return [*rows, compare_value(EXPERIMENT, quantity, clean, loss[2], note=note)]


QUICK = ("--seeds", "2", "--steps", "200", "--finetune-steps", "200")
STAGES = (Stage(EXPERIMENT, "Experiment 4: transplant / fine-tune", 4.0, quick_args=QUICK, compare=compare),)

TITLE = "train with mixing, then fine-tune the same models on clean labels"
# the paper's config: p = 0.01, 10,000 steps, embedding M (faithful sign), scale 1
SPEC = Experiment.from_module(__name__, title=TITLE, config=ccjax.TrainConfig(), options=OPTIONS)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
