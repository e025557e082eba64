"""The rank-of-M figure (docs/paper.md §6.8): L/p, the learned |s| and the size of the label
mixing against the effective rank of M, and |s| during training."""

from collections.abc import Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..measure.analysis import relative_to_final
from ..measure.statistics import finite_mean, mean_and_sem
from ..problem import MIXING_FAMILIES
from ._loss import NAIVE_STYLE, _axes

RANK_PANELS = (  # (field of RankModels, y label, title) of the panels against the effective rank of M
    ("loss", "L/p on exactly-one data (exact)", "L/p against the rank of M"),
    ("scale", "learned |scale|", "learned mixing scale"),
    ("mixing_rms", "RMS entry of s M  (|s| ||M||_F / n)", "size of the learned label mixing"),
)
HISTORY_STYLES = ("-", "--", ":", "-.")  # line style per family in the |s| history panel


class RankModels(NamedTuple):
    """What the rank figure (docs/paper.md §6.8) draws of each model: arrays of shape (families,
    seeds, ranks) for a family sweep, (seeds,) for a single point (T more for the history).

    Attributes:
        effective_rank: the effective rank of the unscaled M (exp of the entropy of its
            normalised singular values).
        loss: L/p on exactly-one data.
        scale: the learned |s| at the end of training.
        mixing_rms: the RMS entry of |s| M (|s| ||M||_F / n).
        naive_loss: L/p of the naive model on the model's (mixed) labels.
        scale_history: |s| at each logged step (trailing axis T).
    """

    effective_rank: np.ndarray  # of the unscaled M
    loss: np.ndarray  # L/p
    scale: np.ndarray  # the learned |s| at the end
    mixing_rms: np.ndarray  # RMS entry of |s| M
    naive_loss: np.ndarray  # L/p of the naive model on the model's labels
    scale_history: np.ndarray  # |s| at each logged step (trailing axis T)


def _full_rank_point(ax: Axes, effective_rank, values, label: str, *, error_bar: bool) -> None:
    """A single M's seeds as squares and their mean (+- SEM with ``error_bar``)."""
    ax.scatter(effective_rank, values, s=14, marker="s", color="C3", alpha=0.35, linewidths=0)
    mean, sem = mean_and_sem(values)
    yerr = sem if error_bar and np.isfinite(sem) else None
    ax.errorbar(effective_rank.mean(), mean, yerr=yerr, fmt="s", ms=6, color="C3", label=label)


def _rank_panel(ax: Axes, effective_rank, values, labels: Sequence[str], naive=None, full=None) -> None:
    """``values`` (families, seeds, ranks) against the effective rank of M, one colour per family
    (``labels``): each seed's points and the seed means. ``naive`` = (the naive model's L/p on each
    model's labels, same shape; its L/p on clean labels) adds a dotted seed-mean line per family
    and a dashed line, a +- SEM band on the means and a y range that keeps the models and the clean
    naive line in view; ``full`` = (effective ranks, values, label), each (seeds,), a single M's point."""
    for f, label in enumerate(labels):
        effective, family_values, color = effective_rank[f], values[f], f"C{f}"
        ax.scatter(effective.ravel(), family_values.ravel(), s=10, color=color, alpha=0.35, linewidths=0)
        x, (mean, sem) = finite_mean(effective), mean_and_sem(family_values)
        line = ax.plot(x, mean, "o-", ms=4, color=color, label=label)[0]
        if naive is not None:  # the L/p panel: a band, and the naive model on these labels (log panels: neither)
            if np.all(np.isfinite(sem)):
                ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=0.2, linewidth=0)
            ax.plot(x, finite_mean(naive[0][f]), ls=":", lw=1.2, color=color, label="naive model on these labels")
    if full is not None:
        _full_rank_point(ax, *full, error_bar=naive is not None)
    if naive is not None:  # the naive model on mixed labels may lie far above: keep clean naive and the models
        clean = naive[1]
        ax.axhline(clean, **NAIVE_STYLE, label=f"naive, clean labels ({clean:.4f})", zorder=1)
        shown = np.concatenate([np.ravel(values), *([full[1]] if full is not None else [])])
        ax.set_ylim(min(float(shown.min()), clean) - 0.003, max(float(shown.max()), clean) + 0.01)


def plot_scale_histories(
    steps, scale_history, ranks, families: Sequence[str], *, full_history=None, ax: Axes | None = None
) -> Figure:
    """The learned |s| over training over its final value (seed mean), one line per (family, rank):
    colour by rank, line style by family (:data:`HISTORY_STYLES`); docs/paper.md §6.8.

    Args:
        steps (ArrayLike): the logged training steps, (T,).
        scale_history (ArrayLike): the learned |s| at each step, (families, seeds, ranks, T).
        ranks (ArrayLike): the ranks of M, (ranks,), in the legend.
        families: the mixing family names, (families,), in the title's key of line styles.
        full_history (ArrayLike | None): a single (full-rank) M's |s|, (seeds, T), drawn as one
            more line (None: none).
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure of the axes drawn into.
    """
    ax = _axes(ax)
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(ranks)))

    def relative(history):  # (K, ..., T) -> seed mean of |s| / final |s|
        return np.nanmean(relative_to_final(history), axis=0)

    styles = [HISTORY_STYLES[f % len(HISTORY_STYLES)] for f in range(len(families))]
    for f, style in enumerate(styles):
        for r, (rank, mean) in enumerate(zip(ranks, relative(scale_history[f]), strict=True)):
            ax.plot(steps, mean, ls=style, color=colors[r], lw=1.2, label=f"r = {rank}" if f == 0 else None)
    if full_history is not None:
        ax.plot(steps, relative(full_history), color="C3", lw=1.5, label="full rank")
    ax.axhline(1.0, color="0.6", lw=0.8)
    key = ", ".join(f"{style} {family}" for style, family in zip(styles, families, strict=True))
    title = f"learned scale during training ({key})"
    ax.set(xlabel="training step", ylabel="|scale| / final |scale|", title=title, ylim=(0, 1.5))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    return ax.figure


def plot_rank_sweep(
    ranks,
    steps,
    families: Sequence[str],
    models: RankModels,
    *,
    naive: float,
    full: RankModels | None = None,
    full_label: str = "full rank",
    title: str = "",
) -> Figure:
    """The rank-of-M figure (§6.8): :data:`RANK_PANELS` against the effective rank of M (L/p with
    the naive lines and +- SEM; |s| and rms(s M) on log axes) and :func:`plot_scale_histories`.

    Args:
        ranks (ArrayLike): the ranks of M, (ranks,).
        steps (ArrayLike): the logged training steps, (T,).
        families: mixing family names (:data:`ccjax.MIXING_FAMILIES`, their labels in the legend).
        models: the family sweep, each field (families, seeds, ranks) (+ (T,) for the history).
        naive: the naive model's L/p on clean labels (a dashed line in the L/p panel).
        full: a single M's seeds (each field (seeds,)), drawn as squares (None: none).
        full_label: the legend label of ``full``.
        title: the figure's title.

    Returns:
        The new 2 x 2 figure.
    """
    labels = [MIXING_FAMILIES[family].label for family in families]
    fig, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    axes = [grid[0, 0], grid[0, 1], grid[1, 0]]
    for i, (ax, (name, ylabel, panel_title)) in enumerate(zip(axes, RANK_PANELS, strict=True)):
        point = (full.effective_rank, getattr(full, name), full_label) if full is not None else None
        naive_lines = (models.naive_loss, naive) if i == 0 else None
        _rank_panel(ax, models.effective_rank, getattr(models, name), labels, naive_lines, point)
        ax.set(xscale="log", xlabel="effective rank of M", ylabel=ylabel, title=panel_title)
        ax.grid(True, alpha=0.3)
    for ax in axes[1:]:
        ax.set_yscale("log")
    axes[0].legend(fontsize=8)
    full_history = full.scale_history if full is not None else None
    plot_scale_histories(steps, models.scale_history, ranks, families, full_history=full_history, ax=grid[1, 1])
    fig.suptitle(title)
    return fig
