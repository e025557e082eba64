"""Shared pieces of the experiment CLIs: argument types and status lines (tables and numbers
with uncertainties are :mod:`ccjax.report`'s).

Argument types raise ``argparse.ArgumentTypeError`` so that bad input ends in argparse's
one-line ``error:`` message and exit status 2, never a traceback. Terminal text is ASCII,
so that it prints on any console encoding.
"""

import argparse
import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import jax

import ccjax
from ccjax.engine import format_duration  # noqa: F401 (re-exported: one duration format for the library and the CLIs)


def use_every_cpu_core() -> None:
    """Expose one JAX CPU device per core, so a CPU sweep shards its models over all cores.

    XLA runs a sweep's small per-model ops on one thread; with one device per core the model axis is split across
    cores (measured 1.25-1.7x faster on 2 cores, see docs/performance.md). Harmless on GPU/TPU, where the CPU devices
    are not used. Does nothing if the user set a device count (``XLA_FLAGS``/``jax_num_cpu_devices``) or JAX started.
    """
    user_set = "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
    if user_set or jax.config.jax_num_cpu_devices != -1:
        return
    with contextlib.suppress(RuntimeError):  # backends already initialised (e.g. called from a test process)
        jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)


class ArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose usage errors are two lines (not argparse's whole usage
    block): a usage line that points to ``--help``, then ``<prog>: error: <message>``; exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"usage: {self.prog} [options] (see --help)\n{self.prog}: error: {message}\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows every default (the paper's values) and keeps the description's line breaks."""

    def _get_help_string(self, action):
        if action.default in (None, False):  # flags: "(default: False)" says nothing
            return action.help
        return super()._get_help_string(action)


@dataclasses.dataclass(frozen=True)
class Option:
    """One command-line option: ``flag``, argparse ``type`` (None: a store-true flag), ``default`` (None with
    ``field``: the experiment config's value) and ``help``. ``field`` names the ``ccjax.TrainConfig`` field the value
    sets (after ``to_field``); options of one group with the same ``exclusive`` name are mutually exclusive."""

    flag: str
    type: Callable[[str], Any] | None
    default: Any
    help: str
    metavar: str | None = None
    choices: Sequence[str] | None = None
    field: str | None = None
    to_field: Callable[[Any], Any] | None = None
    group: str = "run"
    action: type[argparse.Action] | None = None  # of a flag, e.g. argparse.BooleanOptionalAction
    exclusive: str | None = None
    trains_p: bool = False  # its values are the p's the models train at (in place of the config's p)

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def config_value(self, value: Any) -> Any:
        """The config field's value for the option's parsed ``value``."""
        return value if self.to_field is None else self.to_field(value)

    def add_to(self, group: argparse._ActionsContainer) -> None:
        if self.type is None:  # a flag: store_true, or its action
            group.add_argument(self.flag, action=self.action or "store_true", default=self.default, help=self.help)
        else:
            kwargs = {"default": self.default, "metavar": self.metavar, "choices": self.choices, "help": self.help}
            group.add_argument(self.flag, type=self.type, **kwargs)


def add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    """Add ``options`` to ``parser``, each in its ``group`` (made at its first option, so the
    groups show in the order of their first options), the ``exclusive`` ones in a mutually
    exclusive group of their own."""
    groups = {}
    for option in options:
        key = (option.group, option.exclusive)
        if option.group not in groups:
            groups[option.group] = parser.add_argument_group(option.group)
        if option.exclusive and key not in groups:
            groups[key] = groups[option.group].add_mutually_exclusive_group()
        option.add_to(groups[key if option.exclusive else option.group])


def finite_float(text: str) -> float:
    """Any finite number."""
    (value,) = _parsed([text], float, f"{text!r} is not a number")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _entries(text: str) -> list[str]:
    """The comma-separated entries of ``text``, none empty."""
    entries = [entry.strip() for entry in text.split(",")]
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a comma-separated list, got an empty string")
    if "" in entries:
        raise argparse.ArgumentTypeError(f"empty entry in the list {text!r}")
    return entries


def _checked(values: list, text: str, allowed: Callable, refusal: str, repeats: str = "repeated value in {text!r}"):
    """``values`` (parsed from ``text``) if each is ``allowed`` and none repeats; else the
    ``refusal`` of the first one not allowed (``{}`` in it: that value), or ``repeats``."""
    bad = [value for value in values if not allowed(value)]
    if bad:
        raise argparse.ArgumentTypeError(refusal.format(bad[0]))
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(repeats.format(text=text))
    return values


def _parsed(entries: list[str], parse: Callable[[str], Any], refusal: str) -> list:
    """Each entry parsed by ``parse`` (``int``, ``float``); ``refusal`` when one does not parse."""
    try:
        return [parse(entry) for entry in entries]
    except ValueError:
        raise argparse.ArgumentTypeError(refusal) from None


def choice_list(allowed: Sequence[str], what: str = "family") -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated, repeat-free subset of ``allowed``, in ``allowed``'s order."""
    unknown, repeated = f"unknown {what} {{!r}}; choose from {', '.join(allowed)}", f"repeated {what} in {{text!r}}"

    def parse(text: str) -> list[str]:
        entries = _checked(_entries(text), text, allowed.__contains__, unknown, repeated)
        return [name for name in allowed if name in entries]

    parse.choices = tuple(allowed)  # what --help and tests/test_every_choice.py offer
    return parse


def scale_list(text: str) -> list[float]:
    """``"0,0.5,1,2"`` → ``[0.0, 0.5, 1.0, 2.0]``: finite, non-negative, no repeats."""
    negative = "scales must be >= 0, got {:g} (the sign belongs to the mixing)"
    return _checked([finite_float(entry) for entry in _entries(text)], text, lambda value: value >= 0, negative)


def sigma_list(text: str) -> list[float]:
    """Mixing magnitudes: a :func:`scale_list`, sorted ascending."""
    return sorted(scale_list(text))


def non_negative_float(text: str) -> float:
    """One finite number >= 0 (a mixing scale)."""
    values = scale_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one number, got {text}")
    return values[0]


def probability_list(text: str) -> list[float]:
    """``"0.1,0.01"`` -> ``[0.01, 0.1]``: feature probabilities in (0, 1], sorted, no repeats."""
    values = _checked(scale_list(text), text, lambda p: 0.0 < p <= 1.0, f"every p must be in (0, 1], got {text}")
    return sorted(set(values))


def learning_rates(text: str) -> list[float]:
    """A :func:`scale_list` of positive learning rates, ascending."""
    return sorted(_checked(scale_list(text), text, lambda value: value > 0, "learning rates must be > 0, got {:g}"))


def seed_list(text: str) -> list[int]:
    """``"5"`` → seeds 0..4; ``"3,7"`` → seeds 3 and 7 (non-negative, no repeats)."""
    values = _parsed(_entries(text), int, f"expected a number of seeds or a list of integer seeds, got {text!r}")
    if len(values) == 1:
        if values[0] < 1:
            raise argparse.ArgumentTypeError(f"the number of seeds must be >= 1, got {values[0]}")
        return list(range(values[0]))
    in_range = f"seeds must be integers in [0, 2**32), got {text!r}"  # text: integers only, no braces
    repeated = "repeated seed in {text!r}: repeats would train identical models"
    return _checked(values, text, lambda seed: 0 <= seed < 2**32, in_range, repeated)


def int_range_list(low: int, high: int, what: str, high_name: str) -> Callable[[str], list[int]]:
    """An argparse type: ``"1,10,50"`` -> ``[1, 10, 50]``, integers in ``low..high``
    (``high_name`` says what bounds them), no repeats, sorted; ``what`` names them in errors."""
    out_of_range = f"{what} must be in {low}..{high} ({high_name}), got {{}}"

    def parse(text: str) -> list[int]:
        values = _parsed(_entries(text), int, f"{what} must be integers, got {text!r}")
        return sorted(_checked(values, text, lambda value: low <= value <= high, out_of_range))

    return parse


def positive_int(text: str) -> int:
    values = _parsed([text], int, f"{text!r} is not an integer")
    return _checked(values, text, lambda value: value >= 1, "must be a positive integer, got {}")[0]


def positive_float(text: str) -> float:
    return _checked([finite_float(text)], text, lambda value: value > 0, f"must be positive, got {text}")[0]


def probability(text: str) -> float:
    """A feature probability p in (0, 1]."""
    return _checked([finite_float(text)], text, lambda p: 0.0 < p <= 1.0, f"p must be in (0, 1], got {text}")[0]


def say(message: str) -> None:
    """A status line on stderr (stdout carries the results table)."""
    print(message, file=sys.stderr, flush=True)


def mixing_formulas(families) -> dict[str, str]:
    """The manifest's ``"mixing"``: each family's formula for M, by name."""
    return {family: ccjax.MIXING_FAMILIES[family].formula for family in families}


def curve_evaluation(rel_sem: float, curve, method: str) -> dict:
    """The manifest's ``"evaluation"`` of an ``_experiment.evaluate_curves`` run."""
    return {"rel_sem": rel_sem, "method": method, "max_truncation_bound": float(curve.truncation_bound.max())}
