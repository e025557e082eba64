"""Mechanism analyses (ccjax.analysis) against models with known answers (paper §6.5, §6.8)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax import analysis, baselines
from ccjax.problem import FeatureMLP, forward, labels

N, D_MLP = 16, 6
SCALE = 0.3  # large enough that M and M^T give clearly different maps


def _asymmetric(seed=0, n=N) -> jnp.ndarray:
    return ccjax.problem.asymmetric_gaussian(jax.random.key(seed), n)


def _random_models(n_models=3, n=N, d=D_MLP) -> FeatureMLP:
    keys = jax.random.split(jax.random.key(1), n_models)
    return jax.vmap(lambda k: ccjax.init_feature_mlp(k, n, d))(keys)


def _with_linear_map(a) -> FeatureMLP:
    """A model with d_mlp = n whose linear_map is exactly ``a`` (w_in = I ≥ 0)."""
    a = jnp.asarray(a, jnp.float32)
    return FeatureMLP(w_in=jnp.eye(a.shape[0], dtype=jnp.float32), w_out=a.T)


def _top_eigen_model(scaled_mixing, k) -> FeatureMLP:
    """w_in = E_k, w_out = E_k^T: the model lives exactly in the top-k eigen-subspace."""
    top = analysis.eigenbasis(scaled_mixing).vectors[:, :k]
    return FeatureMLP(w_in=top, w_out=top.T)


# --- conventions ---------------------------------------------------------------------


def test_linear_map_is_the_response_to_positive_one_hot_inputs():
    eye = jnp.eye(N, dtype=jnp.float32)
    # Naive model: A = diag(1, ..., 1, 0, ..., 0).
    naive = baselines.naive_model(N, D_MLP)
    np.testing.assert_array_equal(np.asarray(analysis.linear_map(naive)), np.diag([1.0] * D_MLP + [0.0] * (N - D_MLP)))
    # Any model with W_in >= 0: column j of A is forward(e_j) (row j of the output).
    model = jax.tree.map(lambda leaf: leaf[0], _random_models(1))
    model = FeatureMLP(w_in=jnp.abs(model.w_in), w_out=model.w_out)
    np.testing.assert_allclose(
        np.asarray(analysis.linear_map(model)), np.asarray(forward(model, eye)).T, rtol=1e-6, atol=1e-6
    )
    # With negative input weights ReLU blocks some neurons and the two differ (the caveat).
    signed = jax.tree.map(lambda leaf: leaf[0], _random_models(1))
    assert not np.allclose(np.asarray(analysis.linear_map(signed)), np.asarray(forward(signed, eye)).T, atol=1e-3)


def test_column_target_is_the_label_map_in_column_convention():
    m = _asymmetric()
    target = analysis.column_target(SCALE * m)
    np.testing.assert_allclose(np.asarray(target), np.asarray(baselines.target_map(m, SCALE, "faithful")).T)
    np.testing.assert_allclose(np.asarray(target), np.asarray(baselines.target_map(m, SCALE, "paper-code")))
    # A model that fits the labels on non-negative inputs exactly has linear_map == target.
    exact = FeatureMLP(w_in=jnp.eye(N, dtype=jnp.float32), w_out=baselines.target_map(m, SCALE, "faithful"))
    np.testing.assert_allclose(np.asarray(analysis.linear_map(exact)), np.asarray(target), atol=1e-6)
    eye = jnp.eye(N, dtype=jnp.float32)
    np.testing.assert_allclose(np.asarray(forward(exact, eye)), np.asarray(labels(eye, m, SCALE)), atol=1e-6)


# --- eigenbasis and SVD basis --------------------------------------------------------


def test_eigenbasis_of_the_symmetric_part():
    m = SCALE * _asymmetric()
    values, vectors = (np.asarray(x) for x in analysis.eigenbasis(m))
    symmetric = 0.5 * (np.asarray(m) + np.asarray(m).T)
    assert np.all(np.diff(values) <= 0)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(symmetric)[::-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(N), atol=1e-5)
    np.testing.assert_allclose(symmetric @ vectors, vectors * values[None, :], atol=1e-5)
    # M and M^T have the same symmetric part, hence the same basis.
    np.testing.assert_allclose(np.asarray(analysis.eigenbasis(m.T).vectors), vectors, atol=1e-5)


def test_eigenvector_signs_are_deterministic():
    # M = Q diag(λ) Q^T with Q's columns given random signs: the basis must come back as Q
    # with every column's largest-|entry| positive, whatever signs Q had.
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(N, N)))
    values = np.linspace(2.0, -1.0, N)
    expected = q * np.sign(q[np.argmax(np.abs(q), axis=0), np.arange(N)])[None, :]
    for flips in np.random.default_rng(1).choice([-1.0, 1.0], size=(3, N)):
        signed = q * flips[None, :]
        basis = analysis.eigenbasis(jnp.asarray(signed @ np.diag(values) @ signed.T, jnp.float32))
        np.testing.assert_allclose(np.asarray(basis.values), values, atol=1e-5)
        np.testing.assert_allclose(np.asarray(basis.vectors), expected, atol=1e-4)
    largest = np.asarray(basis.vectors)[np.argmax(np.abs(np.asarray(basis.vectors)), axis=0), np.arange(N)]
    assert np.all(largest > 0)


def test_svd_basis_reconstructs_the_target():
    target = analysis.column_target(SCALE * _asymmetric())
    left, values, right = (np.asarray(x) for x in analysis.svd_basis(target))
    np.testing.assert_allclose(left @ np.diag(values) @ right.T, np.asarray(target), atol=1e-5)
    assert np.all(np.diff(values) <= 0)
    assert np.all(left[np.argmax(np.abs(left), axis=0), np.arange(N)] > 0)


# --- alignment, projections and subspace share --------------------------------------


def test_top_eigen_model_is_aligned_exactly():
    m = SCALE * _asymmetric()
    params = _top_eigen_model(m, D_MLP)
    cos = np.asarray(analysis.eigen_alignment(params, m))
    np.testing.assert_allclose(cos[:D_MLP], 1.0, atol=1e-5)
    np.testing.assert_allclose(cos[D_MLP:], 0.0, atol=1e-4)

    projections = analysis.eigen_projections(params, m)
    identity_block = np.eye(N, D_MLP)
    np.testing.assert_allclose(np.asarray(projections.w_in), identity_block, atol=1e-5)
    np.testing.assert_allclose(np.asarray(projections.w_out), identity_block, atol=1e-5)

    share = analysis.subspace_share(params, m)  # k defaults to d_mlp
    np.testing.assert_allclose([float(share.w_in), float(share.w_out)], 1.0, atol=1e-5)
    fewer = analysis.subspace_share(params, m, D_MLP - 2)
    np.testing.assert_allclose([float(fewer.w_in), float(fewer.w_out)], (D_MLP - 2) / D_MLP, atol=1e-5)
    # k may be traced: vmap over it.
    ks = jnp.arange(N + 1)
    shares = jax.vmap(lambda k: analysis.subspace_share(params, m, k))(ks)
    np.testing.assert_allclose(np.asarray(shares.w_in), np.minimum(np.arange(N + 1), D_MLP) / D_MLP, atol=1e-5)


def test_bottom_eigen_model_is_not_aligned():
    m = SCALE * _asymmetric()
    bottom = analysis.eigenbasis(m).vectors[:, N - D_MLP :]
    params = FeatureMLP(w_in=bottom, w_out=bottom.T)
    cos = np.asarray(analysis.eigen_alignment(params, m))
    np.testing.assert_allclose(cos[: N - D_MLP], 0.0, atol=1e-4)
    np.testing.assert_allclose(cos[N - D_MLP :], 1.0, atol=1e-5)
    share = analysis.subspace_share(params, m, N - D_MLP)
    np.testing.assert_allclose([float(share.w_in), float(share.w_out)], 0.0, atol=1e-5)


def test_eigen_projections_entries():
    m = SCALE * _asymmetric()
    params = jax.tree.map(lambda leaf: leaf[0], _random_models(1))
    vectors = np.asarray(analysis.eigenbasis(m).vectors)
    projections = analysis.eigen_projections(params, m)
    w_in, w_out = np.asarray(params.w_in), np.asarray(params.w_out)
    i, h = 3, 2
    np.testing.assert_allclose(float(projections.w_in[i, h]), vectors[:, i] @ w_in[:, h], rtol=1e-5)
    np.testing.assert_allclose(float(projections.w_out[i, h]), vectors[:, i] @ w_out[h, :], rtol=1e-5)
    # E is orthonormal, so the projections keep each neuron's norm.
    np.testing.assert_allclose((np.asarray(projections.w_in) ** 2).sum(0), (w_in**2).sum(0), rtol=1e-5)
    np.testing.assert_allclose((np.asarray(projections.w_out) ** 2).sum(0), (w_out**2).sum(1), rtol=1e-5)


def test_svd_alignment_of_the_svd_baseline():
    m = _asymmetric()
    target = analysis.column_target(SCALE * m)
    faithful = baselines.svd_model(baselines.target_map(m, SCALE, "faithful"), D_MLP)
    cos = np.asarray(analysis.svd_alignment(faithful, target))
    np.testing.assert_allclose(cos[:D_MLP], 1.0, atol=1e-5)
    np.testing.assert_allclose(cos[D_MLP:], 0.0, atol=1e-4)
    # A model with A = T exactly is aligned in every direction.
    np.testing.assert_allclose(np.asarray(analysis.svd_alignment(_with_linear_map(target), target)), 1.0, atol=1e-5)
    # The transposed (paper-code) factorisation fits T^T instead: clearly misaligned for asymmetric M.
    transposed = baselines.svd_model(baselines.target_map(m, SCALE, "paper-code"), D_MLP)
    assert np.min(np.asarray(analysis.svd_alignment(transposed, target))[:D_MLP]) < 0.9


# --- entry correlation --------------------------------------------------------------


def test_entry_correlation_recovers_constructed_fits():
    m = SCALE * _asymmetric()
    c, a, b = 1.86, 3.38, 0.62
    diagonal = np.diag(np.asarray(m))
    constructed = c * np.asarray(m) * (1.0 - np.eye(N)) + np.diag(a * diagonal + b)
    fit = analysis.entry_correlation(_with_linear_map(constructed), m)
    np.testing.assert_allclose([float(x) for x in fit], [c, a, b], rtol=1e-4)
    # A = c sM exactly: slope c on and off the diagonal, intercept 0.
    fit = analysis.entry_correlation(_with_linear_map(c * m), m)
    np.testing.assert_allclose([float(x) for x in fit], [c, c, 0.0], rtol=1e-4, atol=1e-5)
    # The transpose of sM is not correlated with it: the orientation matters.
    assert abs(float(analysis.entry_correlation(_with_linear_map(c * m.T), m).off_diagonal_slope)) < 0.5


def test_entry_correlation_matches_numpy_least_squares():
    m = SCALE * _asymmetric()
    params = jax.tree.map(lambda leaf: leaf[0], _random_models(1))
    a, x = np.asarray(analysis.linear_map(params), np.float64), np.asarray(m, np.float64)
    off = ~np.eye(N, dtype=bool)
    slope, intercept = np.polyfit(np.diag(x), np.diag(a), 1)
    fit = analysis.entry_correlation(params, m)
    np.testing.assert_allclose(float(fit.off_diagonal_slope), (a[off] @ x[off]) / (x[off] @ x[off]), rtol=1e-4)
    diagonal = [float(fit.diagonal_slope), float(fit.diagonal_intercept)]
    np.testing.assert_allclose(diagonal, [slope, intercept], rtol=1e-4)


def test_entry_correlation_degenerate_diagonal():
    # The embedding M has an exactly zero diagonal: the diagonal slope is undetermined.
    m, _ = ccjax.make_mixing("embedding", jax.random.key(0), N, 40)
    params = jax.tree.map(lambda leaf: leaf[0], _random_models(1))
    fit = analysis.entry_correlation(params, m)
    assert np.isfinite(float(fit.off_diagonal_slope))
    assert np.isnan(float(fit.diagonal_slope))
    np.testing.assert_allclose(float(fit.diagonal_intercept), np.mean(np.diag(np.asarray(analysis.linear_map(params)))))
    # A constant diagonal up to rounding counts as degenerate too, not as a huge slope.
    constant = m + 0.1 * jnp.eye(N, dtype=jnp.float32)
    assert np.isnan(float(analysis.entry_correlation(params, constant).diagonal_slope))
    # Clean labels (M = 0): both slopes are nan, never inf.
    clean = analysis.entry_correlation(params, jnp.zeros((N, N), jnp.float32))
    assert np.isnan(float(clean.off_diagonal_slope)) and np.isnan(float(clean.diagonal_slope))
    assert np.isfinite(float(clean.diagonal_intercept))


# --- effective rank -----------------------------------------------------------------


def test_effective_rank_known_values():
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(float(analysis.effective_rank(jnp.eye(N, dtype=jnp.float32))), N, rtol=1e-5)
    u, v = rng.normal(size=(N, 1)), rng.normal(size=(1, N))
    np.testing.assert_allclose(float(analysis.effective_rank(jnp.asarray(u @ v, jnp.float32))), 1.0, rtol=1e-4)
    q1, _ = np.linalg.qr(rng.normal(size=(N, N)))
    q2, _ = np.linalg.qr(rng.normal(size=(N, N)))
    for r in (2, 5, N):
        equal = q1[:, :r] @ (3.0 * q2[:, :r].T)
        np.testing.assert_allclose(float(analysis.effective_rank(jnp.asarray(equal, jnp.float32))), r, rtol=1e-4)
    # Unequal singular values give a rank between 1 and the true rank.
    uneven = float(analysis.effective_rank(jnp.asarray(q1 @ np.diag(np.geomspace(1.0, 1e-3, N)) @ q2.T, jnp.float32)))
    assert 1.0 < uneven < N
    assert np.isnan(float(analysis.effective_rank(jnp.zeros((N, N), jnp.float32))))


# --- vmap, jit and baselines ---------------------------------------------------------

ANALYSES = {
    "linear_map": lambda params, m: analysis.linear_map(params),
    "eigen_alignment": analysis.eigen_alignment,
    "svd_alignment": lambda params, m: analysis.svd_alignment(params, analysis.column_target(m)),
    "eigen_projections": analysis.eigen_projections,
    "subspace_share": analysis.subspace_share,
    "entry_correlation": analysis.entry_correlation,
    "effective_rank": lambda params, m: analysis.effective_rank(analysis.linear_map(params)),
}


@pytest.mark.parametrize("name", list(ANALYSES))
def test_vmap_over_models_equals_a_loop(name):
    function = ANALYSES[name]
    stacked = _random_models(3)
    m = SCALE * _asymmetric()
    batched = jax.jit(jax.vmap(function, in_axes=(0, None)))(stacked, m)
    for k in range(3):
        single = function(jax.tree.map(lambda leaf, k=k: leaf[k], stacked), m)
        jax.tree.map(
            lambda b, s, k=k: np.testing.assert_allclose(np.asarray(b)[k], np.asarray(s), rtol=1e-5, atol=1e-6),
            batched,
            single,
        )


def test_vmap_over_mixing_matrices():
    m = SCALE * jnp.stack([_asymmetric(seed) for seed in range(3)])
    models = jax.vmap(lambda mk: _top_eigen_model(mk, D_MLP))(m)
    cos = np.asarray(jax.vmap(analysis.eigen_alignment)(models, m))
    np.testing.assert_allclose(cos[:, :D_MLP], 1.0, atol=1e-5)


def test_baselines_give_finite_answers():
    m = SCALE * _asymmetric()
    zero = baselines.zero_model(N, D_MLP)
    for name, function in ANALYSES.items():
        if name == "effective_rank":
            continue  # 0/0 for the zero matrix: nan, documented
        for leaf in jax.tree.leaves(function(zero, m)):
            np.testing.assert_array_equal(np.asarray(leaf), 0.0, err_msg=name)

    naive = baselines.naive_model(N, D_MLP)
    for name, function in ANALYSES.items():
        for leaf in jax.tree.leaves(function(naive, m)):
            assert np.all(np.isfinite(np.asarray(leaf))), name
    np.testing.assert_allclose(float(analysis.effective_rank(analysis.linear_map(naive))), D_MLP, rtol=1e-5)
    # The naive model's A = diag(1, ..., 0, ...): off-diagonal slope 0, and the diagonal
    # fit passes through the means, mean(diag A) = d/n.
    fit = analysis.entry_correlation(naive, m)
    np.testing.assert_allclose(float(fit.off_diagonal_slope), 0.0, atol=1e-6)
    mean_x = float(np.mean(np.diag(np.asarray(m))))
    np.testing.assert_allclose(float(fit.diagonal_slope) * mean_x + float(fit.diagonal_intercept), D_MLP / N, rtol=1e-5)


def test_alignment_bundles_the_single_analyses():
    models, m = _random_models(2), SCALE * _asymmetric()
    bundled = jax.vmap(analysis.alignment, in_axes=(0, None))(models, m)
    params = jax.tree.map(lambda leaf: leaf[1], models)
    projection, share = analysis.eigen_projections(params, m), analysis.subspace_share(params, m)
    fit, linear = analysis.entry_correlation(params, m), analysis.linear_map(params)
    expected = {
        "eigenvalues": analysis.eigenbasis(m).values,
        "eigen_cos": analysis.eigen_alignment(params, m),
        "svd_cos": ANALYSES["svd_alignment"](params, m),
        "projection_in": projection.w_in,
        "projection_out": projection.w_out,
        "share_in": share.w_in,
        "share_out": share.w_out,
        **fit._asdict(),
        "effective_rank": analysis.effective_rank(linear),
        "linear_map": linear,
    }
    assert list(bundled._fields) == list(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(bundled, name)[1], value, rtol=1e-5, atol=1e-6, err_msg=name)


# --- rank trend (§6.8) ---------------------------------------------------------------


def test_spearman_correlation_of_monotone_and_reversed_data():
    x = np.array([1.0, 2.0, 5.0, 10.0])
    assert analysis.spearman_correlation(x, np.exp(x)) == pytest.approx(1.0)  # any increasing map
    assert analysis.spearman_correlation(x, -(x**3)) == pytest.approx(-1.0)
    assert np.isnan(analysis.spearman_correlation(x[:1], x[:1]))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=20), rng.normal(size=20)
    rank_a, rank_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))  # Pearson of the ranks, by hand
    centred_a, centred_b = rank_a - rank_a.mean(), rank_b - rank_b.mean()
    pearson = np.sum(centred_a * centred_b) / np.sqrt(np.sum(centred_a**2) * np.sum(centred_b**2))
    assert analysis.spearman_correlation(a, b) == pytest.approx(pearson)


def test_rank_trend_recovers_known_slopes():
    ranks = np.array([1, 5, 20, 100])
    effective = np.stack([ranks * 1.0, ranks * 1.1, ranks * 0.9])  # (seeds, ranks)
    slopes = np.array([0.01, 0.02, 0.03])
    loss = 0.05 + slopes[:, None] * np.log(effective) + np.array([0.0, 1e-3, -1e-3])[:, None]
    trend = analysis.rank_trend(ranks, effective, loss)
    assert trend.slope == pytest.approx(0.02) and trend.slope_sem == pytest.approx(0.01 / np.sqrt(3))
    assert trend.spearman == pytest.approx(1.0) and trend.spearman_sem == pytest.approx(0.0)
    assert (trend.rises, trend.steps, trend.seeds_with_positive_slope, trend.n_seeds) == (3, 3, 3, 3)
    falling = analysis.rank_trend(ranks, effective, -loss)
    assert falling.slope == pytest.approx(-0.02) and falling.rises == 0 and falling.seeds_with_positive_slope == 0
    one_seed = analysis.rank_trend(ranks, effective[:1], loss[:1])
    assert one_seed.slope == pytest.approx(0.01) and np.isnan(one_seed.slope_sem) and one_seed.n_seeds == 1
    assert analysis.rank_trend(ranks[:1], effective[:, :1], loss[:, :1]) is None


def test_settled_ratio_reads_the_half_way_log():
    steps = np.array([10, 20, 30, 40, 50, 60])  # half of 60 is 30: the third log
    history = np.stack([np.linspace(1.0, 6.0, 6), np.full(6, 2.0)])
    np.testing.assert_allclose(analysis.settled_ratio(steps, history), [3.0 / 6.0, 1.0])
    assert analysis.settled_ratio(steps, history[0]) == pytest.approx(0.5)
    assert np.isnan(analysis.settled_ratio(steps[:1], history[:, :1])).all()


def test_relative_to_final_divides_by_the_last_log():
    history = np.array([[1.0, 2.0, 4.0], [3.0, 3.0, 0.0]], np.float32)
    relative = analysis.relative_to_final(history)
    assert relative.dtype == np.float64
    np.testing.assert_array_equal(relative[0], [0.25, 0.5, 1.0])
    assert np.isinf(relative[1, :2]).all() and np.isnan(relative[1, 2])
