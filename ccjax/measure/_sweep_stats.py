"""Statistics of a sweep's training histories and curves over seeds: the mean of a history
over the end of training, and what :func:`~ccjax.measure.statistics.dip_statistics` computes,
in words for a results manifest."""

import math

import numpy as np
from jaxtyping import Real

from .statistics import HALF_WIDTH, INTERVAL


def tail_mean(
    history: Real[np.ndarray, "*models n_logs"],
    step: Real[np.ndarray, " n_logs"],
    fraction: float,
    total_steps: int | None = None,
) -> np.ndarray:
    """The mean of a history field (``*models, n_logs``, logged at ``step``) over its logs in the
    last ``fraction`` of ``total_steps`` (default: the last logged step; the last log always
    counts): e.g. the split of L/p into its ReLU and mixing terms (paper §2) at the end of
    training, where each log measures one batch (noisy) and a decayed learning rate leaves the
    model nearly final.

    Args:
        history: a history field, (*models, n_logs) (e.g. L/p per logging interval).
        step: the logged steps, (n_logs,), ascending.
        fraction: the share of ``total_steps`` at the end to average over.
        total_steps: the training's length in steps (default: the last logged step).

    Returns:
        The mean over the tail's logs, (*models), in the history's units.
    """
    step = np.asarray(step)
    total_steps = int(step[-1]) if total_steps is None else total_steps
    in_tail = step >= (1.0 - fraction) * total_steps
    in_tail[-1] = True
    return history[..., in_tail].mean(axis=-1)


def describe_dip_statistics(n_boot: int, seed: int, x: str = "x", level: str = "the level") -> dict:
    """How :func:`~ccjax.measure.statistics.dip_statistics` (with ``n_boot`` bootstrap resamples
    drawn with numpy seed ``seed``) finds a curve's minimum and its crossing of the level, and their
    uncertainty, in words: ``{"minimum", "crossing", "n_boot", "uncertainty"}``. ``x`` and
    ``level`` name the curve's axis and the level ("sigma", "the naive L/p": paper §6.3).

    Args:
        n_boot: the bootstrap resamples.
        seed: their numpy seed.
        x: the name of the curve's axis.
        level: the name of the level.

    Returns:
        ``{"minimum": str, "crossing": str, "n_boot": int, "uncertainty": str}``.
    """
    low, high = INTERVAL
    return {
        "minimum": f"least-squares parabola through the lowest grid point of the seed-mean curve and "
        f"{HALF_WIDTH} neighbours on each side; its vertex (else the lowest grid point)",
        "crossing": f"first {x} above the lowest grid point where the seed-mean curve reaches {level}, "
        "by linear interpolation between grid points",
        "n_boot": n_boot,
        "uncertainty": f"bootstrap over seeds ({n_boot} resamples, numpy seed {seed}): SD and {low:g}/{high:g} "
        "percentiles; 'defined' is the fraction of resamples whose curve crosses",
    }


def _estimate(stats: dict, name: str, error: str = "_se") -> str:
    """``value +- error [low, high]`` of one quantity of ``stats`` (its ``name + error``, ``_low`` and
    ``_high`` entries), leaving out what is missing or not finite ("-" for the value)."""
    value, se, low, high = (stats.get(name + suffix, math.nan) for suffix in ("", error, "_low", "_high"))
    interval = f" [{low:.4f}, {high:.4f}]" if math.isfinite(low) and math.isfinite(high) else ""
    if not math.isfinite(value):
        return "-" + interval
    return f"{value:.4f}" + (f" +- {se:.4f}" if math.isfinite(se) else "") + interval


def _crossing(stats: dict, x: str, x_max: float) -> str:
    if math.isfinite(stats["crossing"]):
        crossing = _estimate(stats, "crossing")
    elif stats["grid_min_value"] >= stats["level"]:
        crossing = "never below naive on the grid"
    else:
        crossing = f"does not cross within the grid ({x} <= {x_max:g})"
    defined = stats["crossing_defined"]
    if stats["n_seeds"] > 1 and math.isfinite(defined) and 0 < defined < 1:
        crossing += f" (crosses in {100 * defined:.0f}% of resamples)"
    return crossing


def describe_dip(stats: dict, x: str = "x", x_max: float = math.inf) -> dict[str, tuple[str, str]]:
    """The :func:`~ccjax.measure.statistics.dip_statistics` ``stats`` of an L/p curve against the
    naive line, in words for a table (paper §6.3): by quantity (``"at_zero"`` where the grid has
    ``x`` = 0, ``"min_value"``, ``"min_x"``, ``"grid_min"``, ``"crossing"``), a (what, value) pair,
    the value as ``value +- bootstrap SD [low, high]`` (what is missing left out). ``x`` names the
    curve's axis and ``x_max`` is its largest grid point (for a curve that does not cross).

    Args:
        stats: the dict of :func:`~ccjax.measure.statistics.dip_statistics` (``min_x`` keys, not renamed).
        x: the name of the curve's axis.
        x_max: its largest grid point.

    Returns:
        ``{quantity: (what, value)}``, both strings.
    """
    fit = "parabola vertex" if stats["min_fitted"] else "lowest grid point"
    described = {}
    if "at_zero" in stats:
        described["at_zero"] = (f"L/p at {x} = 0", _estimate(stats, "at_zero", "_sem"))
    return described | {
        "min_value": (f"minimum L/p ({fit})", _estimate(stats, "min_value")),
        "min_x": (f"{x} at the minimum", _estimate(stats, "min_x")),
        "grid_min": (
            f"lowest grid point of the mean ({x}, L/p)",
            f"{stats['grid_min_x']:.4f}, {stats['grid_min_value']:.4f}",
        ),
        "crossing": (f"{x} where it crosses naive {stats['level']:.4f} again", _crossing(stats, x, x_max)),
    }
