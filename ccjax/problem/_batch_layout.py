"""Where a batch's rows sit for the fast loss paths of :func:`ccjax.problem.batch_loss`.

The dense path runs the non-empty rows only (:func:`compact_rows`). The sparse path reads
rows with one active feature from a per-feature table and runs the rows with two or more
(:func:`row_layout`). Each path holds a fixed number of rows, the mean plus 5 standard
deviations plus 16 (:func:`~ccjax.problem.default_capacity`); a batch that needs more falls
back to the exact whole dense batch, so a capacity trades speed only, never correctness.
"""

import math
from typing import NamedTuple

import jax.numpy as jnp

from .._types import Array, Float, Int
from ._data import SparseBatch, default_capacity, row_starts


def _no_and_one_active(n_features: int, p: float) -> tuple[float, float]:
    """P(a row has no active feature), P(exactly one)."""
    return (1.0 - p) ** n_features, n_features * p * (1.0 - p) ** (n_features - 1)


def default_multi_capacity(batch_size: int, n_features: int, p: float) -> int:
    """Rows with ≥2 active features the sparse path holds: mean + 5 sd + 16 (see
    :func:`ccjax.problem.default_capacity`; more rows fall back to the dense path).

    Args:
        batch_size: Rows per batch.
        n_features: Features per row.
        p: The largest feature probability of the runs.

    Returns:
        The capacity (657 of 2,048 rows at the paper's shapes), at most ``batch_size``.
    """
    q0, q1 = _no_and_one_active(n_features, p)
    return default_capacity(batch_size, 1, max(0.0, 1.0 - q0 - q1))  # rows that qualify: Binomial(B, q)


def default_extra_capacity(batch_size: int, n_features: int, p: float) -> int:
    """Entries past the second of their row the sparse path holds: mean + 5 sd + 16 of their
    count (a row with k actives has max(k - 2, 0)); more fall back to the dense path.

    At the paper's shapes (2,048 rows, n = 100, p = 0.01) a batch has 209 such entries on
    average, and 311 are held.

    Args:
        batch_size: Rows per batch.
        n_features: Features per row.
        p: The largest feature probability of the runs.

    Returns:
        The capacity, at least 16 and at most the batch's positions.
    """
    q0, q1 = _no_and_one_active(n_features, p)
    mean_k = n_features * p
    mean = mean_k - 2.0 + 2.0 * q0 + q1  # E max(K - 2, 0) = E(K - 2) minus its k = 0, 1 terms
    second = n_features * p * (1.0 - p) + (mean_k - 2.0) ** 2 - 4.0 * q0 - q1
    variance = max(0.0, second - mean * mean)
    capacity = math.ceil(batch_size * mean + 5.0 * math.sqrt(batch_size * variance) + 16)
    return int(min(batch_size * n_features, capacity))


# The dense path compacts the non-empty rows only where that drops at least this fraction of
# the rows' work (so the CPU's dense path, taken from n p > 5 on, keeps its full batch).
COMPACT_MIN_SAVING = 0.1


def default_row_capacity(batch_size: int, n_features: int, p: float) -> int | None:
    """Non-empty rows the compact dense path holds (mean + 5 sd + 16; more rows fall back
    to the full dense batch), or None where compacting would save less than 10% of the rows.

    At the paper's shapes (2,048 rows, n = 100, p = 0.01) 63% of rows are non-empty on
    average, and 1,424 rows are held.

    Args:
        batch_size: Rows per batch.
        n_features: Features per row.
        p: The largest feature probability of the runs.

    Returns:
        The row capacity, or None (the dense path then runs the whole batch).
    """
    capacity = default_capacity(batch_size, 1, 1.0 - (1.0 - p) ** n_features)  # non-empty rows: Binomial(B, q)
    return capacity if capacity <= (1.0 - COMPACT_MIN_SAVING) * batch_size else None


def compact_rows(
    batch: SparseBatch, batch_size: int, n_features: int, row_capacity: int
) -> tuple[Float[Array, "row_capacity n_features"], Int[Array, ""]]:
    """The batch's non-empty rows, in order, as a dense (row_capacity, n_features) array.

    Rows past ``row_capacity`` are dropped (the caller falls back when the count exceeds
    it); unused rows are 0. Entries past an overflow are not drawn (see :func:`to_dense`).

    Args:
        batch: One batch's sparse entries.
        batch_size: Rows of the batch it was drawn with.
        n_features: Features per row.
        row_capacity: Rows to hold.

    Returns:
        ``(rows, count)``: the compacted rows and the number of non-empty rows.
    """
    starts = row_starts(batch, batch_size)
    # An unused slot (value 0) lands on the last row and adds 0; entries of one row have distinct
    # features, so adding is setting. One flat index per entry: fewer bytes than (row, feature).
    index = (jnp.cumsum(starts) - 1) * n_features + batch.features
    flat = jnp.zeros(row_capacity * n_features, jnp.float32).at[index].add(batch.values, mode="drop")
    return flat.reshape(row_capacity, n_features), jnp.sum(starts)


class RowLayout(NamedTuple):
    """Where the sparse path finds each row (:func:`row_layout`).

    Attributes:
        count: Active features in each entry's row, (capacity,).
        slot: The compact row of each entry of a row with two or more actives, else
            ``multi_capacity``, (capacity,).
        n_multi: Rows with two or more actives.
        firsts: The first entry of each such row, by compact row, (multi_capacity,) (0 past
            ``n_multi``); None in the layout of the direct form.
        extras: The entries past the second of their row, in order, (extra_capacity,) (0 past
            ``n_extra``); None in the layout of the direct form.
        n_extra: How many entries are past the second of their row (0 without ``extras``).
    """

    count: Int[Array, " capacity"]
    slot: Int[Array, " capacity"]
    n_multi: Int[Array, ""]
    firsts: Int[Array, " multi_capacity"] | None = None
    extras: Int[Array, " extra_capacity"] | None = None
    n_extra: Int[Array, ""] | int = 0


def row_layout(
    batch: SparseBatch, batch_size: int, multi_capacity: int, extra_capacity: int | None = None
) -> RowLayout:
    """The rows of a sparse batch, as the sparse loss path reads them.

    Entries are sorted by row, so a row with two or more actives is its first entry, the one
    after it, and any extras (entries past the second). With ``extra_capacity`` the layout
    also lists the firsts and the extras, which the Gram form of the sparse path gathers
    instead of scattering every entry.

    Args:
        batch: One batch's sparse entries.
        batch_size: Rows of the batch it was drawn with.
        multi_capacity: Rows with two or more actives to hold.
        extra_capacity: Extras to hold (:func:`default_extra_capacity`), or None for the layout of
            the direct form.

    Returns:
        The layout; a caller falls back to the dense batch where ``n_multi > multi_capacity`` or
            ``n_extra > extra_capacity``.
    """
    valid = batch.rows < batch_size
    counts = jnp.zeros(batch_size + 1, jnp.int32).at[batch.rows].add(valid.astype(jnp.int32))
    count = counts[batch.rows]
    is_multi = count >= 2
    starts = is_multi & row_starts(batch, batch_size)
    slot = jnp.where(is_multi, jnp.cumsum(starts) - 1, multi_capacity)
    n_multi = jnp.sum(starts)
    if extra_capacity is None:
        return RowLayout(count, slot, n_multi)
    entry = jnp.arange(batch.rows.shape[0], dtype=jnp.int32)
    firsts = jnp.zeros(multi_capacity, jnp.int32).at[jnp.where(starts, slot, multi_capacity)].set(entry, mode="drop")
    two_back = jnp.concatenate([jnp.full((2,), -1, batch.rows.dtype), batch.rows[:-2]])
    is_extra = valid & (two_back == batch.rows)  # sorted by row: the entry two before is in the same row
    extra_index = jnp.where(is_extra, jnp.cumsum(is_extra) - 1, extra_capacity)
    extras = jnp.zeros(extra_capacity, jnp.int32).at[extra_index].set(entry, mode="drop")
    return RowLayout(count, slot, n_multi, firsts, extras, jnp.sum(is_extra))
