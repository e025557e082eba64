"""The figure of the σ sweep (docs/paper.md §6.3): each Gaussian mixing family's L/p at one p
against the mixing magnitude sigma of the labels relu(x) + sigma M x, its dip below the naive
line, and the dip the paper's figure shows."""

from collections.abc import Mapping

import numpy as np
from jaxtyping import Real
from matplotlib.figure import Figure

from ..problem import MIXING_FAMILIES
from ._sweeps import ReferenceDip, plot_dips

SIGMA_SWEEP_COLORS = {"symmetric": "C2", "asymmetric": "C3"}  # the paper's: green symmetric, red asymmetric


def plot_sigma_sweep(
    sigmas: Real[np.ndarray, " sigmas"],
    loss_per_feature: Real[np.ndarray, "families seeds sigmas"],
    stats: Mapping[str, Mapping[str, float]],
    published: Mapping[str, Mapping],
    *,
    naive: float,
    p: float,
    title: str | None = None,
) -> Figure:
    """:func:`plot_dips` over sigma of each Gaussian mixing family (docs/paper.md §6.3).

    Per family: L/p of every seed (dots) and their mean +- SEM; the minimum (star) and the
    naive-line crossing (diamond) with their bootstrap SD error bars; the paper's minimum, with
    its sigma range, and crossing (x). Each family in the paper's colour (:data:`SIGMA_SWEEP_COLORS`).

    Args:
        sigmas: the mixing magnitudes sigma, (sigmas,).
        loss_per_feature: L/p, (families, seeds, sigmas), rows in the order of the keys of ``stats``.
        stats: family name -> its :func:`~ccjax.measure.statistics.dip_statistics`; the keys pick
            the families (each a key of :data:`SIGMA_SWEEP_COLORS`).
        published: family name -> the paper's dip: ``argmin`` (low, high), ``min_value``, ``crossing``.
        naive: the naive model's L/p, the level of the dips.
        p: the evaluation p (in the y label).
        title: the figure's title (None: none).

    Returns:
        The new figure.
    """
    families = list(stats)
    return plot_dips(
        sigmas,
        loss_per_feature,
        list(stats.values()),
        [ReferenceDip(published[f]["argmin"], published[f]["min_value"], published[f]["crossing"]) for f in families],
        names=families,
        labels=[MIXING_FAMILIES[family].label for family in families],
        colors=[SIGMA_SWEEP_COLORS[family] for family in families],
        level=naive,
        level_label=f"naive ({naive:.4f}); x on it: paper's crossings",
        x_name="sigma",
        xlabel="mixing magnitude sigma",
        ylabel=f"loss per feature L/p at p = {p:g}",
        title=title,
    )
