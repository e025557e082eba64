"""``two-step``: a computation in two steps (the paper's multi-step direction, docs/paper.md §7).

Step 1 computes n intermediates ``h = relu(x)``; step 2 outputs ``relu(h A - θ)``, where
the fixed sparse ``A`` (n × n) gives every output ``reads`` >= 4 intermediates with signs
±1 (drawn once from ``structure_seed``). The labels use the clean intermediates. The
model is two MLP layers of width d_mlp, the first writing n intermediates for the second.

The naive reference computes the d_mlp outputs of largest ``E[y_j^2]`` exactly and 0 for
the rest. It is a reference loss, not a model the two layers could build (an exact output
needs all of its intermediates exact), and it has no closed form: Monte Carlo only.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._linalg import matmul
from ..problem._tasks import Task


@dataclasses.dataclass(frozen=True)
class TwoStep(Task):
    """Two-step labels ``y = relu(relu(x) A - θ)`` with x_i ~ U[-1, 1] with probability p, MSE, two
    MLP layers of width d_mlp (``family = "two-layer"``; docs/paper.md §7, computation in steps).

    Attributes:
        reads: Nonzero entries (±1) per column of A: how many intermediates each output reads
            (default 4).
        threshold: The threshold θ subtracted before the outer relu (default 0), in label units.
        structure_seed: NumPy seed of A (default 1): the same A at every call for a given n.
    """

    name = "two-step"
    family = "two-layer"
    description = "y = relu(relu(x) A) (θ = 0), every output reading 4 intermediates (±1); MSE; two MLP layers"
    reads: int = 4
    threshold: float = 0.0
    structure_seed: int = 1

    def reading(self, n_features: int) -> np.ndarray:
        """A: column j holds ``reads`` entries ±1 at distinct random rows.

        Args:
            n_features: Number of input features n.

        Returns:
            A, (n_features, n_features) float32: intermediate i feeds output j with sign ``A[i, j]``.
        """
        rng = np.random.default_rng(self.structure_seed)
        matrix = np.zeros((n_features, n_features), np.float32)
        for column in range(n_features):
            rows = rng.choice(n_features, self.reads, replace=False)
            matrix[rows, column] = rng.choice([-1.0, 1.0], self.reads)
        return matrix

    def labels(self, x, scaled_mixing=None):
        return jax.nn.relu(matmul(jax.nn.relu(x), jnp.asarray(self.reading(x.shape[-1]))) - self.threshold)

    def served_outputs(self, n_features: int, d_mlp: int):
        """The d_mlp outputs with the most positive reads (at sparse p and θ = 0, the largest ``E[y_j^2]``).

        Args:
            n_features: Number of input features n (= outputs).
            d_mlp: Number of outputs the naive reference computes exactly.

        Returns:
            mask (Array): A boolean mask, (n_features,), True at the d_mlp outputs with the most +1 entries in
                their column of A (ties: the lower index).
        """
        positive = (self.reading(n_features) > 0).sum(axis=0)
        best = np.argsort(-positive, kind="stable")[:d_mlp]
        return jnp.asarray(np.isin(np.arange(n_features), best))


@dataclasses.dataclass(frozen=True)
class ThresholdTwoStep(TwoStep):
    """:class:`TwoStep` with θ = 0.5: ``y = relu(relu(x) A - 0.5)``. With one active feature v an output
    that reads it is ``relu(v - 0.5)``, and with two it is ``relu(v_i ± v_j - 0.5)``: neither is linear
    in the inputs, so no sign-gated linear readout is exact.

    Attributes:
        reads: As in :class:`TwoStep`.
        threshold: θ (default 0.5).
        structure_seed: As in :class:`TwoStep`.
    """

    name = "two-step-threshold"
    description = "y = relu(relu(x) A - 0.5), every output reading 4 intermediates (±1); MSE; two MLP layers"
    threshold: float = 0.5


def semi_nmf_reference(task: TwoStep, n_features: int, d_mlp: int, key) -> dict:
    """A one-layer compressed-computation model of the two-step labels, built, not trained (the
    two-step tasks' built reference writes it in the two layers: :func:`ccjax.cis.choose_built`).

    With one active feature (sparse p) and θ = 0 the labels are ``relu(v) relu(A)_i`` for v > 0: a
    linear map of relu(x), as CC's mixed labels are. A rank-``d_mlp`` semi-NMF
    ``relu(A) ≈ U V`` (``U ≥ 0``; :func:`ccjax.measure.baselines.semi_nmf`, docs/paper.md §5) gives
    ``relu(x U) V``, exact on the map's top components and blind to negative inputs.

    Args:
        task: The two-step task whose A (:meth:`TwoStep.reading`) is factorised.
        n_features: Number of input features n.
        d_mlp: Number of neurons d: the rank of the factorisation.
        key (PRNGKeyArray): PRNG key of the semi-NMF's initial NMF.

    Returns:
        The weights of the one-layer model family ``"mlp"``: ``{"w_in": U, "w_out": V}``,
            U (n_features, d_mlp) >= 0 and V (d_mlp, n_features).
    """
    from ..measure.baselines import semi_nmf

    factors = semi_nmf(jnp.maximum(jnp.asarray(task.reading(n_features)), 0.0), d_mlp, key)
    return {"w_in": factors.u, "w_out": factors.v}
