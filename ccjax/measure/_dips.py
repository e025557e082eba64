"""The σ-sweep's dip analysis of several named curves (docs/paper.md §6.3): each curve's
:func:`~ccjax.measure.statistics.dip_statistics`, keyed for a results file by the swept
quantity's name, and read back from one.
"""

import math
from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Real

from .statistics import dip_statistics


def _renamed(stats: Mapping, old: str, new: str) -> dict:
    return {key.replace(old, new): value for key, value in stats.items()}


def dip_analyses(
    x: Real[np.ndarray, " points"],
    values: Real[np.ndarray, "curves seeds points"],
    names: Sequence[str],
    level: float,
    n_boot: int = 2000,
    seed: int = 0,
    x_name: str = "x",
) -> dict[str, dict]:
    """:func:`~ccjax.measure.statistics.dip_statistics` of each curve of ``values`` (e.g. L/p of
    each mixing family, seeds x points over ``x``) below ``level`` (e.g. the naive L/p), by its
    name in ``names``, each with the same bootstrap ``n_boot`` and ``seed``. The keys that name x
    (``min_x``, ``min_x_se``, ...) name ``x_name`` instead (``min_sigma``), as results files keep them.

    Args:
        x: the grid, (points,), strictly increasing (e.g. σ).
        values: the curves, (curves, seeds, points) (e.g. L/p); NaN marks a diverged model, left out.
        names: one name per curve (e.g. the mixing families).
        level: the level each curve dips below and crosses again, in ``values``' units (e.g. the naive L/p).
        n_boot: bootstrap resamples of the seeds.
        seed: the numpy seed of the resampling.
        x_name: the name of x in the keys.

    Returns:
        ``{name: dip statistics}``, each the dict of :func:`~ccjax.measure.statistics.dip_statistics`
        with its x keys renamed.
    """
    return {
        str(name): _renamed(dip_statistics(x, curve, level, n_boot, seed), "min_x", f"min_{x_name}")
        for name, curve in zip(names, values, strict=True)
    }


def saved_dip_analyses(saved: Mapping[str, Mapping], x_name: str = "x") -> dict[str, dict]:
    """:func:`dip_analyses` as read back from a results file (``saved``): the keys that name
    ``x_name`` name x again (``min_x``), and a missing value (JSON's null) is NaN.

    Args:
        saved: ``{name: dip statistics}`` as a results file holds them.
        x_name: the name of x in the saved keys (as given to :func:`dip_analyses`).

    Returns:
        ``{name: dip statistics}`` with the keys of :func:`~ccjax.measure.statistics.dip_statistics`.
    """
    return {
        name: {
            key: math.nan if value is None else value
            for key, value in _renamed(stats, f"min_{x_name}", "min_x").items()
        }
        for name, stats in saved.items()
    }
