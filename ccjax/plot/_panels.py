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
    by side with a shared y axis (L/p on exactly-one data).

    Args:
        sigmas: the mixing magnitudes sigma, (sigmas,).
        snmf_loss: the semi-NMF baseline's L/p, (families, seeds, sigmas, orientations); family
            f's panel draws ``snmf_loss[f]``.
        references: per family, its :func:`plot_baseline_sweep` reference lines (name -> L/p,
            (seeds, sigmas)).
        titles: the panel title of each family; their number sets the number of panels.
        published: per family, the paper's L/p by sigma (None: no paper values).
        naive: the naive model's L/p on clean labels, in every panel.
        ylim: the shared y limits (low, high), in L/p.
        title: the figure's title.

    Returns:
        The new figure, one row of panels.
    """
    size = (6.4 * len(titles), 4.8)
    fig, axes = plt.subplots(1, len(titles), figsize=size, layout="constrained", sharey=True, squeeze=False)
    panels = zip(snmf_loss, references, titles, published, axes[0], strict=True)
    for loss, lines, panel_title, paper, ax in panels:
        plot_baseline_sweep(sigmas, loss, lines, naive=naive, published=paper, title=panel_title, ax=ax)
    axes[0, 0].set_ylabel("L/p on exactly-one data (exact)")
    axes[0, 0].set_ylim(*ylim)
    fig.suptitle(title)
    return fig
