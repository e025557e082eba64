"""Mechanism figures (docs/paper.md §6.2, §6.4–6.6): learned mixing scales over training,
training before and after fine-tuning on clean labels, eigen- and SVD alignment of the
weights with M, the entries of ``A = W_out W_in`` against ``sM``, the weights in M's
eigenbasis, and the semi-NMF baseline against the mixing magnitude.

Seed axes are drawn as the mean over the finite seeds with a ±1 SEM band
(:func:`~ccjax.measure.statistics.mean_and_sem`; no band for one seed).
"""

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import Float, Real
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure

from ..measure.baselines import ORIENTATIONS
from ..measure.statistics import mean_and_sem
from ._loss import NAIVE_STYLE, _axes

SeedCurves = Float[np.ndarray, "seeds points"]


def _mean_band(ax: Axes, x, mean, sem, alpha: float = 0.2, **style) -> None:
    """``mean`` over ``x`` and a ±``sem`` band in the line's colour, unless an SEM is not finite."""
    line = ax.plot(x, mean, **style)[0]
    if np.all(np.isfinite(sem)):
        ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=alpha, linewidth=0)


def _seed_band(ax: Axes, x, values: SeedCurves, alpha: float = 0.2, **style) -> None:
    """:func:`_mean_band` of the mean of ``values`` (seeds, len(x)) over its finite seeds."""
    _mean_band(ax, x, *mean_and_sem(values), alpha=alpha, **style)


def plot_learned_scales(
    step: Real[np.ndarray, " logs"],
    histories: Float[np.ndarray, "curves seeds logs"],
    labels: Sequence[str],
    published: Sequence[float],
    *,
    initial: float,
    colors: Sequence[str] | None = None,
    reference: tuple[float, str] | None = None,
    title: str | None = "learned mixing scale during training",
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """The magnitude |s| of a learned mixing scale over training, one curve per family (§6.2).

    Each curve (mean ± SEM over seeds) starts at ``initial`` at step 0 and has the paper's
    value as a dotted line in its colour.

    Args:
        step: the end of each logging interval, (logs,).
        histories: |s| at each ``step`` for each seed, (curves, seeds, logs).
        labels: the legend label of each curve.
        published: the paper's converged |s| of each curve.
        initial: |scale_init|, every curve's value at step 0.
        colors: the colour of each curve (None: ``"C<c>"`` for curve c).
        reference: ``(value, label)`` of a dashed grey line (None: none).
        title: the axes title.
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    steps = np.append(0.0, step)
    colors = [f"C{c}" for c in range(len(histories))] if colors is None else colors
    for history, label, paper, color in zip(histories, labels, published, colors, strict=True):
        mean, sem = mean_and_sem(history)
        _mean_band(ax, steps, np.append(initial, mean), np.append(0.0, sem), color=color, label=label)
        ax.axhline(paper, color=color, ls=":", lw=1.2, label=f"paper ~{paper}")
    if reference is not None:
        ax.axhline(reference[0], color="0.4", ls="--", lw=1, label=reference[1])
    ax.set(xlabel="training step", ylabel="|s|", title=title)
    ax.legend(fontsize=8)
    return ax.figure


# The marks of plot_fine_tuning's three evaluations: (marker, colour, label).
FINE_TUNING_MARKS = (
    ("o", "C0", "evaluated: phase 1, mixed labels"),
    ("s", "C1", "evaluated: phase 1 on clean labels"),
    ("D", "C1", "evaluated: phase 2, clean labels"),
)


class TrainingCurve(NamedTuple):
    """A training history: L/p of each seed at each logged step.

    Attributes:
        step: the logged training steps, (logs,).
        loss_per_feature: the training L/p of each seed, (seeds, logs).
    """

    step: Real[np.ndarray, " logs"]
    loss_per_feature: Float[np.ndarray, "seeds logs"]


def _mark_evaluations(ax: Axes, evaluated, phase1_steps: int, last_step, published, naive: float) -> np.ndarray:
    """:func:`plot_fine_tuning`'s marks of ``evaluated`` (mean ± SEM over seeds) and the paper's
    values as crosses; returns the values the y range must hold (the marks, ``naive``, the paper's)."""
    mean, sem = mean_and_sem(evaluated, axis=1)
    marked = zip((phase1_steps, phase1_steps, last_step), FINE_TUNING_MARKS, strict=True)
    for i, (x, (marker, color, label)) in enumerate(marked):
        style = {"marker": marker, "color": color, "mec": "k", "ms": 7, "capsize": 3, "zorder": 5}
        ax.errorbar(x, mean[i], yerr=np.nan_to_num(sem)[i], label=f"{label} ({mean[i]:.4f})", **style)
    paper = [(x, y) for x, y in zip((phase1_steps, last_step), published, strict=True) if y is not None]
    if paper:
        ax.plot(*np.array(paper).T, "kx", ms=9, mew=2, zorder=6, label="paper (read off, +-0.001)")
    return np.concatenate([mean, [naive], [y for _, y in paper]])


def _fine_tuning_ylim(ax: Axes, phase1: TrainingCurve, phase2: TrainingCurve, shown: np.ndarray) -> None:
    """A y range that holds ``shown`` and most of the training curves."""
    # Leave out the first tenth of phase 1 (the random init's large loss).
    tail = np.concatenate(
        [phase1.loss_per_feature[:, len(phase1.step) // 10 :].ravel(), phase2.loss_per_feature.ravel()]
    )
    ax.set_ylim(min(shown.min(), np.percentile(tail, 1)) - 0.004, max(shown.max(), np.percentile(tail, 95)) + 0.006)


def plot_fine_tuning(
    phase1: TrainingCurve,
    phase2: TrainingCurve,
    evaluated: Float[np.ndarray, "3 seeds"],
    *,
    phase1_steps: int,
    naive: float,
    published: tuple[float | None, float | None] = (None, None),
    phase1_label: str = "phase 1: training L/p",
    ylabel: str = "loss per feature L/p",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """Training L/p of a model trained with mixing and then fine-tuned on clean labels (§6.4).

    Each phase's training L/p is drawn as the mean ± SEM over seeds; phase 2 begins at step
    ``phase1_steps`` (a dotted line). The y range holds the marks and most of the training curves.

    Args:
        phase1: phase 1's training L/p (on mixed labels), at its own steps.
        phase2: phase 2's training L/p (on clean labels), ``step`` counted from the start of phase 2.
        evaluated: L/p of each seed of phase 1 on mixed and on clean labels at its end and of phase 2
            on clean labels at its end, (3, seeds), marked as :data:`FINE_TUNING_MARKS` (mean ± SEM).
        phase1_steps: the number of phase 1 steps, where phase 2 begins.
        naive: the naive model's L/p, drawn as a dashed line.
        published: the paper's L/p for the first and last of ``evaluated`` (None: not given), as crosses.
        phase1_label: the legend label of phase 1's curve.
        ylabel: the y axis label.
        title: the axes title.
        ax: the axes to draw into; None makes a new 8.5 x 5 inch figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax, figsize=(8.5, 5.0))
    step2 = phase1_steps + phase2.step
    _seed_band(ax, phase1.step, phase1.loss_per_feature, color="C0", label=phase1_label, alpha=0.25)
    label = "phase 2: training L/p, clean labels (same models)"
    _seed_band(ax, step2, phase2.loss_per_feature, color="C1", label=label, alpha=0.25)
    ax.axvline(phase1_steps, color="0.6", linestyle=":", linewidth=1)
    ax.axhline(naive, **NAIVE_STYLE, label=f"naive ({naive:.4f})", zorder=1)
    shown = _mark_evaluations(ax, evaluated, phase1_steps, step2[-1], published, naive)
    _fine_tuning_ylim(ax, phase1, phase2, shown)
    xlabel = "total training step (phase 2 starts at the dotted line)"
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8, loc="upper right")
    return ax.figure


def plot_alignment_cosines(
    eigen_cos: Float[np.ndarray, "seeds n_features"],
    svd_cos: Float[np.ndarray, "seeds n_features"],
    d_mlp: int,
    *,
    paper: tuple[Sequence[float], Sequence[float]] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """``cos(E_i, A E_i)`` and ``cos(U_i, A V_i)`` against the index i (§6.5), mean ± SEM over
    seeds, with a dotted line at ``i = d_mlp``.

    Args:
        eigen_cos: :func:`ccjax.measure.analysis.eigen_alignment` of each seed, (seeds, n_features).
        svd_cos: :func:`~ccjax.measure.analysis.svd_alignment` of each seed, (seeds, n_features).
        d_mlp: the number of neurons (the dotted line).
        paper: the paper's values ``(i's, cosines)``, marked with crosses (None: none).
        title: the axes title.
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    index = np.arange(1, eigen_cos.shape[-1] + 1)
    for values, label, color in ((eigen_cos, "cos(E_i, A E_i)", "C0"), (svd_cos, "cos(U_i, A V_i)", "C1")):
        _seed_band(ax, index, values, color=color, label=label, alpha=0.25)
    ax.axvline(d_mlp, color="0.5", ls=":", lw=1, label=f"i = d_mlp = {d_mlp}")
    if paper is not None:
        ax.plot(*paper, "kx", ms=8, label="paper")
    ax.set(xlabel="eigen / singular index i (descending)", ylabel="cosine", title=title, ylim=(-0.1, 1.05))
    ax.legend(fontsize=8)
    return ax.figure


def plot_entry_fit(
    linear_map: Float[np.ndarray, "n_features n_features"],
    scaled_mixing: Float[np.ndarray, "n_features n_features"],
    fit: Sequence[float | np.floating],
    *,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """The entries of ``A = W_out W_in`` against those of ``sM`` with their fits (§6.5).

    Args:
        linear_map: ``A``, (n_features, n_features).
        scaled_mixing: ``sM``, (n_features, n_features).
        fit: ``(off_diagonal_slope, diagonal_slope, diagonal_intercept)``, as
            :func:`ccjax.measure.analysis.entry_correlation` gives it: drawn as a line through 0 over
            the off-diagonal entries and, where its slope is finite, a dashed one over the diagonal.
        title: the axes title.
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    slope, diagonal_slope, intercept = fit
    off = ~np.eye(linear_map.shape[0], dtype=bool)
    x_off, x_diagonal = scaled_mixing[off], np.diag(scaled_mixing)
    ax.scatter(x_off, linear_map[off], s=2, alpha=0.3, color="C0", label="off-diagonal", rasterized=True)
    ax.scatter(x_diagonal, np.diag(linear_map), s=8, color="C3", label="diagonal")
    x = np.linspace(x_off.min(), x_off.max(), 2)
    ax.plot(x, slope * x, "k-", lw=1, label=f"off-diagonal slope {slope:.2f}")
    if np.isfinite(diagonal_slope):
        x = np.linspace(x_diagonal.min(), x_diagonal.max(), 2)
        label = f"diagonal {diagonal_slope:.2f} x + {intercept:.2f}"
        ax.plot(x, diagonal_slope * x + intercept, "r--", lw=1, label=label)
    ax.set(xlabel="entry of sM", ylabel="entry of A = W_out W_in", title=title)
    ax.legend(fontsize=8, markerscale=3)
    return ax.figure


def plot_eigen_projections(
    projection_in: Float[np.ndarray, "models n_features d_mlp"],
    projection_out: Float[np.ndarray, "models n_features d_mlp"],
    labels: Sequence[str],
    *,
    title: str | None = None,
    fig: Figure | SubFigure | None = None,
) -> Figure | SubFigure:
    """Heatmaps of ``E·W_in`` and ``E·W_out`` (§6.5), one row of two per model: eigenvector i
    (descending) by neuron, each on a diverging scale symmetric about 0 with its own colour bar.

    Args:
        projection_in: ``E·W_in`` of each model, (models, n_features, d_mlp), as from
            :func:`ccjax.measure.analysis.eigen_projections`.
        projection_out: ``E·W_out`` of each model, of the same shape.
        labels: each model's label, in its panels' titles.
        title: the title above all panels (None: none).
        fig: an empty figure or subfigure that receives the panels; None makes a new figure.

    Returns:
        The figure (or subfigure) drawn into.
    """
    if fig is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(11, 4.5 * len(labels)), layout="constrained")
    axes = fig.subplots(len(labels), 2, squeeze=False)
    for row, label, pair in zip(axes, labels, zip(projection_in, projection_out, strict=True), strict=True):
        for ax, side, data in zip(row, ("in", "out"), pair, strict=True):
            limit = np.abs(data).max()
            image = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            ax.set(xlabel="neuron", ylabel="eigenvector i (descending)", title=f"E . W_{side}: {label}")
            fig.colorbar(image, ax=ax, shrink=0.8)
    if title is not None:
        fig.suptitle(title)
    return fig


# plot_baseline_sweep's lines: SNMF by target orientation, then the references by name.
SNMF_LINES = {
    "faithful": ("SNMF of (I + sigma M)^T (faithful)", {"marker": "o", "ms": 4}),
    "paper-code": ("SNMF of I + sigma M (paper code)", {"marker": "s", "ms": 3, "ls": "--"}),
}
REFERENCE_LINES = {
    "trained": ("trained (exactly-one data)", {"color": "C2", "marker": "^"}),
    "svd": ("SVD of (I + sigma M)^T", {"color": "C4", "marker": ".", "lw": 1}),
    "naive": ("naive model on these labels", {"color": "0.5", "ls": ":", "lw": 1.2}),
}


def plot_baseline_sweep(
    sigmas: Float[np.ndarray, " sigmas"],
    snmf_loss: Float[np.ndarray, "seeds sigmas orientations"],
    references: Mapping[str, SeedCurves],
    *,
    naive: float,
    orientations: Sequence[str] = ORIENTATIONS,
    published: Mapping[float, float] | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure | SubFigure:
    """L/p of the semi-NMF baseline against the mixing magnitude sigma (§5, §6.6).

    Args:
        sigmas: the mixing magnitudes sigma, (sigmas,).
        snmf_loss: L/p, (seeds, sigmas, orientations): one line (mean ± SEM) per orientation.
        references: name (a key of :data:`REFERENCE_LINES`) -> L/p, (seeds, sigmas): one line each.
        naive: the naive model's L/p on clean labels, drawn as a dashed line.
        orientations: the target orientation of each index of ``snmf_loss``'s last axis
            (keys of :data:`SNMF_LINES`).
        published: the paper's L/p by sigma, as crosses (None: none).
        title: the axes title.
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.
    """
    ax = _axes(ax)
    for o, orientation in enumerate(orientations):
        label, style = SNMF_LINES[orientation]
        _seed_band(ax, sigmas, snmf_loss[:, :, o], label=label, color=f"C{o}", **style)
    for name, values in references.items():
        label, style = REFERENCE_LINES[name]
        _seed_band(ax, sigmas, values, label=label, **style)
    ax.axhline(naive, **NAIVE_STYLE, label=f"naive, clean labels ({naive:.4f})", zorder=1)
    if published is not None:
        ax.plot(
            *np.array(sorted(published.items())).T,
            "kx",
            ms=7,
            mew=1.5,
            label="paper: SNMF of I + sigma M (read off)",
            zorder=4,
        )
    ax.set(xlabel="mixing magnitude sigma", title=title)
    ax.legend(fontsize=8)
    return ax.figure
