"""ccjax.report (tables, numbers with uncertainties, comparisons with published values) and the
sweep-array helpers of ccjax.measure that turn trained sweeps into saved arrays, ccjax.plot's
plot_trained_curves, ccjax.io's JSON run records and ccjax.engine.check_batch_size: what moved
out of experiments/ into the library (issue 20)."""

import math

import numpy as np
import pytest

import ccjax
from ccjax import measure, report


def test_count_and_families_pluralise():
    assert report.count(1, "seed") == "1 seed"
    assert report.count(1200, "model") == "1,200 models"
    assert (report.count_families(1), report.count_families(3)) == ("1 family", "3 families")


def test_format_table_right_aligns_every_column():
    text = report.format_table(["a", "long"], [["1", "2"], ["333", "4"]])
    assert text.splitlines() == ["  a  long", "---  ----", "  1     2", "333     4"]


def test_format_mean_sem_matches_numpy():
    values = np.array([1.0, 2.0, 4.0, np.nan])  # the NaN (a diverged model) is left out
    finite = values[:3]
    sem = finite.std(ddof=1) / math.sqrt(3)
    assert report.format_mean_sem(values, digits=3) == f"{finite.mean():.3f} +- {sem:.3f}"
    assert report.format_mean_sem([0.5]) == "0.5000"
    with pytest.raises(ValueError, match=r"one axis of values, got shape \(3, 2\)"):
        report.format_mean_sem(np.ones((3, 2)))  # was numpy's "truth value of an array ... is ambiguous"


def test_mean_sem_and_estimates_of_finite_values():
    mean, sem, n = report.mean_sem([[1.0, 3.0], [np.inf, 5.0]])
    assert (mean, n) == (3.0, 3) and sem == pytest.approx(2.0 / math.sqrt(3))
    assert report.format_estimate(mean, sem, n, digits=2) == "3.00 ± 1.15 (3 seeds)"
    assert report.format_estimate(*report.mean_sem([])) == report.NOT_REACHED
    assert report.format_pm(0.1, None, digits=1, sign="+") == "+0.1"
    assert report.format_number(None) == report.NOT_REACHED and report.is_missing(float("nan"))


def test_compare_value_agrees_within_two_combined_standard_errors():
    values = [0.070, 0.072, 0.074]  # mean 0.072, SEM 0.001155
    spread = math.hypot(0.002 / math.sqrt(3), report.READ_ERROR)  # 0.00153
    inside = report.compare_value("e", "q", 0.072 + 1.9 * spread, values)
    outside = report.compare_value("e", "q", 0.072 + 2.1 * spread, values)
    assert inside.agrees is True and outside.agrees is False
    assert inside.ours == "0.0720 ± 0.0012 (3 seeds)" and inside.published.startswith("≈")
    exact = report.compare_value("e", "q", 0.5, [0.5], approximate=False, exact=True)
    assert (exact.published, exact.ours, exact.agrees) == ("0.5", "0.5000 (exact)", True)
    assert report.compare_value("e", "q", 0.1, [np.nan]).agrees is False


def test_compare_range_widens_the_interval_by_the_uncertainty():
    assert report.compare_range("e", "q", 0.1, 0.2, 0.21, 0.006).agrees is True  # 0.2 + 2 * 0.006
    assert report.compare_range("e", "q", 0.1, 0.2, 0.21, 0.004).agrees is False
    missing = report.compare_range("e", "q", 0.1, 0.1, None, 0.1, ours="shown")
    assert (missing.published, missing.ours, missing.agrees) == ("≈0.1", report.NOT_REACHED, False)


def test_markdown_table_escapes_bars():
    rows = [report.Comparison("e", "|s|", "≈1", "1.0", None, "n")]
    lines = report.markdown_table(rows).splitlines()
    assert lines[1] == "| --- | --- | --- | --- | --- |"
    assert lines[2] == "| \\|s\\| | ≈1 | 1.0 | – | n |"
    assert report.markdown_rows(["a"], [[1]], indent="  ") == ["  | a |", "  | --- |", "  | 1 |"]
    assert report.markdown_rows(["", "b"], [["", 0]])[2] == "|  | 0 |"
    assert report.markdown_rows(["", "b"], [["", 0]], compact=True)[::2] == ["| | b |", "| | 0 |"]


def test_index_lookups():
    assert report.index_of([0.0, 0.5, 1.0], 0.5 + 1e-12) == 1
    with pytest.raises(KeyError):
        report.index_of([0.0, 1.0], 0.5)
    assert report.nearest_in_log(np.geomspace(1e-3, 1.0, 7), 0.9) == 6


def test_family_first_and_stack_fields():
    array = np.arange(24).reshape(2, 3, 4)
    assert measure.family_first(array).shape == (3, 2, 4)
    assert measure.family_first(array)[2, 1, 3] == array[1, 2, 3]
    stacked = measure.stack_fields([{"a": np.zeros(2), "b": 1}, {"a": np.ones(2), "b": 2}])
    assert stacked["a"].shape == (2, 2) and stacked["b"].tolist() == [1, 2]


def test_shared_mixing_drops_an_axis_the_seed_fixes():
    m = np.random.default_rng(0).normal(size=(2, 1, 3, 3))  # (seeds, 1, n, n)
    tiled = np.repeat(m, 4, axis=1)  # four sigmas, one M per seed
    np.testing.assert_array_equal(measure.shared_mixing(tiled, sigma_axis=1), m[:, 0])
    tiled[1, 2] += 1.0
    with pytest.raises(AssertionError):
        measure.shared_mixing(tiled, sigma_axis=1)


def test_logged_steps_and_excluding_diverged():
    step = np.broadcast_to(np.array([10, 20, 30]), (2, 2, 3))
    result = ccjax.SweepResult(*[None] * len(ccjax.SweepResult._fields))._replace(history=ccjax.History(*[step] * 5))
    assert measure.logged_steps(result).tolist() == [10, 20, 30]
    arrays = {"diverged_step": np.array([-1, 20]), "loss_per_feature": np.array([1.0, 2.0])}
    arrays |= {"history_train_loss_per_feature": np.ones((2, 3)), "history_step": np.ones((2, 3)), "w_in": np.ones(2)}
    masked = measure.excluding_diverged(arrays)
    assert masked["loss_per_feature"][0] == 1.0 and np.isnan(masked["loss_per_feature"][1])
    assert np.isnan(masked["history_train_loss_per_feature"][1]).all()
    assert not np.isnan(masked["history_step"]).any() and masked["w_in"] is arrays["w_in"]
    assert measure.excluding_diverged({"loss_per_feature": np.ones(1)})["loss_per_feature"][0] == 1.0


def test_curves_at_training_p_takes_each_groups_own_training_p():
    loss = np.arange(2 * 3 * 5, dtype=float).reshape(2, 3, 5)  # (T=2, K=3, 3 p_eval + 2 p_train)
    curve = ccjax.LossCurve(*[None] * len(ccjax.LossCurve._fields))._replace(loss_per_feature=loss, sem=loss / 10)
    arrays = measure.curves_at_training_p(curve, 3)
    np.testing.assert_array_equal(arrays["loss_per_feature"], loss[..., :3])
    np.testing.assert_array_equal(arrays["at_train_p"], np.stack([loss[0, :, 3], loss[1, :, 4]]))
    np.testing.assert_array_equal(arrays["at_train_p_sem"], arrays["at_train_p"] / 10)
    assert "at_train_p_sem" not in measure.curves_at_training_p(curve, 3, sem_at_train_p=False)


def test_plot_trained_curves_marks_each_curve_at_its_training_p():
    from ccjax import plot

    p_eval = np.geomspace(1e-3, 1.0, 4)
    curves = np.ones((2, 3, 4)) * np.array([1.0, 2.0])[:, None, None]
    at_train_p = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    figure = plot.plot_trained_curves(p_eval, curves, ["a", "b"], [0.01, 0.1], at_train_p, naive=0.5)
    dots = [line for line in figure.axes[0].get_lines() if line.get_marker() == "o"]
    assert [(line.get_xdata()[0], line.get_ydata()[0]) for line in dots] == [(0.01, 2.0), (0.1, 5.0)]


def test_the_batch_size_rule_at_its_threshold():
    check = ccjax.engine.check_batch_size
    check(10, 100, 0.01)  # 10 active features per batch: the minimum
    check(64, 100, 0.01)  # the CI's smoke run
    check(32, 10, 0.1)  # the smallest batch the tests train with
    with pytest.raises(ValueError, match=r"--batch-size 9 is too small .* = 9 active features"):
        check(9, 100, 0.01)
    with pytest.raises(ValueError, match=r"= 6.4 active .* --batch-size 100 or more, or p >= 0.0016 \(--p\)"):
        check(64, 100, 0.001)
    check(10, 100, 1e-9, data="exactly-one")  # one active feature per sample, whatever p
    with pytest.raises(ValueError, match=r"exactly-one data .* = 9 active .* use --batch-size 10 or more$"):
        check(9, 100, 0.5, data="exactly-one")
    assert ccjax.engine.MIN_ACTIVE_FEATURES_PER_BATCH == 10


def test_diverged_note_lists_the_first_models():
    assert report.diverged_note([]) is None
    one = report.diverged_note([{"sweep": "s", "seed": 1, "lr": 10.0, "step": 1200}])
    assert one.startswith("note: 1 model diverged (loss NaN or inf) and is excluded from every mean and fit: ")
    assert one.endswith("fit: seed=1, lr=10 (step 1,200)")
    many = report.diverged_note([{"seed": seed, "step": 5} for seed in range(3)], shown=2)
    assert many.startswith("note: 3 models diverged") and many.endswith("seed=0 (step 5); seed=1 (step 5); ...")


def test_json_records_are_updated_in_place(tmp_path):
    path = tmp_path / "log.json"
    assert ccjax.io.load_json_record(path) == {}
    ccjax.io.update_json_record(path, "a", {"seconds": 1.5})
    path.write_text(path.read_text().replace("1.5", "2.5"))  # another process wrote meanwhile
    ccjax.io.update_json_record(path, "b", [1])
    assert ccjax.io.load_json_record(path) == {"a": {"seconds": 2.5}, "b": [1]}
    assert path.read_text().startswith('{\n  "a"') and list(tmp_path.iterdir()) == [path]
