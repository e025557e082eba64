"""The search's summary: the naive references checked, the references without CiS set beside
the trained models, and the summary of a search as text tables (:func:`describe_search`)."""

from collections.abc import Mapping, Sequence

import numpy as np

from .._types import Float
from ..measure.baselines import optimal_offset
from ..measure.statistics import mean_and_sem
from ..report import format_table
from ._advantage import advantage
from ._grid import d_mlp_of
from ._reference_tables import built_check, built_table, format_estimate, probe_table
from ._search import beyond_built, rechecked_cell


def naive_check(
    naive_mc: Float[np.ndarray, "tasks ratios seeds ps"],
    naive_closed_form: Float[np.ndarray, "tasks ratios seeds ps"],
    naive_mc_sem: Float[np.ndarray, "tasks ratios seeds ps"],
) -> Float[np.ndarray, " tasks"]:
    """Per task, the largest |z| of its Monte Carlo naive loss against the closed form,
    ``(naive_mc - naive_closed_form) / naive_mc_sem``, over its cells (d/n, seed, p; NaN ignored); NaN for a
    task without a closed form. Near 2 or below: the closed form and the estimate agree.

    Args:
        naive_mc: The naive loss by Monte Carlo (L), (tasks, ratios, seeds, ps).
        naive_closed_form: The naive loss in closed form (L; NaN where there is none), same shape.
        naive_mc_sem: The standard error of ``naive_mc``, same shape.

    Returns:
        The largest |z| per task, (tasks,), float64.
    """
    z = np.asarray((naive_mc - naive_closed_form) / naive_mc_sem, np.float64)
    return np.array([np.nanmax(np.abs(row)) if np.isfinite(row).any() else np.nan for row in z])


def offset_advantage(
    n_features: int, d_ratios: Sequence[float] | np.ndarray, ps: Sequence[float] | np.ndarray
) -> Float[np.ndarray, "ratios ps"]:
    """The advantage over naive of relu's naive + offset model (exact, docs/paper.md §5): the
    dense-regime mechanism, not CiS, as a reference for the relu task, per d/n and p.

    Args:
        n_features: Number of input features n.
        d_ratios: The ratios d/n (each d by :func:`d_mlp_of`), (ratios,).
        ps: Feature probabilities in (0, 1], (ps,).

    Returns:
        ``(naive - offset) / naive`` at the best offset b*(p), (ratios, ps), float64.
    """
    rows = []
    for ratio in d_ratios:
        d = d_mlp_of(n_features, float(ratio))
        _, loss = optimal_offset(np.asarray(ps), n_features=n_features, d_mlp=d)
        rows.append(advantage(np.asarray(loss), (n_features - d) / n_features / 6.0))
    return np.asarray(rows, np.float64)


def _task_table(results: Mapping[str, np.ndarray], mean, sem, share=None, tasks=None) -> str:
    """A table of mean ± SEM (task, d/n, p), with the naive-like ``share`` if given: a row per task
    (of the indices ``tasks``, default all) and d/n."""

    def cell(t, d, j):
        return format_estimate(mean[t, d, j], sem[t, d, j]) + ("" if share is None else f" ({share[t, d, j]:.2f})")

    rows = [
        [results["tasks"][t], f"{ratio:g}", *(cell(t, d, j) for j in range(len(results["ps"])))]
        for t in (range(len(results["tasks"])) if tasks is None else tasks)
        for d, ratio in enumerate(results["d_ratios"])
    ]
    return format_table(["task", "d/n"] + [f"p = {p:g}" for p in results["ps"]], rows)


def _ratio_table(results: Mapping[str, np.ndarray], values) -> str:
    """A table of advantages (d/n, p): a row per d/n."""
    ratios = results["d_ratios"]
    rows = [[f"{ratio:g}", *(f"{value:+.3f}" for value in row)] for ratio, row in zip(ratios, values, strict=True)]
    return format_table(["d/n"] + [f"p = {p:g}" for p in results["ps"]], rows)


def _grid_lines(results: Mapping[str, np.ndarray]) -> list[str]:
    """The advantage table with the naive-like shares, the MSE advantage of the tasks trained on
    another loss, the check of the naive closed forms and relu's control at p = 0.01."""
    tasks, ps, ratios = results["tasks"], results["ps"], results["d_ratios"]
    mean, sem = mean_and_sem(results["grid_advantage"], axis=2)
    share = np.nanmean(results["grid_naive_like_share"], axis=2)
    lines = ["advantage over naive, (naive - trained)/naive, mean ± SEM over seeds (naive-like share):"]
    lines.append(_task_table(results, mean, sem, share))
    own_loss = [t for t in range(len(tasks)) if not np.allclose(results["grid_loss"][t], results["grid_mse"][t])]
    if own_loss and "grid_naive_mse" in results:  # trained on another loss: their MSE against the naive model's
        gain = mean_and_sem(advantage(results["grid_mse"], results["grid_naive_mse"]), axis=2)
        lines.append("the same models' advantage in mean squared error (naive MSE - MSE) / naive MSE:")
        lines.append(_task_table(results, *gain, tasks=own_loss))
    largest = naive_check(results["grid_naive_mc"], results["grid_naive_closed_form"], results["grid_naive_mc_sem"])
    checked = ", ".join(f"{task} {z:.1f}" for task, z in zip(tasks, largest, strict=True) if np.isfinite(z))
    lines.append(f"naive closed form vs Monte Carlo, largest |z|: {checked}")
    if "relu" in tasks and 0.01 in ps and 0.5 in ratios:
        t, d, j = list(tasks).index("relu"), list(ratios).index(0.5), list(ps).index(0.01)
        control = results["grid_loss"][t, d, :, j] / 0.01
        lines.append(f"control: relu at p = 0.01, d/n = 0.5 trains to L/p = {control.mean():.4f} (naive 0.0833)")
    return lines


def _pilot(results: Mapping[str, np.ndarray], task: int, n: int) -> str:
    """The one-seed lr pilot's final training losses at the ``n``-th n (nothing for results without one)."""
    if "check_scaling_pilot_loss" not in results:
        return ""
    losses = ", ".join(
        f"{lr:g}: {loss:.3g}"
        for lr, loss in zip(results["scaling_lrs"], results["check_scaling_pilot_loss"][task, n], strict=True)
    )
    return f"; pilot {losses}"


LONG_SKIPPED = "4 x its output layer is above cis.CHECK_MAX_WEIGHTS"


def _offsets_by_n(results: Mapping[str, np.ndarray], task: str) -> np.ndarray | None:
    """relu's naive + offset advantage (:func:`offset_advantage`) at each n of the scaling check, at
    the cell the search re-checked; None for another task or results without built references."""
    if task != "relu" or "grid_built_advantage" not in results:
        return None
    grid = {"advantage": results["grid_advantage"], "built_advantage": results["grid_built_advantage"]}
    margin, positive = beyond_built(grid)
    d, p = rechecked_cell(*(array[list(results["tasks"]).index(task)] for array in (margin, positive)))
    ratio, p = results["d_ratios"][d], results["ps"][p]
    return np.array([offset_advantage(int(n), [ratio], [p])[0, 0] for n in results["scaling_ns"]])


def _recheck_lines(results: Mapping[str, np.ndarray]) -> list[str]:
    """Each positive task's re-checks: 4x steps, the second optimizer, and at each n the advantage at
    the chosen lr, the built reference's, the lr, the worst final / first-step training loss and the
    lr pilot's final losses."""
    lines = []
    for k, task in enumerate(results["positive_tasks"]):
        long, other = (mean_and_sem(results[f"check_{name}"][k]) for name in ("long", "second_optimizer"))
        long = format_estimate(*long) if np.isfinite(long[0]) else f"skipped ({LONG_SKIPPED})"
        lines.append(f"{task}: 4x steps {long}; second optimizer {format_estimate(*other)}; by n:")
        scaling = zip(results["scaling_ns"], *mean_and_sem(results["check_scaling"][k], axis=-1), strict=True)
        offsets = _offsets_by_n(results, task)
        for i, (n, mean, sem) in enumerate(scaling):
            built, lr = results["check_scaling_built"][k, i], results["check_scaling_lr"][k, i]
            if np.isnan(lr):
                lines.append(f"    n={n}: skipped (its output layer is above cis.CHECK_MAX_WEIGHTS)")
                continue
            ratio = results["check_scaling_final_over_initial"][k, i]
            at_lr = f"at lr {lr:g}, final/first training loss {ratio:.3g}"
            offset = "" if offsets is None else f", naive + offset {offsets[i]:+.3f}"
            lines.append(
                f"    n={n}: {format_estimate(mean, sem)} (built {built:+.3f}{offset}) {at_lr}{_pilot(results, k, i)}"
            )
    if not len(results["positive_tasks"]):
        lines.append("no task beats its naive model (and its built reference) by more than 2 SEM anywhere on the grid")
    return lines


def describe_search(results: Mapping[str, np.ndarray], n_features: int) -> str:
    """The summary of a :func:`~ccjax.cis.search` (its ``results``, at ``n_features``) as text
    tables: the advantage over naive, mean ± SEM over seeds, with the naive-like shares; the MSE
    advantage of the tasks trained on another loss; the check of the naive closed forms against
    Monte Carlo; relu's naive + offset (:func:`offset_advantage`); every cell's naive, built and
    trained loss with trained minus built; the check of the built references on fresh samples;
    the shared-neuron probe; and the re-checks of the positive tasks.

    Args:
        results: The arrays :func:`~ccjax.cis.search` returns (:data:`ccjax.cis.SEARCH_RESULTS`), by name.
        n_features: The search's n (its ``SearchGrid.n_features``), for relu's offset reference.

    Returns:
        The summary, lines of text joined by newlines.
    """
    tasks, ps, ratios = results["tasks"], results["ps"], results["d_ratios"]
    lines = _grid_lines(results)
    if "relu" in tasks:
        lines.append("relu's reference without CiS, naive + the best offset (exact, docs/paper.md §5), has advantage")
        lines.append(_ratio_table(results, offset_advantage(n_features, ratios, ps)))
    if "grid_built_loss" not in results:  # results saved before the built references
        lines.append("no built references or probe in these results: rerun the search for them")
        return "\n".join(lines)
    lines.append("every cell against its built reference (L/p; advantages over naive; trained - built ± SEM):")
    lines += [built_table(results), built_check(results)]
    lines.append("probe, two active features sharing neurons: loss / naive's, and (built - trained) / naive ± SEM:")
    lines.append(probe_table(results))
    return "\n".join(lines + _recheck_lines(results))
