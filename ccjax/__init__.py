"""ccjax: the Compressed Computation toy model in JAX (Bhagat et al. 2025).

Pure functions on pytrees: sample data, build mixing matrices, train one model with
:func:`train`, or a whole grid of models in one jitted, sharded call with :func:`sweep`.
"""

from importlib.metadata import PackageNotFoundError, version

from ._linalg import MATMUL_PRECISION_NAME, matmul
from .data import (
    SparseBatch,
    default_capacity,
    entries_to_dense,
    sample_exactly_one,
    sample_inputs,
    sample_sparse,
    to_dense,
)
from .evaluate import Estimate, EvalPlan, loss_per_feature, naive_loss_per_feature, plan_evaluation
from .io import ResultsError, environment_info, load_results, save_results
from .loss import LossTerms, batch_loss, dense_sse, labels, loss_terms, mse, residual_labels
from .mixing import (
    MIXING_NAMES,
    asymmetric_gaussian,
    embedding,
    embedding_mixing,
    low_rank,
    make_mixing,
    symmetric_gaussian,
)
from .model import (
    FeatureMLP,
    ResidualMLP,
    forward,
    init_feature_mlp,
    init_residual_mlp,
    residual_forward,
    to_feature_space,
)
from .sweep import Grid, Progress, SweepResult, evaluate_sweep, make_grid, sweep
from .train import History, Hyper, TrainConfig, hyper_from_config, lr_factor, train


def __getattr__(name):
    # ``ccjax.plot`` loads matplotlib, so it is imported on first use, not with ccjax.
    if name == "plot":
        import importlib

        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


try:
    __version__ = version("ccjax")
except PackageNotFoundError:  # running from a checkout without installing
    __version__ = "0.1.0"

__all__ = [
    "MATMUL_PRECISION_NAME",
    "MIXING_NAMES",
    "Estimate",
    "EvalPlan",
    "FeatureMLP",
    "Grid",
    "History",
    "Hyper",
    "LossTerms",
    "Progress",
    "ResidualMLP",
    "ResultsError",
    "SparseBatch",
    "SweepResult",
    "TrainConfig",
    "asymmetric_gaussian",
    "batch_loss",
    "default_capacity",
    "dense_sse",
    "embedding",
    "embedding_mixing",
    "entries_to_dense",
    "environment_info",
    "evaluate_sweep",
    "forward",
    "hyper_from_config",
    "init_feature_mlp",
    "init_residual_mlp",
    "labels",
    "load_results",
    "loss_per_feature",
    "loss_terms",
    "low_rank",
    "lr_factor",
    "make_grid",
    "make_mixing",
    "matmul",
    "mse",
    "naive_loss_per_feature",
    "plan_evaluation",
    "residual_forward",
    "residual_labels",
    "sample_exactly_one",
    "sample_inputs",
    "sample_sparse",
    "save_results",
    "symmetric_gaussian",
    "sweep",
    "to_dense",
    "to_feature_space",
    "train",
]
