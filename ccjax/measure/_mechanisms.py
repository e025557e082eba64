"""Mechanism analyses over stacked models (docs/paper.md §5, §6.2, §6.4–6.6): the §6.5
alignment of every model of a sweep, the cosine bands the paper reads off, the §5
baselines of a sweep over seeds and mixing magnitudes, the three evaluations of a
fine-tuning run (§6.4) and the RMS entry of a label map (§6.2).

Each function takes arrays stacked on leading model axes and returns NumPy arrays.
"""

import inspect
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np

from .._types import AnyArray, Array, Float, Key, PRNGKeyArray
from ..problem._model import FeatureMLP
from ._curves import LossCurve, loss_curve
from .analysis import alignment
from .baselines import (
    ORIENTATIONS,
    exactly_one_losses,
    factorisation_error,
    naive_model,
    semi_nmf,
    semi_nmf_models,
    svd_models,
    target_maps,
)


def _alignment_fields(params: FeatureMLP, scaled_mixing) -> dict:
    return alignment(params, scaled_mixing)._asdict()


# Unsharded, on one device: XLA:CPU deadlocked on sharded decompositions (see ccjax.sweep).
# A dict comes out of jit with its keys sorted.
_alignments_jit = jax.jit(jax.vmap(_alignment_fields))


def alignments(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "models n_features n_features"]
) -> dict[str, np.ndarray]:
    """:func:`~ccjax.measure.analysis.alignment` of every model (a leading model axis on the weights
    and on its label map ``sM``, cast to float32) in one compiled call (§6.5): each field of
    :class:`~ccjax.measure.analysis.Alignment` by name, in sorted order, with the model axis first.

    Args:
        params: the models, W_in (models, n_features, d_mlp) and W_out (models, d_mlp, n_features).
        scaled_mixing: each model's label map ``sM``, (models, n_features, n_features).

    Returns:
        ``{field: array}``, each (models, ...) (the shapes of :data:`ALIGNMENT_ARRAYS`).
    """
    fields = _alignments_jit(params, np.asarray(scaled_mixing, np.float32))
    return {name: np.asarray(value) for name, value in fields.items()}


# What alignments' fields are, for results files: (the shape of one model's value, its meaning).
ALIGNMENT_ARRAYS = {
    "eigenvalues": ("n", "eigenvalues of (sM + sM^T)/2, descending"),
    "eigen_cos": ("n", "cos(E_i, A E_i), A = (W_in W_out)^T"),
    "svd_cos": ("n", "cos(U_i, A V_i) for the SVD of the target map I + sM"),
    "projection_in": ("n, d_mlp", "E_i . W_in[:, h]"),
    "projection_out": ("n, d_mlp", "E_i . W_out[h, :]"),
    "share_in": ("", "share of ||W_in||^2 inside the top-d_mlp eigen-subspace"),
    "share_out": ("", "share of ||W_out||^2 inside the top-d_mlp eigen-subspace"),
    "off_diagonal_slope": ("", "least-squares slope through 0 of A's off-diagonal entries against sM's"),
    "diagonal_slope": ("", "diag(A) ~ slope diag(sM) + intercept"),
    "diagonal_intercept": ("", ""),
    "effective_rank": ("", "effective rank of A"),
    "linear_map": ("n, n", "A = (W_in W_out)^T"),
}
# The conventions of every alignment (ccjax.analysis), for results files.
ALIGNMENT_CONVENTIONS = {
    "A": "(W_in W_out)^T: the paper's W_out W_in (column convention) in ccjax's row convention",
    "E": "eigenvectors of (sM + sM^T)/2, descending eigenvalue, largest-|entry| positive",
    "target": "I + sM, the column-convention label map on non-negative inputs",
}


def describe_alignments(leading: str) -> dict[str, str]:
    """What each array of :func:`alignments` stacked on the axes ``leading`` (e.g. ``"C, K"``)
    holds, by name in :class:`~ccjax.measure.analysis.Alignment`'s order: ``"(C, K, n) eigenvalues of ..."``.

    Args:
        leading: the names of the models' leading axes, as they appear in the shapes.

    Returns:
        ``{field: "(shape) meaning"}``.
    """
    return {
        name: " ".join(filter(None, [f"({', '.join(filter(None, [leading, shape]))})", meaning]))
        for name, (shape, meaning) in ALIGNMENT_ARRAYS.items()
    }


# The index bands of cos(E_i, A E_i) that the paper reads off its figure (§6.5), 0-based.
ALIGNMENT_BANDS = {"cos_top20": slice(0, 20), "cos_at_40": slice(38, 43), "cos_from_70": slice(69, None)}


def alignment_bands(eigen_cos: Float[np.ndarray, "*models n_features"]) -> dict[str, Float[np.ndarray, "*models"]]:
    """The mean of ``cos(E_i, A E_i)`` (:func:`~ccjax.measure.analysis.eigen_alignment`, descending
    eigenvalue) over each band of :data:`ALIGNMENT_BANDS`, by name (§6.5): the top 20
    eigenvectors (paper ≈0.97), 0-based indices 38..42 (≈0.89) and 69 on (≈0–0.1).

    Args:
        eigen_cos: ``cos(E_i, A E_i)`` of each model, (*models, n_features), by descending eigenvalue.

    Returns:
        ``{band name: mean cosine}``, each (*models).
    """
    return {name: eigen_cos[..., band].mean(axis=-1) for name, band in ALIGNMENT_BANDS.items()}


class BaselineSweep(NamedTuple):
    """The §5 baselines of every (seed, mixing magnitude): :func:`baseline_sweep`.

    Attributes:
        snmf: the semi-NMF models (``W_in = U >= 0``, ``W_out = V``), with leading axes (seeds, scales, orientations).
        snmf_loss: their exact exactly-one L/p, (seeds, scales, orientations).
        snmf_fit_error: ``||T_o - W_in W_out||_F`` against each orientation's own target T_o,
            (seeds, scales, orientations).
        svd_loss: exact exactly-one L/p of the top-d_mlp SVD of the faithful target, (seeds, scales).
        naive_loss: exact exactly-one L/p of the naive model on these labels, (seeds, scales).
    """

    snmf: FeatureMLP  # (seeds, scales, orientations, ...): W_in = U >= 0, W_out = V
    snmf_loss: Float[np.ndarray, "seeds scales orientations"]  # exact exactly-one L/p
    snmf_fit_error: Float[np.ndarray, "seeds scales orientations"]  # ||T_o - W_in W_out||_F
    svd_loss: Float[np.ndarray, "seeds scales"]  # top-d_mlp SVD of the faithful target
    naive_loss: Float[np.ndarray, "seeds scales"]  # the naive model on these labels


def baseline_sweep(
    mixing: Float[np.ndarray, "seeds n_features n_features"],
    scales: Sequence[float] | Float[np.ndarray, " scales"],
    keys: Key[Array, " seeds"],
    d_mlp: int = 50,
    outer_iterations: int = 500,
) -> BaselineSweep:
    """The semi-NMF, SVD and naive baselines of labels ``relu(x) + s M x`` for every unscaled
    M in ``mixing`` and every scale s in ``scales`` (§5, §6.6), with their exact exactly-one
    L/p (:func:`~ccjax.measure.baselines.exactly_one_losses`).

    Semi-NMF (:func:`~ccjax.measure.baselines.semi_nmf_models`, ``keys[k]`` seeding every scale and
    orientation of M_k) factorises both target orientations (:data:`~ccjax.measure.baselines.ORIENTATIONS`),
    with its error against its own target; the SVD model (signs flipped) the faithful one.

    Args:
        mixing: the unscaled M of each seed, (seeds, n_features, n_features).
        scales: the mixing magnitudes s (σ), (scales,).
        keys: one PRNG key per seed, (seeds,), for the semi-NMF initialisation.
        d_mlp: the rank of every baseline (neurons).
        outer_iterations: the semi-NMF's outer iterations (the paper: 500).

    Returns:
        The :class:`BaselineSweep`.
    """
    targets = target_maps(mixing, np.asarray(scales, np.float32))  # (K, S, O, n, n)
    snmf = semi_nmf_models(targets, keys[:, None, None], d_mlp, outer_iterations)
    svd = svd_models(targets[:, :, ORIENTATIONS.index("faithful")], d_mlp)
    scaled = np.asarray(scales, np.float64)[None, :, None, None] * mixing[:, None]  # (K, S, n, n)
    return BaselineSweep(
        snmf=snmf,
        snmf_loss=exactly_one_losses(snmf, scaled[:, :, None]),
        snmf_fit_error=factorisation_error(targets, snmf),
        svd_loss=exactly_one_losses(svd, scaled),
        naive_loss=exactly_one_losses(naive_model(mixing.shape[-1], d_mlp), scaled),
    )


def describe_baseline_sweep(d_mlp: int, outer_iterations: int) -> dict:
    """How :func:`baseline_sweep` makes and evaluates its models, for results files: the target
    orientations, the semi-NMF settings (those of :func:`~ccjax.measure.baselines.semi_nmf`), the
    references and the evaluation.

    Args:
        d_mlp: the baselines' rank (neurons).
        outer_iterations: the semi-NMF's outer iterations.

    Returns:
        A JSON-ready dict: ``orientations``, ``semi_nmf``, ``references`` and ``evaluation``.
    """
    options = inspect.signature(semi_nmf).parameters
    inner_steps, nmf_iterations = options["inner_steps"].default, options["nmf_iterations"].default
    lr_start, lr_end = options["lr_start"].default, options["lr_end"].default
    return {
        "orientations": {
            "faithful": "T = (I + sigma M)^T, the map the labels apply to row inputs",
            "paper-code": "T = I + sigma M, what the paper code factorises (paper_code/nb7_semi_nmf_solution.py)",
        },
        "semi_nmf": {
            "rank": d_mlp,
            "outer_iterations": outer_iterations,
            "inner_steps": inner_steps,
            "step_size": f"cosine-annealed {lr_start:g} -> {lr_end:g}",
            "init": f"U from NMF of |T| (Lee-Seung, {nmf_iterations} iterations), V = pinv(U) T",
        },
        "references": {
            "svd": f"top-{d_mlp} SVD of the faithful target, neuron signs flipped (baselines.svd_model)",
            "naive": f"W_in[f, f] = W_out[f, f] = 1 for f < {d_mlp}, evaluated on these labels",
        },
        "evaluation": "exact: L/p = n c_1 on exactly-one data (ccjax.exactly_one_loss_per_feature)",
    }


def fine_tuning_curve(
    before: FeatureMLP,
    after: FeatureMLP,
    scaled_mixing: Float[AnyArray, "models n_features n_features"],
    p_eval: Sequence[float] | np.ndarray,
    key: PRNGKeyArray,
    rel_sem: float,
) -> LossCurve:
    """:func:`~ccjax.measure.loss_curve` (one call: common samples) of models trained on labels
    with ``sM`` (``before``) and fine-tuned on clean labels (``after``), §6.4. The curve's
    leading axis is 3: ``before`` on its mixed labels, ``before`` on clean labels (M = 0),
    ``after`` on clean labels; then the models' axis and ``p_eval``'s.

    Args:
        before: the phase-1 models, W_in (models, n_features, d_mlp) and W_out (models, d_mlp, n_features).
        after: the same models after fine-tuning, of the same shapes.
        scaled_mixing: the phase-1 label map ``sM`` of each model, (models, n_features, n_features).
        p_eval: the feature probabilities to evaluate, (P,).
        key: the key of the samples (shared by all three evaluations).
        rel_sem: the target standard error relative to L/p.

    Returns:
        The :class:`~ccjax.LossCurve`, its per-model fields (3, models, P).
    """
    params = jax.tree.map(lambda a, b: np.stack([a, a, b]), before, after)
    clean = np.zeros_like(scaled_mixing)
    label_maps = np.stack([scaled_mixing, clean, clean]).astype(np.float32)
    return loss_curve(params, label_maps, p_eval, key, rel_sem=rel_sem)


def mixing_rms(
    scale: Float[np.ndarray, "*models"], mixing: Float[np.ndarray, "*models n_features n_features"]
) -> Float[np.ndarray, "*models"]:
    """The RMS entry of the label map ``sM``: ``scale · ‖M‖_F / n`` in float64, with ``scale``
    the magnitude |s| (§6.2: 0.031 for the embedding M ``I - W_E W_E^T`` at s = 1).

    Args:
        scale: |s| of each model, (*models).
        mixing: the unscaled M of each model, (*models, n_features, n_features).

    Returns:
        The RMS entry of each model's ``sM``, (*models), float64.
    """
    return scale * np.linalg.norm(mixing.astype(np.float64), axis=(-2, -1)) / mixing.shape[-1]
