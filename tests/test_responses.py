"""Per-model response analyses (ccjax.responses) on models with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ccjax
from ccjax import measure as responses

N, D_MLP = 8, 4
VALUES = jnp.linspace(-1.0, 1.0, 9)


def naive(n=N, d=D_MLP) -> ccjax.FeatureMLP:
    """W_in[f, f] = W_out[f, f] = 1 for f < d (paper §5), built here by hand."""
    eye = jnp.eye(n, d)
    return ccjax.FeatureMLP(w_in=eye, w_out=eye.T)


def hand_made() -> ccjax.FeatureMLP:
    # Two features, one neuron: h = relu(2 x0 - x1), out = h (0.5, 3).
    return ccjax.FeatureMLP(w_in=jnp.array([[2.0], [-1.0]]), w_out=jnp.array([[0.5, 3.0]]))


def random_models(n_models=3) -> ccjax.FeatureMLP:
    keys = jax.random.split(jax.random.key(0), n_models)
    return jax.vmap(lambda k: ccjax.init_feature_mlp(k, N, D_MLP))(keys)


def test_naive_model_responses():
    params = naive()
    curves = np.asarray(responses.feature_response(params, VALUES))
    assert curves.shape == (len(VALUES), N)
    relu = np.maximum(np.asarray(VALUES), 0.0)
    np.testing.assert_array_equal(curves[:, :D_MLP], np.broadcast_to(relu[:, None], (len(VALUES), D_MLP)))
    np.testing.assert_array_equal(curves[:, D_MLP:], 0.0)

    plus = np.asarray(responses.one_hot_response(params, 1.0))
    np.testing.assert_array_equal(plus, np.diag([1.0] * D_MLP + [0.0] * (N - D_MLP)))
    np.testing.assert_array_equal(np.asarray(responses.one_hot_response(params, -1.0)), 0.0)

    contributions = np.asarray(responses.neuron_contributions(params))
    assert contributions.shape == (D_MLP, N)
    np.testing.assert_array_equal(contributions, np.eye(D_MLP, N))  # a single 1 per neuron


def test_hand_made_model():
    params = hand_made()
    # out(x0 = v) = relu(2v) (0.5, 3): self-response slope 1 for v > 0, 0 for v < 0.
    # out(x1 = v) = relu(-v) (0.5, 3): self-response 3 relu(-v), which is 0 for v > 0.
    values = jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0])
    expected = np.array([[0.0, 3.0], [0.0, 1.5], [0.0, 0.0], [0.5, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(np.asarray(responses.feature_response(params, values)), expected)
    np.testing.assert_allclose(np.asarray(responses.one_hot_response(params)), [[1.0, 6.0], [0.0, 0.0]])
    np.testing.assert_allclose(np.asarray(responses.one_hot_response(params, -1.0)), [[0.0, 0.0], [0.5, 3.0]])
    np.testing.assert_allclose(np.asarray(responses.neuron_contributions(params)), [[1.0, -3.0]])


def test_responses_agree_with_forward_and_slopes():
    params = jax.tree.map(lambda leaf: leaf[0], random_models(1))
    eye = jnp.eye(N)
    # feature_response is the diagonal of forward(v · I) for every v.
    direct = jnp.stack([jnp.diagonal(ccjax.forward(params, v * eye)) for v in VALUES])
    curves = responses.feature_response(params, VALUES)
    np.testing.assert_allclose(np.asarray(curves), np.asarray(direct), rtol=1e-6, atol=1e-6)
    plus, minus = responses.one_hot_response(params, 1.0), responses.one_hot_response(params, -1.0)
    np.testing.assert_allclose(np.asarray(plus), np.asarray(ccjax.forward(params, eye)), atol=1e-6)
    np.testing.assert_allclose(np.diagonal(np.asarray(minus)), np.asarray(curves[0]), atol=1e-6)  # VALUES[0] = -1

    # The documented slopes: positive-input neurons for v > 0, negative-input ones for v < 0.
    contributions = np.asarray(responses.neuron_contributions(params))
    positive = np.asarray(params.w_in).T > 0
    np.testing.assert_allclose(np.diagonal(plus), (contributions * positive).sum(0), atol=1e-6)
    np.testing.assert_allclose(np.diagonal(minus), -(contributions * ~positive).sum(0), atol=1e-6)
    np.testing.assert_allclose(contributions.sum(0), np.diagonal(plus - minus), atol=1e-6)


@pytest.mark.parametrize(
    "analysis",
    [
        lambda params: responses.feature_response(params, VALUES),
        lambda params: responses.one_hot_response(params, -1.0),
        responses.neuron_contributions,
    ],
    ids=["feature_response", "one_hot_response", "neuron_contributions"],
)
def test_vmap_over_models_equals_a_loop(analysis):
    stacked = random_models(3)
    batched = np.asarray(jax.vmap(analysis)(stacked))
    for m in range(3):
        single = analysis(jax.tree.map(lambda leaf, m=m: leaf[m], stacked))
        np.testing.assert_allclose(batched[m], np.asarray(single), rtol=1e-6, atol=1e-7)


def test_sign_can_be_vmapped():
    params = hand_made()
    both = jax.vmap(responses.one_hot_response, in_axes=(None, 0))(params, jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(np.asarray(both[0]), np.asarray(responses.one_hot_response(params, 1.0)))
    np.testing.assert_allclose(np.asarray(both[1]), np.asarray(responses.one_hot_response(params, -1.0)))
