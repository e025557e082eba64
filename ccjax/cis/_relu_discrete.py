"""``relu-discrete``: ``y = relu(x)`` with x_i in {-1, 0, +1} (the paper's "more discrete
labels" direction, docs/paper.md §7): active with probability p, sign uniform."""

import dataclasses

import jax
import jax.numpy as jnp

from ..problem._tasks import Task


@dataclasses.dataclass(frozen=True)
class DiscreteReLU(Task):
    """Labels ``y = relu(x)`` on discrete inputs: x_i = ±1 with probability p (sign uniform), else
    0; MSE; the paper's reduced MLP (docs/paper.md §7, "more discrete labels")."""

    name = "relu-discrete"
    description = "y = relu(x), x_i = ±1 w.p. p (sign uniform), else 0; MSE"

    def input_values(self, uniform):
        return jnp.sign(uniform)  # an active U[-1, 1] value is nonzero and its sign is uniform

    def labels(self, x, scaled_mixing=None):
        return jax.nn.relu(x)

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float:
        """``(n - d)/n · p · E[relu(±1)^2]`` with ``E[relu(±1)^2] = 1/2``.

        Args:
            n_features: the number of features n, with ``d_mlp`` and ``p`` as for ``ReLU.naive_loss``.

        Returns:
            L (not L/p) of the naive model: ``(n - d)/n · p / 2``.
        """
        return (n_features - d_mlp) / n_features * p / 2.0
