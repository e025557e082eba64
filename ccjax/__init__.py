"""ccjax: the Compressed Computation toy model in JAX (Bhagat et al. 2025, arXiv:2606.14673).

Pure functions on pytrees, in three layers you can see in ``ls ccjax``:

- :mod:`ccjax.problem`: what a CC model is (data, mixing matrices, models, tasks, loss);
- :mod:`ccjax.engine`: training many models at once (:func:`train`, :func:`sweep`);
- :mod:`ccjax.measure`: what is measured on them (L/p curves, baselines, analyses);

plus :mod:`ccjax.io` (results on disk), :mod:`ccjax.report` (text reports),
:mod:`ccjax.plot` (figures; loads matplotlib on first use) and :mod:`ccjax.cis` (the search
for computation in superposition). This namespace re-exports the names most programs need;
every other public name lives in its layer.
"""

from importlib.metadata import PackageNotFoundError, version

from . import cis, engine, io, measure, problem
from . import report as report  # ccjax.report: tables and published-value comparisons
from .engine import (
    History,
    ProgressBar,
    SweepResult,
    TrainConfig,
    enable_compile_cache,
    make_grid,
    over_static_axes,
    sweep,
    sweep_static,
    train,
)
from .io import ResultsError, load_checkpoint, load_results, save_checkpoint, save_results
from .measure import (
    LossCurve,
    analysis,
    baselines,
    direct_loss_per_feature,
    direct_sem,
    evaluate_sweep,
    evaluation_key,
    exactly_one_loss_per_feature,
    loss_curve,
    naive_loss_per_feature,
    sweep_curves,
)
from .problem import (
    MIXED_RELU,
    MIXING_FAMILIES,
    MIXING_NAMES,
    FeatureMLP,
    ResidualMLP,
    Task,
    forward,
    init_feature_mlp,
    labels,
    loss_terms,
    make_mixing,
    sample_inputs,
    sample_sparse,
    to_feature_space,
)


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
    # subpackages and namespaces
    "problem",
    "engine",
    "measure",
    "cis",
    "io",
    "analysis",
    "baselines",
    # the problem
    "MIXED_RELU",
    "MIXING_FAMILIES",
    "MIXING_NAMES",
    "FeatureMLP",
    "ResidualMLP",
    "Task",
    "forward",
    "init_feature_mlp",
    "labels",
    "loss_terms",
    "make_mixing",
    "sample_inputs",
    "sample_sparse",
    "to_feature_space",
    # training
    "History",
    "ProgressBar",
    "SweepResult",
    "TrainConfig",
    "make_grid",
    "over_static_axes",
    "enable_compile_cache",
    "sweep",
    "sweep_static",
    "train",
    # measuring
    "LossCurve",
    "direct_loss_per_feature",
    "direct_sem",
    "evaluate_sweep",
    "evaluation_key",
    "exactly_one_loss_per_feature",
    "loss_curve",
    "naive_loss_per_feature",
    "sweep_curves",
    # results on disk
    "ResultsError",
    "load_checkpoint",
    "load_results",
    "save_checkpoint",
    "save_results",
]
