"""Paper experiment 4's bookkeeping (docs/paper.md §6.4): phase 2's seeds, the arrays of a
transplant run (:func:`~ccjax.measure.fine_tuning_arrays` with the seeds and the scale) with the
descriptions a results manifest gives them, and the paper's numbers that apply to a run.
"""

from collections.abc import Mapping, Sequence

import numpy as np

from ..engine import SweepResult
from ._curves import LossCurve
from ._fine_tuning import FINE_TUNING_ARRAYS, fine_tuning_arrays

PHASE2_SEED_OFFSET = 2**31  # phase 2 of seed k runs with key(k + 2**31): a fresh data stream
TRANSPLANT_SEEDS_NOTE = (
    "phase 2 of seed k uses key(k + 2**31): a data stream distinct from phase 1's; "
    "it starts from phase 1's weights (initial_params) with a fresh AdamW and schedule"
)
TRANSPLANT_ARRAYS = {
    "seeds": "(K,) seeds of phase 1 (key(seed): M, initial weights, data)",
    "phase2_seeds": "(K,) seeds of phase 2 (seed + 2**31: its data stream)",
    **FINE_TUNING_ARRAYS,
    "scale": "() mixing scale s of phase 1",
}


def phase2_seeds(seeds: Sequence[int]) -> list[int]:
    """The seeds of phase 2 (``seed + 2**31``: data streams distinct from phase 1's), for
    phase-1 ``seeds`` below 2**31."""
    return [seed + PHASE2_SEED_OFFSET for seed in seeds]


def transplant_arrays(
    seeds: Sequence[int], first: SweepResult, second: SweepResult, curve: LossCurve, scale: float
) -> dict[str, np.ndarray]:
    """The arrays of :data:`TRANSPLANT_ARRAYS`, by name in its order: the phase-1 ``seeds`` and
    :func:`phase2_seeds` (int64), :func:`~ccjax.measure.fine_tuning_arrays` of the phases
    ``first`` and ``second`` and their ``curve``, and phase 1's mixing ``scale``."""
    arrays = {"seeds": np.asarray(seeds), "phase2_seeds": np.asarray(phase2_seeds(seeds), np.int64)}
    return arrays | fine_tuning_arrays(first, second, curve) | {"scale": np.asarray(scale)}


def published_transplant(published: Mapping, manifest: Mapping) -> tuple[float | None, float | None]:
    """The paper's (phase 1 on mixed labels, fine-tuned on clean labels) L/p that apply to the
    saved run ``manifest``, evaluated at its ``["evaluation"]["p"]`` after a phase 1 on its
    ``["mixing"]`` (``"name"``, ``"scale"``): ``published`` gives them at its ``"p"``
    (``"finetuned_clean"``, and ``"phase1_mixed"`` by mixing family at scale 1); None for what it
    does not give."""
    mixing = manifest["mixing"]
    if manifest["evaluation"]["p"] != published["p"]:
        return None, None
    phase1 = published["phase1_mixed"].get(mixing["name"]) if mixing["scale"] == 1.0 else None
    return phase1, published["finetuned_clean"]
