"""The figure of the mixing-scale sweep (docs/paper.md §2): L/p, its split into the ReLU and the
mixing term, and the training L/p, over the scale s of the labels relu(x) + s M x."""

import numpy as np
from jaxtyping import Real
from matplotlib.figure import Figure

from ._sweeps import plot_sweep_overview


def plot_mixing_scale_sweep(
    scales: Real[np.ndarray, " scales"],
    loss_per_feature: Real[np.ndarray, "seeds scales"],
    step: Real[np.ndarray, " n_logs"],
    train_loss_per_feature: Real[np.ndarray, "seeds scales n_logs"],
    terms: tuple[Real[np.ndarray, "seeds scales"], Real[np.ndarray, "seeds scales"]],
    *,
    naive: float,
    p: float,
    tail_fraction: float,
    title: str | None = None,
) -> Figure:
    """:func:`plot_sweep_overview` over the mixing scale s of the labels relu(x) + s M x (docs/paper.md §2, §3).

    The training L/p is on a log axis with decimal ticks, which shows the early transient and
    the converged values together.

    Args:
        scales: the mixing scales s, (scales,).
        loss_per_feature: L/p at the evaluation ``p`` of each seed and scale, (seeds, scales).
        step: the logged training steps, (n_logs,).
        train_loss_per_feature: the training L/p of each seed and scale, (seeds, scales, n_logs).
        terms: the (ReLU term, mixing term) split of the training L/p over its last
            ``tail_fraction`` (:func:`~ccjax.measure.tail_loss_terms`), each (seeds, scales), in L/p.
        naive: the naive model's L/p, drawn as a dashed line.
        p: the evaluation p (in the first panel's title).
        tail_fraction: the fraction of training that ``terms`` averages (in its panel's title).
        title: the figure's title (None: none).

    Returns:
        The new figure of three panels.
    """
    return plot_sweep_overview(
        scales,
        loss_per_feature,
        step,
        train_loss_per_feature,
        naive=naive,
        x_name="s",
        xlabel="mixing scale s (labels relu(x) + s·M x)",
        loss_title=f"loss per feature at p = {p:g}",
        terms=terms,
        terms_title=f"L/p = ReLU term + mixing term (last {tail_fraction:.0%} of training)",
        history_ylabel="training L/p",
        decimal_ticks=True,
        title=title,
    )
