"""Labels, the loss split, the sparse/dense loss paths and L/p of baselines (paper §2–5)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import annotations_unchecked

import ccjax
from ccjax.problem import default_capacity

N, D_MLP = 20, 10


def _random_params(key, n=N, d=D_MLP):
    k1, k2 = jax.random.split(key)
    return ccjax.FeatureMLP(
        w_in=jax.random.normal(k1, (n, d)) / math.sqrt(d),
        w_out=jax.random.normal(k2, (d, n)) / math.sqrt(n),
    )


def _random_mixing(key, n=N):
    # Asymmetric on purpose: a transposed M changes the loss only when M != M^T.
    return 0.1 * ccjax.problem.asymmetric_gaussian(key, n)


def _dense_batch(key, batch_size, p, n=N):
    mask_key, value_key = jax.random.split(key)
    active = jax.random.bernoulli(mask_key, p, (batch_size, n))
    return jnp.where(active, jax.random.uniform(value_key, (batch_size, n), minval=-1.0, maxval=1.0), 0.0)


# --- labels and the loss split -------------------------------------------------------


def test_labels_orientation():
    mixing = jnp.arange(9.0).reshape(3, 3)
    x = jnp.array([[0.0, -0.5, 0.0], [2.0, 0.0, 0.0]])
    # One active feature f with value v: relu(v) e_f + scale · v · M[:, f] (column f).
    expected = np.array(
        [
            [0.0, 0.0, 0.0] + 0.3 * -0.5 * np.array([1.0, 4.0, 7.0]),
            [2.0, 0.0, 0.0] + 0.3 * 2.0 * np.array([0.0, 3.0, 6.0]),
        ]
    )
    np.testing.assert_allclose(np.asarray(ccjax.labels(x, mixing, 0.3)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ccjax.problem.residual_labels(x)), [[0.0, -0.5, 0.0], [4.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def split_setup():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    return _random_params(k1), _dense_batch(k2, 512, 0.2), _random_mixing(k3)


@pytest.mark.parametrize("scale", [1.0, 0.37, -2.0])
def test_loss_terms_sum_to_loss(split_setup, scale):
    params, x, mixing = split_setup
    terms = ccjax.loss_terms(params, x, mixing, scale)
    direct = ccjax.problem.mse(ccjax.forward(params, x), ccjax.labels(x, mixing, scale))
    np.testing.assert_allclose(float(terms.relu_term + terms.mixing_term), float(terms.loss), rtol=1e-6)
    np.testing.assert_allclose(float(terms.loss), float(direct), rtol=1e-5)
    relu_only = ccjax.problem.mse(ccjax.forward(params, x), jax.nn.relu(x))
    np.testing.assert_allclose(float(terms.relu_term), float(relu_only), rtol=1e-6)
    assert float(terms.mixing_term) != 0.0
    n_total = x.size
    np.testing.assert_allclose(
        float(ccjax.problem.dense_sse(params, x, scale * mixing)) / n_total, float(direct), rtol=1e-5
    )


def test_mixing_term_vanishes_without_mixing(split_setup):
    params, x, mixing = split_setup
    for terms in (ccjax.loss_terms(params, x, mixing, 0.0), ccjax.loss_terms(params, x, jnp.zeros_like(mixing))):
        assert float(terms.mixing_term) == 0.0
        assert float(terms.loss) == pytest.approx(float(terms.relu_term), rel=1e-7)


def test_mse_is_mean_over_batch_and_features():
    a = jnp.array([[1.0, 2.0], [3.0, 4.0]])
    b = jnp.array([[0.0, 2.0], [3.0, 0.0]])
    assert float(ccjax.problem.mse(a, b)) == pytest.approx((1.0 + 16.0) / 4)


# --- baselines: L/p (paper §5) -------------------------------------------------------


def _naive(n, d):
    eye = jnp.eye(n, d)
    return ccjax.FeatureMLP(w_in=eye, w_out=eye.T)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _loss_per_feature(params, scaled_mixing, key, p, plan, path):
    return ccjax.direct_loss_per_feature(params, scaled_mixing, key, p, plan, path=path)


def test_naive_loss_per_feature_analytic():
    # Features f < d are reproduced exactly; the others output 0 and miss relu(x_f)^2,
    # E = p · E[relu(u)^2] = p/6 (u ~ U[-1, 1]). Mean over features: (n - d)/n · p/6.
    assert ccjax.naive_loss_per_feature(100, 50) == pytest.approx(1 / 12)
    assert ccjax.naive_loss_per_feature(100, 0) == pytest.approx(1 / 6)


@pytest.fixture(scope="module")
def naive_plan():
    return ccjax.measure.plan_evaluation(0.05, 0.05, 100, min_nonempty=20_000, batch_size=2048)


def _predicted_sem(n, d, p, batch_size, n_batches):
    # L/p of one batch is (1/(B n p)) Σ over B(n-d) positions of relu(x)^2, each with
    # variance E[relu^4] - E[relu^2]^2 = p/10 - p²/36 (E[relu(u)^4] = 1/10 for U[-1, 1]).
    var = (n - d) * (1 / 10 - p / 36) / (batch_size * n**2 * p)
    return math.sqrt(var / n_batches)


@pytest.mark.parametrize("d, expected", [(50, 1 / 12), (0, 1 / 6)])
def test_naive_and_zero_model_monte_carlo(naive_plan, d, expected):
    n, p = 100, 0.05
    params = _naive(n, d) if d else ccjax.FeatureMLP(jnp.zeros((n, 50)), jnp.zeros((50, n)))
    clean = jnp.zeros((n, n))
    key = jax.random.key(11)
    estimate = _loss_per_feature(params, clean, key, p, naive_plan, "sparse")
    assert naive_plan.n_batches > 1
    assert int(estimate.n_samples) == naive_plan.n_batches * naive_plan.batch_size
    assert int(estimate.n_nonempty) >= 20_000
    predicted = _predicted_sem(n, d, p, naive_plan.batch_size, naive_plan.n_batches)
    assert 0.5 * predicted < float(estimate.sem) < 2.0 * predicted
    assert abs(float(estimate.loss_per_feature) - expected) < 4 * float(estimate.sem)
    # The dense path sees the same batches and gives the same estimate.
    dense = _loss_per_feature(params, clean, key, p, naive_plan, "dense")
    np.testing.assert_allclose(float(dense.loss_per_feature), float(estimate.loss_per_feature), rtol=1e-5)


def test_plan_evaluation_sizes():
    plan = ccjax.measure.plan_evaluation(0.001, 0.1, 100, min_nonempty=1e5, batch_size=1024)
    q = 1 - 0.999**100  # P(non-empty) at the smallest p
    total = plan.n_batches * plan.batch_size
    assert total * q - 6 * math.sqrt(total * q * (1 - q)) >= 1e5
    assert plan.capacity == default_capacity(1024, 100, 0.1)


# --- batch_loss: the sparse path equals the dense path -------------------------------


def _both_paths(params, batch, scaled_mixing, batch_size, multi_capacity, axis_name=None):
    def value_and_grad(path):
        def loss(prm, mix):
            return ccjax.problem.batch_loss(
                prm, batch, mix, batch_size=batch_size, path=path, multi_capacity=multi_capacity, axis_name=axis_name
            )

        return jax.value_and_grad(loss, argnums=(0, 1))(params, scaled_mixing)

    return value_and_grad("sparse"), value_and_grad("dense")


@functools.partial(jax.jit, static_argnums=(4, 5, 6))
def _compare(params, key, p, scaled_mixing, batch_size, capacity, multi_capacity):
    batch = ccjax.sample_sparse(key, batch_size, N, p, capacity)
    return _both_paths(params, batch, scaled_mixing, batch_size, multi_capacity), batch


def _assert_same(sparse, dense, rtol=1e-5):
    (sparse_value, sparse_grads), (dense_value, dense_grads) = sparse, dense
    assert float(dense_value) > 0
    np.testing.assert_allclose(float(sparse_value), float(dense_value), rtol=rtol)
    for s, d in zip(jax.tree.leaves(sparse_grads), jax.tree.leaves(dense_grads), strict=True):
        s, d = np.asarray(s), np.asarray(d)
        assert np.abs(d).max() > 0
        np.testing.assert_allclose(s, d, rtol=rtol, atol=rtol * np.abs(d).max())


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2, 0.6, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_path_equals_dense_path(p, seed):
    batch_size = 64
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    params, mixing = _random_params(k1), _random_mixing(k2)
    # One capacity (every position) for all p, so p is traced and one compile serves all.
    (sparse, dense), batch = _compare(params, k3, p, mixing, batch_size, batch_size * N, batch_size)
    assert not bool(batch.overflow)
    _assert_same(sparse, dense)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_sparse_path_default_capacities(p):
    batch_size = 256
    k1, k2, k3 = jax.random.split(jax.random.key(4), 3)
    params, mixing = _random_params(k1), _random_mixing(k2)
    capacity = default_capacity(batch_size, N, 0.3)
    multi_capacity = ccjax.problem._loss.default_multi_capacity(batch_size, N, 0.3)
    (sparse, dense), batch = _compare(params, k3, p, mixing, batch_size, capacity, multi_capacity)
    assert not bool(batch.overflow)
    _assert_same(sparse, dense)


def test_fallback_on_entry_overflow():
    batch_size, p = 64, 0.2
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    params, mixing = _random_params(k1), _random_mixing(k2)
    (sparse, dense), batch = _compare(params, k3, p, mixing, batch_size, 16, batch_size)
    assert bool(batch.overflow)  # ~256 actives expected, 16 slots
    _assert_same(sparse, dense)
    # The entries alone give a different loss: the fallback (not luck) made them agree.
    entries_only = ccjax.problem.dense_sse(params, ccjax.problem.entries_to_dense(batch, batch_size, N), mixing) / (
        batch_size * N
    )
    assert abs(float(entries_only) - float(dense[0])) > 0.05 * float(dense[0])


def test_fallback_on_multi_row_overflow():
    batch_size, p, multi_capacity = 64, 0.3, 2
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    params, mixing = _random_params(k1), _random_mixing(k2)
    (sparse, dense), batch = _compare(params, k3, p, mixing, batch_size, batch_size * N, multi_capacity)
    assert not bool(batch.overflow)
    x = ccjax.problem.entries_to_dense(batch, batch_size, N)
    assert int(jnp.sum(jnp.sum(x != 0, axis=1) >= 2)) > multi_capacity  # P(>=2 of 20 at .3) ≈ 0.99
    _assert_same(sparse, dense)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _compare_exactly_one(params, key, scaled_mixing, batch_size, multi_capacity):
    batch = ccjax.problem.sample_exactly_one(key, batch_size, N)
    return _both_paths(params, batch, scaled_mixing, batch_size, multi_capacity)


@pytest.mark.parametrize("multi_capacity", [1, 128])
def test_sparse_path_exactly_one(multi_capacity):
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    params, mixing = _random_params(k1), _random_mixing(k2)
    sparse, dense = _compare_exactly_one(params, k3, mixing, 128, multi_capacity)
    _assert_same(sparse, dense)


@functools.partial(jax.jit, static_argnums=(4, 5))
def _compare_vmapped(params, keys, p, scaled_mixing, batch_size, capacity):
    def one(prm, key, p_model, mix):
        batch = ccjax.sample_sparse(key, batch_size, N, p_model, capacity)
        return _both_paths(prm, batch, mix, batch_size, batch_size, axis_name="model"), batch.overflow

    return jax.vmap(one, axis_name="model")(params, keys, p, scaled_mixing)


def _model(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


@pytest.mark.parametrize(
    "p, any_overflow",
    [
        ([0.01, 0.05, 0.05, 0.1], False),
        ([0.01, 0.05, 0.6, 0.1], True),  # one model overflows: all take the dense fallback
    ],
)
def test_sparse_path_under_vmap_with_axis_name(p, any_overflow):
    batch_size, n_models = 64, 4
    k1, k2, k3 = jax.random.split(jax.random.key(6), 3)
    params = jax.vmap(_random_params)(jax.random.split(k1, n_models))
    mixing = jax.vmap(_random_mixing)(jax.random.split(k2, n_models))
    keys = jax.random.split(k3, n_models)
    capacity = default_capacity(batch_size, N, 0.1)
    (sparse, dense), overflow = _compare_vmapped(params, keys, jnp.array(p), mixing, batch_size, capacity)
    assert bool(jnp.any(overflow)) == any_overflow
    for i in range(n_models):
        _assert_same(_model(sparse, i), _model(dense, i))


def test_batch_loss_rejects_unknown_path():
    batch = ccjax.problem.sample_exactly_one(jax.random.key(0), 4, N)
    params = _random_params(jax.random.key(1))
    with pytest.raises(ValueError, match="unknown input path 'fast'"), annotations_unchecked():
        ccjax.problem.batch_loss(params, batch, jnp.zeros((N, N)), batch_size=4, path="fast")
