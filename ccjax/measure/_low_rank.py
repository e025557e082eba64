"""The effective rank of random low-rank mixing matrices, with and without their diagonal (§6.8)."""

from collections.abc import Sequence

import numpy as np

from .._types import Float


def low_rank_effective_ranks(
    ranks: Sequence[int] | np.ndarray, zero_diagonal: bool, n_features: int = 100, draws: int = 5, seed: int = 0
) -> Float[np.ndarray, " ranks"]:
    """Mean effective rank of ``M = U Vᵀ``, U and V ~ N(0, 1) of shape (n_features, r), for each
    r of ``ranks``, over ``draws`` draws (from ``numpy.random.default_rng(seed)``, in the order of
    ``ranks``), with M's diagonal set to 0 or kept (paper experiment 8; the authors' plots put
    their ranks at hand-set effective ranks, which this tells apart).

    The effective rank is that of :func:`ccjax.measure.analysis.effective_rank`, exp(entropy of the
    normalised singular values), computed in float64 NumPy (fast for these few SVDs).
    Zeroing the diagonal lifts a rank-r M to full rank, and its effective rank far above r.
    """
    rng = np.random.default_rng(seed)
    diagonal = np.arange(n_features)
    means = []
    for rank in ranks:
        u, v = rng.standard_normal((2, draws, n_features, rank))
        mixing = u @ np.swapaxes(v, -1, -2)
        if zero_diagonal:
            mixing[:, diagonal, diagonal] = 0.0
        weights = np.linalg.svd(mixing, compute_uv=False)
        weights /= weights.sum(axis=-1, keepdims=True)
        entropy = -np.sum(weights * np.log(np.where(weights > 0, weights, 1.0)), axis=-1)  # 0 log 0 = 0
        means.append(np.mean(np.exp(entropy)))
    return np.asarray(means, np.float64)
