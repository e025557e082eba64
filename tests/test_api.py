"""API hygiene: public names and modules, shipped type information, run-time annotation
checks, and the argument checks of small configs and traced probabilities."""

import importlib
import pkgutil
from pathlib import Path

import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
from conftest import annotations_unchecked

import ccjax
from ccjax.measure import binomial_weights
from ccjax.problem import seed_key

PUBLIC_MODULES = sorted(info.name for info in pkgutil.iter_modules(ccjax.__path__) if not info.name.startswith("_"))


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_import_of_a_public_module_binds_the_module(name):
    # ``import ccjax.<name> as m`` binds the attribute ``ccjax.<name>``: a re-exported
    # function of the same name would be bound instead of the module.
    module = importlib.import_module(f"ccjax.{name}")
    assert getattr(ccjax, name) is module


@pytest.mark.parametrize("name", ccjax.__all__)
def test_no_public_name_hides_a_module(name):
    try:
        module = importlib.import_module(f"ccjax.{name}")
    except ModuleNotFoundError:
        return
    assert getattr(ccjax, name) is module


@pytest.mark.parametrize("name", ["sweep", "train"])
def test_sweep_and_train_are_functions_with_no_module_of_their_name(name):
    assert callable(getattr(ccjax, name))
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"ccjax.{name}")


def test_the_package_ships_py_typed():
    assert (Path(ccjax.__file__).parent / "py.typed").is_file()


def test_the_test_session_checks_annotations_at_run_time():
    # pyproject's addopts instrument ccjax: an inconsistent n_features fails on construction.
    with pytest.raises(jaxtyping.TypeCheckError):
        ccjax.FeatureMLP(w_in=jnp.zeros((4, 2)), w_out=jnp.zeros((2, 5)))
    with annotations_unchecked():
        ccjax.FeatureMLP(w_in=jnp.zeros((4, 2)), w_out=jnp.zeros((2, 5)))


def test_model_weights_may_be_stacked_and_on_the_host():
    stacked = ccjax.FeatureMLP(w_in=jnp.ones((3, 5, 4, 2)), w_out=jnp.ones((3, 5, 2, 4)))  # a grid of models
    on_host = ccjax.FeatureMLP(w_in=np.ones((4, 2), np.float32), w_out=np.ones((2, 4), np.float32))
    assert stacked.w_in.shape[:2] == (3, 5) and isinstance(on_host.w_in, np.ndarray)


def test_a_feature_mlp_needs_no_embedding():
    single = ccjax.FeatureMLP(w_in=jnp.ones((4, 2)), w_out=jnp.ones((2, 4)))
    assert ccjax.to_feature_space(single, None) is single


def test_seed_keys_take_unsigned_seeds():
    same_key = jax.random.key_data(seed_key(3)) == jax.random.key_data(seed_key(jnp.uint32(3)))
    assert bool(jnp.all(same_key))  # sweeps pass their seeds as uint32


def test_binomial_weights_take_p_as_an_ndarray():
    np.testing.assert_allclose(binomial_weights(np.array([0.1, 0.5]), 4).sum(axis=1), 1.0)


def test_sweep_curves_takes_p_values_as_an_ndarray():
    config = ccjax.TrainConfig(
        n_features=6, d_mlp=3, d_embed=8, batch_size=16, steps=2, log_every=1, p=0.2, mixing_rank=2
    )
    result = ccjax.sweep(config, {"seed": [0]}, devices=jax.devices()[:1])
    curve = ccjax.sweep_curves(result, np.array([0.1, 0.5]), rel_sem=0.2)
    assert curve.loss_per_feature.shape == (1, 2)


def test_a_small_config_needs_no_rank_unless_its_family_does():
    config = ccjax.TrainConfig(n_features=5, d_mlp=2)  # the default rank 10 is unused
    assert config.mixing == "embedding"
    with pytest.raises(ValueError, match=r"mixing_rank \(10\) must not exceed n_features \(5\)"):
        ccjax.TrainConfig(n_features=5, d_mlp=2, mixing="low-rank")
    ccjax.TrainConfig(n_features=5, d_mlp=2, mixing="low-rank", mixing_rank=5)


def test_a_swept_low_rank_family_checks_the_configs_rank():
    config = ccjax.TrainConfig(n_features=5, d_mlp=2, d_embed=8, batch_size=8, steps=1, log_every=1)
    with pytest.raises(ValueError, match=r"mixing_rank \(10\) must not exceed n_features \(5\)"):
        ccjax.sweep(config, {"seed": [0], "mixing": ["embedding", "low-rank"]})


def test_sample_inputs_with_a_traced_p_needs_a_capacity():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="capacity"):
        jax.jit(lambda p: ccjax.sample_inputs(key, 4, 8, p))(0.5)
    x = jax.jit(lambda p: ccjax.sample_inputs(key, 4, 8, p, capacity=32))(0.5)
    np.testing.assert_array_equal(np.asarray(x), np.asarray(ccjax.sample_inputs(key, 4, 8, 0.5, capacity=32)))
