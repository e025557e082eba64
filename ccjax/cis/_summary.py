"""The search's statistics: each model's advantage over naive, and the cells where a task
beats naive by more than its standard error over seeds allows."""

import numpy as np


def naive_reference(arrays: dict) -> np.ndarray:
    """Each model's naive loss: the closed form where the task has one, else Monte Carlo."""
    closed = arrays["naive_closed_form"]
    return np.where(np.isfinite(closed), closed, arrays["naive_mc"])


def advantage(loss: np.ndarray | float, naive: np.ndarray | float) -> np.ndarray | float:
    """``(naive - trained) / naive`` per model: > 0 where training beat the naive model."""
    return (naive - loss) / naive


def positive_cells(mean: np.ndarray, sem: np.ndarray, sigmas: float = 2.0) -> np.ndarray:
    """Where the advantage is positive by more than ``sigmas`` standard errors."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(sem) & (mean - sigmas * sem > 0)
