"""Beyond the paper: toy tasks that might show computation in superposition (CiS).

The paper (docs/paper.md §7) ends on an open question: compressed computation is not
CiS, so which toy task is? Each task here is one :class:`ccjax.Task` (its own
file, registered in :data:`SEARCH_TASKS`), trained by :func:`train_models` and scored by
:func:`evaluate_model` against its naive reference. ``python -m experiments.cis_search``
runs the search.
"""

from ..problem import Task
from .and_pairs import AndPairs
from .evaluate import Evaluation, MeanSem, evaluate_model, naive_like_share, naive_monte_carlo
from .grid import EvalBudget, search_grid
from .models import MODEL_FAMILIES, ModelFamily
from .relu import ReLU
from .relu_discrete import DiscreteReLU
from .relu_outlier import QuarticReLU, WorstFeatureReLU
from .summary import advantage, naive_reference, positive_cells
from .train import family_batch_loss, init_model, train_models
from .two_step import TwoStep

SEARCH_TASKS: dict[str, Task] = {
    task.name: task for task in (ReLU(), DiscreteReLU(), QuarticReLU(), WorstFeatureReLU(), AndPairs(), TwoStep())
}
"""Every search task, by name: the single source of the CLI's ``--tasks`` choices."""

__all__ = [
    "MODEL_FAMILIES",
    "SEARCH_TASKS",
    "AndPairs",
    "DiscreteReLU",
    "EvalBudget",
    "MeanSem",
    "Evaluation",
    "ModelFamily",
    "QuarticReLU",
    "ReLU",
    "TwoStep",
    "WorstFeatureReLU",
    "advantage",
    "family_batch_loss",
    "evaluate_model",
    "init_model",
    "naive_like_share",
    "naive_monte_carlo",
    "naive_reference",
    "positive_cells",
    "search_grid",
    "train_models",
]
