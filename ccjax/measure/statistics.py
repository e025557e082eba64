"""Statistics over seeds of measured curves: mean and standard error over the finite entries
(diverged models are NaN and are left out), the minimum of a curve and where it rises back
through a level, and bootstrap resampling of seeds. The paper's σ-sweep reads its minimum
L/p, the σ that gives it, and where the curve crosses the naive line again (docs/paper.md
§6.3) with these; :func:`dip_statistics` reads all of them at once.

All functions are NumPy (float64) and run on the host, on arrays already measured.
"""

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import Real
from numpy.typing import ArrayLike

Curve = Real[np.ndarray, " points"] | Sequence[float]
Samples = Real[np.ndarray, " samples"] | Sequence[float]

HALF_WIDTH = 3  # grid points on each side of the lowest one in curve_minimum's parabola fit
INTERVAL = (16.0, 84.0)  # percentiles of spread's interval (about ±1 standard deviation)


def mean_and_sem(values: ArrayLike, axis: int = 0) -> tuple[np.ndarray | np.floating, np.ndarray | np.floating]:
    """Mean over ``axis`` and its standard error, over the finite entries only (a 0-d
    result comes back as NumPy scalars).

    Non-finite entries (diverged models) are excluded, not averaged; the SEM is NaN where
    fewer than two entries remain, and the mean where none does.

    Args:
        values: any array (e.g. L/p of seeds x points), cast to float64; NaN/inf entries are left out.
        axis: the axis to average over (e.g. the seeds').

    Returns:
        ``(mean, sem)``: the mean over the finite entries and its standard error
        (``std(ddof=1) / sqrt(n)``), each of ``values``' shape without ``axis``, in ``values``' units.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    n = finite.sum(axis=axis)
    filled = np.where(finite, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=axis) / n
        deviation = np.where(finite, values - np.expand_dims(mean, axis), 0.0)
        sem = np.sqrt((deviation**2).sum(axis=axis) / (n - 1) / n)
    mean = np.where(n > 0, mean, np.nan)
    sem = np.where(n > 1, sem, np.nan)
    return (mean[()], sem[()]) if mean.ndim == 0 else (mean, sem)


def finite_mean(values: ArrayLike, axis: int = 0) -> np.ndarray | np.floating:
    """The mean over ``axis`` of the finite entries (NaN where there are none).

    Args:
        values: any array, cast to float64; NaN/inf entries (diverged models) are left out.
        axis: the axis to average over.

    Returns:
        The mean, of ``values``' shape without ``axis`` (a NumPy scalar for a 0-d result).
    """
    return mean_and_sem(values, axis)[0]


class Minimum(NamedTuple):
    """The lowest point of a curve: the parabola fit's vertex when ``fitted``, else the grid point ``index``.

    Attributes:
        x: where the minimum lies, in the curve's x units (between grid points when ``fitted``).
        value: the curve's value there (the vertex's value when ``fitted``).
        index: the lowest grid point, an index into the curve.
        fitted: True when ``x`` and ``value`` are the vertex of the parabola fit.
    """

    x: float
    value: float
    index: int
    fitted: bool


def _check_curve(x: Curve, y: Curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size == 0:
        raise ValueError(f"x and y must be 1-D of equal, non-zero length, got {x.shape} and {y.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    return x, y


def curve_minimum(x: Curve, y: Curve, half_width: int = HALF_WIDTH) -> Minimum:
    """The minimum of ``y(x)``: the vertex of a least-squares parabola through the lowest grid
    point and ``half_width`` neighbours on each side (fewer at the ends) if it opens upwards and
    lies within them, else the lowest grid point (too few points, a monotone stretch).

    Args:
        x: the grid, (points,), strictly increasing.
        y: the curve's values at ``x``, (points,).
        half_width: grid points on each side of the lowest one in the fit.

    Returns:
        The :class:`Minimum` of the curve.

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D of one non-zero length, or ``x`` is not strictly increasing.
    """
    x, y = _check_curve(x, y)
    i = int(np.argmin(y))
    lo, hi = max(0, i - half_width), min(x.size, i + half_width + 1)
    if hi - lo >= 3:
        dx = x[lo:hi] - x[i]  # centred, for conditioning
        a, b, c = np.polyfit(dx, y[lo:hi], 2)
        if a > 0:
            vertex = -b / (2.0 * a)
            if dx[0] <= vertex <= dx[-1]:
                return Minimum(float(x[i] + vertex), float(c - b * b / (4.0 * a)), i, True)
    return Minimum(float(x[i]), float(y[i]), i, False)


def upper_crossing(x: Curve, y: Curve, level: float) -> float:
    """Where ``y`` rises back to ``level`` after its lowest grid point (linear interpolation
    between grid points); NaN when it never goes below ``level`` or stays below it to the end.

    Args:
        x: the grid, (points,), strictly increasing.
        y: the curve's values at ``x``, (points,).
        level: the level to cross, in ``y``'s units (e.g. the naive L/p).

    Returns:
        The crossing's x (in ``x``'s units), or NaN.

    Raises:
        ValueError: if ``x`` and ``y`` are not 1-D of one non-zero length, or ``x`` is not strictly increasing.
    """
    x, y = _check_curve(x, y)
    i = int(np.argmin(y))
    above = np.flatnonzero(y[i:] >= level)
    if not y[i] < level or above.size == 0:
        return math.nan
    j = i + int(above[0])
    return float(x[j - 1] + (level - y[j - 1]) * (x[j] - x[j - 1]) / (y[j] - y[j - 1]))


def bootstrap_seeds(
    values: Real[np.ndarray, "seeds points"],
    statistic: Callable[[np.ndarray], tuple[float, ...]],
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """(n_boot, len(statistic)): ``statistic`` of the seed-mean curve (finite entries) of each
    resample, with replacement, of the seeds of ``values`` (seeds, points).

    Args:
        values: one curve per seed, (seeds, points); NaN entries are left out of each mean.
        statistic: maps a seed-mean curve (points,) to a tuple of numbers.
        n_boot: the number of resamples.
        seed: the seed of ``numpy.random.default_rng`` that draws them.

    Returns:
        (n_boot, len(statistic)) float64: the statistic of each resample's mean curve.

    Raises:
        ValueError: if ``values`` is not 2-D with at least one seed.
    """
    values = np.asarray(values, np.float64)
    if values.ndim != 2 or values.shape[0] < 1:
        raise ValueError(f"values must be (seeds, points), got {values.shape}")
    picks = np.random.default_rng(seed).integers(0, values.shape[0], size=(n_boot, values.shape[0]))
    means = finite_mean(values[picks], axis=1)  # (n_boot, points)
    return np.array([statistic(mean) for mean in means], np.float64).reshape(n_boot, -1)


class Spread(NamedTuple):
    """Bootstrap spread of one statistic: the SD of its finite resamples, their ``INTERVAL``
    percentiles, and the fraction of resamples where it is defined (finite).

    Attributes:
        se: the standard deviation (ddof 1) of the finite resamples: the statistic's standard error.
        low: their lower ``INTERVAL`` percentile (16th).
        high: their upper ``INTERVAL`` percentile (84th).
        defined: the fraction of resamples that are finite (NaN for no resamples).
    """

    se: float
    low: float
    high: float
    defined: float


def spread(samples: Samples, n_seeds: int) -> Spread:
    """:class:`Spread` of bootstrap ``samples``; all NaN for one seed (no resampling spread).

    Args:
        samples: the statistic of each resample, (samples,); non-finite ones count as undefined.
        n_seeds: the seeds resampled; below 2 (or with fewer than 2 finite samples) ``se``, ``low``
            and ``high`` are NaN.

    Returns:
        The :class:`Spread`, in the statistic's units.
    """
    samples = np.asarray(samples, np.float64)
    finite = samples[np.isfinite(samples)]
    defined = finite.size / samples.size if samples.size else math.nan
    if n_seeds < 2 or finite.size < 2:
        return Spread(math.nan, math.nan, math.nan, defined)
    low, high = np.percentile(finite, INTERVAL)
    # Identical samples have no spread by definition; numpy's two-pass std of equal values
    # can round to ~1e-18 rather than 0, depending on its version and SIMD kernels.
    deviation = 0.0 if finite.min() == finite.max() else float(finite.std(ddof=1))
    return Spread(deviation, float(low), float(high), defined)


def dip_statistics(
    x: Curve, values: Real[np.ndarray, "seeds points"], level: float, n_boot: int = 2000, seed: int = 0
) -> dict:
    """How the seed-mean curve of ``values`` (seeds, points; NaN: a diverged model, left out)
    over ``x`` (points, increasing) dips below ``level`` and rises back through it, as the
    paper's σ-sweep reads its L/p curve against the naive line (docs/paper.md §6.3).

    Args:
        x: the grid (points,), strictly increasing (e.g. σ).
        values: the curve of each seed, (seeds, points) (e.g. L/p).
        level: the level the curve dips below and crosses again, in ``values``' units (e.g. naive L/p).
        n_boot: bootstrap resamples of the seeds.
        seed: the numpy seed of the resampling.

    Returns:
        A dict: the :func:`curve_minimum` of the mean curve (``min_x``, ``min_value``,
        ``min_fitted``; its lowest grid point ``grid_min_x``, ``grid_min_value``), its
        :func:`upper_crossing` of ``level`` (``crossing``), ``level``, ``n_seeds``, ``n_boot``;
        the bootstrap-over-seeds :class:`Spread` of ``min_x``, ``min_value`` and ``crossing``
        (``<name>_se``, ``_low``, ``_high``, ``_defined``); and, where ``x`` = 0 is on the grid,
        the mean and SEM over seeds there (``at_zero``, ``at_zero_sem``).
    """
    x, values = np.asarray(x, np.float64), np.asarray(values, np.float64)
    mean = finite_mean(values)
    minimum = curve_minimum(x, mean)

    def statistic(curve):
        resampled = curve_minimum(x, curve)
        return resampled.x, resampled.value, upper_crossing(x, curve, level)

    samples = bootstrap_seeds(values, statistic, n_boot, seed)
    out = {
        "min_x": minimum.x,
        "min_value": minimum.value,
        "min_fitted": minimum.fitted,
        "grid_min_x": float(x[minimum.index]),
        "grid_min_value": float(mean[minimum.index]),
        "crossing": upper_crossing(x, mean, level),
        "level": level,
        "n_seeds": values.shape[0],
        "n_boot": n_boot,
    }
    for name, column in zip(("min_x", "min_value", "crossing"), samples.T, strict=True):
        out |= {f"{name}_{field}": value for field, value in spread(column, values.shape[0])._asdict().items()}
    zero = np.flatnonzero(x == 0.0)
    if zero.size:
        at_zero, at_zero_sem = mean_and_sem(values[:, zero[0]])
        out |= {"at_zero": float(at_zero), "at_zero_sem": float(at_zero_sem)}
    return out
