"""REPRODUCTION.md: every published number next to ours, from the saved results of each stage.

The report's fixed prose is ``reproduction_template.md`` beside this file; this module fills
in its tables and numbers. Each stage's ``compare(arrays, manifest)``, declared by its
experiment (:class:`~experiments._spec.Stage`), reads the saved results and returns its
:class:`~experiments.Comparison` rows; the baselines are compared here, in closed
form, and the errata section shows the five places where the paper's code, figures or text
disagree, with our numbers both ways. A missing value of ours (None or NaN) is shown as
"not reached" and does not agree.
"""

import datetime
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import ccjax
from ccjax import analysis, baselines, report
from ccjax.engine import format_duration

from ._rank_conventions import JB_DRAWS, JB_PLOTTED_AT, JB_RANKS, paired_trends
from ._spec import Stage, registered_stages

TEMPLATE = Path(__file__).with_name("reproduction_template.md")
SIGN_FAMILIES = {"embedding": "faithful I − W_E W_Eᵀ", "embedding-code-sign": "code W_E W_Eᵀ − I"}
TRANSPLANT_ROWS = (
    "after training with mixing, on its mixed labels",
    "the same weights on clean labels",
    "the same weights fine-tuned on clean labels",
)


def compare_baselines() -> list[report.Comparison]:
    """Closed-form baselines (docs/paper.md §5), computed here; no stage needed."""
    n, d = 100, 50
    naive = ccjax.naive_loss_per_feature(n, d)
    zero = float(ccjax.exactly_one_loss_per_feature(baselines.zero_model(n, d), np.zeros((n, n), np.float32)))
    rows = [
        report.compare_value("baselines", "naive L/p (clean labels)", 0.0833, [naive], exact=True),
        report.compare_value(
            "baselines", "zero model L/p", 1 / 6, [zero], approximate=False, read_error=1e-6, exact=True
        ),
    ]
    for p, b_star, loss in ((1.0, 0.0194, 0.0531), (0.1, 0.0132, 0.0813)):
        b, value = (float(x) for x in baselines.optimal_offset(p, n_features=n, d_mlp=d))
        for quantity, published, ours in (("b*", b_star, b), ("L/p at b*", loss, value)):
            name = f"naive + offset: {quantity}(p = {p:g})"
            rows.append(report.compare_value("baselines", name, published, [ours], read_error=1e-4, exact=True))
    return rows


def _load(out: Path, stage: str):
    try:
        return ccjax.load_results(out / stage)
    except (FileNotFoundError, ccjax.ResultsError):
        return None


def _estimate(values) -> str:
    return report.format_estimate(*report.mean_sem(values))


def _row(*cells) -> str:
    """One row of an errata table (indented into its numbered item)."""
    return "   | " + " | ".join(str(cell) for cell in cells) + " |"


def _table(header: Sequence[str], rows: list[str]) -> list[str]:
    """An errata table: ``header``'s cells, the separator, ``rows`` (each made by :func:`_row`)."""
    return [*report.markdown_rows(header, [], indent="   "), *rows]


def _lines(lines: list[str]) -> str:
    """``lines`` as text that continues a line of the template, each on a line of its own."""
    return "".join("\n" + line for line in lines)


def _sign_rows(arrays_of: dict) -> list[str]:
    rows = []
    if (arrays := arrays_of.get("mixing_types")) is not None:
        families = [str(f) for f in arrays["families"]]
        for family in (family for family in SIGN_FAMILIES if family in families):
            value = _estimate(arrays["at_p_train"][families.index(family)])
            rows.append(_row(f"reduced model, {SIGN_FAMILIES[family]}", value))
    if (arrays := arrays_of.get("scale_sweep_full_model")) is not None:
        rows.append(_row("full 1000-dim residual CC model", _estimate(arrays["loss_per_feature"][:, -1])))
    return rows


def _snmf_table(arrays_of: dict) -> list[str]:
    arrays = arrays_of.get("snmf_sweep")
    if arrays is None or "asymmetric" not in (families := [str(f) for f in arrays["families"]]):
        return []
    loss = arrays["snmf_loss"][families.index("asymmetric")]  # (seeds, sigmas, orientations)
    code, faithful = ([str(o) for o in arrays["orientations"]].index(o) for o in ("paper-code", "faithful"))
    rows = [
        _row(f"{sigma:g}", _estimate(loss[:, s, code]), _estimate(loss[:, s, faithful]))
        for s, sigma in enumerate(arrays["sigmas"])
    ]
    return ["", *_table(("σ", "SNMF of I + σM (paper code)", "SNMF of (I + σM)ᵀ (faithful)"), rows)]


def _transplant_table(arrays_of: dict) -> list[str]:
    if (arrays := arrays_of.get("transplant")) is None:
        return []
    losses = zip(TRANSPLANT_ROWS, arrays["loss_per_feature"], strict=True)
    rows = ["", "   | | L/p |", "   | --- | --- |", *(_row(label, _estimate(loss)) for label, loss in losses)]
    clean = arrays_of.get("scale_sweep")
    if clean is not None and 0.0 in clean["scales"]:
        at_zero = clean["loss_per_feature"][:, report.index_of(clean["scales"], 0.0)]
        rows.append(_row("a different model trained on clean labels (the splice)", _estimate(at_zero)))
    return rows


def _grid_minimum(sigmas, curve) -> str:
    """The grid σ where ``curve`` is lowest, ignoring diverged (NaN) points; "not reached" if none."""
    curve = np.asarray(curve, np.float64)
    return f"{sigmas[np.nanargmin(curve)]:g}" if np.any(np.isfinite(curve)) else report.NOT_REACHED


def _seeds_table(arrays_of: dict) -> list[str]:
    if (arrays := arrays_of.get("sigma_sweep")) is None:
        return []
    rows = []
    losses = np.asarray(arrays["loss_per_feature"], np.float64)  # (families, seeds, sigmas)
    for family, loss in zip(arrays["families"], losses, strict=True):
        with np.errstate(all="ignore"):
            mean_curve = np.nanmean(loss, axis=0)
        spread = ", ".join(_grid_minimum(arrays["sigmas"], curve) for curve in loss)
        rows.append(_row(family, spread, f"{_grid_minimum(arrays['sigmas'], mean_curve)} (grid point)"))
    header = ("family", "σ at the minimum, one seed per run (the paper's protocol)", "mean of all seeds")
    return ["", *_table(header, rows)]


def _jb_table() -> list[str]:
    rows = [_row("plotted at (hand-set)", *JB_PLOTTED_AT)]
    for zero, label in ((True, "diagonal zeroed"), (False, "diagonal kept")):
        effective_ranks = analysis.low_rank_effective_ranks(JB_RANKS, zero, draws=JB_DRAWS)
        rows.append(_row(label, *(f"{x:.1f}" for x in effective_ranks)))
    return _table(("r (the `_jb` script)", *JB_RANKS), rows)


def _rank_table(saved: dict) -> list[str]:
    """The rank_sweep stages' trend slopes, paired by recipe and family: diagonal kept, zeroed."""
    stages = [stage.name for stage in registered_stages() if stage.module == "rank_sweep"]
    rows = [_row(*cells) for cells in paired_trends(saved[name][1] for name in stages if saved.get(name) is not None)]
    header = ("recipe", "family", "diagonal kept (the text's U Vᵀ)", "diagonal zeroed (the figure's)")
    return _table(header, rows or ["   | (no rank_sweep results) | | | |"])


def _seconds(timings) -> float:
    """Seconds recorded in a manifest's ``timings``, summed over nested entries."""
    if isinstance(timings, dict):
        return sum(_seconds(value) for value in timings.values())
    return float(timings) if isinstance(timings, int | float) else 0.0


def _wall_times(log: dict, stages: list[str], saved: dict) -> list[str]:
    lines = ["| stage | wall time | command |", "| --- | --- | --- |"]
    total = 0.0
    for stage in stages:
        entry, results = log.get(stage), saved.get(stage)
        command = "?" if results is None else results[1].get("command", "?")
        if entry is not None:
            seconds = entry["seconds"]
            status = "" if entry["returncode"] == 0 else f" (FAILED, exit {entry['returncode']})"
        elif results is not None:
            seconds, status = _seconds(results[1].get("timings", {})), " (run on its own; train + eval)"
        else:
            lines.append(f"| {stage} | not run | |")
            continue
        total += seconds
        lines.append(f"| {stage} | {format_duration(seconds)}{status} | `{command}` |")
    return [*lines, f"| **total** | **{format_duration(total)}** | |"]


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
    comparisons = {"baselines": compare_baselines()}
    for stage in stages:
        if stage.compare is not None and saved.get(stage.name) is not None:
            comparisons[stage.name] = stage.compare(*saved[stage.name])
    flat = [c for rows in comparisons.values() for c in rows]
    environment = next((s[1]["environment"] for s in saved.values() if s and "environment" in s[1]), None)
    device = ""
    if environment:
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
        wall_times="\n".join(_wall_times(log, [stage.name for stage in stages], saved)),
        baselines=report.markdown_table(comparisons["baselines"]),
        stages="".join(_stage_section(stage, saved, comparisons, out, quick) for stage in stages),
        sign_rows=_lines(_sign_rows(arrays_of)),
        snmf_table=_lines(_snmf_table(arrays_of)),
        transplant_table=_lines(_transplant_table(arrays_of)),
        seeds_table=_lines(_seeds_table(arrays_of)),
        draws=JB_DRAWS,
        jb_table="\n".join(_jb_table()),
        rank_table="\n".join(_rank_table(saved)),
    )
    return text + "\n"  # the report has always ended with a blank line


def write_report(path: Path, out: Path, stages: Sequence[Stage], log: dict, *, quick: bool = False) -> None:
    """Write the reproduction report for the saved results of ``stages`` under ``out``."""
    saved = {stage.name: _load(out, stage.name) for stage in stages}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report_text(saved, stages, log, out, quick=quick), encoding="utf-8")
