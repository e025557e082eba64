"""Paper experiment 2 (mixing types): the CLI end to end on tiny settings, and re-plotting."""

import functools

import numpy as np
import pytest
from conftest import run_main

import ccjax
from experiments.mixing_types import FAMILIES, LEARNED

run = functools.partial(run_main, "mixing_types")


@pytest.fixture(scope="module")
def mixing_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixing")
    args = ["--steps", "20", "--seeds", "2", "--eval-points", "4", "--eval-rel-sem", "0.05"]
    done = run(*args, "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_mixing_types_results(mixing_run):
    tmp, done = mixing_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    families = list(arrays["families"])
    assert families == ["embedding", "embedding-code-sign", "none", "asymmetric", "symmetric"] == list(FAMILIES)
    np.testing.assert_array_equal(arrays["learned"], [family in LEARNED for family in families])
    assert arrays["loss_per_feature"].shape == (5, 2, 4) and arrays["at_p_train"].shape == (5, 2)
    np.testing.assert_allclose(arrays["p_eval"], np.geomspace(1e-3, 1, 4))
    assert np.all(arrays["loss_per_feature_sem"] <= 0.05 * arrays["loss_per_feature"])
    assert np.all(arrays["at_p_train_sem"] <= 0.05 * arrays["at_p_train"])
    # Fixed families train at scale 1; the two embedding signs share W_E per seed.
    np.testing.assert_array_equal(arrays["scale"][:3], 1.0)
    mixing = arrays["mixing"]
    np.testing.assert_array_equal(mixing[1], -mixing[0])
    assert not mixing[2].any()  # clean labels
    assert arrays["mixing_rms"][0].mean() == pytest.approx(0.0315, abs=0.001)  # std of I - W_E W_E^T
    # Learned families: the scale moved from its initial 0.01; the labels use its magnitude |s|,
    # which is what scale, abs_scale and the logged history hold.
    learned = arrays["scale"][3:]
    assert np.all(learned >= 0) and np.all(np.abs(learned - 0.01) > 1e-4)
    np.testing.assert_array_equal(arrays["abs_scale"], arrays["scale"])
    np.testing.assert_allclose(arrays["scale_history"][3:, :, -1], learned, rtol=1e-6)
    rms = arrays["scale"] * np.linalg.norm(mixing.astype(np.float64), axis=(-2, -1)) / 100
    np.testing.assert_allclose(arrays["mixing_rms"], rms, rtol=1e-5)
    assert "|scale|" in manifest["labels"] and "signed" not in manifest["labels"]
    symmetric = mixing[4]
    np.testing.assert_array_equal(symmetric, np.swapaxes(symmetric, -1, -2))
    assert manifest["sweeps"][1]["learn_scale"] and not manifest["sweeps"][0]["learn_scale"]
    # Two sweeps, one per learn_scale setting.
    assert done.stderr.count("compiling first") == 2
    for published in ("0.0644", "0.0670", "0.0835", "0.0753", "0.0651", "~0.025", "~0.033"):
        assert published in done.stdout
    assert (tmp / "fig" / "mixing_types.png").stat().st_size > 10_000


def test_mixing_types_plot_only(mixing_run):
    tmp, done = mixing_run
    (tmp / "fig" / "mixing_types.png").unlink()
    replot = run("--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert replot.returncode == 0, replot.stderr
    assert "re-plotting" in replot.stderr and (tmp / "fig" / "mixing_types.png").exists()
    assert replot.stdout == done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "--seeds"),
        (["--eval-points", "0"], "--eval-points"),
        (["--eval-rel-sem", "-0.1"], "--eval-rel-sem"),
        (["--steps", "ten"], "--steps"),
        (["--plot-only", "--out", "/nonexistent/results"], "--plot-only"),
    ],
)
def test_mixing_types_bad_input(args, message):
    done = run(*args, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
