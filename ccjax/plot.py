"""Figures from result arrays: each function takes numpy arrays and an optional ``ax``.

Without ``ax`` a new figure is made; with one, the plot is drawn into it (so panels can
be combined). Every function returns the figure and saves nothing: experiments save.
Arrays with a leading seed axis are drawn as the mean over seeds with error bars of
the standard error over seeds (none for a single seed).

On a machine without a display (a server, CI) matplotlib is switched to the Agg
backend before pyplot loads, unless the user chose a backend (``MPLBACKEND``, as
Jupyter does).
"""

import os
import sys
from collections.abc import Mapping

import matplotlib
import numpy as np

if (
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and "MPLBACKEND" not in os.environ
    and "matplotlib.pyplot" not in sys.modules
):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

NAIVE_STYLE = {"color": "0.4", "linestyle": "--", "linewidth": 1.2}


def _axes(ax: Axes | None, figsize=(6.0, 4.2)) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _seed_rows(values, n_columns: int | None = None) -> np.ndarray:
    """``values`` as (seeds, columns): a 1-D array is one seed."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2 or (n_columns is not None and values.shape[1] != n_columns):
        expected = f"(seeds, {n_columns})" if n_columns is not None else "(seeds, n)"
        raise ValueError(f"expected an array of shape {expected} or ({n_columns},), got {np.shape(values)}")
    return values


def _sorted(x) -> tuple[np.ndarray, np.ndarray]:
    """``x`` in increasing order and the permutation, so lines join neighbours."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    return x[order], order


def _mean_sem(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean over the seed axis and its standard error (None for a single seed)."""
    mean = values.mean(axis=0)
    if values.shape[0] < 2:
        return mean, None
    return mean, values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])


def _naive_line(ax: Axes, naive: float | None) -> None:
    if naive is not None:
        ax.axhline(naive, **NAIVE_STYLE, label=f"naive ({naive:.4f})", zorder=1)


def plot_scale_sweep(
    scales,
    loss_per_feature,
    *,
    naive: float | None = None,
    title: str | None = None,
    xlabel: str = "mixing scale",
    ylabel: str = "loss per feature L/p",
    label: str = "trained",
    ax: Axes | None = None,
) -> Figure:
    """L/p against the mixing scale: seeds as dots, their mean with SEM error bars.

    ``scales`` has shape (S,), ``loss_per_feature`` (K, S) for K seeds (or (S,)).
    ``naive`` draws the naive model's L/p as a dashed line.
    """
    scales, order = _sorted(scales)
    values = _seed_rows(loss_per_feature, len(scales))[:, order]
    ax = _axes(ax)
    mean, sem = _mean_sem(values)
    if values.shape[0] > 1:
        ax.plot(np.broadcast_to(scales, values.shape).ravel(), values.ravel(), ".", color="C0", alpha=0.3, ms=5)
    ax.errorbar(scales, mean, yerr=sem, marker="o", color="C0", capsize=3, label=_with_seeds(label, values), zorder=3)
    _naive_line(ax, naive)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    return ax.figure


def _with_seeds(label: str, values: np.ndarray) -> str:
    n = values.shape[0]
    return f"{label} (mean ± SEM, {n} seeds)" if n > 1 else f"{label} (1 seed)"


def plot_loss_terms(
    scales,
    relu_term,
    mixing_term,
    *,
    title: str | None = None,
    xlabel: str = "mixing scale",
    ylabel: str = "contribution to L/p",
    ax: Axes | None = None,
) -> Figure:
    """The paper's decomposition L = ReLU term + mixing term, against the mixing scale.

    ``relu_term`` and ``mixing_term`` have shape (K, S) (or (S,)), in units of L/p. A
    negative mixing term is the part of the loss that the mixing matrix *removes*.
    """
    scales, order = _sorted(scales)
    ax = _axes(ax)
    terms = {"ReLU term": relu_term, "mixing term": mixing_term}
    for color, (name, term) in zip(("C1", "C2"), terms.items(), strict=True):
        mean, sem = _mean_sem(_seed_rows(term, len(scales))[:, order])
        ax.errorbar(scales, mean, yerr=sem, marker="s", color=color, capsize=3, label=name)
    ax.axhline(0.0, color="0.7", linewidth=0.8, zorder=0)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    return ax.figure


def plot_history(
    step,
    curves: Mapping[str, np.ndarray],
    *,
    naive: float | None = None,
    title: str | None = None,
    xlabel: str = "training step",
    ylabel: str = "loss per feature L/p",
    ax: Axes | None = None,
) -> Figure:
    """Training curves against the step, one line per entry of ``curves``.

    ``step`` has shape (n_logs,); each curve (K, n_logs) or (n_logs,), e.g.
    ``{"loss": h.train_loss, "ReLU term": h.relu_term, "mixing term": h.mixing_term}``
    for a :class:`~ccjax.train.History` ``h``. Several seeds give the mean with a
    band of ±1 SEM.
    """
    step = np.asarray(step, dtype=np.float64)
    ax = _axes(ax)
    for name, curve in curves.items():
        mean, sem = _mean_sem(_seed_rows(curve, len(step)))
        (line,) = ax.plot(step, mean, label=name)
        if sem is not None:
            ax.fill_between(step, mean - sem, mean + sem, color=line.get_color(), alpha=0.2, linewidth=0)
    _naive_line(ax, naive)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend()
    return ax.figure
