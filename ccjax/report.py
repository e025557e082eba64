"""Plain-text and markdown reports of results: tables, numbers with uncertainties, and
agreement with published values (docs/paper.md §2, §5–6).

A :class:`Comparison` is one published number next to ours. Values read off the paper's
figures carry a reading error of about ±0.001 (docs/paper.md: "'≈' marks a number read off a
published figure"); a number agrees when it is within two combined standard errors,
``2 sqrt(SEM² + reading error²)``, of ours.

A missing value of ours (None, which is how a manifest's JSON stores NaN, or NaN itself: a σ
curve that never crosses naive, the SEM of one seed) is shown as "not reached" and does not
agree; a missing uncertainty is left out. NumPy only; nothing here reads or writes files.
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
from jaxtyping import Real
from numpy.typing import ArrayLike

from .engine import describe_point
from .measure import baselines, exactly_one_loss_per_feature, naive_loss_per_feature
from .measure.statistics import mean_and_sem

Values = ArrayLike  # numbers: an array of any shape, a (nested) list, a scalar
Number = float | np.number | None  # one number; None (JSON's NaN) or NaN is a missing value

READ_ERROR = 0.001  # values read off the paper's figures
AGREEMENT_SIGMAS = 2.0
NOT_REACHED = "not reached"
VERDICTS = {True: "yes", False: "**no**", None: "–"}  # by Comparison.agrees


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One published number next to ours; ``agrees`` is None where nothing is compared.

    Attributes:
        experiment: Which experiment the row belongs to, e.g. ``"baselines"`` (not a table column).
        quantity: What is compared, e.g. ``"naive L/p (clean labels)"``.
        published: The published value as shown, e.g. ``"≈0.0835"`` or ``"0.02–0.028"``.
        ours: Our value as shown, e.g. ``"0.0712 ± 0.0003 (5 seeds)"`` or "not reached".
        agrees: True or False by the agreement rule of the module docstring; None: not compared.
        note: Free text for the table's note column (default "").
    """

    experiment: str
    quantity: str
    published: str
    ours: str
    agrees: bool | None
    note: str = ""


def count(n: int | np.integer, noun: str) -> str:
    """``count(1, "seed")`` → "1 seed", ``count(5, "seed")`` → "5 seeds".

    Args:
        n: The count.
        noun: The singular noun; the plural adds "s".

    Returns:
        ``n`` with thousands separators, then the noun, plural unless ``n`` is 1.
    """
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def count_families(n: int | np.integer) -> str:
    """``"1 family"``, ``"2 families"``.

    Args:
        n: The number of families.

    Returns:
        ``n`` then "family" or "families".
    """
    return f"{n} famil{'y' if n == 1 else 'ies'}"


def format_table(headers: Sequence, rows: Sequence[Sequence]) -> str:
    """A right-aligned plain-text table: ``headers``, a dashed rule, then ``rows`` (each cell shown by ``str``).

    Args:
        headers: The column headers.
        rows: The rows, each with one cell per header.

    Returns:
        The table's lines joined by newlines; columns two spaces apart, each as wide as its widest cell.
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(cell).rjust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(headers), line("-" * width for width in widths), *(line(row) for row in rows)])


def format_mean_sem(values: Values, digits: int = 4) -> str:
    """``"0.0712 +- 0.0003"`` (ASCII): the mean of the finite ``values`` and its SEM
    (:func:`ccjax.measure.statistics.mean_and_sem`); just the mean for one value.

    Args:
        values: The numbers, e.g. one per seed: a scalar or one axis, (seeds,); non-finite ones are left out.
        digits: Decimals of the mean and the SEM (default 4).

    Returns:
        ``"mean +- sem"``, or ``"mean"`` where the SEM is not finite.

    Raises:
        ValueError: If ``values`` has more than one axis (format each row on its own).
    """
    if np.ndim(values) > 1:
        raise ValueError(f"format_mean_sem takes one axis of values, got shape {np.shape(values)}; format each row")
    mean, sem = mean_and_sem(values)
    return f"{mean:.{digits}f}" if not np.isfinite(sem) else f"{mean:.{digits}f} +- {sem:.{digits}f}"


def diverged_note(points: Sequence[Mapping], shown: int = 8) -> str | None:
    """The note printed under a results table (and drawn on its figures) when models diverged:
    how many, and the first ``shown`` of ``points`` (the grid coordinates and step of each
    diverged model, :meth:`ccjax.SweepResult.diverged_points`); None when none did.

    Args:
        points: One dict per diverged model: its grid coordinates and ``"step"``.
        shown: How many of them to list (default 8); "..." marks the rest.

    Returns:
        The note, one line, or None when ``points`` is empty.
    """
    if not points:
        return None
    listed = "; ".join(describe_point(point) for point in points[:shown]) + ("; ..." if len(points) > shown else "")
    return (
        f"note: {count(len(points), 'model')} diverged (loss NaN or inf) and "
        f"{'is' if len(points) == 1 else 'are'} excluded from every mean and fit: {listed}"
    )


def as_float(value: Number) -> float:
    """``value`` as a float; a missing value (None) is NaN.

    Args:
        value: A number, or None (JSON's NaN).

    Returns:
        ``float(value)``, or NaN for None.
    """
    return math.nan if value is None else float(value)


def is_missing(value: Number) -> bool:
    """Whether ``value`` is None or not a finite number.

    Args:
        value: A number, or None (JSON's NaN).

    Returns:
        True for None, NaN and ±inf.
    """
    return not math.isfinite(as_float(value))


def format_number(value: Number, digits: int = 4, sign: str = "") -> str:
    """``value`` with ``digits`` decimals (``sign="+"`` forces one), or "not reached" if missing.

    Args:
        value: The number, or None (JSON's NaN).
        digits: Decimals (default 4).
        sign: A format-spec sign: ``""`` (a minus only) or ``"+"`` (always a sign).

    Returns:
        The formatted number, or "not reached" where :func:`is_missing`.
    """
    return NOT_REACHED if is_missing(value) else f"{as_float(value):{sign}.{digits}f}"


def format_pm(value: Number, uncertainty: Number, digits: int = 4, sign: str = "") -> str:
    """``value ± uncertainty``; just the value when the uncertainty is missing, "not reached"
    when the value is.

    Args:
        value: The number, or None (JSON's NaN).
        uncertainty: Its uncertainty (e.g. a SEM), in the same units, or None.
        digits: Decimals of both (default 4).
        sign: The value's format-spec sign, as in :func:`format_number`.

    Returns:
        The text.
    """
    text = format_number(value, digits, sign)
    if is_missing(value) or is_missing(uncertainty):
        return text
    return f"{text} ± {as_float(uncertainty):.{digits}f}"


def mean_sem(values: Values) -> tuple[float, float, int]:
    """Mean, standard error (NaN for one value) and count of the finite ``values`` (all axes).

    Args:
        values: The numbers, any shape (flattened); non-finite ones are left out.

    Returns:
        mean: The mean of the finite values (NaN if there are none).
        sem: Its standard error, ``std(ddof=1) / sqrt(n)`` (NaN for fewer than two).
        n: How many values are finite.
    """
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), sem, n


def format_estimate(mean: Number, sem: Number, n: int, digits: int = 4, unit: str = "seed") -> str:
    """``mean ± sem (n seeds)``, as :func:`mean_sem` gives them; "not reached" when there is no mean.

    Args:
        mean: The mean, or None.
        sem: Its standard error, or None/NaN (then left out).
        n: How many values the mean is over; 0: no mean.
        digits: Decimals of the mean and SEM (default 4).
        unit: What ``n`` counts, singular (default "seed"; the plural adds "s").

    Returns:
        ``"mean ± sem (n units)"``, or "not reached" where ``n`` is 0 or the mean is missing.
    """
    if n == 0 or is_missing(mean):
        return NOT_REACHED
    return f"{format_pm(mean, sem, digits)} ({n} {unit}{'s' if n != 1 else ''})"


def compare_value(
    experiment: str,
    quantity: str,
    published: Number,
    values: Values,
    *,
    read_error: float = READ_ERROR,
    approximate: bool = True,
    note: str = "",
    digits: int = 4,
    exact: bool = False,
) -> Comparison:
    """``values`` (one per seed) against a published number: they agree when their mean is
    within two combined standard errors (SEM and ``read_error``) of it.

    Args:
        experiment: The experiment's label, e.g. ``"baselines"``.
        quantity: What is compared, e.g. ``"naive L/p (clean labels)"``.
        published: The published number (not missing), in the units of ``values``.
        values: Ours, e.g. one per seed, any shape; non-finite ones are left out.
        read_error: The published number's reading error, same units (default :data:`READ_ERROR`, 0.001).
        approximate: The published number was read off a figure (shown with "≈"); default True.
        note: Text for the note column.
        digits: Significant digits of the published number and decimals of ours (default 4).
        exact: Ours is a closed-form value, not a mean over seeds: shown as ``"value (exact)"``.

    Returns:
        The comparison; it does not agree where no value of ours is finite.
    """
    mean, sem, n = mean_sem(values)
    spread = math.hypot(sem if math.isfinite(sem) else 0.0, read_error)
    agrees = bool(abs(mean - published) <= AGREEMENT_SIGMAS * spread) if n else False
    shown = f"{'≈' if approximate else ''}{published:.{digits}g}"
    if exact:
        ours = NOT_REACHED if n == 0 else f"{mean:.{digits}f} (exact)"
    else:
        ours = format_estimate(mean, sem, n, digits)
    return Comparison(experiment, quantity, shown, ours, agrees, note)


def compare_range(
    experiment: str,
    quantity: str,
    low: Number,
    high: Number,
    estimate: Number,
    uncertainty: Number,
    *,
    ours: str | None = None,
    read_error: float = 0.0,
    note: str = "",
) -> Comparison:
    """An estimate with its uncertainty against a published interval [low, high].

    Args:
        experiment: The experiment's label, e.g. ``"eigen_subspace"``.
        quantity: What is compared.
        low: The interval's lower end; ``low == high``: a single value, shown as ``≈low``.
        high: Its upper end.
        estimate: Our estimate, in the interval's units, or None.
        uncertainty: Its standard error (missing: 0).
        ours: The text shown for the estimate (default ``estimate ± uncertainty``); a missing
            estimate is shown as "not reached" whatever ``ours`` says.
        read_error: The interval's reading error, same units (default 0).
        note: Text for the note column.

    Returns:
        The comparison: it agrees when the estimate is within ``[low, high]`` widened by
            ``2 sqrt(uncertainty² + read_error²)`` on each side; a missing estimate does not.
    """
    if is_missing(estimate):
        agrees, text = False, NOT_REACHED
    else:
        spread = 0.0 if is_missing(uncertainty) else as_float(uncertainty)
        slack = AGREEMENT_SIGMAS * math.hypot(spread, read_error)
        agrees = bool(low - slack <= as_float(estimate) <= high + slack)
        text = ours or format_pm(estimate, uncertainty)
    published = f"≈{low:g}" if low == high else f"{low:g}–{high:g}"
    return Comparison(experiment, quantity, published, text, agrees, note)


def compare_baselines(n_features: int = 100, d_mlp: int = 50) -> list[Comparison]:
    """The closed-form baselines (docs/paper.md §5) of an ``n_features`` x ``d_mlp`` model against the
    published numbers: the naive model's L/p on clean labels, the zero model's L/p (both exactly-one
    data), and the naive model plus its optimal offset b* and the L/p there, at p = 1 and p = 0.1.

    Args:
        n_features: Number of features n (default 100, the paper's; the published numbers are for 100 × 50).
        d_mlp: Number of neurons d (default 50).

    Returns:
        Six comparisons: naive L/p, zero model L/p, then b* and the L/p at b* for p = 1 and 0.1.
    """
    n, d = n_features, d_mlp
    naive = naive_loss_per_feature(n, d)
    zero = float(exactly_one_loss_per_feature(baselines.zero_model(n, d), np.zeros((n, n), np.float32)))
    rows = [
        compare_value("baselines", "naive L/p (clean labels)", 0.0833, [naive], exact=True),
        compare_value("baselines", "zero model L/p", 1 / 6, [zero], approximate=False, read_error=1e-6, exact=True),
    ]
    for p, b_star, loss in ((1.0, 0.0194, 0.0531), (0.1, 0.0132, 0.0813)):
        b, value = (float(x) for x in baselines.optimal_offset(p, n_features=n, d_mlp=d))
        for quantity, published, ours in (("b*", b_star, b), ("L/p at b*", loss, value)):
            name = f"naive + offset: {quantity}(p = {p:g})"
            rows.append(compare_value("baselines", name, published, [ours], read_error=1e-4, exact=True))
    return rows


def compare_rank_trend(experiment: str, quantity: str, trend: Mapping[str, Number]) -> Comparison:
    """A saved :class:`~ccjax.measure.analysis.RankTrend` of L/p (its ``slope`` per e-fold of effective rank,
    ``slope_sem``, ``spearman`` and ``n_seeds``; None where missing) against the paper's qualitative
    claim that lower rank gives lower L/p (docs/paper.md §6.8): it agrees when the slope is more than
    two SEMs above zero.

    Args:
        experiment: The experiment's label, e.g. ``"rank_sweep"``.
        quantity: What is compared.
        trend: The saved trend: at least ``slope``, ``slope_sem``, ``spearman`` and ``n_seeds``.

    Returns:
        The comparison (published: "yes (qualitative)"), the Spearman correlation in its note.
    """
    slope, sem = trend["slope"], trend["slope_sem"]
    agrees = not is_missing(slope) and not is_missing(sem) and as_float(slope) > AGREEMENT_SIGMAS * as_float(sem)
    per_fold = f"slope {format_pm(slope, sem, sign='+')} per e-fold of eff. rank ({trend['n_seeds']} seeds)"
    ours = NOT_REACHED if is_missing(slope) else per_fold
    note = f"Spearman(rank, L/p) {format_number(trend['spearman'], 2, sign='+')}"
    return Comparison(experiment, quantity, "yes (qualitative)", ours, agrees, note)


def format_rank_trend(trend: Mapping[str, Number]) -> str:
    """``"+0.0071 ± 0.0004 (ρ +0.90)"``: a saved :class:`~ccjax.measure.analysis.RankTrend`'s slope of L/p per
    e-fold of effective rank, its SEM over seeds and the Spearman correlation of rank and L/p (§6.8).

    Args:
        trend: The saved trend: at least ``slope``, ``slope_sem`` and ``spearman`` (None where missing).

    Returns:
        ``"slope ± sem (ρ spearman)"``, signed.
    """
    rho = format_number(trend["spearman"], 2, sign="+")
    return f"{format_pm(trend['slope'], trend['slope_sem'], sign='+')} (ρ {rho})"


def markdown_rows(header: Sequence, rows: Sequence[Sequence], indent: str = "", *, compact: bool = False) -> list[str]:
    """A Markdown table's lines: ``header``, the separator, ``rows``; each line starts with ``indent``.
    An empty cell is written ``|  |``, or ``| |`` when ``compact``.

    Args:
        header: The column headers.
        rows: The rows; each cell is shown by ``str`` (not escaped).
        indent: Prefix of every line (e.g. spaces, to nest the table in a list).
        compact: Write an empty cell as ``| |`` rather than ``|  |``.

    Returns:
        The table's lines, without newlines.
    """
    empty = " " if compact else "  "
    return [
        indent + "|" + "|".join(f" {text} " if text else empty for text in map(str, cells)) + "|"
        for cells in (header, ["---"] * len(header), *rows)
    ]


def markdown_table(comparisons: Sequence[Comparison]) -> str:
    """The comparisons as a Markdown table; a literal ``|`` in a cell (as in |s|) is escaped,
    as it would end the cell.

    Args:
        comparisons: The rows.

    Returns:
        The table (columns quantity, paper, ours, agrees, note), lines joined by newlines.
    """
    header = ("quantity", "paper", "ours (mean ± SEM)", "agrees", "note")
    cells = [(c.quantity, c.published, c.ours, VERDICTS[c.agrees], c.note) for c in comparisons]
    return "\n".join(markdown_rows(header, [[text.replace("|", "\\|") for text in row] for row in cells]))


def index_of(values: Values, wanted: float) -> int:
    """Index of the first of ``values`` equal to ``wanted`` up to rounding; KeyError if none is.

    Args:
        values: The numbers to search, 1-D (e.g. a grid axis).
        wanted: The value to find (relative tolerance 1e-6, absolute 1e-9).

    Returns:
        The index of the first match.

    Raises:
        KeyError: If no value matches.
    """
    values = np.asarray(values, np.float64)
    hits = np.flatnonzero(np.isclose(values, wanted, rtol=1e-6, atol=1e-9))
    if hits.size == 0:
        raise KeyError(f"{wanted} not among {values.tolist()}")
    return int(hits[0])


def nearest_in_log(values: Real[np.ndarray, " points"], wanted: float) -> int:
    """Index of the positive ``values`` closest to ``wanted`` on a log scale (a geometric p grid).

    Args:
        values: Positive numbers, (points,), e.g. a grid of p.
        wanted: A positive number.

    Returns:
        The index of the value nearest to ``wanted`` in ``|log v - log wanted|`` (the first on a tie).
    """
    return int(np.argmin(np.abs(np.log(np.asarray(values)) - math.log(wanted))))
