"""Beyond the paper: toy tasks that might show computation in superposition (CiS).

The paper (docs/paper.md §7) ends on an open question: compressed computation is not
CiS, so which toy task is? Each task here is one :class:`ccjax.Task` (its own
file, registered in :data:`SEARCH_TASKS`), trained by :func:`train_models` and scored by
:func:`evaluate_model` against its naive reference. ``python -m experiments.cis_search``
runs the search.
"""

from ..problem import Task
from ._and_pairs import AndPairs
from ._evaluate import Evaluation, MeanSem, evaluate_model, naive_like_share, naive_monte_carlo
from ._grid import ARRAYS as SEARCH_ARRAYS
from ._grid import EVALUATION_SEED, EvalBudget, d_mlp_of, search_grid
from ._models import MODEL_FAMILIES, ModelFamily
from ._relu import ReLU
from ._relu_discrete import DiscreteReLU
from ._relu_outlier import QuarticReLU, WorstFeatureReLU
from ._search import RESULTS as SEARCH_RESULTS
from ._search import SECOND_OPTIMIZER, SearchGrid, SearchProgress, SearchRun, search
from ._summary import (
    advantage,
    describe_search,
    naive_check,
    naive_reference,
    offset_advantage,
    positive_cells,
    semi_nmf_advantage,
)
from ._train import family_batch_loss, init_model, train_models
from ._two_step import OneLayerTwoStep, TwoStep, semi_nmf_reference

SEARCH_TASKS: dict[str, Task] = {
    task.name: task for task in (ReLU(), DiscreteReLU(), QuarticReLU(), WorstFeatureReLU(), AndPairs(), TwoStep())
}
"""Every search task, by name: the single source of the CLI's ``--tasks`` choices."""

__all__ = [
    "MODEL_FAMILIES",
    "SEARCH_ARRAYS",
    "SEARCH_RESULTS",
    "SECOND_OPTIMIZER",
    "SEARCH_TASKS",
    "AndPairs",
    "DiscreteReLU",
    "EVALUATION_SEED",
    "EvalBudget",
    "MeanSem",
    "Evaluation",
    "ModelFamily",
    "QuarticReLU",
    "ReLU",
    "SearchGrid",
    "SearchProgress",
    "SearchRun",
    "OneLayerTwoStep",
    "TwoStep",
    "WorstFeatureReLU",
    "advantage",
    "d_mlp_of",
    "describe_search",
    "family_batch_loss",
    "evaluate_model",
    "init_model",
    "naive_check",
    "naive_like_share",
    "naive_monte_carlo",
    "naive_reference",
    "offset_advantage",
    "positive_cells",
    "search",
    "search_grid",
    "semi_nmf_advantage",
    "semi_nmf_reference",
    "train_models",
]
