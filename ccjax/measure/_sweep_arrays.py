"""The arrays a trained sweep saves, with the descriptions a results manifest gives them.

:func:`sweep_arrays` takes them from a :class:`~ccjax.SweepResult` (and its
:func:`~ccjax.measure.evaluate_sweep` estimate); :func:`describe_sweep_arrays` describes the
same names for a grid whose axes the caller names, e.g. ``"K, S"`` for seeds x scales. The
helpers below reshape them: :func:`logged_steps`, :func:`family_first`, :func:`shared_mixing`,
:func:`stack_fields`, :func:`excluding_diverged` and :func:`curves_at_training_p`.
"""

from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Real, Shaped

from .._types import AnyArray, Float
from ..engine import SweepResult
from ._curves import LossCurve
from ._direct import Estimate

# name -> (axes after the grid's, description); "history_<field>" names have n_logs after the grid's.
_DESCRIPTIONS = {
    "loss_per_feature": ("", "L/p at the evaluation p (each model's training p unless told; NaN if it diverged)"),
    "loss_per_feature_sem": ("", "Monte Carlo standard error of loss_per_feature"),
    "n_evaluations": ("", "exactly-k samples the evaluation ran each model on"),
    "history_step": (", n_logs", "training step of each log"),
    "history_train_loss_per_feature": (", n_logs", "mean training L/p over each logging interval"),
    "history_relu_term_per_feature": (", n_logs", "ReLU term of L/p on a fresh batch at the logged step"),
    "history_mixing_term_per_feature": (", n_logs", "mixing term of L/p on the same batch"),
    "history_scale": (", n_logs", "|mixing scale| in use"),
    "final_scale": ("", "mixing scale in the labels at the end (learned or fixed)"),
    "diverged_step": ("", "first logged step with a NaN/inf loss (-1: the model stayed finite)"),
    "w_in": (", n_features, d_mlp", "trained feature-space W_in (full models mapped through W_E)"),
    "w_out": (", d_mlp, n_features", "trained feature-space W_out"),
    "mixing": (", n_features, n_features", "unscaled mixing matrix M"),
}
SWEEP_ARRAYS = tuple(_DESCRIPTIONS)  # the standard arrays of a trained sweep, in the order they are saved
_DESCRIPTIONS |= {  # the training loss as some results name it
    "final_train_loss_per_feature": ("", "training L/p over the last logging interval"),
    "train_loss_per_feature_history": (", n_logs", "training L/p per logging interval"),
}
_EVALUATED = ("loss_per_feature", "loss_per_feature_sem", "n_evaluations")


def describe_sweep_arrays(axes: str, names: Sequence[str] = SWEEP_ARRAYS, *, shared_step: bool = False) -> dict:
    """The manifest's description of each of ``names`` (see :func:`sweep_arrays`), for a grid whose
    axes ``axes`` names (``"K, S"``): ``{"w_in": "(K, S, n_features, d_mlp) trained ..."}``.

    Args:
        axes: the grid's axes as they appear in the shapes, e.g. ``"K, S"``.
        names: the arrays to describe (default :data:`SWEEP_ARRAYS`); each must be one :func:`sweep_arrays` knows.
        shared_step: describe ``history_step`` as the ``(n_logs,)`` steps every model shares.

    Returns:
        ``{name: "(shape) description"}`` in the order of ``names``.
    """
    described = {}
    for name in names:
        trailing, text = _DESCRIPTIONS[name]
        shape = "(n_logs,)" if shared_step and name == "history_step" else f"({axes}{trailing})"
        described[name] = f"{shape} {text}"
    return described


def sweep_arrays(
    result: SweepResult,
    names: Sequence[str] = SWEEP_ARRAYS,
    estimate: Estimate | None = None,
    *,
    shared_step: bool = False,
) -> dict:
    """The arrays ``names`` of a trained sweep, each with the grid's axes first, as they are (no
    copy or cast). :data:`SWEEP_ARRAYS` (the default) are the evaluation's L/p, its standard error
    and sample counts (from ``estimate``, :func:`~ccjax.measure.evaluate_sweep` of ``result``),
    ``history_<field>`` for each :class:`~ccjax.History` field (``(*grid, n_logs)``), the final
    mixing scale, ``diverged_step``, the weights ``w_in``/``w_out`` and the unscaled M; also
    available: ``final_train_loss_per_feature`` (the last log's) and its history under the name
    ``train_loss_per_feature_history``.

    Args:
        result: the trained sweep.
        names: the arrays to return (default :data:`SWEEP_ARRAYS`).
        estimate: :func:`~ccjax.measure.evaluate_sweep` of ``result``; needed for the evaluated arrays
            (``loss_per_feature``, ``loss_per_feature_sem``, ``n_evaluations``).
        shared_step: return ``history_step`` as the ``(n_logs,)`` steps every model shares.

    Returns:
        ``{name: array}`` in the order of ``names``, each (*grid, ...).

    Raises:
        ValueError: for an unknown name, or an evaluated array without ``estimate``.
    """
    missing = [name for name in names if name not in _DESCRIPTIONS]
    if missing:
        raise ValueError(f"no sweep array {missing[0]!r}; choose from {', '.join(_DESCRIPTIONS)}")
    history = result.history
    available = {f"history_{field}": getattr(history, field) for field in history._fields}
    if shared_step:
        available["history_step"] = logged_steps(result)
    available["train_loss_per_feature_history"] = history.train_loss_per_feature
    available["final_train_loss_per_feature"] = history.train_loss_per_feature[..., -1]
    available |= {"final_scale": result.scale, "diverged_step": result.diverged_step}
    available |= {"w_in": result.params.w_in, "w_out": result.params.w_out, "mixing": result.mixing}
    if estimate is not None:
        available |= dict(zip(_EVALUATED, (estimate.loss_per_feature, estimate.sem, estimate.n_samples), strict=True))
    elif set(names) & set(_EVALUATED):
        raise ValueError(f"{', '.join(_EVALUATED)} need the sweep's estimate (ccjax.measure.evaluate_sweep)")
    return {name: available[name] for name in names}


def logged_steps(result: SweepResult) -> Real[AnyArray, " n_logs"]:
    """The steps at which a sweep logged its history (the same for every model).

    Args:
        result: the trained sweep.

    Returns:
        The logged steps, (n_logs,).
    """
    step = result.history.step
    return step.reshape(-1, step.shape[-1])[0]


def family_first(array: Shaped[AnyArray, "seeds families *rest"]) -> Shaped[np.ndarray, "families seeds *rest"]:
    """A sweep's (K seeds, F families, ...) array as (F, K, ...): its first two axes swapped.

    Args:
        array: the array, (seeds, families, ...).

    Returns:
        A NumPy view, (families, seeds, ...).
    """
    return np.swapaxes(np.asarray(array), 0, 1)


def shared_mixing(mixing: Float[AnyArray, "*grid n n"], sigma_axis: int) -> Float[np.ndarray, "*rest n n"]:
    """The unscaled M of a sweep whose sigmas (along grid axis ``sigma_axis``) all share their
    seed's M, with that axis dropped; AssertionError if they do not share it.

    Args:
        mixing: the sweep's unscaled M, (*grid, n, n).
        sigma_axis: the grid axis of the sigmas.

    Returns:
        M without that axis, (*rest, n, n).

    Raises:
        AssertionError: if M differs between the sigmas of one seed.
    """
    mixing = np.asarray(mixing)
    first = np.take(mixing, [0], axis=sigma_axis)
    if not np.array_equal(mixing, np.broadcast_to(first, mixing.shape)):
        raise AssertionError("the sweep's M differs between sigmas of one seed")
    return np.take(mixing, 0, axis=sigma_axis)


def stack_fields(records: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """One dict of arrays from dicts with the same names: each name's values stacked on a new leading axis.

    Args:
        records: the dicts (at least one), each with the names of the first.

    Returns:
        ``{name: array}``, each (len(records), ...).
    """
    return {name: np.stack([record[name] for record in records]) for name in records[0]}


def excluding_diverged(arrays: Mapping) -> Mapping:
    """``arrays`` (a sweep's saved arrays) with the L/p (``loss_per_feature*``) and histories
    (``history_*``, but the steps) of diverged models (``diverged_step >= 0``, over the grid's
    leading axes) set to NaN, so that every mean leaves them out; without ``diverged_step``,
    ``arrays`` itself.

    Args:
        arrays: a sweep's saved arrays (:func:`sweep_arrays`), with ``diverged_step`` (*grid) if any.

    Returns:
        A new dict of the arrays, the masked ones replaced (or ``arrays`` itself).
    """
    if "diverged_step" not in arrays:
        return arrays
    diverged = arrays["diverged_step"] >= 0
    masked = dict(arrays)
    for name, value in arrays.items():
        if name.startswith(("loss_per_feature", "history_")) and name != "history_step":
            mask = diverged.reshape(diverged.shape + (1,) * (value.ndim - diverged.ndim))
            masked[name] = np.where(mask, np.nan, value)
    return masked


def curves_at_training_p(curve: LossCurve, n_eval: int, *, sem_at_train_p: bool = True) -> dict[str, np.ndarray]:
    """Split a :func:`~ccjax.measure.loss_curve` of models (T, K, ...) evaluated at ``[*p_eval,
    *p_train]`` (``n_eval`` p_eval's first), where model group t was trained at ``p_train[t]``:
    ``loss_per_feature`` and ``loss_per_feature_sem`` (T, K, n_eval), L/p over p_eval and its
    Monte Carlo SEM, and ``at_train_p`` (T, K), each model's L/p at its own training p (with
    ``at_train_p_sem`` where ``sem_at_train_p``). Used for docs/paper.md §6.1's figure.

    Args:
        curve: the loss curve, its per-model fields (T, K, n_eval + T).
        n_eval: the number of p_eval's, first among the curve's p.
        sem_at_train_p: whether to return ``at_train_p_sem``.

    Returns:
        ``{name: array}``: ``loss_per_feature``, ``loss_per_feature_sem``, ``at_train_p`` (and ``at_train_p_sem``).
    """
    diagonal = np.arange(len(curve.loss_per_feature))
    arrays = {
        "loss_per_feature": curve.loss_per_feature[..., :n_eval],
        "loss_per_feature_sem": curve.sem[..., :n_eval],
        "at_train_p": curve.loss_per_feature[diagonal, :, n_eval + diagonal],
    }
    if sem_at_train_p:
        arrays["at_train_p_sem"] = curve.sem[diagonal, :, n_eval + diagonal]
    return arrays


def curves_at_shared_p(curve: LossCurve, *, at: str = "at_p_train") -> dict[str, Float[np.ndarray, "..."]]:
    """Split a :func:`~ccjax.measure.loss_curve` of models (..., P + 1) all trained at one p and
    evaluated at ``[*p_eval, p_train]`` (the training p last): ``loss_per_feature`` and
    ``loss_per_feature_sem`` (..., P), L/p over p_eval and its Monte Carlo SEM, and ``at`` and
    ``<at>_sem`` (...), each model's L/p at the training p and its SEM (docs/paper.md §6.2).

    Args:
        curve: the loss curve, its per-model fields (..., P + 1).
        at: the name of the L/p at the training p.

    Returns:
        ``{name: array}``: ``loss_per_feature``, ``loss_per_feature_sem``, ``at`` and ``<at>_sem``.
    """
    loss, sem = curve.loss_per_feature, curve.sem
    return {
        "loss_per_feature": loss[..., :-1],
        "loss_per_feature_sem": sem[..., :-1],
        at: loss[..., -1],
        f"{at}_sem": sem[..., -1],
    }
