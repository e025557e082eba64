"""A ready-made progress reporter for :func:`ccjax.sweep` (the library itself is silent).

    result = ccjax.sweep(config, axes, on_progress=ccjax.ProgressBar())

prints, after chunks of steps, a bar with the steps, models, model-steps/s, the mean
training L/p, the compile time and the ETA to stderr, plus a warning for every model
that diverged. ``ProgressBar(stream=f)`` writes elsewhere. The experiments' CLIs use it.
"""

import io
import math
import sys
import time
from collections.abc import Mapping
from typing import TextIO

import numpy as np

from ._sweep import Progress


def format_duration(seconds: float) -> str:
    """``"1h02m03s"``, ``"4m05s"`` or ``"6s"``; ``"?"`` when unknown (not finite).

    Args:
        seconds: A duration in seconds (rounded to whole seconds).

    Returns:
        The duration as text.
    """
    if not math.isfinite(seconds):
        return "?"
    hours, rest = divmod(round(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{seconds:02d}s"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _finite_mean(values: np.ndarray) -> float:
    finite = np.isfinite(values)
    return float(np.where(finite, values, 0.0).sum() / finite.sum()) if finite.any() else math.nan


def describe_progress(progress: Progress, width: int = 24) -> str:
    """One line: a bar of ``width`` characters, %, steps, models, model-steps/s, the latest
    mean training L/p over the models, the compile time and the ETA (or the total time).

    Rates and the ETA come from the steps done and the run time so far (compile time
    excluded); after a resume the steps trained before it count as done, so the first
    reports' rate is optimistic.

    Args:
        progress: The sweep's latest report.
        width: Characters in the bar.

    Returns:
        The line, without a newline.
    """
    done, total, seconds = progress.steps_done, progress.total_steps, progress.run_seconds
    rate = done * progress.n_models / seconds if seconds > 0 else math.nan
    eta = (total - done) * seconds / done if done > 0 else math.nan
    # The chunk's history has one row per model (plus padding rows to a multiple of the
    # device count) and may end in intervals past the last step: take the last logged
    # interval of the real models.
    last = int(np.argmax(np.asarray(progress.history.step)[0]))
    loss = _finite_mean(np.asarray(progress.history.train_loss_per_feature)[: progress.n_models, last])
    filled = round(width * done / total)
    bar = "[" + "#" * filled + "." * (width - filled) + "]"
    timing = f"done in {format_duration(seconds)}" if done >= total else f"ETA {format_duration(eta)}"
    diverged = f"  {progress.n_diverged} diverged" if progress.n_diverged else ""
    return (
        f"{bar} {100 * done / total:3.0f}%  {done}/{total} steps  {progress.n_models} models  "
        f"{rate:,.0f} model-steps/s  train L/p {loss:.4f}  compile {progress.compile_seconds:.1f}s  {timing}{diverged}"
    )


def describe_point(point: Mapping) -> str:
    """``seed=1, lr=1e+06 (step 10)``: a diverged model's grid coordinates and the step it
    diverged by (:meth:`SweepResult.diverged_points`; a ``"sweep"`` label is left out).

    Args:
        point: A diverged model's grid coordinates and ``"step"``.

    Returns:
        The description.
    """
    coords = ", ".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in point.items()
        if name not in ("sweep", "step")
    )
    return f"{coords} (step {point['step']:,})"


class ProgressBar:
    """An ``on_progress`` callback for :func:`ccjax.sweep` that reports to ``stream``
    (default: stderr at the time of the report) with :func:`describe_progress`'s line, and
    a warning for each model that diverged (loss or weights NaN or infinite).

    On a terminal it redraws one line with ``\\r``; elsewhere (logs, notebooks) it prints a
    line every ``line_fraction`` of the run or ``line_seconds``, and at the end. Make one
    per sweep: it remembers what it printed.
    """

    def __init__(
        self,
        stream: TextIO | io.TextIOBase | None = None,
        *,
        width: int = 24,
        line_fraction: float = 0.1,
        line_seconds: float = 60.0,
    ):
        self.stream, self.width = stream, width
        self.line_fraction, self.line_seconds = line_fraction, line_seconds
        self._printed_fraction = self._printed_time = -math.inf
        self._drawn = 0

    def _out(self):
        return sys.stderr if self.stream is None else self.stream

    def _tty(self) -> bool:
        return bool(getattr(self._out(), "isatty", lambda: False)())

    def __call__(self, progress: Progress) -> None:
        stream, fraction = self._out(), progress.steps_done / progress.total_steps
        finished = progress.steps_done >= progress.total_steps
        if progress.diverged:
            self.close()
        for point in progress.diverged:
            stream.write(f"warning: model {describe_point(point)} diverged (loss NaN or inf); the others go on\n")
        text = describe_progress(progress, self.width)
        if self._tty():
            stream.write("\r" + text.ljust(self._drawn) + ("\n" if finished else ""))
            self._drawn = 0 if finished else len(text)
        elif finished or fraction - self._printed_fraction >= self.line_fraction - 1e-9 or self._due():
            stream.write(text + "\n")
            self._printed_fraction, self._printed_time = fraction, time.monotonic()
        stream.flush()

    def _due(self) -> bool:
        return time.monotonic() - self._printed_time >= self.line_seconds

    def close(self) -> None:
        """End a partly drawn terminal line (e.g. after an interruption)."""
        if self._tty() and self._drawn:
            self._out().write("\n")
            self._out().flush()
            self._drawn = 0
