"""Paper experiment 3's saved arrays (docs/paper.md §6.3): one sweep of (seed, Gaussian mixing
family, sigma) models, each evaluated at one p, with the family axis first, the descriptions a
results manifest gives them, and how they were evaluated.
"""

import numpy as np

from ..engine import SweepResult
from ._direct import Estimate
from ._sweep_arrays import describe_sweep_arrays, family_first, logged_steps, shared_mixing, sweep_arrays

_PER_MODEL = ("loss_per_feature", "loss_per_feature_sem", "final_train_loss_per_feature")
_PER_MODEL += ("train_loss_per_feature_history", "w_in", "w_out")  # of sweep_arrays, each (F, K, S, ...)
SIGMA_SWEEP_ARRAYS = {
    "families": "(F,) Gaussian mixing families",
    "sigmas": "(S,) mixing magnitudes sigma (ascending; the labels are relu(x) + sigma M x)",
    "seeds": "(K,) seeds; a seed fixes M, the initial weights and the data stream (shared by every sigma)",
    **describe_sweep_arrays("F, K, S", _PER_MODEL),
    "history_step": "(n_logs,) step at the end of each logging interval",
    "mixing": "(F, K, n_features, n_features) unscaled M of each seed (shared by every sigma)",
    "n_evaluations": "() exactly-k samples behind every L/p (shared by every model)",
}


def sigma_sweep_arrays(result: SweepResult, estimate: Estimate) -> dict[str, np.ndarray]:
    """The arrays of :data:`SIGMA_SWEEP_ARRAYS` from ``loss_per_feature`` on, by name in its order.

    Args:
        result: a sweep over the grid (K seeds, F families, S sigmas), whose sigmas share their
            seed's M (the mixing scale is the last grid axis).
        estimate: :func:`~ccjax.measure.evaluate_sweep` of ``result``.

    Returns:
        :func:`~ccjax.measure.sweep_arrays` of the L/p and its SEM, the final and logged
        training L/p and the weights, each (F, K, S, ...); the logged steps (shared by every
        model), each (family, seed)'s M (F, K, n, n) and the exactly-k sample count.
    """
    arrays = {name: family_first(value) for name, value in sweep_arrays(result, _PER_MODEL, estimate).items()}
    arrays["history_step"] = logged_steps(result)
    arrays["mixing"] = family_first(shared_mixing(result.mixing, sigma_axis=2))
    arrays["n_evaluations"] = np.asarray(int(np.asarray(estimate.n_samples).flat[0]))
    return arrays
