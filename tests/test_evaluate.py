"""The evaluation engine: L(p) = sum_k Binom(k; n, p) c_k with exact c_1 (ccjax.measure)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import SMALL, annotations_unchecked, small, train_jit

import ccjax
from ccjax.measure._curves import loss_bound_slope

N, D = 20, 10


def stack(*models):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *models)


def naive(n=N, d=D):
    eye = jnp.zeros((n, d)).at[jnp.arange(d), jnp.arange(d)].set(1.0)
    return ccjax.FeatureMLP(eye, eye.T)


@pytest.fixture(scope="module")
def trained():
    """Two small models trained with mixing (seeds 0 and 1, embedding M at scale 1)."""
    config = small(steps=200, mixing="embedding", scale=1.0)
    models, mixings = [], []
    for seed in (0, 1):
        params, _ = train_jit(config, jax.random.key(seed))
        mixing, _ = ccjax.make_mixing("embedding", jax.random.key(seed), N, SMALL.d_embed)
        models.append(params)
        mixings.append(mixing)
    return stack(*models), jnp.stack(mixings)


def test_binomial_weights():
    weights = ccjax.measure.binomial_weights([1e-3, 0.3, 1.0], 20)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-12)
    assert weights[1, 7] == pytest.approx(math.comb(20, 7) * 0.3**7 * 0.7**13, rel=1e-12)
    np.testing.assert_array_equal(weights[2], np.eye(21)[20])


def test_exact_c1_agrees_with_sampling(trained):
    params, mixing = jax.tree.map(lambda a: a[0], trained)
    exact = float(ccjax.measure.one_feature_loss(params, mixing))
    x = ccjax.problem.sample_exactly_k(jax.random.key(3), jnp.ones(200_000, jnp.int32), N)
    losses = jnp.mean((ccjax.forward(params, x) - ccjax.labels(x, mixing)) ** 2, axis=1)
    assert abs(float(losses.mean()) - exact) < 4 * float(losses.std()) / math.sqrt(x.shape[0])


def test_exactly_one_loss_is_n_times_c1_and_matches_training_loss(trained):
    params, mixing = jax.tree.map(lambda a: a[0], trained)
    batch = ccjax.problem.sample_exactly_one(jax.random.key(4), 100_000, N)
    loss = ccjax.problem.batch_loss(params, batch, mixing, batch_size=100_000, path="dense")
    exact = float(ccjax.exactly_one_loss_per_feature(params, mixing))
    assert exact == pytest.approx(N * float(ccjax.measure.one_feature_loss(params, mixing)))
    assert float(loss) * N == pytest.approx(exact, rel=0.02)


def test_naive_model_is_exactly_one_twelfth_at_every_p():
    # The naive model has no interference, so the control variate leaves no variance.
    params = stack(naive(100, 50), naive(100, 50))
    curve = ccjax.loss_curve(params, jnp.zeros((2, 100, 100)), np.geomspace(1e-3, 1, 7), jax.random.key(0))
    np.testing.assert_allclose(curve.loss_per_feature, 1 / 12, rtol=1e-5)
    assert np.all(curve.sem < 1e-6)


def test_zero_model_on_clean_labels_is_one_sixth():
    zero = ccjax.FeatureMLP(jnp.zeros((1, N, D)), jnp.zeros((1, D, N)))
    curve = ccjax.loss_curve(zero, jnp.zeros((1, N, N)), [0.01, 0.5, 1.0], jax.random.key(0))
    np.testing.assert_allclose(curve.loss_per_feature, 1 / 6, rtol=1e-5)


@pytest.mark.parametrize("p", [1e-3, 0.05, 0.4, 1.0])
def test_curve_agrees_with_direct_bernoulli_monte_carlo(trained, p):
    params, mixing = trained
    curve = ccjax.loss_curve(params, mixing, [1e-3, 0.05, 0.4, 1.0], jax.random.key(1), rel_sem=0.005)
    column = list(curve.p).index(p)
    plan = ccjax.measure.plan_evaluation(p, p, N, min_nonempty=30_000, batch_size=512)  # >= 58 batches for the SEM
    direct = jax.jit(
        jax.vmap(lambda prm, m: ccjax.direct_loss_per_feature(prm, m, jax.random.key(2), p, plan, path="dense"))
    )(params, mixing)
    z = (curve.loss_per_feature[:, column] - direct.loss_per_feature) / np.hypot(curve.sem[:, column], direct.sem)
    assert np.all(np.abs(z) < 4), z
    # The predicted standard error of direct sampling matches the one it showed.
    predicted = ccjax.direct_sem(curve, float(direct.n_nonempty[0]))[:, column]
    np.testing.assert_allclose(predicted, direct.sem, rtol=0.35)


def test_requested_relative_standard_error_is_met(trained):
    params, mixing = trained
    p = np.geomspace(1e-3, 1, 30)
    for rel_sem in (0.01, 0.003):
        curve = ccjax.loss_curve(params, mixing, p, jax.random.key(5), rel_sem=rel_sem)
        assert np.all(curve.sem <= rel_sem * curve.loss_per_feature)
    assert curve.n_evaluations < 1e6  # a whole curve for well under the paper's 1e6 per p


def test_per_p_targets(trained):
    params, mixing = trained
    targets = np.array([0.02, 0.002])
    curve = ccjax.loss_curve(params, mixing, [0.01, 0.5], jax.random.key(5), rel_sem=targets)
    assert np.all(curve.sem <= targets * curve.loss_per_feature)


def test_negligible_k_are_skipped_within_the_stated_bound(trained):
    params, mixing = trained
    curve = ccjax.loss_curve(params, mixing, [1e-3, 3e-3], jax.random.key(6))
    assert curve.samples[0] == curve.samples[1] == 0  # k = 0 has zero loss, k = 1 is exact
    assert curve.samples[2] > 0 and np.all(curve.samples[8:] == 0)
    assert np.all(np.isnan(curve.c[:, 8:]))
    assert np.all(curve.truncation_bound <= ccjax.measure._curves.TRUNCATION_TOLERANCE)
    # All k estimated: the skipped ones changed L/p by less than the bound (+ noise).
    full = ccjax.loss_curve(params, mixing, [1e-3, 3e-3], jax.random.key(6), truncation_tolerance=0.0)
    assert np.all(full.samples[2:] > 0)
    gap = np.abs(full.loss_per_feature - curve.loss_per_feature)
    assert np.all(gap <= curve.truncation_bound + 4 * np.hypot(full.sem, curve.sem))


def test_loss_bound_slope_bounds_every_c_k(trained):
    params, mixing = trained
    curve = ccjax.loss_curve(params, mixing, [0.3, 1.0], jax.random.key(7), truncation_tolerance=0.0)
    slope = jax.vmap(loss_bound_slope)(params, mixing)
    k = np.arange(N + 1)
    assert np.all(curve.c[:, 1:] <= k[1:] * np.asarray(slope)[:, None])


def test_control_variate_helps_at_low_k(trained):
    # With beta fitted, the variance used for c_k never exceeds plain sampling's.
    params, mixing = trained
    curve = ccjax.loss_curve(params, mixing, [0.05], jax.random.key(8), truncation_tolerance=0.0)
    plain = np.sqrt(curve.loss_variance[:, 2:5] / curve.samples[2:5])
    assert np.all(curve.c_sem[:, 2:5] < plain)


def test_grid_shaped_models_and_single_p(trained):
    params, mixing = trained
    grid = jax.tree.map(lambda a: jnp.stack([a, a[::-1], a]), (params, mixing))  # (3, 2, ...)
    curve = ccjax.loss_curve(*grid, [0.05, 0.5], jax.random.key(9))
    assert curve.loss_per_feature.shape == (3, 2, 2) and curve.c.shape == (3, 2, N + 1)
    np.testing.assert_allclose(curve.loss_per_feature[0], curve.loss_per_feature[2], rtol=1e-6)
    np.testing.assert_allclose(curve.loss_per_feature[1], curve.loss_per_feature[0][::-1], rtol=1e-6)
    single = ccjax.measure.loss_per_feature(params, mixing, 0.5, jax.random.key(9))
    assert single.loss_per_feature.shape == (2,)
    assert np.all(np.abs(single.loss_per_feature - curve.loss_per_feature[0, :, 1]) < 5 * single.sem)


def test_sharded_over_devices_equals_one_device(trained):
    params, mixing = trained
    eight = jax.tree.map(lambda a: jnp.concatenate([a] * 4), (params, mixing))
    sharded = ccjax.loss_curve(*eight, [0.02, 0.7], jax.random.key(10), rel_sem=0.01)
    alone = ccjax.loss_curve(*eight, [0.02, 0.7], jax.random.key(10), rel_sem=0.01, devices=jax.devices()[:1])
    assert len(jax.devices()) == 8
    np.testing.assert_allclose(sharded.loss_per_feature, alone.loss_per_feature, rtol=1e-5)
    np.testing.assert_array_equal(sharded.samples, alone.samples)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(p_values=[0.0]), r"p must be in \(0, 1\]"),
        (dict(p_values=[0.1, float("nan")]), r"p must be in \(0, 1\]"),
        (dict(p_values=[]), "non-empty"),
        (dict(rel_sem=0.0), "rel_sem must be positive"),
        (dict(rel_sem=[0.01, 0.01, 0.01]), "rel_sem"),
        (dict(pilot_samples=1), "pilot_samples"),
        (dict(unstacked=True), "leading model axis"),
        (dict(mixing_shape=(2, N, N + 1)), "scaled_mixing has shape"),
    ],
)
def test_bad_arguments_get_clear_errors(trained, change, message):
    params, mixing = trained
    if change.pop("unstacked", False):
        params = jax.tree.map(lambda a: a[0], params)
    if "mixing_shape" in change:
        mixing = jnp.zeros(change.pop("mixing_shape"))
    arguments = dict(p_values=[0.1, 0.2], rel_sem=0.01) | change
    with pytest.raises(ValueError, match=message), annotations_unchecked():  # loss_curve's own checks
        ccjax.loss_curve(params, mixing, key=jax.random.key(0), **arguments)


def test_sample_exactly_k_counts_support_and_values():
    counts = jnp.asarray(np.repeat([0, 1, 3, N], 20_000).astype(np.int32))
    x = np.asarray(ccjax.problem.sample_exactly_k(jax.random.key(11), counts, N))
    np.testing.assert_array_equal((x != 0).sum(axis=1), counts)
    # Uniform support: with k = 3 each feature is active with probability 3/N.
    active = (x[counts == 3] != 0).mean(axis=0)
    np.testing.assert_allclose(active, 3 / N, atol=4 * np.sqrt(3 / N / 20_000))
    values = x[x != 0]
    assert values.min() >= -1 and values.max() <= 1 and abs(values.mean()) < 0.01
    assert np.mean(values**2) == pytest.approx(1 / 3, rel=0.01)
