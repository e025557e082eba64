"""The search itself: every task on a d/n × seed × p grid against its naive model, and a second
look at each task that beats it (:func:`search`)."""

import dataclasses
import io
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import NamedTuple, TextIO

import numpy as np

from ..engine._config import TrainConfig
from ..engine._progress import format_duration
from ..measure.statistics import mean_and_sem
from ..problem._tasks import Task
from ._advantage import advantage, naive_reference, positive_cells
from ._grid import ARRAYS, DEFAULT_BUDGET, EvalBudget, d_mlp_of, search_grid

SECOND_OPTIMIZER = {"lr": 1e-3, "weight_decay": 0.0}  # the re-check's other optimizer setting
SCALING_LRS = (3e-4, 1e-3, 3e-3)  # the scaling check's lr axis: the best per n by a one-seed pilot's final loss
CHECK_MAX_WEIGHTS = 160_000
"""No re-check trains a model costlier than the default grid's largest, and-pairs-32 at n = 100 (3,200 × 50
output weights, the main grid's steps): the scaling check skips an n where the output layer (outputs × d_mlp)
would have more weights than this, and the 4x-steps check a task whose output layer has more than a quarter
of it. The AND tasks' outputs grow with n, so at d/n = 0.5 and-pairs-8 stops at n = 200 and and-pairs-32 at
n = 100, and and-pairs-32 has no 4x-steps check (and-pairs-8, 800 × 50, has)."""
GRID = "(T, D, K, P): task, d/n, seed, p"
RESULTS = {f"grid_{name}": f"{GRID}: {what}" for name, what in ARRAYS.items()}
RESULTS |= {"grid_advantage": f"{GRID}: (naive - trained) / naive on the task's loss (naive: closed form, else MC)"}
RESULTS |= {"grid_built_advantage": f"{GRID}: (naive - built) / naive, the built reference's advantage"}
RESULTS |= {"tasks": "(T,)", "ps": "(P,)", "d_ratios": "(D,)", "seeds": "(K,)", "scaling_ns": "(N,)"}
RESULTS |= {"positive_tasks": "(Q,) tasks beating naive and built by > 2 SEM somewhere, re-checked (see beyond_built)"}
RESULTS |= {"check_scaling": "(Q, N, K) advantage at each n at its lr (NaN: n skipped, see CHECK_MAX_WEIGHTS)"}
RESULTS |= {"check_long": "(Q, K) advantage at 4x steps (NaN: skipped, see CHECK_MAX_WEIGHTS)"}
RESULTS |= {"scaling_lrs": "(L,) the scaling check's lr axis", "check_scaling_lr": "(Q, N) the lr chosen at each n"}
RESULTS |= {"check_scaling_pilot_loss": "(Q, N, L) the first seed's final training loss at each lr (inf: diverged)"}
RESULTS |= {"check_scaling_built": "(Q, N) the built reference's advantage at each n (NaN: none)"}
RESULTS |= {"check_scaling_final_over_initial": "(Q, N) largest final / first-step training loss over seeds"}
RESULTS |= {"check_second_optimizer": f"(Q, K) advantage with {SECOND_OPTIMIZER}"}
"""What :func:`search` returns, by name, with its axes (Q: positive tasks, N: the scaling n's)."""
MAIN_CELL = ("advantage", "built_advantage", "final_train_loss", "initial_train_loss")  # what a re-check reuses
CHECKS = {"scaling": "NK", "scaling_lr": "N", "scaling_built": "N", "scaling_final_over_initial": "N"}
CHECKS |= {"scaling_pilot_loss": "NL"}
CHECKS |= {"long": "K", "second_optimizer": "K"}  # each re-check's axes after Q


class SearchGrid(NamedTuple):
    """What :func:`search` trains: ``tasks`` (names) × ``d_ratios`` × ``seeds`` × ``ps`` at
    ``n_features``, and a positive task's best cell again at each n of ``scaling_ns``.

    Attributes:
        tasks: Task names, keys of :attr:`SearchRun.tasks` (e.g. of :data:`ccjax.cis.SEARCH_TASKS`).
        n_features: Number of input features n of the main grid.
        d_ratios: The ratios d/n of neurons to features (:func:`d_mlp_of`).
        seeds: Training seeds, one model each; the SEMs are over them.
        ps: Feature probabilities in (0, 1], each model trained and evaluated at its own.
        scaling_ns: The n's at which a positive task's best cell is trained again.
        scaling_lrs: The learning rates a one-seed pilot tries at each of those n's; every seed is then
            trained at the one of least final training loss (default :data:`SCALING_LRS`).
    """

    tasks: Sequence[str]
    n_features: int
    d_ratios: Sequence[float]
    seeds: Sequence[int]
    ps: Sequence[float]
    scaling_ns: Sequence[int]
    scaling_lrs: Sequence[float] = SCALING_LRS


class SearchProgress:
    """Reports on ``stream`` (default stderr) which combination of a search starts, then its steps
    as they finish, with the elapsed time and an ETA: pass its methods as :func:`search`'s hooks.

    Args:
        stream: Where to write the lines; None: ``sys.stderr`` at each write.

    Attributes:
        stream: As passed.
        started: ``time.perf_counter()`` when the current combination started (at first, at creation).
    """

    def __init__(self, stream: TextIO | io.TextIOBase | None = None):
        self.stream, self.started = stream, time.perf_counter()

    def say(self, message: str) -> None:
        """Write one line and flush.

        Args:
            message: The line, without its newline.
        """
        print(message, file=self.stream or sys.stderr, flush=True)

    def combination(self, index: int, total: int, combination: dict) -> None:
        """Announce a static combination, ``[index + 1/total] combination``, and restart the clock.

        Args:
            index: The combination's 0-based index.
            total: How many combinations the grid has.
            combination: Its static values by axis name.
        """
        self.say(f"[{index + 1}/{total}] {combination}")
        self.started = time.perf_counter()

    def steps(self, done: int, total: int) -> None:
        """Report training steps done out of ``total``, the time since the combination started and an ETA.

        Args:
            done: Steps done so far (> 0).
            total: Steps of the whole run.
        """
        elapsed = time.perf_counter() - self.started
        eta = format_duration(elapsed * (total - done) / done)
        self.say(f"    step {done:,}/{total:,}  {format_duration(elapsed)} elapsed, ETA {eta}")


@dataclasses.dataclass(frozen=True)
class SearchRun:
    """How :func:`search` trains and evaluates: the tasks by name, the evaluation budget, the
    hooks of :func:`~ccjax.cis.search_grid` and its ``cache`` of finished combinations.

    Attributes:
        tasks: Every task the grid may name, by name (e.g. :data:`ccjax.cis.SEARCH_TASKS`).
        evaluation: Each model's evaluation budget (default 32 batches of 4096 rows).
        progress: Reports progress (its ``combination`` and ``steps`` are the hooks); None: silent.
        cache: :func:`~ccjax.cis.search_grid`'s ``cache`` (e.g. a :class:`ccjax.io.StageFiles` folder), or None.
    """

    tasks: Mapping[str, Task]
    evaluation: EvalBudget = DEFAULT_BUDGET
    progress: SearchProgress | None = None
    cache: MutableMapping[str, Mapping[str, np.ndarray]] | None = None


def advantage_grid(config: TrainConfig, run: SearchRun, tasks, ns, ratios, seeds, ps, lrs=None) -> dict:
    """:func:`~ccjax.cis.search_grid` over task × n × d/n × seed × p (× lr where ``lrs`` is given;
    else at ``config``'s lr, without that axis), plus each model's ``advantage`` and its built
    reference's ``built_advantage`` over the naive model."""
    static = {"task": tasks, "n_features": ns, "d_ratio": ratios}
    traced = {"seed": seeds, "p": ps, "lr": [config.lr] if lrs is None else lrs}
    hooks = (run.progress.combination, run.progress.steps) if run.progress else (None, None)
    arrays = search_grid(config, static, traced, run.tasks, run.evaluation, *hooks, run.cache)
    if lrs is None:
        arrays = {name: value[..., 0] for name, value in arrays.items()}  # one lr
    naive = naive_reference(arrays)
    gains = {"advantage": advantage(arrays["loss"], naive), "built_advantage": advantage(arrays["built_loss"], naive)}
    return arrays | gains


def _final_or_inf(arrays: dict) -> np.ndarray:
    """Each model's final training loss, a diverged (non-finite) run counted as infinite."""
    final = arrays["final_train_loss"]
    return np.where(np.isfinite(final), final, np.inf)


def _pilot_lrs(config: TrainConfig, run: SearchRun, grid: SearchGrid, cell: dict) -> tuple[np.ndarray, np.ndarray]:
    """The scaling check's lr at each n of ``grid.scaling_ns``: the one of least final training loss
    of the first seed, trained at every lr of ``grid.scaling_lrs``; and those losses, (N, lrs)."""
    pilot = advantage_grid(config, run, ns=grid.scaling_ns, lrs=grid.scaling_lrs, **cell | {"seeds": grid.seeds[:1]})
    losses = _final_or_inf(pilot)[0, :, 0, 0, 0, :]  # (N, lrs)
    return np.asarray(grid.scaling_lrs)[np.argmin(losses, axis=1)], losses


def affordable_ns(task: Task, ns: Sequence[int], ratio: float, steps_factor: int = 1) -> list[int]:
    """The n's of ``ns`` at which a re-check trains ``task`` at d/n = ``ratio`` for ``steps_factor``
    times the main grid's steps: those where that factor times the output layer's weights (the task's
    outputs × d_mlp) is at most :data:`CHECK_MAX_WEIGHTS`.

    Args:
        task: The search task (its ``n_outputs(n)``).
        ns: The feature counts n (the scaling check's, or the main grid's alone).
        ratio: The ratio d/n of the re-checked cell.
        steps_factor: The check's steps over the main grid's (1: the scaling check; 4: the long check).

    Returns:
        The n's kept, in order.
    """
    return [n for n in ns if steps_factor * task.n_outputs(n) * d_mlp_of(n, ratio) <= CHECK_MAX_WEIGHTS]


def _scaling(config: TrainConfig, run: SearchRun, grid: SearchGrid, cell: dict, main_cell=None) -> dict:
    """The scaling check at the n's of :func:`affordable_ns` (:func:`_trained_scaling`), NaN at the others."""
    ns = affordable_ns(run.tasks[cell["tasks"][0]], grid.scaling_ns, cell["ratios"][0])
    kept, size = np.isin(grid.scaling_ns, ns), len(grid.scaling_ns)
    arrays = {"scaling": np.full((size, len(grid.seeds)), np.nan), "scaling_lr": np.full(size, np.nan)}
    arrays |= {"scaling_pilot_loss": np.full((size, len(grid.scaling_lrs)), np.nan)}
    arrays |= {name: np.full(size, np.nan) for name in ("scaling_built", "scaling_final_over_initial")}
    if ns:
        for name, values in _trained_scaling(config, run, grid._replace(scaling_ns=ns), cell, main_cell).items():
            arrays[name][kept] = values
    return arrays


def _seeds_at(config: TrainConfig, run: SearchRun, cell: dict, n: int) -> dict[str, np.ndarray]:
    """Every seed of the one-task, one-p ``cell`` trained by ``config`` at ``n``: :func:`advantage_grid`'s
    arrays, (seeds,) each."""
    return {name: value[0, 0, 0, :, 0] for name, value in advantage_grid(config, run, ns=[n], **cell).items()}


def _trained_scaling(config: TrainConfig, run: SearchRun, grid: SearchGrid, cell: dict, main_cell=None) -> dict:
    """The scaling check: at each n, every seed at the lr that :func:`_pilot_lrs` chose there; at the
    main grid's n and lr, the main grid's own models (``main_cell``, where given), not trained again."""
    lrs, pilot = _pilot_lrs(config, run, grid, cell)
    at_n = [
        main_cell
        if main_cell is not None and n == grid.n_features and lr == config.lr
        else _seeds_at(dataclasses.replace(config, lr=float(lr)), run, cell, n)
        for n, lr in zip(grid.scaling_ns, lrs, strict=True)
    ]
    ratio = np.stack([_final_or_inf(arrays) / arrays["initial_train_loss"] for arrays in at_n])  # (N, seeds)
    return {
        "scaling": np.stack([arrays["advantage"] for arrays in at_n]),
        "scaling_lr": lrs,
        "scaling_pilot_loss": pilot,
        "scaling_built": np.array([arrays["built_advantage"][0] for arrays in at_n]),
        "scaling_final_over_initial": np.where(np.isfinite(ratio), ratio, np.inf).max(axis=1),
    }


def recheck(
    config: TrainConfig,
    run: SearchRun,
    grid: SearchGrid,
    task: str,
    ratio: float,
    p: float,
    main_cell: Mapping[str, np.ndarray] | None = None,
) -> dict:
    """A positive cell again, each an advantage per seed: at each n of ``grid.scaling_ns``, trained
    at the lr a one-seed pilot over ``grid.scaling_lrs`` chose by final training loss (``scaling``,
    (N, seeds); ``scaling_lr``, ``scaling_built``, ``scaling_final_over_initial``, (N,);
    ``scaling_pilot_loss``, (N, lrs)), at 4x the steps (``long``) and with :data:`SECOND_OPTIMIZER`
    (``second_optimizer``), both at ``grid.n_features`` (``long`` NaN where :func:`affordable_ns` skips it).
    ``main_cell``: the main grid's ``advantage``, ``built_advantage``, ``final_train_loss`` and
    ``initial_train_loss`` of this cell, (seeds,) each; where the pilot picks ``config.lr`` at
    ``grid.n_features`` these are those seeds (a model trained in the grid is the one trained alone),
    so they are not trained again. None: every n is trained."""
    cell = {"tasks": [task], "ratios": [ratio], "seeds": grid.seeds, "ps": [p]}
    changes = ({"steps": 4 * config.steps}, SECOND_OPTIMIZER)
    long, other = (dataclasses.replace(config, **change) for change in changes)
    n, skipped = grid.n_features, np.full(len(grid.seeds), np.nan)
    long_affordable = affordable_ns(run.tasks[task], [n], ratio, steps_factor=4)
    return _scaling(config, run, grid, cell, main_cell) | {
        "long": _seeds_at(long, run, cell, n)["advantage"] if long_affordable else skipped,
        "second_optimizer": _seeds_at(other, run, cell, n)["advantage"],
    }


def beyond_built(main: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per cell of the main grid, (tasks, d/n, seeds, p): the margin that :func:`search` re-checks
    and its positive cells. The margin is trained minus built advantage (mean over seeds), or the
    advantage itself where the task has no built reference; a cell is positive where the models
    beat the naive model and the built one (where there is one) by more than 2 SEM each.

    Args:
        main: The main grid's ``advantage`` and ``built_advantage`` (NaN: no built reference).

    Returns:
        margin: (tasks, d/n, p), the mean over seeds.
        positive: (tasks, d/n, p), booleans.
    """
    built = np.isfinite(main["built_advantage"]).all(axis=2)
    over_naive, over_built = (
        mean_and_sem(gain, axis=2) for gain in (main["advantage"], main["advantage"] - main["built_advantage"])
    )
    positive = positive_cells(*over_naive) & (~built | positive_cells(*over_built))
    return np.where(built, over_built[0], over_naive[0]), positive


def rechecked_cell(margin: np.ndarray, positive: np.ndarray) -> tuple[int, int] | None:
    """The cell :func:`search` re-checks for one task: of its positive cells, the one of largest margin.

    Args:
        margin: The task's margin per cell, (d/n, p) (:func:`beyond_built`'s, one task).
        positive: Its positive cells, (d/n, p) booleans.

    Returns:
        The (d/n, p) indices of the cell, or None where no cell is positive.
    """
    best = np.where(positive, margin, -np.inf)
    return tuple(int(i) for i in np.unravel_index(np.argmax(best), best.shape)) if np.isfinite(best).any() else None


def search(
    config: TrainConfig,
    run: SearchRun,
    grid: SearchGrid,
    on_positive: Callable[[str, float, float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Train and score every task of ``grid`` against its naive model and its built reference
    (``config`` gives the training, the grid its n and d/n); for each task that beats both by more
    than 2 SEM over seeds somewhere (:func:`beyond_built`), :func:`recheck` its cell of largest
    trained - built margin (``on_positive(task, d/n, p)`` is told first).

    Args:
        config: The training recipe (steps, batch, optimizer, lr); the grid sets n and d/n.
        run: The tasks by name, the evaluation budget, the progress reporter and the cache.
        grid: The axes: task names, n, d/n ratios, seeds, ps and the re-checks' n's.
        on_positive: Called as ``on_positive(task, d_ratio, p)`` before each re-check, or None.

    Returns:
        Every array of :data:`ccjax.cis.SEARCH_RESULTS`, by name: the grid's (tasks, d_ratios, seeds, ps)
            arrays and the advantage (``grid_<name>``), the grid's axes, the positive tasks and their re-checks.
    """
    main = advantage_grid(config, run, grid.tasks, [grid.n_features], grid.d_ratios, grid.seeds, grid.ps)
    main = {name: value[:, 0] for name, value in main.items()}  # (tasks, d/n, seeds, p)
    margin, beats = beyond_built(main)
    positive, checks = [], {name: [] for name in CHECKS}
    for i, task in enumerate(grid.tasks):
        if (cell := rechecked_cell(margin[i], beats[i])) is not None:
            d, p = cell
            if on_positive is not None:
                on_positive(task, grid.d_ratios[d], grid.ps[p])
            positive.append(task)
            main_cell = {name: main[name][i, d, :, p] for name in MAIN_CELL}
            for name, values in recheck(config, run, grid, task, grid.d_ratios[d], grid.ps[p], main_cell).items():
                checks[name].append(values)
    arrays = {f"grid_{name}": value for name, value in main.items()}
    axes = ("tasks", "ps", "d_ratios", "seeds", "scaling_ns", "scaling_lrs")
    arrays |= {name: np.asarray(getattr(grid, name)) for name in axes}
    arrays |= {"positive_tasks": np.asarray(positive, dtype=str)}
    sizes = {"N": len(grid.scaling_ns), "K": len(grid.seeds), "L": len(grid.scaling_lrs)}
    for name, values in checks.items():
        shape = (len(positive),) + tuple(sizes[axis] for axis in CHECKS[name])
        arrays[f"check_{name}"] = np.asarray(values, np.float64).reshape(shape)
    return arrays
