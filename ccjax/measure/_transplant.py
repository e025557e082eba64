"""Paper experiment 4's bookkeeping (docs/paper.md §6.4): phase 2's seeds, the arrays of a
transplant run (:func:`~ccjax.measure.fine_tuning_arrays` with the seeds and the scale) with the
descriptions a results manifest gives them.
"""

from collections.abc import Sequence

import numpy as np

from ..engine import SweepResult
from ._curves import LossCurve
from ._fine_tuning import FINE_TUNING_ARRAYS, fine_tuning_arrays

PHASE2_SEED_OFFSET = 2**31  # phase 2 of seed k runs with key(k + 2**31): a fresh data stream
TRANSPLANT_ARRAYS = {
    "seeds": "(K,) seeds of phase 1 (key(seed): M, initial weights, data)",
    "phase2_seeds": "(K,) seeds of phase 2 (seed + 2**31: its data stream)",
    **FINE_TUNING_ARRAYS,
    "scale": "() mixing scale s of phase 1",
}


def phase2_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds of phase 2 (``seed + 2**31``: data streams distinct from phase 1's), for
    phase-1 ``seeds`` below 2**31.

    Args:
        seeds: the seeds of phase 1.

    Returns:
        The seeds of phase 2, in the same order.
    """
    return [seed + PHASE2_SEED_OFFSET for seed in seeds]


def transplant_arrays(
    seeds: Sequence[int], first: SweepResult, second: SweepResult, curve: LossCurve, scale: float
) -> dict[str, np.ndarray]:
    """The arrays of :data:`TRANSPLANT_ARRAYS`, by name in its order: the phase-1 ``seeds`` and
    :func:`phase2_seeds` (int64), :func:`~ccjax.measure.fine_tuning_arrays` of the phases
    ``first`` and ``second`` and their ``curve``, and phase 1's mixing ``scale``.

    Args:
        seeds: the phase-1 seeds, (K,).
        first: phase 1, a sweep of the K models on labels with sM.
        second: phase 2, the same models fine-tuned on clean labels.
        curve: :func:`~ccjax.measure.fine_tuning_curve` of the two at one p, (3, K, 1) L/p.
        scale: phase 1's mixing scale s.

    Returns:
        ``{name: array}`` by name in the order of :data:`TRANSPLANT_ARRAYS`.
    """
    arrays = {"seeds": np.asarray(seeds), "phase2_seeds": np.asarray(phase2_seeds(seeds), np.int64)}
    return arrays | fine_tuning_arrays(first, second, curve) | {"scale": np.asarray(scale)}
