"""A ready-made progress reporter for :func:`ccjax.sweep` (the library itself is silent).

    result = ccjax.sweep(config, axes, on_progress=ccjax.print_progress)

prints, after every chunk of steps, the step, percentage, models, model-steps/s and the
ETA to stderr, plus a warning for every model that diverged in that chunk. On a terminal
it redraws one line (``\\r``); elsewhere (logs, notebooks' captured streams) it prints one
line per report. ``functools.partial(ccjax.print_progress, stream=f)`` writes elsewhere.
"""

import io
import math
import sys
from typing import TextIO

from ._sweep import Progress


def format_duration(seconds: float) -> str:
    """``"1h02m03s"``, ``"4m05s"`` or ``"6s"``; ``"?"`` when unknown (not finite)."""
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(round(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def describe_progress(progress: Progress) -> str:
    """One line: step, %, models, model-steps/s, compile time and the ETA (or total time).

    Rates and the ETA come from the steps done and the run time so far (compile time
    excluded); after a resume the steps trained before it count as done, so the first
    reports' rate is optimistic.
    """
    done, total, seconds = progress.steps_done, progress.total_steps, progress.run_seconds
    rate = done * progress.n_models / seconds if seconds > 0 else math.nan
    eta = (total - done) * seconds / done if done > 0 else math.nan
    timing = f"done in {format_duration(seconds)}" if done >= total else f"ETA {format_duration(eta)}"
    diverged = f", {progress.n_diverged} diverged" if progress.n_diverged else ""
    return (
        f"step {done:,}/{total:,} ({100 * done / total:.0f}%), {progress.n_models:,} models, "
        f"{rate:,.0f} model-steps/s, compile {progress.compile_seconds:.1f}s, {timing}{diverged}"
    )


def _describe_point(point: dict) -> str:
    coords = ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in point.items()
        if name != "step"
    )
    return f"{coords} (step {point['step']:,})"


def print_progress(progress: Progress, *, stream: TextIO | io.TextIOBase | None = None) -> None:
    """An ``on_progress`` callback for :func:`ccjax.sweep` that reports to ``stream``
    (default stderr): a ``\\r``-redrawn line on a terminal, else one line per report,
    and a warning line for each model that diverged (loss or weights NaN or infinite)."""
    stream = sys.stderr if stream is None else stream
    tty = bool(getattr(stream, "isatty", lambda: False)())
    finished = progress.steps_done >= progress.total_steps
    for point in progress.diverged:
        start = "\n" if tty else ""
        stream.write(f"{start}warning: model {_describe_point(point)} diverged (loss NaN or inf); the others go on\n")
    line = "sweep: " + describe_progress(progress)
    if tty:
        stream.write("\r" + line + "\x1b[K" + ("\n" if finished else ""))  # \x1b[K clears the old line's tail
    else:
        stream.write(line + "\n")
    stream.flush()
