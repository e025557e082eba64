"""Sweep axes that change shapes or code: one compiled run per combination, stacked.

A traced axis (seed, p, lr, ...) is ``vmap``-ped inside one compiled call. A static axis
(a task, a model family, ``n_features``, ``d_mlp``) cannot be: each of its values needs
its own program. :func:`over_static_axes` runs a function once per combination of the
static values, one after another, and stacks what each returns under one leading axis
per static axis, so the caller gets one grid either way.
"""

import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np


def static_combinations(static_axes: Mapping[str, Sequence]) -> list[dict]:
    """Every combination of the static axes' values, the last axis varying fastest.

    Args:
        static_axes: Axis name to its values.

    Returns:
        One ``{name: value}`` dict per combination, in row-major order.
    """
    names = list(static_axes)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*static_axes.values())]


def over_static_axes(
    static_axes: Mapping[str, Sequence],
    run: Callable[[dict], Mapping[str, np.ndarray]],
    on_combination: Callable[[int, int, dict], None] | None = None,
) -> dict[str, np.ndarray]:
    """``run(combination)`` for each combination of ``static_axes`` (in
    :func:`static_combinations` order); each returned array is stacked into shape
    ``(len(axis_1), ..., len(axis_k)) + its own shape``. Every run must return the same
    names with the same shapes (a result whose shape depends on a static value, such as
    weights across ``n_features``, cannot share a grid: return it elsewhere).

    Args:
        static_axes: Axis name to its values; ``len(axis)`` values each.
        run: Called with each combination (a ``{name: value}`` dict); returns named arrays.
        on_combination: Called as ``on_combination(i, total, combination)`` before each run, or None.

    Returns:
        Each name's arrays stacked, ``(len(axis_1), ..., len(axis_k)) + its own shape``.

    Raises:
        ValueError: If a static axis has no values, or a name's shape differs between combinations.
    """
    combinations = static_combinations(static_axes)
    if not combinations:
        raise ValueError("over_static_axes: every static axis needs at least one value")
    results = []
    for index, combination in enumerate(combinations):
        if on_combination is not None:
            on_combination(index, len(combinations), combination)
        results.append({name: np.asarray(value) for name, value in run(combination).items()})
    lead = tuple(len(values) for values in static_axes.values())
    stacked = {}
    for name in results[0]:
        shapes = {result[name].shape for result in results}
        if len(shapes) != 1:
            raise ValueError(f"over_static_axes: {name!r} has shapes {sorted(shapes)} across combinations")
        stacked[name] = np.stack([result[name] for result in results]).reshape(lead + results[0][name].shape)
    return stacked


def sweep_static(config, static_axes: Mapping[str, Sequence], axes: Mapping[str, Sequence], **sweep_options):
    """:func:`ccjax.sweep` over traced ``axes`` once per combination of ``static_axes``
    (``TrainConfig`` fields that change shapes or code: ``n_features``, ``d_mlp``,
    ``batch_size``, ``steps``, ``full_model``, ...; and ``"task"``, a list of
    :class:`ccjax.Task` objects, passed to :func:`ccjax.sweep` as ``task=``), one compile each.

    Args:
        config (TrainConfig): The base config; each combination replaces its static fields.
        static_axes: Static axis name (a ``TrainConfig`` field, or ``"task"``) to its values.
        axes: The traced axes of every sweep, as :func:`ccjax.sweep` takes them.
        **sweep_options (Any): Further keyword arguments of :func:`ccjax.sweep`.

    Returns:
        (tuple[dict[str, np.ndarray], list[SweepResult]]): ``(stacked, results)``: the training
            histories (``history_<field>``) and ``diverged_step`` with leading static axes then the grid's, and the full
            :class:`ccjax.SweepResult` of each combination (their weights differ in shape) in
            :func:`static_combinations` order.
    """
    import dataclasses

    from ._sweep import sweep

    results = []

    def run(combination):
        fields = {name: value for name, value in combination.items() if name != "task"}
        options = sweep_options | ({"task": combination["task"]} if "task" in combination else {})
        result = sweep(dataclasses.replace(config, **fields), axes, **options)
        results.append(result)
        history = {f"history_{name}": value for name, value in result.history._asdict().items()}
        return history | {"diverged_step": result.diverged_step}

    return over_static_axes(static_axes, run), results
