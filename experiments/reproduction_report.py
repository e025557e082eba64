"""REPRODUCTION.md: every published number next to ours, from the saved results of each stage.

This module fills the tables and numbers into the fixed prose of ``reproduction_template.md``.
Each stage's ``compare(arrays, manifest)`` (:class:`~experiments._spec.Stage`) returns its
:class:`~ccjax.report.Comparison` rows from the saved results; the closed-form baselines are
:func:`ccjax.report.compare_baselines`; the errata section shows the five places where the paper's
code, figures or text disagree, with our numbers both ways. A missing value of ours (None or NaN)
is shown as "not reached" and does not agree.
"""

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import ccjax
from ccjax import analysis, measure, report
from ccjax.engine import format_duration

from . import _rank_conventions as rank_conventions
from ._spec import Stage

TEMPLATE = Path(__file__).with_name("reproduction_template.md")
SIGN_FAMILIES = {"embedding": "faithful I − W_E W_Eᵀ", "embedding-code-sign": "code W_E W_Eᵀ − I"}
JB = measure.RANK_JB_SCRIPT  # the authors' _jb script: its ranks, where it plots them, its runs per rank
TRANSPLANT_ROWS = (
    "after training with mixing, on its mixed labels",
    "the same weights on clean labels",
    "the same weights fine-tuned on clean labels",
)


def saved_results(directory: Path) -> tuple[dict, dict] | None:
    """The finished results (arrays, manifest) in ``directory``, or None."""
    try:
        return ccjax.load_results(directory)
    except (FileNotFoundError, ccjax.ResultsError):
        return None


def _estimate(values) -> str:
    return report.format_estimate(*report.mean_sem(values))


def _table(table: tuple[Sequence, list] | None) -> str:
    """An errata table, ``(header, rows)``, after a blank line and indented into its numbered item; "" for
    None (no results)."""
    return "" if table is None else "\n\n" + "\n".join(report.markdown_rows(*table, indent="   ", compact=True))


def _sign_table(arrays_of: dict) -> tuple[tuple, list]:
    rows = []
    if (arrays := arrays_of.get("mixing_types")) is not None:
        families = [str(f) for f in arrays["families"]]
        for family in (family for family in SIGN_FAMILIES if family in families):
            value = _estimate(arrays["at_p_train"][families.index(family)])
            rows.append((f"reduced model, {SIGN_FAMILIES[family]}", value))
    if (arrays := arrays_of.get("scale_sweep_full_model")) is not None:
        rows.append(("full 1000-dim residual CC model", _estimate(arrays["loss_per_feature"][:, -1])))
    return ("model", "L/p"), rows


def _snmf_table(arrays_of: dict) -> tuple[tuple, list] | None:
    arrays = arrays_of.get("snmf_sweep")
    if arrays is None or "asymmetric" not in (families := [str(f) for f in arrays["families"]]):
        return None
    loss = arrays["snmf_loss"][families.index("asymmetric")]  # (seeds, sigmas, orientations)
    code, faithful = ([str(o) for o in arrays["orientations"]].index(o) for o in ("paper-code", "faithful"))
    rows = [
        (f"{sigma:g}", _estimate(loss[:, s, code]), _estimate(loss[:, s, faithful]))
        for s, sigma in enumerate(arrays["sigmas"])
    ]
    return ("σ", "SNMF of I + σM (paper code)", "SNMF of (I + σM)ᵀ (faithful)"), rows


def _transplant_table(arrays_of: dict) -> tuple[tuple, list] | None:
    if (arrays := arrays_of.get("transplant")) is None:
        return None
    rows = [(label, _estimate(loss)) for label, loss in zip(TRANSPLANT_ROWS, arrays["loss_per_feature"], strict=True)]
    clean = arrays_of.get("scale_sweep")
    if clean is not None and 0.0 in clean["scales"]:
        at_zero = clean["loss_per_feature"][:, report.index_of(clean["scales"], 0.0)]
        rows.append(("a different model trained on clean labels (the splice)", _estimate(at_zero)))
    return ("", "L/p"), rows


def _grid_minimum(sigmas, curve) -> str:
    """The grid σ where ``curve`` is lowest, ignoring diverged (NaN) points; "not reached" if none."""
    curve = np.asarray(curve, np.float64)
    return f"{sigmas[np.nanargmin(curve)]:g}" if np.any(np.isfinite(curve)) else report.NOT_REACHED


def _seeds_table(arrays_of: dict) -> tuple[tuple, list] | None:
    if (arrays := arrays_of.get("sigma_sweep")) is None:
        return None
    rows = []
    losses = np.asarray(arrays["loss_per_feature"], np.float64)  # (families, seeds, sigmas)
    for family, loss in zip(arrays["families"], losses, strict=True):
        with np.errstate(all="ignore"):
            mean_curve = np.nanmean(loss, axis=0)
        spread = ", ".join(_grid_minimum(arrays["sigmas"], curve) for curve in loss)
        rows.append((family, spread, f"{_grid_minimum(arrays['sigmas'], mean_curve)} (grid point)"))
    return ("family", "σ at the minimum, one seed per run (the paper's protocol)", "mean of all seeds"), rows


def _jb_table() -> tuple[tuple, list]:
    rows = [("plotted at (hand-set)", *JB["plotted_at"])]
    for zero, label in ((True, "diagonal zeroed"), (False, "diagonal kept")):
        effective_ranks = analysis.low_rank_effective_ranks(JB["ranks"], zero, draws=JB["draws"])
        rows.append((label, *(f"{x:.1f}" for x in effective_ranks)))
    return ("r (the `_jb` script)", *JB["ranks"]), rows


def _rank_table(saved: dict) -> tuple[tuple, list]:
    """The rank_sweep stages' trend slopes, paired by recipe and family: diagonal kept, zeroed."""
    manifests = [saved[stage.name][1] for stage in rank_conventions.STAGES if saved.get(stage.name) is not None]
    header = ("recipe", "family", "diagonal kept (the text's U Vᵀ)", "diagonal zeroed (the figure's)")
    return header, rank_conventions.paired_trends(manifests) or [("(no rank_sweep results)", "", "", "")]


def _seconds(timings: dict) -> float:
    """Wall seconds of a stage run on its own: the blocks its manifest's ``timings`` timed
    (``<name>_seconds``), not the training's split of its own block into run and compile seconds."""
    parts = ("sweep_run_seconds", "compile_seconds")
    return sum(float(value) for key, value in timings.items() if key.endswith("_seconds") and key not in parts)


def _wall_times(log: dict, stages: list[str], saved: dict) -> str:
    rows, total = [], 0.0
    for stage in stages:
        entry, results = log.get(stage), saved.get(stage)
        command = "?" if results is None else results[1].get("command", "?")
        if entry is not None:
            seconds = entry["seconds"]
            status = "" if entry["returncode"] == 0 else f" (FAILED, exit {entry['returncode']})"
        elif results is not None:
            seconds, status = _seconds(results[1].get("timings", {})), " (run on its own; train + eval)"
        else:
            rows.append((stage, "not run", ""))
            continue
        total += seconds
        rows.append((stage, f"{format_duration(seconds)}{status}", f"`{command}`"))
    rows.append(("**total**", f"**{format_duration(total)}**", ""))
    return "\n".join(report.markdown_rows(("stage", "wall time", "command"), rows, compact=True))


def _stage_section(stage: Stage, saved: dict, comparisons: dict, out: Path, quick: bool) -> str:
    lines = ["", "", f"## {stage.title}", ""]
    if saved.get(stage.name) is None:
        return "\n".join([*lines, f"Not run: no results in `{out / stage.name}`."])
    lines.append(f"Command: `{saved[stage.name][1].get('command', '?')}`")
    if comparisons.get(stage.name):
        lines += ["", report.markdown_table(comparisons[stage.name])]
    figure = Path("figures") / f"{stage.name}.png"
    if not quick and figure.exists():
        lines += ["", f"![{stage.name}]({figure.as_posix()})"]
    return "\n".join(lines)


def report_text(saved: dict, stages: Sequence[Stage], log: dict, out: Path, *, quick: bool = False) -> str:
    """The report for ``saved`` (stage name -> its (arrays, manifest), or None when it has no
    results under ``out``) and ``log`` (reproduce.json: stage name -> its wall time and exit code)."""
    comparisons = {"baselines": report.compare_baselines()} | {
        stage.name: stage.compare(*saved[stage.name]) for stage in stages if stage.compare and saved.get(stage.name)
    }
    flat = [c for rows in comparisons.values() for c in rows]
    device = ""
    if environment := next((s[1]["environment"] for s in saved.values() if s and "environment" in s[1]), None):
        kind = f"{environment.get('device_count')} × {environment.get('device_kind')} ({environment.get('backend')})"
        jax_version = environment.get("versions", {}).get("jax", "?")
        device = f"\n\nDevice: {kind}, {environment.get('platform')}; jax {jax_version}."
    arrays_of = {stage: results[0] for stage, results in saved.items() if results is not None}
    text = TEMPLATE.read_text(encoding="utf-8").format(
        quick_title=" (quick smoke run: NOT paper scale)" if quick else "",
        quick_flag=" --quick" if quick else "",
        date=datetime.date.today().isoformat(),
        n_agree=sum(c.agrees is True for c in flat),
        n_checked=sum(c.agrees is not None for c in flat),
        device=device,
        wall_times=_wall_times(log, [stage.name for stage in stages], saved),
        baselines=report.markdown_table(comparisons["baselines"]),
        stages="".join(_stage_section(stage, saved, comparisons, out, quick) for stage in stages),
        sign_table=_table(_sign_table(arrays_of)),
        snmf_table=_table(_snmf_table(arrays_of)),
        transplant_table=_table(_transplant_table(arrays_of)),
        seeds_table=_table(_seeds_table(arrays_of)),
        jb_table=_table(_jb_table()),
        rank_table=_table(_rank_table(saved)),
    )
    return text + "\n"  # the report has always ended with a blank line


def write_report(path: Path, out: Path, stages: Sequence[Stage], log: dict, *, quick: bool = False) -> None:
    """Write the reproduction report for the saved results of ``stages`` under ``out``."""
    saved = {stage.name: saved_results(out / stage.name) for stage in stages}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_text(saved, stages, log, out, quick=quick), encoding="utf-8")
