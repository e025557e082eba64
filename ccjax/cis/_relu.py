"""``relu``: clean CC labels ``y = relu(x)``, no mixing matrix: the control task.

The paper (docs/paper.md §5–6) finds trained models here no better than naive at
p = 0.01 (L/p = 0.0833 at n = 100, d_mlp = 50), so a search that reports an advantage
for this task has a bug or a leak.
"""

import dataclasses

import jax

from ..problem._tasks import Task


@dataclasses.dataclass(frozen=True)
class ReLU(Task):
    """The control task: clean labels ``y = relu(x)``, x_i ~ U[-1, 1] with probability p, MSE,
    the paper's reduced MLP (docs/paper.md §1–2 with M = 0). Trained models should match naive."""

    name = "relu"
    description = "y = relu(x), x_i ~ U[-1, 1] w.p. p; MSE (the control: trained = naive)"

    def labels(self, x, scaled_mixing=None):
        return jax.nn.relu(x)

    def naive_loss(self, n_features: int, d_mlp: int, p: float) -> float:
        """``(n - d)/n · p · E[relu(v)^2]`` with ``E[relu(v)^2] = 1/6`` for v ~ U[-1, 1] (docs/paper.md §5).

        Args:
            n_features: n; ``d_mlp`` (d, the outputs the naive model computes) and ``p`` as in ``Task.naive_loss``.

        Returns:
            L (not L/p) of the naive model; L/p is ``(n - d)/n / 6``, 0.0833 at n = 100, d = 50.
        """
        return (n_features - d_mlp) / n_features * p / 6.0
