"""ccjax: the Compressed Computation toy model in JAX (Bhagat et al. 2025).

Pure functions on pytrees: sample data, build mixing matrices, train one model with
:func:`train`, or a whole grid of models in one jitted, sharded call with :func:`sweep`.
"""

from importlib.metadata import PackageNotFoundError, version

from . import baselines
from ._linalg import MATMUL_PRECISION_NAME, matmul
from ._sweep import (
    Grid,
    Progress,
    SweepResult,
    evaluate_sweep,
    evaluation_key,
    make_grid,
    sweep,
    sweep_curves,
)
from ._train import History, Hyper, TrainConfig, hyper_from_config, lr_factor, train
from .analysis import (
    EigenBasis,
    EigenProjections,
    EntryFit,
    SingularBasis,
    SubspaceShare,
    column_target,
    effective_rank,
    eigen_alignment,
    eigen_projections,
    eigenbasis,
    entry_correlation,
    linear_map,
    subspace_share,
    svd_alignment,
    svd_basis,
)
from .checkpoint import CheckpointError, SweepCheckpoint
from .data import (
    SparseBatch,
    default_capacity,
    entries_to_dense,
    sample_exactly_k,
    sample_exactly_one,
    sample_inputs,
    sample_sparse,
    to_dense,
)
from .direct import Estimate, EvalPlan, direct_loss_per_feature, plan_evaluation
from .evaluate import (
    LossCurve,
    binomial_weights,
    direct_sem,
    exactly_one_loss_per_feature,
    loss_curve,
    loss_per_feature,
    naive_loss_per_feature,
    one_feature_loss,
)
from .io import (
    RESULTS_FORMAT_VERSION,
    ResultsError,
    StageFiles,
    environment_info,
    load_checkpoint,
    load_results,
    save_checkpoint,
    save_results,
)
from .loss import LossTerms, batch_loss, dense_sse, labels, loss_terms, mse, residual_labels, unit_squared_errors
from .memory import auto_eval_models_per_call, auto_models_per_call
from .mixing import (
    MIXING_FAMILIES,
    MIXING_NAMES,
    MixingFamily,
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
from .progress import describe_progress, print_progress
from .responses import feature_response, neuron_contributions, one_hot_response
from .static_axes import over_static_axes, sweep_static
from .tasks import MIXED_RELU, MixedReLU, OneFeature, Task


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
    "baselines",
    "effective_rank",
    "EigenBasis",
    "EigenProjections",
    "EntryFit",
    "SingularBasis",
    "SubspaceShare",
    "column_target",
    "eigen_alignment",
    "eigen_projections",
    "eigenbasis",
    "entry_correlation",
    "linear_map",
    "subspace_share",
    "svd_alignment",
    "svd_basis",
    "MATMUL_PRECISION_NAME",
    "MIXING_FAMILIES",
    "MIXING_NAMES",
    "MixingFamily",
    "RESULTS_FORMAT_VERSION",
    "CheckpointError",
    "SweepCheckpoint",
    "auto_eval_models_per_call",
    "auto_models_per_call",
    "load_checkpoint",
    "save_checkpoint",
    "StageFiles",
    "Estimate",
    "EvalPlan",
    "FeatureMLP",
    "Grid",
    "History",
    "Hyper",
    "LossCurve",
    "LossTerms",
    "Progress",
    "ResidualMLP",
    "ResultsError",
    "SparseBatch",
    "SweepResult",
    "TrainConfig",
    "MIXED_RELU",
    "MixedReLU",
    "OneFeature",
    "Task",
    "asymmetric_gaussian",
    "batch_loss",
    "binomial_weights",
    "default_capacity",
    "dense_sse",
    "direct_loss_per_feature",
    "direct_sem",
    "embedding",
    "embedding_mixing",
    "entries_to_dense",
    "environment_info",
    "describe_progress",
    "evaluate_sweep",
    "print_progress",
    "evaluation_key",
    "exactly_one_loss_per_feature",
    "feature_response",
    "forward",
    "hyper_from_config",
    "init_feature_mlp",
    "init_residual_mlp",
    "labels",
    "load_results",
    "loss_curve",
    "loss_per_feature",
    "loss_terms",
    "low_rank",
    "lr_factor",
    "make_grid",
    "make_mixing",
    "matmul",
    "mse",
    "naive_loss_per_feature",
    "neuron_contributions",
    "one_feature_loss",
    "one_hot_response",
    "plan_evaluation",
    "residual_forward",
    "residual_labels",
    "sample_exactly_k",
    "sample_exactly_one",
    "sample_inputs",
    "sample_sparse",
    "save_results",
    "sweep",
    "sweep_curves",
    "symmetric_gaussian",
    "to_dense",
    "to_feature_space",
    "train",
    "unit_squared_errors",
    "over_static_axes",
    "sweep_static",
]
