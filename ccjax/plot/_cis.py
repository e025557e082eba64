"""Figures of the search for computation in superposition (:mod:`ccjax.cis`): each task's
advantage over its naive model against the feature probability p."""

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..measure.statistics import mean_and_sem
from ._loss import _axes

ADVANTAGE_LABEL = "(naive - trained) / naive"


def _advantage_axes(ax: Axes, title: str, ylabel: str = ADVANTAGE_LABEL, **title_style) -> None:
    ax.axhline(0, color="k", linewidth=0.8)
    ax.set(xscale="log", xlabel="feature probability p", ylabel=ylabel)
    ax.set_title(title, **title_style)


def plot_advantage(ps, d_ratios, advantage, *, built=None, title: str = "", ax: Axes | None = None) -> Figure:
    """One task's advantage over naive, ``(naive - trained) / naive``, against p (log axis): the
    mean over seeds with a +- SEM band, one line per d/n (the search of docs/paper.md §7), and its
    built reference's advantage as a dashed line of the same colour.

    Args:
        ps (ArrayLike): the feature probabilities p, (P,).
        d_ratios (ArrayLike): the width ratios d/n, (D,), one line each.
        advantage (ArrayLike): the advantage (a fraction of the naive loss; > 0: better than
            naive), (D, seeds, P); non-finite seeds are left out.
        built (ArrayLike | None): the built reference's advantage (:func:`ccjax.cis.choose_built`), the
            same shape (equal over seeds: one built model per p); None or all NaN (a task without a
            builder): no dashed line.
        title: the axes title.
        ax: the axes to draw into; None makes a new 6 x 4 inch figure.

    Returns:
        The figure of the axes drawn into.
    """
    ax = _axes(ax, figsize=(6, 4))
    mean, sem = mean_and_sem(advantage, axis=1)
    reference = None if built is None or not np.isfinite(built).any() else np.nanmean(built, axis=1)
    for d, ratio in enumerate(d_ratios):
        line = ax.plot(ps, mean[d], marker="o", label=f"trained, d/n = {ratio:g}")[0]
        ax.fill_between(ps, mean[d] - sem[d], mean[d] + sem[d], color=line.get_color(), alpha=0.25)
        if reference is not None:
            style = {"color": line.get_color(), "linestyle": "--", "marker": "x"}
            ax.plot(ps, reference[d], label=f"built reference, d/n = {ratio:g}", **style)
    _advantage_axes(ax, title, fontsize=10)
    ax.legend()
    return ax.figure


def plot_advantage_by_ratio(ps, d_ratios, tasks: Sequence[str] | np.ndarray, advantage, built=None) -> Figure:
    """Every task's advantage over naive against p, mean +- SEM over seeds, one panel per d/n
    (the search of docs/paper.md §7); with ``built``, a second row of panels: trained minus built
    advantage, mean +- SEM over seeds (paired), for the tasks that have a built reference.

    Args:
        ps (ArrayLike): the feature probabilities p, (P,), on a log axis.
        d_ratios (ArrayLike): the width ratios d/n, (D,), one panel each.
        tasks: the task names, (T,), one line each.
        advantage (ArrayLike): ``(naive - trained) / naive`` of each task, (T, D, seeds, P).
        built (ArrayLike | None): the built references' advantage, the same shape (NaN: no builder);
            None: one row.

    Returns:
        The new figure, one or two rows of D panels.
    """
    rows = 1 if built is None else 2
    size = (6 * len(d_ratios), 4.2 * rows)
    fig, axes = plt.subplots(rows, len(d_ratios), figsize=size, layout="constrained", squeeze=False, sharex=True)
    _task_lines(axes[0], ps, tasks, advantage, "every task, d/n = {:g}", d_ratios)
    if built is not None:
        has_built = np.isfinite(built).all(axis=(1, 2, 3))
        margin = (np.asarray(advantage) - np.asarray(built))[has_built]
        title = "trained - built advantage, d/n = {:g}"
        _task_lines(axes[1], ps, np.asarray(tasks)[has_built], margin, title, d_ratios, "trained - built advantage")
    return fig


def _task_lines(axes, ps, tasks, values, title: str, d_ratios, ylabel: str = ADVANTAGE_LABEL) -> None:
    """One panel per d/n of ``values`` (tasks, d/n, seeds, p), titled ``title.format(d/n)``: a line per
    task, mean +- SEM over seeds."""
    mean, sem = mean_and_sem(values, axis=2)
    for d, ax in enumerate(axes):
        for t, task in enumerate(tasks):
            ax.errorbar(ps, mean[t, d], sem[t, d], marker="o", capsize=3, label=task)
        _advantage_axes(ax, title.format(d_ratios[d]), ylabel=ylabel)
    axes[0].legend(fontsize=8)
