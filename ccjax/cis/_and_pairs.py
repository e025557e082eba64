"""``and-pairs``: Boolean AND of sparse features, the textbook case of computation in
superposition (Hänni et al. 2024; Bushnaq & Mendel 2024).

x_i in {0, 1}, each 1 with probability p. The labels are ``x_i AND x_j = x_i x_j`` over
``m = pairs_per_feature · n`` fixed random pairs (distinct, drawn once from
``structure_seed``). The model is the MLP with biases, which a neuron needs to compute
an AND exactly: ``relu(x_i + x_j - 1)``. The naive model computes d_mlp ANDs that way
and predicts the best constant ``p^2`` for the rest.
"""

import dataclasses
import itertools

import jax.numpy as jnp
import numpy as np

from ..problem._tasks import Task


@dataclasses.dataclass(frozen=True)
class AndPairs(Task):
    """Boolean AND of sparse binary features over fixed random pairs, MSE, the MLP with biases
    (``family = "mlp-bias"``; docs/paper.md §7).

    Attributes:
        pairs_per_feature: Outputs per input feature: the task has ``m = pairs_per_feature · n``
            pairs (default 2).
        structure_seed: NumPy seed of the pairs (default 0): the same pairs at every call for a given n.
    """

    name = "and-pairs"
    family = "mlp-bias"
    description = "y_k = x_i AND x_j over 2n fixed random pairs, x_i ~ Bernoulli(p); MSE; MLP with biases"
    pairs_per_feature: int = 2
    structure_seed: int = 0

    def n_outputs(self, n_features: int) -> int:
        return self.pairs_per_feature * n_features

    def pairs(self, n_features: int) -> np.ndarray:
        """The (m, 2) feature pairs, distinct and sorted; fixed by ``structure_seed``.

        Args:
            n_features: Number of input features n.

        Returns:
            The pairs' feature indices, (m, 2) integers with ``m = pairs_per_feature · n``; row k
                is output k's pair ``(i, j)``, ``i < j``, rows in lexicographic order.

        Raises:
            ValueError: If there are fewer than m distinct pairs, ``n (n - 1) / 2 < m``.
        """
        every_pair = np.asarray(list(itertools.combinations(range(n_features), 2)))
        m = self.n_outputs(n_features)
        if m > len(every_pair):
            raise ValueError(
                f"and-pairs needs {m} distinct pairs of {n_features} features; there are only {len(every_pair)}"
            )
        chosen = np.random.default_rng(self.structure_seed).choice(len(every_pair), m, replace=False)
        return every_pair[np.sort(chosen)]

    def input_values(self, uniform):
        return (uniform != 0).astype(jnp.float32)  # 1 where the feature is active

    def labels(self, x, scaled_mixing=None):
        pairs = self.pairs(x.shape[-1])
        return x[:, pairs[:, 0]] * x[:, pairs[:, 1]]

    def naive_constant(self, p):
        return p**2

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float:
        """``(m - d)/m · Var(AND) = (m - d)/m · p^2 (1 - p^2)``.

        Args:
            n_features: Number of input features n (m = ``pairs_per_feature · n`` outputs).
            d_mlp: Number of neurons d: the naive model computes d ANDs exactly.
            p: Feature probability in (0, 1].

        Returns:
            L (not L/p) of the naive model, which predicts the constant ``p^2`` for the other m - d.
        """
        m = self.n_outputs(n_features)
        return (m - d_mlp) / m * p**2 * (1.0 - p**2)
