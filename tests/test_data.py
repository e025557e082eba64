"""Statistics and invariants of the sparse Bernoulli-p × U[-1, 1] samplers (paper §4)."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import train_jit
from hypothesis import given, settings
from hypothesis import strategies as st

import ccjax
from ccjax.problem import default_capacity
from ccjax.problem._loss import default_multi_capacity


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def _sample(key, batch_size, n_features, p, capacity):
    batch = ccjax.sample_sparse(key, batch_size, n_features, p, capacity)
    dense = ccjax.problem.to_dense(batch, batch_size, n_features)
    entries = ccjax.problem.entries_to_dense(batch, batch_size, n_features)
    return batch, dense, entries


def _sample_np(seed, batch_size, n_features, p, capacity=None):
    if capacity is None:
        capacity = default_capacity(batch_size, n_features, p)
    batch, dense, entries = _sample(jax.random.key(seed), batch_size, n_features, jnp.float32(p), capacity)
    batch = batch._replace(tail_key=None)  # a key array; everything else becomes NumPy
    return jax.tree.map(np.asarray, batch), np.asarray(dense), np.asarray(entries)


def _assert_rate(active: np.ndarray, p: float, n_se: float = 5.0):
    """Fraction of active positions is p within ``n_se`` binomial standard errors."""
    n = active.size
    se = math.sqrt(p * (1 - p) / n)
    assert abs(active.mean() - p) <= n_se * se + 1e-12, (active.mean(), p, se)


def _assert_uniform_values(values: np.ndarray, n_se: float = 5.0):
    """Values of active entries look like U[-1, 1]: in range, mean 0, variance 1/3."""
    n = values.size
    assert n > 100
    assert np.all(values >= -1.0) and np.all(values <= 1.0)
    # U[-1, 1]: mean 0, var 1/3; Var(u) = 1/3, Var(u^2) = E[u^4] - E[u^2]^2 = 1/5 - 1/9 = 4/45.
    assert abs(values.mean()) <= n_se * math.sqrt(1 / 3 / n)
    assert abs(np.mean(values**2) - 1 / 3) <= n_se * math.sqrt(4 / 45 / n)
    # Each quarter of [-1, 1] holds a quarter of the values (binomial standard error).
    counts, _ = np.histogram(values, bins=4, range=(-1.0, 1.0))
    assert np.all(np.abs(counts / n - 0.25) <= n_se * math.sqrt(0.25 * 0.75 / n))


@pytest.mark.parametrize("p", [0.003, 0.05, 0.3])
def test_sample_sparse_statistics(p):
    batch_size, n_features = 2048, 50
    batch, dense, entries = _sample_np(0, batch_size, n_features, p)
    assert not batch.overflow
    np.testing.assert_array_equal(dense, entries)
    active = dense != 0
    _assert_rate(active, p)
    _assert_uniform_values(dense[active])
    # Independence: the active count of a row is Binomial(n_features, p), so its
    # variance is n p (1 - p) (standard error of a sample variance ≈ var·sqrt(2/(N-1))
    # for a near-normal count; 6 of those, plus a Poisson-skew allowance at tiny p).
    per_row = active.sum(1)
    var = n_features * p * (1 - p)
    assert abs(per_row.mean() - n_features * p) <= 5 * math.sqrt(var / batch_size)
    assert abs(per_row.var(ddof=1) - var) <= 6 * var * math.sqrt(2 / (batch_size - 1)) + 0.02
    # Every feature is active at rate p (no edge effects in the flattened positions).
    per_feature = active.mean(0)
    assert np.all(np.abs(per_feature - p) <= 5.5 * math.sqrt(p * (1 - p) / batch_size))


_sample_inputs = jax.jit(ccjax.sample_inputs, static_argnums=(1, 2, 3, 4))
_sample_exactly_one = jax.jit(ccjax.problem.sample_exactly_one, static_argnums=(1, 2))


def test_sample_inputs_statistics_and_same_draws():
    key = jax.random.key(3)
    batch_size, n_features, p = 4096, 20, 0.02
    x = np.asarray(_sample_inputs(key, batch_size, n_features, p))
    assert x.shape == (batch_size, n_features) and x.dtype == np.float32
    active = x != 0
    _assert_rate(active, p)
    _assert_uniform_values(x[active])
    # "same draws as sample_sparse" at the default capacity.
    capacity = default_capacity(batch_size, n_features, p)
    _, dense, _ = _sample(key, batch_size, n_features, jnp.float32(p), capacity)
    np.testing.assert_array_equal(x, np.asarray(dense))


def test_sample_inputs_p_one_is_fully_active():
    x = np.asarray(_sample_inputs(jax.random.key(0), 64, 10, 1.0))
    # Every position active; a draw of exactly 0.0 from U[-1, 1] has probability ~2^-24.
    assert np.mean(x != 0) > 0.99
    _assert_uniform_values(x.ravel())


def test_entries_sorted_and_padding_canonical():
    batch_size, n_features, p = 256, 30, 0.05
    batch, _, _ = _sample_np(1, batch_size, n_features, p)
    valid = batch.rows < batch_size
    assert valid.sum() > 0 and (~valid).sum() > 0  # both kinds of slot occur
    # Valid entries first, in strictly increasing flat position (so sorted by row).
    assert np.all(valid[: valid.sum()])
    flat = batch.rows[valid].astype(np.int64) * n_features + batch.features[valid]
    assert np.all(np.diff(flat) > 0)
    assert np.all(np.diff(batch.rows) >= 0)
    # Unused slots: rows == batch_size, features == 0, values == 0.
    assert np.all(batch.rows[~valid] == batch_size)
    assert np.all(batch.features[~valid] == 0)
    assert np.all(batch.values[~valid] == 0)
    assert int(batch.tail_start) == batch_size * n_features


def test_overflow_fallback_keeps_entries_and_rate():
    batch_size, n_features, p, capacity = 1024, 20, 0.05, 16  # ~1024 actives expected
    batch, dense, entries = _sample_np(2, batch_size, n_features, p, capacity)
    assert bool(batch.overflow)
    # All capacity entries are real and end at tail_start.
    assert np.all(batch.rows < batch_size)
    last = int(batch.rows[-1]) * n_features + int(batch.features[-1])
    assert int(batch.tail_start) == last + 1
    # The entries alone are incomplete: far fewer actives than p * total.
    assert (entries != 0).sum() == capacity
    # to_dense keeps every sampled entry ...
    np.testing.assert_array_equal(dense[batch.rows, batch.features], batch.values)
    # ... adds nothing before tail_start other than them ...
    flat_dense = dense.ravel()
    flat_entries = entries.ravel()
    head = slice(0, int(batch.tail_start))
    np.testing.assert_array_equal(flat_dense[head], flat_entries[head])
    # ... and fills the tail at rate p with U[-1, 1] values.
    _assert_rate(dense != 0, p)
    tail = flat_dense[int(batch.tail_start) :]
    _assert_rate(tail != 0, p)
    _assert_uniform_values(tail[tail != 0])


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _overflowing(keys, batch_size, n_features, capacity, p):
    def one(key):
        batch = ccjax.sample_sparse(key, batch_size, n_features, p, capacity)
        dense = ccjax.problem.to_dense(batch, batch_size, n_features).ravel()
        at_tail_start = dense[jnp.minimum(batch.tail_start, dense.size - 1)] != 0
        return batch.overflow, batch.tail_start, at_tail_start, dense != 0

    return jax.vmap(one)(keys)


def test_overflow_tail_is_exact_bernoulli():
    # 4 × 5 = 20 positions, p = 0.3, only 3 entries: most batches overflow. After the
    # overflow the dense batch must still be exactly i.i.d. Bernoulli(p) everywhere,
    # including the first tail position (memorylessness of the Bernoulli process).
    n_samples, p = 4000, 0.3
    keys = jax.random.split(jax.random.key(8), n_samples)
    overflow, tail_start, at_tail_start, active = map(np.asarray, _overflowing(keys, 4, 5, 3, p))
    assert overflow.mean() > 0.8
    inside = overflow & (tail_start < 20)
    _assert_rate(at_tail_start[inside], p)
    # Every position is active at rate p (20 tests at 5.5 standard errors).
    se = math.sqrt(p * (1 - p) / n_samples)
    assert np.all(np.abs(active.mean(0) - p) <= 5.5 * se)
    # Active count per batch is Binomial(20, p): mean 6, variance 4.2.
    count = active.sum(1)
    assert abs(count.mean() - 20 * p) <= 5 * math.sqrt(20 * p * (1 - p) / n_samples)
    assert abs(count.var(ddof=1) - 20 * p * (1 - p)) <= 6 * 20 * p * (1 - p) * math.sqrt(2 / n_samples)


def test_overflow_fallback_through_sample_inputs():
    x = np.asarray(_sample_inputs(jax.random.key(5), 2048, 20, 0.1, 4))
    _assert_rate(x != 0, 0.1)
    _assert_uniform_values(x[x != 0])


def test_no_overflow_when_capacity_is_exact():
    # p = 1: every position is active, the capacity-th active is the last position.
    batch_size, n_features = 8, 5
    batch, dense, entries = _sample_np(0, batch_size, n_features, 1.0, batch_size * n_features)
    assert not batch.overflow
    np.testing.assert_array_equal(batch.rows, np.repeat(np.arange(batch_size), n_features))
    np.testing.assert_array_equal(batch.features, np.tile(np.arange(n_features), batch_size))
    np.testing.assert_array_equal(dense, entries)


def test_sample_exactly_one():
    batch_size, n_features = 4096, 25
    batch = ccjax.problem.sample_exactly_one(jax.random.key(0), batch_size, n_features)
    assert not bool(batch.overflow)
    assert float(batch.p) == pytest.approx(1 / n_features)
    x = np.asarray(ccjax.problem.to_dense(batch, batch_size, n_features))
    np.testing.assert_array_equal(x, np.asarray(ccjax.problem.entries_to_dense(batch, batch_size, n_features)))
    assert np.all((x != 0).sum(1) == 1)
    _assert_uniform_values(x[x != 0])
    # The active feature is uniform over features (chi-square, 24 dof: mean 24, sd ~6.9).
    counts = np.bincount(np.asarray(batch.features), minlength=n_features)
    expected = batch_size / n_features
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < 24 + 6 * math.sqrt(2 * 24)


@settings(max_examples=5, deadline=None)
@given(
    p=st.floats(0.001, 1.0),
    batch_size=st.integers(1, 48),
    n_features=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
)
def test_sampler_invariants_property(p, batch_size, n_features, seed):
    capacity = default_capacity(batch_size, n_features, p)
    batch, dense, entries = _sample_np(seed, batch_size, n_features, p, capacity)
    valid = batch.rows < batch_size
    n_valid = int(valid.sum())
    assert batch.rows.shape == (capacity,)
    assert np.all(valid[:n_valid]) and not np.any(valid[n_valid:])
    assert np.all(np.diff(batch.rows) >= 0)
    flat = batch.rows[valid].astype(np.int64) * n_features + batch.features[valid]
    assert np.all(np.diff(flat) > 0)  # distinct positions, row-major order
    assert np.all((batch.features >= 0) & (batch.features < n_features))
    assert np.all(np.abs(batch.values) <= 1.0) and np.all(np.abs(dense) <= 1.0)
    assert np.all(batch.values[~valid] == 0)
    # Every entry appears in the dense batch ...
    np.testing.assert_array_equal(dense[batch.rows[valid], batch.features[valid]], batch.values[valid])
    if batch.overflow:  # (rare at the default capacity: the library aims at ~1e-6)
        assert n_valid == capacity
        head = int(batch.tail_start)
        np.testing.assert_array_equal(dense.ravel()[:head], entries.ravel()[:head])
    else:
        # ... and, without overflow, nothing else does.
        assert int(batch.tail_start) == batch_size * n_features
        np.testing.assert_array_equal(dense, entries)
    # The dense active count is Binomial(total, p): within 6 sd (+1 for tiny totals).
    total = batch_size * n_features
    assert abs((dense != 0).sum() - total * p) <= 6 * math.sqrt(total * p * (1 - p)) + 1


@settings(max_examples=5, deadline=None)
@given(batch_size=st.integers(1, 64), n_features=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_exactly_one_property(batch_size, n_features, seed):
    batch = _sample_exactly_one(jax.random.key(seed), batch_size, n_features)
    x = np.asarray(ccjax.problem.entries_to_dense(batch, batch_size, n_features))
    assert np.all((x != 0).sum(1) == 1)  # a U[-1, 1] draw of exactly 0 has probability ~2^-24
    assert np.all(np.abs(x) <= 1.0)


@settings(max_examples=200, deadline=None)
@given(
    batch_size=st.integers(1, 1 << 16),
    n_features=st.integers(1, 2000),
    p=st.floats(1e-6, 1.0),
)
def test_capacities_never_exceed_their_limits(batch_size, n_features, p):
    capacity = default_capacity(batch_size, n_features, p)
    assert isinstance(capacity, int)
    assert 1 <= capacity <= batch_size * n_features
    multi = default_multi_capacity(batch_size, n_features, p)
    assert isinstance(multi, int)
    assert 1 <= multi <= batch_size


def test_capacities_cover_the_mean():
    # Below their limits the capacities hold the expected count plus several standard
    # deviations (the library documents 5 sd + 16; an overflow then costs one dense step).
    mean, sd = 2048 * 100 * 0.01, math.sqrt(2048 * 100 * 0.01 * 0.99)
    assert default_capacity(2048, 100, 0.01) >= mean + 4 * sd
    q = 1 - 0.99**100 - 100 * 0.01 * 0.99**99  # P(a row has >= 2 actives) at p = 0.01
    mean, sd = 2048 * q, math.sqrt(2048 * q * (1 - q))
    assert default_multi_capacity(2048, 100, 0.01) >= mean + 4 * sd
    # At the limits: p = 1 needs every position and every row.
    assert default_capacity(4, 5, 1.0) == 20
    assert default_multi_capacity(4, 5, 1.0) == 4


# Under vmap a lax.cond with a per-model predicate runs both branches for every model.
# With the vmap axis named, the rare overflow branch is decided once for all models.
_RANDOM_PRIMITIVES = ("random_bits", "threefry2x32")


def _unconditional_random_draws(jaxpr) -> int:
    """Random-bit draws of a jaxpr outside ``cond`` branches (those always run)."""
    draws = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _RANDOM_PRIMITIVES:
            draws += 1
        if eqn.primitive.name == "cond":
            continue
        for value in eqn.params.values():  # scan, while, pjit, custom_vjp ... bodies
            for sub in value if isinstance(value, tuple | list) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # a ClosedJaxpr's Jaxpr
                if hasattr(sub, "eqns"):
                    draws += _unconditional_random_draws(sub)
    return draws


@functools.partial(jax.jit, static_argnames="axis_name")
def _vmapped_to_dense(keys, axis_name):
    def one(key, p):
        batch = ccjax.sample_sparse(key, 16, 5, p, 8)  # 8 entries: p = 0.3 overflows, p = 0.01 does not
        return batch.overflow, ccjax.problem.to_dense(batch, 16, 5, axis_name)

    return jax.vmap(one, axis_name=axis_name)(keys, _MIXED_P)


_MIXED_P = np.array([0.3, 0.01], np.float32)


def test_vmapped_to_dense_shares_the_overflow_branch():
    keys = jax.random.split(jax.random.key(3), 2)
    shared = jax.make_jaxpr(functools.partial(_vmapped_to_dense.__wrapped__, axis_name="models"))(keys).jaxpr
    per_model = jax.make_jaxpr(functools.partial(_vmapped_to_dense.__wrapped__, axis_name=None))(keys).jaxpr
    single = jax.make_jaxpr(lambda key, p: ccjax.sample_inputs(key, 16, 5, p, 8))(keys[0], _MIXED_P[0]).jaxpr
    # The tail's two draws run on every call only when the decision is per model.
    assert _unconditional_random_draws(shared) == _unconditional_random_draws(single)
    assert _unconditional_random_draws(per_model) > _unconditional_random_draws(shared)
    # Same batches either way, and each equals the model's own to_dense.
    overflow, dense = _vmapped_to_dense(keys, "models")
    np.testing.assert_array_equal(np.asarray(overflow), [True, False])
    np.testing.assert_array_equal(dense, _vmapped_to_dense(keys, None)[1])
    for index in range(2):
        one = jax.jit(ccjax.sample_inputs, static_argnums=(1, 2, 4))(keys[index], 16, 5, _MIXED_P[index], 8)
        np.testing.assert_array_equal(dense[index], one)


@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_user_vmapped_train_with_axis_name_has_no_per_step_tail_draws(path):
    config = ccjax.TrainConfig(
        n_features=8, d_mlp=4, d_embed=16, mixing_rank=4, batch_size=16, steps=6, log_every=3, p=0.1, input_path=path
    )
    keys = jax.random.split(jax.random.key(0), 2)
    named = jax.vmap(functools.partial(ccjax.train, config, axis_name="models"), axis_name="models")
    unnamed = jax.vmap(functools.partial(ccjax.train, config))
    single = jax.make_jaxpr(functools.partial(ccjax.train, config))(keys[0]).jaxpr
    assert _unconditional_random_draws(jax.make_jaxpr(named)(keys).jaxpr) == _unconditional_random_draws(single)
    assert _unconditional_random_draws(jax.make_jaxpr(unnamed)(keys).jaxpr) > _unconditional_random_draws(single)
    # The same models as trained one at a time (to float rounding).
    params, history = jax.jit(named)(keys)
    for index in range(len(keys)):
        one_params, one_history = train_jit(config, keys[index])
        np.testing.assert_allclose(params.w_in[index], one_params.w_in, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(history.train_loss_per_feature[index], one_history.train_loss_per_feature, rtol=1e-5)
