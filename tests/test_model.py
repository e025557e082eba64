"""The residual CC model, the reduced model, and the weight map between them (paper §1–2)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax

N, D_MLP, D_EMBED = 20, 10, 60


@pytest.fixture(scope="module")
def setup():
    key_e, key_p, key_x = jax.random.split(jax.random.key(0), 3)
    w_e = ccjax.problem.embedding(key_e, N, D_EMBED)
    params = ccjax.problem.init_residual_mlp(key_p, N, D_MLP, D_EMBED)
    # A moderately dense Bernoulli(0.3) × U[-1, 1] batch, so that many ReLUs are in play.
    mask_key, value_key = jax.random.split(key_x)
    x = jnp.where(
        jax.random.bernoulli(mask_key, 0.3, (256, N)), jax.random.uniform(value_key, (256, N), minval=-1), 0.0
    )
    return w_e, params, x


def test_residual_forward_matches_definition(setup):
    w_e, params, x = setup
    w_e64, x64 = np.asarray(w_e, np.float64), np.asarray(x, np.float64)
    w_in, w_out = np.asarray(params.w_in, np.float64), np.asarray(params.w_out, np.float64)
    r = x64 @ w_e64
    r = r + np.maximum(r @ w_in, 0) @ w_out
    expected = r @ w_e64.T
    np.testing.assert_allclose(np.asarray(ccjax.problem.residual_forward(params, w_e, x)), expected, atol=1e-5)


def test_reduced_model_reproduces_residual_errors(setup):
    # residual: out = x W_E W_E^T + relu(x W_E W_in) W_out W_E^T, labels x + relu(x);
    # reduced:  f(x) = relu(x W_in') W_out',                      labels relu(x) + M x,
    # with M = I - W_E W_E^T: both errors equal x (G - I) + f(x) - relu(x).
    w_e, params, x = setup
    mixing = ccjax.problem.embedding_mixing(w_e)
    residual_error = ccjax.problem.residual_forward(params, w_e, x) - ccjax.problem.residual_labels(x)
    reduced = ccjax.to_feature_space(params, w_e)
    reduced_error = ccjax.forward(reduced, x) - ccjax.labels(x, mixing)
    assert float(jnp.max(jnp.abs(residual_error))) > 0.1  # not trivially zero
    np.testing.assert_allclose(np.asarray(residual_error), np.asarray(reduced_error), atol=2e-5)


def test_equal_losses_under_weight_map(setup):
    w_e, params, x = setup
    mixing = ccjax.problem.embedding_mixing(w_e)
    reduced = ccjax.to_feature_space(params, w_e)
    residual_loss = ccjax.problem.mse(ccjax.problem.residual_forward(params, w_e, x), ccjax.problem.residual_labels(x))
    reduced_loss = ccjax.problem.mse(ccjax.forward(reduced, x), ccjax.labels(x, mixing))
    terms = ccjax.loss_terms(reduced, x, mixing)
    assert float(residual_loss) > 0
    np.testing.assert_allclose(float(residual_loss), float(reduced_loss), rtol=1e-5)
    np.testing.assert_allclose(float(terms.loss), float(reduced_loss), rtol=1e-5)


def test_code_sign_does_not_reproduce_residual(setup):
    # The paper's sign caveat: W_E W_E^T - I is *not* the residual model's mixing.
    w_e, params, x = setup
    reduced = ccjax.to_feature_space(params, w_e)
    residual_loss = ccjax.problem.mse(ccjax.problem.residual_forward(params, w_e, x), ccjax.problem.residual_labels(x))
    code_loss = ccjax.problem.mse(
        ccjax.forward(reduced, x), ccjax.labels(x, ccjax.problem.embedding_mixing(w_e, code_sign=True))
    )
    assert abs(float(code_loss) - float(residual_loss)) > 1e-3 * float(residual_loss)


def test_to_feature_space_weight_map(setup):
    w_e, params, _ = setup
    reduced = ccjax.to_feature_space(params, w_e)
    assert isinstance(reduced, ccjax.FeatureMLP)
    assert reduced.w_in.shape == (N, D_MLP) and reduced.w_out.shape == (D_MLP, N)
    w_e64 = np.asarray(w_e, np.float64)
    np.testing.assert_allclose(np.asarray(reduced.w_in), w_e64 @ np.asarray(params.w_in), atol=1e-5)
    np.testing.assert_allclose(np.asarray(reduced.w_out), np.asarray(params.w_out) @ w_e64.T, atol=1e-5)
    # Identity on feature-space weights.
    assert ccjax.to_feature_space(reduced, w_e) is reduced


def test_forward_is_bias_free_relu_mlp():
    params = ccjax.FeatureMLP(w_in=jnp.array([[1.0, -1.0], [0.5, 2.0]]), w_out=jnp.array([[2.0, 0.0], [0.0, 3.0]]))
    x = jnp.array([[1.0, 0.0], [0.0, -1.0], [0.0, 0.0]])
    # Row 1: relu([1, -1]) = [1, 0] → [2, 0]. Row 2: relu([-0.5, -2]) = 0 → 0. Row 3: 0.
    np.testing.assert_allclose(np.asarray(ccjax.forward(params, x)), [[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]])


def _assert_uniform_init(w, bound):
    w = np.asarray(w)
    assert np.all(np.abs(w) <= bound)
    assert np.abs(w).max() > 0.95 * bound  # the full range is used
    # U(±b): mean 0, variance b²/3 (5 standard errors; Var(w²) = b⁴(1/5 - 1/9)).
    n = w.size
    assert abs(w.mean()) < 5 * bound / math.sqrt(3 * n)
    assert abs(np.mean(w**2) - bound**2 / 3) < 5 * bound**2 * math.sqrt(4 / 45 / n)


def test_init_feature_mlp_bounds():
    # The paper's init (paper §4, for 100/50): W_in ~ U(±sqrt(6/50)), W_out ~ U(±sqrt(6/100)).
    params = ccjax.init_feature_mlp(jax.random.key(0), 100, 50)
    assert params.w_in.shape == (100, 50) and params.w_out.shape == (50, 100)
    _assert_uniform_init(params.w_in, math.sqrt(6 / 50))
    _assert_uniform_init(params.w_out, math.sqrt(6 / 100))


def test_init_residual_mlp_bounds():
    params = ccjax.problem.init_residual_mlp(jax.random.key(0), 100, 50, 300)
    assert params.w_in.shape == (300, 50) and params.w_out.shape == (50, 300)
    _assert_uniform_init(params.w_in, math.sqrt(6 / 50))
    _assert_uniform_init(params.w_out, math.sqrt(6 / 100))


def test_residual_init_matches_reduced_init_variance():
    # With unit-norm rows of W_E, W_E W_in has the entry variance of W_in (= (6/d_mlp)/3).
    key_e, key_p = jax.random.split(jax.random.key(1))
    w_e = ccjax.problem.embedding(key_e, 100, 300)
    reduced = ccjax.to_feature_space(ccjax.problem.init_residual_mlp(key_p, 100, 50, 300), w_e)
    assert np.var(np.asarray(reduced.w_in)) == pytest.approx(6 / 50 / 3, rel=0.1)
    assert np.var(np.asarray(reduced.w_out)) == pytest.approx(6 / 100 / 3, rel=0.1)
