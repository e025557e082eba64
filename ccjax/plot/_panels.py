"""Multi-panel figures from explicit arrays: the semi-NMF baseline per mixing family (§6.6)."""

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .._types import Float
from ._mechanisms import plot_baseline_sweep


def plot_baseline_sweeps(
    sigmas: Float[np.ndarray, " sigmas"],
    snmf_loss: Float[np.ndarray, "families seeds sigmas orientations"],
    references: Sequence[Mapping[str, Float[np.ndarray, "seeds sigmas"]]],
    titles: Sequence[str],
    published: Sequence[Mapping[float, float] | None],
    *,
    naive: float,
    ylim: tuple[float, float],
    title: str,
) -> Figure:
    """Paper experiment 6 (§6.6): one :func:`plot_baseline_sweep` panel per mixing family, side
    by side with a shared y axis (limits ``ylim``, L/p on exactly-one data): family f's semi-NMF
    L/p ``snmf_loss[f]``, its ``references[f]`` and ``published[f]`` (None: no paper values)."""
    size = (6.4 * len(titles), 4.8)
    fig, axes = plt.subplots(1, len(titles), figsize=size, layout="constrained", sharey=True, squeeze=False)
    panels = zip(snmf_loss, references, titles, published, axes[0], strict=True)
    for loss, lines, panel_title, paper, ax in panels:
        plot_baseline_sweep(sigmas, loss, lines, naive=naive, published=paper, title=panel_title, ax=ax)
    axes[0, 0].set_ylabel("L/p on exactly-one data (exact)")
    axes[0, 0].set_ylim(*ylim)
    fig.suptitle(title)
    return fig
