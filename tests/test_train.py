"""TrainConfig validation, step scaling, schedules and short training runs (paper §4)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, annotations_unchecked, small, train_jit

import ccjax

# --- TrainConfig -----------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"p": 0.0}, r"p must be in \(0, 1\]"),
        ({"p": -0.1}, r"p must be in \(0, 1\]"),
        ({"p": 1.5}, r"p must be in \(0, 1\]"),
        ({"p": math.nan}, r"p must be in \(0, 1\]"),
        ({"d_mlp": 21}, r"d_mlp \(21\) must not exceed n_features \(20\)"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"steps": -5}, "steps must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"batch_size": -1}, "batch_size must be a positive integer"),
        ({"steps": 10.0}, "steps must be a positive integer"),
        ({"log_every": 0}, "log_every must be a positive integer"),
        ({"mixing": "gaussian"}, "unknown mixing 'gaussian'"),
        ({"schedule": "linear"}, "unknown schedule 'linear'"),
        ({"data": "dense"}, "unknown data 'dense'"),
        ({"input_path": "gpu"}, "unknown input_path 'gpu'"),
        ({"full_model": True, "mixing": "symmetric"}, "full_model .* mixing='embedding'"),
        ({"full_model": True, "mixing": "embedding-code-sign"}, "full_model .* mixing='embedding'"),
        ({"lr": 0.0}, "lr must be positive"),
        ({"scale": math.inf}, "scale must be finite"),
    ],
)
def test_config_validation(changes, message):
    with pytest.raises(ValueError, match=message), annotations_unchecked():  # TrainConfig's own checks
        small(**changes)


def test_config_error_lists_choices():
    with pytest.raises(ValueError) as info:
        small(mixing="gaussian")
    for name in ccjax.MIXING_NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError) as info, annotations_unchecked():
        small(schedule="linear")
    for name in ("half-cosine", "quarter-cosine", "constant"):
        assert name in str(info.value)


def test_config_defaults_are_the_papers():
    config = ccjax.TrainConfig()
    assert (config.n_features, config.d_mlp, config.d_embed) == (100, 50, 1000)
    assert (config.batch_size, config.steps, config.p) == (2048, 10_000, 0.01)
    assert (config.lr, config.weight_decay, config.b1, config.b2, config.eps) == (3e-3, 1e-2, 0.9, 0.999, 1e-8)
    assert config.schedule == "half-cosine"
    assert config.mixing == "embedding"  # the faithful sign
    assert config.scale_init == 0.01
    hash(config)  # static argument of jit


def test_total_steps_without_scaling():
    assert small(steps=123).total_steps == 123
    assert small(steps=123, log_every=10).n_logs == 13  # 12 full intervals and the final step
    assert small(steps=120, log_every=10).n_logs == 12


@pytest.mark.parametrize("p, expected", [(0.01, 15_773), (0.001, 105_033)])
def test_total_steps_scaled_for_sparsity(p, expected):
    # Paper §4: steps / (1 - (1 - p)^100) gives 15,773 steps at p = 0.01 and 105,033 at
    # p = 0.001 (10000 / 0.633968 = 15773.68 and 10000 / 0.0952079 = 105033.35: the
    # paper's counts are these ratios rounded *down*).
    config = ccjax.TrainConfig(p=p, scale_steps_for_sparsity=True)
    assert config.total_steps == expected


def test_total_steps_scaling_is_identity_at_p_one():
    assert small(p=1.0, scale_steps_for_sparsity=True).total_steps == SMALL.steps


# --- learning-rate schedules ------------------------------------------------------


def test_half_cosine_schedule():
    total = 1000
    assert float(ccjax.engine.lr_factor("half-cosine", 0, total)) == pytest.approx(1.0)
    assert float(ccjax.engine.lr_factor("half-cosine", total // 2, total)) == pytest.approx(0.5, abs=1e-6)
    assert float(ccjax.engine.lr_factor("half-cosine", total, total)) == pytest.approx(0.0, abs=1e-6)
    steps = jnp.arange(total + 1)
    factors = np.asarray(ccjax.engine.lr_factor("half-cosine", steps, total))
    np.testing.assert_allclose(factors, 0.5 * (1 + np.cos(np.pi * np.arange(total + 1) / total)), atol=1e-6)
    assert np.all(np.diff(factors) <= 1e-7)


def test_quarter_cosine_and_constant_schedules():
    total = 1000
    # Braun et al.: lr · cos(π/2 · t/(T-1)), so the last step (T - 1) has factor 0.
    assert float(ccjax.engine.lr_factor("quarter-cosine", 0, total)) == pytest.approx(1.0)
    assert float(ccjax.engine.lr_factor("quarter-cosine", total - 1, total)) == pytest.approx(0.0, abs=1e-6)
    mid = float(ccjax.engine.lr_factor("quarter-cosine", (total - 1) / 2, total))
    assert mid == pytest.approx(math.cos(math.pi / 4), abs=1e-6)
    np.testing.assert_array_equal(np.asarray(ccjax.engine.lr_factor("constant", jnp.arange(5), total)), 1.0)


def test_hyper_from_config():
    config = small(lr=0.01, weight_decay=0.5, scale=0.25, p=0.2, mixing="low-rank", mixing_rank=3)
    hyper = ccjax.engine.hyper_from_config(config)
    np.testing.assert_allclose([float(value) for value in hyper], [0.2, 0.01, 0.5, 0.25, 5, 3])
    assert hyper.mixing.dtype == hyper.mixing_rank.dtype == np.int32
    assert ccjax.MIXING_NAMES[int(hyper.mixing)] == "low-rank"


# --- training ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_small():
    return train_jit(SMALL, jax.random.key(0))


def test_training_reduces_loss(trained_small):
    params, history = trained_small
    assert isinstance(params, ccjax.FeatureMLP)
    assert params.w_in.shape == (20, 10) and params.w_out.shape == (10, 20)
    np.testing.assert_array_equal(np.asarray(history.step), [10, 20, 30, 40])
    loss = np.asarray(history.train_loss_per_feature)
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.85 * loss[0]
    # The logged terms are L/p on one fresh batch of 128 rows: noisy, but of the size of
    # the training L/p (a missing or doubled 1/p would be off by 20x or more).
    logged = np.asarray(history.relu_term_per_feature + history.mixing_term_per_feature)
    assert np.all(logged > 0)
    np.testing.assert_allclose(logged, loss, rtol=0.5)
    np.testing.assert_array_equal(np.asarray(history.scale), SMALL.scale)


def test_train_is_deterministic_and_seed_dependent(trained_small):
    params, history = trained_small
    again, history_again = train_jit(SMALL, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(params.w_in), np.asarray(again.w_in))
    np.testing.assert_array_equal(
        np.asarray(history.train_loss_per_feature), np.asarray(history_again.train_loss_per_feature)
    )
    other, _ = train_jit(SMALL, jax.random.key(1))
    assert not np.allclose(np.asarray(params.w_in), np.asarray(other.w_in))


def test_learned_scale_moves_from_init():
    config = small(learn_scale=True, scale_init=0.01)
    _, history = train_jit(config, jax.random.key(0))
    scale = np.asarray(history.scale)
    assert np.all(np.isfinite(scale))
    # 40 AdamW steps of size up to lr = 3e-3 (half-cosine): |Δ| can reach ~0.06.
    assert abs(scale[-1] - 0.01) > 5e-3
    assert abs(scale[-1] - scale[0]) > 1e-3


def test_full_model_trains():
    config = small(full_model=True)
    params, history = train_jit(config, jax.random.key(0))
    assert isinstance(params, ccjax.ResidualMLP)
    assert params.w_in.shape == (50, 10) and params.w_out.shape == (10, 50)
    loss = np.asarray(history.train_loss_per_feature)
    assert np.all(np.isfinite(loss))
    assert loss[-1] < 0.85 * loss[0]


# --- initial_params: continuing a run from given weights -------------------------------


def test_run_continued_from_its_final_params_differs_from_a_fresh_run(trained_small):
    final, history = trained_small
    continued, continued_history = train_jit(SMALL, jax.random.key(0), None, final)
    assert isinstance(continued, ccjax.FeatureMLP)
    # Same key, so same M and data stream as the fresh run; only the start differs.
    assert np.abs(np.asarray(continued.w_in) - np.asarray(final.w_in)).max() > 1e-3
    assert np.abs(np.asarray(continued.w_in) - np.asarray(final.w_in)).max() < np.abs(np.asarray(final.w_in)).max()
    loss, continued_loss = (
        np.asarray(history.train_loss_per_feature),
        np.asarray(continued_history.train_loss_per_feature),
    )
    assert continued_loss[0] < 0.95 * loss[0]  # starts where the first run ended
    assert continued_loss[-1] <= 1.05 * loss[-1]


def test_fine_tuning_with_tiny_lr_stays_at_the_initial_params(trained_small):
    final, _ = trained_small
    tuned, _ = train_jit(small(lr=1e-9, scale=0.0), jax.random.key(3), None, final)
    for a, b in zip(jax.tree.leaves(tuned), jax.tree.leaves(final), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6, rtol=0)


def test_init_run_with_initial_params():
    from ccjax.engine import init_run

    config = small(learn_scale=True, scale_init=0.02)
    hyper = ccjax.engine.hyper_from_config(config)
    key = jax.random.key(5)
    initial = ccjax.init_feature_mlp(jax.random.key(99), config.n_features, config.d_mlp)
    fresh = init_run(config, key, hyper)
    state = init_run(config, key, hyper, initial)
    np.testing.assert_array_equal(np.asarray(state.trainable["params"].w_in), np.asarray(initial.w_in))
    np.testing.assert_array_equal(np.asarray(state.trainable["params"].w_out), np.asarray(initial.w_out))
    assert float(state.trainable["scale"]) == pytest.approx(0.02)  # the learned scale starts afresh
    # M and the data key still come from ``key``; the optimizer state is fresh.
    np.testing.assert_array_equal(np.asarray(state.mixing), np.asarray(fresh.mixing))
    np.testing.assert_array_equal(jax.random.key_data(state.data_key), jax.random.key_data(fresh.data_key))
    for leaf in jax.tree.leaves(state.opt_state):
        np.testing.assert_array_equal(np.asarray(leaf), 0)


@pytest.mark.parametrize(
    "config, shapes, message",
    [
        (SMALL, ((10, 20), (20, 10)), r"expected \(20, 10\)"),
        (SMALL, ((20, 10), (10, 21)), "initial_params.w_out"),
        (small(full_model=True), ((20, 10), (10, 20)), "full_model"),
    ],
)
def test_train_rejects_bad_initial_params(config, shapes, message):
    with annotations_unchecked():  # an ill-shaped FeatureMLP, to test train's own check
        initial = ccjax.FeatureMLP(*(jnp.zeros(shape) for shape in shapes))
    with pytest.raises(ValueError, match=message):
        ccjax.train(config, jax.random.key(0), initial_params=initial)


def test_zero_diagonal_zeroes_only_the_diagonal_of_m():
    # The paper code's rank experiment draws M, then zeroes its diagonal (nb6_mixing_matrix_rank.py).
    one = jax.devices()[:1]
    plain = ccjax.sweep(small(mixing="low-rank", mixing_rank=3, steps=10), {"seed": [4]}, devices=one).mixing[0]
    config = small(mixing="low-rank", mixing_rank=3, steps=10, zero_diagonal=True)
    zeroed = ccjax.sweep(config, {"seed": [4]}, devices=one).mixing[0]
    np.testing.assert_array_equal(np.diag(zeroed), 0.0)
    off = ~np.eye(plain.shape[0], dtype=bool)
    np.testing.assert_array_equal(zeroed[off], plain[off])
    assert np.abs(np.diag(plain)).min() > 0


def test_learned_scale_enters_the_labels_as_its_magnitude():
    # docs/paper.md §3: |scale| is used. Starting at -s0 or +s0 then gives the same labels,
    # the same weight updates, and a mirrored scale: identical models and |scale|.
    one = jax.devices()[:1]
    runs = [
        ccjax.sweep(small(learn_scale=True, scale_init=init, mixing="asymmetric", steps=30), {"seed": [1]}, devices=one)
        for init in (0.05, -0.05)
    ]
    np.testing.assert_array_equal(runs[0].params.w_in, runs[1].params.w_in)
    np.testing.assert_array_equal(runs[0].scale, runs[1].scale)
    assert runs[0].scale[0] > 0
