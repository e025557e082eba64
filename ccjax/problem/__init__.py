"""What a CC model *is* (paper §2–3): keys, sparse data, mixing families, the two model
forms, tasks (labels, loss, naive reference) and the loss.

The lowest layer of ccjax: it imports nothing from :mod:`ccjax.engine` or
:mod:`ccjax.measure`. Every function is written for one model; stack models with ``vmap``.
"""

from .._linalg import MATMUL_PRECISION_NAME, matmul
from ._batch_layout import RowLayout, default_extra_capacity, default_multi_capacity, row_layout
from ._data import (
    SparseBatch,
    default_capacity,
    entries_to_dense,
    sample_exactly_k,
    sample_exactly_one,
    sample_inputs,
    sample_sparse,
    to_dense,
)
from ._keys import seed_key
from ._loss import (
    LossTerms,
    batch_loss,
    compact_rows,
    default_row_capacity,
    dense_sse,
    labels,
    loss_terms,
    mse,
    needs_whole_batch,
    residual_labels,
)
from ._mixing import (
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
from ._model import (
    FeatureMLP,
    ResidualMLP,
    forward,
    init_feature_mlp,
    init_residual_mlp,
    residual_forward,
    to_feature_space,
)
from ._sparse_sse import direct_sparse_sse, gram_sparse_sse, quadratic_form
from ._tasks import MIXED_RELU, MixedReLU, OneFeature, Task, mixed_relu_sse, unit_squared_errors

__all__ = [
    "MATMUL_PRECISION_NAME",
    "MIXED_RELU",
    "MIXING_FAMILIES",
    "MIXING_NAMES",
    "FeatureMLP",
    "LossTerms",
    "RowLayout",
    "MixedReLU",
    "MixingFamily",
    "OneFeature",
    "ResidualMLP",
    "SparseBatch",
    "Task",
    "asymmetric_gaussian",
    "batch_loss",
    "compact_rows",
    "default_capacity",
    "default_extra_capacity",
    "default_multi_capacity",
    "default_row_capacity",
    "dense_sse",
    "direct_sparse_sse",
    "embedding",
    "embedding_mixing",
    "entries_to_dense",
    "forward",
    "gram_sparse_sse",
    "init_feature_mlp",
    "init_residual_mlp",
    "labels",
    "loss_terms",
    "low_rank",
    "make_mixing",
    "matmul",
    "mse",
    "quadratic_form",
    "needs_whole_batch",
    "residual_forward",
    "residual_labels",
    "row_layout",
    "sample_exactly_k",
    "sample_exactly_one",
    "sample_inputs",
    "sample_sparse",
    "seed_key",
    "symmetric_gaussian",
    "to_dense",
    "to_feature_space",
    "mixed_relu_sse",
    "unit_squared_errors",
]
