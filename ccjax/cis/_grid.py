"""The search grid: static axes (task, n_features, d/n) one compile each, traced
axes (seed, p, lr) ``vmap``-ped inside each, results stacked into one grid.

:func:`search_grid` returns, for every model, its evaluation at its own p (the task's
loss, MSE, the naive model's loss on the same samples, the naive-like share) and the
naive loss in closed form where the task has one (NaN otherwise), each with shape
``static axes + (seeds, ps, lrs)``.
"""

import dataclasses
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import NamedTuple

import jax
import numpy as np

from ..engine._config import TrainConfig
from ..engine._static_axes import over_static_axes
from ..problem._data import default_capacity
from ..problem._keys import seed_key
from ..problem._tasks import Task
from ._evaluate import evaluate_loss, evaluate_model
from ._references import ARRAYS as REFERENCE_ARRAYS
from ._references import SETTINGS as REFERENCE_SETTINGS
from ._references import reference_arrays
from ._train import train_models

STATIC_AXES = ("task", "n_features", "d_ratio")  # a task names its model family
TRACED_AXES = ("seed", "p", "lr")
EVALUATION_SEED = 20_260_001  # one fixed evaluation stream, apart from every training seed


ARRAYS = {
    "loss": "the task's loss on fresh samples at the model's p",
    "loss_sem": "its standard error",
    "mse": "mean squared error over outputs",
    "mse_sem": "its standard error",
    "naive_mc": "the naive model's loss on the same samples",
    "naive_mc_sem": "its standard error",
    "naive_mse": "the naive model's mean squared error on the same samples",
    "naive_closed_form": "the naive loss in closed form (NaN: the task has none)",
    "naive_like_share": "output variance share of the d_mlp best-served outputs (1: naive-like)",
    "final_train_loss": "mean training loss over the last chunk of steps",
    "initial_train_loss": "training loss at the first step, before any update",
} | REFERENCE_ARRAYS
"""What :func:`search_grid` returns for every model."""


class EvalBudget(NamedTuple):
    """How much each model is evaluated on: ``batches`` batches of ``batch_size`` rows.

    Attributes:
        batches: Independent batches; the standard errors are over them (default 32).
        batch_size: Rows (samples) per batch (default 4096).
    """

    batches: int = 32
    batch_size: int = 4096


DEFAULT_BUDGET = EvalBudget()


def d_mlp_of(n_features: int, d_ratio: float) -> int:
    """The hidden width at ``d_mlp / n_features = d_ratio`` (rounded, at least 1).

    Args:
        n_features: Number of input features n.
        d_ratio: The ratio d/n of neurons to features, e.g. 0.5 (the paper's 50/100).

    Returns:
        d_mlp, ``round(d_ratio * n_features)`` (Python's round: halves to even), at least 1.
    """
    return max(1, round(d_ratio * n_features))


STAGE_VERSION = 2  # bump when a stage's arrays change meaning, so that old stage files miss


def stage_key(task: Task, config: TrainConfig, traced: Mapping[str, Sequence], evaluation: EvalBudget) -> str:
    """A name for one static combination's results: a hash of everything they depend on
    (the task and its fields, the full config, the traced values, the evaluation, the settings
    of the built references and the probe)."""
    record = {"task": repr(task), "config": dataclasses.asdict(config), "evaluation": list(evaluation)}
    record |= {"traced": {name: [float(value) for value in values] for name, values in traced.items()}}
    record |= {"version": STAGE_VERSION, "evaluation_seed": EVALUATION_SEED, "references": REFERENCE_SETTINGS}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]


def _run_one(task: Task, config: TrainConfig, traced: Mapping[str, Sequence], evaluation, on_progress):
    """Train and evaluate every traced combination of one static combination, with its references."""
    seeds, ps, lrs = (np.asarray(values) for values in zip(*itertools.product(*traced.values()), strict=True))
    trained = train_models(task, config, seeds, ps, lrs, on_progress=on_progress)
    n, d = config.n_features, config.d_mlp
    capacity = default_capacity(evaluation.batch_size, n, float(np.max(ps)))

    def one(params, p, key):  # a model on the samples of ``key`` at its own p
        return evaluate_model(task, params, n, d, p, key, *evaluation, capacity)

    def loss(params, p, key):  # the same samples, the loss alone: the built references' scores
        return evaluate_loss(task, params, n, p, key, *evaluation, capacity)

    evaluate, key = jax.jit(jax.vmap(one, (0, 0, None))), seed_key(EVALUATION_SEED)
    result = evaluate(trained.params, np.asarray(ps, np.float32), key)
    closed_form = [task.naive_loss(n, d, float(p)) for p in ps]
    arrays = {
        "loss": result.loss.mean,
        "loss_sem": result.loss.sem,
        "mse": result.mse.mean,
        "mse_sem": result.mse.sem,
        "naive_mc": result.naive_loss.mean,
        "naive_mc_sem": result.naive_loss.sem,
        "naive_mse": result.naive_mse.mean,
        "naive_closed_form": np.asarray([np.nan if value is None else value for value in closed_form]),
        "naive_like_share": result.naive_like_share,
        "final_train_loss": trained.chunk_losses[:, -1],
        "initial_train_loss": trained.initial_loss,
    }
    arrays |= reference_arrays(task, trained.params, n, d, ps, key, jax.jit(jax.vmap(loss, (0, 0, None))))
    shape = tuple(len(values) for values in traced.values())
    return {name: np.asarray(value, np.float64).reshape(shape) for name, value in arrays.items()}


def search_grid(
    config: TrainConfig,
    static: Mapping[str, Sequence],
    traced: Mapping[str, Sequence],
    tasks: Mapping[str, Task],
    evaluation: EvalBudget = DEFAULT_BUDGET,
    on_combination: Callable[[int, int, dict], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    cache: MutableMapping[str, Mapping[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Train and evaluate the grid ``static`` × ``traced`` (see the module docstring).

    Args:
        config: Everything else: batch, steps, optimizer (and n, d/n where ``static`` has no such axis).
        static: Axis name to values, one compile each: "task" (names in ``tasks``; a task brings its
            model family) and optionally "n_features" and "d_ratio" (default: ``config``'s).
        traced: Axis name to values, ``vmap``-ped: "seed", "p" and "lr", in that order.
        tasks: The tasks, by name.
        evaluation: Each model's evaluation budget.
        on_combination: Called as ``on_combination(i, total, combination)`` before each static combination.
        on_progress: Called as ``on_progress(done_steps, total_steps)`` after each chunk of training.
        cache: Receives each static combination's results (e.g. a :class:`ccjax.io.StageFiles` folder) under its
            :func:`stage_key` as soon as they are done; a combination already in it is read back instead of
            trained, so an interrupted grid resumes at the combination it was on. None: no cache.

    Returns:
        Every array of :data:`ccjax.cis.SEARCH_ARRAYS` by name, float64, shape ``static axes + (seeds, ps, lrs)``.

    Raises:
        ValueError: If ``static`` lacks "task" or has another axis, or ``traced`` is not seed, p, lr in order.
    """
    unknown = set(static) - set(STATIC_AXES) | set(traced) ^ set(TRACED_AXES)
    if unknown or list(traced) != list(TRACED_AXES) or "task" not in static:
        raise ValueError(f"search_grid: static axes are task + any of {STATIC_AXES[1:]}, traced ones {TRACED_AXES}")

    def run(combination):
        task = tasks[combination["task"]]
        n = combination.get("n_features", config.n_features)
        ratio = combination.get("d_ratio", config.d_mlp / config.n_features)
        run_config = dataclasses.replace(config, n_features=n, d_mlp=d_mlp_of(n, ratio))
        key = stage_key(task, run_config, traced, evaluation)
        if cache is not None and key in cache:
            return cache[key]
        arrays = _run_one(task, run_config, traced, evaluation, on_progress)
        if cache is not None:
            cache[key] = arrays
        return arrays

    return over_static_axes(static, run, on_combination)
