"""The eigen_subspace experiment (paper experiment 5) runs end to end and re-plots from disk."""

import functools

import numpy as np
import pytest
from conftest import run_main

import ccjax
from ccjax import analysis

run = functools.partial(run_main, "eigen_subspace")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eigen")
    done = run("--seeds", "2", "--steps", "60", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_results_are_the_analyses_of_the_stored_models(tiny):
    tmp, done = tiny
    arrays, manifest = ccjax.load_results(tmp / "out")
    assert list(arrays["families"]) == ["embedding", "asymmetric"]
    np.testing.assert_array_equal(arrays["scales"], [1.0, 0.03])
    assert arrays["eigen_cos"].shape == (2, 2, 100) and arrays["projection_in"].shape == (2, 2, 100, 50)
    # Recompute one model's analyses from its stored linear map and label map.
    linear, scaled = arrays["linear_map"][1, 1], arrays["scaled_mixing"][1, 1]
    basis = analysis.eigenbasis(scaled)
    top = np.asarray(basis.vectors)[:, :5]
    image = linear @ top
    cosine = np.sum(top * image, axis=0) / np.linalg.norm(image, axis=0)
    np.testing.assert_allclose(arrays["eigen_cos"][1, 1, :5], cosine, atol=1e-4)
    off = ~np.eye(100, dtype=bool)
    slope = np.sum(linear[off] * scaled[off]) / np.sum(scaled[off] ** 2)
    np.testing.assert_allclose(arrays["off_diagonal_slope"][1, 1], slope, rtol=1e-3)
    # The embedding M has a zero diagonal: no diagonal slope, said so in the table.
    assert np.isnan(arrays["diagonal_slope"][0]).all() and "zero diagonal" in done.stdout
    assert manifest["config"]["steps"] == 60 and "~1.86" in done.stdout
    for name in ("eigen_subspace.png", "eigen_subspace_projections.png"):
        assert (tmp / "fig" / name).stat().st_size > 10_000


def test_plot_only_prints_the_same_table(tiny):
    tmp, done = tiny
    again = run("--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig2"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == done.stdout and (tmp / "fig2" / "eigen_subspace.png").exists()


@pytest.mark.parametrize("args, message", [(["--seeds", "0"], "--seeds"), (["--steps", "-5"], "--steps")])
def test_bad_input(args, message):
    done = run(*args)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
