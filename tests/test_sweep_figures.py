"""The sweep helpers of ccjax.measure (the arrays a trained sweep saves, tail means, the dip
statistics in words) and the sweep figures of ccjax.plot, on small hand-made inputs."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter

import ccjax
from ccjax import measure, plot
from ccjax.measure.statistics import HALF_WIDTH, dip_statistics

K, S, N_LOGS, N, D = 2, 3, 4, 6, 2


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def fake_sweep() -> tuple[ccjax.SweepResult, measure.Estimate]:
    """A (K seeds x S scales) sweep result with distinct, recognisable numbers in every field."""
    rng = np.random.default_rng(0)
    step = np.broadcast_to(np.array([25.0, 50.0, 75.0, 100.0]), (K, S, N_LOGS)).copy()
    fields = {name: rng.random((K, S, N_LOGS)) for name in ccjax.History._fields if name != "step"}
    history = ccjax.History(step=step, **fields)
    params = ccjax.FeatureMLP(rng.random((K, S, N, D)), rng.random((K, S, D, N)))
    result = ccjax.SweepResult(
        config=ccjax.TrainConfig(),
        grid=ccjax.make_grid({"seed": [0, 1], "scale": [0.0, 0.5, 1.0]}),
        params=params,
        mixing=rng.random((K, S, N, N)),
        scale=rng.random((K, S)),
        history=history,
        compile_seconds=0.0,
        run_seconds=0.0,
        n_devices=1,
        diverged_step=np.full((K, S), -1),
        models_per_call=K * S,
    )
    estimate = measure.Estimate(rng.random((K, S)), rng.random((K, S)), np.full((K, S), 7), np.full((K, S), 7))
    return result, estimate


# --- sweep_arrays and describe_sweep_arrays -------------------------------------------------


def test_sweep_arrays_are_the_results_fields():
    result, estimate = fake_sweep()
    arrays = measure.sweep_arrays(result, estimate=estimate)
    assert tuple(arrays) == measure.SWEEP_ARRAYS
    assert arrays["loss_per_feature"] is estimate.loss_per_feature and arrays["loss_per_feature_sem"] is estimate.sem
    assert arrays["n_evaluations"] is estimate.n_samples
    for field in ccjax.History._fields:
        assert arrays[f"history_{field}"] is getattr(result.history, field)
    assert arrays["final_scale"] is result.scale and arrays["diverged_step"] is result.diverged_step
    assert arrays["w_in"] is result.params.w_in and arrays["w_out"] is result.params.w_out
    assert arrays["mixing"] is result.mixing


def test_sweep_arrays_pick_names_and_the_shared_step():
    result, estimate = fake_sweep()
    names = ("history_step", "final_train_loss_per_feature", "train_loss_per_feature_history", "w_in")
    arrays = measure.sweep_arrays(result, names, shared_step=True)  # no evaluated array: no estimate needed
    assert tuple(arrays) == names
    np.testing.assert_array_equal(arrays["history_step"], [25.0, 50.0, 75.0, 100.0])
    train = result.history.train_loss_per_feature
    np.testing.assert_array_equal(arrays["final_train_loss_per_feature"], train[:, :, -1])
    assert arrays["train_loss_per_feature_history"] is train
    with pytest.raises(ValueError, match="estimate"):
        measure.sweep_arrays(result, ("loss_per_feature",))
    with pytest.raises(ValueError, match="no sweep array 'loss'"):
        measure.sweep_arrays(result, ("loss",), estimate)


def test_descriptions_name_the_grid_axes():
    described = measure.describe_sweep_arrays("K, S")
    assert tuple(described) == measure.SWEEP_ARRAYS
    assert described["loss_per_feature"].startswith("(K, S) L/p")
    assert described["history_scale"].startswith("(K, S, n_logs) ")
    assert described["w_in"].startswith("(K, S, n_features, d_mlp) ")
    assert described["w_out"].startswith("(K, S, d_mlp, n_features) ")
    shared = measure.describe_sweep_arrays("F, K", ("history_step", "final_train_loss_per_feature"), shared_step=True)
    assert shared["history_step"].startswith("(n_logs,) ") and shared["final_train_loss_per_feature"].startswith(
        "(F, K) "
    )


# --- tail_mean ----------------------------------------------------------------------------


def test_tail_mean_averages_the_last_fraction_of_training():
    step = np.arange(10.0, 101.0, 10.0)  # 10, 20, ..., 100
    history = np.stack([step, 2 * step])  # two models
    # The last 25% of 100 steps: the logs at 80, 90 and 100 (>= 75).
    np.testing.assert_allclose(measure.tail_mean(history, step, 0.25), [90.0, 180.0])
    # Against a longer run than the logs reach (200 steps): only the last log is left.
    np.testing.assert_allclose(measure.tail_mean(history, step, 0.25, total_steps=200), [100.0, 200.0])
    np.testing.assert_allclose(measure.tail_mean(history, step, 0.0), [100.0, 200.0])  # always the last log


# --- the dip statistics in words ---------------------------------------------------------------

SIGMAS = np.linspace(0.0, 0.08, 9)
NAIVE = 1.0 / 12.0


def u_curve(seeds: int = 3) -> np.ndarray:
    """Seeds of a U below the naive line: on it at 0, minimum 0.065 at 0.032, back up by 0.064."""
    curve = 0.065 + (NAIVE - 0.065) / 0.032**2 * (SIGMAS - 0.032) ** 2
    return curve + np.linspace(-1e-3, 1e-3, seeds)[:, None]


def test_describe_dip_statistics_names_its_settings():
    method = measure.describe_dip_statistics(500, 3, "sigma", "the naive L/p")
    assert list(method) == ["minimum", "crossing", "n_boot", "uncertainty"] and method["n_boot"] == 500
    assert f"{HALF_WIDTH} neighbours" in method["minimum"]
    assert method["crossing"].startswith("first sigma above") and "reaches the naive L/p" in method["crossing"]
    assert "(500 resamples, numpy seed 3)" in method["uncertainty"] and "16/84 percentiles" in method["uncertainty"]


def test_describe_dip_of_a_u_curve():
    stats = dip_statistics(SIGMAS, u_curve(), NAIVE, n_boot=50)
    described = measure.describe_dip(stats, "sigma", 0.08)
    assert list(described) == ["at_zero", "min_value", "min_x", "grid_min", "crossing"]
    assert described["min_value"] == (
        "minimum L/p (parabola vertex)",
        f"{stats['min_value']:.4f} +- {stats['min_value_se']:.4f} "
        f"[{stats['min_value_low']:.4f}, {stats['min_value_high']:.4f}]",
    )
    assert described["min_x"][0] == "sigma at the minimum" and described["min_x"][1].startswith("0.0320")
    assert described["at_zero"] == ("L/p at sigma = 0", f"{NAIVE:.4f} +- {stats['at_zero_sem']:.4f}")
    assert described["grid_min"] == ("lowest grid point of the mean (sigma, L/p)", "0.0300, 0.0651")
    what, crossing = described["crossing"]
    assert what == "sigma where it crosses naive 0.0833 again" and stats["crossing"] == pytest.approx(0.064, abs=1e-3)
    assert crossing.startswith(f"{stats['crossing']:.4f} +- ") and crossing.endswith("]")


def test_describe_dip_of_curves_that_do_not_cross():
    never_below = dip_statistics(SIGMAS[1:], u_curve(1)[:, 1:] + 0.1, NAIVE, n_boot=5)
    assert measure.describe_dip(never_below)["crossing"][1] == "never below naive on the grid"
    assert "at_zero" not in measure.describe_dip(never_below)  # x = 0 is off the grid
    stays_below = dip_statistics(SIGMAS[:5], u_curve(1)[:, :5], NAIVE, n_boot=5)
    described = measure.describe_dip(stays_below, "sigma", 0.04)
    assert described["crossing"][1] == "does not cross within the grid (sigma <= 0.04)"
    assert described["min_value"][1] == f"{stays_below['min_value']:.4f}"  # one seed: no spread


# --- figures ------------------------------------------------------------------------------------


def test_sweep_overview_with_and_without_the_loss_terms():
    loss, train = np.random.default_rng(1).random((2, 3)) + 0.05, np.random.default_rng(2).random((2, 3, 4)) + 0.05
    step, x = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 0.5, 1.0])
    figure = plot.plot_sweep_overview(
        x, loss, step, train, naive=0.08, x_name="s", xlabel="scale", loss_title="L", terms=(loss, -loss),
        terms_title="T", history_ylabel="training L/p", decimal_ticks=True, title="run",
    )  # fmt: skip
    assert isinstance(figure, Figure) and len(figure.axes) == 3
    assert tuple(figure.get_size_inches()) == (16, 4.6) and figure.get_suptitle() == "run"
    left, middle, right = figure.axes
    assert left.get_title() == "L" and middle.get_title() == "T" and left.get_xscale() == "linear"
    assert [line.get_label() for line in right.get_lines()][:3] == ["s = 0", "s = 0.5", "s = 1"]
    assert right.get_yscale() == "log" and right.get_ylabel() == "training L/p"
    assert isinstance(right.yaxis.get_major_formatter(), FormatStrFormatter)
    two = plot.plot_sweep_overview(
        x + 1e-3, loss, step, train, naive=0.08, x_name="lr", xlabel="lr", loss_title="L", log_x=True
    )
    assert len(two.axes) == 2 and tuple(two.get_size_inches()) == (12, 4.5)
    assert two.axes[0].get_xscale() == "log" and two.axes[1].get_ylabel() == "loss per feature L/p"
    assert not isinstance(two.axes[1].yaxis.get_major_formatter(), FormatStrFormatter)


def test_dip_marks_the_minimum_and_the_crossing():
    values = u_curve()
    stats = dip_statistics(SIGMAS, values, NAIVE, n_boot=50)
    figure = plot.plot_dip(SIGMAS, values, stats, name="sym", label="symmetric", x_name="sigma", color="C2")
    (ax,) = figure.axes
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == "symmetric (mean +- SEM)"
    assert labels[1] == f"sym: minimum {stats['min_value']:.4f} at sigma {stats['min_x']:.4f}"
    assert labels[2] == f"sym: crosses naive at sigma {stats['crossing']:.4f}"
    dots, mean = ax.get_lines()[:2]
    assert len(dots.get_xdata()) == values.size  # every seed's point
    np.testing.assert_allclose(mean.get_ydata(), values.mean(axis=0))
    assert len(ax.collections) >= 1  # the SEM band


def test_dip_without_a_crossing_or_spread_draws_no_diamond():
    values = u_curve(1)[:, :5]  # stays below naive; one seed: NaN standard errors
    stats = dip_statistics(SIGMAS[:5], values, NAIVE, n_boot=5)
    assert math.isnan(stats["min_value_se"])
    (ax,) = plot.plot_dip(SIGMAS[:5], values, stats, name="a", label="asym").axes
    labels = ax.get_legend_handles_labels()[1]
    assert len(labels) == 2 and not any("crosses" in label for label in labels)


def test_dip_analyses_name_x_for_results_files_and_read_back():
    values = np.stack([u_curve(1), u_curve(1) + 0.001])  # one seed: NaN standard errors, null in JSON
    analyses = measure.dip_analyses(SIGMAS, values, ["a", "b"], NAIVE, n_boot=20, seed=3, x_name="sigma")
    assert list(analyses) == ["a", "b"]
    for name, curve in zip(("a", "b"), values, strict=True):
        expected = dip_statistics(SIGMAS, curve, NAIVE, n_boot=20, seed=3)
        assert (
            analyses[name]["min_sigma"] == expected["min_x"]
            and analyses[name]["grid_min_sigma"] == expected["grid_min_x"]
        )
        assert not any("min_x" in key for key in analyses[name]) and len(analyses[name]) == len(expected)
    saved = json.loads(json.dumps(analyses).replace("NaN", "null"))
    read = measure.saved_dip_analyses(saved, "sigma")
    expected = dip_statistics(SIGMAS, values[1], NAIVE, n_boot=20, seed=3)
    assert read["b"].keys() == expected.keys() and math.isnan(read["b"]["min_x_se"])
    np.testing.assert_equal(read["b"], expected)


def test_dips_draw_each_curve_with_its_reference_then_the_level():
    values = np.stack([u_curve(), u_curve() + 0.002])
    stats = [dip_statistics(SIGMAS, curve, NAIVE, n_boot=20) for curve in values]
    references = [plot.ReferenceDip((0.02, 0.03), 0.07, 0.05), plot.ReferenceDip((0.01, 0.02), 0.075, 0.04)]
    figure = plot.plot_dips(
        SIGMAS, values, stats, references, names=["a", "b"], labels=["A", "B"], colors=["C2", "C3"],
        level=NAIVE, level_label="naive", x_name="sigma", xlabel="sigma", title="t",
    )  # fmt: skip
    (ax,) = figure.axes
    labels = ax.get_legend_handles_labels()[1]
    assert labels[:2] == ["A (mean +- SEM)", "B (mean +- SEM)"] and "naive" in labels
    assert {"paper, a: minimum ~0.07 at sigma 0.02-0.03", "paper, b: minimum ~0.075 at sigma 0.01-0.02"} < set(labels)
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), values[0].mean(axis=0))  # curve a's mean
    crossings = [line.get_xydata()[0] for line in ax.get_lines() if line.get_marker() == "x"]
    np.testing.assert_allclose([xy for xy in crossings if xy[1] == NAIVE], [[0.05, NAIVE], [0.04, NAIVE]])
    assert ax.get_xlabel() == "sigma" and ax.get_title() == "t"


def test_reference_dip_and_optimal_offset():
    ax = plot.plot_reference_dip((0.02, 0.03), 0.07, 0.05, NAIVE, label="paper", color="k").axes[0]
    assert ax.get_legend_handles_labels()[1] == ["paper"]
    crossing = [line for line in ax.get_lines() if line.get_marker() == "x"][-1]
    np.testing.assert_allclose(crossing.get_xydata(), [[0.05, NAIVE]])
    p = np.geomspace(1e-3, 1.0, 5)
    figure = plot.plot_optimal_offset(p, p / 10, 0.08 - p / 100)
    left, twin = figure.axes
    assert left.get_xscale() == "log" and twin.get_ylabel() == "L/p of naive + b*(p)"
    np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), 0.08 - p / 100)


def test_model_responses_fill_a_row():
    rng = np.random.default_rng(3)
    figure = plt.figure(figsize=(20, 5), layout="constrained")
    weights = rng.random((N, D)).astype(np.float32), rng.random((D, N)).astype(np.float32)
    row = plot.plot_model_responses(*weights, np.linspace(-1, 1, 5), fig=figure, title="m")
    assert row is figure and figure.get_suptitle() == "m"
    titles = [ax.get_title() for ax in figure.axes]
    assert "output j for input v e_j" in titles and "W_out * W_in per neuron" in titles
    assert sum(title.startswith("input ") for title in titles) == 2  # the +1 and -1 heatmaps
