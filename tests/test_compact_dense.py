"""The dense path runs only the non-empty rows, through a hand-written backward pass:
the same loss and gradients as the whole batch under autodiff, to float32 rounding."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax.engine import hyper_from_config, init_run, shapes_for, train_step
from ccjax.problem import compact_rows, default_row_capacity, mixed_relu_sse, sample_sparse, to_dense

# 512 rows at n p = 0.4: a third of the rows hold an active feature, so the rows compact.
CONFIG = ccjax.TrainConfig(n_features=40, d_mlp=20, d_embed=64, batch_size=512, steps=3, log_every=3, p=0.01)
DENSE = dataclasses.replace(CONFIG, input_path="dense")


def test_row_capacity_holds_the_non_empty_rows_and_is_none_where_it_saves_little():
    # Paper shapes: 63.4% of 2,048 rows are non-empty on average (1,298); mean + 5 sd + 16.
    assert default_row_capacity(2048, 100, 0.01) == 1424
    assert default_row_capacity(512, 40, 0.01) == 239
    # n p > 3 (where the CPU takes the dense path): under 5% of rows are empty, so no compaction.
    assert default_row_capacity(2048, 100, 0.031) is None
    assert shapes_for(dataclasses.replace(CONFIG, p=0.1)).row_capacity is None
    assert shapes_for(dataclasses.replace(CONFIG, data="exactly-one")).row_capacity is None


def test_compact_rows_are_the_non_empty_rows_in_order():
    batch = sample_sparse(jax.random.key(3), 512, 40, 0.01, 400)
    x = np.asarray(to_dense(batch, 512, 40))
    rows, count = compact_rows(batch, 512, 40, 239)
    non_empty = x[np.any(x != 0, axis=1)]
    assert int(count) == len(non_empty) > 0
    np.testing.assert_array_equal(np.asarray(rows)[: len(non_empty)], non_empty)
    assert not np.any(np.asarray(rows)[len(non_empty) :])
    # An empty batch: its unused entries add 0 (at a wrapped index), so the rows stay 0.
    empty = sample_sparse(jax.random.key(3), 8, 40, 1e-9, 20)
    rows, count = compact_rows(empty, 8, 40, 4)
    assert int(count) == 0 and not np.any(np.asarray(rows))


def _reference_sse(params, x, scaled_mixing):
    error = jax.nn.relu(x @ params.w_in) @ params.w_out - (jax.nn.relu(x) + x @ scaled_mixing.T)
    return jnp.sum(error**2)


def test_hand_written_backward_pass_equals_autodiff():
    key_w, key_x, key_m = jax.random.split(jax.random.key(0), 3)
    params = ccjax.problem.init_feature_mlp(key_w, 12, 5)
    x = jax.random.uniform(key_x, (30, 12), minval=-1.0, maxval=1.0) * (jax.random.uniform(key_m, (30, 12)) < 0.3)
    scaled_mixing = 0.3 * jax.random.normal(key_m, (12, 12))
    with jax.default_matmul_precision("highest"):
        expected, expected_grads = jax.value_and_grad(_reference_sse, argnums=(0, 2))(params, x, scaled_mixing)
    value, grads = jax.value_and_grad(mixed_relu_sse, argnums=(0, 2))(params, x, scaled_mixing)
    np.testing.assert_allclose(value, expected, rtol=1e-5)
    for actual, wanted in zip(jax.tree.leaves(grads), jax.tree.leaves(expected_grads), strict=True):
        np.testing.assert_allclose(actual, wanted, rtol=1e-4, atol=1e-6)


def _loss_and_grads(config, shapes, key=1, step=5, **kwargs):
    hyper = hyper_from_config(config)
    state = init_run(config, jax.random.key(key), hyper)

    def loss(trainable):
        return train_step(shapes, hyper, state._replace(trainable=trainable), step, **kwargs)[1]

    return jax.jit(jax.value_and_grad(loss))(state.trainable)


@pytest.mark.parametrize("changes", [{}, {"learn_scale": True}, {"full_model": True}])
def test_the_compact_step_has_the_whole_batchs_loss_and_gradients(changes):
    config = dataclasses.replace(DENSE, **changes)
    shapes = shapes_for(config)
    assert shapes.path == "dense" and shapes.row_capacity == 239
    compact = _loss_and_grads(config, shapes)
    whole = _loss_and_grads(config, shapes._replace(row_capacity=None))
    sparse = _loss_and_grads(config, shapes._replace(path="sparse"))
    for other in (whole, sparse):
        for actual, wanted in zip(jax.tree.leaves(compact), jax.tree.leaves(other), strict=True):
            np.testing.assert_allclose(actual, wanted, rtol=1e-5, atol=1e-9)


def test_more_non_empty_rows_than_the_capacity_fall_back_to_the_whole_batch():
    shapes = shapes_for(DENSE)
    tiny = shapes._replace(row_capacity=8)  # far fewer than the ~160 non-empty rows
    whole = _loss_and_grads(DENSE, shapes._replace(row_capacity=None))
    for actual, wanted in zip(jax.tree.leaves(_loss_and_grads(DENSE, tiny)), jax.tree.leaves(whole), strict=True):
        np.testing.assert_array_equal(actual, wanted)  # the fallback is the whole-batch step itself
    # Without its rare branches the step is wrong on such a batch: the fallback is what saves it.
    loss_without, _ = _loss_and_grads(DENSE, tiny, rare_branches=False)
    assert not np.isclose(loss_without, whole[0], rtol=1e-3)


def test_training_on_the_compact_step_matches_the_sparse_path():
    compact = ccjax.sweep(dataclasses.replace(DENSE, steps=60, log_every=20), {"seed": [0, 1]})
    sparse = ccjax.sweep(dataclasses.replace(CONFIG, steps=60, log_every=20, input_path="sparse"), {"seed": [0, 1]})
    np.testing.assert_allclose(compact.history.train_loss_per_feature, sparse.history.train_loss_per_feature, rtol=1e-4)
    np.testing.assert_allclose(compact.params.w_in, sparse.params.w_in, atol=1e-5)
