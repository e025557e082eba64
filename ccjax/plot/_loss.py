"""Loss figures: L/p against the mixing scale, its ReLU/mixing split, training histories,
L/p curves over p_eval, and per-model response plots."""

import warnings
from collections.abc import Mapping

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure, SubFigure

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
    """Mean over the seed axis and its standard error (None for a single seed), over the
    finite entries only: a diverged model (NaN or inf) is left out, not averaged in."""
    values = np.where(np.isfinite(values), values, np.nan)
    n = np.isfinite(values).sum(axis=0)
    with warnings.catch_warnings():  # all-NaN columns are NaN, which plots as a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        if values.shape[0] < 2:
            return mean, None
        return mean, np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)


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
) -> Figure | SubFigure:
    """L/p against the mixing scale: seeds as dots, their mean with SEM error bars.

    Args:
        scales (ArrayLike): the mixing scales, (S,), in any order (drawn sorted).
        loss_per_feature (ArrayLike): L/p, (K, S) for K seeds, or (S,) for one; non-finite
            entries (diverged models) are left out of the mean.
        naive: the naive model's L/p, drawn as a dashed line (None: no line).
        title: the axes title; ``xlabel`` and ``ylabel`` label its axes.
        label: the legend label of the mean (the number of seeds is appended).
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: ``loss_per_feature`` is not of shape (K, S) or (S,).
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
) -> Figure | SubFigure:
    """The paper's decomposition L = ReLU term + mixing term, against the mixing scale (docs/paper.md §2).

    A negative mixing term is the part of the loss that the mixing matrix *removes*. Each term
    is drawn as its mean over seeds with SEM error bars.

    Args:
        scales (ArrayLike): the mixing scales, (S,), in any order (drawn sorted).
        relu_term (ArrayLike): the ReLU term, (K, S) for K seeds or (S,), in units of L/p.
        mixing_term (ArrayLike): the mixing term, of the same shape and units.
        title: the axes title; ``xlabel`` and ``ylabel`` label its axes.
        ax: the axes to draw into; None makes a new figure.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: a term is not of shape (K, S) or (S,).
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
) -> Figure | SubFigure:
    """Training curves against the step, one line per entry of ``curves``.

    Several seeds give the mean with a band of ±1 SEM.

    Args:
        step (ArrayLike): the logged training steps, (n_logs,).
        curves: legend label -> curve, each (K, n_logs) for K seeds or (n_logs,), e.g.
            ``{"loss": h.train_loss_per_feature, "ReLU term": h.relu_term_per_feature,
            "mixing term": h.mixing_term_per_feature}`` for a :class:`~ccjax.History` ``h``.
        naive: the naive model's L/p, drawn as a dashed line (None: no line).
        title: the title of the axes ``ax`` drawn into (None: a new figure), with ``xlabel`` and ``ylabel``.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: a curve is not of shape (K, n_logs) or (n_logs,).
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


def _curves_to_plot(p_eval, curves, labels, sem, dots) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`plot_loss_curves`' arguments checked (a ValueError names the bad one):
    ``p_eval`` sorted, and ``curves`` (C, P) and ``sem`` (C, P, or None) in its order,
    seed curves (C, K, P) reduced to their mean and SEM."""
    p_eval, order = _sorted(p_eval)
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim not in (2, 3) or curves.shape[-1] != len(p_eval):
        raise ValueError(
            f"curves must have shape (curves, {len(p_eval)}) or (curves, seeds, {len(p_eval)}), got {curves.shape}"
        )
    n_curves = curves.shape[0]
    if len(labels) != n_curves:
        raise ValueError(f"got {len(labels)} labels for {n_curves} curves")
    if curves.ndim == 3:
        if sem is not None:
            raise ValueError("give either seed curves (curves, seeds, p) or sem, not both")
        means, sems = zip(*(_mean_sem(seeds) for seeds in curves), strict=True)
        curves = np.stack(means)
        sem = None if sems[0] is None else np.stack(sems)
    if sem is not None:
        sem = np.asarray(sem, dtype=np.float64)
        if sem.shape != curves.shape:
            raise ValueError(f"sem must have the shape of curves {curves.shape}, got {sem.shape}")
        sem = sem[:, order]
    if dots is not None and len(dots) != n_curves:
        raise ValueError(f"got {len(dots)} dots for {n_curves} curves")
    return p_eval, curves[:, order], sem


def plot_loss_curves(
    p_eval,
    curves,
    labels,
    *,
    sem=None,
    dots=None,
    naive: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure | SubFigure:
    """L/p against the evaluation probability p (log x axis), one line per model.

    The figure of paper experiments 1 and 2 (docs/paper.md §6).

    Args:
        p_eval (ArrayLike): the evaluation probabilities p, (P,), in any order (drawn sorted).
        curves (ArrayLike): L/p, (C, P), or (C, K, P) for K seeds (drawn as the mean with a ±1 SEM band).
        labels (Sequence[str]): the legend label of each curve, (C,).
        sem (ArrayLike | None): a ±1 band of (C, P), given explicitly (only with (C, P) ``curves``).
        dots (Sequence | None): one ``(p, L/p)`` point per curve (or None for a curve), e.g. each
            model at its training p, marked in its curve's colour.
        naive: the naive model's L/p, drawn as a dashed line (None: no line).
        ax: the axes to draw into; None makes a new figure.
        title: the axes title.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: an argument's shape or length does not fit the others (the message names it).
    """
    p_eval, curves, sem = _curves_to_plot(p_eval, curves, labels, sem, dots)
    ax = _axes(ax)
    for c in range(len(curves)):
        (line,) = ax.plot(p_eval, curves[c], label=labels[c], zorder=2)
        if sem is not None:
            low, high = curves[c] - sem[c], curves[c] + sem[c]
            ax.fill_between(p_eval, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if dots is not None and dots[c] is not None:
            p, value = dots[c]
            ax.plot([p], [value], "o", color=line.get_color(), ms=6, zorder=3)
    _naive_line(ax, naive)
    ax.set_xscale("log")
    ax.set(xlabel="feature probability p", ylabel="loss per feature L/p", title=title)
    ax.legend()
    return ax.figure


def _feature_colorbar(ax: Axes, cmap, n_features: int) -> None:
    mappable = plt.cm.ScalarMappable(cmap=cmap, norm=matplotlib.colors.Normalize(0, max(n_features - 1, 1)))
    ax.figure.colorbar(mappable, ax=ax, label="feature index")


def plot_response_curves(
    values,
    responses,
    *,
    features=None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure | SubFigure:
    """Each feature's output against its input value, with relu(v) as a black dashed line.

    Paper experiment 1's input–output figure (nb1a, docs/paper.md §6); lines are coloured by
    feature index.

    Args:
        values (ArrayLike): the input values v, (V,), in any order (drawn sorted).
        responses (ArrayLike): feature j's output for input v e_j, (V, n_features), as from
            :func:`ccjax.measure.feature_response`.
        features (ArrayLike | None): the indices of the features to draw (None: all).
        ax: the axes to draw into; None makes a new figure.
        title: the axes title.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: ``responses`` is not (V, n_features), or a feature index is out of range.
    """
    values, order = _sorted(values)
    responses = np.asarray(responses, dtype=np.float64)
    if responses.ndim != 2 or responses.shape[0] != len(values):
        raise ValueError(f"responses must have shape ({len(values)}, n_features), got {responses.shape}")
    n_features = responses.shape[1]
    features = np.arange(n_features) if features is None else np.asarray(features, dtype=int).reshape(-1)
    if features.size and (features.min() < 0 or features.max() >= n_features):
        raise ValueError(f"features must be indices below {n_features}, got {features.tolist()}")
    ax = _axes(ax)
    cmap = plt.get_cmap("viridis")
    for f in features:
        ax.plot(values, responses[order, f], color=cmap(f / max(n_features - 1, 1)), linewidth=0.8, alpha=0.8)
    ax.plot(values, np.maximum(values, 0.0), color="k", linestyle="--", linewidth=1.5, label="relu(v)", zorder=3)
    _feature_colorbar(ax, cmap, n_features)
    ax.set(xlabel="input value v (one feature active)", ylabel="output of that feature", title=title)
    ax.legend()
    return ax.figure


def plot_neuron_bars(contributions, *, ax: Axes | None = None, title: str | None = None) -> Figure | SubFigure:
    """Per neuron, stacked bars of its contributions ``W_in[i, h] W_out[h, i]`` to each feature i.

    Paper experiment 1's weight bars (nb1b, docs/paper.md §6), with neurons on the x axis.
    Positive contributions stack upward from 0, negative ones downward, one segment per
    non-zero entry, coloured by feature index.

    Args:
        contributions (ArrayLike): (d_mlp, n_features), as from :func:`ccjax.measure.neuron_contributions`.
        ax: the axes to draw into; None makes a new figure.
        title: the axes title.

    Returns:
        The figure (or subfigure) of the axes drawn into.

    Raises:
        ValueError: ``contributions`` is not 2-D.
    """
    contributions = np.asarray(contributions, dtype=np.float64)
    if contributions.ndim != 2:
        raise ValueError(f"contributions must have shape (d_mlp, n_features), got {contributions.shape}")
    d_mlp, n_features = contributions.shape
    neurons = np.arange(d_mlp)
    positive, negative = np.clip(contributions, 0.0, None), np.clip(contributions, None, 0.0)
    # Each segment starts where the previous features' parts of the same sign ended.
    top = np.cumsum(positive, axis=1) - positive
    bottom = np.cumsum(negative, axis=1) - negative
    ax = _axes(ax)
    cmap = plt.get_cmap("viridis")
    # One collection of rectangles, not one bar patch per segment: d_mlp * n_features
    # patches took about 10 s to add and draw at paper shapes (now about 1 s).
    rectangles, colors = [], []
    for part, base in ((positive, top), (negative, bottom)):
        neuron, feature = np.nonzero(part)
        left, right = neurons[neuron] - 0.4, neurons[neuron] + 0.4  # bar width 0.8
        low, high = base[neuron, feature], base[neuron, feature] + part[neuron, feature]
        x, y = np.stack([left, left, right, right], -1), np.stack([low, high, high, low], -1)
        rectangles.append(np.stack([x, y], -1))
        colors.append(cmap(feature / max(n_features - 1, 1)))
    ax.add_collection(PolyCollection(np.concatenate(rectangles), facecolors=np.concatenate(colors), linewidths=0))
    ax.autoscale_view()
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    _feature_colorbar(ax, cmap, n_features)
    ax.set(xlabel="neuron", ylabel=r"$W_{in}[i, h]\, W_{out}[h, i]$ stacked over features i", title=title)
    return ax.figure


def plot_one_hot_heatmaps(
    plus, minus, *, fig: Figure | SubFigure | None = None, title: str | None = None
) -> Figure | SubFigure:
    """Side-by-side heatmaps of the model's outputs for +1 and −1 one-hot inputs.

    Paper experiment 1's interference heatmaps (nb1c, docs/paper.md §6): a diverging colour
    map centred at 0 with shared symmetric limits and one colour bar.

    Args:
        plus (ArrayLike): the outputs for ``+e_i``, (n_features, n_features), row i, as from
            :func:`ccjax.measure.one_hot_response`.
        minus (ArrayLike): the outputs for ``-e_i``, of the same shape.
        fig: an empty figure or subfigure that receives the two panels; None makes a new figure.
        title: the title above both panels (None: none).

    Returns:
        The figure (or subfigure) drawn into.

    Raises:
        ValueError: ``plus`` and ``minus`` are not square and of equal shape.
    """
    plus, minus = np.asarray(plus, dtype=np.float64), np.asarray(minus, dtype=np.float64)
    if plus.ndim != 2 or plus.shape[0] != plus.shape[1] or minus.shape != plus.shape:
        raise ValueError(f"plus and minus must be square and of equal shape, got {plus.shape} and {minus.shape}")
    if fig is None:
        fig = plt.figure(figsize=(10.0, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    limit = float(max(np.abs(plus).max(initial=0.0), np.abs(minus).max(initial=0.0))) or 1.0
    for ax, response, name in zip(axes, (plus, minus), ("+1", "−1"), strict=True):
        image = ax.imshow(response, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set(title=f"input {name} on one feature", xlabel="output feature")
    axes[0].set_ylabel("active input feature")
    fig.colorbar(image, ax=list(axes), label="output value")
    if title is not None:
        fig.suptitle(title)
    return fig
