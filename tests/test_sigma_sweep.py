"""Paper experiment 3 (sigma sweep): the curve analysis on synthetic curves with known
answers, and the CLI end to end on tiny settings."""

import functools
import math

import numpy as np
import pytest
from conftest import run_main

import ccjax
from ccjax.measure.statistics import HALF_WIDTH, bootstrap_seeds, curve_minimum, dip_statistics, spread, upper_crossing
from experiments import sigma_sweep

SIGMAS = np.linspace(0.0, 0.08, 41)
NAIVE = 1.0 / 12.0


def parabola(x, vertex: float, value: float, curvature: float = 20.0):
    return value + curvature * (np.asarray(x) - vertex) ** 2


# --- curve_minimum ------------------------------------------------------------------------


@pytest.mark.parametrize("vertex", [0.032, 0.0313, 0.0207])
def test_minimum_of_a_parabola_is_its_vertex_even_between_grid_points(vertex):
    found = curve_minimum(SIGMAS, parabola(SIGMAS, vertex, 0.065))
    assert found.fitted
    assert found.x == pytest.approx(vertex, abs=1e-10)
    assert found.value == pytest.approx(0.065, abs=1e-12)
    assert SIGMAS[found.index] == pytest.approx(vertex, abs=0.001)  # the nearest grid point


def test_minimum_fit_is_local_to_the_lowest_point():
    # Far from the minimum the curve is not a parabola (a steep wall at large sigma);
    # the fit uses only the lowest point and HALF_WIDTH neighbours on each side.
    y = parabola(SIGMAS, 0.03, 0.07)
    y[SIGMAS > 0.03 + 0.002 * (HALF_WIDTH + 0.5)] += 1.0
    found = curve_minimum(SIGMAS, y)
    assert found.x == pytest.approx(0.03, abs=1e-10) and found.value == pytest.approx(0.07, abs=1e-12)


def test_minimum_of_a_monotone_curve_is_its_end_point():
    rising = curve_minimum(SIGMAS, 0.08 + SIGMAS)
    assert (rising.x, rising.value, rising.index, rising.fitted) == (0.0, 0.08, 0, False)
    falling = curve_minimum(SIGMAS, 0.08 - SIGMAS)
    assert falling.x == pytest.approx(0.08) and falling.index == 40 and not falling.fitted


def test_minimum_needs_three_points_for_a_fit_and_rejects_bad_grids():
    assert curve_minimum([0.0, 0.01], [0.08, 0.07]) == (0.01, 0.07, 1, False)
    with pytest.raises(ValueError, match="increasing"):
        curve_minimum([0.0, 0.02, 0.01], [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="equal"):
        curve_minimum(list(SIGMAS), list(SIGMAS[:-1]))  # lists: the shape check is the function's own


# --- upper_crossing -----------------------------------------------------------------------


def test_crossing_of_a_piecewise_linear_curve_is_exact():
    # A V with slope 1: from 0.07 at sigma = 0.03 it reaches 0.0805 at sigma = 0.0405,
    # between the grid points 0.040 and 0.042.
    y = 0.07 + np.abs(SIGMAS - 0.03)
    assert upper_crossing(SIGMAS, y, 0.0805) == pytest.approx(0.0405, abs=1e-12)


def test_crossing_is_the_upper_one_not_sigma_zero():
    # Like the trained models: on the naive line at sigma = 0, below it, then above.
    y = parabola(SIGMAS, 0.032, 0.065, curvature=(NAIVE - 0.065) / 0.032**2)
    assert y[0] == pytest.approx(NAIVE)
    crossing = upper_crossing(SIGMAS, y, NAIVE)
    assert crossing == pytest.approx(0.064, abs=2e-5)  # the parabola's other root, up to interpolation


def test_crossing_is_nan_when_the_curve_stays_below_or_never_dips():
    assert math.isnan(upper_crossing(SIGMAS, parabola(SIGMAS, 0.04, 0.06, curvature=1.0), NAIVE))
    assert math.isnan(upper_crossing(SIGMAS, 0.09 + SIGMAS, NAIVE))
    assert math.isnan(upper_crossing(SIGMAS, np.full(41, NAIVE), NAIVE))  # touching is not going below


# --- bootstrap ----------------------------------------------------------------------------


def test_bootstrap_resamples_the_seeds():
    # Two seeds whose parabolas have vertices 0.030 and 0.034 (equal curvature): the mean
    # of any resample is a parabola with its vertex at the mean of the drawn vertices.
    values = np.stack([parabola(SIGMAS, 0.030, 0.065), parabola(SIGMAS, 0.034, 0.067)])
    samples = bootstrap_seeds(values, lambda curve: (curve_minimum(SIGMAS, curve).x,), n_boot=400, seed=1)
    assert samples.shape == (400, 1)
    np.testing.assert_allclose(np.unique(np.round(samples, 9)), [0.030, 0.032, 0.034], atol=1e-9)
    # Deterministic given the seed.
    again = bootstrap_seeds(values, lambda curve: (curve_minimum(SIGMAS, curve).x,), n_boot=400, seed=1)
    np.testing.assert_array_equal(samples, again)


def test_bootstrap_of_identical_seeds_has_no_spread_and_one_seed_has_none_defined():
    values = np.stack([parabola(SIGMAS, 0.03, 0.07)] * 3)
    samples = bootstrap_seeds(values, lambda curve: (curve_minimum(SIGMAS, curve).x,), n_boot=50)
    result = spread(samples[:, 0], n_seeds=3)
    assert result.se == 0.0 and result.low == result.high == pytest.approx(0.03) and result.defined == 1.0
    assert all(math.isnan(v) for v in spread(samples[:, 0], n_seeds=1)[:3])


def test_spread_of_identical_values_is_exactly_zero_whatever_numpy_rounds():
    # numpy 2.4's std(ddof=1) of 50 copies of 0.03 gave 3.5e-18, not 0 (issue 11).
    for value in (0.03, 0.1, 1 / 3, 0.0707):
        assert spread([value] * 50, n_seeds=5).se == 0.0


def test_spread_counts_resamples_without_a_crossing():
    result = spread([0.05, 0.06, np.nan, 0.07], n_seeds=5)
    assert result.defined == 0.75 and result.se == pytest.approx(0.01)


def test_dip_statistics_recovers_a_known_u_curve():
    # Five seeds: the same U shifted by offsets of mean zero. The mean curve is the U, the
    # minimum is at its vertex, and the vertex does not move under resampling (only the
    # level does: its bootstrap SD is that of the offsets' mean).
    offsets = np.array([-2e-3, -1e-3, 0.0, 1e-3, 2e-3])
    curve = parabola(SIGMAS, 0.032, 0.065, curvature=(NAIVE - 0.065) / 0.032**2)
    stats = dip_statistics(SIGMAS, curve + offsets[:, None], NAIVE, n_boot=500)
    assert stats["min_x"] == pytest.approx(0.032, abs=1e-9) and stats["min_x_se"] == pytest.approx(0, abs=1e-9)
    assert stats["min_value"] == pytest.approx(0.065, abs=1e-9)
    expected_se = offsets.std() / math.sqrt(len(offsets))  # bootstrap SD of a mean: population SD / sqrt(n)
    assert stats["min_value_se"] == pytest.approx(expected_se, rel=0.15)
    assert stats["crossing"] == pytest.approx(0.064, abs=2e-5) and stats["crossing_defined"] == 1.0
    assert stats["at_zero"] == pytest.approx(NAIVE) and stats["at_zero_sem"] == pytest.approx(
        offsets.std(ddof=1) / math.sqrt(5)
    )
    assert stats["grid_min_x"] == pytest.approx(0.032) and stats["min_fitted"] and stats["n_seeds"] == 5


def test_dip_statistics_leaves_out_diverged_seeds_and_x_zero_off_the_grid():
    # A diverged seed (NaN) is left out of the mean curve; without x = 0 there is no at_zero.
    curve = parabola(SIGMAS[1:], 0.032, 0.065)
    values = np.stack([curve, np.full_like(curve, np.nan), curve])
    stats = dip_statistics(SIGMAS[1:], values, NAIVE, n_boot=20)
    assert stats["min_x"] == pytest.approx(0.032, abs=1e-9) and "at_zero" not in stats


# --- the CLI ------------------------------------------------------------------------------


run = functools.partial(run_main, "sigma_sweep")


@pytest.fixture(scope="module")
def sigma_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sigma")
    args = ["--sigmas", "0.08,0,0.02,0.04,0.06", "--seeds", "2", "--steps", "20", "--eval-rel-sem", "0.03"]
    done = run(*args, "--bootstrap", "100", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_sigma_sweep_results(sigma_run):
    tmp, done = sigma_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    np.testing.assert_array_equal(arrays["sigmas"], [0, 0.02, 0.04, 0.06, 0.08])  # sorted
    assert list(arrays["families"]) == ["symmetric", "asymmetric"]
    assert arrays["loss_per_feature"].shape == (2, 2, 5) and arrays["w_in"].shape == (2, 2, 5, 100, 50)
    assert arrays["mixing"].shape == (2, 2, 100, 100)
    assert np.all(arrays["loss_per_feature_sem"] <= 0.03 * arrays["loss_per_feature"])
    # sigma = 0 is clean labels for both families: same seed, same init and data, same model.
    np.testing.assert_allclose(arrays["loss_per_feature"][0, :, 0], arrays["loss_per_feature"][1, :, 0], rtol=1e-6)
    symmetric = arrays["mixing"][0]
    np.testing.assert_array_equal(symmetric, np.swapaxes(symmetric, -1, -2))
    assert manifest["axes"]["scale"] == [0, 0.02, 0.04, 0.06, 0.08]
    assert set(manifest["analysis"]) == {"symmetric", "asymmetric"}
    assert manifest["analysis_method"]["n_boot"] == 100
    # The published values are printed next to ours.
    for published in ("0.028-0.036", "0.02-0.028", "0.064", "0.047", "0.065", "0.075"):
        assert published in done.stdout
    assert "20 models x 20 steps in one sweep" in done.stderr
    assert (tmp / "fig" / "sigma_sweep.png").stat().st_size > 10_000


def test_sigma_sweep_plot_only_prints_the_same_analysis(sigma_run):
    tmp, done = sigma_run
    (tmp / "fig" / "sigma_sweep.png").unlink()
    replot = run("--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert replot.returncode == 0, replot.stderr
    assert "re-plotting" in replot.stderr and (tmp / "fig" / "sigma_sweep.png").exists()
    assert replot.stdout == done.stdout


def test_points_gives_the_papers_grid():
    parser = sigma_sweep.build_parser()

    def grid(argv):
        return sigma_sweep.with_sigma_grid(parser.parse_args(argv)).sigma_grid

    np.testing.assert_allclose(grid([]), np.linspace(0, 0.08, 41))
    np.testing.assert_allclose(grid(["--points", "5"]), [0, 0.02, 0.04, 0.06, 0.08])
    assert grid(["--sigmas", "0.03,0.01"]) == [0.01, 0.03]
    assert parser.parse_args(["--families", "asymmetric,symmetric"]).families == ["symmetric", "asymmetric"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sigmas", "0,,a"], "--sigmas"),
        (["--sigmas", "-0.1"], "--sigmas"),
        (["--sigmas", "0.01", "--points", "5"], "not allowed with argument"),
        (["--families", "embedding"], "unknown family"),
        (["--seeds", "0"], "--seeds"),
        (["--plot-only", "--out", "/nonexistent/results"], "--plot-only"),
    ],
)
def test_sigma_sweep_bad_input(args, message):
    done = run(*args, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
