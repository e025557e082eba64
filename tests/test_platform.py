"""Settings and platforms a user may bring: the rbg PRNG, float64 enabled, accelerators
whose memory statistics are missing or uneven."""

import dataclasses
import importlib
import warnings

import jax
import numpy as np
import pytest
from conftest import annotations_unchecked, small

import ccjax
from ccjax.engine import shapes_for
from ccjax.problem import sample_exactly_k, seed_key

sweep_module = importlib.import_module("ccjax.engine._sweep")  # the implementation of ccjax.sweep
memory = importlib.import_module("ccjax.engine._memory")

CONFIG = small(steps=20, log_every=5)
AXES = {"seed": [0, 1], "scale": [0.0, 1.0]}
ONE_DEVICE = jax.devices()[:1]


def outcome(result: ccjax.SweepResult):
    return (result.params, result.history, result.mixing, result.scale)


def assert_same(a, b, atol=0.0):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=atol)


# --- the PRNG implementation -----------------------------------------------------------


@pytest.fixture
def rbg_default():
    """``jax_default_prng_impl = "rbg"`` (as TPU users often set it) for one test."""
    previous = jax.config.jax_default_prng_impl
    jax.config.update("jax_default_prng_impl", "rbg")
    try:
        yield
    finally:
        jax.config.update("jax_default_prng_impl", previous)


@pytest.fixture(scope="module")
def reference():
    """The sweep under the default PRNG setting, one model at a time on one device."""
    return ccjax.sweep(CONFIG, AXES, devices=ONE_DEVICE)


def test_sweeps_ignore_the_default_prng_setting(reference, rbg_default):
    # The same models as under the default setting, bitwise, however the models are split
    # into calls; vmapped together (the GPU/TPU layout) only batched-matmul rounding differs.
    split = ccjax.sweep(CONFIG, AXES, devices=ONE_DEVICE, max_models_per_call=3)
    assert_same(outcome(split), outcome(reference))
    grouped = ccjax.sweep(CONFIG, AXES, devices=ONE_DEVICE, group_size=4)
    assert_same(outcome(grouped), outcome(reference), atol=1e-5)
    key_data = jax.random.key_data(ccjax.evaluation_key())
    jax.config.update("jax_default_prng_impl", "threefry2x32")
    np.testing.assert_array_equal(key_data, jax.random.key_data(ccjax.evaluation_key()))


def test_resume_under_the_rbg_setting(reference, rbg_default):
    checkpoints = []
    ccjax.sweep(CONFIG, AXES, devices=ONE_DEVICE, on_checkpoint=checkpoints.append)
    resumed = ccjax.sweep(CONFIG, AXES, devices=ONE_DEVICE, resume=checkpoints[1])
    assert_same(outcome(resumed), outcome(reference))


# --- float64 enabled -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["sparse", "dense"])
def test_training_works_with_x64_enabled(path):
    config = dataclasses.replace(CONFIG, input_path=path, steps=4, log_every=2)
    expected_params, expected_history = jax.jit(ccjax.train, static_argnums=0)(config, seed_key(0))
    # The config switch rather than a context manager: jax.enable_x64 is newer than the jax floor.
    jax.config.update("jax_enable_x64", True)
    try:
        params, history = jax.jit(ccjax.train, static_argnums=0)(config, seed_key(0))
        samples = sample_exactly_k(seed_key(1), np.array([1, 2, 3], np.int32), 6)
    finally:
        jax.config.update("jax_enable_x64", False)
    assert {leaf.dtype for leaf in jax.tree.leaves(params)} == {np.dtype(np.float32)}
    assert history.train_loss_per_feature.dtype == np.float32
    # Only optax's float64 bias correction differs from a float32 run.
    assert_same(
        (params, history.train_loss_per_feature), (expected_params, expected_history.train_loss_per_feature), atol=1e-5
    )
    # The evaluation samples are the float32 ones.
    np.testing.assert_array_equal(samples, sample_exactly_k(seed_key(1), np.array([1, 2, 3], np.int32), 6))


# --- memory planning -------------------------------------------------------------------


class FakeDevice:
    """A device as memory planning sees it: a platform and ``memory_stats()``."""

    def __init__(self, stats, platform="gpu"):
        self.platform, self.stats = platform, stats

    def memory_stats(self):
        return self.stats


@pytest.fixture
def fake_devices():
    with annotations_unchecked():  # FakeDevice stands in for jax.Device
        yield


@pytest.mark.usefixtures("fake_devices")
def test_free_memory_is_the_least_free_device_times_the_count():
    gib = 2**30
    devices = [
        FakeDevice({"bytes_limit": 16 * gib, "bytes_in_use": 1 * gib}),
        FakeDevice({"bytes_limit": 16 * gib, "bytes_in_use": 12 * gib}),
        FakeDevice({"bytes_limit": 16 * gib}),
    ]
    assert memory.free_memory_bytes(devices) == 3 * 4 * gib
    assert memory.free_memory_bytes(devices[::-1]) == 3 * 4 * gib


@pytest.mark.parametrize("stats", [None, {}, {"bytes_in_use": 0}])
@pytest.mark.usefixtures("fake_devices")
def test_unknown_device_memory_warns_and_caps_the_calls(stats):
    devices = [FakeDevice(stats), FakeDevice({"bytes_limit": 2**40})]
    assert memory.free_memory_bytes(devices) is None
    shapes = shapes_for(ccjax.TrainConfig())  # paper shapes
    n_models = 10**6
    with pytest.warns(RuntimeWarning, match="report no free memory"):
        per_call = memory.auto_models_per_call(shapes, devices, n_models, None)
    resident, step = memory.estimate_model_bytes(shapes)
    assert per_call == int(memory.MEMORY_FRACTION * 2 * memory.UNKNOWN_FREE_BYTES // (resident + step))
    assert per_call < n_models
    with pytest.warns(RuntimeWarning, match="report no free memory"):
        per_eval_call = memory.auto_eval_models_per_call(100, 50, 2**16, devices, n_models)
    assert per_eval_call < n_models


@pytest.mark.usefixtures("fake_devices")
def test_known_memory_plans_without_a_warning():
    devices = [FakeDevice({"bytes_limit": 2**34})] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory.auto_eval_models_per_call(100, 50, 2**16, devices, 10**6)
