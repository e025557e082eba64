"""What we measure on stacked CC models: L/p curves (exact c_1 plus exactly-k Monte
Carlo), direct estimates, the evaluation of a sweep, feature responses, and the two
namespaces :mod:`ccjax.baselines` (paper §5), :mod:`ccjax.analysis` (paper §6) and
:mod:`ccjax.measure.statistics` (statistics over seeds).

Imports :mod:`ccjax.problem` and :mod:`ccjax.engine`.
"""

from . import analysis, baselines, statistics
from ._array_texts import BASELINE_ARRAYS, CURVE_ARRAYS, describe_arrays
from ._curve_plan import binomial_weights
from ._curves import (
    LossCurve,
    direct_sem,
    exactly_one_loss_per_feature,
    loss_curve,
    loss_per_feature,
    naive_loss_per_feature,
    one_feature_loss,
)
from ._dips import dip_analyses, saved_dip_analyses
from ._direct import Estimate, EvalPlan, direct_loss_per_feature, plan_evaluation
from ._fine_tuning import (
    FINE_TUNING_ARRAYS,
    FINE_TUNING_EVALUATION,
    FINE_TUNING_STAGES,
    fine_tuning_arrays,
    fine_tuning_configs,
)
from ._joined import initial_mixings, join_sweeps
from ._mechanisms import (
    ALIGNMENT_CONVENTIONS,
    BaselineSweep,
    alignment_bands,
    alignments,
    baseline_sweep,
    describe_alignments,
    describe_baseline_sweep,
    fine_tuning_curve,
    mixing_rms,
)
from ._mixing_types import (
    MIXING_TYPE_ARRAYS,
    MIXING_TYPE_FIELDS,
    mixing_type_arrays,
)
from ._rank import (
    RANK_SWEEP_DEFINITIONS,
    RANK_SWEEP_MEASURES,
    RANK_TREND_DEFINITION,
    describe_rank_sweep_arrays,
    describe_rank_trend,
    rank_sweep_arrays,
    rank_sweep_measures,
    rank_trends,
)
from ._rank_paper_code import (
    RANK_CONFIGS,
    RANK_JB_SCRIPT,
    RANK_PAPER_CODE_DIFFERENCES,
    rank_paper_code_record,
)
from ._responses import feature_response, neuron_contributions, one_hot_response
from ._saved_arrays import baseline_sweep_arrays, tail_loss_terms
from ._sigma_sweep import SIGMA_SWEEP_ARRAYS, sigma_sweep_arrays
from ._sweep_arrays import (
    SWEEP_ARRAYS,
    curves_at_shared_p,
    curves_at_training_p,
    describe_sweep_arrays,
    excluding_diverged,
    family_first,
    logged_steps,
    shared_mixing,
    stack_fields,
    sweep_arrays,
)
from ._sweep_curves import evaluate_sweep, evaluation_key, sweep_curves
from ._sweep_stats import describe_dip, describe_dip_statistics, tail_mean
from ._transplant import (
    PHASE2_SEED_OFFSET,
    TRANSPLANT_ARRAYS,
    phase2_seeds,
    transplant_arrays,
)

__all__ = [
    "BASELINE_ARRAYS",
    "CURVE_ARRAYS",
    "describe_arrays",
    "baseline_sweep_arrays",
    "tail_loss_terms",
    "curves_at_shared_p",
    "initial_mixings",
    "join_sweeps",
    "dip_analyses",
    "saved_dip_analyses",
    "FINE_TUNING_ARRAYS",
    "FINE_TUNING_EVALUATION",
    "FINE_TUNING_STAGES",
    "fine_tuning_arrays",
    "fine_tuning_configs",
    "SWEEP_ARRAYS",
    "describe_sweep_arrays",
    "sweep_arrays",
    "curves_at_training_p",
    "excluding_diverged",
    "family_first",
    "logged_steps",
    "shared_mixing",
    "stack_fields",
    "tail_mean",
    "describe_dip_statistics",
    "describe_dip",
    "RANK_SWEEP_DEFINITIONS",
    "RANK_SWEEP_MEASURES",
    "RANK_TREND_DEFINITION",
    "describe_rank_trend",
    "rank_sweep_arrays",
    "rank_sweep_measures",
    "rank_trends",
    "RANK_CONFIGS",
    "RANK_JB_SCRIPT",
    "RANK_PAPER_CODE_DIFFERENCES",
    "rank_paper_code_record",
    "describe_rank_sweep_arrays",
    "ALIGNMENT_CONVENTIONS",
    "BaselineSweep",
    "describe_alignments",
    "describe_baseline_sweep",
    "alignment_bands",
    "alignments",
    "baseline_sweep",
    "fine_tuning_curve",
    "mixing_rms",
    "PHASE2_SEED_OFFSET",
    "TRANSPLANT_ARRAYS",
    "phase2_seeds",
    "transplant_arrays",
    "SIGMA_SWEEP_ARRAYS",
    "sigma_sweep_arrays",
    "MIXING_TYPE_ARRAYS",
    "MIXING_TYPE_FIELDS",
    "mixing_type_arrays",
    "Estimate",
    "EvalPlan",
    "LossCurve",
    "analysis",
    "baselines",
    "binomial_weights",
    "direct_loss_per_feature",
    "direct_sem",
    "evaluate_sweep",
    "evaluation_key",
    "exactly_one_loss_per_feature",
    "feature_response",
    "loss_curve",
    "loss_per_feature",
    "naive_loss_per_feature",
    "neuron_contributions",
    "one_feature_loss",
    "one_hot_response",
    "plan_evaluation",
    "statistics",
    "sweep_curves",
]
