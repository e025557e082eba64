"""The rank-of-M experiment (paper experiment 8) runs end to end on tiny settings."""

import functools
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

import ccjax
from experiments.rank_sweep import PAPER_CLAIM as RANK_SWEEP

RANKS = [1, 20]
FAMILIES = ["low-rank", "low-rank-flat"]


run = functools.partial(run_main, "rank_sweep")


@pytest.fixture(scope="module")
def rank_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rank")
    args = ["--ranks", "20,1", "--seeds", "2", "--steps", "40"]
    done = run(*args, "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_rank_sweep_results(rank_run):
    tmp, done = rank_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    assert list(arrays["families"]) == ["low-rank", "low-rank-flat"]
    np.testing.assert_array_equal(arrays["ranks"], RANKS)  # sorted
    np.testing.assert_array_equal(arrays["seeds"], [0, 1])
    grid = (2, 2, 2)
    for name in ("loss", "scale", "effective_rank", "mixing_rms", "naive_loss", "final_train_loss_per_feature"):
        assert arrays[name].shape == grid, name
        assert np.all(np.isfinite(arrays[name])), name
    assert arrays["w_in"].shape == (*grid, 100, 50) and arrays["w_out"].shape == (*grid, 50, 100)
    assert arrays["mixing"].shape == (*grid, 100, 100)
    assert arrays["scale_history"].shape == (*grid, len(arrays["history_step"]))
    assert arrays["history_step"][-1] == 40
    # Every array the run saved is documented in the manifest.
    assert set(manifest["arrays"]) == set(arrays)
    assert manifest["config"]["learn_scale"] and manifest["config"]["data"] == "exactly-one"
    # The default convention is the spec's: M keeps its diagonal, the spec's training, no full-rank point.
    assert manifest["convention"] == "spec" and str(arrays["convention"]) == "spec"
    assert not manifest["config"]["zero_diagonal"] and manifest["full_rank_config"] is None
    assert manifest["config"]["lr"] == 3e-3 and manifest["config"]["schedule"] == "half-cosine"
    assert manifest["config"]["batch_size"] == 2048
    assert not any(name.startswith("full_rank_") for name in arrays)
    assert "paper_code_differences" in manifest and "paper_code" not in manifest
    # The framework's fields keep the experiment's own: the claim the module declares, the timings of both sweeps.
    assert manifest["paper_claim"] == RANK_SWEEP
    assert manifest["axes"] == {"family": FAMILIES, "seed": [0, 1], "rank": RANKS}
    assert set(manifest["timings"]) == {"train_seconds", "sweep_run_seconds", "compile_seconds", "n_devices"}

    # Each stored M has the stated rank; the flat family's r singular values are all 1,
    # so its effective rank is r; the Gaussian family's is at most r.
    singular = np.linalg.svd(arrays["mixing"].astype(np.float64), compute_uv=False)
    for r, rank in enumerate(RANKS):
        assert np.all(np.sum(singular[:, :, r] > 1e-4 * singular[:, :, r, :1], axis=-1) == rank)
        np.testing.assert_allclose(singular[1, :, r, :rank], 1.0, atol=1e-5)
    np.testing.assert_allclose(arrays["effective_rank"][1], np.broadcast_to(RANKS, (2, 2)), rtol=2e-3)
    assert np.all(arrays["effective_rank"][0] <= np.asarray(RANKS) * (1 + 1e-3))
    # The ranks of a seed share U and V: the rank-20 M minus the rank-1 M has rank 19.
    rest = np.linalg.svd((arrays["mixing"][:, :, 1] - arrays["mixing"][:, :, 0]).astype(np.float64), compute_uv=False)
    assert np.all(np.sum(rest > 1e-4 * rest[..., :1], axis=-1) == 19)
    assert not np.allclose(arrays["mixing"][:, 0, 1], arrays["mixing"][:, 1, 1])  # seeds differ
    # A scale does not change the effective rank.
    scaled = arrays["scale"][0, 1, 1] * arrays["mixing"][0, 1, 1]
    np.testing.assert_allclose(ccjax.analysis.effective_rank(scaled), arrays["effective_rank"][0, 1, 1], rtol=1e-4)

    # The stored loss is the exact exactly-one L/p of the stored weights on the stored s M.
    params = ccjax.FeatureMLP(w_in=arrays["w_in"][1, 1, 0], w_out=arrays["w_out"][1, 1, 0])
    recomputed = ccjax.exactly_one_loss_per_feature(params, arrays["scale"][1, 1, 0] * arrays["mixing"][1, 1, 0])
    np.testing.assert_allclose(recomputed, arrays["loss"][1, 1, 0], rtol=1e-5)
    naive = ccjax.baselines.naive_model(100, 50)
    np.testing.assert_allclose(
        ccjax.exactly_one_loss_per_feature(naive, arrays["scale"][0, 0, 1] * arrays["mixing"][0, 0, 1]),
        arrays["naive_loss"][0, 0, 1],
        rtol=1e-5,
    )
    # scale is |s|, the learned scale's magnitude that the labels use (no separate abs_scale).
    assert "abs_scale" not in arrays
    np.testing.assert_allclose(arrays["scale_history"][..., -1], arrays["scale"], rtol=1e-6)
    rms = arrays["scale"] * np.linalg.norm(arrays["mixing"].astype(np.float64), axis=(-2, -1)) / 100
    np.testing.assert_allclose(arrays["mixing_rms"], rms, rtol=1e-5)
    # After 40 steps from 0.01 at lr 3e-3 the scale has moved, but not far.
    assert np.all(arrays["scale"] > 0) and np.all(arrays["scale"] < 0.2)
    assert np.all(arrays["scale_history"] >= 0)
    assert "|s|" in manifest["labels"] and "signed" not in manifest["labels"]
    assert "negative_final_scale" not in manifest

    assert "d(L/p)/d ln(eff. rank)" in done.stdout and "low-rank-flat" in done.stdout
    assert "convention spec" in done.stdout
    assert manifest["naive_loss_per_feature"] == pytest.approx(1 / 12)
    assert (tmp / "fig" / "rank_sweep.png").stat().st_size > 10_000
    assert not (tmp / "fig" / "rank_sweep_paper_code.png").exists()


def test_rank_sweep_plot_only(rank_run):
    tmp, done = rank_run
    (tmp / "fig" / "rank_sweep.png").unlink()
    replot = run("--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"), timeout=300)
    assert replot.returncode == 0, replot.stderr
    assert (tmp / "fig" / "rank_sweep.png").exists()
    assert replot.stdout == done.stdout  # the same table, from disk


PAPER_CODE_RANKS = [5, 20]


@pytest.fixture(scope="module")
def paper_code_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rank_paper_code")
    args = ["--convention", "paper-code", "--ranks", "20,5", "--seeds", "2", "--steps", "40"]
    done = run(*args, "--out", str(tmp / "out"), "--figures", str(tmp / "fig"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_rank_sweep_paper_code(paper_code_run):
    tmp, done = paper_code_run
    arrays, manifest = ccjax.load_results(tmp / "out")
    # The convention and the code's settings are recorded.
    assert manifest["convention"] == "paper-code" and str(arrays["convention"]) == "paper-code"
    config = manifest["config"]
    assert config["zero_diagonal"] and config["learn_scale"] and config["data"] == "exactly-one"
    assert config["lr"] == 1e-3 and config["schedule"] == "constant" and config["weight_decay"] == 1e-2
    assert config["batch_size"] == 1024 and config["steps"] == 40 and config["scale_init"] == 0.01
    assert config["mixing"] == "low-rank"
    full_config = manifest["full_rank_config"]
    assert full_config["mixing"] == "asymmetric" and full_config == config | {"mixing": "asymmetric"}
    assert "nb6_mixing_matrix_rank.py" in manifest["paper_code"]["source"]
    # The labels use |s| in both the code and ccjax: matched, not a difference.
    assert any("|s|" in item for item in manifest["paper_code"]["matched"])
    assert not any("|s|" in item or "sign" in item for item in manifest["paper_code"]["not_matched"])
    assert "paper_code_differences" not in manifest
    # paper-code trains the low-rank family only, plus the full-rank point over the same seeds.
    assert list(arrays["families"]) == ["low-rank"]
    np.testing.assert_array_equal(arrays["ranks"], PAPER_CODE_RANKS)
    np.testing.assert_array_equal(arrays["seeds"], [0, 1])
    assert set(manifest["arrays"]) == set(arrays)
    for name in ("loss", "scale", "effective_rank", "mixing_rms", "naive_loss", "final_train_loss_per_feature"):
        assert arrays[name].shape == (1, 2, 2), name
        assert arrays[f"full_rank_{name}"].shape == (2,), name
        assert np.all(np.isfinite(arrays[name])) and np.all(np.isfinite(arrays[f"full_rank_{name}"])), name
    assert arrays["full_rank_mixing"].shape == (2, 100, 100)
    assert arrays["full_rank_w_in"].shape == (2, 100, 50) and arrays["full_rank_w_out"].shape == (2, 50, 100)
    assert arrays["full_rank_scale_history"].shape == (2, len(arrays["history_step"]))

    # Every stored M has a zero diagonal; zeroing it lifts the low-rank M's rank far above r (its
    # smallest singular values are small but not zero; 96-99 exceed 1e-3 of the largest at paper scale).
    mixing = arrays["mixing"].astype(np.float64)
    full = arrays["full_rank_mixing"].astype(np.float64)
    assert np.all(np.diagonal(mixing, axis1=-2, axis2=-1) == 0)
    assert np.all(np.diagonal(full, axis1=-2, axis2=-1) == 0)
    singular = np.linalg.svd(mixing, compute_uv=False)
    assert np.all(np.sum(singular > 1e-3 * singular[..., :1], axis=-1) >= 80)
    assert np.all(arrays["effective_rank"][0] > np.asarray(PAPER_CODE_RANKS))  # zeroing spreads the spectrum
    # The full-rank M is a dense Gaussian: off-diagonal std near 1.
    off = full[:, ~np.eye(100, dtype=bool)]
    np.testing.assert_allclose(off.std(axis=-1), 1.0, atol=0.03)
    recomputed = [ccjax.analysis.effective_rank(m) for m in arrays["full_rank_mixing"]]
    np.testing.assert_allclose(arrays["full_rank_effective_rank"], recomputed, rtol=1e-4)
    assert not np.allclose(full[0], full[1])  # seeds differ

    # The stored losses are the exact L/p of the stored weights on the stored s M.
    params = ccjax.FeatureMLP(w_in=arrays["full_rank_w_in"][1], w_out=arrays["full_rank_w_out"][1])
    recomputed = ccjax.exactly_one_loss_per_feature(params, arrays["full_rank_scale"][1] * full[1])
    np.testing.assert_allclose(recomputed, arrays["full_rank_loss"][1], rtol=1e-5)
    assert np.all(arrays["full_rank_scale"] >= 0) and "full_rank_abs_scale" not in arrays
    np.testing.assert_allclose(arrays["full_rank_scale_history"][:, -1], arrays["full_rank_scale"], rtol=1e-6)
    # The full-rank point shares each seed's initial weights and data: at step 40 and lr 1e-3 its
    # weights are still close to the low-rank models' of the same seed, and far from other seeds'.
    same = np.abs(arrays["full_rank_w_in"][0] - arrays["w_in"][0, 0, 0]).max()
    other = np.abs(arrays["full_rank_w_in"][0] - arrays["w_in"][0, 1, 0]).max()
    assert same < 0.1 < other

    # The printed summary names the convention, what ccjax cannot match, and the trend against the paper.
    assert "convention paper-code" in done.stdout and "not matched to the authors' code" in done.stdout
    assert "d(L/p)/d ln(eff. rank)" in done.stdout and "full rank vs low-rank" in done.stdout
    assert "low-rank-flat" not in done.stdout
    # Its figure has its own name, so the spec run's rank_sweep.png is not overwritten.
    assert (tmp / "fig" / "rank_sweep_paper_code.png").stat().st_size > 10_000
    assert not (tmp / "fig" / "rank_sweep.png").exists()


def test_rank_sweep_paper_code_m_is_spec_m_without_diagonal(rank_run, paper_code_run):
    # A seed draws the same U V^T in both conventions; paper-code only zeroes its diagonal.
    spec, _ = ccjax.load_results(rank_run[0] / "out")
    code, _ = ccjax.load_results(paper_code_run[0] / "out")
    r_spec, r_code = list(spec["ranks"]).index(20), list(code["ranks"]).index(20)
    spec_m = spec["mixing"][0, :, r_spec]  # low-rank family, both seeds, rank 20
    assert np.all(np.abs(np.diagonal(spec_m, axis1=-2, axis2=-1)) > 0)
    np.testing.assert_array_equal(code["mixing"][0, :, r_code], spec_m * (1 - np.eye(100, dtype=spec_m.dtype)))


def test_rank_sweep_paper_code_plot_only(paper_code_run):
    tmp, done = paper_code_run
    (tmp / "fig" / "rank_sweep_paper_code.png").unlink()
    # The figure name comes from the saved manifest, not from the command line.
    replot = run("--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "fig"), timeout=300)
    assert replot.returncode == 0, replot.stderr
    assert (tmp / "fig" / "rank_sweep_paper_code.png").exists()
    assert not (tmp / "fig" / "rank_sweep.png").exists()
    assert replot.stdout == done.stdout


def test_rank_sweep_default_out_per_convention():
    from experiments import rank_sweep

    parser = rank_sweep.build_parser()
    spec = rank_sweep.resolve_defaults(parser.parse_args([]))
    code = rank_sweep.resolve_defaults(parser.parse_args(["--convention", "paper-code"]))
    assert spec.out == Path("results/rank_sweep") and code.out == Path("results/rank_sweep_paper_code")
    assert spec.ranks == [1, 2, 5, 10, 20, 30, 50, 75, 100] and code.ranks == [5, 7, 10, 15, 20, 50, 100]
    assert spec.families == ["low-rank", "low-rank-flat"] and code.families == ["low-rank"]
    assert not spec.full_rank and code.full_rank
    assert (spec.steps, code.steps) == (10_000, 30_000) and spec.scale_init == code.scale_init == 0.01
    # Explicit options override the convention's defaults.
    args = ["--convention", "paper-code", "--families", "low-rank-flat", "--no-full-rank", "--out", "x"]
    custom = rank_sweep.resolve_defaults(parser.parse_args([*args, "--steps", "7", "--scale-init", "0.05"]))
    assert custom.families == ["low-rank-flat"] and not custom.full_rank and custom.out == Path("x")
    assert (custom.steps, custom.scale_init) == (7, 0.05)


def test_rank_sweep_plot_only_rejects_other_results(tmp_path):
    ccjax.save_results(tmp_path, {"x": np.zeros(1)}, {"experiment": "snmf_sweep"})
    done = run("--plot-only", "--out", str(tmp_path), "--figures", str(tmp_path / "fig"), timeout=120)
    assert done.returncode == 2 and "snmf_sweep" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ranks", "0"], "--ranks"),
        (["--ranks", "101"], "--ranks"),
        (["--ranks", "1,,a"], "--ranks"),
        (["--ranks", "a"], "--ranks"),
        (["--ranks", "5,5"], "--ranks"),
        (["--families", "embedding"], "--families"),
        (["--seeds", "0"], "--seeds"),
        (["--steps", "0"], "--steps"),
        (["--convention", "code"], "--convention"),
        (["--scale-init", "nan"], "--scale-init"),
    ],
)
def test_rank_sweep_bad_input(args, message):
    done = run(*args, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_zero_diagonal_defaults_to_the_conventions_own_and_names_the_output():
    from experiments import rank_sweep

    parser = rank_sweep.build_parser()

    def resolved(*argv):
        return rank_sweep.resolve_defaults(parser.parse_args(list(argv)))

    assert not resolved().zero_diagonal and resolved("--convention", "paper-code").zero_diagonal
    spec_zeroed = resolved("--zero-diagonal")
    code_kept = resolved("--convention", "paper-code", "--no-zero-diagonal")
    assert spec_zeroed.zero_diagonal and spec_zeroed.out == Path("results/rank_sweep_zero_diagonal")
    assert not code_kept.zero_diagonal and code_kept.out == Path("results/rank_sweep_paper_code_diagonal_kept")
    # The recipe does not follow the diagonal.
    assert (spec_zeroed.steps, code_kept.steps) == (10_000, 30_000) and code_kept.full_rank
    # Asking for the convention's own diagonal changes nothing.
    assert resolved("--no-zero-diagonal").out == Path("results/rank_sweep")
    assert resolved("--convention", "paper-code", "--zero-diagonal").out == Path("results/rank_sweep_paper_code")


def test_zero_diagonal_switch_pairs_the_two_ms_under_one_recipe(tmp_path, rank_run, paper_code_run, capsys):
    """--zero-diagonal under the spec recipe, --no-zero-diagonal under the paper-code recipe: the
    same seeds draw the same U V^T as the convention's own run; only the diagonal differs."""
    from experiments import rank_sweep

    # One seed (seed 0, as in the fixtures), two steps: M does not depend on training.
    tiny = ["--seeds", "1", "--steps", "2", "--figures", str(tmp_path / "fig")]
    spec = ["--zero-diagonal", "--families", "low-rank", "--ranks", "1,20"]
    assert rank_sweep.main([*spec, *tiny, "--out", str(tmp_path / "zeroed")]) == 0
    zeroed_stdout = capsys.readouterr().out
    code = ["--convention", "paper-code", "--no-zero-diagonal", "--ranks", "5,20"]
    assert rank_sweep.main([*code, *tiny, "--out", str(tmp_path / "kept")]) == 0
    kept_stdout = capsys.readouterr().out

    spec_kept, _ = ccjax.load_results(rank_run[0] / "out")
    spec_zeroed, zeroed_manifest = ccjax.load_results(tmp_path / "zeroed")
    code_zeroed, _ = ccjax.load_results(paper_code_run[0] / "out")
    code_kept, kept_manifest = ccjax.load_results(tmp_path / "kept")

    def diagonal(m):
        return np.diagonal(m, axis1=-2, axis2=-1)

    def assert_same_off_diagonal(a, b):  # the fixtures ran other programs (ranks, steps), maybe compiled differently
        off = ~np.eye(100, dtype=bool)
        np.testing.assert_allclose(a[..., off], b[..., off], rtol=1e-5, atol=1e-6)

    # spec recipe, diagonal zeroed: the M used is the spec run's M (low-rank, seed 0) with a zero diagonal.
    assert zeroed_manifest["zero_diagonal"] and zeroed_manifest["config"]["zero_diagonal"]
    assert not zeroed_manifest["convention_zero_diagonal"] and "not the convention's own" in zeroed_manifest["diagonal"]
    assert zeroed_manifest["config"]["lr"] == 3e-3 and zeroed_manifest["config"]["schedule"] == "half-cosine"
    assert np.all(diagonal(spec_zeroed["mixing"]) == 0)
    assert_same_off_diagonal(spec_zeroed["mixing"][0, 0], spec_kept["mixing"][0, 0])
    assert np.all(spec_zeroed["effective_rank"][0, 0] > spec_kept["effective_rank"][0, 0])

    # paper-code recipe, diagonal kept: the code run's M with its diagonal back; the full-rank point too.
    assert not kept_manifest["zero_diagonal"] and not kept_manifest["config"]["zero_diagonal"]
    assert not kept_manifest["full_rank_config"]["zero_diagonal"] and kept_manifest["convention_zero_diagonal"]
    assert kept_manifest["config"]["lr"] == 1e-3 and kept_manifest["config"]["batch_size"] == 1024
    assert np.all(np.abs(diagonal(code_kept["mixing"])) > 0)
    assert np.all(np.abs(diagonal(code_kept["full_rank_mixing"])) > 0)
    assert_same_off_diagonal(code_kept["mixing"][0, 0], code_zeroed["mixing"][0, 0])
    assert_same_off_diagonal(code_kept["full_rank_mixing"][0], code_zeroed["full_rank_mixing"][0])
    # A kept diagonal is not what the authors' first version does: listed as not matched.
    paper_code = kept_manifest["paper_code"]
    assert "diagonal is kept" in paper_code["not_matched"][0]
    assert not any("set to 0" in item for item in paper_code["matched"])

    # Labelled: the printed table and the figure's name say which diagonal.
    assert "M's diagonal zeroed (--zero-diagonal)" in zeroed_stdout
    assert "M's diagonal kept (--no-zero-diagonal)" in kept_stdout
    figures = sorted(path.name for path in (tmp_path / "fig").iterdir())
    assert figures == ["rank_sweep_paper_code_diagonal_kept.png", "rank_sweep_zero_diagonal.png"]
