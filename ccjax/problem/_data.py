"""Sparse inputs of the CC model (docs/paper.md §4).

Each of ``n_features`` features is active independently with probability ``p`` and an
active feature takes a value drawn from U[-1, 1]. At the paper's p = 0.01 a row holds
about one active feature, so batches are drawn and stored *sparsely*: a fixed-capacity
list of (row, feature, value) entries in row-major order.

Exactness. Flatten the batch to ``batch * n_features`` positions. In a Bernoulli-p
process the gaps between consecutive active positions are i.i.d. Geometric(p), so the
first ``capacity`` active positions are drawn as a cumulative sum of geometric gaps
(by inversion, from 32-bit uniforms). If the ``capacity``-th active position still lies
inside the batch, later actives may exist; by the memorylessness of the Bernoulli
process, the positions after it are again i.i.d. Bernoulli-p. :func:`to_dense` fills
that *tail* from ``tail_key``, so ``to_dense`` always returns an exact
Bernoulli-p × U[-1, 1] batch and the sparse entries are exact whenever ``overflow`` is
False. Capacity is chosen so that overflow is rare (probability about 1e-6 per batch,
:func:`default_capacity`); callers then fall back to the exact dense batch, so the
capacity trades speed only, never correctness.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_probability, check_size, is_concrete
from .._types import AnyArray, Array, Bool, Float, Int, PRNGKeyArray


class SparseBatch(NamedTuple):
    """A batch as a fixed number of (row, feature, value) entries, sorted by row.

    Unused slots have ``rows == batch_size``, ``features == 0`` and ``values == 0``.
    ``tail_start`` is the first flat position not described by the entries (the batch
    size times ``n_features`` when the entries are complete), and ``tail_key`` draws the
    remaining positions in :func:`to_dense`. The data of docs/paper.md §4.

    Attributes:
        rows: (capacity,) int32, the row of each entry; ``batch_size`` in unused slots.
        features: (capacity,) int32, the active feature of each entry; 0 in unused slots.
        values: (capacity,) float32, the feature's value in U[-1, 1]; 0 in unused slots.
        overflow: () bool, True when the capacity filled before the end of the batch, so that
            positions from ``tail_start`` on may hold more actives (the entries are then incomplete).
        tail_start: () int32, the first flat position ``row * n_features + feature`` the entries
            do not describe.
        tail_key: The key :func:`to_dense` draws the positions from ``tail_start`` on with.
        p: () float32, the feature probability the batch was drawn at (1/n_features for
            :func:`sample_exactly_one`).
    """

    rows: Int[Array, " capacity"]
    features: Int[Array, " capacity"]
    values: Float[Array, " capacity"]
    overflow: Bool[Array, ""]
    tail_start: Int[Array, ""]
    tail_key: PRNGKeyArray
    p: Float[Array, ""]


def default_capacity(batch_size: int, n_features: int, p: float) -> int:
    """Entries to hold: the mean active count plus 5 standard deviations plus 16.

    The active count is Binomial(batch_size * n_features, p), so it exceeds this with
    probability about 1e-6 (the +16 covers tiny p, where the count is Poisson-like).
    A larger capacity costs time on every step; an overflow costs one dense step.

    Args:
        batch_size: Rows (samples) per batch.
        n_features: Features per row.
        p: Feature probability in (0, 1]; for batches at several p, the largest.

    Returns:
        The capacity, never more than ``batch_size * n_features``.
    """
    total = batch_size * n_features
    mean = total * p
    capacity = math.ceil(mean + 5.0 * math.sqrt(mean * (1.0 - p)) + 16)
    return int(min(total, capacity))


def _uniform_open_closed(key: PRNGKeyArray, shape) -> Float[Array, "..."]:
    """Uniforms in (0, 1] from 32 random bits, so log(u) is finite and fine near 0."""
    bits = jax.random.bits(key, shape, jnp.uint32)
    return (bits.astype(jnp.float32) + 0.5) * jnp.float32(2.0**-32)


def _saturating_cumsum(gaps: Int[Array, " capacity"], limit: int) -> Int[Array, " capacity"]:
    """Cumulative sum of gaps in [0, ``limit``], clipped at ``limit``, without int32 overflow.

    Where the plain cumulative sum cannot overflow (capacity times limit below 2**31, as at
    the paper's shapes), it is that sum clipped: the same integers, and a quarter of the
    compile time of the saturating scan (0.2 s against 0.95 s on the 2-core CPU). Otherwise
    every partial sum saturates (associative, so the scan never overflows).
    """
    if gaps.shape[-1] * limit < 2**31:
        return jnp.minimum(jnp.cumsum(gaps), limit)
    return lax.associative_scan(lambda a, b: jnp.minimum(a + b, limit), gaps)


def sample_sparse(key: PRNGKeyArray, batch_size: int, n_features: int, p, capacity: int) -> SparseBatch:
    """Draw a Bernoulli-p × U[-1, 1] batch as up to ``capacity`` sparse entries.

    ``p`` may be traced (it can differ per model under ``vmap``); the shapes depend only
    on ``capacity``. See the module docstring for why this is exact (docs/paper.md §4).

    Args:
        key: PRNG key; split into the gap, value and tail keys.
        batch_size: Rows (samples) in the batch.
        n_features: Features per row.
        p (float | Array): Feature probability in (0, 1]: a float or a (possibly traced) scalar.
        capacity: Entry slots (:func:`default_capacity`); more actives set ``overflow``.

    Returns:
        The batch as ``capacity`` entries sorted by row, with its overflow tail.

    Raises:
        ValueError: If a size is not a positive integer, or a concrete ``p`` is not in (0, 1].
    """
    check_size("batch_size", batch_size)
    check_size("n_features", n_features)
    check_size("capacity", capacity)
    check_probability("p", p)
    total = batch_size * n_features
    p = jnp.asarray(p, jnp.float32)
    gap_key, value_key, tail_key = jax.random.split(key, 3)
    u = _uniform_open_closed(gap_key, (capacity,))
    # Geometric(p) on {1, 2, ...} by inversion; p = 1 gives log1p(-1) = -inf, gap 1.
    gaps = jnp.floor(jnp.log(u) / jnp.log1p(-p)) + 1.0
    gaps = jnp.clip(gaps, 1.0, total + 1.0).astype(jnp.int32)
    positions = _saturating_cumsum(gaps, total + 1) - 1
    valid = positions < total
    values = jax.random.uniform(value_key, (capacity,), jnp.float32, -1.0, 1.0)
    last = positions[-1]
    overflow = last < total - 1
    return SparseBatch(
        rows=jnp.where(valid, positions // n_features, batch_size),
        features=jnp.where(valid, positions % n_features, 0),
        values=jnp.where(valid, values, 0.0),
        overflow=overflow,
        tail_start=jnp.where(overflow, last + 1, total),
        tail_key=tail_key,
        p=p,
    )


def sample_exactly_one(key: PRNGKeyArray, batch_size: int, n_features: int) -> SparseBatch:
    """Rows with exactly one active feature (uniform), value U[-1, 1] (paper §4 variant).

    Args:
        key: PRNG key; split into the feature, value and tail keys.
        batch_size: Rows (samples) in the batch.
        n_features: Features per row.

    Returns:
        A complete batch of ``batch_size`` entries, one per row, with ``p = 1/n_features``
            (the expected fraction of active features) and no overflow.

    Raises:
        ValueError: If ``batch_size`` or ``n_features`` is not a positive integer.
    """
    check_size("batch_size", batch_size)
    check_size("n_features", n_features)
    feature_key, value_key, tail_key = jax.random.split(key, 3)
    total = batch_size * n_features
    return SparseBatch(
        rows=jnp.arange(batch_size, dtype=jnp.int32),
        features=jax.random.randint(feature_key, (batch_size,), 0, n_features, jnp.int32),
        values=jax.random.uniform(value_key, (batch_size,), jnp.float32, -1.0, 1.0),
        overflow=jnp.array(False),
        tail_start=jnp.array(total, jnp.int32),
        tail_key=tail_key,
        p=jnp.float32(1.0 / n_features),
    )


def sample_exactly_k(
    key: PRNGKeyArray, counts: Int[AnyArray, " batch"], n_features: int
) -> Float[Array, "batch n_features"]:
    """Dense rows where row b has exactly ``counts[b]`` active features.

    The support is uniform among all subsets of that size (the first ``counts[b]``
    entries of a random permutation, so ties cannot add actives); values are U[-1, 1].
    This is the conditional distribution of Bernoulli-p data given k actives, for any p
    (the evaluation by the number of active features, docs/paper.md §4).

    Args:
        key: PRNG key; split into the order and value keys.
        counts: (batch,) integers in [0, n_features], the active count of each row.
        n_features: Features per row.

    Returns:
        The dense batch, (batch, n_features) float32.

    Raises:
        ValueError: If ``n_features`` is not a positive integer or concrete ``counts`` leave
            [0, n_features].
    """
    check_size("n_features", n_features)
    if is_concrete(counts) and not np.all((np.asarray(counts) >= 0) & (np.asarray(counts) <= n_features)):
        raise ValueError(f"counts must be in [0, n_features = {n_features}], got {np.asarray(counts).tolist()}")
    order_key, value_key = jax.random.split(key)
    batch = counts.shape[0]
    order = jnp.argsort(jax.random.uniform(order_key, (batch, n_features), jnp.float32), axis=1)
    # Each feature's position in the random order (one sort and a scatter: half the
    # cost of ranking by a second argsort on CPU).
    positions = jnp.broadcast_to(jnp.arange(n_features, dtype=jnp.int32), (batch, n_features))
    ranks = jnp.zeros((batch, n_features), jnp.int32).at[jnp.arange(batch)[:, None], order].set(positions)
    values = jax.random.uniform(value_key, (batch, n_features), jnp.float32, -1.0, 1.0)
    return jnp.where(ranks < counts[:, None], values, 0.0)


def row_starts(batch: SparseBatch, batch_size: int) -> Bool[Array, " capacity"]:
    """True at the first entry of each non-empty row (entries are sorted by row)."""
    previous = jnp.concatenate([jnp.full((1,), -1, batch.rows.dtype), batch.rows[:-1]])
    return (batch.rows < batch_size) & (batch.rows != previous)


def entries_to_dense(batch: SparseBatch, batch_size: int, n_features: int) -> Float[Array, "batch n_features"]:
    """Scatter the entries into a dense batch (ignores any overflow tail).

    Args:
        batch: One batch's sparse entries.
        batch_size: Rows of the batch it was drawn with.
        n_features: Features per row.

    Returns:
        The entries as a dense (batch_size, n_features) float32 batch; exact only when
            ``batch.overflow`` is False (else :func:`to_dense`).
    """
    x = jnp.zeros((batch_size, n_features), jnp.float32)
    return x.at[batch.rows, batch.features].set(batch.values, mode="drop")


def _fill_tail(x: Float[Array, "batch n_features"], batch: SparseBatch):
    """Draw the positions from ``tail_start`` on as fresh Bernoulli-p × U[-1, 1]."""
    active_key, value_key = jax.random.split(batch.tail_key)
    positions = jnp.arange(x.size, dtype=jnp.int32).reshape(x.shape)
    active = (jax.random.uniform(active_key, x.shape, jnp.float32) < batch.p) & (positions >= batch.tail_start)
    values = jax.random.uniform(value_key, x.shape, jnp.float32, -1.0, 1.0)
    return jnp.where(active, values, x)


def any_across(flag: Bool[Array, ""], axis_name: str | None) -> Bool[Array, ""]:
    """``flag`` or'ed over the named ``vmap`` axis ``axis_name`` (``flag`` itself if None).

    A ``lax.cond`` whose predicate differs between the models of a ``vmap`` becomes a
    select that runs both branches for every model. Deciding a rare branch once for all
    models (take it if any model needs it) keeps it a real branch, so the common case
    pays nothing for it.
    """
    if axis_name is None:
        return flag
    return lax.pmax(flag.astype(jnp.int32), axis_name) > 0


def to_dense(
    batch: SparseBatch, batch_size: int, n_features: int, axis_name: str | None = None
) -> Float[Array, "batch n_features"]:
    """The exact dense batch: the entries plus, after an overflow, the Bernoulli tail.

    Under ``vmap(..., axis_name=axis_name)`` the tail is drawn for every model when any
    model overflowed (a model that did not overflow gets no tail positions, so its batch
    is unchanged); without the axis name the rare tail draw runs on every step under vmap.

    Args:
        batch: One batch's sparse entries.
        batch_size: Rows of the batch it was drawn with.
        n_features: Features per row.
        axis_name: The name of the enclosing ``vmap`` axis over models, or None (one model,
            or a vmap that need not share the branch).

    Returns:
        The exact Bernoulli-p × U[-1, 1] batch, (batch_size, n_features) float32.
    """
    x = entries_to_dense(batch, batch_size, n_features)
    return lax.cond(any_across(batch.overflow, axis_name), _fill_tail, lambda x, _: x, x, batch)


def sample_inputs(
    key: PRNGKeyArray, batch_size: int, n_features: int, p, capacity: int | None = None
) -> Float[Array, "batch n_features"]:
    """A dense Bernoulli-p × U[-1, 1] batch (same draws as :func:`sample_sparse`).

    The data of docs/paper.md §4.

    Args:
        key: PRNG key (the same key gives the same batch as :func:`sample_sparse`).
        batch_size: Rows (samples) in the batch.
        n_features: Features per row.
        p (float | Array): Feature probability in (0, 1]: a float or a (possibly traced) scalar.
        capacity: Sparse entry slots; defaults to :func:`default_capacity` at ``p``. A traced
            ``p`` (under ``jit``/``vmap``) needs an explicit one, since shapes cannot depend on it.

    Returns:
        The batch, (batch_size, n_features) float32; exact at any capacity.

    Raises:
        ValueError: If ``p`` is traced and ``capacity`` is None, a concrete ``p`` is not in
            (0, 1], or a size is not a positive integer.
    """
    check_probability("p", p)
    if capacity is None:
        if not is_concrete(p):
            raise ValueError(
                "sample_inputs: p is traced, so pass capacity= explicitly "
                "(e.g. default_capacity(batch_size, n_features, largest p))"
            )
        capacity = default_capacity(batch_size, n_features, float(p))
    return to_dense(sample_sparse(key, batch_size, n_features, p, capacity), batch_size, n_features)
