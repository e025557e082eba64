"""Comparing saved results with the paper's published numbers (docs/paper.md §2, §5–6).

A :class:`Comparison` is one published number next to ours. Values read off the
paper's figures carry a reading error of about ±0.001 (docs/paper.md: "≈ marks a value
read off a plot"); a number agrees when it is within two combined standard errors,
``2 sqrt(SEM² + reading error²)``, of ours.

A missing value of ours (None, which is how a manifest's JSON stores NaN, or NaN itself:
a σ curve that never crosses naive, the SEM of one seed) is shown as "not reached" and
does not agree; a missing uncertainty is left out.
"""

import dataclasses
import math

import numpy as np

READ_ERROR = 0.001  # values read off the paper's figures
AGREEMENT_SIGMAS = 2.0
NOT_REACHED = "not reached"
VERDICTS = {True: "yes", False: "**no**", None: "–"}  # by Comparison.agrees


@dataclasses.dataclass(frozen=True)
class Comparison:
    """One published number next to ours; ``agrees`` is None where nothing is compared."""

    experiment: str
    quantity: str
    published: str
    ours: str
    agrees: bool | None
    note: str = ""


def as_float(value) -> float:
    """``value`` as a float; a missing value (None) is NaN."""
    return math.nan if value is None else float(value)


def is_missing(value) -> bool:
    """Whether ``value`` is None or not a finite number."""
    return not math.isfinite(as_float(value))


def format_number(value, digits: int = 4, sign: str = "") -> str:
    """``value`` with ``digits`` decimals (``sign="+"`` forces one), or "not reached" if missing."""
    return NOT_REACHED if is_missing(value) else f"{as_float(value):{sign}.{digits}f}"


def format_pm(value, uncertainty, digits: int = 4, sign: str = "") -> str:
    """``value ± uncertainty``; just the value when the uncertainty is missing, "not reached"
    when the value is."""
    text = format_number(value, digits, sign)
    if is_missing(value) or is_missing(uncertainty):
        return text
    return f"{text} ± {as_float(uncertainty):.{digits}f}"


def mean_sem(values) -> tuple[float, float, int]:
    """Mean, standard error (nan for one value) and count of the finite ``values``."""
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    n = values.size
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(values.mean()), sem, n


def format_estimate(mean: float, sem: float, n: int, digits: int = 4, unit: str = "seed") -> str:
    """``mean ± sem (n seeds)``, as :func:`mean_sem` gives them; "not reached" when there is no mean."""
    if n == 0 or is_missing(mean):
        return NOT_REACHED
    return f"{format_pm(mean, sem, digits)} ({n} {unit}{'s' if n != 1 else ''})"


def compare_value(
    experiment: str,
    quantity: str,
    published: float,
    values,
    *,
    read_error: float = READ_ERROR,
    approximate: bool = True,
    note: str = "",
    digits: int = 4,
    exact: bool = False,
) -> Comparison:
    """``values`` (one per seed) against a published number, within two combined SEs.

    ``exact``: ours is a closed-form value, not a mean over seeds.
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
    low: float,
    high: float,
    estimate: float,
    uncertainty: float,
    *,
    ours: str | None = None,
    read_error: float = 0.0,
    note: str = "",
) -> Comparison:
    """An estimate with its uncertainty against a published interval [low, high].

    ``ours``: the text shown for the estimate (default ``estimate ± uncertainty``); a missing
    estimate is shown as "not reached" whatever ``ours`` says.
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


def markdown_table(comparisons: list[Comparison]) -> str:
    """The rows as a Markdown table; a literal ``|`` in a cell (as in |s|) is escaped, as it would end the cell."""
    lines = ["| quantity | paper | ours (mean ± SEM) | agrees | note |", "| --- | --- | --- | --- | --- |"]
    for c in comparisons:
        cells = (c.quantity, c.published, c.ours, VERDICTS[c.agrees], c.note)
        lines.append("| " + " | ".join(text.replace("|", "\\|") for text in cells) + " |")
    return "\n".join(lines)


def index_of(values, wanted: float) -> int:
    """Index of the first of ``values`` equal to ``wanted`` up to rounding; KeyError if none is."""
    values = np.asarray(values, np.float64)
    hits = np.flatnonzero(np.isclose(values, wanted, rtol=1e-6, atol=1e-9))
    if hits.size == 0:
        raise KeyError(f"{wanted} not among {values.tolist()}")
    return int(hits[0])


def p_eval_column(arrays: dict, p: float) -> int:
    """Index of p_eval closest to ``p`` (the curves are geometric in p)."""
    return int(np.argmin(np.abs(np.log(np.asarray(arrays["p_eval"])) - math.log(p))))
