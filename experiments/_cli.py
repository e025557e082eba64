"""Shared pieces of the experiment CLIs: argument types, a progress bar, tables.

Argument types raise ``argparse.ArgumentTypeError`` so that bad input ends in argparse's
one-line ``error:`` message and exit status 2, never a traceback. Terminal text is ASCII,
so that it prints on any console encoding.
"""

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

import numpy as np

from ccjax.engine import format_duration  # one duration format for the library and the CLIs
from ccjax.measure.statistics import mean_and_sem


def use_every_cpu_core() -> None:
    """Expose one JAX CPU device per core, so a CPU sweep shards its models over all cores.

    XLA runs a sweep's small per-model ops on one thread; with one device per core the
    model axis is split across cores (measured 1.25-1.7x faster on 2 cores, see the
    README). Harmless on GPU/TPU, where the CPU devices are not used. Does nothing if the
    user set a device count (``XLA_FLAGS``/``jax_num_cpu_devices``) or JAX already started.
    """
    import jax

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    if jax.config.jax_num_cpu_devices != -1:
        return
    try:
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)
    except RuntimeError:  # backends already initialised (e.g. called from a test process)
        pass


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are two lines: a short usage line that
    points to ``--help``, then ``<prog>: error: <message>``; exit status 2, as argparse's.

    argparse prints the whole usage block (15 lines for an experiment) before the one line
    that matters; ``--help`` still prints it in full. Every experiment's parser is one of
    these; other command lines (``benchmarks/``) can use it too.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"usage: {self.prog} [options] (see --help)\n{self.prog}: error: {message}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default (the paper's values) and keeps the description's line breaks."""

    def _get_help_string(self, action):
        if action.default in (None, False):  # flags: "(default: False)" says nothing
            return action.help
        return super()._get_help_string(action)


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _entries(text: str) -> list[str]:
    entries = [entry.strip() for entry in text.split(",")]
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a comma-separated list, got an empty string")
    if "" in entries:
        raise argparse.ArgumentTypeError(f"empty entry in the list {text!r}")
    return entries


def choice_list(allowed: Sequence[str], what: str = "family") -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated, repeat-free subset of ``allowed``, in ``allowed``'s order."""

    def parse(text: str) -> list[str]:
        entries = [entry.strip() for entry in text.split(",")]
        if not text.strip() or "" in entries:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what} names, got {text!r}")
        unknown = [entry for entry in entries if entry not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {what} {unknown[0]!r}; choose from {', '.join(allowed)}")
        if len(set(entries)) != len(entries):
            raise argparse.ArgumentTypeError(f"repeated {what} in {text!r}")
        return [name for name in allowed if name in entries]

    parse.choices = tuple(allowed)  # what --help and tests/test_every_choice.py offer
    return parse


def scale_list(text: str) -> list[float]:
    """``"0,0.5,1,2"`` → ``[0.0, 0.5, 1.0, 2.0]``: finite, non-negative, no repeats."""
    values = [_finite_float(entry) for entry in _entries(text)]
    negative = [value for value in values if value < 0]
    if negative:
        raise argparse.ArgumentTypeError(f"scales must be >= 0, got {negative[0]:g} (the sign belongs to the mixing)")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"repeated value in {text!r}")
    return values


def sigma_list(text: str) -> list[float]:
    """Mixing magnitudes: a :func:`scale_list`, sorted ascending."""
    return sorted(scale_list(text))


def seed_list(text: str) -> list[int]:
    """``"5"`` → seeds 0..4; ``"3,7"`` → seeds 3 and 7 (non-negative, no repeats)."""
    entries = _entries(text)
    try:
        values = [int(entry) for entry in entries]
    except ValueError:
        message = f"expected a number of seeds or a list of integer seeds, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if len(entries) == 1:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"the number of seeds must be >= 1, got {values[0]}")
        return list(range(values[0]))
    if min(values) < 0 or max(values) >= 2**32:
        raise argparse.ArgumentTypeError(f"seeds must be integers in [0, 2**32), got {text!r}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"repeated seed in {text!r}: repeats would train identical models")
    return values


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def probability(text: str) -> float:
    """A feature probability p in (0, 1]."""
    value = _finite_float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"p must be in (0, 1], got {text}")
    return value


def finite_float(text: str) -> float:
    """Any finite number."""
    return _finite_float(text)


def int_range_list(low: int, high: int, what: str, high_name: str) -> Callable[[str], list[int]]:
    """An argparse type: ``"1,10,50"`` -> ``[1, 10, 50]``, integers in ``low..high``
    (``high_name`` says what bounds them), no repeats, sorted; ``what`` names them in errors."""

    def parse(text: str) -> list[int]:
        entries = [entry.strip() for entry in text.split(",")]
        if not text.strip() or "" in entries:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        try:
            values = [int(entry) for entry in entries]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be integers, got {text!r}") from None
        bad = [value for value in values if not low <= value <= high]
        if bad:
            raise argparse.ArgumentTypeError(f"{what} must be in {low}..{high} ({high_name}), got {bad[0]}")
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeated value in {text!r}")
        return sorted(values)

    return parse


def count(n: int, noun: str) -> str:
    """``count(1, "seed")`` → "1 seed", ``count(5, "seed")`` → "5 seeds"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A right-aligned plain-text table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(cell).rjust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join([line(headers), line("-" * width for width in widths), *(line(row) for row in rows)])


def say(message: str, stream: TextIO | None = None) -> None:
    """A status line on stderr (stdout carries the results table)."""
    print(message, file=stream or sys.stderr, flush=True)


def non_negative_float(text: str) -> float:
    """One finite number >= 0 (a mixing scale)."""
    values = scale_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text}")
    return values[0]


def probability_list(text: str) -> list[float]:
    """``"0.1,0.01"`` -> ``[0.01, 0.1]``: feature probabilities in (0, 1], sorted, no repeats."""
    values = scale_list(text)
    if any(not 0.0 < value <= 1.0 for value in values):
        raise argparse.ArgumentTypeError(f"every p must be in (0, 1], got {text}")
    return sorted(set(values))


def format_mean_sem(values, digits: int = 4) -> str:
    """``"0.0712 +- 0.0003"``: the mean of the finite ``values`` and its SEM (just the mean for one value)."""
    mean, sem = mean_and_sem(values)
    return f"{mean:.{digits}f}" if not np.isfinite(sem) else f"{mean:.{digits}f} +- {sem:.{digits}f}"


def learning_rates(text: str) -> list[float]:
    """A :func:`scale_list` of positive learning rates, ascending."""
    values = scale_list(text)
    if min(values) <= 0:
        raise argparse.ArgumentTypeError(f"learning rates must be > 0, got {min(values):g}")
    return sorted(values)


def count_families(n: int) -> str:
    """``"1 family"``, ``"2 families"``."""
    return f"{n} famil{'y' if n == 1 else 'ies'}"


def mixing_formulas(families) -> dict[str, str]:
    """The manifest's ``"mixing"``: each family's formula for M, by name."""
    import ccjax

    return {family: ccjax.MIXING_FAMILIES[family].formula for family in families}


def record_sweep_timings(timings: dict, results) -> None:
    """Add the run and compile seconds of ``results`` (summed) and their device count to ``timings``."""
    timings["sweep_run_seconds"] = sum(result.run_seconds for result in results)
    timings["compile_seconds"] = sum(result.compile_seconds for result in results)
    timings["n_devices"] = results[0].n_devices


def shared_mixing(mixing, sigma_axis: int) -> np.ndarray:
    """The M of a sweep whose sigmas (along ``sigma_axis``) all share their seed's M, that axis dropped."""
    mixing = np.asarray(mixing)
    first = np.take(mixing, [0], axis=sigma_axis)
    if not np.array_equal(mixing, np.broadcast_to(first, mixing.shape)):
        raise AssertionError("the sweep's M differs between sigmas of one seed")
    return np.take(mixing, 0, axis=sigma_axis)


def evaluate_curves(params, scaled_mixing, p_all, rel_sem: float, session):
    """:func:`ccjax.loss_curve` of every model at ``p_all``, timed as ``session``'s "eval", with status lines."""
    import ccjax

    n_models = math.prod(np.shape(scaled_mixing)[:-2])
    say(f"evaluating {count(n_models, 'model')} at {len(p_all)} p's ...")
    with session.timed("eval"):
        curve = ccjax.loss_curve(params, scaled_mixing, p_all, ccjax.evaluation_key(), rel_sem=rel_sem)
    say(f"evaluated in {format_duration(session.timings['eval_seconds'])} on {curve.n_evaluations:,} exactly-k samples")
    return curve


def curve_evaluation(rel_sem: float, curve, method: str) -> dict:
    """The manifest's ``"evaluation"`` of a :func:`evaluate_curves` run."""
    return {"rel_sem": rel_sem, "method": method, "max_truncation_bound": float(curve.truncation_bound.max())}


def stack_fields(records) -> dict[str, np.ndarray]:
    """One dict of arrays from a list of dicts with the same names: each name's values stacked (new leading axis)."""
    return {name: np.stack([record[name] for record in records]) for name in records[0]}


def plot_mean_sem(ax, x, mean, sem, *fmt, band: bool = True, alpha: float = 0.2, **style):
    """Plot ``mean`` over ``x`` and (``band``) a +-``sem`` band in the line's colour, unless an SEM is not finite."""
    line = ax.plot(x, mean, *fmt, **style)[0]
    if band and np.all(np.isfinite(sem)):
        ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=alpha, linewidth=0)
    return line


def plot_seed_mean(ax, x, values, *fmt, band: bool = True, alpha: float = 0.2, **style):
    """:func:`plot_mean_sem` of the mean of ``values`` (seeds, len(x)) over its finite seeds."""
    return plot_mean_sem(ax, x, *mean_and_sem(values), *fmt, band=band, alpha=alpha, **style)


def logged_steps(result):
    """``(n_logs,)``: the steps at which a sweep logged its history (the same for every model)."""
    step = result.history.step
    return step.reshape(-1, step.shape[-1])[0]
