"""The issue-3 experiment CLIs run end to end on tiny settings and re-plot from disk."""

import json

import numpy as np
import pytest
from conftest import run_main as run
from conftest import run_module

import ccjax


@pytest.fixture(scope="module")
def sparsity_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sparsity")
    args = ["--p-train", "0.01,0.5", "--steps", "30", "--seeds", "2", "--eval-points", "6", "--eval-rel-sem", "0.05"]
    done = run("sparsity_regimes", *args, "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_sparsity_regimes_results(sparsity_run):
    tmp, done = sparsity_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    assert arrays["loss_per_feature"].shape == (2, 2, 6)
    assert arrays["at_train_p"].shape == (2, 2)
    np.testing.assert_array_equal(arrays["p_train"], [0.01, 0.5])
    # Step scaling: 30 / (1 - 0.99^100) = 47.4 steps at p = 0.01; none at p = 0.5.
    np.testing.assert_array_equal(arrays["steps"], [47, 30])
    assert np.all(arrays["loss_per_feature_sem"] <= 0.05 * arrays["loss_per_feature"])
    assert manifest["mixing"] == {"name": "asymmetric", "formula": manifest["mixing"]["formula"], "scale": 0.02}
    assert "0.0758" in done.stdout  # the published value at p = 0.01 is printed next to ours
    for name in ("sparsity_regimes.png", "sparsity_regimes_models.png"):
        assert (tmp / "fig" / name).stat().st_size > 10_000


def test_sparsity_regimes_plot_only(sparsity_run):
    tmp, _ = sparsity_run
    for name in ("sparsity_regimes.png", "sparsity_regimes_models.png"):
        (tmp / "fig" / name).unlink()
    done = run("sparsity_regimes", "--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    assert "re-plotting" in done.stderr and (tmp / "fig" / "sparsity_regimes_models.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--p-train", "0.5,2"], "every p must be in"),
        (["--p-train", "0,,a"], "--p-train"),
        (["--seeds", "0"], "--seeds"),
        (["--scale", "-1"], "--scale"),
        (["--mixing", "diagonal"], "--mixing"),
        (["--plot-only", "--out", "/nonexistent/results"], "--plot-only"),
    ],
)
def test_sparsity_regimes_bad_input(args, message):
    done = run("sparsity_regimes", *args, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


EVAL_BENCHMARK_TINY = ["--scales", "2", "--seeds", "1", "--train-steps", "10", "--points", "8", "--rel-sem", "0.02"]
EVAL_BENCHMARK_TINY += ["--direct-p", "0.05", "--direct-nonempty", "2000"]
DIRECT_NONEMPTY = 2000


def check_eval_benchmark_report(done, out, paper_nonempty: float) -> None:
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "eval_benchmark.json").read_text())
    assert report["n_models"] == 2 and report["n_p"] == 8
    assert report["engine_target"]["max_rel_sem"] <= 0.02
    assert report["paper_sampling"]["nonempty_per_p"] == paper_nonempty
    assert report["paper_sampling"]["evaluations_per_model"] == 8 * paper_nonempty
    assert report["engine_paper_se"]["max_sem_over_paper_sem"] <= 1  # matched the paper's SE at every p
    assert report["direct_measured"][0]["nonempty_per_model"] >= DIRECT_NONEMPTY
    assert "fewer" in done.stdout


@pytest.mark.integration
def test_eval_benchmark_smoke(tmp_path, monkeypatch):
    """The whole benchmark, with the paper's sampling cut from 1e6 to 5e3 non-empty samples
    per p (matching the paper's SE at every p is most of the run's cost; the full number is
    run by the slow test below)."""
    from benchmarks import evaluation as eval_benchmark

    assert eval_benchmark.PAPER_NONEMPTY == 1e6  # docs/paper.md §4
    monkeypatch.setattr(eval_benchmark, "PAPER_NONEMPTY", 5e3)
    done = run("benchmarks.evaluation", *EVAL_BENCHMARK_TINY, "--out", str(tmp_path))
    check_eval_benchmark_report(done, tmp_path, 5e3)


@pytest.mark.slow
def test_eval_benchmark_smoke_at_the_papers_sampling(tmp_path):
    # A process of its own: this run is compute-bound, and in-process it would run the test
    # session's -O0 code (measured 2x the CPU time of a subprocess at -O2).
    done = run_module("benchmarks.evaluation", *EVAL_BENCHMARK_TINY, "--out", str(tmp_path))
    check_eval_benchmark_report(done, tmp_path, 1e6)


def test_dense_offset_end_to_end(tmp_path):
    args = ["--p-train", "0.1,1", "--steps", "10", "--seeds", "2", "--eval-points", "6", "--eval-rel-sem", "0.1"]
    done = run("dense_offset", *args, "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"))
    assert done.returncode == 0, done.stderr
    arrays, manifest = ccjax.load_results(tmp_path / "out")
    assert arrays["loss_per_feature"].shape == (2, 2, 6) and arrays["train_offset_loss"].shape == (2, 6)
    # The closed form (b* = 0.0194, L/p = 0.0531 at p = 1) and the engine's check of it.
    assert arrays["train_offset"][1] == pytest.approx(0.0194, abs=1e-4)
    np.testing.assert_allclose(arrays["engine_offset_loss"], [0.0813, 0.0531], atol=2e-4)
    assert np.all(arrays["best_offset_loss"] <= manifest["naive_loss_per_feature"] + 1e-12)
    assert "paper ~0.052" in done.stdout and (tmp_path / "fig" / "dense_offset.png").exists()
    replot = run("dense_offset", "--plot-only", "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"))
    assert replot.returncode == 0, replot.stderr
    assert "naive+b* (exact)" in replot.stdout


@pytest.fixture(scope="module")
def snmf_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snmf")
    args = ["--sigmas", "0.02,0", "--seeds", "2", "--steps", "10", "--outer-iterations", "20"]
    done = run("snmf_sweep", *args, "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_snmf_sweep_results(snmf_run):
    tmp, done = snmf_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    np.testing.assert_array_equal(arrays["sigmas"], [0, 0.02])  # sorted
    assert list(arrays["families"]) == ["asymmetric", "symmetric"]
    assert list(arrays["orientations"]) == ["faithful", "paper-code"]
    assert arrays["snmf_loss"].shape == (2, 2, 2, 2) and arrays["trained_loss"].shape == (2, 2, 2)
    # sigma = 0: the target is I, whose rank-50 semi-NMF is the naive model (L/p = 1/12).
    np.testing.assert_allclose(arrays["snmf_loss"][:, :, 0], 1 / 12, atol=2e-4)
    np.testing.assert_allclose(arrays["naive_loss"][:, :, 0], 1 / 12, rtol=1e-5)
    # A symmetric M has one target for both orientations; an asymmetric one does not.
    symmetric = arrays["snmf_loss"][1]
    np.testing.assert_array_equal(symmetric[..., 0], symmetric[..., 1])
    assert np.all(np.abs(arrays["snmf_loss"][0, :, 1, 0] - arrays["snmf_loss"][0, :, 1, 1]) > 1e-3)
    # The stored losses are those of the stored factors on the stored M.
    w_in, w_out = arrays["snmf_w_in"][0, 1, 1, 1], arrays["snmf_w_out"][0, 1, 1, 1]
    recomputed = ccjax.exactly_one_loss_per_feature(
        ccjax.FeatureMLP(w_in=w_in, w_out=w_out), 0.02 * arrays["mixing"][0, 1]
    )
    np.testing.assert_allclose(recomputed, arrays["snmf_loss"][0, 1, 1, 1], rtol=1e-5)
    assert manifest["published"]["orientation"] == "paper-code"
    assert "0.0817" in done.stdout  # the published sigma = 0.02 value is printed next to ours
    assert (tmp / "fig" / "snmf_sweep.png").stat().st_size > 10_000


def test_snmf_sweep_plot_only(snmf_run):
    tmp, _ = snmf_run
    (tmp / "fig" / "snmf_sweep.png").unlink()
    done = run("snmf_sweep", "--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    assert (tmp / "fig" / "snmf_sweep.png").exists() and "SNMF paper-code" in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sigmas", "0,,a"], "--sigmas"),
        (["--sigmas", "-0.1"], "--sigmas"),
        (["--families", "embedding"], "unknown family"),
        (["--outer-iterations", "0"], "--outer-iterations"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_snmf_sweep_bad_input(args, message):
    done = run("snmf_sweep", *args, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_snmf_sweep_without_training(tmp_path):
    args = ["--no-train", "--families", "symmetric", "--sigmas", "0.01", "--seeds", "1", "--outer-iterations", "5"]
    done = run("snmf_sweep", *args, "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "fig"))
    assert done.returncode == 0, done.stderr
    arrays, manifest = ccjax.load_results(tmp_path / "out")
    assert "trained_loss" not in arrays and manifest["trained"] is False
    assert "not run (--no-train)" in done.stdout
