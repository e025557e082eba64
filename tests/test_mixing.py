"""Mixing matrices M (docs/paper.md §2–3)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax


@pytest.fixture(scope="module")
def paper_embedding():
    """W_E and M = I - W_E W_E^T at the paper's sizes (n = 100, d_embed = 1000)."""
    w_e = ccjax.problem.embedding(jax.random.key(0), 100, 1000)
    return np.asarray(w_e), np.asarray(ccjax.problem.embedding_mixing(w_e))


def _off_diagonal(m):
    return m[~np.eye(m.shape[0], dtype=bool)]


def test_embedding_rows_unit_norm(paper_embedding):
    w_e, _ = paper_embedding
    assert w_e.shape == (100, 1000)
    np.testing.assert_allclose(np.linalg.norm(w_e, axis=1), 1.0, rtol=1e-5)


def test_embedding_mixing_is_faithful_sign(paper_embedding):
    w_e, m = paper_embedding
    gram = w_e.astype(np.float64) @ w_e.T.astype(np.float64)
    expected = np.eye(100) - gram
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(m, expected, atol=1e-6)


def test_embedding_mixing_zero_diagonal_and_symmetric(paper_embedding):
    _, m = paper_embedding
    assert np.all(np.diag(m) == 0.0)
    np.testing.assert_allclose(m, m.T, atol=1e-6)


def test_embedding_mixing_off_diagonal_std(paper_embedding):
    _, m = paper_embedding
    off = _off_diagonal(m)
    # Inner product of two independent random unit vectors in R^d: mean 0, var 1/d,
    # so std ≈ 1/sqrt(1000) = 0.0316 (paper §2: "≈ 0.031"). 4950 distinct pairs give a
    # relative standard error of about sqrt(2/4950) = 2%; allow 10%.
    assert abs(off.mean()) < 5 * (1 / math.sqrt(1000)) / math.sqrt(4950)
    assert off.std() == pytest.approx(1 / math.sqrt(1000), rel=0.1)


def test_embedding_mixing_eigenvalue_range(paper_embedding):
    _, m = paper_embedding
    eig = np.linalg.eigvalsh(m.astype(np.float64))
    # Marchenko–Pastur with ratio n/d = 0.1: eigenvalues of W_E W_E^T lie in
    # [(1 - sqrt(.1))^2, (1 + sqrt(.1))^2] = [0.468, 1.732], so those of I - W_E W_E^T lie
    # in about [-0.73, 0.53] (paper §2: "about [-0.7, 0.5]"); finite n blurs the edges.
    assert -0.9 < eig.min() < -0.55
    assert 0.35 < eig.max() < 0.65
    assert abs(eig.sum()) < 1e-4  # trace = 0 (zero diagonal)


def test_code_sign_is_exact_negative():
    w_e = ccjax.problem.embedding(jax.random.key(1), 30, 200)
    faithful = np.asarray(ccjax.problem.embedding_mixing(w_e))
    code = np.asarray(ccjax.problem.embedding_mixing(w_e, code_sign=True))
    np.testing.assert_array_equal(code, -faithful)
    assert np.any(faithful != 0)
    key = jax.random.key(2)
    m_faithful, w1 = ccjax.make_mixing("embedding", key, 30, 200)
    m_code, w2 = ccjax.make_mixing("embedding-code-sign", key, 30, 200)
    np.testing.assert_array_equal(np.asarray(w1), np.asarray(w2))
    np.testing.assert_array_equal(np.asarray(m_code), -np.asarray(m_faithful))


def test_symmetric_gaussian():
    m = np.asarray(ccjax.problem.symmetric_gaussian(jax.random.key(0), 100))
    np.testing.assert_array_equal(m, m.T)
    # The upper triangle (diagonal included) is i.i.d. N(0, 1): 5050 draws.
    upper = m[np.triu_indices(100)]
    assert abs(upper.mean()) < 5 / math.sqrt(upper.size)
    assert upper.std() == pytest.approx(1.0, rel=0.05)
    assert np.all(np.diag(m) != 0)  # the diagonal is drawn, not zeroed


def test_asymmetric_gaussian():
    m = np.asarray(ccjax.problem.asymmetric_gaussian(jax.random.key(0), 100))
    assert m.shape == (100, 100)
    assert abs(m.mean()) < 5 / 100
    assert m.std() == pytest.approx(1.0, rel=0.05)
    # Independent entries: M and M^T are uncorrelated off the diagonal.
    off = ~np.eye(100, dtype=bool)
    assert abs(np.corrcoef(m[off], m.T[off])[0, 1]) < 0.1


@pytest.mark.parametrize("rank", [1, 5, 20])
def test_low_rank_has_rank(rank):
    m = np.asarray(ccjax.problem.low_rank(jax.random.key(rank), 40, rank), np.float64)
    s = np.linalg.svd(m, compute_uv=False)
    assert np.all(s[:rank] > 1e-3 * s[0])
    assert np.all(s[rank:] < 1e-4 * s[0])
    assert np.linalg.matrix_rank(m, tol=1e-4 * s[0]) == rank


@pytest.mark.parametrize("rank", [1, 5, 20])
def test_low_rank_flat_spectrum(rank):
    m = np.asarray(ccjax.problem.low_rank(jax.random.key(rank), 40, rank, flat_spectrum=True), np.float64)
    s = np.linalg.svd(m, compute_uv=False)
    # U V^T with orthonormal columns: exactly ``rank`` singular values, all equal to 1.
    np.testing.assert_allclose(s[:rank], 1.0, atol=1e-5)
    np.testing.assert_allclose(s[rank:], 0.0, atol=1e-5)


def test_make_mixing_families():
    key = jax.random.key(7)
    n, d = 12, 40
    zero, w_e = ccjax.make_mixing("none", key, n, d)
    assert np.all(np.asarray(zero) == 0) and zero.shape == (n, n)
    assert w_e.shape == (n, d)
    for name in ccjax.MIXING_NAMES:
        m, w = ccjax.make_mixing(name, key, n, d, rank=3)
        assert m.shape == (n, n) and w.shape == (n, d)
        # W_E is drawn from the same key for every family.
        np.testing.assert_array_equal(np.asarray(w), np.asarray(w_e))
    sym, _ = ccjax.make_mixing("symmetric", key, n, d)
    np.testing.assert_array_equal(np.asarray(sym), np.asarray(sym).T)
    asym, _ = ccjax.make_mixing("asymmetric", key, n, d)
    assert not np.allclose(np.asarray(asym), np.asarray(asym).T)
    emb, _ = ccjax.make_mixing("embedding", key, n, d)
    np.testing.assert_allclose(np.asarray(emb), np.asarray(ccjax.problem.embedding_mixing(w_e)))


def test_make_mixing_by_traced_index_and_rank():
    # Sweeps pass the family as its (traced) index and the rank as a traced integer.
    key, n, d = jax.random.key(3), 16, 30
    by_index = jax.jit(lambda index, rank: ccjax.make_mixing(index, key, n, d, rank)[0])
    for index, name in enumerate(ccjax.MIXING_NAMES):
        named, _ = ccjax.make_mixing(name, key, n, d, rank=5)
        # (jit may fuse the embedding's normalisation differently: float32 rounding only)
        np.testing.assert_allclose(np.asarray(by_index(index, 5)), np.asarray(named), atol=1e-6)
    ranks = jnp.arange(1, 5)
    stacked = jax.vmap(lambda r: ccjax.problem.low_rank(key, n, r, flat_spectrum=True))(ranks)
    for rank, m in zip(ranks.tolist(), np.asarray(stacked, np.float64), strict=True):
        np.testing.assert_allclose(np.linalg.svd(m, compute_uv=False)[:rank], 1.0, atol=1e-5)
        np.testing.assert_allclose(m, np.asarray(ccjax.problem.low_rank(key, n, rank, flat_spectrum=True)), atol=1e-6)


def test_make_mixing_low_rank_needs_a_rank():
    with pytest.raises(ValueError, match="needs a rank"):
        ccjax.make_mixing("low-rank", jax.random.key(0), 10, 20)


def test_make_mixing_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown mixing 'gaussian'") as info:
        ccjax.make_mixing("gaussian", jax.random.key(0), 10, 20)
    for name in ccjax.MIXING_NAMES:
        assert name in str(info.value)


def test_every_family_is_one_record_of_the_registry():
    """Issue 13, design item 2: the registry holds each family's builder, formula, labels and
    rank need, and make_mixing (by name or by traced index) draws M through that record."""
    assert ccjax.MIXING_NAMES == tuple(ccjax.MIXING_FAMILIES)
    key, n, d = jax.random.key(5), 12, 30
    w_e = ccjax.problem.embedding(jax.random.split(key)[0], n, d)
    for name, family in ccjax.MIXING_FAMILIES.items():
        assert family.name == name and family.formula and family.label and family.short_label
        m, _ = ccjax.make_mixing(name, key, n, d, rank=4)
        np.testing.assert_array_equal(np.asarray(m), np.asarray(family.build(jax.random.split(key)[1], w_e, 4)))
        if family.needs_rank:
            with pytest.raises(ValueError, match="needs a rank"):
                ccjax.make_mixing(name, key, n, d)
            index = ccjax.MIXING_NAMES.index(name)
            with pytest.raises(ValueError, match=f"'{name}' \\(index {index}\\) needs a rank"):
                ccjax.make_mixing(index, key, n, d)  # by a concrete index too (it used rank n)
        else:
            ccjax.make_mixing(name, key, n, d)
    for field in ("label", "short_label", "formula"):  # no two families read alike
        values = [getattr(family, field) for family in ccjax.MIXING_FAMILIES.values()]
        assert len(set(values)) == len(values), field
    with pytest.raises(TypeError):
        ccjax.MIXING_FAMILIES["new"] = ccjax.MIXING_FAMILIES["none"]  # a family is added in the source
