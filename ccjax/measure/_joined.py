"""Sweeps without their training loop: several trained sweeps' fields joined along a grid axis
(e.g. the mixing families of paper experiment 2, trained in two sweeps because ``learn_scale``
is a static setting, §6.2), and the M each seed's run draws without training it (§6.6)."""

import operator
from collections.abc import Sequence

import numpy as np

from .._types import Float
from ..engine import SweepResult, TrainConfig, hyper_from_config, init_run
from ..problem import seed_key


def join_sweeps(results: Sequence[SweepResult], fields: Sequence[str], axis: int = 1) -> dict[str, np.ndarray]:
    """Each of ``fields`` (attribute paths of a :class:`~ccjax.SweepResult`: ``"scale"``,
    ``"params.w_in"``, ``"history.scale"``) of every sweep in ``results``, concatenated along
    grid ``axis`` (the sweeps' other axes must agree), as NumPy arrays of the fields' dtypes.

    Args:
        results: the trained sweeps.
        fields: the attribute paths to join.
        axis: the grid axis to concatenate along.

    Returns:
        ``{field: array}``: e.g. for sweeps of shape (K, F_i) and ``axis=1``, arrays of
        shape (K, sum F_i, ...) with the sweeps' models in the order of ``results``.
    """
    return {
        field: np.concatenate([np.asarray(operator.attrgetter(field)(result)) for result in results], axis=axis)
        for field in fields
    }


def initial_mixings(config: TrainConfig, seeds: Sequence[int]) -> Float[np.ndarray, "seeds n_features n_features"]:
    """The unscaled mixing matrix M that a training run of ``config`` with each of ``seeds`` draws
    (:func:`~ccjax.engine.init_run` from ``seed_key(seed)``), without training: e.g. to fit the
    semi-NMF baseline (§5, §6.6) to the Ms the trained models see, stacked as (seeds, n, n).

    Args:
        config: the training config (its mixing family and sizes fix how M is drawn).
        seeds: the runs' seeds.

    Returns:
        The unscaled M of each seed, (seeds, n_features, n_features).
    """
    hyper = hyper_from_config(config)
    return np.stack([np.asarray(init_run(config, seed_key(int(seed)), hyper).mixing) for seed in seeds])
