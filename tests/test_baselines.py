"""Baselines against known answers: zero, naive, naive + offset, SVD, NMF, semi-NMF (§5)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax import baselines
from ccjax import problem as mixing
from ccjax.measure import exactly_one_loss_per_feature
from ccjax.problem import FeatureMLP, forward, labels

N, D_MLP = 100, 50
NAIVE = (N - D_MLP) / N / 6.0  # 1/12

_semi_nmf = jax.jit(baselines.semi_nmf, static_argnames=("rank", "outer_iterations", "inner_steps", "nmf_iterations"))
_semi_nmf_model = jax.jit(baselines.semi_nmf_model, static_argnames=("d_mlp", "orientation"))


def _bernoulli_inputs(key, rows, p, n=N):
    """Dense Bernoulli-p × U[-1, 1] inputs."""
    mask_key, value_key = jax.random.split(key)
    active = jax.random.bernoulli(mask_key, p, (rows, n))
    return jnp.where(active, jax.random.uniform(value_key, (rows, n), minval=-1.0, maxval=1.0), 0.0)


@jax.jit
def _row_losses(params, x, scaled_mixing):
    """Per-row mean squared error; its mean is L and its spread gives the MC error."""
    return jnp.mean((forward(params, x) - labels(x, scaled_mixing)) ** 2, axis=1)


def _mc_loss_per_feature(params, key, rows, p, scaled_mixing=None):
    """Monte-Carlo L/p and its standard error on dense Bernoulli-p data."""
    if scaled_mixing is None:
        scaled_mixing = jnp.zeros((N, N), jnp.float32)
    per_row = np.asarray(_row_losses(params, _bernoulli_inputs(key, rows, p), scaled_mixing), np.float64)
    return per_row.mean() / p, per_row.std(ddof=1) / np.sqrt(rows) / p


# --- zero and naive ------------------------------------------------------------------


def test_zero_and_naive_weights():
    zero = baselines.zero_model(N, D_MLP)
    assert zero.w_in.shape == (N, D_MLP) and zero.w_out.shape == (D_MLP, N)
    assert zero.w_in.dtype == jnp.float32 and not np.any(np.asarray(zero.w_out))
    naive = baselines.naive_model(N, D_MLP)
    np.testing.assert_array_equal(np.asarray(naive.w_in), np.eye(N, D_MLP))
    np.testing.assert_array_equal(np.asarray(naive.w_out), np.eye(D_MLP, N))
    offset = baselines.naive_model(N, D_MLP, offset=0.25)
    expected = np.eye(D_MLP, N)
    expected[:, D_MLP:] = 0.25
    np.testing.assert_array_equal(np.asarray(offset.w_out), expected)
    np.testing.assert_array_equal(np.asarray(offset.w_in), np.eye(N, D_MLP))


@pytest.mark.parametrize(("make", "expected"), [(baselines.zero_model, 1.0 / 6.0), (baselines.naive_model, NAIVE)])
def test_clean_loss_exact_and_monte_carlo(make, expected):
    params = make(N, D_MLP)
    clean = jnp.zeros((N, N), jnp.float32)
    assert float(exactly_one_loss_per_feature(params, clean)) == pytest.approx(expected, rel=1e-6)
    mc, se = _mc_loss_per_feature(params, jax.random.key(1), 50_000, 0.1)
    assert abs(mc - expected) < 4 * se, (mc, se)


# --- naive + offset ------------------------------------------------------------------


@pytest.mark.parametrize(("p", "b_paper", "loss_paper"), [(1.0, 0.0194, 0.0531), (0.1, 0.0132, 0.0813)])
def test_optimal_offset_paper_numbers(p, b_paper, loss_paper):
    b_star, loss = baselines.optimal_offset(p)
    assert b_star == pytest.approx(b_paper, abs=5e-4)
    assert loss == pytest.approx(loss_paper, abs=5e-4)
    # The paper's n = 100, d = 50 form of the formula, and b* is its minimum.
    paper_form = 0.5 * (1 / 6 - 6.25 * p * b_star + b_star**2 * (25 / 3 + 153.125 * p))
    assert loss == pytest.approx(paper_form, rel=1e-12)
    for b in (b_star - 1e-3, b_star + 1e-3):
        assert baselines.offset_loss_per_feature(b, p) > loss
    assert baselines.offset_loss_per_feature(0.0, p) == pytest.approx(NAIVE, rel=1e-12)


def test_optimal_offset_vectorised():
    ps = np.geomspace(1e-3, 1.0, 7)
    b_star, loss = baselines.optimal_offset(ps)
    assert b_star.shape == loss.shape == ps.shape
    assert np.all(loss < NAIVE) and np.all(np.diff(loss) < 0)  # the offset helps more as p grows
    b_jax, loss_jax = baselines.optimal_offset(jnp.asarray(ps, jnp.float32))
    np.testing.assert_allclose(np.asarray(loss_jax), loss, rtol=1e-5)


def test_offset_monte_carlo_matches_formula():
    ps = (1.0, 0.1)
    b_star = jnp.asarray([baselines.optimal_offset(p)[0] for p in ps], jnp.float32)
    models = jax.vmap(lambda b: baselines.naive_model(N, D_MLP, offset=b))(b_star)  # offset traced
    for i, p in enumerate(ps):
        params = jax.tree.map(lambda leaf, i=i: leaf[i], models)
        mc, se = _mc_loss_per_feature(params, jax.random.key(10 + i), 100_000, p)
        expected = baselines.offset_loss_per_feature(float(b_star[i]), p)
        assert abs(mc - expected) < 4 * se, (p, mc, expected, se)
        # SE ≈ 3e-5 (p = 1) and 2e-4 (p = 0.1): a wrong coefficient in the formula (e.g.
        # d² for d(d−1)) moves L/p by ≥ 6e-4 at p = 1; the gain over naive is ≥ 9 SE.
        assert mc < NAIVE - 5 * se


def test_offset_with_mixing_matches_the_evaluation_engine():
    # The closed form for any M against the c_k engine on the naive + b* models (p = 0.05 and 1).
    scaled = 0.05 * mixing.asymmetric_gaussian(jax.random.key(20), N)
    assert float(baselines.offset_loss_per_feature(0.01, 0.3, jnp.zeros((N, N)))) == pytest.approx(
        baselines.offset_loss_per_feature(0.01, 0.3), rel=1e-6
    )
    ps = np.array([0.05, 1.0])
    b_star, exact = baselines.optimal_offset(ps, scaled)
    offsets = np.stack([np.asarray(b_star), np.asarray(b_star) + 0.02, np.zeros(2)])  # (3 offsets, 2 p)
    models = jax.vmap(jax.vmap(lambda b: baselines.naive_model(N, D_MLP, offset=b)))(jnp.asarray(offsets))
    mixings = jnp.broadcast_to(scaled, (3, N, N))
    for i, p in enumerate(ps):
        # Each p's three models at that p alone: no samples spent on the other p's k.
        at_p = jax.tree.map(lambda leaf, i=i: leaf[:, i], models)
        curve = ccjax.loss_curve(at_p, mixings, [p], jax.random.key(21), rel_sem=1e-3)
        for j in range(3):
            formula = float(baselines.offset_loss_per_feature(offsets[j, i], p, scaled))
            assert abs(curve.loss_per_feature[j, 0] - formula) < 4 * curve.sem[j, 0] + 1e-6
        assert float(exact[i]) < float(baselines.offset_loss_per_feature(offsets[1, i], p, scaled))
    # The mixing moves the optimum away from the clean one (the Σ_{i<d} A_ji / 3 term).
    assert abs(float(b_star[1]) - baselines.optimal_offset(1.0)[0]) > 1e-4


# --- target map and SVD --------------------------------------------------------------


def test_target_map_orientations():
    m = jax.random.normal(jax.random.key(0), (5, 5))
    faithful = baselines.target_map(m, 0.3)
    code = baselines.target_map(m, 0.3, "paper-code")
    np.testing.assert_allclose(np.asarray(code), np.eye(5) + 0.3 * np.asarray(m), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(faithful), np.asarray(code).T)
    # Faithful is what the labels apply to non-negative row inputs.
    x = jnp.abs(jax.random.normal(jax.random.key(1), (4, 5)))
    np.testing.assert_allclose(np.asarray(x @ faithful), np.asarray(labels(x, m, 0.3)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="faithful, paper-code"):
        baselines.target_map(m, 0.3, "transposed")


def test_flip_neuron_signs_by_hand():
    params = FeatureMLP(w_in=jnp.array([[1.0, -3.0, 0.5], [-2.0, 2.0, 0.25]]), w_out=jnp.arange(6.0).reshape(3, 2))
    flipped = baselines.flip_neuron_signs(params)
    # Largest |entry| per column: -2 (flip), -3 (flip), 0.5 (keep).
    np.testing.assert_array_equal(np.asarray(flipped.w_in), [[-1.0, 3.0, 0.5], [2.0, -2.0, 0.25]])
    np.testing.assert_array_equal(np.asarray(flipped.w_out), [[0.0, -1.0], [-2.0, -3.0], [4.0, 5.0]])


def test_svd_model_reproduces_low_rank_target():
    n, d = 20, 8
    a_key, b_key = jax.random.split(jax.random.key(3))
    target = jax.random.normal(a_key, (n, d)) @ jax.random.normal(b_key, (d, n)) / np.sqrt(d)
    plain = baselines.svd_model(target, d, flip_signs=False)
    np.testing.assert_allclose(np.asarray(plain.w_in @ plain.w_out), np.asarray(target), atol=1e-5)
    flipped = baselines.svd_model(target, d)
    np.testing.assert_allclose(
        np.asarray(flipped.w_in @ flipped.w_out), np.asarray(plain.w_in @ plain.w_out), atol=1e-6
    )
    w_in = np.asarray(flipped.w_in)
    assert np.all(w_in[np.abs(w_in).argmax(axis=0), np.arange(d)] > 0)
    assert np.any(np.sign(w_in) != np.sign(np.asarray(plain.w_in)))  # some neuron was flipped


def test_svd_model_is_best_rank_d():
    target = baselines.target_map(mixing.asymmetric_gaussian(jax.random.key(4), 30), 0.2)
    model = baselines.svd_model(target, 10)
    singular = np.linalg.svd(np.asarray(target, np.float64), compute_uv=False)
    error = np.linalg.norm(np.asarray(target) - np.asarray(model.w_in @ model.w_out))
    assert error == pytest.approx(np.sqrt(np.sum(singular[10:] ** 2)), rel=1e-5)  # Eckart–Young


# --- NMF and semi-NMF ----------------------------------------------------------------


def test_nmf_recovers_nonnegative_low_rank():
    w_key, h_key = jax.random.split(jax.random.key(5))
    x = jax.random.uniform(w_key, (15, 3)) @ jax.random.uniform(h_key, (3, 12))
    w, h = baselines.nmf(x, 3, jax.random.key(6))
    assert w.shape == (15, 3) and h.shape == (3, 12)
    assert np.all(np.asarray(w) >= 0) and np.all(np.asarray(h) >= 0)
    assert float(jnp.linalg.norm(x - w @ h) / jnp.linalg.norm(x)) < 1e-2
    w2, _ = baselines.nmf(x, 3, jax.random.key(6))
    np.testing.assert_array_equal(np.asarray(w), np.asarray(w2))


def test_semi_nmf_small_case():
    n, rank = 12, 6
    target = baselines.target_map(mixing.asymmetric_gaussian(jax.random.key(7), n), 0.05)
    result = _semi_nmf(target, rank, jax.random.key(8))
    errors = np.asarray(result.errors)
    assert errors.shape == (500,)
    # Monotone: each V solve is exact least squares and each projected-gradient step
    # descends while step · λ_max(V V^T) < 2 (true here, ≤ 1.7). Only float32 rounding
    # (1–4 ulp rises near the plateau) is tolerated.
    assert np.max(np.diff(errors)) <= 1e-6 * errors[0]
    assert errors[-1] < errors[0] - 0.1
    # Near the unconstrained optimum: the top-rank SVD error is a lower bound.
    singular = np.linalg.svd(np.asarray(target, np.float64), compute_uv=False)
    svd_error = np.sqrt(np.sum(singular[rank:] ** 2))
    final = float(jnp.linalg.norm(target - result.u @ result.v))
    assert svd_error - 1e-5 <= final <= errors[-1] + 1e-6 and final < 1.01 * svd_error
    assert np.all(np.asarray(result.u) >= 1e-8)
    again = _semi_nmf(target, rank, jax.random.key(8))
    for a, b in zip(result, again, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    other = _semi_nmf(target, rank, jax.random.key(9))
    assert not np.array_equal(np.asarray(result.u), np.asarray(other.u))


def test_semi_nmf_of_identity_is_naive():
    # M = 0: the best rank-d fit of I has error sqrt(n − d), which is the naive 1/12.
    n, rank = 12, 6
    zeros = jnp.zeros((n, n), jnp.float32)
    model = _semi_nmf_model(zeros, 0.0, jax.random.key(0), d_mlp=rank)
    assert float(exactly_one_loss_per_feature(model, zeros)) == pytest.approx(1 / 12, abs=1e-5)


def test_semi_nmf_orientations():
    n, rank, scale = 12, 6, 0.05
    symmetric = mixing.symmetric_gaussian(jax.random.key(11), n)
    a = _semi_nmf_model(symmetric, scale, jax.random.key(0), d_mlp=rank)
    b = _semi_nmf_model(symmetric, scale, jax.random.key(0), d_mlp=rank, orientation="paper-code")
    assert np.all(np.asarray(a.w_in) >= 0)
    np.testing.assert_array_equal(np.asarray(a.w_in), np.asarray(b.w_in))  # T is the same matrix
    np.testing.assert_array_equal(np.asarray(a.w_out), np.asarray(b.w_out))

    asymmetric = mixing.asymmetric_gaussian(jax.random.key(12), n)
    losses = [
        float(
            exactly_one_loss_per_feature(
                _semi_nmf_model(asymmetric, scale, jax.random.key(0), d_mlp=rank, orientation=o), scale * asymmetric
            )
        )
        for o in baselines.ORIENTATIONS
    ]
    assert abs(losses[0] - losses[1]) > 1e-4, losses


def test_semi_nmf_paper_case():
    # Paper §5 / experiment 6: asymmetric M (n = 100, d = 50), σ = 0.01, code orientation,
    # published ≈0.0778. Measured with this code (500 outer iterations, 2000 NMF steps):
    # 0.0775–0.0778 over 4 mixing seeds × 4 NMF keys (faithful orientation: 0.0757–0.0760).
    scale = 0.01
    m = mixing.asymmetric_gaussian(jax.random.key(0), N)
    model = _semi_nmf_model(m, scale, jax.random.key(0), d_mlp=D_MLP, orientation="paper-code")
    loss = float(exactly_one_loss_per_feature(model, scale * m))
    assert loss < NAIVE - 0.003
    assert loss == pytest.approx(0.0778, abs=0.002)


# --- batches of baselines ------------------------------------------------------------


def test_target_maps_every_combination():
    m = np.asarray(jax.random.normal(jax.random.key(30), (2, 5, 5)), np.float32)
    scales = np.array([0.0, 0.3], np.float32)
    maps = np.asarray(baselines.target_maps(m, scales))
    assert maps.shape == (2, 2, len(baselines.ORIENTATIONS), 5, 5)
    for k in range(2):
        for s, scale in enumerate(scales):
            column_map = np.eye(5) + scale * m[k]
            np.testing.assert_allclose(maps[k, s, baselines.ORIENTATIONS.index("faithful")], column_map.T, rtol=1e-6)
            np.testing.assert_allclose(maps[k, s, baselines.ORIENTATIONS.index("paper-code")], column_map, rtol=1e-6)


def test_semi_nmf_models_batch_matches_one_at_a_time():
    n, rank, iterations = 8, 4, 10
    m = jnp.stack([mixing.asymmetric_gaussian(jax.random.key(31 + k), n) for k in range(2)])
    targets = baselines.target_maps(m, np.array([0.1], np.float32))  # (2 seeds, 1 scale, 2 orientations, n, n)
    keys = jnp.stack([jax.random.key(40), jax.random.key(41)])
    models = baselines.semi_nmf_models(targets, keys[:, None, None], rank, iterations)
    assert isinstance(models.w_in, np.ndarray) and models.w_in.shape == (2, 1, 2, n, rank)
    assert models.w_out.shape == (2, 1, 2, rank, n) and np.all(models.w_in >= 0)
    for k in range(2):
        for o in range(2):
            one = _semi_nmf(targets[k, 0, o], rank, keys[k], outer_iterations=iterations)
            np.testing.assert_allclose(models.w_in[k, 0, o], np.asarray(one.u), rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(models.w_out[k, 0, o], np.asarray(one.v), rtol=1e-4, atol=1e-4)


def test_svd_models_batch_matches_one_at_a_time():
    targets = jax.random.normal(jax.random.key(32), (2, 3, 6, 6))
    models = baselines.svd_models(targets, 3)
    assert models.w_in.shape == (2, 3, 6, 3) and models.w_out.shape == (2, 3, 3, 6)
    for index in np.ndindex(2, 3):
        one = baselines.svd_model(targets[index], 3)
        np.testing.assert_allclose(models.w_in[index], np.asarray(one.w_in), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(models.w_out[index], np.asarray(one.w_out), rtol=1e-5, atol=1e-6)


def test_factorisation_error_is_the_residual_norm():
    rng = np.random.default_rng(0)
    w_in, w_out = rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 2, 6))
    residual = rng.normal(size=(3, 6, 6))
    errors = baselines.factorisation_error(w_in @ w_out + residual, FeatureMLP(w_in=w_in, w_out=w_out))
    np.testing.assert_allclose(errors, [np.sqrt(np.sum(r**2)) for r in residual], rtol=1e-12)
    assert baselines.factorisation_error(w_in @ w_out, FeatureMLP(w_in=w_in, w_out=w_out)) == pytest.approx(0)


def test_exactly_one_losses_broadcasts_models_and_labels():
    naive = baselines.naive_model(N, D_MLP)
    scaled = np.stack([np.zeros((N, N)), 0.05 * np.asarray(mixing.asymmetric_gaussian(jax.random.key(33), N))])
    losses = baselines.exactly_one_losses(naive, scaled)  # one model, two label maps
    assert losses.shape == (2,) and losses.dtype == np.float64
    assert losses[0] == pytest.approx(NAIVE, rel=1e-6)
    assert losses[1] == pytest.approx(float(exactly_one_loss_per_feature(naive, jnp.asarray(scaled[1]))), rel=1e-6)
    models = jax.tree.map(lambda a, b: np.stack([a, b]), naive, baselines.zero_model(N, D_MLP))
    both = baselines.exactly_one_losses(models, scaled[0])  # two models, one label map
    np.testing.assert_allclose(both, [NAIVE, 1 / 6], rtol=1e-6)


def test_relative_weight_change():
    rng = np.random.default_rng(1)
    before = FeatureMLP(w_in=rng.normal(size=(3, 5, 2)), w_out=rng.normal(size=(3, 2, 5)))
    factor = np.array([1.0, 1.5, 0.25])
    after = jax.tree.map(lambda w: w * factor[:, None, None], before)
    np.testing.assert_allclose(baselines.relative_weight_change(before, after), np.abs(factor - 1), atol=1e-12)
    # Moving only W_out by d changes the pair by ||d|| / ||(W_in, W_out)||.
    shifted = FeatureMLP(w_in=before.w_in, w_out=before.w_out + 0.1)
    norms = np.sqrt(np.sum(before.w_in**2, axis=(1, 2)) + np.sum(before.w_out**2, axis=(1, 2)))
    np.testing.assert_allclose(baselines.relative_weight_change(before, shifted), 0.1 * np.sqrt(10) / norms)
