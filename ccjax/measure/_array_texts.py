"""One vocabulary of the manifest's descriptions of the arrays that paper experiments save.

:func:`describe_arrays` describes the named arrays of a grid of models whose axes the caller
names (``"F, K"``): the L/p curves over p_eval of experiments 1, 2 and 7 (docs/paper.md §6.1,
§6.2), the baseline models of experiment 6 (§6.6), the trained weights; any other name as
:func:`~ccjax.measure.describe_sweep_arrays` describes it.
"""

from collections.abc import Sequence

from ._sweep_arrays import describe_sweep_arrays

# name -> description; "{axes}" stands for the models' grid axes, "at"/"at_sem" for the caller's name of the L/p
# at the training p. T: training p's (or logs, in "history" names), P: p_eval's, O: SNMF target orientations.
_TEXTS = {
    "p_train": "(T,) training feature probabilities",
    "steps": "(T,) training steps at each p_train (after the sparsity scaling)",
    "p_eval": "(P,) evaluation probabilities of the curves",
    "loss_per_feature": "({axes}, P) L/p of each model at each p_eval",
    "loss_per_feature_sem": "({axes}, P) its Monte Carlo standard error",
    "at": "({axes}) L/p of each model at its own training p",
    "at_sem": "({axes}) its Monte Carlo standard error",
    "n_evaluations": "() exactly-k samples behind all curves (shared by every model)",
    "history_step": "(T,) step at the end of each logging interval",
    "train_loss_per_feature_history": "({axes}, T) training L/p per logging interval",
    "w_in": "({axes}, n_features, d_mlp) trained W_in",
    "w_out": "({axes}, d_mlp, n_features) trained W_out",
    "snmf_loss": "({axes}, O) exact exactly-one L/p of the SNMF model",
    "snmf_fit_error": "({axes}, O) ||T_o - W_in W_out||_F against the orientation's own target T_o",
    "svd_loss": "({axes}) exact exactly-one L/p of the top-50 SVD of the faithful target",
    "naive_loss": "({axes}) exact exactly-one L/p of the naive model on these labels",
    "snmf_w_in": "({axes}, O, n_features, d_mlp) SNMF W_in (= U >= 0)",
    "snmf_w_out": "({axes}, O, d_mlp, n_features) SNMF W_out (= V)",
    "trained_loss": "({axes}) exact exactly-one L/p of the trained model",
}
CURVE_ARRAYS = ("p_eval", "loss_per_feature", "loss_per_feature_sem", "at", "at_sem")  # a curve's, in saved order
BASELINE_ARRAYS = ("snmf_loss", "snmf_fit_error", "svd_loss", "naive_loss", "snmf_w_in", "snmf_w_out")


def describe_arrays(axes: str, names: Sequence[str], *, at: str = "at_train_p", suffix: str = "") -> dict[str, str]:
    """The manifest's description of each of ``names`` for models on a grid whose axes ``axes``
    names (``"T, K"``): ``{"loss_per_feature": "(T, K, P) L/p of each model at each p_eval", ...}``,
    each followed by ``suffix``. The L/p at the training p (``"at"``) is saved as ``at``, its
    standard error (``"at_sem"``) as ``<at>_sem``; a name outside this vocabulary is described
    as :func:`~ccjax.measure.describe_sweep_arrays` describes it.

    Args:
        axes: the models' grid axes as they appear in the shapes, e.g. ``"T, K"``.
        names: the arrays to describe, by their names in the vocabulary (``"at"``, ``"at_sem"``, ...).
        at: the saved name of the L/p at the training p (its standard error's: ``<at>_sem``).
        suffix: text added to the end of every description.

    Returns:
        ``{saved name: description}`` in the order of ``names``.
    """
    described = {}
    for name in names:
        if name in _TEXTS:
            described[{"at": at, "at_sem": f"{at}_sem"}.get(name, name)] = _TEXTS[name].format(axes=axes)
        else:
            described |= describe_sweep_arrays(axes, [name])
    return {name: text + suffix for name, text in described.items()}
