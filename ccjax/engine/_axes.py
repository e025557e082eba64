"""Sweep axes, declared once on the config field.

A :class:`~ccjax.TrainConfig` field declared with :func:`traced` is a *traced* sweep
axis: every model of a sweep carries its own value as an array (in the config's
:func:`hyper_type`), so a sweep over it compiles once. Every other field is static: part
of the compiled program. Everything else follows from the declarations: the
:class:`~ccjax.engine.Hyper` record, the names :func:`ccjax.make_grid` accepts, the value
checks, the encoding as arrays, and the neutral values that keep traced values out of the
compile key (:func:`neutral_config`).

Inside a compiled run, code reads the config through :class:`RunValues`, so a field that
becomes traced is read from its traced value everywhere without further edits.
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from .._types import Array, Float, Int


# Value rules for ``traced(allowed=...)``: each marks the allowed entries of a float64 array.
def any_real(values: np.ndarray) -> np.ndarray:
    """Every real number (the default rule).

    Args:
        values: The swept values as a float64 array (non-finite values already replaced).

    Returns:
        A boolean array of the same shape, True where a value is allowed.
    """
    return np.ones_like(values, bool)


def positive(values: np.ndarray) -> np.ndarray:
    """Greater than 0.

    Args:
        values: The swept values as a float64 array (non-finite values already replaced).

    Returns:
        A boolean array of the same shape, True where a value is allowed.
    """
    return values > 0


def non_negative(values: np.ndarray) -> np.ndarray:
    """At least 0.

    Args:
        values: The swept values as a float64 array (non-finite values already replaced).

    Returns:
        A boolean array of the same shape, True where a value is allowed.
    """
    return values >= 0


def probability(values: np.ndarray) -> np.ndarray:
    """In (0, 1].

    Args:
        values: The swept values as a float64 array (non-finite values already replaced).

    Returns:
        A boolean array of the same shape, True where a value is allowed.
    """
    return (values > 0) & (values <= 1)


def positive_integer(values: np.ndarray) -> np.ndarray:
    """A whole number of at least 1.

    Args:
        values: The swept values as a float64 array (non-finite values already replaced).

    Returns:
        A boolean array of the same shape, True where a value is allowed.
    """
    return (values >= 1) & (values == np.round(values))


@dataclasses.dataclass(frozen=True)
class Axis:
    """How one traced config field is swept.

    ``neutral`` replaces the field's value in the compile key: a constant, or a function
    of the values in use (``max`` for p, whose largest value sizes the batches).
    ``allowed`` marks the allowed finite values of a numeric axis (``description`` says
    what they are); a categorical axis has ``choices`` (``description`` names them) and
    is stored as the index.

    Attributes:
        dtype: The traced record's dtype: ``np.int32`` (integers and choice indices) or ``np.float32``.
        neutral: The value in the compile key: a constant, or a function of the values in use.
        allowed: The value rule of a numeric axis: float64 values to a boolean array (e.g. :func:`positive`).
        description: What the allowed values (or, for a categorical axis, the choices) are, for messages.
        choices: The names of a categorical axis, in index order; None for a numeric axis.
    """

    dtype: type
    neutral: Any
    allowed: Callable[[np.ndarray], np.ndarray] = any_real
    description: str = "a real number"
    choices: tuple[str, ...] | None = None

    def encode(self, values) -> np.ndarray:
        """Config values as the 1-D array the traced record holds (one per model).

        Args:
            values (Any): One config value or a sequence of them (names, for a categorical axis).

        Returns:
            A 1-D array of ``dtype``, one entry per value (a choice's index for a categorical axis).
        """
        values = np.atleast_1d(values)
        if self.choices is not None:
            return np.array([self.choices.index(value) for value in values.tolist()], np.int32)
        return np.asarray(values, self.dtype)

    def config_value(self, value):
        """One swept value as the config field holds it.

        Args:
            value (Any): One swept value (a name, for a categorical axis).

        Returns:
            (Any): ``value`` as a Python int on a numeric integer axis, else unchanged.
        """
        return int(value) if self.dtype == np.int32 and self.choices is None else value

    def neutral_value(self, values: Sequence):
        """The field's value in the compile key.

        Args:
            values: The values the axis takes in the run or sweep.

        Returns:
            (Any): ``neutral(values)`` if ``neutral`` is callable, else ``neutral``.
        """
        return self.neutral(values) if callable(self.neutral) else self.neutral

    def check(self, name: str, array: np.ndarray) -> None:
        """Raise a ValueError unless every value of ``array`` may be swept on axis ``name``.

        Args:
            name: The axis (config field) name, for the message.
            array: The values to sweep, 1-D: names for a categorical axis, else numbers.

        Raises:
            ValueError: If a name is not among ``choices``, or a number is not numeric, not
                finite or not ``allowed``.
        """
        if self.choices is not None:
            unknown = [value for value in array.tolist() if value not in self.choices]
            if unknown:
                raise ValueError(
                    f"axis {name!r} has unknown {self.description} {unknown}; choose from {', '.join(self.choices)}"
                )
            return
        try:
            values = array.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"axis {name!r} must hold numbers, got {array.tolist()}") from None
        bad = ~np.isfinite(values) | ~self.allowed(np.nan_to_num(values))
        if bad.any():
            raise ValueError(
                f"axis {name!r} has non-finite or out-of-range values {values[bad].tolist()}: "
                f"each must be finite and {self.description}"
            )


def traced(
    default,
    *,
    neutral,
    allowed: Callable[[np.ndarray], np.ndarray] = any_real,
    description: str = "a real number",
    choices: Sequence[str] | None = None,
):
    """A dataclass field that is a traced sweep axis (int defaults are stored as int32,
    choices as their index, the rest as float32).

    Args:
        default (Any): The field's default value; its type picks the dtype.
        neutral (Any): The value in the compile key: a constant, or a function of the values in use
            (e.g. ``max``).
        allowed: The value rule of a numeric axis (default: any real number).
        description: What the allowed values or the choices are, for error messages.
        choices: The names of a categorical axis, stored as their index; None for a numeric axis.

    Returns:
        (dataclasses.Field): A ``dataclasses.Field`` with ``default`` and the :class:`Axis` in ``metadata["axis"]``.
    """
    integer = choices is not None or isinstance(default, int)
    axis = Axis(np.int32 if integer else np.float32, neutral, allowed, description, choices and tuple(choices))
    return dataclasses.field(default=default, metadata={"axis": axis})


@functools.cache
def traced_axes(config_type: type) -> dict[str, Axis]:
    """The traced axes of a config class, in field order.

    Args:
        config_type: A config dataclass, e.g. :class:`~ccjax.TrainConfig`.

    Returns:
        Field name to :class:`Axis`, for each field declared with :func:`traced`.
    """
    return {f.name: f.metadata["axis"] for f in dataclasses.fields(config_type) if "axis" in f.metadata}


@functools.cache
def hyper_type(config_type: type) -> type:
    """The NamedTuple of a config class's traced values: one field per traced axis."""
    fields = [
        (name, Int[Array, ""] if axis.dtype == np.int32 else Float[Array, ""])
        for name, axis in traced_axes(config_type).items()
    ]
    hyper = NamedTuple("Hyper", fields)
    hyper.__doc__ = f"Traced values of {config_type.__name__} ({', '.join(name for name, _ in fields)})."
    return hyper


def hyper_from_config(config) -> tuple:
    """The config's own values of its traced axes, as its :func:`hyper_type`.

    Args:
        config (TrainConfig): A config, e.g. a :class:`~ccjax.TrainConfig`.

    Returns:
        (tuple): One scalar array per traced field, as the config's ``Hyper`` NamedTuple (a categorical
            value as its index): the traced values of a single run.
    """
    values = [jnp.asarray(axis.encode(getattr(config, name))[0]) for name, axis in traced_axes(type(config)).items()]
    return hyper_type(type(config))(*values)


def neutral_config(config, in_use: Mapping[str, Sequence] | None = None):
    """``config`` with every traced field at its neutral value, so that configs that differ
    only in traced values compile once. ``in_use`` holds the values an axis takes (default:
    the config's), for neutral values that depend on them."""
    in_use = in_use or {}
    changes = {
        name: axis.neutral_value(in_use.get(name, [getattr(config, name)]))
        for name, axis in traced_axes(type(config)).items()
    }
    return dataclasses.replace(config, **changes)


class RunValues:
    """The config as a compiled run reads it: traced fields from ``hyper``, others from ``config``."""

    def __init__(self, config, hyper):
        self._config, self._hyper = config, hyper

    def __getattr__(self, name: str):
        if name in self._hyper._fields:
            return getattr(self._hyper, name)
        return getattr(self._config, name)
