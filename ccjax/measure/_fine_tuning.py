"""A fine-tuning run (docs/paper.md §6.4): models trained on labels with sM (phase 1), then
fine-tuned on clean labels from phase 1's weights (phase 2). The two phases' configs, and the
arrays of the run with the three evaluations of :func:`~ccjax.measure.fine_tuning_curve` and
the descriptions a results manifest gives them.
"""

import dataclasses

import numpy as np

from ..engine import SweepResult, TrainConfig
from ._curves import LossCurve
from ._sweep_arrays import logged_steps
from .baselines import relative_weight_change

# What each row of fine_tuning_curve's leading axis evaluates.
FINE_TUNING_STAGES = ("phase 1, mixed labels", "phase 1, clean labels", "phase 2, clean labels")
FINE_TUNING_EVALUATION = "ccjax.loss_curve (exact c_1, control-variate c_k); clean labels: M = 0"
FINE_TUNING_ARRAYS = {
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
}


def fine_tuning_configs(
    config: TrainConfig, finetune_steps: int, max_logs: int = 100
) -> tuple[TrainConfig, TrainConfig]:
    """The two phases of a fine-tuning run (§6.4): ``config`` (phase 1, labels with sM), and
    phase 2 on clean labels (no mixing, scale 0) for ``finetune_steps`` steps, otherwise the
    same. Each logs at most ``max_logs`` times: every ``ceil(steps / max_logs)`` steps (at least 1).

    Args:
        config: the training config of phase 1 (its ``log_every`` is replaced).
        finetune_steps: the training steps of phase 2.
        max_logs: the most history logs of each phase.

    Returns:
        ``(phase1, phase2)``, the two phases' configs.
    """
    phase1 = dataclasses.replace(config, log_every=max(1, -(-config.steps // max_logs)))
    log_every = max(1, -(-finetune_steps // max_logs))
    return phase1, dataclasses.replace(phase1, steps=finetune_steps, mixing="none", scale=0.0, log_every=log_every)


def fine_tuning_arrays(first: SweepResult, second: SweepResult, curve: LossCurve) -> dict[str, np.ndarray]:
    """The arrays of :data:`FINE_TUNING_ARRAYS` (§6.4), by name in its order.

    Args:
        first: phase 1, a sweep of K models on labels with sM (one model axis).
        second: phase 2, the same models fine-tuned on clean labels from ``first.params``.
        curve: :func:`~ccjax.measure.fine_tuning_curve` of the two at one p, (3, K, 1) L/p.

    Returns:
        the three evaluations' L/p and SEM (3, K) with the :data:`FINE_TUNING_STAGES`, each
        phase's logged steps (shared by the models) and training L/p (K, n_logs), the weights
        after each phase, the relative weight change (K,) and phase 1's unscaled M.
    """
    arrays = {"stages": np.asarray(FINE_TUNING_STAGES)}
    arrays |= {"loss_per_feature": curve.loss_per_feature[..., 0], "loss_per_feature_sem": curve.sem[..., 0]}
    for phase, result in (("phase1", first), ("phase2", second)):
        arrays[f"{phase}_step"] = np.asarray(logged_steps(result))  # every model logs at the same steps
        arrays[f"{phase}_train_loss_per_feature"] = np.asarray(result.history.train_loss_per_feature)
    arrays |= {"phase1_w_in": np.asarray(first.params.w_in), "phase1_w_out": np.asarray(first.params.w_out)}
    arrays |= {"w_in": np.asarray(second.params.w_in), "w_out": np.asarray(second.params.w_out)}
    arrays["weight_change"] = relative_weight_change(first.params, second.params)
    return arrays | {"mixing": np.asarray(first.mixing)}
