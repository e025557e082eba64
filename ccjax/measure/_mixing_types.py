"""Paper experiment 2's arrays (docs/paper.md §6.2): models of several mixing families,
trained at one p in sweeps joined along the family axis (some with a learned scale s, §3), with
their L/p over p_eval and at the training p, family first, and the descriptions a results
manifest gives them, its labels and its evaluation.
"""

from collections.abc import Mapping

import numpy as np
from jaxtyping import Real

from ._array_texts import CURVE_ARRAYS, describe_arrays
from ._curves import LossCurve
from ._mechanisms import mixing_rms
from ._sweep_arrays import curves_at_shared_p, family_first

# The fields of the trained sweeps that mixing_type_arrays takes (join_sweeps along the family axis).
MIXING_TYPE_FIELDS = ("params.w_in", "params.w_out", "scaled_mixing", "scale", "mixing", "history.scale")
MIXING_TYPE_FIELDS += ("history.train_loss_per_feature",)
_TRAINED = ("final_train_loss_per_feature", "history_step", "train_loss_per_feature_history")
MIXING_TYPE_ARRAYS = {  # the grid, the L/p curves, the scale and the training history, then M and the weights
    "families": "(F,) mixing families: embedding, embedding-code-sign, none (scale 1), asymmetric, symmetric (learned)",
    "learned": "(F,) whether the family's scale was learned",
    "seeds": "(K,) seeds; a seed fixes W_E / M, the initial weights and the data stream of every family",
    **describe_arrays("F, K", CURVE_ARRAYS, at="at_p_train"),
    "at_p_train": "(F, K) L/p at p_eval = p_train = 0.01",  # in place of the generic text (same key order)
    "scale": "(F, K) mixing scale s in the labels relu(x) + s M x at the end of training: the magnitude |s| of "
    "the learned scale (what the labels use), or 1 if fixed",
    "abs_scale": "(F, K) |s|, the same values as scale (never negative)",
    "mixing_rms": "(F, K) RMS entry of the label map s M, |s| ||M||_F / n (0.031 for the embedding M)",
    **describe_arrays("F, K", _TRAINED),
    "scale_history": "(F, K, T) |s| at the end of each logging interval",
    "mixing": "(F, K, n_features, n_features) unscaled M of each model",
    **describe_arrays("F, K", ("w_in", "w_out", "n_evaluations")),
}


def mixing_type_arrays(
    joined: Mapping[str, np.ndarray], curve: LossCurve, step: Real[np.ndarray, " logs"]
) -> dict[str, np.ndarray]:
    """The arrays of :data:`MIXING_TYPE_ARRAYS` from ``at_p_train`` to ``w_out``, in its order:
    each model's, as (F families, K seeds, ...), and the logged steps ``step``.

    Args:
        joined: :func:`~ccjax.measure.join_sweeps` of the sweeps' :data:`MIXING_TYPE_FIELDS`,
            each (K seeds, F families, ...).
        curve: :func:`~ccjax.measure.loss_curve` of the joined models at ``[*p_eval, p_train]``.
        step: the steps at which every model logged its history (``history_step``).

    Returns:
        by name: the L/p over p_eval and at p_train with their SEMs (:func:`curves_at_shared_p`),
        the final scale (float64; a learned one is its magnitude |s|) twice, as ``scale`` and
        ``abs_scale``, :func:`~ccjax.measure.mixing_rms`, the last logged training L/p,
        ``step``, every logged training L/p, the logged |s|, the unscaled M and the weights.
    """
    scale, losses = joined["scale"].astype(np.float64), joined["history.train_loss_per_feature"]
    per_model = curves_at_shared_p(curve, at="at_p_train")  # each (K, F, ...), returned as (F, K, ...)
    per_model |= {"scale": scale, "abs_scale": scale, "mixing_rms": mixing_rms(scale, joined["mixing"])}
    per_model["final_train_loss_per_feature"] = np.ascontiguousarray(losses[..., -1])  # same memory order
    arrays = {name: family_first(value) for name, value in per_model.items()}
    arrays["history_step"] = step  # shared by every model
    per_model = {"train_loss_per_feature_history": losses, "scale_history": joined["history.scale"]}
    per_model |= {"mixing": joined["mixing"], "w_in": joined["params.w_in"], "w_out": joined["params.w_out"]}
    return arrays | {name: family_first(value) for name, value in per_model.items()}
