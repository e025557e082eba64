"""ccjax.cis: each search task's labels on hand-worked examples, its naive reference
against Monte Carlo and against the naive model itself, the static-axis grid, and the
cis_search command line."""

import dataclasses
import itertools
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import run_main

import ccjax
from ccjax import cis
from ccjax.cis import _grid as grid
from ccjax.engine import over_static_axes, static_combinations

TASKS = cis.SEARCH_TASKS
ROOT = Path(__file__).resolve().parents[1]


def test_relu_labels_and_the_discrete_inputs():
    x = jnp.array([[-0.5, 0.3, 0.0]])
    np.testing.assert_array_equal(TASKS["relu"].labels(x), np.float32([[0.0, 0.3, 0.0]]))
    discrete = TASKS["relu-discrete"]
    values = discrete.input_values(jnp.array([[-0.3, 0.7, 0.0]]))
    np.testing.assert_array_equal(values, [[-1.0, 1.0, 0.0]])
    np.testing.assert_array_equal(discrete.labels(values), [[0.0, 1.0, 0.0]])


def test_outlier_losses_by_hand():
    target = jnp.zeros((1, 2))
    np.testing.assert_allclose(TASKS["relu-outlier-l4"].sample_loss(jnp.array([[0.5, 0.0]]), target), [0.0625 / 2])
    lse = TASKS["relu-outlier-lse"]
    np.testing.assert_allclose(lse.sample_loss(target, target), [0.0], atol=1e-7)
    # one squared error of 1 among 2 outputs at T = 0.05: T (log(e^20 + 1) - log 2)
    expected = 0.05 * (np.log(np.exp(20.0) + 1.0) - np.log(2.0))
    np.testing.assert_allclose(lse.sample_loss(jnp.array([[1.0, 0.0]]), target), [expected], rtol=1e-6)


def test_and_pairs_labels_by_hand():
    task = TASKS["and-pairs"]
    pairs = task.pairs(5)  # m = 10 = every pair of 5 features
    assert sorted(map(tuple, pairs)) == list(itertools.combinations(range(5), 2))
    x = task.input_values(jnp.array([[0.4, -0.9, 0.0, 0.2, 0.0]]))  # features 0, 1 and 3 active
    np.testing.assert_array_equal(x, [[1.0, 1.0, 0.0, 1.0, 0.0]])
    on = {tuple(pair) for pair, value in zip(pairs, task.labels(x)[0], strict=True) if value == 1.0}
    assert on == {(0, 1), (0, 3), (1, 3)}


def test_two_step_labels_by_hand():
    task = TASKS["two-step"]
    reading = task.reading(6)
    assert ((reading != 0).sum(axis=0) == 4).all() and set(np.unique(reading)) == {-1.0, 0.0, 1.0}
    x = jnp.zeros((1, 6)).at[0, 2].set(0.5).at[0, 4].set(-0.7)  # relu drops feature 4
    np.testing.assert_allclose(task.labels(x)[0], np.maximum(0.5 * reading[2], 0.0), atol=1e-7)
    served = np.asarray(task.served_outputs(6, 3))
    positive = (reading > 0).sum(axis=0)
    assert served.sum() == 3 and positive[served].min() >= positive[~served].max()


@pytest.mark.parametrize("name", [name for name, task in TASKS.items() if task.naive_loss(20, 10, 0.1) is not None])
@pytest.mark.parametrize("p", [0.05, 0.2])
def test_naive_closed_form_agrees_with_monte_carlo(name, p):
    task = TASKS[name]
    estimate = cis.naive_monte_carlo(task, 20, 10, p, jax.random.key(3), batches=32, batch_size=2048)
    assert abs(float(estimate.mean) - task.naive_loss(20, 10, p)) < 4 * float(estimate.sem)


def _evaluate(task, params, n, d, p):
    capacity = ccjax.problem.default_capacity(2048, n, p)
    return cis.evaluate_model(task, params, n, d, p, jax.random.key(7), 32, 2048, capacity)


def test_the_naive_relu_model_scores_the_naive_loss_and_is_fully_naive_like():
    n, d, p = 20, 10, 0.1
    naive = {"w_in": jnp.eye(n)[:, :d], "w_out": jnp.eye(n)[:d]}
    result = _evaluate(TASKS["relu"], naive, n, d, p)
    assert abs(float(result.loss.mean) - TASKS["relu"].naive_loss(n, d, p)) < 4 * float(result.loss.sem)
    np.testing.assert_allclose(result.loss.mean, result.naive_loss.mean, rtol=1e-5)  # the same model, same samples
    np.testing.assert_allclose(result.naive_like_share, 1.0, rtol=1e-6)


@pytest.mark.parametrize("name", ["relu-outlier-l4", "and-pairs", "two-step"])
def test_evaluate_loss_is_evaluate_models_loss_on_the_same_samples(name):
    """The built references are scored by the loss alone; it must be the value the trained models get."""
    task, n, d, p = TASKS[name], 12, 6, 0.2
    family = cis.MODEL_FAMILIES[task.family]
    params = family.init(jax.random.key(4), n, d, task.n_outputs(n))
    capacity = ccjax.problem.default_capacity(512, n, p)
    full = cis.evaluate_model(task, params, n, d, p, jax.random.key(8), 4, 512, capacity).loss
    alone = cis._evaluate.evaluate_loss(task, params, n, p, jax.random.key(8), 4, 512, capacity)
    np.testing.assert_allclose([alone.mean, alone.sem], [full.mean, full.sem], rtol=1e-5)
    other = cis._evaluate.evaluate_loss(task, params, n, p, jax.random.key(9), 4, 512, capacity)
    assert float(other.mean) != float(alone.mean)  # the key picks the samples


def test_the_naive_and_model_is_buildable_with_biases():
    """d neurons relu(x_i + x_j - 1) compute d ANDs exactly; the output bias p^2 does the rest."""
    task, n, d, p = TASKS["and-pairs"], 10, 5, 0.3
    pairs, m = task.pairs(n), task.n_outputs(n)
    w_in = np.zeros((n, d), np.float32)
    for k, (i, j) in enumerate(pairs[:d]):
        w_in[[i, j], k] = 1.0
    naive = {"w_in": jnp.asarray(w_in), "b_in": -jnp.ones(d), "w_out": jnp.eye(d, m)}
    naive["b_out"] = p**2 * (jnp.arange(m) >= d)
    result = _evaluate(task, naive, n, d, p)
    assert abs(float(result.loss.mean) - task.naive_loss(n, d, p)) < 4 * float(result.loss.sem)
    np.testing.assert_allclose(result.loss.mean, result.naive_loss.mean, rtol=1e-5)


def test_over_static_axes_stacks_in_product_order_and_refuses_ragged_results():
    combos = static_combinations({"a": [1, 2], "b": ["x", "y", "z"]})
    assert combos[1] == {"a": 1, "b": "y"} and len(combos) == 6
    stacked = over_static_axes({"a": [1, 2], "b": [10, 20, 30]}, lambda c: {"v": np.full(4, c["a"] * c["b"])})
    assert stacked["v"].shape == (2, 3, 4) and stacked["v"][1, 2, 0] == 60
    with pytest.raises(ValueError, match="shapes"):
        over_static_axes({"n": [2, 3]}, lambda c: {"w": np.zeros(c["n"])})


def test_search_grid_shapes_and_a_model_trained_in_the_grid_equals_one_trained_alone():
    config = ccjax.TrainConfig(mixing="none", scale=0.0, n_features=10, d_mlp=5, batch_size=64, steps=20)
    static = {"task": ["relu", "and-pairs"], "n_features": [10, 12], "d_ratio": [0.5]}
    traced = {"seed": [0, 1], "p": [0.05, 0.2], "lr": [3e-3]}
    result = grid.search_grid(config, static, traced, TASKS, grid.EvalBudget(2, 256))
    assert result["loss"].shape == (2, 2, 1, 2, 2, 1)
    assert np.isfinite(result["loss"]).all() and np.isfinite(result["naive_closed_form"]).all()
    # Alone: one static combination, the seeds in the other order and one p (as a re-check trains
    # one cell of the grid): the same models, so a re-check may reuse the main grid's (main_cell).
    one_static, one_cell = {"task": ["and-pairs"], "n_features": [12]}, {**traced, "seed": [1, 0], "p": [0.05]}
    alone = grid.search_grid(config, one_static, one_cell, TASKS, grid.EvalBudget(2, 256))
    assert alone["final_train_loss"].shape == (1, 1, 2, 1, 1)  # task, n_features, seed, p, lr
    in_grid = result["final_train_loss"][1, 1, 0, ::-1, 0]  # and-pairs, n = 12, seeds 1 and 0, p = 0.05
    np.testing.assert_allclose(alone["final_train_loss"][0, 0, :, 0], in_grid, rtol=1e-5)
    np.testing.assert_allclose(alone["loss"][0, 0, :, 0], result["loss"][1, 1, 0, ::-1, 0], rtol=1e-5)


def test_advantage_and_positive_cells():
    np.testing.assert_allclose(cis.advantage(np.array([0.5, 1.5]), np.array([1.0, 1.0])), [0.5, -0.5])
    positive = cis.positive_cells(np.array([0.1, 0.1, -0.1, 0.1]), np.array([0.01, 0.06, 0.01, np.nan]))
    np.testing.assert_array_equal(positive, [True, False, False, False])


TINY = ["--ps", "0.1", "--d-ratios", "0.5", "--n-features", "10", "--seeds", "2", "--steps", "10"]
TINY += ["--batch-size", "32", "--eval-batches", "2", "--scaling-ns", "10"]


TINY_TASKS = ["--tasks", "relu,relu-outlier-l4"]


@pytest.fixture(scope="module")
def tiny_search(tmp_path_factory):
    """One uninterrupted tiny cis_search run: its folder and its command's outcome."""
    out = tmp_path_factory.mktemp("cis") / "whole"
    return out, run_main("cis_search", *TINY, *TINY_TASKS, "--out", str(out))


def test_cis_search_runs_reports_and_replots(tiny_search):
    out, ran = tiny_search
    assert ran.returncode == 0, ran.stderr
    assert "advantage over naive" in ran.stdout and "relu-outlier-l4" in ran.stdout
    arrays, manifest = ccjax.load_results(out)
    assert arrays["grid_advantage"].shape == (2, 1, 2, 1)  # tasks, d/n, seeds, p
    assert manifest["mixing"].startswith("none")
    expected = {"cis_search.png", "cis_search_relu.png", "cis_search_relu-outlier-l4.png"}
    assert {path.name for path in out.glob("*.png")} == expected
    assert run_main("cis_search", "--plot-only", "--out", str(out)).returncode == 0


def test_stage_files_round_trip_and_refuse_bad_keys_and_corrupt_files(tmp_path):
    stages = ccjax.io.StageFiles(tmp_path / "stages")
    assert len(stages) == 0 and "abc" not in stages
    stages["abc123"] = {"loss": np.arange(3.0), "name": np.asarray(["relu"])}
    assert "abc123" in stages and list(stages) == ["abc123"] and len(stages) == 1
    np.testing.assert_array_equal(stages["abc123"]["loss"], np.arange(3.0))
    assert stages["abc123"]["name"][0] == "relu"
    with pytest.raises(ValueError, match="alphanumeric"):
        stages["../escape"] = {"loss": np.zeros(1)}
    (tmp_path / "stages" / "stage-broken.npz").write_bytes(b"not an npz")
    with pytest.raises(ccjax.engine.CheckpointError, match="stage-broken"):
        stages["broken"]
    del stages["abc123"]
    assert "abc123" not in stages and not list((tmp_path / "stages").glob("*.tmp"))


def test_search_grid_reads_finished_combinations_from_its_cache(monkeypatch):
    """A combination in the cache is not trained again, and its arrays come back as they
    were; a change to anything the results depend on (here the steps) misses the cache."""
    config = ccjax.TrainConfig(mixing="none", scale=0.0, n_features=10, d_mlp=5, batch_size=32, steps=10)
    static, traced = {"task": ["relu", "relu-discrete"]}, {"seed": [0, 1], "p": [0.1], "lr": [3e-3]}
    cache: dict = {}
    first = grid.search_grid(config, static, traced, TASKS, grid.EvalBudget(2, 64), cache=cache)
    assert len(cache) == 2

    def no_training(*args):
        raise AssertionError("trained a cached combination")

    monkeypatch.setattr(grid, "_run_one", no_training)
    again = grid.search_grid(config, static, traced, TASKS, grid.EvalBudget(2, 64), cache=cache)
    assert all(np.array_equal(first[name], again[name], equal_nan=True) for name in first)
    with pytest.raises(AssertionError, match="trained a cached"):
        grid.search_grid(
            dataclasses.replace(config, steps=20), static, traced, TASKS, grid.EvalBudget(2, 64), cache=cache
        )


def test_an_interrupted_cis_search_resumes_to_the_uninterrupted_results(tmp_path, monkeypatch, tiny_search):
    """Interrupted (Ctrl-C) during its second combination, cis_search keeps the first in
    <out>/checkpoints; the same command plus --resume trains only the rest and writes
    results equal, array for array, to an uninterrupted run's (the module's tiny run)."""
    argv = [*TINY, *TINY_TASKS]
    whole_out, whole = tiny_search
    assert whole.returncode == 0, whole.stderr
    run_one, calls = grid._run_one, []

    def interrupted_second(*args):
        calls.append(args[0].name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_one(*args)

    monkeypatch.setattr(grid, "_run_one", interrupted_second)
    out = tmp_path / "resumed"
    stopped = run_main("cis_search", *argv, "--out", str(out))
    assert stopped.returncode == 130 and "--resume" in stopped.stderr
    assert len(list((out / "checkpoints").glob("stage-*.npz"))) == 1
    refused = run_main("cis_search", *argv, "--out", str(out))
    assert refused.returncode == 2 and "--resume" in refused.stderr
    calls.clear()
    resumed = run_main("cis_search", *argv, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert calls[0] == "relu-outlier-l4" and "relu" not in calls  # the finished one was read back
    expected, _ = ccjax.load_results(whole_out)
    arrays, _ = ccjax.load_results(out)
    for name, value in expected.items():
        assert np.array_equal(value, arrays[name], equal_nan=value.dtype.kind == "f"), name
    assert not (out / "checkpoints").exists()


def test_quick_resolves_its_own_output_folder_and_an_explicit_out_wins():
    from experiments import _experiment, cis_search

    parser = cis_search.build_parser()
    for argv, out, figures in (
        ([], "results/cis_search", "figures"),
        (["--quick"], "results/cis_search-quick", "results/cis_search-quick"),
        (["--quick", "--out", "mine"], "mine", "mine"),
    ):
        args = parser.parse_args(argv)
        _experiment.resolve_figures(args, parser, _experiment.resolve_out(args, parser, "cis_search"))
        assert (args.out, args.figures) == (Path(out), Path(figures)), argv
    assert "results/cis_search-quick with --quick; an explicit --out wins" in " ".join(parser.format_help().split())


def test_a_quick_run_on_a_fresh_clone_leaves_the_committed_results_alone(tmp_path, monkeypatch, capsys):
    """Issue: --quick was refused on a fresh clone, whose results/cis_search holds the committed
    run. It now writes results/cis_search-quick (here a tiny --quick grid, in-process)."""
    from experiments import cis_search

    committed = tmp_path / "results" / "cis_search"
    shutil.copytree(ROOT / "results" / "cis_search", committed, ignore=shutil.ignore_patterns("checkpoints"))
    before = {path.name: path.read_bytes() for path in committed.iterdir()}
    tiny = ["--ps", "0.1", "--d-ratios", "0.5", "--seeds", "2", "--steps", "10", "--batch-size", "32"]
    monkeypatch.setattr(cis_search, "QUICK", [*tiny, "--scaling-ns", "10", "--eval-batches", "2"])
    monkeypatch.chdir(tmp_path)
    assert cis_search.main(["--quick", "--n-features", "10", "--tasks", "relu"]) == 0, capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in committed.iterdir()} == before
    quick = tmp_path / "results" / "cis_search-quick"
    arrays, manifest = ccjax.load_results(quick)
    assert manifest["options"]["--quick"] and manifest["options"]["--steps"] == 10
    assert {path.name for path in quick.glob("*.png")} == {"cis_search.png", "cis_search_relu.png"}
    assert not (tmp_path / "figures").exists()  # the committed figures are not touched either


def test_cis_search_refuses_a_batch_too_small_to_train_on(capsys):
    from experiments import cis_search

    with pytest.raises(SystemExit) as exit_info:
        cis_search.main([*TINY, "--batch-size", "3", "--out", "unused"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "--batch-size 3 is too small to train on: at p = 0.1 and n_features = 10" in error
    assert "use --batch-size 10 or more, or p >= 0.34 (--ps)" in error


@pytest.mark.slow
def test_quick_mode_finishes(tmp_path):
    """--quick is the documented run of about 2 minutes (113 s with an empty compile cache on a 2-core machine)."""
    ran = run_main("cis_search", "--quick", "--out", str(tmp_path / "quick"))
    assert ran.returncode == 0, ran.stderr


def _numpy_inputs(rng, rows: int, n: int, p: float) -> np.ndarray:
    """Bernoulli-p × U[-1, 1] features drawn with numpy: independent of ccjax's sampler."""
    return np.where(rng.random((rows, n)) < p, rng.uniform(-1.0, 1.0, (rows, n)), 0.0)


def test_two_step_naive_monte_carlo_agrees_with_an_independent_numpy_estimate():
    """No closed form: the naive loss is the mean over outputs of E[y_j^2] over the outputs
    it does not serve; estimated here by numpy on numpy's own samples."""
    task, n, d, p = TASKS["two-step"], 12, 6, 0.2
    labels = np.maximum(np.maximum(_numpy_inputs(np.random.default_rng(0), 200_000, n, p), 0.0) @ task.reading(n), 0)
    unserved = ~np.asarray(task.served_outputs(n, d))
    per_row = (labels[:, unserved] ** 2).sum(axis=1) / n
    estimate = cis.naive_monte_carlo(task, n, d, p, jax.random.key(4), batches=32, batch_size=4096)
    spread = np.hypot(float(estimate.sem), per_row.std() / np.sqrt(len(per_row)))
    assert abs(float(estimate.mean) - per_row.mean()) < 4 * spread


def test_worst_feature_naive_monte_carlo_agrees_with_an_independent_numpy_estimate():
    task, n, d, p = TASKS["relu-outlier-lse"], 12, 6, 0.2
    temperature = task.temperature
    errors = np.maximum(_numpy_inputs(np.random.default_rng(1), 200_000, n, p), 0.0)[:, d:] ** 2  # unserved outputs
    exponents = np.concatenate([errors / temperature, np.zeros((len(errors), d))], axis=1)
    top = exponents.max(axis=1, keepdims=True)
    per_row = temperature * (top[:, 0] + np.log(np.exp(exponents - top).sum(axis=1)) - np.log(n))
    estimate = cis.naive_monte_carlo(task, n, d, p, jax.random.key(5), batches=32, batch_size=4096)
    spread = np.hypot(float(estimate.sem), per_row.std() / np.sqrt(len(per_row)))
    assert abs(float(estimate.mean) - per_row.mean()) < 4 * spread


def test_sweep_static_compiles_once_per_static_combination_and_stacks_histories():
    from compiles import counting_compiles

    config = ccjax.TrainConfig(n_features=12, d_mlp=4, d_embed=20, batch_size=64, steps=20, log_every=10)
    with counting_compiles() as compiles:
        stacked, results = ccjax.sweep_static(config, {"n_features": [12, 16]}, {"seed": [0, 1], "scale": [0.0, 1.0]})
    assert stacked["history_train_loss_per_feature"].shape == (2, 2, 2, 2)  # n_features, seed, scale, logs
    assert [result.params.w_in.shape[-2] for result in results] == [12, 16]
    np.testing.assert_array_equal(
        stacked["history_train_loss_per_feature"][1], results[1].history.train_loss_per_feature
    )
    assert compiles  # the two static combinations compiled
    with counting_compiles() as again:
        ccjax.sweep_static(config, {"n_features": [12, 16]}, {"seed": [2, 3], "scale": [0.5, 2.0]})
    assert again == []  # other traced values, the same static combinations: nothing new to compile
