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
from ._grid import ARRAYS, DEFAULT_BUDGET, EvalBudget, search_grid

SECOND_OPTIMIZER = {"lr": 1e-3, "weight_decay": 0.0}  # the re-check's other optimizer setting
SCALING_LRS = (3e-4, 1e-3, 3e-3)  # the scaling check's lr axis: the best per n by final training loss
GRID = "(T, D, K, P): task, d/n, seed, p"
RESULTS = {f"grid_{name}": f"{GRID}: {what}" for name, what in ARRAYS.items()}
RESULTS |= {"grid_advantage": f"{GRID}: (naive - trained) / naive on the task's loss (naive: closed form, else MC)"}
RESULTS |= {"grid_built_advantage": f"{GRID}: (naive - built) / naive, the built reference's advantage"}
RESULTS |= {"tasks": "(T,)", "ps": "(P,)", "d_ratios": "(D,)", "seeds": "(K,)", "scaling_ns": "(N,)"}
RESULTS |= {"positive_tasks": "(Q,) tasks beating naive by > 2 SEM somewhere, re-checked at their best cell"}
RESULTS |= {"check_scaling": "(Q, N, K) advantage at each n (at its lr)", "check_long": "(Q, K) advantage at 4x steps"}
RESULTS |= {"scaling_lrs": "(L,) the scaling check's lr axis", "check_scaling_lr": "(Q, N) the lr chosen at each n"}
RESULTS |= {"check_scaling_built": "(Q, N) the built reference's advantage at each n (NaN: none)"}
RESULTS |= {"check_scaling_final_over_initial": "(Q, N) largest final / first-step training loss over seeds"}
RESULTS |= {"check_second_optimizer": f"(Q, K) advantage with {SECOND_OPTIMIZER}"}
"""What :func:`search` returns, by name, with its axes (Q: positive tasks, N: the scaling n's)."""
CHECKS = {"scaling": "NK", "scaling_lr": "N", "scaling_built": "N", "scaling_final_over_initial": "N"}
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
        scaling_lrs: The learning rates tried at each of those n's; the one of least final training
            loss (mean over seeds) is kept (default :data:`SCALING_LRS`).
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


def _best_lr(arrays: dict) -> dict[str, np.ndarray]:
    """Per n of a scaling check's arrays (N, seeds, lrs): the lr index of least mean final training
    loss (a diverged run counts as infinite), and the advantages and losses at it."""
    final = np.where(np.isfinite(arrays["final_train_loss"]), arrays["final_train_loss"], np.inf)
    best = np.argmin(final.mean(axis=1), axis=1)  # (N,)
    at_best = {name: np.take_along_axis(value, best[:, None, None], axis=2)[..., 0] for name, value in arrays.items()}
    ratio = at_best["final_train_loss"] / at_best["initial_train_loss"]
    return at_best | {"lr_index": best, "final_over_initial": np.where(np.isfinite(ratio), ratio, np.inf).max(axis=1)}


def recheck(config: TrainConfig, run: SearchRun, grid: SearchGrid, task: str, ratio: float, p: float) -> dict:
    """A positive cell again, each an advantage per seed: trained at each n of ``grid.scaling_ns``
    at each lr of ``grid.scaling_lrs``, kept at the lr of least final training loss (``scaling``,
    (N, seeds); ``scaling_lr``, ``scaling_built``, ``scaling_final_over_initial``, (N,)), at 4x the
    steps (``long``) and with :data:`SECOND_OPTIMIZER` (``second_optimizer``), both at ``grid.n_features``."""
    cell = {"tasks": [task], "ratios": [ratio], "seeds": grid.seeds, "ps": [p]}
    changes = ({"steps": 4 * config.steps}, SECOND_OPTIMIZER)
    long, other = (dataclasses.replace(config, **change) for change in changes)
    n = [grid.n_features]
    scaling = advantage_grid(config, run, ns=grid.scaling_ns, lrs=grid.scaling_lrs, **cell)
    best = _best_lr({name: value[0, :, 0, :, 0, :] for name, value in scaling.items()})  # (N, seeds, lrs)
    return {
        "scaling": best["advantage"],
        "scaling_lr": np.asarray(grid.scaling_lrs)[best["lr_index"]],
        "scaling_built": best["built_advantage"][:, 0],
        "scaling_final_over_initial": best["final_over_initial"],
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
    positive, checks = [], {name: [] for name in CHECKS}
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
    axes = ("tasks", "ps", "d_ratios", "seeds", "scaling_ns", "scaling_lrs")
    arrays |= {name: np.asarray(getattr(grid, name)) for name in axes}
    arrays |= {"positive_tasks": np.asarray(positive, dtype=str)}
    sizes = {"N": len(grid.scaling_ns), "K": len(grid.seeds)}
    for name, values in checks.items():
        shape = (len(positive),) + tuple(sizes[axis] for axis in CHECKS[name])
        arrays[f"check_{name}"] = np.asarray(values, np.float64).reshape(shape)
    return arrays
