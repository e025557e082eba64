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
from ._grid import ARRAYS, DEFAULT_BUDGET, EvalBudget, search_grid
from ._summary import advantage, naive_reference, positive_cells

SECOND_OPTIMIZER = {"lr": 1e-3, "weight_decay": 0.0}  # the re-check's other optimizer setting
GRID = "(T, D, K, P): task, d/n, seed, p"
RESULTS = {f"grid_{name}": f"{GRID}: {what}" for name, what in ARRAYS.items()}
RESULTS |= {"grid_advantage": f"{GRID}: (naive - trained) / naive on the task's loss (naive: closed form, else MC)"}
RESULTS |= {"tasks": "(T,)", "ps": "(P,)", "d_ratios": "(D,)", "seeds": "(K,)", "scaling_ns": "(N,)"}
RESULTS |= {"positive_tasks": "(Q,) tasks beating naive by > 2 SEM somewhere, re-checked at their best cell"}
RESULTS |= {"check_scaling": "(Q, N, K) advantage at each n", "check_long": "(Q, K) advantage at 4x steps"}
RESULTS |= {"check_second_optimizer": f"(Q, K) advantage with {SECOND_OPTIMIZER}"}
"""What :func:`search` returns, by name, with its axes (Q: positive tasks, N: the scaling n's)."""


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
    """

    tasks: Sequence[str]
    n_features: int
    d_ratios: Sequence[float]
    seeds: Sequence[int]
    ps: Sequence[float]
    scaling_ns: Sequence[int]


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


def advantage_grid(config: TrainConfig, run: SearchRun, tasks, ns, ratios, seeds, ps) -> dict[str, np.ndarray]:
    """:func:`~ccjax.cis.search_grid` over task × n × d/n × seed × p at ``config``'s lr, each
    array (tasks, ns, ratios, seeds, ps), plus each model's ``advantage`` over its naive model."""
    static = {"task": tasks, "n_features": ns, "d_ratio": ratios}
    traced = {"seed": seeds, "p": ps, "lr": [config.lr]}
    hooks = (run.progress.combination, run.progress.steps) if run.progress else (None, None)
    arrays = search_grid(config, static, traced, run.tasks, run.evaluation, *hooks, run.cache)
    arrays = {name: value[..., 0] for name, value in arrays.items()}  # one lr
    return arrays | {"advantage": advantage(arrays["loss"], naive_reference(arrays))}


def recheck(config: TrainConfig, run: SearchRun, grid: SearchGrid, task: str, ratio: float, p: float) -> dict:
    """A positive cell again, each an advantage per seed: trained at each n of ``grid.scaling_ns``
    (``scaling``, (N, seeds)), at 4x the steps (``long``) and with :data:`SECOND_OPTIMIZER`
    (``second_optimizer``), both at ``grid.n_features``."""
    cell = {"tasks": [task], "ratios": [ratio], "seeds": grid.seeds, "ps": [p]}
    changes = ({"steps": 4 * config.steps}, SECOND_OPTIMIZER)
    long, other = (dataclasses.replace(config, **change) for change in changes)
    n = [grid.n_features]
    return {
        "scaling": advantage_grid(config, run, ns=grid.scaling_ns, **cell)["advantage"][0, :, 0, :, 0],
        "long": advantage_grid(long, run, ns=n, **cell)["advantage"][0, 0, 0, :, 0],
        "second_optimizer": advantage_grid(other, run, ns=n, **cell)["advantage"][0, 0, 0, :, 0],
    }


def search(
    config: TrainConfig,
    run: SearchRun,
    grid: SearchGrid,
    on_positive: Callable[[str, float, float], None] | None = None,
) -> dict[str, np.ndarray]:
    """Train and score every task of ``grid`` against its naive model (``config`` gives the
    training, the grid its n and d/n); for each task that beats it by more than 2 SEM over seeds
    somewhere, :func:`recheck` its best such cell (``on_positive(task, d/n, p)`` is told first).

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
    mean, sem = mean_and_sem(main["advantage"], axis=2)
    positive, checks = [], {"scaling": [], "long": [], "second_optimizer": []}
    for i, task in enumerate(grid.tasks):
        best = np.where(positive_cells(mean[i], sem[i]), mean[i], -np.inf)
        if np.isfinite(best).any():
            d, p = np.unravel_index(np.argmax(best), best.shape)
            if on_positive is not None:
                on_positive(task, grid.d_ratios[d], grid.ps[p])
            positive.append(task)
            for name, values in recheck(config, run, grid, task, grid.d_ratios[d], grid.ps[p]).items():
                checks[name].append(values)
    arrays = {f"grid_{name}": value for name, value in main.items()}
    arrays |= {name: np.asarray(getattr(grid, name)) for name in ("tasks", "ps", "d_ratios", "seeds", "scaling_ns")}
    arrays |= {"positive_tasks": np.asarray(positive, dtype=str)}
    per_cell = {"scaling": (len(grid.scaling_ns), len(grid.seeds))}
    for name, values in checks.items():
        shape = (len(positive),) + per_cell.get(name, (len(grid.seeds),))
        arrays[f"check_{name}"] = np.asarray(values, np.float64).reshape(shape)
    return arrays
