"""L/p curves over p_eval of models trained at given p's, each marked at its training p."""

import numpy as np
from jaxtyping import Float
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from numpy.typing import ArrayLike

from ._loss import plot_loss_curves


def plot_trained_curves(
    p_eval: Float[np.ndarray, " P"],
    curves: Float[np.ndarray, "C K P"],
    labels,
    trained_at: ArrayLike,
    at_train_p: Float[np.ndarray, "C K"],
    *,
    naive: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure | SubFigure:
    """L/p over ``p_eval`` of C groups of models (mean ± SEM over K seeds, as
    :func:`plot_loss_curves`), with a dot per curve at its training p. The figure of paper
    experiments 1, 2 and 7 (docs/paper.md §6.1).

    Args:
        p_eval: the evaluation probabilities p, (P,), on a log axis.
        curves: L/p of each group's seeds at each p, (C, K, P).
        labels (Sequence[str]): the legend label of each group, (C,).
        trained_at: the training p of the dots: one p for all curves, or one per curve (C,).
        at_train_p: each group's L/p at its training p, (C, K); the dot is at its seed mean.
        naive: the naive model's L/p, drawn as a dashed line (None: no line).
        ax: the axes to draw into; None makes a new figure.
        title: the axes title.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    dots = list(zip(np.broadcast_to(trained_at, len(labels)), at_train_p.mean(axis=1), strict=True))
    return plot_loss_curves(p_eval, curves, labels, dots=dots, naive=naive, ax=ax, title=title)
