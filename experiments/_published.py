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

# The paper's numbers, by experiment (each experiment's manifest records its own).
# Experiment 1, docs/paper.md §6.1: L/p at p_eval = p_train read off the figure (±0.001).
SPARSITY_REGIMES = {0.001: 0.072, 0.002: 0.0727, 0.005: 0.0744, 0.01: 0.0758, 0.02: 0.0776, 0.05: 0.0796}
SPARSITY_REGIMES |= {0.1: 0.0802, 0.2: 0.0791, 0.5: 0.072, 1.0: 0.054}
# Experiment 7, docs/paper.md §5-6: at p_eval = 1, the model trained at p = 1 reaches about
# 0.052 and naive + offset about 0.053 (read off the figure); b* = 0.0194 (L/p 0.0531) at
# p = 1 and 0.0132 (0.0813) at p = 0.1 from the closed form.
DENSE_OFFSET = {"trained_p1_at_p1": 0.052, "offset_at_p1": 0.053}
# Experiment 8, docs/paper.md §6.8: only the qualitative claim, no numbers.
RANK_SWEEP = "lower rank gives lower loss (docs/paper.md §6.8; no numbers are published)"
# Experiment 4, docs/paper.md §2, §6.2, §6.4 (p = 0.01, read off figures, about +-0.001): after
# fine-tuning on clean labels the loss returns to ~0.083; a model trained on the embedding
# M reaches ~0.067 with the faithful sign and ~0.0644 with the paper code's sign.
TRANSPLANT = {
    "p": 0.01,
    "finetuned_clean": 0.083,
    "phase1_mixed": {"embedding": 0.067, "embedding-code-sign": 0.0644},
    "note": "read off the paper's figures (about +-0.001); the published transplant figure joined two "
    "different models (an erratum), here phase 2 fine-tunes phase 1's models",
}
# Experiment 3, docs/paper.md §6.3: the minimum of L/p at p = 0.01 over sigma, where it lies
# and where the curve crosses the naive line again, read off the figure (one seed per sigma, ±0.001).
SIGMA_SWEEP = {
    "symmetric": {"min_value": 0.065, "argmin": (0.028, 0.036), "crossing": 0.064},
    "asymmetric": {"min_value": 0.075, "argmin": (0.02, 0.028), "crossing": 0.047},
}
SIGMA_SWEEP_AT_ZERO = 0.083
# Experiment 6, docs/paper.md §5, §6.6: SNMF L/p on exactly-one data by sigma, asymmetric M, the
# paper code's orientation (I + sigma M), read off the published figure (±0.001).
SNMF_SWEEP = {0.0: 0.0835, 0.005: 0.0798, 0.008: 0.0787, 0.01: 0.0778, 0.015: 0.0785, 0.02: 0.0817}
SNMF_SWEEP |= {0.03: 0.0924, 0.04: 0.1150}
# Experiment 5, docs/paper.md §6.5: asymmetric sigma = 0.03, read off the figures (about ±0.01).
EIGEN_SUBSPACE = {
    "cos_top20": 0.97,  # cos(E_i, A E_i) for i <~ 20
    "cos_at_40": 0.89,
    "cos_from_70": (0.0, 0.1),  # i >= 70
    "off_diagonal_slope": 1.86,
    "diagonal_slope": 3.38,
    "diagonal_intercept": 0.62,
}
# Experiment 2, docs/paper.md §2, §6.2: L/p at p_eval = 0.01 by mixing family, read off the
# figure (±0.001); the published curve used the code's sign, the faithful value is the spec's (§2).
MIXING_TYPES = {
    "embedding": 0.067,
    "embedding-code-sign": 0.0644,
    "none": 0.0835,
    "asymmetric": 0.0753,
    "symmetric": 0.0651,
}
MIXING_TYPES_SCALE = {"asymmetric": 0.025, "symmetric": 0.033}  # learned |scale| (docs/paper.md §6.2)


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


def eigen_subspace_numbers(arrays: dict, case: int) -> dict[str, np.ndarray]:
    """Per-seed scalars of a saved eigen_subspace run comparable with the paper's figure (docs/paper.md §6.5),
    for one case (family and scale)."""
    cos = arrays["eigen_cos"][case]  # (K, n), i = 0 is the top eigenvector
    return {
        "cos_top20": cos[:, :20].mean(axis=1),
        "cos_at_40": cos[:, 38:43].mean(axis=1),  # i = 40 (1-based) +- 2
        "cos_from_70": cos[:, 69:].mean(axis=1),
        "off_diagonal_slope": arrays["off_diagonal_slope"][case],
        "diagonal_slope": arrays["diagonal_slope"][case],
        "diagonal_intercept": arrays["diagonal_intercept"][case],
        "share_in": arrays["share_in"][case],
        "share_out": arrays["share_out"][case],
        "effective_rank": arrays["effective_rank"][case],
    }


def verdict(comparison: Comparison) -> str:
    return {True: "yes", False: "**no**", None: "–"}[comparison.agrees]


def _cell(text: str) -> str:
    """Markdown table cell text: a literal ``|`` (as in |s|) would end the cell."""
    return text.replace("|", "\\|")


def markdown_table(comparisons: list[Comparison]) -> str:
    lines = ["| quantity | paper | ours (mean ± SEM) | agrees | note |", "| --- | --- | --- | --- | --- |"]
    for c in comparisons:
        cells = [_cell(text) for text in (c.quantity, c.published, c.ours, verdict(c), c.note)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
