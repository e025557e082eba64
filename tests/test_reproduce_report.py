"""experiments.reproduction_report: a missing value of ours (None in a manifest's JSON, or
NaN) is shown as "not reached" and does not agree; no comparer fails on one."""

import math

import numpy as np
import pytest

from experiments import reproduction_report as report
from experiments._published import NOT_REACHED, compare_range, compare_value, markdown_table


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
    rows = report.compare_sigma_sweep(arrays, {"analysis": {"asymmetric": analysed}})
    crossing = next(row for row in rows if "crosses naive" in row.quantity)
    assert crossing.ours == NOT_REACHED and crossing.agrees is False
    at_minimum = next(row for row in rows if "σ at the minimum" in row.quantity)
    assert at_minimum.ours == "0.0300 ± 0.0020" and f"{NOT_REACHED}–{NOT_REACHED}" in at_minimum.note
    assert "| not reached | **no** |" in markdown_table(rows)


def test_sigma_sweep_comparer_with_every_number_missing():
    missing = {key: None for key in sigma_analysis() if key not in ("n_seeds", "at_zero")}
    arrays = {"families": np.array(["symmetric"]), "loss_per_feature": np.full((1, 2, 5), np.nan)}
    rows = report.compare_sigma_sweep(arrays, {"analysis": {"symmetric": sigma_analysis(**missing)}})
    assert len(rows) == 4
    assert all(row.agrees is False for row in rows)
    assert all(row.ours.startswith(NOT_REACHED) for row in rows), [row.ours for row in rows]


def rank_manifest(convention: str, **stats) -> dict:
    return {"convention": convention, "trend": {"definition": "text", "low-rank": {"n_seeds": 1, **stats}}}


@pytest.mark.parametrize("convention", ["spec", "paper-code"])
def test_rank_sweep_comparer_with_missing_slope_sem_and_spearman(convention):
    # One seed: the slope has no SEM (NaN, stored as null); one rank gives no Spearman.
    (row,) = report.compare_rank_sweep({}, rank_manifest(convention, slope=0.01, slope_sem=None, spearman=None))
    assert row.ours.startswith("slope +0.0100 per e-fold") and "±" not in row.ours
    assert f"Spearman(rank, L/p) {NOT_REACHED}" in row.note
    assert row.agrees is (False if convention == "paper-code" else None)
    (row,) = report.compare_rank_sweep({}, rank_manifest(convention, slope=None, slope_sem=None, spearman=None))
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
    saved = {
        "sigma_sweep": (
            {"families": np.array(["asymmetric"]), "sigmas": np.array([0, 0.1, 0.2]), "loss_per_feature": loss},
            {},
        )
    }
    (row,) = [line for line in report._errata_seeds(saved) if line.startswith("   | asymmetric")]
    assert row == f"   | asymmetric | 0.1, 0.2, {NOT_REACHED} | 0.1 (grid point) |"
