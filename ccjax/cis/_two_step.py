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
    name = "two-step"
    family = "two-layer"
    description = "y = relu(relu(x) A - θ), every output reading 4 intermediates (±1); MSE; two MLP layers"
    reads: int = 4
    threshold: float = 0.0
    structure_seed: int = 1

    def reading(self, n_features: int) -> np.ndarray:
        """A: column j holds ``reads`` entries ±1 at distinct random rows."""
        rng = np.random.default_rng(self.structure_seed)
        matrix = np.zeros((n_features, n_features), np.float32)
        for column in range(n_features):
            rows = rng.choice(n_features, self.reads, replace=False)
            matrix[rows, column] = rng.choice([-1.0, 1.0], self.reads)
        return matrix

    def labels(self, x, scaled_mixing=None):
        return jax.nn.relu(matmul(jax.nn.relu(x), jnp.asarray(self.reading(x.shape[-1]))) - self.threshold)

    def served_outputs(self, n_features: int, d_mlp: int):
        """The d_mlp outputs with the most positive reads (the largest ``E[y_j^2]``)."""
        positive = (self.reading(n_features) > 0).sum(axis=0)
        best = np.argsort(-positive, kind="stable")[:d_mlp]
        return jnp.asarray(np.isin(np.arange(n_features), best))


@dataclasses.dataclass(frozen=True)
class OneLayerTwoStep(TwoStep):
    """The two-step labels for a single MLP layer: the family of the semi-NMF reference."""

    family = "mlp"


def semi_nmf_reference(task: TwoStep, n_features: int, d_mlp: int, key) -> dict:
    """A one-layer compressed-computation model of the two-step labels, built, not trained.

    With one active feature (sparse p) the labels are ``relu(v) relu(A)_i`` for v > 0: a
    linear map of relu(x), as CC's mixed labels are. A rank-``d_mlp`` semi-NMF
    ``relu(A) ≈ U V`` (``U ≥ 0``; :func:`ccjax.baselines.semi_nmf`, docs/paper.md §5) gives
    ``relu(x U) V``, exact on the map's top components and blind to negative inputs. Returns
    the weights of :class:`OneLayerTwoStep`'s model family."""
    from ..measure.baselines import semi_nmf

    factors = semi_nmf(jnp.maximum(jnp.asarray(task.reading(n_features)), 0.0), d_mlp, key)
    return {"w_in": factors.u, "w_out": factors.v}
