"""L/p of the CC model against the peak AdamW learning rate (the paper uses 3e-3).

Labels are relu(x) + scale * M x with the chosen mixing family. Every (seed, lr) model
is trained in one vectorised sweep. Models that diverge are reported and excluded.
"""

import sys

import numpy as np

import ccjax
from ccjax import measure
from ccjax.measure import excluding_diverged
from ccjax.measure.statistics import mean_and_sem
from ccjax.report import format_table

from ._cli import learning_rates
from ._experiment import Session, train_and_evaluate
from ._spec import Experiment, Option, eval_rel_sem_option, mixing_options, seeds_option, single_p_options

EXPERIMENT = "lr_sweep"
SAVED = ("loss_per_feature", "loss_per_feature_sem", "diverged_step", "history_step", "history_train_loss_per_feature")
SAVED += ("w_in", "w_out")  # ccjax.measure.sweep_arrays names them
ARRAYS = {
    "lrs": "(L,) peak learning rates",
    "seeds": "(K,) seeds; a seed fixes W_E, M, the initial weights and the data stream",
    **measure.describe_sweep_arrays("K, L", SAVED, shared_step=True),
}


def run(args, session: Session) -> tuple[dict, dict]:
    config, axes, what = args.config, {"seed": args.seeds, "lr": args.lrs}, f"seed x lr, {args.config.mixing}"
    with session.timed("total"):
        result, estimate = train_and_evaluate(config, axes, what, session, rel_sem=args.eval_rel_sem)
    arrays = {"lrs": np.asarray(args.lrs), "seeds": np.asarray(args.seeds)}
    return arrays | measure.sweep_arrays(result, SAVED, estimate, shared_step=True), {
        "mixing": {"name": config.mixing, "formula": ccjax.MIXING_FAMILIES[config.mixing].formula},
        "evaluation": {"p": config.p, "rel_sem": args.eval_rel_sem},
    }


def summary(arrays: dict, manifest: dict) -> str:
    naive = manifest["naive_loss_per_feature"]
    losses = excluding_diverged(arrays)["loss_per_feature"]
    mean, sem = mean_and_sem(losses)
    used = np.isfinite(losses).sum(axis=0)
    rows = []
    for lr, m, s, n in zip(arrays["lrs"], mean, sem, used, strict=True):
        cells = ("n/a", "n/a", "n/a") if n == 0 else (f"{m:.4f}", f"{s:.4f}", f"{m - naive:+.4f}")
        rows.append([f"{lr:g}", *cells, f"{n}/{len(arrays['seeds'])}"])
    config = ccjax.io.saved_config(manifest)
    setting = f"{config.mixing} mixing, scale {config.scale:g}, p = {config.p:g}, {config.steps:,} steps"
    table = format_table(["lr", "L/p", "SEM seeds", "L/p - naive", "models used"], rows)
    note = "models used: seeds whose training stayed finite (diverged ones are excluded, see the note)."
    return "\n".join([f"L/p against the learning rate: {setting}; naive L/p = {naive:.4f}", table, note])


def figure(arrays: dict, manifest: dict):
    from ccjax import plot

    arrays, config = excluding_diverged(arrays), ccjax.io.saved_config(manifest)
    return plot.plot_sweep_overview(
        arrays["lrs"],
        arrays["loss_per_feature"],
        arrays["history_step"],
        arrays["history_train_loss_per_feature"],
        naive=manifest["naive_loss_per_feature"],
        x_name="lr",
        xlabel="peak learning rate",
        loss_title="L/p at the training p",
        log_x=True,
        title=f"{EXPERIMENT}: {config.mixing} mixing, scale {config.scale:g}",
    )


LRS = Option("--lrs", learning_rates, "1e-3,3e-3,1e-2,3e-2", "peak learning rates", metavar="LIST")
SPEC = Experiment.from_module(
    __name__,
    title="L/p against the peak learning rate",
    config=ccjax.TrainConfig(),  # lr 3e-3, half-cosine decay, AdamW weight decay 0.01 (§4)
    axes={"seed": "seeds", "lr": "lrs"},
    options=(LRS, seeds_option(), *single_p_options(), *mixing_options(), eval_rel_sem_option(0.001)),
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
