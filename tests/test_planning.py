"""Planning a loss curve or a sweep is host arithmetic: no compile (ccjax.curve_plan,
ccjax.sweep_plan), and the runs follow their plans."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from compiles import counting_compiles
from conftest import small

import ccjax
from ccjax.engine import CheckpointError, SweepCheckpoint
from ccjax.engine._sweep_plan import plan_sweep
from ccjax.measure import _curve_plan as curve_plan
from ccjax.measure._curves import loss_bound_slope

# --- loss curves ------------------------------------------------------------------


def test_planning_a_loss_curve_compiles_nothing():
    with counting_compiles() as compiles:
        plan = curve_plan.plan_curve(
            [0.01, 0.5], 5, 17, 6, 0.3, rel_sem=[0.01, 0.02], max_models_per_call=2, devices=jax.devices()
        )
        needed = curve_plan.samples_needed(plan, np.full(5, 0.1), np.full((5, 18), 0.2), np.full((5, 18), 0.01))
        chunks = curve_plan.chunk_counts(needed, plan.chunk_size)
        automatic = curve_plan.plan_curve([0.05], 3, 17, 6, None)  # models per call from the free memory
    assert compiles == []
    assert plan.calls == (slice(0, 2), slice(2, 4), slice(4, 5)) and plan.padded == 2
    assert plan.n_features == 17 and not plan.estimated[:2].any() and plan.estimated[2:].any()
    np.testing.assert_array_equal(plan.rel_sem, [0.01, 0.02])
    assert chunks.shape[1] == plan.chunk_size and np.count_nonzero(chunks) == needed.sum()
    assert automatic.calls == (slice(0, 3),)
    with pytest.raises(ValueError, match="read-only"):  # a plan cannot change once made
        plan.estimated[0] = True


def test_the_plan_skips_only_k_that_cannot_matter():
    p, n_features, slope, tolerance = np.array([0.01, 0.05]), 100, 0.2, 1e-6
    plan = curve_plan.plan_curve(p, 1, n_features, 10, slope, truncation_tolerance=tolerance, devices=jax.devices())
    k = np.arange(n_features + 1)
    worst = ccjax.measure.binomial_weights(p, n_features) * k * slope / p[:, None]  # the most skipping k adds to L/p
    skipped = ~plan.estimated & (k >= 2)
    assert plan.estimated[2:20].all() and skipped[60:].all()  # the bulk of the weight is kept, the far tail not
    assert (worst[:, skipped] <= tolerance / n_features).all()
    np.testing.assert_allclose(plan.truncation_bound, worst[:, skipped].sum(axis=1), rtol=1e-12)
    assert (plan.truncation_bound <= tolerance).all()
    # Without a bound only k of zero weight are skipped; an estimated c_1 is estimated.
    unbounded = curve_plan.plan_curve([1.0], 1, 8, 4, None, exact_c1=False, devices=jax.devices())
    np.testing.assert_array_equal(unbounded.estimated, k[:9] == 8)  # at p = 1 every feature is active
    unbounded = curve_plan.plan_curve([0.3], 1, 8, 4, None, exact_c1=False, devices=jax.devices())
    np.testing.assert_array_equal(unbounded.estimated, k[:9] >= 1)


def test_the_allocation_meets_every_target():
    # Neyman allocation: with n_k samples of residual variance s_k^2, L(p) has variance
    # sum_k w_k^2 s_k^2 / n_k, which the allocation keeps below (SAFETY rel_sem L)^2.
    rng = np.random.default_rng(0)
    p, n_models, n_features = np.array([0.02, 0.1, 0.4]), 3, 30
    plan = curve_plan.plan_curve(p, n_models, n_features, 5, 0.5, rel_sem=[0.01, 0.003, 0.02], devices=jax.devices())
    c1 = rng.uniform(0.05, 0.1, n_models)
    c = c1[:, None] * np.arange(n_features + 1) + rng.uniform(0.0, 0.05, (n_models, n_features + 1))
    residual_var = rng.uniform(1e-4, 1e-2, (n_models, n_features + 1))
    needed = curve_plan.samples_needed(plan, c1, c, residual_var)
    assert (needed[~plan.estimated] == 0).all() and (needed[plan.estimated] >= plan.min_samples).all()
    interaction = np.where(plan.estimated, c - c1[:, None] * np.arange(n_features + 1), 0.0)
    loss = p * n_features * c1[:, None] + interaction @ plan.weights.T
    variance = (np.where(plan.estimated, residual_var, 0.0) / np.maximum(needed, 1)) @ (plan.weights**2).T
    assert (np.sqrt(variance) <= curve_plan.SAFETY * plan.rel_sem * loss * (1 + 1e-9)).all()
    # Fewer samples anywhere would miss a target (the allocation is not wasteful).
    assert (needed[plan.estimated] > plan.min_samples).any()


def test_chunks_hold_the_samples_of_each_k_in_order_then_padding():
    chunks = curve_plan.chunk_counts(np.array([0, 0, 3, 2]), 4)
    np.testing.assert_array_equal(chunks, [[2, 2, 2, 3], [3, 0, 0, 0]])
    assert chunks.dtype == np.int32


def test_a_loss_curve_follows_its_plan():
    keys = jax.random.split(jax.random.key(4), 2)
    params = jax.vmap(lambda key: ccjax.init_feature_mlp(key, 12, 4))(keys)
    mixing = 0.1 * jax.vmap(lambda key: ccjax.make_mixing("symmetric", key, 12, 50)[0])(keys)
    p, options = [0.05, 0.3], dict(rel_sem=0.05, chunk_size=256, max_models_per_call=1)
    curve = ccjax.loss_curve(params, mixing, p, jax.random.key(0), **options)
    slope = float(jnp.max(jax.vmap(loss_bound_slope)(params, mixing)))
    plan = curve_plan.plan_curve(p, 2, 12, 4, slope, devices=jax.devices(), **options)
    np.testing.assert_array_equal(curve.samples > 0, plan.estimated)
    np.testing.assert_allclose(curve.truncation_bound, plan.truncation_bound, rtol=1e-5)
    assert (curve.samples[plan.estimated] >= plan.min_samples).all()
    assert curve.n_evaluations % plan.chunk_size == 0  # whole chunks, padding included


# --- sweeps -----------------------------------------------------------------------


def test_a_sweep_runs_the_chunks_its_plan_fixes():
    config, axes, options = small(n_features=11, d_mlp=3, steps=30), {"seed": [0, 1, 2]}, dict(chunk_intervals=2)
    with counting_compiles() as compiles:
        plan = plan_sweep(config, axes, max_models_per_call=2, **options)
    assert compiles == []
    assert [call.models for call in plan.calls] == [slice(0, 2), slice(2, 3)] and plan.chunk_intervals == 2
    progress, checkpoints = [], []
    reporting = dict(on_progress=progress.append, on_checkpoint=checkpoints.append)
    ccjax.sweep(config, axes, max_models_per_call=2, **options, **reporting)
    assert len(progress) == len(checkpoints) == -(-config.n_logs // plan.chunk_intervals) == 2  # 3 intervals
    assert [report.history.step.shape for report in progress] == [(3, 2), (3, 1)]
    assert {checkpoint.fingerprint for checkpoint in checkpoints} == {plan.fingerprint}


def test_a_foreign_checkpoint_is_rejected_before_anything_compiles():
    # The resume checks (fingerprint, shapes) come before the initialisation and the
    # chunk function's compile, so a wrong checkpoint costs no compile time. The shapes
    # are this test's alone, so nothing of them is cached.
    config, axes = small(n_features=9, d_mlp=2, steps=20), {"seed": [0, 1]}
    history = ccjax.History(*[np.zeros((2, 1))] * len(ccjax.History._fields))
    foreign = SweepCheckpoint("another sweep", 1, (np.zeros((2, 9, 2), np.float32),), history)
    with counting_compiles() as compiles:
        wrong_shapes = foreign._replace(fingerprint=plan_sweep(config, axes).fingerprint)
        with pytest.raises(CheckpointError, match="different sweep"):
            ccjax.sweep(config, axes, resume=foreign)
        with pytest.raises(CheckpointError, match="state arrays"):
            ccjax.sweep(config, axes, resume=wrong_shapes)
    assert compiles == []
