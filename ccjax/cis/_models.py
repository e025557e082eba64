"""Model families of the search tasks: the paper's reduced MLP, with biases, two layers.

A family is a record of ``init(key, n_in, d_mlp, n_out) -> params`` and
``apply(params, x) -> prediction``; params are plain dicts of arrays, so they vmap and
stack like any pytree. Inits follow the paper code's (``ccjax.init_feature_mlp``):
``U(±sqrt(6/d_mlp))`` into the hidden layer, ``U(±sqrt(6/n_in))`` out of it; biases
start at 0.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._linalg import matmul
from .._types import Array, Float, PRNGKeyArray

Params = dict[str, Float[Array, "..."]]


class ModelFamily(NamedTuple):
    """A model family: how to make its parameters and how it maps inputs to outputs.

    Attributes:
        init: ``init(key, n_in, d_mlp, n_out) -> params``: a dict of arrays, e.g. ``w_in``
            (n_in, d_mlp) and ``w_out`` (d_mlp, n_out), initialised as the paper code's.
        apply: ``apply(params, x) -> prediction``: inputs (batch, n_in) to outputs (batch, n_out).
        formula: The model as text, e.g. ``"relu(x W_in) W_out"``, for reports.
    """

    init: Callable[[PRNGKeyArray, int, int, int], Params]
    apply: Callable[[Params, Float[Array, "batch n_in"]], Float[Array, "batch n_out"]]
    formula: str


def _uniform(key, shape, fan):
    bound = (6.0 / fan) ** 0.5
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _layer(key, n_in: int, d_mlp: int, n_out: int) -> Params:
    in_key, out_key = jax.random.split(key)
    return {"w_in": _uniform(in_key, (n_in, d_mlp), d_mlp), "w_out": _uniform(out_key, (d_mlp, n_out), n_in)}


def _mlp(params: Params, x):
    return matmul(jax.nn.relu(matmul(x, params["w_in"])), params["w_out"])


def _biased_init(key, n_in: int, d_mlp: int, n_out: int) -> Params:
    return _layer(key, n_in, d_mlp, n_out) | {"b_in": jnp.zeros(d_mlp), "b_out": jnp.zeros(n_out)}


def _biased(params: Params, x):
    hidden = jax.nn.relu(matmul(x, params["w_in"]) + params["b_in"][None, :])
    return matmul(hidden, params["w_out"]) + params["b_out"][None, :]


def _two_layer_init(key, n_in: int, d_mlp: int, n_out: int) -> Params:
    first, second = jax.random.split(key)
    one, two = _layer(first, n_in, d_mlp, n_in), _layer(second, n_in, d_mlp, n_out)
    return {"w_in": one["w_in"], "w_out": one["w_out"], "w_in_2": two["w_in"], "w_out_2": two["w_out"]}


def _two_layer(params: Params, x):
    intermediate = _mlp(params, x)
    return _mlp({"w_in": params["w_in_2"], "w_out": params["w_out_2"]}, intermediate)


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "mlp": ModelFamily(_layer, _mlp, "relu(x W_in) W_out"),
    "mlp-bias": ModelFamily(_biased_init, _biased, "relu(x W_in + b_in) W_out + b_out"),
    "two-layer": ModelFamily(_two_layer_init, _two_layer, "relu(h W_in_2) W_out_2, h = relu(x W_in) W_out"),
}
"""Every model family a search task can name, by name."""
