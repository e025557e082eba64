"""Property-based (hypothesis) tests of the samplers (ccjax.data) and mixing builders (ccjax.mixing).

These complement test_data.py and test_mixing.py (statistics, fixed-size checks) with
properties over arbitrary small shapes, probabilities, capacities, ranks and keys:

* determinism: the same key and arguments give bitwise-identical outputs (and jit
  agrees with eager execution where the program is the same);
* batch independence (issue 5): a model's draws do not depend on how many models share a
  call, i.e. ``jax.vmap`` over a stack of keys (and per-model ``p``, family, rank) gives
  each model what a call of its own gives;
* shapes, dtypes and the documented invariants of each sampler and mixing family.

XLA compiles once per static shape, so shapes are drawn from small fixed sets. Every test
is ``derandomize``d: a few assertions (e.g. "exactly k non-zeros per row") fail if a
U[-1, 1] draw is exactly 0.0 (probability about 2^-23 per entry), and a fixed example set
keeps such an event, and the compile count, the same from run to run.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

import ccjax
from ccjax.problem import default_capacity

SETTINGS = settings(max_examples=4, deadline=None, derandomize=True)

# (batch_size, n_features): a single position, one row, a few odd sizes, the largest.
SPARSE_SHAPES = [(1, 1), (1, 40), (17, 3), (64, 12)]
# Capacities below, at and above batch_size * n_features for the shapes above.
CAPACITIES = [1, 7, 40, 800]
# (n_features, d_embed): d_embed below, equal to and above n_features.
MIXING_SHAPES = [(1, 1), (6, 6), (12, 40), (40, 7)]
STACK_SIZES = [1, 3, 8]

seeds = st.integers(0, 2**31 - 1)
# p in (0, 1]: mostly moderate, plus the endpoints' neighbourhoods (float32-normal only).
probabilities = st.one_of(st.floats(1e-3, 1.0), st.sampled_from([1e-30, 1e-6, 1.0]))


def _np(tree):
    """Every leaf as NumPy (PRNG keys as their raw key data), for bitwise comparison."""

    def leaf(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(leaf, tree)


def _assert_trees_equal(a, b):
    a, b = _np(a), _np(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


def _index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _stack_keys(seed, n):
    return jax.random.split(jax.random.key(seed), n)


# ---------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------


def _draw(key, p, batch_size, n_features, capacity):
    batch = ccjax.sample_sparse(key, batch_size, n_features, p, capacity)
    return (
        batch,
        ccjax.problem.to_dense(batch, batch_size, n_features),
        ccjax.problem.entries_to_dense(batch, batch_size, n_features),
    )


_draw_one = jax.jit(_draw, static_argnums=(2, 3, 4))


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _draw_many(keys, ps, batch_size, n_features, capacity):
    return jax.vmap(lambda key, p: _draw(key, p, batch_size, n_features, capacity))(keys, ps)


@SETTINGS
@given(shape=st.sampled_from(SPARSE_SHAPES), capacity=st.sampled_from(CAPACITIES), p=probabilities, seed=seeds)
def test_sparse_batch_invariants_at_any_capacity(shape, capacity, p, seed):
    batch_size, n_features = shape
    total = batch_size * n_features
    batch, dense, entries = _np(_draw_one(jax.random.key(seed), jnp.float32(p), batch_size, n_features, capacity))
    # Shapes and dtypes depend only on the capacity and the batch shape.
    assert batch.rows.shape == batch.features.shape == batch.values.shape == (capacity,)
    assert batch.rows.dtype == batch.features.dtype == np.int32 and batch.values.dtype == np.float32
    assert batch.overflow.shape == batch.tail_start.shape == batch.p.shape == ()
    assert batch.overflow.dtype == np.bool_ and batch.tail_start.dtype == np.int32
    assert batch.p == np.float32(p)
    assert dense.shape == entries.shape == (batch_size, n_features) and dense.dtype == np.float32
    # Valid entries first, at strictly increasing flat positions; canonical padding.
    valid = batch.rows < batch_size
    n_valid = int(valid.sum())
    assert np.all(valid[:n_valid]) and not np.any(valid[n_valid:])
    assert np.all(batch.rows >= 0) and np.all(np.diff(batch.rows) >= 0)
    assert np.all((batch.features >= 0) & (batch.features < n_features))
    flat = batch.rows[valid].astype(np.int64) * n_features + batch.features[valid]
    assert np.all(np.diff(flat) > 0)
    assert np.all(batch.rows[~valid] == batch_size)
    assert np.all(batch.features[~valid] == 0) and np.all(batch.values[~valid] == 0)
    assert np.all(np.abs(batch.values) <= 1.0) and np.all(np.abs(dense) <= 1.0)
    # Overflow means every slot holds an entry and positions remain after the last one.
    if batch.overflow:
        assert n_valid == capacity < total
        assert flat[-1] < total - 1 and batch.tail_start == flat[-1] + 1
    else:
        assert batch.tail_start == total
    if capacity >= total:  # room for every position: the entries are always complete
        assert not batch.overflow
    # The entries scatter to exactly what they say, and to_dense keeps every one of them.
    np.testing.assert_array_equal(entries[batch.rows[valid], batch.features[valid]], batch.values[valid])
    assert np.count_nonzero(entries) == np.count_nonzero(batch.values)
    np.testing.assert_array_equal(dense[batch.rows[valid], batch.features[valid]], batch.values[valid])
    head = int(batch.tail_start)
    np.testing.assert_array_equal(dense.ravel()[:head], entries.ravel()[:head])
    if not batch.overflow:  # no overflow: the entries describe the whole batch
        np.testing.assert_array_equal(dense, entries)


@settings(max_examples=3, deadline=None, derandomize=True)
@given(shape=st.just(SPARSE_SHAPES[2]), capacity=st.just(40), p=probabilities, seed=seeds)
def test_sparse_sampler_is_deterministic_and_jit_matches_eager(shape, capacity, p, seed):
    batch_size, n_features = shape
    key, p32 = jax.random.key(seed), jnp.float32(p)
    jitted = _draw_one(key, p32, batch_size, n_features, capacity)
    _assert_trees_equal(jitted, _draw_one(key, p32, batch_size, n_features, capacity))
    # Eager (op-by-op) execution runs the same elementwise ops and scans: bitwise equal.
    _assert_trees_equal(jitted, _draw(key, p32, batch_size, n_features, capacity))
    dense = ccjax.sample_inputs(key, batch_size, n_features, p32, capacity)
    np.testing.assert_array_equal(np.asarray(dense), _np(jitted[1]))


@SETTINGS
@given(
    shape=st.sampled_from(SPARSE_SHAPES),
    capacity=st.sampled_from(CAPACITIES[:3]),
    n_models=st.sampled_from(STACK_SIZES),
    ps=st.lists(probabilities, min_size=8, max_size=8),
    seed=seeds,
)
def test_sparse_draws_do_not_depend_on_how_many_models_share_a_call(shape, capacity, n_models, ps, seed):
    # Each model has its own key and its own (traced) p; small capacities make some of
    # them overflow and some not, so vmap's select over the lax.cond in to_dense is hit.
    # Everything is elementwise, a scan along each model or a per-model RNG: bitwise.
    batch_size, n_features = shape
    keys, ps = _stack_keys(seed, n_models), jnp.asarray(ps[:n_models], jnp.float32)
    many = _draw_many(keys, ps, batch_size, n_features, capacity)
    assert many[1].shape == (n_models, batch_size, n_features)
    for i in range(n_models):
        _assert_trees_equal(_index(many, i), _draw_one(keys[i], ps[i], batch_size, n_features, capacity))


@pytest.mark.skipif(
    not jax.config.jax_threefry_partitionable,
    reason="needs counter-based random bits (a shape-(c,) draw is a prefix of a shape-(C,) one)",
)
@SETTINGS
@given(
    shape=st.sampled_from(SPARSE_SHAPES),
    capacities=st.lists(st.sampled_from(CAPACITIES), min_size=2, max_size=2, unique=True),
    p=probabilities,
    seed=seeds,
)
def test_capacity_changes_only_what_follows_the_entries(shape, capacities, p, seed):
    # Not a documented contract but what makes "capacity trades speed only" hold per
    # sample (with jax's default partitionable threefry): the gaps and values are drawn
    # slot by slot, so a smaller capacity keeps a prefix of a larger capacity's entries,
    # the dense batches agree before the smaller one's tail, and agree entirely when
    # the smaller one does not overflow.
    batch_size, n_features = shape
    small, large = sorted(capacities)
    key, p32 = jax.random.key(seed), jnp.float32(p)
    b_small, d_small, _ = _np(_draw_one(key, p32, batch_size, n_features, small))
    b_large, d_large, _ = _np(_draw_one(key, p32, batch_size, n_features, large))
    n_small = int((b_small.rows < batch_size).sum())
    n_large = int((b_large.rows < batch_size).sum())
    assert n_small == min(small, n_large)
    for field in ("rows", "features", "values"):
        np.testing.assert_array_equal(getattr(b_small, field)[:n_small], getattr(b_large, field)[:n_small])
    assert b_small.tail_start <= b_large.tail_start
    head = int(b_small.tail_start)
    np.testing.assert_array_equal(d_small.ravel()[:head], d_large.ravel()[:head])
    if not b_small.overflow:
        # Complete at the smaller capacity: a larger one finds the same entries only.
        assert not b_large.overflow and n_large == n_small
        np.testing.assert_array_equal(d_small, d_large)


_sample_inputs = jax.jit(ccjax.sample_inputs, static_argnums=(1, 2, 3, 4))


@settings(max_examples=5, deadline=None, derandomize=True)
@given(shape=st.sampled_from(SPARSE_SHAPES), p=st.sampled_from([1e-3, 0.05, 1.0]), seed=seeds)
def test_sample_inputs_default_capacity_is_the_sparse_pipeline(shape, p, seed):
    # (p is static here: the default capacity is computed from it on the host.)
    batch_size, n_features = shape
    key = jax.random.key(seed)
    x = np.asarray(_sample_inputs(key, batch_size, n_features, p, None))
    assert x.shape == (batch_size, n_features) and x.dtype == np.float32
    assert np.all(np.abs(x) <= 1.0)
    np.testing.assert_array_equal(x, np.asarray(_sample_inputs(key, batch_size, n_features, p, None)))
    capacity = default_capacity(batch_size, n_features, p)
    _, dense, _ = _draw_one(key, jnp.float32(p), batch_size, n_features, capacity)
    np.testing.assert_array_equal(x, np.asarray(dense))


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    batch_size=st.integers(1, 1 << 14),
    n_features=st.integers(1, 1000),
    p=st.floats(1e-6, 1.0),
    q=st.floats(1e-6, 1.0),
    extra_rows=st.integers(0, 1000),
)
def test_default_capacity_bounds_and_monotone(batch_size, n_features, p, q, extra_rows):
    total = batch_size * n_features
    capacity = default_capacity(batch_size, n_features, p)
    # Mean + 5 sd + 16 (rounded up), never more than every position.
    mean, sd = total * p, math.sqrt(total * p * (1 - p))
    bound = mean + 5 * sd + 16
    assert capacity <= total
    assert capacity == total or bound <= capacity < bound + 1 + 1e-9 * bound
    # More activity, or more rows, never asks for fewer slots.
    lo, hi = sorted((p, q))
    assert default_capacity(batch_size, n_features, lo) <= default_capacity(batch_size, n_features, hi)
    assert capacity <= default_capacity(batch_size + extra_rows, n_features, p)


def _exactly_one_dense(key, batch_size, n_features):
    batch = ccjax.problem.sample_exactly_one(key, batch_size, n_features)
    dense = ccjax.problem.to_dense(batch, batch_size, n_features)
    return batch, dense, ccjax.problem.entries_to_dense(batch, batch_size, n_features)


_exactly_one = jax.jit(_exactly_one_dense, static_argnums=(1, 2))


@functools.partial(jax.jit, static_argnums=(1, 2))
def _exactly_one_many(keys, batch_size, n_features):
    return jax.vmap(lambda key: _exactly_one_dense(key, batch_size, n_features))(keys)


@SETTINGS
@given(shape=st.sampled_from(SPARSE_SHAPES), n_models=st.sampled_from(STACK_SIZES), seed=seeds)
def test_exactly_one_batches(shape, n_models, seed):
    batch_size, n_features = shape
    keys = _stack_keys(seed, n_models)
    many = _exactly_one_many(keys, batch_size, n_features)
    for i in range(n_models):
        one = _exactly_one(keys[i], batch_size, n_features)
        _assert_trees_equal(one, _exactly_one(keys[i], batch_size, n_features))  # deterministic
        _assert_trees_equal(one, _index(many, i))  # independent of the stack (bitwise)
        b, dense, entries = _np(one)
        assert b.rows.dtype == b.features.dtype == np.int32 and b.values.dtype == np.float32
        np.testing.assert_array_equal(b.rows, np.arange(batch_size))  # one entry per row, sorted
        assert np.all((b.features >= 0) & (b.features < n_features))
        assert np.all(np.abs(b.values) <= 1.0)
        assert not b.overflow and b.tail_start == batch_size * n_features
        assert b.p == np.float32(1 / n_features)
        assert dense.shape == (batch_size, n_features) and dense.dtype == np.float32
        np.testing.assert_array_equal(dense, entries)  # no overflow: the entries are the batch
        np.testing.assert_array_equal(dense[np.arange(batch_size), b.features], b.values)
        assert np.all(np.count_nonzero(dense, axis=1) == 1)


_exactly_k = jax.jit(ccjax.problem.sample_exactly_k, static_argnums=2)
_exactly_k_many = jax.jit(jax.vmap(ccjax.problem.sample_exactly_k, in_axes=(0, 0, None)), static_argnums=2)


@SETTINGS
@given(
    shape=st.sampled_from(SPARSE_SHAPES),
    n_models=st.sampled_from(STACK_SIZES),
    seed=seeds,
    data=st.data(),
)
def test_exactly_k_batches(shape, n_models, seed, data):
    batch_size, n_features = shape
    counts = np.array(
        data.draw(st.lists(st.integers(0, n_features), min_size=n_models * batch_size, max_size=n_models * batch_size)),
        np.int32,
    ).reshape(n_models, batch_size)
    keys = _stack_keys(seed, n_models)
    many = np.asarray(_exactly_k_many(keys, jnp.asarray(counts), n_features))
    assert many.shape == (n_models, batch_size, n_features) and many.dtype == np.float32
    for i in range(n_models):
        x = np.asarray(_exactly_k(keys[i], jnp.asarray(counts[i]), n_features))
        np.testing.assert_array_equal(x, np.asarray(_exactly_k(keys[i], jnp.asarray(counts[i]), n_features)))
        np.testing.assert_array_equal(many[i], x)  # per-row sort and scatter under vmap: bitwise
        np.testing.assert_array_equal(np.count_nonzero(x, axis=1), counts[i])
        assert np.all(np.abs(x) <= 1.0)


# ---------------------------------------------------------------------------------------
# Mixing matrices
# ---------------------------------------------------------------------------------------

_embedding = jax.jit(ccjax.problem.embedding, static_argnums=(1, 2))
_embedding_many = jax.jit(jax.vmap(ccjax.problem.embedding, in_axes=(0, None, None)), static_argnums=(1, 2))


@SETTINGS
@given(shape=st.sampled_from(MIXING_SHAPES), n_models=st.sampled_from(STACK_SIZES), seed=seeds)
def test_embedding_unit_rows_and_batch_independent(shape, n_models, seed):
    n_features, d_embed = shape
    keys = _stack_keys(seed, n_models)
    many = np.asarray(_embedding_many(keys, n_features, d_embed))
    for i in range(n_models):
        w = np.asarray(_embedding(keys[i], n_features, d_embed))
        assert w.shape == (n_features, d_embed) and w.dtype == np.float32
        np.testing.assert_array_equal(w, np.asarray(_embedding(keys[i], n_features, d_embed)))
        # The batched program may fuse the row normalisation differently (an ulp or so).
        np.testing.assert_allclose(many[i], w, rtol=0, atol=3e-7)
        np.testing.assert_allclose(np.linalg.norm(w.astype(np.float64), axis=1), 1.0, rtol=0, atol=1e-6)


@SETTINGS
@given(shape=st.sampled_from(MIXING_SHAPES), seed=seeds)
def test_embedding_mixing_is_identity_minus_gram(shape, seed):
    n_features, d_embed = shape
    w_e = ccjax.problem.embedding(jax.random.key(seed), n_features, d_embed)
    m = np.asarray(ccjax.problem.embedding_mixing(w_e))
    assert m.shape == (n_features, n_features) and m.dtype == np.float32
    # Faithful sign: M = I - W_E W_E^T, diagonal exactly 0 (it is 1 - |row|^2 = 0).
    w64 = np.asarray(w_e, np.float64)
    expected = np.eye(n_features) - w64 @ w64.T
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-6)
    assert np.all(np.diag(m) == 0.0)
    np.testing.assert_allclose(m, m.T, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(np.asarray(ccjax.problem.embedding_mixing(w_e, code_sign=True)), -m)
    # I - M is the Gram matrix (diagonal rounded to 1): positive semi-definite, rank <= d_embed.
    gram = np.eye(n_features) - m.astype(np.float64)
    s = np.linalg.eigvalsh((gram + gram.T) / 2)
    assert s.min() >= -1e-5  # so M's eigenvalues are at most 1
    assert np.sum(s > 1e-4 * s.max()) <= min(n_features, d_embed)


@SETTINGS
@given(n_features=st.sampled_from([1, 2, 7, 40]), seed=seeds)
def test_symmetric_gaussian_mirrors_the_asymmetric_draw(n_features, seed):
    key = jax.random.key(seed)
    sym = np.asarray(ccjax.problem.symmetric_gaussian(key, n_features))
    asym = np.asarray(ccjax.problem.asymmetric_gaussian(key, n_features))
    assert sym.shape == asym.shape == (n_features, n_features)
    assert sym.dtype == asym.dtype == np.float32
    np.testing.assert_array_equal(sym, sym.T)  # built by mirroring: exactly symmetric
    # The symmetric family is the upper triangle (diagonal included) of the same draw.
    upper = np.triu_indices(n_features)
    np.testing.assert_array_equal(sym[upper], asym[upper])
    assert np.all(np.isfinite(asym)) and np.all(np.diag(sym) != 0)
    if n_features > 1:
        assert np.any(asym != asym.T)
    np.testing.assert_array_equal(asym, np.asarray(ccjax.problem.asymmetric_gaussian(key, n_features)))


_low_rank_traced = jax.jit(ccjax.problem.low_rank, static_argnums=(1, 3))


@SETTINGS
@given(
    n_features=st.sampled_from([1, 5, 40]),
    flat=st.booleans(),
    seed=seeds,
    data=st.data(),
)
def test_low_rank_rank_is_at_most_r(n_features, flat, seed, data):
    rank = data.draw(st.integers(0, n_features + 2), label="rank")
    key = jax.random.key(seed)
    m = np.asarray(ccjax.problem.low_rank(key, n_features, rank, flat_spectrum=flat))
    assert m.shape == (n_features, n_features) and m.dtype == np.float32
    # A traced rank (as in a sweep) gives the static rank's matrix, to float32 rounding.
    traced = np.asarray(_low_rank_traced(key, n_features, jnp.int32(rank), flat))
    np.testing.assert_allclose(traced, m, rtol=0, atol=1e-5 * max(1.0, np.abs(m).max()))
    kept = min(rank, n_features)
    if kept == 0:
        assert np.all(m == 0.0)
        return
    s = np.linalg.svd(m.astype(np.float64), compute_uv=False)
    # Columns from ``rank`` on are zeroed exactly, so only float32 rounding remains beyond.
    assert np.all(s[kept:] <= 1e-5 * s[0])
    if flat:  # orthonormal factors: exactly ``kept`` singular values, all 1
        np.testing.assert_allclose(s[:kept], 1.0, rtol=0, atol=1e-5)


_make_mixing_traced = jax.jit(ccjax.make_mixing, static_argnums=(2, 3))


def _make_mixing_models(indices, keys, n_features, d_embed, ranks, *, batched):
    one = lambda i, k, r: ccjax.make_mixing(i, k, n_features, d_embed, r)  # noqa: E731
    if batched:
        return jax.vmap(one)(indices, keys, ranks)
    return lax.map(lambda model: one(*model), (indices, keys, ranks))


_make_mixing_many = jax.jit(_make_mixing_models, static_argnums=(2, 3), static_argnames="batched")


def _assert_family_invariants(name, m, w_e, rank):
    n_features = m.shape[0]
    if name == "none":
        assert np.all(m == 0.0)
    elif name in ("embedding", "embedding-code-sign", "symmetric"):
        np.testing.assert_allclose(m, m.T, rtol=0, atol=1e-7)
    if name.startswith("embedding"):
        w64 = np.asarray(w_e, np.float64)
        faithful = np.eye(n_features) - w64 @ w64.T
        np.fill_diagonal(faithful, 0.0)
        np.testing.assert_allclose(m, faithful if name == "embedding" else -faithful, rtol=0, atol=1e-6)
    if name.startswith("low-rank"):
        kept = min(rank, n_features)
        s = np.linalg.svd(m.astype(np.float64), compute_uv=False)
        assert np.all(s[kept:] <= 1e-5 * max(s[0], 1e-30))


@settings(max_examples=6, deadline=None, derandomize=True)
@given(shape=st.sampled_from(MIXING_SHAPES), seed=seeds, data=st.data())
def test_make_mixing_by_name_matches_traced_index(shape, seed, data):
    n_features, d_embed = shape
    rank = data.draw(st.integers(0, n_features), label="rank")
    key = jax.random.key(seed)
    with pytest.raises(ValueError, match=r"rank must be in \[0, n_features"):
        ccjax.make_mixing("low-rank", key, n_features, d_embed, rank=n_features + 1)
    w_first = None
    for index, name in enumerate(ccjax.MIXING_NAMES):
        m, w_e = _np(ccjax.make_mixing(name, key, n_features, d_embed, rank=rank))
        _assert_trees_equal((m, w_e), ccjax.make_mixing(name, key, n_features, d_embed, rank=rank))
        assert m.shape == (n_features, n_features) and w_e.shape == (n_features, d_embed)
        assert m.dtype == w_e.dtype == np.float32
        if w_first is None:
            w_first = w_e
        np.testing.assert_array_equal(w_e, w_first)  # W_E comes from the key alone
        _assert_family_invariants(name, m, w_e, rank)
        # The family as a traced index and the rank as a traced integer (one compile for
        # all families): jit fuses the embedding normalisation and the matmuls its own
        # way, so equal to float32 rounding, not bitwise.
        m_traced, w_traced = _np(_make_mixing_traced(jnp.int32(index), key, n_features, d_embed, jnp.int32(rank)))
        np.testing.assert_allclose(w_traced, w_e, rtol=0, atol=3e-7)
        np.testing.assert_allclose(m_traced, m, rtol=0, atol=1e-5 * max(1.0, np.abs(m).max()))
        if name == "none":
            assert np.all(m_traced == 0.0)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(shape=st.sampled_from(MIXING_SHAPES), seed=seeds, data=st.data())
def test_mixing_does_not_depend_on_how_many_models_share_a_call(shape, seed, data):
    # A sweep builds the mixing of models that differ in key, family and rank in one
    # call. One model at a time (lax.map, as sweep._init_all does) each model gets
    # bitwise what a call of its own gives, whatever the stack holds. Under vmap
    # (lax.switch then evaluates every family and selects) XLA's batched matmul and
    # normalisation round differently with the batch size (a batch of 1 takes the
    # unbatched path), so there only float32 rounding separates them.
    n_features, d_embed = shape
    n_max = max(STACK_SIZES)
    indices = data.draw(st.lists(st.integers(0, len(ccjax.MIXING_NAMES) - 1), min_size=n_max, max_size=n_max))
    ranks = data.draw(st.lists(st.integers(0, n_features + 1), min_size=n_max, max_size=n_max))
    keys = _stack_keys(seed, n_max)
    indices, ranks = jnp.asarray(indices, jnp.int32), jnp.asarray(ranks, jnp.int32)
    alone = [_np(_make_mixing_traced(indices[i], keys[i], n_features, d_embed, ranks[i])) for i in range(n_max)]
    for n_models in (1, n_max):  # alone in the stack, and among others
        models = (indices[:n_models], keys[:n_models], n_features, d_embed, ranks[:n_models])
        mapped = _make_mixing_many(*models, batched=False)
        batched = _np(_make_mixing_many(*models, batched=True))
        for i in range(n_models):
            _assert_trees_equal(_index(mapped, i), alone[i])
            m, w_e = alone[i]
            np.testing.assert_allclose(batched[1][i], w_e, rtol=0, atol=3e-7)
            np.testing.assert_allclose(batched[0][i], m, rtol=0, atol=1e-5 * max(1.0, np.abs(m).max()))
            _assert_family_invariants(ccjax.MIXING_NAMES[int(indices[i])], batched[0][i], batched[1][i], int(ranks[i]))
