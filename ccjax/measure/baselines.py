"""Hand-built baselines: zero, naive, naive + offset, SVD and semi-NMF (docs/paper.md §5).

Every baseline is a :class:`~ccjax.problem.FeatureMLP`, the pytree of a trained model, so
every evaluation and analysis applies to it unchanged.

The linear baselines (SVD, semi-NMF) factorise the *target map* ``T``: the linear map the
labels ``relu(x) + s M x`` apply to non-negative inputs. For row vectors, ``x ≥ 0`` gives
``y = x + x (s M)^T = x (I + s M)^T``, so the faithful target is ``(I + s M)^T``. The
paper's code factorises ``I + s M`` (``"paper-code"``); the two agree when M = M^T
(docs/paper.md §5, orientation caveat). A model ``relu(x W_in) W_out`` with ``W_in ≥ 0``
computes ``x W_in W_out`` on such inputs, hence the factorisation ``T ≈ W_in W_out``.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_finite, check_width
from .._linalg import matmul
from .._types import AnyArray, Array, Float, Key, PRNGKeyArray
from ..problem._model import FeatureMLP
from ._curves import exactly_one_loss_per_feature

ORIENTATIONS: tuple[str, ...] = ("faithful", "paper-code")

# Lee–Seung denominators: keeps 0/0 finite; small against the entries of |I + s M| (≈1).
_NMF_EPS = 1e-10


# --- zero, naive, naive + offset ------------------------------------------------------


def zero_model(n_features: int = 100, d_mlp: int = 50) -> FeatureMLP:
    """All-zero weights: L/p = 1/6 on clean labels (docs/paper.md §5).

    Args:
        n_features: the number of features n (default 100, the paper's).
        d_mlp: the number of neurons d, from 0 to ``n_features`` (default 50, the paper's).

    Returns:
        The zero model: ``w_in`` (n_features, d_mlp) and ``w_out`` (d_mlp, n_features), float32.

    Raises:
        ValueError: ``n_features`` is not an integer ≥ 1 or ``d_mlp`` not one from 0 to ``n_features``.
    """
    check_width(d_mlp, n_features)
    return FeatureMLP(
        w_in=jnp.zeros((n_features, d_mlp), jnp.float32),
        w_out=jnp.zeros((d_mlp, n_features), jnp.float32),
    )


def naive_model(n_features: int = 100, d_mlp: int = 50, offset=0.0) -> FeatureMLP:
    """The naive model, optionally with an offset (docs/paper.md §5).

    ``W_in[f, f] = W_out[f, f] = 1`` for ``f < d_mlp``: each neuron computes one feature's
    ReLU exactly and the rest are dropped (L/p = (n − d)/n · 1/6 on clean labels). With
    ``offset = b`` every neuron also writes b into every unrepresented feature,
    ``W_out[:, d_mlp:] = b`` ("naive + offset").

    Args:
        n_features: the number of features n (default 100, the paper's).
        d_mlp: the number of neurons d, from 0 to ``n_features`` (default 50, the paper's).
        offset (float | Array): the offset b written into every unrepresented feature (0: the plain naive
            model); may be traced (vmappable).

    Returns:
        The model: ``w_in`` (n_features, d_mlp) and ``w_out`` (d_mlp, n_features), float32.

    Raises:
        ValueError: ``n_features`` is not an integer ≥ 1, ``d_mlp`` not one from 0 to ``n_features``, or a
            concrete ``offset`` is not finite.
    """
    check_width(d_mlp, n_features)
    check_finite("offset", offset)
    eye = jnp.eye(n_features, d_mlp, dtype=jnp.float32)
    unrepresented = (jnp.arange(n_features) >= d_mlp).astype(jnp.float32)
    w_out = eye.T + jnp.asarray(offset, jnp.float32) * jnp.broadcast_to(unrepresented, (d_mlp, n_features))
    return FeatureMLP(w_in=eye, w_out=w_out)


def _offset_coefficients(p, scaled_mixing, n_features: int, d_mlp: int):
    """``(constant, linear, quadratic)`` with ``n L/p = constant − b linear + b² quadratic``."""
    n, d = n_features, d_mlp
    quadratic = (n - d) * (d / 6.0 + d * (d - 1) * p / 16.0)
    if scaled_mixing is None:
        return (n - d) / 6.0, (n - d) * d * p / 8.0, quadratic
    m = jnp.asarray(scaled_mixing, jnp.float32)
    constant = jnp.sum(m**2) / 3.0 + (n - d) / 6.0 + jnp.trace(m[d:, d:]) / 3.0
    linear = (n - d) * d * p / 8.0 + jnp.sum(m[d:, :d]) / 3.0
    return constant, linear, quadratic


def offset_loss_per_feature(b, p, scaled_mixing=None, n_features: int = 100, d_mlp: int = 50):
    """Exact L/p of naive + offset b at feature probability p, for labels ``relu(x) + s M x`` (§5).

    Features are independent with ``E x = 0``, ``E x^2 = p/3``, ``E relu(x) = p/4`` and
    ``E relu(x)^2 = E relu(x) x = p/6``. A represented feature j < d has error
    ``-(s M x)_j``; an unrepresented one ``b S - relu(x_j) - (s M x)_j`` with
    ``S = Σ_{i<d} relu(x_i)``. Taking expectations, with ``A = s M``:

        n L/p = Σ_jk A_jk²/3 + Σ_{j≥d} [1/6 + A_jj/3 + b² (d/6 + d(d−1)p/16)
                                        − b (d p/8 + Σ_{i<d} A_ji / 3)].

    ``scaled_mixing=None`` means clean labels; for n = 100, d = 50 that is the paper's
    ``½[1/6 − 6.25 p b + b² (25/3 + 153.125 p)]``.

    Args:
        b (float | Array): the offset (scalar or array; broadcasts with ``p``).
        p (float | Array): the feature probability (scalar or array).
        scaled_mixing (Array | None): the labels' ``s M``, (n_features, n_features); None: clean labels.
        n_features: the number of features n (default 100, the paper's).
        d_mlp: the number of neurons d, from 0 to ``n_features`` (default 50, the paper's).

    Returns:
        (Array): L/p, elementwise in ``b`` and ``p`` (their broadcast shape).
    """
    constant, linear, quadratic = _offset_coefficients(p, scaled_mixing, n_features, d_mlp)
    return (constant - b * linear + b**2 * quadratic) / n_features


def optimal_offset(p, scaled_mixing=None, n_features: int = 100, d_mlp: int = 50):
    """The best offset b*(p) and its exact L/p, for clean labels or any ``s M`` (§5).

    :func:`offset_loss_per_feature` is a quadratic in b, so ``b* = linear / (2 quadratic)``.
    On clean labels ``b* = 3p / (8 + 3(d−1)p)``: at n = 100, d = 50, b* ≈ 0.0194 with
    L/p ≈ 0.0531 at p = 1, and 0.0132 with 0.0813 at p = 0.1 (the paper's numbers).

    Args:
        p (float | Array): the feature probability (scalar or array).
        scaled_mixing (Array | None): the labels' ``s M``, (n_features, n_features); None: clean labels.
        n_features: the number of features n (default 100, the paper's).
        d_mlp: the number of neurons d, from 0 to ``n_features`` (default 50, the paper's).

    Returns:
        b_star (Array): the best offset b*, elementwise in ``p``.
        loss_per_feature (Array): its L/p, elementwise in ``p``.
    """
    constant, linear, quadratic = _offset_coefficients(p, scaled_mixing, n_features, d_mlp)
    b_star = linear / (2.0 * quadratic)
    return b_star, offset_loss_per_feature(b_star, p, scaled_mixing, n_features, d_mlp)


# --- the target map and the SVD baseline ---------------------------------------------


def target_map(
    mixing: Float[Array, "n_features n_features"], scale=1.0, orientation: str = "faithful"
) -> Float[Array, "n_features n_features"]:
    """The label map on non-negative row inputs, ``y = x T`` (§5, module docstring).

    ``"faithful"``: ``T = (I + s M)^T``, what the labels actually apply. ``"paper-code"``:
    ``T = I + s M``, what the paper's code factorises (``np.eye(n) + Mscaled`` in
    ``paper_code/nb7_semi_nmf_solution.py``).

    Args:
        mixing: the unscaled mixing matrix M, (n_features, n_features).
        scale (float | Array): the mixing scale s (scalar; may be traced).
        orientation: ``"faithful"`` or ``"paper-code"`` (:data:`ORIENTATIONS`).

    Returns:
        T, (n_features, n_features), float32.

    Raises:
        ValueError: an unknown ``orientation``.
    """
    if orientation not in ORIENTATIONS:
        raise ValueError(f"unknown orientation {orientation!r}; choose one of {', '.join(ORIENTATIONS)}")
    n_features = mixing.shape[0]
    column_map = jnp.eye(n_features, dtype=jnp.float32) + scale * mixing.astype(jnp.float32)
    return column_map.T if orientation == "faithful" else column_map


def flip_neuron_signs(params: FeatureMLP) -> FeatureMLP:
    """Negate each neuron whose W_in column has its largest-|entry| negative (§5).

    Negating W_in column j and W_out row j together leaves ``W_in W_out`` unchanged but
    makes the neuron fire on its dominant feature (paper code ``flip_negative_weights``).

    Args:
        params: one model, ``w_in`` (n_features, d_mlp) and ``w_out`` (d_mlp, n_features).

    Returns:
        The model with those neurons negated, of the same shapes.
    """
    d_mlp = params.w_in.shape[1]
    dominant = params.w_in[jnp.argmax(jnp.abs(params.w_in), axis=0), jnp.arange(d_mlp)]
    sign = jnp.where(dominant < 0, -1.0, 1.0).astype(params.w_in.dtype)
    return FeatureMLP(w_in=params.w_in * sign[None, :], w_out=params.w_out * sign[:, None])


def svd_model(target: Float[Array, "n_features n_features"], d_mlp: int = 50, flip_signs: bool = True) -> FeatureMLP:
    """Top-``d_mlp`` SVD of ``T = U S V^T``: ``W_in = U_d S_d``, ``W_out = V_d^T`` (§5).

    ``W_in W_out`` is the best rank-d approximation of T; the singular values sit on W_in
    as in the paper code (``get_svd_model``). With ``flip_signs`` the neurons are
    sign-normalised by :func:`flip_neuron_signs`.

    Args:
        target: the target map T in row convention, (n_features, n_features), e.g. :func:`target_map`.
        d_mlp: the number of neurons, i.e. the rank kept (default 50, the paper's).
        flip_signs: whether to apply :func:`flip_neuron_signs`.

    Returns:
        The model: ``w_in`` (n_features, d_mlp) and ``w_out`` (d_mlp, n_features).
    """
    u, s, vt = jnp.linalg.svd(target.astype(jnp.float32), full_matrices=False)
    params = FeatureMLP(w_in=u[:, :d_mlp] * s[None, :d_mlp], w_out=vt[:d_mlp])
    return flip_neuron_signs(params) if flip_signs else params


# --- NMF and semi-NMF ----------------------------------------------------------------


def nmf(
    x: Float[Array, "n m"], rank: int, key: PRNGKeyArray, iterations: int = 2000
) -> tuple[Float[Array, "n rank"], Float[Array, "rank m"]]:
    """Non-negative ``x ≈ W H`` by Lee–Seung multiplicative updates (Frobenius loss).

    Initialised like scikit-learn's ``init="random"``: ``|N(0, 1)| · sqrt(mean(x)/rank)``
    for both factors. The paper used scikit-learn's ``NMF(init="random", max_iter=5000)``
    (coordinate descent); this pure-JAX stand-in reaches a comparable local optimum, not
    the same one, and only seeds :func:`semi_nmf`. Deterministic given ``key``.

    Args:
        x: the non-negative matrix to factorise, (n, m); cast to float32.
        rank: the inner dimension of the factors.
        key: PRNG key of the random initialisation.
        iterations: multiplicative updates (each updates H, then W).

    Returns:
        ``(W, H)``: non-negative factors, (n, rank) and (rank, m).
    """
    x = x.astype(jnp.float32)
    w_key, h_key = jax.random.split(key)
    avg = jnp.sqrt(jnp.mean(x) / rank)
    w = avg * jnp.abs(jax.random.normal(w_key, (x.shape[0], rank), jnp.float32))
    h = avg * jnp.abs(jax.random.normal(h_key, (rank, x.shape[1]), jnp.float32))

    def update(_, wh):
        w, h = wh
        h = h * matmul(w.T, x) / (matmul(matmul(w.T, w), h) + _NMF_EPS)
        w = w * matmul(x, h.T) / (matmul(w, matmul(h, h.T)) + _NMF_EPS)
        return w, h

    return lax.fori_loop(0, iterations, update, (w, h))


def _thin_svd(u: Float[Array, "n k"]):
    """``(q, s, w^T)`` of ``u``, by the algorithm that suits the platform it is lowered for.

    On TPU XLA implements only the POLAR SVD (its default), so it takes the default.
    Elsewhere it takes the QR-iteration SVD (LAPACK gesvd on CPU): the default
    divide-and-conquer one (gesdd) slowed down about 50× on a CPU shared with other busy
    processes, and the SVD runs 500 times per :func:`semi_nmf`.
    """

    def qr_svd(u):
        return tuple(lax.linalg.svd(u, full_matrices=False, algorithm=lax.linalg.SvdAlgorithm.QR))

    def platform_svd(u):
        return tuple(lax.linalg.svd(u, full_matrices=False))

    return lax.platform_dependent(u, tpu=platform_svd, default=qr_svd)


def _pinv_solve(u: Float[Array, "n k"], target: Float[Array, "n m"]) -> Float[Array, "k m"]:
    """``pinv(u) @ target`` via the SVD, with every matmul at float32 HIGHEST precision.

    Singular values below ``max(n, k) · eps · s_max`` are dropped, as in ``jnp.linalg.pinv``.
    The SVD algorithm is chosen when the function is lowered for a platform
    (:func:`_thin_svd`).
    """
    q, s, wt = _thin_svd(u)
    cutoff = max(u.shape) * jnp.finfo(u.dtype).eps * s[0]
    s_inv = jnp.where(s > cutoff, 1.0 / jnp.where(s > cutoff, s, 1.0), 0.0)
    return matmul(wt.T * s_inv[None, :], matmul(q.T, target))


class SemiNMF(NamedTuple):
    """``T ≈ U V`` with ``U ≥ 0``; ``errors[i] = ‖T − U V‖_F`` after outer iteration i.

    Attributes:
        u: the non-negative factor U, (n, rank).
        v: the free factor V, (rank, m).
        errors: ``‖T − U V‖_F`` of the U after each outer iteration's steps and the V they used, (outer_iterations,).
    """

    u: Float[Array, "n rank"]
    v: Float[Array, "rank m"]
    errors: Float[Array, " outer_iterations"]


def semi_nmf(
    target: Float[Array, "n m"],
    rank: int,
    key: PRNGKeyArray,
    *,
    outer_iterations: int = 500,
    inner_steps: int = 5,
    lr_start=0.1,
    lr_end=0.001,
    floor=1e-8,
    nmf_iterations: int = 2000,
) -> SemiNMF:
    """Semi-NMF ``T ≈ U V`` with ``U ≥ 0`` and V free, the paper's algorithm (§5).

    U starts as the W factor of :func:`nmf` of ``|T|``; outer iteration i sets ``V = pinv(U) T``, then takes
    ``inner_steps`` steps ``U ← max(U − η (U V − T) V^T, floor)``. All in float32, the pseudo-inverse dropping tiny
    singular values (``paper_code/nb7_semi_nmf_solution.py``: float64, no V solve when ``cond(U) ≥ 1e12``).

    Args:
        target: the map T to factorise, (n, m), e.g. :func:`target_map`.
        rank: the factors' inner dimension (d_mlp for the baseline); static under jit.
        key: PRNG key of the initial :func:`nmf`.
        outer_iterations: V solves (paper: 500); static under jit, as are the other counts.
        inner_steps: projected-gradient steps on U after each V solve (paper: 5).
        lr_start (float): η at i = 0 (paper 0.1): ``η = lr_end + ½(lr_start − lr_end)(1 + cos(π i / outer_iterations))``
        lr_end (float): the step size η the cosine anneals to (paper: 0.001).
        floor (float): U is clamped at this value after each step (paper: 1e-8).
        nmf_iterations: Lee–Seung iterations of the initial :func:`nmf`.

    Returns:
        The factors, V re-solved from the final U (error ≤ ``errors[-1]``); the paper code returns the V from
            before its last U steps (negligibly different at the final step size 0.001).
    """
    target = target.astype(jnp.float32)
    u0, _ = nmf(jnp.abs(target), rank, key, nmf_iterations)

    def outer(u, iteration):
        progress = iteration / outer_iterations
        step = lr_end + 0.5 * (lr_start - lr_end) * (1.0 + jnp.cos(jnp.pi * progress))
        v = _pinv_solve(u, target)

        def inner(_, u):
            grad = matmul(matmul(u, v) - target, v.T)
            return jnp.maximum(u - step * grad, floor)

        u = lax.fori_loop(0, inner_steps, inner, u)
        return u, jnp.linalg.norm(target - matmul(u, v))

    u, errors = lax.scan(outer, u0, jnp.arange(outer_iterations, dtype=jnp.float32))
    return SemiNMF(u=u, v=_pinv_solve(u, target), errors=errors)


def semi_nmf_model(
    mixing: Float[Array, "n_features n_features"],
    scale,
    key: PRNGKeyArray,
    *,
    d_mlp: int = 50,
    orientation: str = "faithful",
    **semi_nmf_options,
) -> FeatureMLP:
    """The SNMF baseline: ``W_in = U ≥ 0``, ``W_out = V`` from :func:`semi_nmf` of the
    target map (:func:`target_map` with ``orientation``) at rank ``d_mlp`` (§5).

    Args:
        mixing: the unscaled mixing matrix M, (n_features, n_features).
        scale (float | Array): the mixing scale s (scalar).
        key: PRNG key of the factorisation's initialisation.
        d_mlp: the number of neurons, the factorisation's rank (default 50, the paper's).
        orientation: ``"faithful"`` or ``"paper-code"`` (:func:`target_map`).
        **semi_nmf_options (Any): further keyword arguments of :func:`semi_nmf`.

    Returns:
        The model: ``w_in`` (n_features, d_mlp) and ``w_out`` (d_mlp, n_features).
    """
    factors = semi_nmf(target_map(mixing, scale, orientation), d_mlp, key, **semi_nmf_options)
    return FeatureMLP(w_in=factors.u, w_out=factors.v)


# --- batches of baselines: one per (M, scale, orientation) ---------------------------


def target_maps(
    mixing: Float[AnyArray, "seeds n_features n_features"],
    scales: Float[np.ndarray, " scales"],
    orientations: tuple[str, ...] = ORIENTATIONS,
) -> Float[Array, "seeds scales orientations n_features n_features"]:
    """:func:`target_map` of every unscaled M in ``mixing`` at every mixing scale in
    ``scales`` and every orientation in ``orientations``: the targets of a §5 baseline sweep.

    Args:
        mixing: the unscaled mixing matrices M, (seeds, n_features, n_features).
        scales: the mixing scales s, (scales,).
        orientations: the orientations of :func:`target_map` (default both).

    Returns:
        The maps T, (seeds, scales, orientations, n_features, n_features), float32.
    """
    maps = [target_map(m, s, o) for m in jnp.asarray(mixing) for s in scales for o in orientations]
    n_features = mixing.shape[-1]
    return jnp.stack(maps).reshape(len(mixing), len(scales), len(orientations), n_features, n_features)


def _semi_nmf_batch(targets, keys, d_mlp: int, outer_iterations: int) -> FeatureMLP:
    def one(target, key):
        factors = semi_nmf(target, d_mlp, key, outer_iterations=outer_iterations)
        return FeatureMLP(w_in=factors.u, w_out=factors.v)

    return jax.vmap(one)(targets, keys)


_semi_nmf_batch_jit = jax.jit(_semi_nmf_batch, static_argnums=(2, 3))


def semi_nmf_models(
    targets: Float[AnyArray, "*batch n_features n_features"],
    keys: Key[Array, "..."],
    d_mlp: int = 50,
    outer_iterations: int = 500,
) -> FeatureMLP:
    """The SNMF baseline (:func:`semi_nmf` at rank ``d_mlp``, ``W_in = U``, ``W_out = V``) of
    every target map in ``targets``, in one compiled call (§5).

    Args:
        targets: the target maps T, (*batch, n_features, n_features) (e.g. :func:`target_maps`).
        keys: PRNG keys, one per factorisation, of a shape broadcastable to ``*batch``.
        d_mlp: the number of neurons, the factorisation's rank (default 50, the paper's).
        outer_iterations: :func:`semi_nmf`'s outer iterations (paper: 500).

    Returns:
        The models with NumPy weights, ``w_in`` (*batch, n_features, d_mlp), ``w_out`` (*batch, d_mlp, n_features).
    """
    batch, n_features = targets.shape[:-2], targets.shape[-1]
    flat_keys = jnp.broadcast_to(keys, batch).reshape(-1)
    flat = _semi_nmf_batch_jit(jnp.reshape(targets, (-1, n_features, n_features)), flat_keys, d_mlp, outer_iterations)
    return jax.tree.map(lambda leaf: np.asarray(leaf).reshape(*batch, *leaf.shape[1:]), flat)


def _svd_batch(targets, d_mlp: int) -> FeatureMLP:
    return jax.vmap(svd_model, in_axes=(0, None))(targets, d_mlp)


_svd_batch_jit = jax.jit(_svd_batch, static_argnums=1)


def svd_models(targets: Float[AnyArray, "*batch n_features n_features"], d_mlp: int = 50) -> FeatureMLP:
    """:func:`svd_model` (signs flipped) of every target map in ``targets``, in one compiled call (§5).

    Args:
        targets: the target maps T, (*batch, n_features, n_features) (e.g. :func:`target_maps`).
        d_mlp: the number of neurons, the rank kept (default 50, the paper's).

    Returns:
        The models with NumPy weights, ``w_in`` (*batch, n_features, d_mlp), ``w_out`` (*batch, d_mlp, n_features).
    """
    batch, n_features = targets.shape[:-2], targets.shape[-1]
    flat = _svd_batch_jit(jnp.reshape(targets, (-1, n_features, n_features)), d_mlp)
    return jax.tree.map(lambda leaf: np.asarray(leaf).reshape(*batch, *leaf.shape[1:]), flat)


def factorisation_error(targets: Float[AnyArray, "*batch n m"], params: FeatureMLP) -> Float[np.ndarray, "*batch"]:
    """``‖T − W_in W_out‖_F`` of each model against its target map.

    Args:
        targets: the target maps T, (*batch, n, m).
        params: models stacked on the same leading axes, ``w_in`` (*batch, n, d_mlp), ``w_out`` (*batch, d_mlp, m).

    Returns:
        The Frobenius errors, (*batch,), NumPy, in the weights' dtype.
    """
    return np.linalg.norm(np.asarray(targets) - np.asarray(params.w_in) @ np.asarray(params.w_out), axis=(-2, -1))


_exactly_one_batch_jit = jax.jit(jax.vmap(exactly_one_loss_per_feature))


def exactly_one_losses(
    params: FeatureMLP, scaled_mixing: Float[AnyArray, "*labels n_features n_features"]
) -> Float[np.ndarray, "..."]:
    """Exact exactly-one L/p (:func:`~ccjax.measure.exactly_one_loss_per_feature`, paper §4)
    of models stacked on any leading axes, against the labels' ``s M`` of each (float64).

    The leading axes of the weights and of ``scaled_mixing`` broadcast together (one
    model against many label maps, or the reverse).

    Args:
        params: models stacked on any leading axes, ``w_in`` (*models, n_features, d_mlp).
        scaled_mixing: the labels' ``s M``, (*labels, n_features, n_features); cast to float32.

    Returns:
        L/p on exactly-one data, float64, of the broadcast shape of ``*models`` and ``*labels``.
    """
    batch = np.broadcast_shapes(params.w_in.shape[:-2], np.shape(scaled_mixing)[:-2])

    def flat(x, dtype=None):
        x = jnp.asarray(x, dtype)
        return jnp.broadcast_to(x, (*batch, *x.shape[-2:])).reshape(-1, *x.shape[-2:])

    losses = _exactly_one_batch_jit(jax.tree.map(flat, params), flat(scaled_mixing, jnp.float32))
    return np.asarray(losses, np.float64).reshape(batch)


# --- comparing models -----------------------------------------------------------------


def relative_weight_change(before: FeatureMLP, after: FeatureMLP) -> Float[np.ndarray, " models"]:
    """``‖W_after − W_before‖ / ‖W_before‖`` of each model (a leading model axis), with the
    Frobenius norm over W_in and W_out together: how far fine-tuning moved it (§6.4).

    Args:
        before: the models before, stacked on one leading axis (models,).
        after: the same models after, of the same shapes.

    Returns:
        The relative change of each model, (models,), NumPy.
    """
    flat = [np.concatenate([np.reshape(w, (len(w), -1)) for w in jax.tree.leaves(p)], 1) for p in (before, after)]
    return np.linalg.norm(flat[1] - flat[0], axis=1) / np.linalg.norm(flat[0], axis=1)
