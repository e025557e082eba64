"""A search task is one object: inputs, labels, model family, loss and naive reference.

:class:`SearchTask` is a frozen dataclass (hashable, so it can be a static ``jit``
argument) whose methods the trainer and the evaluation call, in the strategy-object style
of optax's transformations. A task overrides :meth:`labels` and whatever else differs
from the defaults: inputs ``U[-1, 1]`` active with probability ``p``, the reduced MLP
(``family = "mlp"``), a mean-squared-error loss, and a naive reference computed from
the labels alone (:meth:`naive_predictions`). A task never sees a mixing matrix.

The naive model (the paper's reference, docs/paper.md §5, generalised) computes the
``d_mlp`` best-served outputs exactly and predicts the best constant everywhere else:
``E[y_j]`` for a family with an output bias, 0 for a bias-free one (which cannot
output a constant). Its loss is :meth:`naive_loss` where the task knows it in closed
form, and :func:`ccjax.cis.naive_monte_carlo` otherwise (and as a check).
"""

import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from .._types import Array, Float, PRNGKeyArray
from ..problem._data import sample_sparse, to_dense


@dataclasses.dataclass(frozen=True)
class SearchTask:
    """Defaults: features U[-1, 1] when active (probability p), the reduced MLP, MSE."""

    name: ClassVar[str]
    family: ClassVar[str] = "mlp"  # a key of ccjax.cis.MODEL_FAMILIES
    description: ClassVar[str] = ""

    def n_outputs(self, n_features: int) -> int:
        """How many outputs the model predicts (the labels' width)."""
        return n_features

    def sample_inputs(
        self, key: PRNGKeyArray, batch: int, n_features: int, p, capacity: int, axis_name: str | None = None
    ) -> Float[Array, "batch n_features"]:
        """Each feature active with probability ``p``, its value :meth:`input_values` of a
        U[-1, 1] draw. Drawn sparsely by :func:`ccjax.data.sample_sparse` (exact at any
        ``capacity``; a capacity from :func:`ccjax.data.default_capacity` at the largest p
        makes the dense fallback rare), so a step costs a few draws per active feature."""
        sparse = sample_sparse(key, batch, n_features, p, capacity)
        return self.input_values(to_dense(sparse, batch, n_features, axis_name))

    def input_values(self, uniform: Float[Array, "batch n_features"]) -> Float[Array, "batch n_features"]:
        """The inputs, from features that are U[-1, 1] when active and 0 otherwise (paper §4)."""
        return uniform

    def labels(self, x: Float[Array, "batch n_features"]) -> Float[Array, "batch n_out"]:
        """The target of each input row."""
        raise NotImplementedError

    def sample_loss(self, prediction: Float[Array, "batch n_out"], target: Float[Array, "batch n_out"]):
        """Each row's training loss; the loss is its mean over rows. Default: MSE over outputs."""
        return jnp.mean((prediction - target) ** 2, axis=-1)

    def naive_constant(self, p) -> Float[Array, " n_out"] | float:
        """What the naive model predicts for an output it does not compute: 0 here (no bias)."""
        return 0.0

    def served_outputs(self, n_features: int, d_mlp: int) -> Array:
        """The outputs the naive model computes: the first ``d_mlp`` (all alike by symmetry)."""
        return jnp.arange(self.n_outputs(n_features)) < d_mlp

    def naive_predictions(
        self, target: Float[Array, "batch n_out"], n_features: int, d_mlp: int, p
    ) -> Float[Array, "batch n_out"]:
        """The naive model's output: the served labels exact, the best constant elsewhere."""
        return jnp.where(self.served_outputs(n_features, d_mlp)[None, :], target, self.naive_constant(p))

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float | None:
        """The naive model's expected loss in closed form, where known (else None)."""
        return None
