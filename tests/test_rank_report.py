"""ccjax.report's comparisons of the closed-form baselines and of a rank trend with the paper, and
ccjax.measure's record of the rank experiment's recipes and of the authors' code (§5, §6.8)."""

import math

import pytest

import ccjax
from ccjax import measure, report


def test_compare_baselines_match_the_closed_forms_and_the_published_numbers():
    rows = {row.quantity: row for row in report.compare_baselines()}
    assert len(rows) == 6 and all(row.agrees is True for row in rows.values())
    assert rows["naive L/p (clean labels)"].ours == f"{(100 - 50) / 100 / 6:.4f} (exact)" == "0.0833 (exact)"
    assert rows["zero model L/p"].published == "0.1667" and rows["zero model L/p"].ours == "0.1667 (exact)"
    assert rows["naive + offset: b*(p = 1)"].published == "≈0.0194"


@pytest.mark.parametrize(
    "slope, sem, agrees",
    [(0.0071, 0.0004, True), (0.0007, 0.0004, False), (-0.003, 0.0004, False), (0.01, None, False)],
)
def test_compare_rank_trend_agrees_only_above_two_sems(slope, sem, agrees):
    trend = {"slope": slope, "slope_sem": sem, "spearman": 0.9, "n_seeds": 3}
    row = report.compare_rank_trend("rank_sweep", "q", trend)
    assert row.agrees is agrees and row.published == "yes (qualitative)"
    assert row.ours.startswith(f"slope {slope:+.4f}") and row.ours.endswith("per e-fold of eff. rank (3 seeds)")
    assert row.note == "Spearman(rank, L/p) +0.90"


def test_compare_rank_trend_and_its_format_with_missing_numbers():
    trend = {"slope": None, "slope_sem": math.nan, "spearman": None, "n_seeds": 1}
    row = report.compare_rank_trend("rank_sweep", "q", trend)
    assert row.ours == report.NOT_REACHED and row.agrees is False and row.note.endswith(report.NOT_REACHED)
    assert report.format_rank_trend({"slope": -0.003, "slope_sem": 0.0004, "spearman": -0.9}) == (
        "-0.0030 ± 0.0004 (ρ -0.90)"
    )
    assert report.format_rank_trend({"slope": 0.01, "slope_sem": None, "spearman": None}) == (
        f"+0.0100 (ρ {report.NOT_REACHED})"
    )


def test_rank_recipes_differ_as_the_authors_first_version_does():
    spec, code = measure.RANK_CONFIGS["spec"], measure.RANK_CONFIGS["paper-code"]
    assert spec == ccjax.TrainConfig(data="exactly-one", mixing="low-rank", learn_scale=True)
    assert (code.zero_diagonal, code.lr, code.schedule, code.batch_size, code.steps) == (
        True,
        1e-3,
        "constant",
        1024,
        30_000,
    )
    assert not spec.zero_diagonal and code.scale_init == spec.scale_init == 0.01
    jb = measure.RANK_JB_SCRIPT
    assert len(jb["ranks"]) == len(jb["plotted_at"]) == 5 and jb["draws"] == 5


def test_paper_code_record_lists_the_diagonal_where_it_matches():
    zeroed, kept = measure.rank_paper_code_record(True), measure.rank_paper_code_record(False)
    assert list(zeroed) == ["source", "matched", "not_matched", "other_versions"] and "046b67a" in zeroed["source"]
    assert "set to 0" in zeroed["matched"][-1] and "diagonal is kept" in kept["not_matched"][0]
    assert zeroed["matched"][:-1] == kept["matched"] and zeroed["not_matched"] == kept["not_matched"][1:]
    assert "046b67a" in measure.RANK_PAPER_CODE_DIFFERENCES


def test_describe_rank_sweep_arrays_names_every_measure_on_both_grids():
    texts = measure.describe_rank_sweep_arrays("point", "p_")
    names = list(measure.RANK_SWEEP_MEASURES)
    assert list(texts) == ["history_step", *names, *(f"p_{name}" for name in names)]
    assert texts["loss"].startswith("(F, K, R) ") and texts["p_scale_history"].startswith("(K, T) point: ")
    assert texts["w_in"].startswith("(F, K, R, n_features, d_mlp) ")
