"""The two training recipes of the rank-of-M experiment (docs/paper.md §6.8) and what the authors' code
does (Stefan-Heimersheim/toy-model-of-computation-in-superposition: ``paper_code/nb6_mixing_matrix_rank.py``,
``nb6_mixing_matrix_rank_jb.py`` and ``mlpinsoup.py``): what ccjax matches of it and what not, and the
script's other versions. A rank sweep's manifest records them (:func:`rank_paper_code_record`)."""

import dataclasses

from ..engine import TrainConfig

_SPEC = TrainConfig(data="exactly-one", mixing="low-rank", learn_scale=True)
RANK_CONFIGS = {
    "spec": _SPEC,
    # paper_code/nb6_mixing_matrix_rank.py (first version, commit 046b67a) with mlpinsoup.py; scale_init 0.01 as spec.
    "paper-code": dataclasses.replace(
        _SPEC, zero_diagonal=True, lr=1e-3, weight_decay=1e-2, schedule="constant", batch_size=1024, steps=30_000
    ),
}
"""The rank sweep's training config per recipe: ``spec`` (docs/paper.md §3-4: M's diagonal kept, lr 3e-3
half-cosine, batch 2048, 10,000 steps) and ``paper-code`` (the authors' first nb6 version)."""

RANK_JB_SCRIPT = {"ranks": (1000, 70, 30, 20, 9), "plotted_at": (80, 60, 40, 30, 20), "draws": 5}
"""``nb6_mixing_matrix_rank_jb.py`` (5 runs per rank, as in the paper's figure): the ranks it trains, the
effective ranks it plots them at (set by hand in the script) and its runs per rank."""

_SOURCE = (
    "Stefan-Heimersheim/toy-model-of-computation-in-superposition: paper_code/nb6_mixing_matrix_rank.py "
    "(first version, commit 046b67a) with paper_code/mlpinsoup.py (NoisyDataset, train, evaluate)"
)
_MATCHED = (
    "M = U V^T with U, V ~ N(0, 1) of shape (n, r), or an i.i.d. N(0, 1) n x n matrix for 'full rank'",
    "labels relu(x) + |s| x M^T: the code's einsum 'n_out n_in, batch n_in -> batch n_out' is ccjax's x @ M.T",
    "the labels use the magnitude |s| of the learned scale (mlpinsoup.py NoisyDataset._generate_labels; ccjax's "
    "learn_scale does the same, docs/paper.md §3), so the runs agree also where s crosses 0",
    "the learned scale multiplies only the M x term of the labels, and it is trained by the same AdamW as the "
    "weights, weight decay included (one parameter group)",
    "AdamW lr 1e-3 constant (no scheduler), weight decay 1e-2, betas 0.9/0.999, eps 1e-8 (torch defaults), "
    "batch 1024 of fresh samples, 30,000 steps, learned scale from 0.01",
    "exactly one active feature per sample (uniform), value U[-1, 1]; loss: mean squared error over batch and features",
    "W_in, W_out: kaiming-uniform, U(+-sqrt(6/50)) and U(+-sqrt(6/100)), as ccjax's init",
    "x axis: effective rank exp(entropy of the normalised singular values) of the M the labels use",
)
_DIAGONAL = {
    True: "then M's diagonal is set to 0, as in the first version (046b67a: M.fill_diagonal_(0))",
    False: "NOT the first version's diagonal: M's diagonal is kept here (--no-zero-diagonal), while 046b67a "
    "zeroes it (M.fill_diagonal_(0)); the current nb6_mixing_matrix_rank.py (c8eead4) keeps it",
}
_NOT_MATCHED = (
    "random draws: the code draws each rank's M, initial weights and data independently (data seeded from the "
    "clock); here a seed's ranks share U and V (the rank-r M uses their first r columns), the initial weights and "
    "the data stream: the same distribution per rank, paired across ranks",
    "evaluation: the code averages 1e6 Monte Carlo samples; here L/p is exact (n c_1)",
    "seeds: nb6_mixing_matrix_rank.py trains one model per rank; here --seeds models per rank",
    "its rank 100: nb6_mixing_matrix_rank.py draws an i.i.d. N(0, 1) M for every rank >= n_features, so its "
    "'rank 100' is a second full-rank draw; here rank 100 is U V^T (as in the code's next version, commit 29c3ec5, "
    "which trains 25,000 steps) and the full-rank point is separate",
    "not trained here: the code's extra fixed-scale reference (full-rank M at scale 0.035, not learned)",
)
_JB = RANK_JB_SCRIPT
_OTHER_VERSIONS = (
    f"paper_code/nb6_mixing_matrix_rank_jb.py (commit 18f361a; {_JB['draws']} runs per rank, the only version with "
    "seeds, as in the paper) uses the library defaults of its time (M's diagonal zeroed, lr 1e-3 constant, batch "
    f"1024), scale init 0.05, 30,000 steps and ranks {', '.join(map(str, _JB['ranks']))}, plotted at hand-set "
    f"effective ranks {', '.join(map(str, _JB['plotted_at']))} (those of the zeroed-diagonal M). 29c3ec5 zeroes the "
    "diagonal through NoisyDataset's default of the time and trains 25,000 steps. The latest "
    "nb6_mixing_matrix_rank.py (commit c8eead4) sets zero_diagonal=False: a symmetrised flat-spectrum M with its "
    "diagonal kept, ranks 10, 20, 50, 100 and full, 10,000 steps at lr 3e-3 (cosine), batch 2048; since 5b72674 "
    "NoisyDataset's default keeps the diagonal. This run follows the first version (046b67a); --scale-init 0.05 "
    "--ranks 9,20,30,70 comes close to the _jb run"
)
RANK_PAPER_CODE_DIFFERENCES = (
    "the first version of the authors' paper_code/nb6_mixing_matrix_rank.py (commit 046b67a) zeroes M's diagonal "
    "after forming U V^T (so its 'rank r' M is full rank) and trains 30,000 steps at a constant lr 1e-3 with batch "
    "1024 (--convention paper-code); 29c3ec5 zeroes it through NoisyDataset's default of the time; the current "
    "version (c8eead4) keeps it (zero_diagonal=False). --zero-diagonal zeroes it under any recipe"
)
"""How the authors' code's diagonal and recipe differ from the spec's (a spec run's manifest records it)."""


def rank_paper_code_record(zero_diagonal: bool) -> dict:
    """What a rank sweep under the authors' recipe (``RANK_CONFIGS["paper-code"]``, §6.8) matches of
    the authors' code and what not, with M's diagonal zeroed (as their first version) or kept:
    ``source``, ``matched`` and ``not_matched`` (lists of sentences) and ``other_versions``.

    Args:
        zero_diagonal: whether the sweep set M's diagonal to 0 (as the first version, commit 046b67a).

    Returns:
        The record: ``{"source": str, "matched": [str], "not_matched": [str], "other_versions": str}``.
    """
    note = [_DIAGONAL[zero_diagonal]]
    matched = [*_MATCHED, *note] if zero_diagonal else list(_MATCHED)
    not_matched = list(_NOT_MATCHED) if zero_diagonal else [*note, *_NOT_MATCHED]
    return {"source": _SOURCE, "matched": matched, "not_matched": not_matched, "other_versions": _OTHER_VERSIONS}
