"""``and-pairs``: Boolean AND of sparse features, the textbook case of computation in
superposition (Hänni et al. 2024; Bushnaq & Mendel 2024).

x_i in {0, 1}, each 1 with probability p. The labels are ``x_i AND x_j = x_i x_j`` over
``m = pairs_per_feature · n`` fixed random pairs (distinct, drawn once from
``structure_seed``; all ``n (n - 1) / 2`` pairs where there are fewer). ``and-pairs`` has 2
pairs per feature, ``and-pairs-8`` and ``and-pairs-32`` have 8 and 32: the textbook
constructions compute many more ANDs than they have neurons. The model is the MLP with
biases, which a neuron needs to compute an AND exactly: ``relu(x_i + x_j - 1)``. The naive
model computes d_mlp ANDs that way and predicts the best constant ``p^2`` for the rest.
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
            pairs (default 2), or every pair where there are fewer.
        structure_seed: NumPy seed of the pairs (default 0): the same pairs at every call for a given n.
    """

    name = "and-pairs"
    family = "mlp-bias"
    description = "y_k = x_i AND x_j over 2n fixed random pairs, x_i ~ Bernoulli(p); MSE; MLP with biases"
    pairs_per_feature: int = 2
    structure_seed: int = 0

    def n_outputs(self, n_features: int) -> int:
        return min(self.pairs_per_feature * n_features, n_features * (n_features - 1) // 2)

    def pairs(self, n_features: int) -> np.ndarray:
        """The (m, 2) feature pairs, distinct and sorted; fixed by ``structure_seed``.

        Args:
            n_features: Number of input features n.

        Returns:
            The pairs' feature indices, (m, 2) integers with ``m`` = :meth:`n_outputs`; row k is
                output k's pair ``(i, j)``, ``i < j``, rows in lexicographic order.
        """
        every_pair = np.asarray(list(itertools.combinations(range(n_features), 2))).reshape(-1, 2)
        m = self.n_outputs(n_features)
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


@dataclasses.dataclass(frozen=True)
class AndPairs8(AndPairs):
    """:class:`AndPairs` with 8 pairs per feature (``m = 8n``).

    Attributes:
        pairs_per_feature: As in :class:`AndPairs` (default 8).
        structure_seed: As in :class:`AndPairs`.
    """

    name = "and-pairs-8"
    description = "y_k = x_i AND x_j over 8n fixed random pairs, x_i ~ Bernoulli(p); MSE; MLP with biases"
    pairs_per_feature: int = 8


@dataclasses.dataclass(frozen=True)
class AndPairs32(AndPairs):
    """:class:`AndPairs` with 32 pairs per feature (``m = 32n``, or every pair at n < 65).

    Attributes:
        pairs_per_feature: As in :class:`AndPairs` (default 32).
        structure_seed: As in :class:`AndPairs`.
    """

    name = "and-pairs-32"
    description = "y_k = x_i AND x_j over 32n fixed random pairs, x_i ~ Bernoulli(p); MSE; MLP with biases"
    pairs_per_feature: int = 32
