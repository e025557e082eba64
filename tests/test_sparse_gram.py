"""The sparse path's Gram form (ccjax.problem._sparse_sse) gives the direct form's and the
dense path's loss and gradients, to float32 rounding; its layout lists the right entries, its
capacities hold what they say, and a batch that does not fit falls back to the whole batch."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax.engine import extra_capacity_for, hyper_from_config, init_run, shapes_for, train_step
from ccjax.engine._sweep_plan import plan_sweep
from ccjax.problem import (
    batch_loss,
    default_extra_capacity,
    default_multi_capacity,
    needs_whole_batch,
    quadratic_form,
    row_layout,
    sample_sparse,
)

N, D_MLP, BATCH = 20, 10, 64
CONFIG = ccjax.TrainConfig(n_features=40, d_mlp=20, d_embed=64, batch_size=512, steps=3, log_every=3, p=0.05)


def _random_params(key):
    k1, k2 = jax.random.split(key)
    return ccjax.FeatureMLP(
        w_in=jax.random.normal(k1, (N, D_MLP)) / math.sqrt(D_MLP),
        w_out=jax.random.normal(k2, (D_MLP, N)) / math.sqrt(N),
    )


def test_row_layout_lists_each_multi_rows_first_entry_and_the_extras():
    batch = sample_sparse(jax.random.key(1), BATCH, N, 0.15, BATCH * N)
    layout = row_layout(batch, BATCH, BATCH, extra_capacity=BATCH * N)
    rows = np.asarray(batch.rows)
    valid = rows < BATCH
    count = np.bincount(rows[valid], minlength=BATCH)
    multi_rows = [r for r in range(BATCH) if count[r] >= 2]
    assert len(multi_rows) > 10 and int(layout.n_multi) == len(multi_rows)
    firsts = [int(np.argmax(rows == r)) for r in multi_rows]  # the first entry of each, in order
    np.testing.assert_array_equal(np.asarray(layout.firsts)[: len(firsts)], firsts)
    offset = np.array([i - int(np.argmax(rows == rows[i])) if valid[i] else -1 for i in range(len(rows))])
    extras = np.flatnonzero(offset >= 2)
    assert len(extras) > 10 and int(layout.n_extra) == len(extras)
    np.testing.assert_array_equal(np.asarray(layout.extras)[: len(extras)], extras)
    # Without an extra capacity: the direct form's layout.
    assert row_layout(batch, BATCH, BATCH).firsts is None


def _value_and_grads(params, batch, mixing, **options):
    def loss(prm, mix):
        return batch_loss(prm, batch, mix, batch_size=BATCH, **options)

    return jax.value_and_grad(loss, argnums=(0, 1))(params, mixing)


@functools.partial(jax.jit, static_argnums=(3,))
def _three_ways(params, key, p, extra_capacity):
    batch = sample_sparse(key, BATCH, N, p, BATCH * N)
    mixing = 0.1 * ccjax.problem.asymmetric_gaussian(key, N)
    gram = _value_and_grads(params, batch, mixing, path="sparse", extra_capacity=extra_capacity)
    direct = _value_and_grads(params, batch, mixing, path="sparse")
    dense = _value_and_grads(params, batch, mixing, path="dense")
    return gram, direct, dense


def _assert_close(actual, wanted, rtol=1e-5):
    np.testing.assert_allclose(float(actual[0]), float(wanted[0]), rtol=rtol)
    for a, w in zip(jax.tree.leaves(actual[1]), jax.tree.leaves(wanted[1]), strict=True):
        scale = np.abs(np.asarray(w)).max()
        assert scale > 0
        np.testing.assert_allclose(np.asarray(a), np.asarray(w), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("p", [0.01, 0.05, 0.2, 0.6, 1.0])
def test_gram_form_equals_the_direct_form_and_the_dense_path(p):
    params = _random_params(jax.random.key(0))
    gram, direct, dense = _three_ways(params, jax.random.key(7), p, BATCH * N)
    assert float(dense[0]) > 0
    _assert_close(gram, dense)  # the gradient in s M too: a learned scale trains through it
    _assert_close(direct, dense)


def test_extras_past_their_capacity_fall_back_to_the_whole_batch():
    params = _random_params(jax.random.key(0))
    batch = sample_sparse(jax.random.key(7), BATCH, N, 0.3, BATCH * N)
    mixing = 0.1 * ccjax.problem.asymmetric_gaussian(jax.random.key(7), N)
    few = dict(path="sparse", multi_capacity=BATCH, extra_capacity=4)
    assert int(row_layout(batch, BATCH, BATCH, 4).n_extra) > 4  # P(>= 3 of 20 actives at .3) ≈ 0.96 per row
    assert bool(needs_whole_batch(batch, N, batch_size=BATCH, **few))
    assert not bool(needs_whole_batch(batch, N, batch_size=BATCH, path="sparse", extra_capacity=BATCH * N))
    whole = _value_and_grads(params, batch, mixing, branch="whole", **few)
    taken = _value_and_grads(params, batch, mixing, **few)
    for actual, wanted in zip(jax.tree.leaves(taken), jax.tree.leaves(whole), strict=True):
        np.testing.assert_array_equal(actual, wanted)
    # The fast branch alone is wrong on this batch: the fallback is what makes it exact.
    fast = _value_and_grads(params, batch, mixing, branch="fast", **few)
    assert not np.isclose(float(fast[0]), float(whole[0]), rtol=1e-3)


def test_quadratic_form_gradient_is_autodiffs():
    rows = jax.random.normal(jax.random.key(2), (30, 6))
    factor = jax.random.normal(jax.random.key(3), (6, 9))
    gram = factor @ factor.T

    def plain(r, g):
        return jnp.sum(r * jnp.matmul(r, g, precision="highest"))

    np.testing.assert_allclose(quadratic_form(rows, gram), plain(rows, gram), rtol=1e-6)
    wanted_grads = jax.grad(plain, (0, 1))(rows, gram)
    for actual, wanted in zip(jax.grad(quadratic_form, (0, 1))(rows, gram), wanted_grads, strict=True):
        np.testing.assert_allclose(actual, wanted, rtol=1e-5, atol=1e-5)


def test_extra_capacity_covers_the_mean_and_matches_the_binomial():
    # The count of entries past the second of their row, per row, is max(K - 2, 0) with K ~ Bin(n, p).
    for n, p in ((100, 0.01), (20, 0.3), (50, 0.1)):
        k = np.arange(n + 1)
        pmf = np.array([math.comb(n, int(j)) * p**j * (1 - p) ** (n - j) for j in k])
        extra = np.maximum(k - 2, 0)
        mean, var = (extra * pmf).sum(), (extra**2 * pmf).sum() - (extra * pmf).sum() ** 2
        expected = math.ceil(2048 * mean + 5 * math.sqrt(2048 * var) + 16)
        assert default_extra_capacity(2048, n, p) == min(expected, 2048 * n)
    assert default_extra_capacity(2048, 100, 0.01) == 311  # 209 expected at the paper's shapes
    assert default_extra_capacity(4, 5, 1.0) == 20  # every row holds 5: 3 extras each, capped at 20 positions
    assert default_multi_capacity(2048, 100, 0.01) == 657


def test_the_gram_form_is_the_cpus_and_other_platforms_keep_the_direct_form():
    config = ccjax.TrainConfig()
    assert extra_capacity_for(config, 0.01, "cpu") == 311
    for platform in ("gpu", "cuda", "tpu"):
        assert extra_capacity_for(config, 0.01, platform) is None  # measured faster on a CPU only
    assert extra_capacity_for(dataclasses.replace(config, data="exactly-one"), 0.01, "cpu") is None
    assert shapes_for(config).extra_capacity == 311  # this process's platform is the CPU
    small = dataclasses.replace(CONFIG, input_path="sparse")
    plan = plan_sweep(small, {"seed": [0]})
    assert plan.shapes.extra_capacity == default_extra_capacity(512, 40, 0.05)


@pytest.mark.parametrize("changes", [{}, {"learn_scale": True}, {"full_model": True}])
def test_the_training_step_in_either_form_takes_the_same_step(changes):
    config = dataclasses.replace(CONFIG, input_path="sparse", **changes)
    shapes, hyper = shapes_for(config), hyper_from_config(config)
    state = init_run(config, jax.random.key(1), hyper)
    step = jax.jit(lambda s, shp: train_step(shp, hyper, s, 4), static_argnums=1)
    gram, gram_loss = step(state, shapes)
    direct, direct_loss = step(state, shapes._replace(extra_capacity=None))
    np.testing.assert_allclose(gram_loss, direct_loss, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(gram.trainable), jax.tree.leaves(direct.trainable), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
