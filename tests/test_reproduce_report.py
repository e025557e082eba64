"""experiments.reproduction_report: a missing value of ours (None in a manifest's JSON, or
NaN) is shown as "not reached" and does not agree; no comparer fails on one."""

import dataclasses
import importlib
import json
import math
import time

import numpy as np
import pytest

import ccjax
from ccjax import analysis, measure
from ccjax.report import NOT_REACHED, compare_range, compare_value, markdown_table
from experiments import _rank_conventions as rank_conventions
from experiments import reproduce, sigma_sweep
from experiments import reproduction_report as report


def sigma_analysis(**changes) -> dict:
    """One family's saved sigma_sweep analysis (manifest["analysis"][family]), as JSON stores it."""
    analysed = {
        "n_seeds": 2,
        "min_value": 0.079,
        "min_value_se": 0.0004,
        "min_sigma": 0.03,
        "min_sigma_se": 0.002,
        "min_sigma_low": 0.028,
        "min_sigma_high": 0.032,
        "crossing": 0.05,
        "crossing_se": 0.001,
        "at_zero": 0.0833,
    }
    return analysed | changes


def test_sigma_sweep_comparer_shows_a_crossing_never_reached_as_not_reached():
    # A short run's σ curve never comes back up to naive: the manifest holds "crossing": null.
    analysed = sigma_analysis(crossing=None, crossing_se=None, min_sigma_low=None, min_sigma_high=None)
    arrays = {"families": np.array(["asymmetric"]), "loss_per_feature": np.full((1, 2, 5), 0.08)}
    rows = sigma_sweep.compare(arrays, {"analysis": {"asymmetric": analysed}})
    crossing = next(row for row in rows if "crosses naive" in row.quantity)
    assert crossing.ours == NOT_REACHED and crossing.agrees is False
    at_minimum = next(row for row in rows if "σ at the minimum" in row.quantity)
    assert at_minimum.ours == "0.0300 ± 0.0020" and f"{NOT_REACHED}–{NOT_REACHED}" in at_minimum.note
    assert "| not reached | **no** |" in markdown_table(rows)


def test_sigma_sweep_comparer_with_every_number_missing():
    missing = {key: None for key in sigma_analysis() if key not in ("n_seeds", "at_zero")}
    arrays = {"families": np.array(["symmetric"]), "loss_per_feature": np.full((1, 2, 5), np.nan)}
    rows = sigma_sweep.compare(arrays, {"analysis": {"symmetric": sigma_analysis(**missing)}})
    assert len(rows) == 4
    assert all(row.agrees is False for row in rows)
    assert all(row.ours.startswith(NOT_REACHED) for row in rows), [row.ours for row in rows]


def rank_manifest(convention: str, **stats) -> dict:
    return {"convention": convention, "trend": {"definition": "text", "low-rank": {"n_seeds": 1, **stats}}}


@pytest.mark.parametrize("convention", ["spec", "paper-code"])
def test_rank_sweep_comparer_with_missing_slope_sem_and_spearman(convention):
    # One seed: the slope has no SEM (NaN, stored as null); one rank gives no Spearman.
    (row,) = rank_conventions.compare({}, rank_manifest(convention, slope=0.01, slope_sem=None, spearman=None))
    assert row.ours.startswith("slope +0.0100 per e-fold") and "±" not in row.ours
    assert f"Spearman(rank, L/p) {NOT_REACHED}" in row.note
    assert row.agrees is (False if convention == "paper-code" else None)
    (row,) = rank_conventions.compare({}, rank_manifest(convention, slope=None, slope_sem=None, spearman=None))
    assert row.ours == NOT_REACHED


@pytest.mark.parametrize("missing", [None, math.nan])
def test_compare_range_and_value_show_a_missing_estimate_as_not_reached(missing):
    row = compare_range("x", "q", 0.02, 0.03, missing, missing, ours="never shown")
    assert row.ours == NOT_REACHED and row.agrees is False
    row = compare_range("x", "q", 0.02, 0.03, 0.025, missing)  # no uncertainty: the estimate alone
    assert row.ours == "0.0250" and row.agrees is True
    for exact in (False, True):
        row = compare_value("x", "q", 0.07, [missing, missing], exact=exact)
        assert row.ours == NOT_REACHED and row.agrees is False


def test_seed_errata_skip_diverged_points_and_show_an_all_diverged_seed_as_not_reached():
    loss = np.array([[[0.08, 0.07, 0.09], [np.nan, 0.075, 0.07], [np.nan, np.nan, np.nan]]])
    arrays = {"families": np.array(["asymmetric"]), "sigmas": np.array([0, 0.1, 0.2]), "loss_per_feature": loss}
    table = report._table(report._seeds_table({"sigma_sweep": arrays})).splitlines()
    (row,) = [line for line in table if line.startswith("   | asymmetric")]
    assert row == f"   | asymmetric | 0.1, 0.2, {NOT_REACHED} | 0.1 (grid point) |"


def rank_stage(convention: str, zero_diagonal: bool, slope: float, steps: int) -> tuple[dict, dict]:
    config = {"lr": 1e-3, "schedule": "constant", "batch_size": 1024, "steps": steps}
    stats = {"slope": slope, "slope_sem": 0.0004, "spearman": 0.9 if slope > 0 else -0.9, "n_seeds": 3}
    manifest = {"convention": convention, "zero_diagonal": zero_diagonal, "config": config}
    return {}, manifest | {"trend": {"definition": "text", "low-rank": stats}}


def test_rank_erratum_pairs_the_diagonals_under_each_recipe_and_names_the_commits(tmp_path):
    saved = {
        "rank_sweep_paper_code": rank_stage("paper-code", True, 0.0071, 30_000),
        "rank_sweep_paper_code_diagonal_kept": rank_stage("paper-code", False, -0.0030, 30_000),
        "rank_sweep": rank_stage("spec", False, -0.0035, 10_000),
    }
    text = report.report_text(saved, (), {}, tmp_path)
    lines = text.splitlines()
    for commit in ("046b67a", "29c3ec5", "c8eead4", "5b72674"):
        assert commit in text
    recipe = "lr 1e-3 constant, batch 1,024, 30,000 steps"
    assert f"   | paper-code: {recipe} | low-rank | -0.0030 ± 0.0004 (ρ -0.90) | +0.0071 ± 0.0004 (ρ +0.90) |" in lines
    spec = "   | spec: lr 1e-3 constant, batch 1,024, 10,000 steps | low-rank | -0.0035 ± 0.0004 (ρ -0.90) "
    assert f"{spec}| not run (stage `rank_sweep_zero_diagonal`) |" in lines
    # Only the figure's M (the authors' recipe, diagonal zeroed) is counted against the paper.
    counted = {stage: [row.agrees for row in rank_conventions.compare(*saved[stage])] for stage in saved}
    assert counted == {
        "rank_sweep_paper_code": [True],
        "rank_sweep_paper_code_diagonal_kept": [None],
        "rank_sweep": [None],
    }


def test_the_jb_scripts_hand_set_effective_ranks_are_those_of_a_zeroed_diagonal():
    # nb6_mixing_matrix_rank_jb.py plots ranks 1000, 70, 30, 20, 9 at effective ranks 80, 60, 40, 30, 20.
    ranks, plotted_at, draws = (measure.RANK_JB_SCRIPT[key] for key in ("ranks", "plotted_at", "draws"))
    zeroed, kept = (analysis.low_rank_effective_ranks(ranks, zero, draws=draws) for zero in (True, False))
    np.testing.assert_allclose(zeroed, plotted_at, atol=2.5)
    assert np.all(np.asarray(kept[1:]) < np.asarray(plotted_at[1:]) - 4)


def test_a_report_with_no_results_fills_every_field_of_the_template(tmp_path):
    # The fixed prose is reproduction_template.md; with nothing saved, each stage is "Not run".
    text = report.report_text({stage.name: None for stage in reproduce.STAGES}, reproduce.STAGES, {}, tmp_path)
    assert "{" not in text  # no field of the template left unfilled
    assert text.endswith(
        "with the diagonal kept and zeroed. docs/experiments/rank_sweep.md gives a smaller paired run in ccjax.\n\n"
    )
    for stage in reproduce.STAGES:
        assert f"## {stage.title}\n\nNot run: no results in `{tmp_path / stage.name}`." in text
        assert f"| {stage.name} | not run | |" in text
    assert [line[:3] for line in text.split("## Errata")[1].splitlines() if line[:1].isdigit()] == [
        f"{n}. " for n in range(1, 6)
    ]
    assert "   | (no rank_sweep results) | | | |" in text


# --- `reproduce --quick` through to a written report, in this process -----------------------


def run_stage_in_process(stage, argv: list[str]) -> dict:
    """reproduce.run_stage, but ``experiments.<module>.main(argv)`` in this process: one JAX
    start-up for all stages instead of one per stage."""
    module = importlib.import_module(f"experiments.{stage.module}")
    start = time.perf_counter()
    try:
        returncode = module.main(argv)
    except SystemExit as error:  # an argparse error
        returncode = error.code
    return {"argv": argv, "seconds": time.perf_counter() - start, "returncode": returncode, "finished": time.time()}


def test_quick_reproduction_writes_a_report_where_a_crossing_never_reached_is_not_reached(tmp_path, monkeypatch):
    # The σ sweep of a smoke run never comes back up to naive ("crossing": null in its
    # manifest), which crashed the report after every stage had trained. Its own tinier grid here.
    quick_args = ("--sigmas", "0,0.02,0.04", "--seeds", "2", "--steps", "20", "--eval-rel-sem", "0.05")
    quick_args += ("--bootstrap", "50")
    stages = tuple(
        dataclasses.replace(stage, quick_args=quick_args) if stage.name == "sigma_sweep" else stage
        for stage in reproduce.STAGES
    )
    monkeypatch.setattr(reproduce, "STAGES", stages)
    monkeypatch.setattr(reproduce, "run_stage", run_stage_in_process)
    out = tmp_path / "quick"
    assert reproduce.main(["--quick", "--only", "sigma_sweep", "--out", str(out)]) == 0

    _, manifest = ccjax.load_results(out / "sigma_sweep")
    assert all(analysed["crossing"] is None for analysed in manifest["analysis"].values())
    text = (out / "REPRODUCTION.md").read_text()
    assert text.startswith("# Reproduction of Bhagat et al. 2025 with ccjax (quick smoke run: NOT paper scale)")
    for family in ("symmetric", "asymmetric"):
        assert f"| {family}: σ where L/p crosses naive | ≈0.0" in text
    crossings = [line for line in text.splitlines() if "σ where L/p crosses naive" in line]
    assert len(crossings) == 2 and all("| not reached | **no** |" in line for line in crossings)
    assert "Command: `python -m experiments.sigma_sweep --sigmas 0,0.02,0.04" in text
    assert f"Not run: no results in `{out / 'transplant'}`." in text
    assert "5. **The diagonal of the low-rank M (experiment 8) decides the trend.**" in text
    assert json.loads((out / "reproduce.json").read_text())["sigma_sweep"]["returncode"] == 0


@pytest.mark.slow
def test_quick_reproduction_of_every_stage_writes_the_whole_report(tmp_path, monkeypatch):
    """``python -m experiments.reproduce --quick`` as docs/experiments/reproduce.md gives it, stages in this process."""
    monkeypatch.setattr(reproduce, "run_stage", run_stage_in_process)
    out = tmp_path / "quick"
    assert reproduce.main(["--quick", "--out", str(out)]) == 0
    text = (out / "REPRODUCTION.md").read_text()
    assert "Not run" not in text and "not run |" not in text.split("## Errata")[0]
    for stage in reproduce.STAGE_NAMES:
        assert (out / stage / "manifest.json").exists(), stage
        assert f"`python -m experiments.{dict((s.name, s.module) for s in reproduce.STAGES)[stage]} " in text
    assert "| not reached | **no** |" in text  # the 200-step σ curves do not cross naive again
    # Erratum 5 pairs both recipes' diagonals from the four rank stages.
    paired = [
        line for line in text.splitlines() if line.startswith("   | spec: ") or line.startswith("   | paper-code: ")
    ]
    assert len(paired) == 3 and not any("not run" in line for line in paired)


def test_a_stage_run_on_its_own_counts_its_timed_blocks_once():
    """Its wall time is train + eval: the training's split into run and compile seconds is part of
    train_seconds, and n_devices is no time (both were added to the sum before)."""
    timings = {"train_seconds": 10.0, "sweep_run_seconds": 6.0, "compile_seconds": 4.0, "n_devices": 8}
    assert report._seconds(timings | {"eval_seconds": 2.5}) == 12.5
