"""Sweep figures: L/p and training over one swept setting, curves' dips below the naive line
(the σ-sweep's minimum and crossing, against the published ones), the optimal offset, and
one model's responses."""

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import Real
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FormatStrFormatter

from ..measure import feature_response, neuron_contributions, one_hot_response
from ..measure.statistics import mean_and_sem
from ..problem import FeatureMLP
from ._loss import (
    NAIVE_STYLE,
    _axes,
    plot_history,
    plot_loss_terms,
    plot_neuron_bars,
    plot_one_hot_heatmaps,
    plot_response_curves,
    plot_scale_sweep,
)


def plot_sweep_overview(
    x: Real[np.ndarray, " points"],
    loss_per_feature: Real[np.ndarray, "seeds points"],
    step: Real[np.ndarray, " n_logs"],
    train_loss_per_feature: Real[np.ndarray, "seeds points n_logs"],
    *,
    naive: float,
    x_name: str,
    xlabel: str,
    loss_title: str,
    terms: tuple[Real[np.ndarray, "seeds points"], Real[np.ndarray, "seeds points"]] | None = None,
    terms_title: str | None = None,
    history_ylabel: str = "loss per feature L/p",
    log_x: bool = False,
    decimal_ticks: bool = False,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """A sweep over one setting ``x`` (a mixing scale, a learning rate) in a row of panels.

    Args:
        x: the swept values, (points,).
        loss_per_feature: L/p of each seed and point, (seeds, points): :func:`plot_scale_sweep`.
        step: the logged training steps, (n_logs,).
        train_loss_per_feature: training L/p, (seeds, points, n_logs): :func:`plot_history`, log y axis.
        naive: the naive model's L/p, a dashed line in the L/p and training panels.
        x_name: the name of ``x`` in the training panel's legend (``"<x_name> = <x>"``).
        xlabel: the x label of the L/p and terms panels.
        loss_title: the title of the L/p panel.
        terms: the (ReLU term, mixing term) split, each (seeds, points) in L/p: :func:`plot_loss_terms`.
        terms_title: the title of the terms panel.
        history_ylabel: the y label of the training panel.
        log_x: put the L/p panel on a log x axis.
        decimal_ticks: plain decimal tick labels (0.08, not 8 x 10^-2) on the training panel.
        figsize: (width, height) in inches; None: 12 x 4.5 for two panels, 16 x 4.6 for three.
        title: the figure's title (None: none).

    Returns:
        The new figure: L/p, the terms (with ``terms``), the training L/p.
    """
    fig, axes = _panel_row(2 if terms is None else 3, figsize)
    plot_scale_sweep(x, loss_per_feature, naive=naive, title=loss_title, xlabel=xlabel, ax=axes[0])
    if log_x:
        axes[0].set_xscale("log")
    if terms is not None:
        plot_loss_terms(x, *terms, title=terms_title, xlabel=xlabel, ax=axes[1])
    _history_panel(axes[-1], x, x_name, step, train_loss_per_feature, naive, history_ylabel, decimal_ticks)
    if title is not None:
        fig.suptitle(title)
    return fig


def _panel_row(n_panels: int, figsize: tuple[float, float] | None):
    """A figure of ``n_panels`` side by side: ``figsize``, else 12 x 4.5 inches for two, 16 x 4.6 for three."""
    figsize = figsize or {2: (12, 4.5), 3: (16, 4.6)}[n_panels]
    return plt.subplots(1, n_panels, figsize=figsize, layout="constrained")


def _history_panel(
    ax: Axes, x, x_name: str, step, train_loss_per_feature, naive: float, ylabel: str, decimal_ticks: bool
) -> None:
    """:func:`plot_sweep_overview`'s last panel: the training L/p of each point on a log y axis."""
    curves = {f"{x_name} = {value:g}": train_loss_per_feature[:, j] for j, value in enumerate(x)}
    title_history = "training loss (mean over seeds)"
    plot_history(step, curves, naive=naive, title=title_history, ylabel=ylabel, ax=ax)
    ax.set_yscale("log")
    if decimal_ticks:  # over a narrow range, 0.08 reads better than 8 x 10^-2
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))


def plot_dip(
    x: Real[np.ndarray, " points"],
    values: Real[np.ndarray, "seeds points"],
    stats: Mapping[str, float],
    *,
    name: str,
    label: str,
    x_name: str = "x",
    color=None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """A curve's dip below its level (the σ-sweep's L/p against the naive line, paper §6.3): every
    seed as a dot, the seed mean with a ±SEM band, the minimum as a star and the crossing back
    through the level as a diamond (none when NaN), each with error bars of its bootstrap SD
    (none when NaN).

    Args:
        x: the grid, (points,) (e.g. sigma).
        values: the curve of each seed, (seeds, points) (e.g. L/p).
        stats: the curve's :func:`~ccjax.measure.statistics.dip_statistics`.
        name: the curve's name in the marks' legend ("symmetric: minimum 0.0650 at sigma 0.0320").
        label: the mean's legend label (``"<label> (mean +- SEM)"``).
        x_name: the name of x in the marks' legend.
        color (str | None): the colour of everything drawn (None: the axes' next colour for the
            mean line, matplotlib's defaults elsewhere).
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    ax.plot(np.broadcast_to(x, values.shape).ravel(), values.ravel(), ".", color=color, alpha=0.25, ms=3)
    mean, sem = mean_and_sem(values)
    line = ax.plot(x, mean, "o-", ms=3, color=color, label=f"{label} (mean +- SEM)")[0]
    if np.all(np.isfinite(sem)):
        ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=0.25, linewidth=0)
    se = {
        key: stats[f"{key}_se"] if math.isfinite(stats[f"{key}_se"]) else None
        for key in ("min_x", "min_value", "crossing")
    }
    marker = {"color": color, "mec": "k", "mew": 0.6, "capsize": 3, "zorder": 4}
    at, value, crossing = stats["min_x"], stats["min_value"], stats["crossing"]
    label = f"{name}: minimum {value:.4f} at {x_name} {at:.4f}"
    ax.errorbar(at, value, xerr=se["min_x"], yerr=se["min_value"], fmt="*", ms=12, label=label, **marker)
    if math.isfinite(crossing):
        label = f"{name}: crosses naive at {x_name} {crossing:.4f}"
        ax.errorbar(crossing, stats["level"], xerr=se["crossing"], fmt="D", ms=6, label=label, **marker)
    return ax.figure


def plot_reference_dip(
    x_range: tuple[float, float],
    minimum: float,
    crossing: float,
    level: float,
    *,
    label: str,
    color=None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """A published dip for comparison with :func:`plot_dip` (e.g. the paper's σ sweep, §6.3).

    Args:
        x_range: (low, high), where the minimum lies: a horizontal bar.
        minimum: the minimum's value, marked with an x at the middle of ``x_range``.
        crossing: the x where the curve crosses ``level`` again, marked with an x on it.
        level: the level (e.g. the naive L/p).
        label: the legend label.
        color (str | None): the marks' colour (None: matplotlib's default).
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    (low, high), cross = x_range, {"ms": 8, "mew": 1.5, "color": color, "alpha": 0.7, "zorder": 3}
    ax.errorbar((low + high) / 2, minimum, xerr=(high - low) / 2, fmt="x", capsize=4, label=label, **cross)
    ax.plot([crossing], [level], "x", **cross)
    return ax.figure


class ReferenceDip(NamedTuple):
    """A published dip for :func:`plot_dips` (e.g. the paper's σ sweep, docs/paper.md §6.3).

    Attributes:
        x_range: (low, high), the x range where its minimum lies.
        minimum: the minimum's value.
        crossing: the x where the curve crosses the level again.
    """

    x_range: tuple[float, float]
    minimum: float
    crossing: float


def plot_dips(
    x: Real[np.ndarray, " points"],
    values: Real[np.ndarray, "curves seeds points"],
    stats: Sequence[Mapping[str, float]],
    references: Sequence[ReferenceDip],
    *,
    names: Sequence[str],
    labels: Sequence[str],
    colors: Sequence,
    level: float,
    level_label: str,
    x_name: str = "x",
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
) -> Figure:
    """Several curves' dips below ``level`` with the published ones (the σ-sweep's figure, §6.3).

    Args:
        x: the grid, (points,).
        values: the curves, (curves, seeds, points): :func:`plot_dip` of each ``values[c]``.
        stats: each curve's :func:`~ccjax.measure.statistics.dip_statistics`.
        references: each curve's published dip: :func:`plot_reference_dip` in the curve's colour.
        names: each curve's name in the legend (also "paper, <name>: minimum ~<minimum> at ...").
        labels: each curve's legend label of its mean.
        colors: each curve's colour.
        level: the level the curves dip below, drawn as a dashed line.
        level_label: the level's legend label.
        x_name: the name of x in the legend.
        xlabel: the x axis label.
        ylabel: the y axis label.
        title: the axes title.

    Returns:
        The new 8 x 5.4 inch figure, with a grid and the legend.
    """
    fig, ax = plt.subplots(figsize=(8.0, 5.4), layout="constrained")
    for curve, stat, reference, name, label, color in zip(
        values, stats, references, names, labels, colors, strict=True
    ):
        plot_dip(x, curve, stat, name=name, label=label, x_name=x_name, color=color, ax=ax)
        (low, high), minimum = reference.x_range, reference.minimum
        label = f"paper, {name}: minimum ~{minimum} at {x_name} {low}-{high}"
        plot_reference_dip((low, high), minimum, reference.crossing, level, label=label, color=color, ax=ax)
    ax.axhline(level, **NAIVE_STYLE, label=level_label, zorder=1)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7.5)
    return fig


def plot_optimal_offset(
    p: Real[np.ndarray, " points"],
    best_offset: Real[np.ndarray, " points"],
    best_offset_loss: Real[np.ndarray, " points"],
    *,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """The best offset b*(p) of the naive + offset model against p (log x, black) and, on a twin
    axis, its L/p (red, dashed): paper §5's dense-regime baseline, in closed form.

    Args:
        p: the feature probabilities, (points,).
        best_offset: b*(p), (points,).
        best_offset_loss: L/p of naive + b*(p), (points,).
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    ax.plot(p, best_offset, color="k")
    ax.set(xscale="log", xlabel="feature probability p", ylabel="best offset b*(p)", title="optimal offset (exact)")
    twin = ax.twinx()
    twin.plot(p, best_offset_loss, color="tab:red", linestyle="--")
    twin.set_ylabel("L/p of naive + b*(p)", color="tab:red")
    return ax.figure


def plot_model_responses(
    w_in: Real[np.ndarray, "n_features d_mlp"],
    w_out: Real[np.ndarray, "d_mlp n_features"],
    values: Real[np.ndarray, " values"],
    *,
    fig: Figure | SubFigure | None = None,
    title: str | None = None,
) -> Figure | SubFigure:
    """One model's responses in a row (paper experiment 1, docs/paper.md §6): each feature's
    output for inputs ``values`` on it (:func:`plot_response_curves`), the per-neuron
    ``W_out * W_in`` bars (:func:`plot_neuron_bars`) and the one-hot response heatmaps
    (:func:`plot_one_hot_heatmaps`).

    Args:
        w_in: the model's input weights, (n_features, d_mlp).
        w_out: the model's output weights, (d_mlp, n_features).
        values: the input values v of the response curves, (values,).
        fig: an empty figure or subfigure that receives the three subfigures; None makes a new figure.
        title: the title above them all (None: none).

    Returns:
        The figure (or subfigure) drawn into.
    """
    if fig is None:
        fig = plt.figure(figsize=(20, 4.75), layout="constrained")
    params = FeatureMLP(w_in, w_out)
    left, middle, right = fig.subfigures(1, 3, width_ratios=[1, 1, 1.6])
    # Measured arrays stay temporaries: held in variables, they made the PNG bytes (not the picture) vary by run.
    plot_response_curves(
        values, np.asarray(feature_response(params, values)), ax=left.subplots(), title="output j for input v e_j"
    )
    plot_neuron_bars(np.asarray(neuron_contributions(params)), ax=middle.subplots(), title="W_out * W_in per neuron")
    plot_one_hot_heatmaps(
        np.asarray(one_hot_response(params, 1.0)),
        np.asarray(one_hot_response(params, -1.0)),
        fig=right,
        title="response to +e_i (left) and -e_i (right)",
    )
    if title is not None:
        fig.suptitle(title)
    return fig
