"""Issue 5 at the library level: model chunking, device count, checkpoints and resume,
and diverged models. Every comparison is bitwise (``np.array_equal``): each model runs
alone on its device (CPU groups of one) and is initialised alone, so nothing depends on
how the model axis is split."""

import importlib

import jax
import numpy as np
import pytest
from conftest import annotations_unchecked, small

import ccjax

sweep_module = importlib.import_module("ccjax.engine._sweep")  # the implementation of ccjax.sweep
memory = importlib.import_module("ccjax.engine._memory")

CONFIG = small(steps=40, log_every=10)
AXES = {"seed": [0, 1, 2], "scale": [0.0, 1.0]}


def same(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y), equal_nan=True) for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def outcome(result: ccjax.SweepResult):
    return (result.params, result.history, result.mixing, result.scale, result.diverged_step)


@pytest.fixture(scope="module")
def reference():
    return ccjax.sweep(CONFIG, AXES)


@pytest.mark.parametrize(
    "options",
    [
        {"max_models_per_call": 1},
        {"max_models_per_call": 4},
        {"devices": jax.devices()[:1]},
        {"devices": jax.devices()[:3], "max_models_per_call": 5},
        {"chunk_intervals": 1},
    ],
    ids=["1 per call", "4 per call", "1 device", "3 devices, 5 per call", "1-interval chunks"],
)
def test_results_do_not_depend_on_how_the_work_is_split(reference, options):
    result = ccjax.sweep(CONFIG, AXES, **options)
    assert same(outcome(result), outcome(reference))
    if "max_models_per_call" in options:
        assert result.models_per_call <= options["max_models_per_call"]


def test_the_same_sweep_twice_is_bitwise_identical(reference):
    assert same(outcome(ccjax.sweep(CONFIG, AXES)), outcome(reference))


def test_a_model_does_not_depend_on_its_neighbours(reference):
    alone = ccjax.sweep(CONFIG, {"seed": [1], "scale": [1.0]})
    assert same(alone.params.w_in[0, 0], reference.params.w_in[1, 1])


def test_auto_chunking_splits_a_sweep_that_does_not_fit(reference, monkeypatch):
    resident, step = memory.estimate_model_bytes(sweep_module.plan_sweep(CONFIG, AXES).shapes)
    budget = 2 * resident + 8 * step  # 8 devices each stepping one model, and two models' state ...
    monkeypatch.setattr(memory, "free_memory_bytes", lambda devices: int(budget / memory.MEMORY_FRACTION))
    result = ccjax.sweep(CONFIG, AXES)
    assert result.models_per_call == 2  # ... so 6 models take 3 calls
    assert same(outcome(result), outcome(reference))


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_max_models_per_call_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="max_models_per_call must be a positive integer"), annotations_unchecked():
        ccjax.sweep(CONFIG, AXES, max_models_per_call=bad)


@pytest.fixture(scope="module")
def checkpoints():
    saved = []
    result = ccjax.sweep(CONFIG, AXES, chunk_intervals=1, on_checkpoint=saved.append)
    return result, saved


def test_a_checkpoint_follows_every_chunk(checkpoints):
    _, saved = checkpoints
    assert [c.intervals_done for c in saved] == [1, 2, 3, 4]
    assert all(c.history.train_loss_per_feature.shape == (6, c.intervals_done) for c in saved)


@pytest.mark.parametrize("index", [0, 2, 3])
def test_resuming_from_any_checkpoint_gives_identical_results(reference, checkpoints, index):
    _, saved = checkpoints
    resumed = ccjax.sweep(CONFIG, AXES, resume=saved[index], max_models_per_call=4)
    assert same(outcome(resumed), outcome(reference))


def test_a_checkpoint_file_round_trips_and_resumes(reference, checkpoints, tmp_path):
    _, saved = checkpoints
    path = ccjax.save_checkpoint(tmp_path / "sweep.npz", saved[1])
    loaded = ccjax.load_checkpoint(path)
    assert loaded.fingerprint == saved[1].fingerprint and loaded.intervals_done == 2
    assert same(loaded.state_leaves, saved[1].state_leaves) and same(loaded.history, saved[1].history)
    assert same(outcome(ccjax.sweep(CONFIG, AXES, resume=loaded)), outcome(reference))
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.npz"]  # no temporary file left


def test_a_truncated_checkpoint_is_a_clear_error(checkpoints, tmp_path):
    path = ccjax.save_checkpoint(tmp_path / "sweep.npz", checkpoints[1][1])
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ccjax.engine.CheckpointError, match="cannot read the checkpoint"):
        ccjax.load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        ccjax.load_checkpoint(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "config, axes",
    [(small(steps=40, log_every=10, lr=1e-3), AXES), (CONFIG, {"seed": [0, 1, 2], "scale": [0.0, 2.0]})],
    ids=["other config", "other grid"],
)
def test_a_checkpoint_resumes_only_its_own_sweep(checkpoints, config, axes):
    with pytest.raises(ccjax.engine.CheckpointError, match="belongs to a different sweep"):
        ccjax.sweep(config, axes, resume=checkpoints[1][0])


def test_a_checkpoint_with_wrong_shapes_is_rejected(checkpoints):
    checkpoint = checkpoints[1][0]
    broken = checkpoint._replace(state_leaves=(checkpoint.state_leaves[0][:, :1], *checkpoint.state_leaves[1:]))
    with pytest.raises(ccjax.engine.CheckpointError, match="state array 0 has shape"):
        ccjax.sweep(CONFIG, AXES, resume=broken)


DIVERGING = {"seed": [0, 1], "lr": [3e-3, 1e6]}  # lr = 1e6 diverges (weights blow up to inf/NaN)


@pytest.fixture(scope="module")
def diverging():
    progress = []
    return ccjax.sweep(CONFIG, DIVERGING, on_progress=progress.append), progress


def test_a_diverging_learning_rate_is_reported_by_grid_point(diverging):
    result, progress = diverging
    assert result.diverged.tolist() == [[False, True], [False, True]]
    points = result.diverged_points()
    assert [(p["seed"], p["lr"]) for p in points] == [(0, 1e6), (1, 1e6)]
    assert all(p["step"] in (10, 20, 30, 40) for p in points)
    reported = [point for update in progress for point in update.diverged]
    assert reported == points and progress[-1].n_diverged == 2


def test_the_other_models_train_on_unaffected(diverging):
    result, _ = diverging
    healthy = ccjax.sweep(CONFIG, {"seed": [0, 1], "lr": [3e-3]})
    assert same(result.params.w_in[:, :1], healthy.params.w_in)
    assert np.isfinite(result.history.train_loss_per_feature[:, 0]).all()


def test_diverged_models_are_left_out_of_the_evaluation(diverging):
    result, _ = diverging
    estimate = ccjax.evaluate_sweep(result, rel_sem=0.01)
    assert np.isnan(estimate.loss_per_feature[:, 1]).all() and np.isfinite(estimate.loss_per_feature[:, 0]).all()
    healthy = result._replace(
        grid=ccjax.make_grid({"seed": [0, 1], "lr": [3e-3]}),
        params=jax.tree.map(lambda leaf: leaf[:, :1], result.params),
        mixing=result.mixing[:, :1],
        scale=result.scale[:, :1],
        diverged_step=result.diverged_step[:, :1],
    )
    # NaN models take no part in the shared sample allocation: the others' values are unchanged.
    assert np.array_equal(
        estimate.loss_per_feature[:, :1], ccjax.evaluate_sweep(healthy, rel_sem=0.01).loss_per_feature
    )


def test_a_loss_curve_of_only_non_finite_models_is_nan():
    params = ccjax.init_feature_mlp(jax.random.key(0), 20, 10)
    params = jax.tree.map(lambda leaf: np.full((2, *leaf.shape), np.nan, np.float32), params)
    curve = ccjax.loss_curve(params, np.zeros((2, 20, 20), np.float32), [0.1], jax.random.key(1))
    assert curve.loss_per_feature.shape == (2, 1) and np.isnan(curve.loss_per_feature).all()


def stacked_models(n_models: int):
    keys = jax.random.split(jax.random.key(3), n_models)
    params = jax.vmap(lambda k: ccjax.init_feature_mlp(k, 20, 10))(keys)
    mixing = 0.05 * jax.vmap(lambda k: ccjax.make_mixing("symmetric", k, 20, 50)[0])(keys)
    return params, np.asarray(mixing)


def test_the_evaluation_splits_models_into_calls_on_the_same_samples(monkeypatch):
    params, mixing = stacked_models(5)
    evaluate_module = importlib.import_module("ccjax.measure._curves")
    whole = ccjax.loss_curve(params, mixing, [0.01, 0.3], jax.random.key(1), rel_sem=0.01)
    split = ccjax.loss_curve(params, mixing, [0.01, 0.3], jax.random.key(1), rel_sem=0.01, max_models_per_call=2)
    assert split.n_evaluations == whole.n_evaluations
    np.testing.assert_allclose(split.loss_per_feature, whole.loss_per_feature, rtol=1e-6)
    per_model = memory.EVAL_ARRAYS * evaluate_module.CHUNK_SIZE * 30 * 4
    monkeypatch.setattr(memory, "free_memory_bytes", lambda devices: 4 * per_model)
    assert memory.auto_eval_models_per_call(20, 10, evaluate_module.CHUNK_SIZE, jax.devices(), 5) == 2
    auto = ccjax.loss_curve(params, mixing, [0.01, 0.3], jax.random.key(1), rel_sem=0.01)
    np.testing.assert_allclose(auto.loss_per_feature, whole.loss_per_feature, rtol=1e-6)


KEY = jax.random.key(0)
BAD_ARGUMENTS = [
    (lambda: ccjax.sample_sparse(KEY, 8, 10, 0.0, 16), r"p must be in \(0, 1\], got 0.0"),
    (lambda: ccjax.sample_sparse(KEY, 8, 10, 1.5, 16), r"p must be in \(0, 1\]"),
    (lambda: ccjax.sample_inputs(KEY, 8, 10, float("nan")), r"p must be in \(0, 1\], got nan"),
    (lambda: ccjax.sample_sparse(KEY, 0, 10, 0.5, 16), "batch_size must be an integer >= 1, got 0"),
    (lambda: ccjax.sample_sparse(KEY, 8, 10, 0.5, 0), "capacity must be an integer >= 1"),
    (lambda: ccjax.problem.sample_exactly_one(KEY, 8, -1), "n_features must be an integer >= 1"),
    (lambda: ccjax.problem.sample_exactly_k(KEY, np.array([11]), 10), r"counts must be in \[0, n_features = 10\]"),
    (lambda: ccjax.problem.embedding(KEY, 10, 0), "d_embed must be an integer >= 1"),
    (lambda: ccjax.make_mixing("gaussian", KEY, 10, 20), "unknown mixing 'gaussian'; choose one of none"),
    (lambda: ccjax.make_mixing("low-rank", KEY, 10, 20, 11), r"rank must be in \[0, n_features = 10\]"),
    (lambda: ccjax.make_mixing(np.int32(9), KEY, 10, 20), "mixing index 9 is out of range"),
    (lambda: ccjax.init_feature_mlp(KEY, 10, 2.5), "d_mlp must be an integer"),
    (lambda: ccjax.baselines.naive_model(10, 20), r"d_mlp \(20\) must not exceed n_features \(10\)"),
    (lambda: ccjax.naive_loss_per_feature(10, 20), r"d_mlp \(20\) must not exceed n_features \(10\)"),
    (lambda: ccjax.TrainConfig(d_mlp=101), r"d_mlp \(101\) must not exceed n_features \(100\)"),
    (lambda: ccjax.TrainConfig(steps=0), "steps must be a positive integer, got 0"),
    (lambda: ccjax.sweep(CONFIG, {"seed": [0], "scale": [float("inf")]}), "axis 'scale' has non-finite"),
    (lambda: ccjax.sweep(CONFIG, {"seed": [0], "p": [0.0]}), r"axis 'p' .* in \(0, 1\]"),
    (lambda: ccjax.sweep(CONFIG, {"seed": [-1]}), "seeds must be non-negative integers"),
    (lambda: ccjax.sweep(CONFIG, {"seed": [0], "mixing": ["gauss"]}), "unknown families"),
]


@pytest.mark.parametrize("call, message", BAD_ARGUMENTS, ids=[m for _, m in BAD_ARGUMENTS])
def test_bad_arguments_are_a_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message), annotations_unchecked():  # ccjax's own checks
        call()


def test_traced_arguments_pass_unchecked_inside_jit_and_vmap():
    sample = jax.vmap(lambda p: ccjax.sample_inputs(KEY, 8, 10, p, 16))
    assert sample(np.array([0.1, 0.5], np.float32)).shape == (2, 8, 10)
