"""``relu-outlier-l4`` and ``relu-outlier-lse``: the ``relu`` task under losses that punish
outlier errors more than MSE does (the paper's suggestion, docs/paper.md §7).

L4 is the mean of ``(f - y)^4`` over outputs. The soft worst-feature loss is
``T · (logsumexp_j(e_j^2 / T) - log n_out)`` with ``e = f - y``: about ``e_j^2 / n_out``
for errors small against the temperature T and about ``max_j e_j^2`` for large ones, and
0 for a perfect prediction.
"""

import dataclasses

import jax
import jax.numpy as jnp

from ._relu import ReLU


@dataclasses.dataclass(frozen=True)
class QuarticReLU(ReLU):
    """The ``relu`` task under the L4 loss: each row's loss is the mean of ``(f - y)^4`` over
    outputs (docs/paper.md §7, "outlier errors")."""

    name = "relu-outlier-l4"
    description = "y = relu(x) under the L4 loss mean((f - y)^4)"

    def sample_loss(self, prediction, target):
        return jnp.mean((prediction - target) ** 4, axis=-1)

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float:
        """``(n - d)/n · p · E[relu(v)^4]`` with ``E[relu(v)^4] = 1/10`` for v ~ U[-1, 1].

        Args:
            n_features: n; ``d_mlp`` (d, the outputs the naive model computes) and ``p`` as in ``Task.naive_loss``.

        Returns:
            The naive model's expected L4 loss (in units of L, not L/p): ``(n - d)/n · p / 10``.
        """
        return (n_features - d_mlp) / n_features * p / 10.0


@dataclasses.dataclass(frozen=True)
class WorstFeatureReLU(ReLU):
    """The ``relu`` task under the soft worst-feature loss
    ``T · (logsumexp_j(e_j^2 / T) - log n_out)``, ``e = f - y`` (docs/paper.md §7, "outlier errors").

    Attributes:
        temperature: The temperature T (default 0.05), in units of squared error: errors with
            ``e^2`` well below T are averaged, errors well above it count as their maximum.
    """

    name = "relu-outlier-lse"
    description = "y = relu(x) under a soft worst-feature loss T·logsumexp((f - y)^2 / T)"
    temperature: float = 0.05

    def sample_loss(self, prediction, target):
        squared = (prediction - target) ** 2
        log_n = jnp.log(squared.shape[-1])
        return self.temperature * (jax.nn.logsumexp(squared / self.temperature, axis=-1) - log_n)

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> None:
        """Not in closed form (the rows' errors do not add): Monte Carlo only.

        Args:
            n_features: n; ``d_mlp`` (d, the outputs the naive model computes) and ``p`` as in ``Task.naive_loss``.

        Returns:
            Always None; :func:`ccjax.cis.naive_monte_carlo` estimates it.
        """
        return None
