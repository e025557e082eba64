"""L/p of the CC model against the peak AdamW learning rate (the paper uses 3e-3).

Labels are relu(x) + scale * M x with the chosen mixing family. Every (seed, lr) model
is trained in one vectorised sweep. Models that diverge are reported and excluded.
"""

import sys

import numpy as np

import ccjax
from ccjax.measure.statistics import mean_and_sem

from ._cli import format_table, learning_rates, logged_steps, say
from ._experiment import Session, excluding_diverged, train_sweep
from ._spec import Experiment, Option, eval_rel_sem_option, mixing_options, seeds_option, single_p_options

EXPERIMENT = "lr_sweep"
ARRAYS = {
    "lrs": "(L,) peak learning rates",
    "seeds": "(K,) seeds; a seed fixes W_E, M, the initial weights and the data stream",
    "loss_per_feature": "(K, L) L/p at the training p (NaN for diverged models)",
    "loss_per_feature_sem": "(K, L) its Monte Carlo standard error",
    "diverged_step": "(K, L) first logged step with a NaN/inf loss (-1: the model stayed finite)",
    "history_step": "(n_logs,) training step of each log",
    "history_train_loss_per_feature": "(K, L, n_logs) mean training L/p over each logging interval",
    "w_in": "(K, L, n_features, d_mlp) trained feature-space W_in",
    "w_out": "(K, L, d_mlp, n_features) trained feature-space W_out",
}


def run(args, session: Session) -> tuple[dict, dict]:
    config = args.config
    with session.timed("total"):
        with session.timed("train"):
            result = train_sweep(config, {"seed": args.seeds, "lr": args.lrs}, f"seed x lr, {config.mixing}", session)
        say(f"evaluating L/p at p = {config.p:g} ...")
        estimate = ccjax.evaluate_sweep(result, rel_sem=args.eval_rel_sem)
    arrays = {
        "lrs": np.asarray(args.lrs),
        "seeds": np.asarray(args.seeds),
        "loss_per_feature": estimate.loss_per_feature,
        "loss_per_feature_sem": estimate.sem,
        "diverged_step": result.diverged_step,
        "history_step": logged_steps(result),
        "history_train_loss_per_feature": result.history.train_loss_per_feature,
        "w_in": result.params.w_in,
        "w_out": result.params.w_out,
    }
    return arrays, {
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
    import matplotlib.pyplot as plt

    from ccjax import plot

    naive = manifest["naive_loss_per_feature"]
    arrays = excluding_diverged(arrays)
    losses = arrays["loss_per_feature"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    plot.plot_scale_sweep(
        arrays["lrs"], losses, naive=naive, title="L/p at the training p", xlabel="peak learning rate", ax=left
    )
    left.set_xscale("log")
    curves = {f"lr = {lr:g}": arrays["history_train_loss_per_feature"][:, j] for j, lr in enumerate(arrays["lrs"])}
    plot.plot_history(arrays["history_step"], curves, naive=naive, title="training loss (mean over seeds)", ax=right)
    right.set_yscale("log")
    config = ccjax.io.saved_config(manifest)
    fig.suptitle(f"{EXPERIMENT}: {config.mixing} mixing, scale {config.scale:g}")
    return fig


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
