"""Mechanism analyses of one model against its label map (docs/paper.md §6.5, §6.8).

Each function takes one model and its scaled mixing matrix ``sM`` (or the target map)
and returns arrays. All are pure and jittable; ``vmap`` over stacked params for a sweep,
e.g. ``jax.vmap(eigen_alignment, in_axes=(0, None))(stacked, scaled_mixing)``.

Conventions. ccjax uses ROW vectors: ``FeatureMLP(w_in: (n_features, d_mlp),
w_out: (d_mlp, n_features))``, ``f(x) = relu(x @ w_in) @ w_out``, labels
``relu(x) + x @ (s M).T``. The paper writes COLUMN vectors (PyTorch ``nn.Linear``
weights), so in its notation:

* the label map is ``s M`` (column j is the effect of feature j), and the linear target
  map on non-negative inputs is ``I + s M`` (:func:`column_target`);
* the model's ``W_out W_in`` is ours ``A = (w_in @ w_out).T`` (:func:`linear_map`).

Every analysis here is in the column convention, so ``A`` is compared with ``s M`` entry
by entry, as in the paper's figures. Eigen- and singular vectors are columns, ordered by
descending eigen- / singular value, with the sign fixed so that each vector's
largest-|entry| is positive (seeds can then be averaged).

Per-model response analyses (each feature's input–output curve, ``W_out ⊙ W_in`` per
neuron, ±1 one-hot response heatmaps) live in :mod:`ccjax.measure`.

The rank analyses at the end (:func:`rank_trend`, :func:`settled_ratio`) are NumPy and
run on the host, on losses and histories already measured over seeds (§6.8).
"""

from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import entr
from jaxtyping import Real

from .._linalg import matmul
from .._types import AnyArray, Array, Float, Int
from ..problem._model import FeatureMLP
from ._low_rank import low_rank_effective_ranks  # noqa: F401  (re-exported: ccjax.analysis)
from .statistics import finite_mean, mean_and_sem


class EigenBasis(NamedTuple):
    """Eigenvalues (descending) and unit eigenvectors (columns, same order).

    Attributes:
        values: the eigenvalues, (n_features,), descending.
        vectors: the unit eigenvectors as columns, (n_features, n_features); column i belongs to
            ``values[i]`` and has its largest-|entry| positive.
    """

    values: Float[Array, " n_features"]
    vectors: Float[Array, "n_features n_features"]


class SingularBasis(NamedTuple):
    """``T = left @ diag(values) @ right.T``: singular vectors as columns, values descending.

    Attributes:
        left: the left singular vectors U as columns, (n_features, n_features); each has its
            largest-|entry| positive.
        values: the singular values S, (n_features,), descending.
        right: the right singular vectors V as columns, (n_features, n_features), signed with U.
    """

    left: Float[Array, "n_features n_features"]
    values: Float[Array, " n_features"]
    right: Float[Array, "n_features n_features"]


class EigenProjections(NamedTuple):
    """Entry (i, h): ``<E_i, w_in[:, h]>`` and ``<E_i, w_out[h, :]>``.

    Attributes:
        w_in: ``E·W_in``, (n_features, d_mlp): row i eigenvector E_i (descending eigenvalue),
            column h neuron h's input weights ``w_in[:, h]``.
        w_out: ``E·W_out``, (n_features, d_mlp): the same for the output weights ``w_out[h, :]``.
    """

    w_in: Float[Array, "n_features d_mlp"]
    w_out: Float[Array, "n_features d_mlp"]


class SubspaceShare(NamedTuple):
    """Share of ``‖W_in‖_F²`` and of ``‖W_out‖_F²`` inside the top-k eigen-subspace.

    Attributes:
        w_in: the share of ``‖W_in‖_F²``, a scalar in [0, 1].
        w_out: the share of ``‖W_out‖_F²``, a scalar in [0, 1].
    """

    w_in: Float[Array, ""]
    w_out: Float[Array, ""]


class EntryFit(NamedTuple):
    """``A_ij ≈ off_diagonal_slope · sM_ij`` (i ≠ j); ``A_ii ≈ diagonal_slope · sM_ii + diagonal_intercept``.

    Attributes:
        off_diagonal_slope: slope through the origin of A's off-diagonal entries against sM's
            (scalar; nan if sM's off-diagonal is zero).
        diagonal_slope: slope of ``diag(A)`` against ``diag(sM)`` (scalar; nan if ``diag(sM)`` is constant).
        diagonal_intercept: intercept of that fit (scalar; ``mean(diag(A))`` if ``diag(sM)`` is constant).
    """

    off_diagonal_slope: Float[Array, ""]
    diagonal_slope: Float[Array, ""]
    diagonal_intercept: Float[Array, ""]


def _positive_largest_entry(vectors: Float[Array, "n k"]) -> Float[Array, " k"]:
    """±1 per column, making each column's largest-|entry| (first on ties) positive."""
    largest = vectors[jnp.argmax(jnp.abs(vectors), axis=0), jnp.arange(vectors.shape[1])]
    return jnp.where(largest < 0, -1.0, 1.0).astype(vectors.dtype)


def _image_cosines(
    vectors: Float[Array, "n k"], linear: Float[Array, "n n"], inputs: Float[Array, "n k"]
) -> Float[Array, " k"]:
    """``cos(vectors_i, linear @ inputs_i)`` for unit columns; 0 where the image vanishes.

    An image at rounding level, ``‖A v‖ ≤ n · eps · ‖A‖_F``, counts as zero: its direction
    is float32 noise (a direction in A's null space would otherwise get a random cosine
    of order 0.1 instead of 0).
    """
    image = matmul(linear, inputs)
    norms = jnp.linalg.norm(image, axis=0)
    floor = linear.shape[0] * jnp.finfo(jnp.float32).eps * jnp.linalg.norm(linear)
    kept = norms > floor
    return jnp.where(kept, jnp.sum(vectors * image, axis=0) / jnp.where(kept, norms, 1.0), 0.0)


def linear_map(params: FeatureMLP) -> Float[Array, "n_features n_features"]:
    """``A = (w_in @ w_out).T``, the paper's ``W_out W_in`` in column convention (§6.5).

    Column j is the model's output for the input ``e_j`` when ReLU passes every neuron,
    e.g. ``forward(params, e_j) = A[:, j]`` whenever ``w_in[j] ≥ 0``. ReLU blocks negative
    pre-activations, so in general A is not what the model computes; the paper
    nonetheless analyses this product, and so do we.

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).

    Returns:
        ``A``, (n_features, n_features).
    """
    return matmul(params.w_in, params.w_out).T


def column_target(scaled_mixing: Float[AnyArray, "n_features n_features"]) -> Float[Array, "n_features n_features"]:
    """``I + sM``: the label map on non-negative inputs in column convention (§5).

    Equals ``baselines.target_map(M, s, "faithful").T`` (that one is the ROW-convention
    matrix ``(I + sM)^T`` with ``y = x T``), and numerically also
    ``target_map(M, s, "paper-code")``. :func:`linear_map` of a model that fits the
    labels on non-negative inputs exactly equals this matrix.

    Args:
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        ``I + sM``, (n_features, n_features), float32.
    """
    n_features = scaled_mixing.shape[0]
    return jnp.eye(n_features, dtype=jnp.float32) + scaled_mixing.astype(jnp.float32)


def eigenbasis(scaled_mixing: Float[AnyArray, "n_features n_features"]) -> EigenBasis:
    """Eigenvalues (descending) and eigenvectors E of ``(sM + sM^T)/2`` (§6.5).

    Each eigenvector's largest-|entry| is positive. The eigenvectors of ``I + sM``'s
    symmetric part are the same, so this is also the target map's eigenbasis.

    Args:
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        The eigenbasis: ``values`` (n_features,) and ``vectors`` (n_features, n_features).
    """
    m = scaled_mixing.astype(jnp.float32)
    values, vectors = jnp.linalg.eigh(0.5 * (m + m.T))
    values, vectors = values[::-1], vectors[:, ::-1]  # eigh sorts ascending
    return EigenBasis(values=values, vectors=vectors * _positive_largest_entry(vectors)[None, :])


def svd_basis(target: Float[AnyArray, "n_features n_features"]) -> SingularBasis:
    """SVD ``T = U S V^T`` of a (column-convention) target map, e.g. :func:`column_target`.

    Each pair (U_i, V_i) is negated together so that U_i's largest-|entry| is positive.

    Args:
        target: the target map T in column convention, (n_features, n_features).

    Returns:
        The singular basis: ``left`` U, ``values`` S and ``right`` V.
    """
    u, s, vt = jnp.linalg.svd(target.astype(jnp.float32), full_matrices=False)
    sign = _positive_largest_entry(u)
    return SingularBasis(left=u * sign[None, :], values=s, right=vt.T * sign[None, :])


def eigen_alignment(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]
) -> Float[Array, " n_features"]:
    """``cos(E_i, A E_i)`` for every eigenvector E_i of ``(sM + sM^T)/2`` (§6.5).

    ``A`` is :func:`linear_map`; i runs in descending-eigenvalue order. The paper
    (asymmetric σ = 0.03, 20k steps) finds ≈0.97 for i ≲ 20, ≈0.89 at 40, a collapse
    near i = d_mlp = 50 and ≈0–0.1 for i ≥ 70. 0 where ``A E_i`` is 0 (to rounding).

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        The cosines, (n_features,), in [-1, 1], descending-eigenvalue order.
    """
    vectors = eigenbasis(scaled_mixing).vectors
    return _image_cosines(vectors, linear_map(params), vectors)


def svd_alignment(params: FeatureMLP, target: Float[AnyArray, "n_features n_features"]) -> Float[Array, " n_features"]:
    """``cos(U_i, A V_i)`` for the SVD ``T = U S V^T`` of the target map (§6.5).

    ``target`` is in column convention, ``I + sM`` (:func:`column_target`), not the
    ROW-convention ``baselines.target_map(M, s, "faithful")``: pass that one transposed.
    Since ``T V_i = S_i U_i``, a model with ``A = T`` scores 1 everywhere, and the SVD
    baseline ``svd_model(target_map(M, s, "faithful"), d)`` (for which A is T's best
    rank-d approximation) scores 1 for i < d and 0 beyond. 0 where ``A V_i`` is 0 (to rounding).

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        target: the target map T in column convention, (n_features, n_features).

    Returns:
        The cosines, (n_features,), in [-1, 1], in descending-singular-value order.
    """
    basis = svd_basis(target)
    return _image_cosines(basis.left, linear_map(params), basis.right)


def eigen_projections(params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]) -> EigenProjections:
    """``E·W_in`` and ``E·W_out``: each neuron's weights in M's eigenbasis (§6.5 heatmaps).

    Row i is eigenvector E_i (descending eigenvalue), column h is neuron h: entries
    ``<E_i, w_in[:, h]>`` (input weights) and ``<E_i, w_out[h, :]>`` (output weights).

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        The projections ``w_in`` and ``w_out``, each (n_features, d_mlp).
    """
    vectors = eigenbasis(scaled_mixing).vectors
    return EigenProjections(w_in=matmul(vectors.T, params.w_in), w_out=matmul(vectors.T, params.w_out.T))


def subspace_share(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"], k: int | Int[Array, ""] | None = None
) -> SubspaceShare:
    """Share of ``‖W_in‖_F²`` and of ``‖W_out‖_F²`` in the span of the top-k eigenvectors.

    The eigenvectors are those of :func:`eigenbasis`; ``k`` defaults to d_mlp (the paper's
    claim, §6: the learned neurons live in the top-50 eigen-subspace) and may be traced.
    A zero weight matrix has share 0.

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).
        k: how many leading eigenvectors span the subspace (int or traced scalar); None: d_mlp.

    Returns:
        The shares ``w_in`` and ``w_out``, scalars in [0, 1].
    """
    n_features, d_mlp = params.w_in.shape
    k = d_mlp if k is None else k
    projections = eigen_projections(params, scaled_mixing)
    kept = (jnp.arange(n_features) < k).astype(jnp.float32)

    def share(projected, weights):
        total = jnp.sum(jnp.square(weights))
        inside = jnp.sum(jnp.square(projected) * kept[:, None])
        return jnp.where(total > 0, inside / jnp.where(total > 0, total, 1.0), 0.0)

    return SubspaceShare(w_in=share(projections.w_in, params.w_in), w_out=share(projections.w_out, params.w_out))


def entry_correlation(params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]) -> EntryFit:
    """Least-squares fits of A's entries against sM's (the §6.5 scatter; A = :func:`linear_map`).

    * Off-diagonal: slope through the origin, ``Σ A_ij sM_ij / Σ sM_ij²`` over i ≠ j
      (paper, asymmetric σ = 0.03: ≈1.86); nan if sM's off-diagonal is zero.
    * Diagonal: ``diag(A) ≈ a · diag(sM) + b`` (paper: ≈3.38x + 0.62). If diag(sM) is
      constant up to rounding (e.g. the embedding M, whose diagonal is 0) the slope is
      undetermined: it is nan, and the intercept is the best constant, ``mean(diag(A))``.

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        The fit's ``off_diagonal_slope``, ``diagonal_slope`` and ``diagonal_intercept``, scalars.
    """
    a = linear_map(params)
    m = scaled_mixing.astype(jnp.float32)
    n_features = m.shape[0]
    off = 1.0 - jnp.eye(n_features, dtype=jnp.float32)
    off_norm = jnp.sum(jnp.square(m) * off)
    off_slope = jnp.where(off_norm > 0, jnp.sum(a * m * off) / jnp.where(off_norm > 0, off_norm, 1.0), jnp.nan)

    x, y = jnp.diagonal(m), jnp.diagonal(a)
    x_centred = x - jnp.mean(x)
    spread = jnp.sum(jnp.square(x_centred))
    # A spread at rounding level (relative to M's largest entry) would give a huge,
    # meaningless slope, so it counts as degenerate. The zero M gives 0 <= 0.
    degenerate = spread <= n_features * jnp.square(jnp.finfo(jnp.float32).eps * jnp.max(jnp.abs(m)))
    slope = jnp.sum(x_centred * (y - jnp.mean(y))) / jnp.where(degenerate, 1.0, spread)
    intercept = jnp.mean(y) - jnp.where(degenerate, 0.0, slope) * jnp.mean(x)
    return EntryFit(
        off_diagonal_slope=off_slope,
        diagonal_slope=jnp.where(degenerate, jnp.nan, slope),
        diagonal_intercept=intercept,
    )


def effective_rank(matrix: Float[AnyArray, "rows cols"]) -> Float[Array, ""]:
    """``exp(entropy of the normalised singular values)`` (paper experiment 8).

    n for any multiple of an orthogonal n×n matrix, r for r equal non-zero singular
    values, 1 for a rank-one matrix; 0/0 (the zero matrix) gives nan.

    Args:
        matrix: any matrix, (rows, cols); cast to float32.

    Returns:
        The effective rank, a scalar in [1, min(rows, cols)] (nan for the zero matrix).
    """
    singular = jnp.linalg.svd(matrix.astype(jnp.float32), compute_uv=False)
    return jnp.exp(jnp.sum(entr(singular / jnp.sum(singular))))


class Alignment(NamedTuple):
    """Every analysis above of one model against its label map ``sM`` (§6.5), by name.

    Attributes:
        eigenvalues: the eigenvalues of ``(sM + sM^T)/2``, (n_features,), descending (:func:`eigenbasis`).
        eigen_cos: :func:`eigen_alignment`, (n_features,).
        svd_cos: :func:`svd_alignment` against ``column_target(sM)``, (n_features,).
        projection_in: ``E·W_in`` of :func:`eigen_projections`, (n_features, d_mlp).
        projection_out: ``E·W_out`` of :func:`eigen_projections`, (n_features, d_mlp).
        share_in: :func:`subspace_share` of ``‖W_in‖_F²`` in the top-d_mlp eigenvectors (scalar).
        share_out: the same for ``‖W_out‖_F²`` (scalar).
        off_diagonal_slope: :func:`entry_correlation`'s off-diagonal slope (scalar).
        diagonal_slope: :func:`entry_correlation`'s diagonal slope (scalar).
        diagonal_intercept: :func:`entry_correlation`'s diagonal intercept (scalar).
        effective_rank: :func:`effective_rank` of :func:`linear_map` (scalar).
        linear_map: :func:`linear_map` ``A``, (n_features, n_features).
    """

    eigenvalues: Float[Array, " n_features"]
    eigen_cos: Float[Array, " n_features"]
    svd_cos: Float[Array, " n_features"]
    projection_in: Float[Array, "n_features d_mlp"]
    projection_out: Float[Array, "n_features d_mlp"]
    share_in: Float[Array, ""]
    share_out: Float[Array, ""]
    off_diagonal_slope: Float[Array, ""]
    diagonal_slope: Float[Array, ""]
    diagonal_intercept: Float[Array, ""]
    effective_rank: Float[Array, ""]
    linear_map: Float[Array, "n_features n_features"]


def alignment(params: FeatureMLP, scaled_mixing: Float[AnyArray, "n_features n_features"]) -> Alignment:
    """:class:`Alignment`: the eigen- and SVD alignment, eigen-projections and subspace shares of
    the weights, the entry fits of A against ``sM`` and A's effective rank (§6.5).

    Jittable; ``vmap`` over stacked params and label maps for a sweep.

    Args:
        params: the model (one model: w_in (n_features, d_mlp), w_out (d_mlp, n_features)).
        scaled_mixing: the labels' scaled mixing matrix ``sM``, (n_features, n_features).

    Returns:
        Every analysis, by name.
    """
    basis, target = eigenbasis(scaled_mixing), column_target(scaled_mixing)
    projection, share = eigen_projections(params, scaled_mixing), subspace_share(params, scaled_mixing)
    fit, linear = entry_correlation(params, scaled_mixing), linear_map(params)
    return Alignment(
        basis.values,
        eigen_alignment(params, scaled_mixing),
        svd_alignment(params, target),
        projection.w_in,
        projection.w_out,
        share.w_in,
        share.w_out,
        *fit,
        effective_rank(linear),
        linear,
    )


def spearman_correlation(x: Real[np.ndarray, " points"], y: Real[np.ndarray, " points"]) -> float:
    """Spearman's rank correlation of ``x`` and ``y``: the Pearson correlation of their ranks.

    Ties are ranked in order of position, not averaged (meant for distinct values).

    Args:
        x: the first values, (points,).
        y: the second values, (points,), paired with ``x``.

    Returns:
        The correlation, a float in [-1, 1]; nan for a single point.
    """
    rank_x, rank_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float("nan") if np.all(rank_y == rank_y[0]) else float(np.corrcoef(rank_x, rank_y)[0, 1])


class RankTrend(NamedTuple):
    """How a loss changes with the rank of M over seeds (:func:`rank_trend`, §6.8).

    Attributes:
        slope: mean over seeds of d(loss)/d ln(effective rank), in the loss's units; > 0: lower
            rank, lower loss.
        slope_sem: its SEM over seeds (nan for one seed).
        spearman: mean over seeds of Spearman(rank, loss).
        spearman_sem: its SEM over seeds (nan for one seed).
        rises: adjacent rank pairs whose seed-mean loss rises with rank.
        steps: adjacent rank pairs (ranks − 1).
        seeds_with_positive_slope: seeds whose slope is > 0.
        n_seeds: seeds.
    """

    slope: float
    slope_sem: float
    spearman: float
    spearman_sem: float
    rises: int
    steps: int
    seeds_with_positive_slope: int
    n_seeds: int


def rank_trend(
    ranks: Real[np.ndarray, " ranks"],
    effective_rank: Real[np.ndarray, "seeds ranks"],
    loss: Real[np.ndarray, "seeds ranks"],
) -> RankTrend | None:
    """The trend of ``loss`` (e.g. L/p) against the rank of M, paired within each seed (§6.8).

    Per seed: the least-squares slope of the loss against ``ln(effective_rank)`` and the
    Spearman correlation of ``ranks`` (ascending) and the loss; their means and SEMs over
    seeds, and how many adjacent ranks the seed-mean loss rises between.

    Args:
        ranks: the ranks of M, (ranks,), ascending.
        effective_rank: the effective rank of each seed's M at each rank, (seeds, ranks).
        loss: the loss of each (seed, rank), (seeds, ranks), e.g. L/p; the seed-mean loss skips
            non-finite entries (diverged models).

    Returns:
        The trend over seeds; None for fewer than two ranks.
    """
    if loss.shape[1] < 2:
        return None
    slopes = np.array([np.polyfit(np.log(x), y, 1)[0] for x, y in zip(effective_rank, loss, strict=True)])
    rhos = [spearman_correlation(ranks, y) for y in loss]
    (slope, slope_sem), (rho, rho_sem) = mean_and_sem(slopes), mean_and_sem(rhos)
    steps = np.diff(finite_mean(loss))
    counts = int(np.sum(steps > 0)), int(steps.size), int(np.sum(slopes > 0)), int(slopes.size)
    return RankTrend(float(slope), float(slope_sem), float(rho), float(rho_sem), *counts)


def relative_to_final(history: Real[np.ndarray, "*models logs"]) -> Float[np.ndarray, "*models logs"]:
    """A logged quantity (e.g. a learned scale, §6.8) over its final value, per model, in float64.

    Args:
        history: the logged values, (*models, logs), the last log being the final value.

    Returns:
        ``history / history[..., -1:]``, (*models, logs), float64; inf or nan where the final value is 0.
    """
    history = np.asarray(history, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return history / history[..., -1:]


def settled_ratio(
    steps: Real[np.ndarray, " logs"], history: Real[np.ndarray, "*models logs"]
) -> Float[np.ndarray, "*models"] | np.floating:
    """A logged quantity (e.g. a learned scale, §6.8) at the logged step nearest half the run over
    its final value, per model: near 1 when it settled by mid-training.

    Args:
        steps: the training steps of the logs, (logs,), ascending (the last is the run's end).
        history: the logged values, (*models, logs).

    Returns:
        The ratio per model, (*models,), float64 (a NumPy scalar for a single history); nan with one log.
    """
    if steps.size < 2:  # one logging interval: nothing to compare with
        return np.full(np.shape(history)[:-1], np.nan)
    return relative_to_final(history)[..., int(np.argmin(np.abs(steps - steps[-1] / 2)))]
