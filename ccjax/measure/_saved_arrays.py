"""Arrays that paper experiments save, computed or summarised: the semi-NMF, SVD and naive
baselines of a sweep over seeds and mixing magnitudes (docs/paper.md §5, §6.6) as the arrays
:data:`~ccjax.measure.BASELINE_ARRAYS` names, and the split of a saved sweep's training L/p
into its ReLU and mixing terms at the end of training (§2)."""

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .._types import AnyArray, Float, Int
from ..problem import seed_key
from ._array_texts import BASELINE_ARRAYS
from ._mechanisms import baseline_sweep
from ._sweep_stats import tail_mean


def baseline_sweep_arrays(
    mixing: Float[np.ndarray, "seeds n_features n_features"],
    scales: Sequence[float] | Float[np.ndarray, " scales"],
    seeds: Sequence[int] | Int[np.ndarray, " seeds"],
    d_mlp: int,
    outer_iterations: int,
    *,
    key_tag: int,
) -> dict[str, AnyArray]:
    """:func:`~ccjax.measure.baseline_sweep` of the unscaled M of each seed (``mixing[k]`` is
    ``seeds[k]``'s) at every scale, the semi-NMFs of seed k drawn from ``fold_in(seed_key(seeds[k]),
    key_tag)`` (shared by its scales and orientations), as the arrays :data:`BASELINE_ARRAYS` names:
    the exact L/p and fit errors, leading axes (seeds, scales), and the semi-NMF weights.

    Args:
        mixing: the unscaled M of each seed, (seeds, n_features, n_features).
        scales: the mixing magnitudes s, (scales,).
        seeds: the seeds, (seeds,), in the order of ``mixing``.
        d_mlp: the baselines' rank (neurons).
        outer_iterations: the semi-NMF's outer iterations.
        key_tag: folded into each seed's key, so that the semi-NMF draws stay apart from the seed's training run.

    Returns:
        ``{name: array}`` for each name of :data:`BASELINE_ARRAYS`, in its order: ``snmf_loss`` and
        ``snmf_fit_error`` (seeds, scales, O), ``svd_loss`` and ``naive_loss`` (seeds, scales), the
        semi-NMF ``snmf_w_in`` and ``snmf_w_out`` (seeds, scales, O, ...).
    """
    keys = jnp.stack([jax.random.fold_in(seed_key(int(seed)), key_tag) for seed in seeds])
    found = baseline_sweep(mixing, scales, keys, d_mlp, outer_iterations)
    fields = found._asdict() | {"snmf_w_in": found.snmf.w_in, "snmf_w_out": found.snmf.w_out}
    return {name: fields[name] for name in BASELINE_ARRAYS}


def tail_loss_terms(
    arrays: Mapping[str, AnyArray], fraction: float
) -> tuple[Float[np.ndarray, "*models"], Float[np.ndarray, "*models"]]:
    """The ReLU and the mixing term of each model's training L/p (§2), each averaged over the logs
    in the last ``fraction`` of training (:func:`~ccjax.measure.tail_mean`), from a sweep's saved
    ``history_relu_term_per_feature``, ``history_mixing_term_per_feature`` and ``history_step``
    (:func:`~ccjax.measure.sweep_arrays`; the steps are the same for every model).

    Args:
        arrays: a sweep's saved arrays, each history (*models, n_logs).
        fraction: the share of training at the end to average over, in (0, 1].

    Returns:
        ``(relu_term, mixing_term)``: each model's ReLU and mixing term of L/p, each (*models).
    """
    step = np.asarray(arrays["history_step"])
    step = step.reshape(-1, step.shape[-1])[0]
    relu, mixing = (arrays[f"history_{term}_term_per_feature"] for term in ("relu", "mixing"))
    return tail_mean(relu, step, fraction), tail_mean(mixing, step, fraction)
