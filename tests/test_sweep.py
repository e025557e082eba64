"""Vectorised, sharded sweeps equal independent training runs; grids; evaluation."""

import dataclasses
import importlib
import itertools
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import counting_compiles
from conftest import SMALL, small, train_jit

import ccjax

# ``ccjax.sweep`` is the function; it is implemented in the private module ``ccjax._sweep``.
sweep_module = importlib.import_module("ccjax.engine._sweep")

# 3 × 2 × 2 = 12 models: on 8 devices the model axis is padded to 16.
AXES = {"seed": [0, 1, 2], "scale": [0.0, 1.0], "lr": [3e-3, 1e-2]}
GRID_POINTS = list(itertools.product(*AXES.values()))
ATOL = 1e-5


@pytest.fixture(scope="module")
def progress_log():
    return []


@pytest.fixture(scope="module")
def one_device(progress_log):
    return ccjax.sweep(SMALL, AXES, devices=jax.devices()[:1], on_progress=progress_log.append)


def _point(result, seed, scale, lr):
    index = (AXES["seed"].index(seed), AXES["scale"].index(scale), AXES["lr"].index(lr))
    params = jax.tree.map(lambda a: np.asarray(a)[index], result.params)
    history = jax.tree.map(lambda a: np.asarray(a)[index], result.history)
    return params, history


def _assert_params_close(actual, expected, atol=ATOL):
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=0)


def _assert_history_close(actual, expected):
    for name in ccjax.History._fields:
        np.testing.assert_allclose(
            np.asarray(getattr(actual, name)), np.asarray(getattr(expected, name)), rtol=ATOL, atol=ATOL, err_msg=name
        )


def test_conftest_environment():
    # conftest.py: 8 fake CPU devices and strict rank promotion for the whole suite.
    assert len(jax.devices()) == 8
    assert jax.default_backend() == "cpu"
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion=.raise."):
        jnp.ones(3) + jnp.ones((2, 3))


def test_sweep_result_layout(one_device, progress_log):
    result = one_device
    assert result.grid.names == ("seed", "scale", "lr")
    assert result.grid.shape == (3, 2, 2)
    assert result.n_devices == 1
    assert result.params.w_in.shape == (3, 2, 2, 20, 10)
    assert result.params.w_out.shape == (3, 2, 2, 10, 20)
    assert result.mixing.shape == (3, 2, 2, 20, 20)
    for field in result.history:
        assert np.shape(field) == (3, 2, 2, SMALL.n_logs)
    np.testing.assert_array_equal(result.scale, np.broadcast_to(np.array([0.0, 1.0])[None, :, None], (3, 2, 2)))
    np.testing.assert_array_equal(result.history.step[0, 0, 0], [10, 20, 30, 40])
    # Runs that share a seed share M; different seeds do not.
    np.testing.assert_array_equal(result.mixing[0, 0, 0], result.mixing[0, 1, 1])
    assert not np.allclose(result.mixing[0, 0, 0], result.mixing[1, 0, 0])
    # Progress is reported after every chunk, up to the last step.
    assert len(progress_log) >= 1
    assert [p.steps_done for p in progress_log] == sorted(p.steps_done for p in progress_log)
    assert progress_log[-1].steps_done == progress_log[-1].total_steps == SMALL.total_steps
    assert all(p.n_models == 12 for p in progress_log)


@pytest.mark.parametrize("seed, scale, lr", GRID_POINTS)
def test_sweep_equals_independent_training(one_device, seed, scale, lr):
    # Every grid point (seed × scale × lr) equals its own run of ``train`` with the
    # swept values put into the (static) config.
    config = dataclasses.replace(SMALL, scale=scale, lr=lr)
    expected_params, expected_history = train_jit(config, jax.random.key(seed))
    params, history = _point(one_device, seed, scale, lr)
    _assert_params_close(params, expected_params)
    _assert_history_close(history, expected_history)
    # The stored M is the run's unscaled mixing matrix.
    mixing_key = jax.random.split(jax.random.key(seed), 3)[0]
    mixing, _ = ccjax.make_mixing(SMALL.mixing, mixing_key, SMALL.n_features, SMALL.d_embed)
    index = (AXES["seed"].index(seed), AXES["scale"].index(scale), AXES["lr"].index(lr))
    np.testing.assert_allclose(one_device.mixing[index], np.asarray(mixing), atol=1e-6)


def test_sweep_lr_axis_matters(one_device):
    slow, _ = _point(one_device, 0, 1.0, 3e-3)
    fast, _ = _point(one_device, 0, 1.0, 1e-2)
    assert np.abs(slow.w_in - fast.w_in).max() > 100 * ATOL


def test_sweep_scale_axis_matters(one_device):
    clean, _ = _point(one_device, 0, 0.0, 3e-3)
    mixed, _ = _point(one_device, 0, 1.0, 3e-3)
    assert np.abs(clean.w_in - mixed.w_in).max() > 100 * ATOL


@pytest.mark.parametrize("changes", [{"learn_scale": True}, {"full_model": True}])
def test_sweep_learned_scale_and_full_model(changes):
    config = small(**changes)
    result = ccjax.sweep(config, {"seed": [0]}, devices=jax.devices()[:1])
    params, history = train_jit(config, jax.random.key(0))
    _assert_history_close(jax.tree.map(lambda a: a[0], result.history), history)
    if config.full_model:
        # The sweep returns feature-space weights: the residual weights through W_E.
        mixing_key = jax.random.split(jax.random.key(0), 3)[0]
        _, w_e = ccjax.make_mixing(config.mixing, mixing_key, config.n_features, config.d_embed)
        params = ccjax.to_feature_space(params, w_e)
        np.testing.assert_array_equal(result.scale, [config.scale])
    else:
        # The labels use the learned scale's magnitude (docs/paper.md §3): so do ``scale`` and the history.
        assert abs(result.scale[0] - config.scale_init) > 1e-3 and result.scale[0] >= 0
        np.testing.assert_allclose(result.scale[0], history.scale[-1], rtol=1e-5)
    _assert_params_close(jax.tree.map(lambda a: a[0], result.params), params)


def test_mixing_family_and_rank_axes_equal_separate_sweeps():
    # One call over (family, rank) trains the same models as one call per (family, rank).
    one = jax.devices()[:1]
    families, ranks = ["asymmetric", "low-rank", "low-rank-flat"], [2, 7]
    axes = {"seed": [0, 1], "mixing": families, "mixing_rank": ranks, "scale": [0.3]}
    swept = ccjax.sweep(SMALL, axes, devices=one)
    assert swept.grid.shape == (2, 3, 2, 1)
    for f, family in enumerate(families):
        for r, rank in enumerate(ranks):
            alone = ccjax.sweep(small(mixing=family, mixing_rank=rank, scale=0.3), {"seed": [0, 1]}, devices=one)
            np.testing.assert_array_equal(swept.mixing[:, f, r, 0], alone.mixing)
            _assert_params_close(jax.tree.map(lambda a, f=f, r=r: a[:, f, r, 0], swept.params), alone.params)
            if family != "asymmetric":
                singular = np.linalg.svd(alone.mixing[0].astype(np.float64), compute_uv=False)
                assert np.sum(singular > 1e-4 * singular[0]) == rank


FLAT_SPECTRUM_ON_TWO_DEVICES = """
import jax
jax.config.update("jax_num_cpu_devices", 2)
import numpy as np
import ccjax
config = ccjax.TrainConfig(n_features=100, d_mlp=50, d_embed=100, batch_size=32, steps=2, log_every=1)
result = ccjax.sweep(config, {"seed": [0, 1], "mixing": ["low-rank-flat"], "mixing_rank": [5, 50]})
singular = np.linalg.svd(result.mixing[1, 0, 1].astype(np.float64), compute_uv=False)
print(result.n_devices, round(float(singular[:50].min()), 4), round(float(singular[50]), 4))
"""


def test_sharded_sweep_with_flat_spectrum_mixing_at_paper_width_finishes():
    # Regression: initialising the models sharded over 2 CPU devices deadlocked XLA:CPU
    # on the QR of a 100 x 100 flat-spectrum M (jax 0.10.2, 2 cores); init now runs on
    # one device and is then sharded. A fresh process gets exactly 2 devices.
    done = subprocess.run(
        [sys.executable, "-c", FLAT_SPECTRUM_ON_TWO_DEVICES],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["2", "1.0", "0.0"]


def test_sweep_rejects_rank_above_n_features_and_swept_full_model_mixing():
    with pytest.raises(ValueError, match="must not exceed n_features"):
        ccjax.sweep(SMALL, {"seed": [0], "mixing_rank": [SMALL.n_features + 1]})
    with pytest.raises(ValueError, match="full_model"):
        ccjax.sweep(small(full_model=True), {"seed": [0], "mixing": ["embedding", "none"]})


def test_sharded_sweep_equals_one_device(one_device):
    sharded = ccjax.sweep(SMALL, AXES)  # 12 models over 8 devices: padded to 16
    assert sharded.n_devices == 8
    assert sharded.grid.names == one_device.grid.names
    for a, b in zip(sharded.grid.values, one_device.grid.values, strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_params_close(sharded.params, one_device.params)
    _assert_history_close(sharded.history, one_device.history)
    np.testing.assert_allclose(sharded.mixing, one_device.mixing, atol=1e-7)
    np.testing.assert_array_equal(sharded.scale, one_device.scale)


@pytest.mark.parametrize("group_size", [2, 12])
def test_vmapped_groups_equal_one_model_at_a_time(one_device, group_size):
    # The GPU/TPU layout (models vmapped together, overflow fallback shared through
    # pmax) must train the same models as the CPU layout (one model at a time).
    grouped = ccjax.sweep(SMALL, AXES, devices=jax.devices()[:1], group_size=group_size)
    _assert_params_close(grouped.params, one_device.params)
    _assert_history_close(grouped.history, one_device.history)


def test_sweep_traces_once_per_shape():
    # jit caches traces by (static args, argument avals/shardings): swept values are
    # traced arguments, so a second sweep of the same shape must reuse the first trace.
    # ``steps=20`` makes this shape unique to this test, so the first sweep must trace.
    config = small(steps=20)
    one = jax.devices()[:1]
    before = sweep_module._chunk.traces
    first = ccjax.sweep(config, {"seed": [0], "scale": [0.0, 0.5]}, devices=one)
    assert sweep_module._chunk.traces == before + 1
    second = ccjax.sweep(config, {"seed": [0], "scale": [0.25, 2.0]}, devices=one)
    # Also unswept config values (lr, weight decay, scale, p) are not part of the shape.
    third = ccjax.sweep(
        dataclasses.replace(config, lr=1e-2, weight_decay=0.1, scale=0.7), {"seed": [1, 2]}, devices=one
    )
    assert sweep_module._chunk.traces <= before + 1
    # The runs did use their values (they are not cached results).
    assert not np.allclose(first.params.w_in[0, 1], second.params.w_in[0, 1])
    np.testing.assert_allclose(third.scale, [0.7, 0.7])


# --- planning ---------------------------------------------------------------------


@pytest.mark.parametrize("max_models_per_call", [5, None])
def test_planning_a_sweep_compiles_nothing(max_models_per_call):
    # Planning is host arithmetic: it must not compile (or run) anything, so it is cheap
    # and testable alone. The shapes are unique to this test, so nothing is cached.
    config = small(n_features=13, d_mlp=5, steps=30, mixing_rank=3)
    axes = {"seed": [0, 1, 2], "scale": [0.0, 1.0], "p": [0.05, 0.1]}
    with counting_compiles() as compiles:
        plan = sweep_module.plan_sweep(config, axes, max_models_per_call=max_models_per_call)
    assert compiles == []
    assert plan.grid.shape == (3, 2, 2) and plan.chunk_intervals == 1
    assert plan.shapes.config.p == 0.1 and plan.shapes.config.scale == 1.0  # neutral values
    if max_models_per_call is None:  # all 12 models in one call over 8 devices, padded to 16
        assert [call.models for call in plan.calls] == [slice(0, 12)]
        assert (plan.n_devices, plan.group_size, plan.padded, plan.rows) == (8, 1, 16, slice(0, 16))
    else:  # 3 equal calls of 4 models, one per device
        assert [call.models for call in plan.calls] == [slice(0, 4), slice(4, 8), slice(8, 12)]
        assert (plan.n_devices, plan.group_size, plan.padded, plan.models_per_call) == (4, 1, 4, 4)
        np.testing.assert_array_equal(plan.calls[1].seeds, [1, 1, 1, 1])
        np.testing.assert_allclose(plan.calls[2].hyper.scale, [0.0, 0.0, 1.0, 1.0])
        np.testing.assert_allclose(plan.calls[2].hyper.p, [0.05, 0.1, 0.05, 0.1])


# --- grids ------------------------------------------------------------------------


def test_make_grid_order_and_flat():
    grid = ccjax.make_grid({"scale": [0.0, 0.5, 1.0], "seed": [3, 4]})
    assert grid.names == ("seed", "scale")  # seed first
    assert grid.shape == (2, 3) and grid.size == 6
    np.testing.assert_array_equal(grid.flat("seed"), [3, 3, 3, 4, 4, 4])  # row-major
    np.testing.assert_array_equal(grid.flat("scale"), [0.0, 0.5, 1.0] * 2)


@pytest.mark.parametrize(
    "axes, message",
    [
        ({"scale": [0.0, 1.0]}, "needs a 'seed' axis"),
        ({"seed": [0], "d_mlp": [5]}, "cannot sweep 'd_mlp'"),
        ({"seed": [0], "mixing": ["none", "gaussian"]}, "unknown families"),
        ({"seed": [0], "mixing_rank": [0, 3]}, "positive integer"),
        ({"seed": [0], "mixing_rank": [2.5]}, "positive integer"),
        ({"seed": [0, -1]}, "non-negative integers"),
        ({"seed": [0.5]}, "non-negative integers"),
        ({"seed": []}, "non-empty"),
        ({"seed": [0], "scale": [0.0, math.nan]}, "non-finite"),
        ({"seed": [0], "lr": [math.inf]}, "non-finite"),
        ({"seed": [0], "p": []}, "non-empty"),
    ],
)
def test_make_grid_errors(axes, message):
    with pytest.raises(ValueError, match=message):
        ccjax.make_grid(axes)


def test_make_grid_error_lists_sweepable_axes():
    with pytest.raises(ValueError) as info:
        ccjax.make_grid({"seed": [0], "steps": [1]})
    for name in ("seed", "p", "lr", "weight_decay", "scale"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    "config, axes, message",
    [
        (small(scale_steps_for_sparsity=True), {"seed": [0], "p": [0.01, 0.1]}, "scale_steps_for_sparsity"),
        (SMALL, {"seed": [0], "p": [0.0, 0.1]}, r"axis .p. has non-finite or out-of-range values.*in \(0, 1\]"),
        (SMALL, {"seed": [0], "p": [0.1, 1.5]}, r"axis .p. has non-finite or out-of-range values.*in \(0, 1\]"),
        (SMALL, {"scale": [0.0]}, "needs a 'seed' axis"),
    ],
)
def test_sweep_rejects_bad_axes(config, axes, message):
    with pytest.raises(ValueError, match=message):
        ccjax.sweep(config, axes)


@pytest.mark.parametrize(
    "axes, message",
    [
        ({"seed": [0], "lr": [0.0]}, "lr"),
        ({"seed": [0], "lr": [-1e-3]}, "lr"),
        ({"seed": [0], "weight_decay": [-0.1]}, "weight_decay"),
    ],
)
def test_sweep_rejects_values_train_config_rejects(axes, message):
    # TrainConfig refuses lr <= 0 and weight_decay < 0; a swept value must not bypass
    # that (sweep() already applies TrainConfig's rule for p).
    name, values = [(k, v) for k, v in axes.items() if k != "seed"][0]
    with pytest.raises(ValueError, match=name):
        small(**{name: values[0]})
    with pytest.raises(ValueError, match=message):
        ccjax.sweep(small(steps=10), axes, devices=jax.devices()[:1])


# --- evaluation -------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated(one_device):
    return ccjax.evaluate_sweep(one_device, rel_sem=0.01, devices=jax.devices()[:1])


def test_evaluate_sweep_shapes_and_precision(evaluated):
    for field in evaluated:
        assert np.shape(field) == (3, 2, 2)
    assert np.all(evaluated.n_samples > 0)
    assert np.all(np.isfinite(evaluated.loss_per_feature)) and np.all(evaluated.loss_per_feature > 0)
    assert np.all(evaluated.sem > 0) and np.all(evaluated.sem <= 0.01 * evaluated.loss_per_feature)


def test_evaluate_sweep_matches_direct_monte_carlo(one_device, evaluated):
    # Model (seed 1, scale 1, lr 1e-2) against the paper's estimator on fresh Bernoulli-p batches.
    index = (1, 1, 1)
    params = jax.tree.map(lambda a: np.asarray(a)[index], one_device.params)
    scaled = one_device.scale[index] * one_device.mixing[index]
    plan = ccjax.measure.plan_evaluation(SMALL.p, SMALL.p, SMALL.n_features, 20_000)
    direct = jax.jit(ccjax.direct_loss_per_feature, static_argnums=4)(params, scaled, jax.random.key(9), SMALL.p, plan)
    difference = float(direct.loss_per_feature) - evaluated.loss_per_feature[index]
    assert abs(difference) < 4 * np.hypot(float(direct.sem), evaluated.sem[index])
    # Trained L/p is of the size of the final training loss (40 steps, noisy batches).
    final_train = one_device.history.train_loss_per_feature[index][-1]
    assert 0.5 * final_train < evaluated.loss_per_feature[index] < 2.0 * final_train


def test_evaluate_sweep_sharded_equals_one_device(one_device, evaluated):
    sharded = ccjax.evaluate_sweep(one_device, rel_sem=0.01)
    np.testing.assert_allclose(sharded.loss_per_feature, evaluated.loss_per_feature, rtol=1e-5)
    np.testing.assert_allclose(sharded.sem, evaluated.sem, rtol=1e-3)


def test_evaluate_sweep_at_swept_p_picks_each_models_p():
    result = ccjax.sweep(small(steps=10), {"seed": [0], "p": [0.02, 0.2]}, devices=jax.devices()[:1])
    at_own = ccjax.evaluate_sweep(result, rel_sem=0.01)
    curve = ccjax.sweep_curves(result, [0.02, 0.2], rel_sem=0.01)
    np.testing.assert_allclose(at_own.loss_per_feature[0], np.diagonal(curve.loss_per_feature[0]), rtol=1e-6)


def test_evaluate_sweep_rejects_bad_p(one_device):
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\]"):
        ccjax.evaluate_sweep(one_device, p=0.0)


# --- initial_params: fine-tuning the models of an earlier sweep ----------------------


def test_sweep_from_initial_params_equals_train_from_them(one_device):
    # 12 models over 8 devices (padded to 16, like the seeds), each started from the
    # weights of the first sweep: every grid point equals ``train`` from the same weights.
    start = one_device.params
    continued = ccjax.sweep(SMALL, AXES, initial_params=start)
    assert continued.n_devices == 8
    # Every seed at one (scale, lr), and one point that differs from those in scale and lr:
    # a start misaligned along any axis shows, with two compiles of ``train`` instead of four.
    for seed, scale, lr in [(0, 1.0, 1e-2), (1, 1.0, 1e-2), (2, 1.0, 1e-2), (1, 0.0, 3e-3)]:
        index = (AXES["seed"].index(seed), AXES["scale"].index(scale), AXES["lr"].index(lr))
        initial = jax.tree.map(lambda a, index=index: jnp.asarray(a[index]), start)
        config = dataclasses.replace(SMALL, scale=scale, lr=lr)
        expected_params, expected_history = train_jit(config, jax.random.key(seed), None, initial)
        params, history = _point(continued, seed, scale, lr)
        _assert_params_close(params, expected_params)
        _assert_history_close(history, expected_history)
    # M still comes from the seed.
    np.testing.assert_allclose(continued.mixing, one_device.mixing, atol=1e-7)


def test_sweep_fine_tuning_with_tiny_lr_stays_at_the_initial_params(one_device):
    axes = {"seed": AXES["seed"], "scale": AXES["scale"], "lr": [1e-9, 1e-8]}
    tuned = ccjax.sweep(SMALL, axes, devices=jax.devices()[:1], initial_params=one_device.params)
    # 40 AdamW steps move each weight by at most ~40 lr (plus negligible decay).
    _assert_params_close(tuned.params, one_device.params, atol=1e-6)
    # The first logged training loss is already that of a trained model.
    assert np.all(tuned.history.train_loss_per_feature[..., 0] < one_device.history.train_loss_per_feature[..., 0])


def test_sweep_initial_params_shape_and_full_model_errors(one_device):
    wrong = jax.tree.map(lambda a: a[:, 0], one_device.params)  # grid (3, 2) instead of (3, 2, 2)
    message = r"initial_params.w_in has shape \(3, 2, 20, 10\); expected \(3, 2, 2, 20, 10\)"
    with pytest.raises(ValueError, match=message):
        ccjax.sweep(SMALL, AXES, initial_params=wrong)
    transposed = ccjax.FeatureMLP(w_in=one_device.params.w_out, w_out=one_device.params.w_in)
    with pytest.raises(ValueError, match="expected"):
        ccjax.sweep(SMALL, AXES, initial_params=transposed)
    one = jax.tree.map(lambda a: a[:1, 0, 0], one_device.params)
    with pytest.raises(ValueError, match="full_model"):
        ccjax.sweep(small(full_model=True), {"seed": [0]}, initial_params=one)
