"""The search's summary tables of the built references and the probe: every cell's naive, built
and trained losses, trained minus built with its SEM over seeds, and the shared-neuron probe."""

from collections.abc import Mapping

import numpy as np

from ..measure.statistics import mean_and_sem
from ..report import format_table
from ._advantage import naive_reference


def format_estimate(mean: float, sem: float) -> str:
    """``+0.123 ± 0.004`` (the mean alone where the SEM is not finite, e.g. of one seed)."""
    return f"{mean:+.3f} ± {sem:.3f}" if np.isfinite(sem) else f"{mean:+.3f}"


def _cells(results: Mapping[str, np.ndarray]):
    """(t, d, j, task, ratio, p) for every cell of the grid, task-major."""
    for t, task in enumerate(results["tasks"]):
        for d, ratio in enumerate(results["d_ratios"]):
            for j, p in enumerate(results["ps"]):
                yield t, d, j, str(task), float(ratio), float(p)


def _structure(task: str, structure: float, scale: float) -> str:
    """The built reference's settings as text: k (embedding), rank (semi-NMF) or q (AND; 0: naive)."""
    if not np.isfinite(structure):
        return "none"
    if structure == 0:
        return "naive"
    if task.startswith("and-pairs"):
        return f"q={structure:.2f} c={scale:g}"
    return f"{'rank' if task.startswith('two-step') else 'k'}={structure:g} c={scale:g}"


def built_table(results: Mapping[str, np.ndarray]) -> str:
    """One row per cell (task, d/n, p): the naive, built and trained losses L/p, the built and trained
    advantages over naive, and trained minus built (in advantage units, mean ± SEM over seeds).

    Args:
        results: The arrays of :func:`~ccjax.cis.search` (:data:`ccjax.cis.SEARCH_RESULTS`), by name.

    Returns:
        The table as text.
    """
    rows = []
    for t, d, j, task, ratio, p in _cells(results):
        cell = (t, d, slice(None), j)
        naive = naive_reference({name: results[f"grid_{name}"][cell] for name in ("naive_closed_form", "naive_mc")})[0]
        trained, built = results["grid_advantage"][cell], results["grid_built_advantage"][cell]
        loss = mean_and_sem(results["grid_loss"][cell] / p)
        settings = _structure(task, results["grid_built_structure"][cell][0], results["grid_built_scale"][cell][0])
        row = [task, f"{ratio:g}", f"{p:g}", f"{naive / p:.4g}", f"{results['grid_built_loss'][cell][0] / p:.4g}"]
        gains = (format_estimate(*mean_and_sem(gain)) for gain in (trained, trained - built))
        rows.append(row + [f"{loss[0]:.4g}", f"{built[0]:+.3f}", *gains, settings])
    header = ["task", "d/n", "p", "naive L/p", "built L/p", "trained L/p", "built adv", "trained adv"]
    return format_table(header + ["trained - built", "built settings"], rows)


def probe_table(results: Mapping[str, np.ndarray]) -> str:
    """One row per cell of a task with signed inputs: the probe's losses (two active features that
    share neurons) relative to the naive model's, trained and built, and ``(built - trained) / naive``
    (mean ± SEM over seeds; > 0 where the trained models beat the built one), for opposite and equal signs.

    Args:
        results: The arrays of :func:`~ccjax.cis.search`, by name (with the ``grid_probe_*`` arrays).

    Returns:
        The table as text (no rows where no task has signed inputs).
    """
    rows = []
    for t, d, j, task, ratio, p in _cells(results):
        cell, row = (t, d, slice(None), j), [task, f"{ratio:g}", f"{p:g}"]
        if not np.isfinite(results["grid_probe_opposite"][cell]).any():
            continue
        for sign in ("opposite", "equal"):
            naive = results[f"grid_probe_naive_{sign}"][cell]
            trained = results[f"grid_probe_{sign}"][cell] / naive
            built = results[f"grid_probe_built_{sign}"][cell] / naive
            row += [f"{np.mean(trained):.3f}", f"{np.mean(built):.3f}", format_estimate(*mean_and_sem(built - trained))]
        rows.append(row)
    header = ["task", "d/n", "p"]
    header += [f"{sign}: {what}" for sign in ("opposite", "equal") for what in ("trained", "built", "built - trained")]
    return format_table(header, rows)


def built_check(results: Mapping[str, np.ndarray]) -> str:
    """Per task, the largest |z| of the built reference's loss on the evaluation's samples against
    fresh ones, ``(built - fresh) / sqrt(sem² + fresh sem²)`` (below 3: they agree).

    Args:
        results: The arrays of :func:`~ccjax.cis.search`, by name.

    Returns:
        One line of text.
    """
    same, fresh = results["grid_built_loss"], results["grid_built_fresh_loss"]
    z = (same - fresh) / np.hypot(results["grid_built_loss_sem"], results["grid_built_fresh_loss_sem"])
    rows = [(task, row) for task, row in zip(results["tasks"], z, strict=True) if np.isfinite(row).any()]
    largest = ", ".join(f"{task} {np.nanmax(np.abs(row)):.1f}" for task, row in rows)
    return f"built reference vs fresh samples, largest |z|: {largest}"
