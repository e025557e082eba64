"""The smallest batch a run can train on: only active features carry a gradient, so a batch
must hold enough of them on average (:func:`check_batch_size`)."""

import math

# A batch must hold this many active features on average to train on (check_batch_size).
MIN_ACTIVE_FEATURES_PER_BATCH = 10


def check_batch_size(
    batch_size: int,
    n_features: int,
    p: float,
    *,
    data: str = "bernoulli",
    batch_flag: str | None = "--batch-size",
    p_flag: str | None = "--p",
    smallest: bool = False,
) -> None:
    """Refuse (``ValueError``, with the numbers and the fix) a batch too small to train on.

    Only active features carry a gradient (an empty sample's labels and outputs are both zero): a batch must
    hold :data:`MIN_ACTIVE_FEATURES_PER_BATCH` on average. With fewer, the count swings by a third or more from
    batch to batch and whole batches are empty (with probability about e^-actives: 5% of the steps at the 3
    actives of ``--batch-size 3`` at p = 0.01, n = 100; 0.005% at 10). Every experiment's defaults hold 100 or
    more, the smallest test runs 32.

    Args:
        batch_size: Samples per batch; it holds ``batch_size * n_features * p`` active features on average.
        n_features: Features per sample, the smallest a run trains at.
        p: Feature probability, the smallest a run trains at (``smallest``: the smallest of several).
        data: ``"bernoulli"``, or ``"exactly-one"`` (one active per sample: ``batch_size`` per batch).
        batch_flag: The option that sets ``batch_size`` (named in the fix), or None.
        p_flag: The option that sets ``p`` (named in the fix), or None.
        smallest: Whether ``p`` is the smallest of several values (the message says so).
    """
    exactly_one = data == "exactly-one"
    per_sample = 1.0 if exactly_one else n_features * p  # active features per sample, on average
    active = batch_size * per_sample
    if active >= MIN_ACTIVE_FEATURES_PER_BATCH:
        return
    if exactly_one:
        where, how = "on exactly-one data", "batch_size (one per sample)"
    else:
        where = f"at {'the smallest ' if smallest else ''}p = {p:g} and n_features = {n_features}"
        how = "batch_size * n_features * p"
    fixes = []
    if batch_flag:
        fixes.append(f"{batch_flag} {math.ceil(MIN_ACTIVE_FEATURES_PER_BATCH / per_sample - 1e-9)} or more")
    p_needed = MIN_ACTIVE_FEATURES_PER_BATCH / (batch_size * n_features)
    if p_flag and not exactly_one and p_needed <= 1.0:
        fixes.append(f"p >= {_round_up(p_needed)} ({p_flag})")
    batch = f"{batch_flag} {batch_size}" if batch_flag else f"a batch of {batch_size} samples"
    raise ValueError(
        f"{batch} is too small to train on: {where} a batch holds {how} = {active:.3g} active features on "
        f"average, and training needs at least {MIN_ACTIVE_FEATURES_PER_BATCH} (only active features carry a "
        f"gradient); use {', or '.join(fixes) or 'a larger batch'}"
    )


def _round_up(value: float, digits: int = 2) -> str:
    """``value`` rounded up to ``digits`` significant digits, as text (a bound that is met)."""
    unit = 10.0 ** (math.floor(math.log10(value)) - digits + 1)
    return f"{math.ceil(value / unit - 1e-9) * unit:.{digits}g}"
