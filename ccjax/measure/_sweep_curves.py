"""L/p of the models of a sweep: :func:`sweep_curves` and :func:`evaluate_sweep` evaluate a
:class:`~ccjax.SweepResult` on the task it was trained on."""

from collections.abc import Sequence

import jax
import numpy as np

from ..engine._sweep import SweepResult
from ..problem._keys import seed_key
from ._curves import DEFAULT_REL_SEM, LossCurve, loss_curve
from ._direct import Estimate

__all__ = ["evaluate_sweep", "evaluation_key", "sweep_curves"]

EVAL_SEED = 0x5EED  # key of the evaluation samples (shared by all models; never a training key's stream)


def evaluation_key() -> jax.Array:
    """The default key of :func:`evaluate_sweep` and :func:`sweep_curves`.

    Returns:
        ``fold_in(seed_key(0), EVAL_SEED)``: shared by all models, never a training key's stream.
    """
    return jax.random.fold_in(seed_key(0), EVAL_SEED)


def sweep_curves(
    result: SweepResult, p_values: Sequence[float] | np.ndarray, *, key: jax.Array | None = None, **options
) -> LossCurve:
    """L/p at every p of ``p_values`` for every model of a sweep (grid-shaped fields).

    :func:`ccjax.measure.loss_curve` on the sweep's params and label maps ``s M``, for the
    sweep's task; ``options`` go to it (``rel_sem``, ``devices``, ``on_progress``, ...). Diverged
    models (``result.diverged``) get NaN.

    Args:
        result: the trained sweep, its fields with the grid's axes in front.
        p_values: the feature probabilities to evaluate, (P,).
        key: the key of the evaluation samples (default: :func:`evaluation_key`).
        **options (Any): keyword options of :func:`ccjax.measure.loss_curve` (a ``task`` overrides the sweep's).

    Returns:
        The :class:`~ccjax.LossCurve`, its per-model fields of shape (*grid, P) (``c``: (*grid, n + 1)).
    """
    key = evaluation_key() if key is None else key
    diverged = result.diverged[..., None, None]
    params = jax.tree.map(lambda leaf: np.where(diverged, np.nan, leaf), result.params)  # NaN: excluded
    return loss_curve(params, result.scaled_mixing, p_values, key, **{"task": result.task} | options)


def evaluate_sweep(
    result: SweepResult,
    p: float | None = None,
    *,
    rel_sem: float = DEFAULT_REL_SEM,
    key: jax.Array | None = None,
    **options,
) -> Estimate:
    """L/p of every model of a sweep, at ``p`` (default: each model's training p).

    Uses :func:`sweep_curves` at the distinct p's, to a relative standard error of
    ``rel_sem``.

    Args:
        result: the trained sweep.
        p: the feature probability to evaluate every model at; None: each model's training p
            (the grid's ``p`` axis, else ``result.config.p``).
        rel_sem: the target standard error relative to L/p.
        key: the key of the evaluation samples (default: :func:`evaluation_key`).
        **options (Any): further keyword options of :func:`ccjax.measure.loss_curve`.

    Returns:
        An :class:`~ccjax.measure.Estimate` whose fields have the grid's shape: L/p, its standard error,
        and as both sample counts the exactly-k evaluations behind each value (NaN L/p for diverged models).
    """
    grid, config = result.grid, result.config
    if p is None:
        p_flat = grid.flat("p") if "p" in grid.names else np.full(grid.size, config.p)
    else:
        p_flat = np.full(grid.size, p)
    distinct, column = np.unique(p_flat, return_inverse=True)
    curve = sweep_curves(result, distinct, key=key, rel_sem=rel_sem, **options)

    def pick(array):
        flat = np.asarray(array).reshape(grid.size, len(distinct))
        return flat[np.arange(grid.size), column].reshape(grid.shape)

    evaluations = np.full(grid.shape, curve.n_evaluations)
    return Estimate(pick(curve.loss_per_feature), pick(curve.sem), evaluations, evaluations)
