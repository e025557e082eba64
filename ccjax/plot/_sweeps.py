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
    """A sweep over one setting ``x`` (a mixing scale, a learning rate) in a row of panels:
    :func:`plot_scale_sweep` of L/p (``loss_per_feature``, seeds x points), with ``terms``
    the (ReLU term, mixing term) split (each seeds x points, L/p) in :func:`plot_loss_terms`,
    and the training L/p (seeds x points x n_logs over ``step``) of each point, labelled
    ``"<x_name> = <x>"``, in :func:`plot_history` on a log y axis (``decimal_ticks``: plain
    decimal tick labels). ``log_x`` puts the first panel on a log x axis; ``figsize`` defaults to
    12 x 4.5 inches for two panels, 16 x 4.6 for three."""
    n_panels = 2 if terms is None else 3
    figsize = figsize or {2: (12, 4.5), 3: (16, 4.6)}[n_panels]
    fig, axes = plt.subplots(1, n_panels, figsize=figsize, layout="constrained")
    plot_scale_sweep(x, loss_per_feature, naive=naive, title=loss_title, xlabel=xlabel, ax=axes[0])
    if log_x:
        axes[0].set_xscale("log")
    if terms is not None:
        plot_loss_terms(x, *terms, title=terms_title, xlabel=xlabel, ax=axes[1])
    curves = {f"{x_name} = {value:g}": train_loss_per_feature[:, j] for j, value in enumerate(x)}
    title_history = "training loss (mean over seeds)"
    plot_history(step, curves, naive=naive, title=title_history, ylabel=history_ylabel, ax=axes[-1])
    axes[-1].set_yscale("log")
    if decimal_ticks:  # over a narrow range, 0.08 reads better than 8 x 10^-2
        axes[-1].yaxis.set_major_formatter(FormatStrFormatter("%.2f"))
        axes[-1].yaxis.set_minor_formatter(FormatStrFormatter("%.2f"))
    if title is not None:
        fig.suptitle(title)
    return fig


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
    """A curve's dip below its level (the σ-sweep's L/p against the naive line, paper §6.3), with
    ``stats`` its :func:`~ccjax.measure.statistics.dip_statistics`: every seed of ``values`` as a
    dot, the seed mean with a ±SEM band (legend: ``"<label> (mean +- SEM)"``), the minimum as a star
    and the crossing back through the level as a diamond (none when NaN), each with error bars of its
    bootstrap SD (none when NaN). ``name`` and ``x_name`` word the legend ("symmetric: minimum
    0.0650 at sigma 0.0320")."""
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
    """A published dip for comparison with :func:`plot_dip`: its ``minimum`` value as an x with a
    horizontal bar over ``x_range`` (where it lies), and its ``crossing`` of ``level`` as an x."""
    ax = _axes(ax)
    (low, high), cross = x_range, {"ms": 8, "mew": 1.5, "color": color, "alpha": 0.7, "zorder": 3}
    ax.errorbar((low + high) / 2, minimum, xerr=(high - low) / 2, fmt="x", capsize=4, label=label, **cross)
    ax.plot([crossing], [level], "x", **cross)
    return ax.figure


class ReferenceDip(NamedTuple):
    """A published dip for :func:`plot_dips`: the x range where its minimum lies, the minimum's
    value, and where the curve crosses the level again."""

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

    For each curve c: :func:`plot_dip` of ``values[c]`` (seeds x points over ``x``) with its
    :func:`~ccjax.measure.statistics.dip_statistics` ``stats[c]``, named ``names[c]``, labelled
    ``labels[c]`` in colour ``colors[c]``; then :func:`plot_reference_dip` of ``references[c]``
    in the same colour ("paper, <name>: minimum ~<minimum> at <x_name> <low>-<high>"). Then the
    level as a dashed line labelled ``level_label``, a grid and the legend, on an 8 x 5.4 inch figure.
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
    axis, its L/p (red, dashed): paper §5's dense-regime baseline, in closed form."""
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
    """One model's responses in a row (paper experiment 1): each feature's output for inputs
    ``values`` on it (:func:`plot_response_curves`), the per-neuron ``W_out * W_in`` bars
    (:func:`plot_neuron_bars`) and the one-hot response heatmaps (:func:`plot_one_hot_heatmaps`).
    ``fig`` (an empty figure or subfigure) receives them; without it a new figure is made."""
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
