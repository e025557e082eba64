"""Every compiled entry point lowers for TPU and for CUDA GPUs, checked from the CPU.

``jit(f).trace(...).lower(lowering_platforms=(platform,))`` runs XLA's lowering rules of
another platform without its devices, so an operation that a platform does not
implement (e.g. a non-POLAR SVD on TPU) fails here instead of on a user's Colab TPU.
Inputs are abstract (``jax.ShapeDtypeStruct``) and tiny; nothing is compiled or run.
"""

import dataclasses
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import annotations_unchecked

import ccjax
from ccjax import analysis, baselines
from ccjax import measure as responses
from ccjax.engine import shapes_for
from ccjax.engine._sharding import model_sharding
from ccjax.engine._sweep_plan import flat_hyper
from ccjax.measure import direct_loss_per_feature, plan_evaluation
from ccjax.problem import seed_key

sweep_module = importlib.import_module("ccjax.engine._sweep")  # the implementation of ccjax.sweep
evaluate_module = importlib.import_module("ccjax.measure._curves")

PLATFORMS = ("tpu", "cuda")
N_FEATURES, D_MLP, D_EMBED, N_MODELS = 8, 4, 16, 4
TINY = ccjax.TrainConfig(
    n_features=N_FEATURES, d_mlp=D_MLP, d_embed=D_EMBED, batch_size=16, steps=4, log_every=2, p=0.1, mixing_rank=2
)


def lowers(platform: str, function, *args, static_argnums=()):
    """Lower ``jit(function)(*args)`` for ``platform``; raises if it cannot be lowered."""
    jax.jit(function, static_argnums=static_argnums).trace(*args).lower(lowering_platforms=(platform,))


def abstract(tree, sharding=None):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype, sharding=sharding), tree)


def models(*shape):
    """Abstract stacked feature-space weights and label maps, leading axes ``shape``."""
    with annotations_unchecked():  # abstract weights are not arrays
        params = ccjax.FeatureMLP(
            w_in=jax.ShapeDtypeStruct((*shape, N_FEATURES, D_MLP), jnp.float32),
            w_out=jax.ShapeDtypeStruct((*shape, D_MLP, N_FEATURES), jnp.float32),
        )
    return params, jax.ShapeDtypeStruct((*shape, N_FEATURES, N_FEATURES), jnp.float32)


KEY = jax.ShapeDtypeStruct((), jax.eval_shape(lambda: seed_key(0)).dtype)


def keys(n):
    return jax.ShapeDtypeStruct((n,), KEY.dtype)


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize(
    "changes",
    [dict(input_path="dense"), dict(input_path="sparse"), dict(input_path="dense", full_model=True)],
    ids=["dense", "sparse", "full-model"],
)
def test_sweep_chunk_lowers_in_the_accelerator_layout(platform, changes):
    """The sweep's initialisation and training chunk as a GPU/TPU runs them: the model
    axis sharded over a 2-device mesh, all of a device's models vmapped in one group."""
    config = dataclasses.replace(TINY, **changes)
    shapes = shapes_for(config)
    grid = sweep_module.make_grid({"seed": range(N_MODELS), "scale": [0.5]})
    hyper = flat_hyper(config, grid)
    seeds = np.arange(N_MODELS, dtype=np.uint32)
    _, mesh, sharding = model_sharding(jax.devices()[:2], N_MODELS)
    # One mixing family (a grid without a mixing axis), and the switch over every family.
    for family in (ccjax.MIXING_NAMES.index(config.mixing), None):
        jax.jit(sweep_module._init_all, static_argnums=(0, 1)).trace(shapes, family, seeds, hyper, None).lower(
            lowering_platforms=(platform,)
        )
    state = jax.eval_shape(lambda: sweep_module._init_all(shapes, None, seeds, hyper, None))
    per_device_group = N_MODELS // 2  # default_group_size off CPU: every local model in one vmap
    sweep_module._chunk_jit.trace(
        shapes, 1, per_device_group, mesh, abstract(state, sharding), abstract(hyper, sharding), jnp.int32(0)
    ).lower(lowering_platforms=(platform,))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_single_runs_lower(platform):
    """``ccjax.train`` of the reduced model (sparse path) and of the full residual model,
    and the residual model's forward pass."""
    for config in (dataclasses.replace(TINY, input_path="sparse"), dataclasses.replace(TINY, full_model=True)):
        lowers(platform, ccjax.train, config, KEY, static_argnums=0)
    residual = jax.eval_shape(  # abstract weights, made by a real constructor (annotations are checked)
        lambda: ccjax.ResidualMLP(w_in=jnp.zeros((D_EMBED, D_MLP)), w_out=jnp.zeros((D_MLP, D_EMBED)))
    )
    embedding = jax.ShapeDtypeStruct((N_FEATURES, D_EMBED), jnp.float32)
    x = jax.ShapeDtypeStruct((16, N_FEATURES), jnp.float32)
    lowers(platform, ccjax.problem.residual_forward, residual, embedding, x)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_evaluation_kernels_lower(platform):
    """The loss-curve engine's kernels, the direct Monte Carlo estimator (vmapped, both
    paths) and the exact losses."""
    params, mixing = models(N_MODELS)
    exact = jax.eval_shape(evaluate_module._exact_parts, params, mixing)
    stats_args = (
        params,
        mixing,
        exact,
        jax.ShapeDtypeStruct((N_MODELS, N_FEATURES + 1), jnp.float32),
        jax.ShapeDtypeStruct((N_MODELS, N_FEATURES + 1), jnp.float32),
        jax.ShapeDtypeStruct((32,), jnp.int32),
        KEY,
    )
    lowers(platform, evaluate_module._exact_parts, params, mixing)
    lowers(platform, evaluate_module._chunk_stats, *stats_args)
    plan = plan_evaluation(0.1, 0.1, N_FEATURES, min_nonempty=10, batch_size=16)
    for path in ("sparse", "dense"):

        def direct(params, mixing, key, path=path):
            one = lambda prm, m: direct_loss_per_feature(prm, m, key, 0.1, plan, path=path, axis_name="m")  # noqa: E731
            return jax.vmap(one, axis_name="m")(params, mixing)

        lowers(platform, direct, params, mixing, KEY)
    for exact_loss in (
        ccjax.measure.one_feature_loss,
        ccjax.exactly_one_loss_per_feature,
        evaluate_module.loss_bound_slope,
    ):
        lowers(platform, jax.vmap(exact_loss), params, mixing)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_baselines_lower(platform):
    """SVD and semi-NMF baselines, vmapped over models as ``snmf_sweep`` runs them."""
    _, mixing = models(N_MODELS)
    scale = jax.ShapeDtypeStruct((N_MODELS,), jnp.float32)

    def svd(mixing, scale):
        return jax.vmap(lambda m, s: baselines.svd_model(baselines.target_map(m, s), D_MLP))(mixing, scale)

    def semi_nmf(mixing, scale, keys):
        one = lambda m, s, k: baselines.semi_nmf_model(  # noqa: E731
            m, s, k, d_mlp=D_MLP, outer_iterations=2, nmf_iterations=2
        )
        return jax.vmap(one)(mixing, scale, keys)

    lowers(platform, svd, mixing, scale)
    lowers(platform, semi_nmf, mixing, scale, keys(N_MODELS))
    lowers(platform, jax.vmap(lambda b, m: baselines.optimal_offset(0.1, m * b)), scale, mixing)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_analyses_lower_under_vmap(platform):
    params, mixing = models(N_MODELS)
    per_model = {
        "eigen_alignment": analysis.eigen_alignment,
        "svd_alignment": lambda prm, m: analysis.svd_alignment(prm, analysis.column_target(m)),
        "eigen_projections": analysis.eigen_projections,
        "subspace_share": lambda prm, m: analysis.subspace_share(prm, m, 2),
        "entry_correlation": analysis.entry_correlation,
        "effective_rank": lambda prm, m: analysis.effective_rank(m),
        "bases": lambda prm, m: (analysis.eigenbasis(m), analysis.svd_basis(analysis.column_target(m))),
        "responses": lambda prm, m: (
            responses.feature_response(prm, jnp.linspace(-1.0, 1.0, 5)),
            responses.one_hot_response(prm),
            responses.neuron_contributions(prm),
            analysis.linear_map(prm),
        ),
    }
    for name, function in per_model.items():
        try:
            lowers(platform, jax.vmap(function), params, mixing)
        except Exception as error:  # name the analysis that failed
            raise AssertionError(f"{name} does not lower for {platform}") from error
