"""Each model's advantage over its naive model, and the cells where a task beats naive by more
than its standard error over seeds allows."""

import numpy as np


def naive_reference(arrays: dict) -> np.ndarray:
    """Each model's naive loss: the closed form where the task has one, else Monte Carlo.

    Args:
        arrays: Arrays named as :func:`search_grid`'s, with at least ``naive_closed_form`` (NaN where
            there is none) and ``naive_mc``, of equal shape.

    Returns:
        The naive loss L (not L/p) of each model, of that shape.
    """
    closed = arrays["naive_closed_form"]
    return np.where(np.isfinite(closed), closed, arrays["naive_mc"])


def advantage(loss: np.ndarray | float, naive: np.ndarray | float) -> np.ndarray | float:
    """``(naive - trained) / naive`` per model: > 0 where training beat the naive model.

    Args:
        loss: The trained models' loss (e.g. L), a float or an array.
        naive: The naive model's loss in the same units, broadcastable against ``loss``.

    Returns:
        The relative advantage (dimensionless; 1: a perfect model, 0: as good as naive), broadcast.
    """
    return (naive - loss) / naive


def positive_cells(mean: np.ndarray, sem: np.ndarray, sigmas: float = 2.0) -> np.ndarray:
    """Where the advantage is positive by more than ``sigmas`` standard errors.

    Args:
        mean: The advantage's mean over seeds, any shape.
        sem: Its standard error, same shape (NaN, e.g. for one seed, is never positive).
        sigmas: How many standard errors the mean must exceed 0 by (default 2).

    Returns:
        A boolean array of that shape: ``mean - sigmas * sem > 0`` where ``sem`` is finite.
    """
    with np.errstate(invalid="ignore"):
        return np.isfinite(sem) & (mean - sigmas * sem > 0)
