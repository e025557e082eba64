"""Beyond the paper: toy tasks that might show computation in superposition (CiS).

The paper (docs/paper.md §7) ends on an open question: compressed computation is not
CiS, so which toy task is? Each task here is one :class:`ccjax.Task` (its own
file, registered in :data:`SEARCH_TASKS`), trained by :func:`train_models` and scored by
:func:`evaluate_model` against its naive reference. ``python -m experiments.cis_search``
runs the search. Each trained model stands beside its naive model and a *built* one, a model
of the task's own form made by hand (:func:`choose_built`), and is probed where a linear
readout fails (:func:`probe`).
"""

from ..problem import Task
from ._advantage import advantage, naive_reference, positive_cells
from ._and_pairs import AndPairs, AndPairs8, AndPairs32
from ._built import SELECTION_SEED, choose_built, sparse_embedding, universal_and
from ._evaluate import Evaluation, MeanSem, evaluate_model, naive_like_share, naive_monte_carlo
from ._grid import ARRAYS as SEARCH_ARRAYS
from ._grid import EVALUATION_SEED, EvalBudget, d_mlp_of, search_grid
from ._models import MODEL_FAMILIES, ModelFamily
from ._probe import PROBE_SEED, Probe, probe, shared_partners
from ._relu import ReLU
from ._relu_discrete import DiscreteReLU
from ._relu_outlier import QuarticReLU, WorstFeatureReLU
from ._search import (
    CHECK_MAX_WEIGHTS,
    SCALING_LRS,
    SECOND_OPTIMIZER,
    SearchGrid,
    SearchProgress,
    SearchRun,
    affordable_ns,
    beyond_built,
    rechecked_cell,
    search,
)
from ._search import RESULTS as SEARCH_RESULTS
from ._summary import describe_search, naive_check, offset_advantage
from ._train import TrainedModels, family_batch_loss, init_model, train_models
from ._two_step import ThresholdTwoStep, TwoStep, semi_nmf_reference

SEARCH_TASKS: dict[str, Task] = {
    task.name: task
    for task in (ReLU(), DiscreteReLU(), QuarticReLU(), WorstFeatureReLU())
    + (AndPairs(), AndPairs8(), AndPairs32(), TwoStep(), ThresholdTwoStep())
}
"""Every search task, by name: the single source of the CLI's ``--tasks`` choices."""

__all__ = [
    "MODEL_FAMILIES",
    "SEARCH_ARRAYS",
    "SEARCH_RESULTS",
    "SCALING_LRS",
    "CHECK_MAX_WEIGHTS",
    "SECOND_OPTIMIZER",
    "SEARCH_TASKS",
    "AndPairs",
    "AndPairs8",
    "AndPairs32",
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
    "PROBE_SEED",
    "Probe",
    "SELECTION_SEED",
    "ThresholdTwoStep",
    "TrainedModels",
    "TwoStep",
    "WorstFeatureReLU",
    "advantage",
    "affordable_ns",
    "beyond_built",
    "rechecked_cell",
    "choose_built",
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
    "probe",
    "search",
    "search_grid",
    "semi_nmf_reference",
    "shared_partners",
    "sparse_embedding",
    "train_models",
    "universal_and",
]
