"""Beyond the paper: search toy tasks for computation in superposition (ccjax.cis).

For each task, d_mlp/n and p, trains 5 seeds and scores them on the task's own loss against
its naive model (advantage = (naive - trained) / naive, mean ± SEM over seeds) and a built
(untrained) one, and probes them where a linear readout fails. A task beating naive and built
by > 2 SEM is re-checked: 4x the steps, a second optimizer, n = 50..400 (lr by a pilot).

    python -m experiments.cis_search                                   # the committed run (paper budget)
    python -m experiments.cis_search --quick                           # about a minute, into results/cis_search-quick/
    python -m experiments.cis_search --plot-only

Each trained combination (task, n, d/n) is kept in ``<out>/checkpoints/`` as soon as it
is evaluated; an interrupted run continues with the same command plus ``--resume``.
"""

import dataclasses
import sys

import ccjax
from ccjax import cis

from ._cli import choice_list, int_range_list, learning_rates, positive_int, probability_list, say
from ._experiment import Session
from ._spec import Experiment, Option, check_batch_size, seeds_option

EXPERIMENT = "cis_search"
PAPER = ccjax.TrainConfig(mixing="none", scale=0.0)  # AdamW, batch 2048, 10,000 steps (docs/paper.md §4)
QUICK = ["--ps", "0.01,0.1", "--d-ratios", "0.5", "--n-features", "50", "--seeds", "2", "--steps", "300"]
QUICK += ["--batch-size", "256", "--scaling-ns", "20,40", "--scaling-lrs", "1e-3,3e-3", "--eval-batches", "4"]
SCALING_NS = int_range_list(5, 100_000, "feature counts n", "two-step's outputs read 4 of n intermediates")
ARRAYS = cis.SEARCH_RESULTS


def resolve(args):
    """``--quick``: the small grid of :data:`QUICK` in place of the grid options (and, unless
    ``--out`` is given, ``results/cis_search-quick``: see ``_experiment.resolve_out``). Refuses
    a batch too small to train on at the smallest p and n the run may train (a re-check's n too)."""
    if args.quick:
        quick = SPEC.build_parser().parse_args(QUICK)
        for name in (flag.removeprefix("--").replace("-", "_") for flag in QUICK[::2]):  # the options QUICK sets
            setattr(args, name, getattr(quick, name))
    ns, flags = [args.n_features, *args.scaling_ns], {"batch_flag": "--batch-size", "p_flag": "--ps"}
    check_batch_size(args.batch_size, min(ns), min(args.ps), smallest=len(args.ps) > 1 or len(set(ns)) > 1, **flags)
    return args


def run(args, session: Session) -> tuple[dict, dict]:
    """The search (:func:`ccjax.cis.search`), each trained combination kept for ``--resume``."""
    config = dataclasses.replace(PAPER, steps=args.steps, batch_size=args.batch_size)
    cache = None
    if session.checkpoints is not None:  # each finished combination, for --resume
        session.start()
        cache = ccjax.io.StageFiles(session.checkpoints)
    search = cis.SearchRun(cis.SEARCH_TASKS, cis.EvalBudget(args.eval_batches), cis.SearchProgress(), cache)
    grid = cis.SearchGrid(*(getattr(args, name) for name in cis.SearchGrid._fields))
    rechecking = "{}: beats naive and built at d/n = {:g}, p = {:g}; re-checking it and scaling n"  # (task, ratio, p)
    with session.timed("train_and_evaluate"):
        arrays = cis.search(config, search, grid, on_positive=lambda *cell: say(rechecking.format(*cell)))
    return arrays, {
        "config": dataclasses.asdict(config),  # n_features and d_mlp: the grid's (below)
        "n_features": args.n_features,
        "tasks": {name: cis.SEARCH_TASKS[name].description for name in args.tasks},
        "families": {name: cis.MODEL_FAMILIES[cis.SEARCH_TASKS[name].family].formula for name in args.tasks},
        "second_optimizer": cis.SECOND_OPTIMIZER,
        "mixing": "none: no task has a mixing matrix",
    }


def summary(arrays: dict, manifest: dict) -> str:
    """The advantage table, the naive-like shares, the controls and the re-checks (:func:`cis.describe_search`)."""
    return cis.describe_search(arrays, manifest["options"]["--n-features"])


def task_figure(name: str):
    """The figure of one task (None when the run left it out)."""

    def draw(arrays: dict, manifest: dict):
        if name not in arrays["tasks"]:
            return None
        from ccjax import plot

        i, seeds = list(arrays["tasks"]).index(name), len(arrays["seeds"])
        built = arrays["grid_built_advantage"][i] if "grid_built_advantage" in arrays else None  # older results: none
        advantage, title = arrays["grid_advantage"][i], f"{name}: advantage over naive ({seeds} seeds, ±SEM)"
        return plot.plot_advantage(arrays["ps"], arrays["d_ratios"], advantage, built=built, title=title)

    return draw


def overview_figure(arrays: dict, manifest: dict):
    from ccjax import plot

    built = arrays.get("grid_built_advantage")  # None in results from before the built references
    return plot.plot_advantage_by_ratio(*(arrays[k] for k in ("ps", "d_ratios", "tasks", "grid_advantage")), built)


LRS_HELP = "the scaling's learning rates: each n trains at the one of least final loss in a one-seed pilot"
QUICK_HELP = f"a small grid: {' '.join(QUICK)}; results in results/{EXPERIMENT}-quick/ unless --out is given"
FIGURES = {f"{EXPERIMENT}.png": overview_figure}
FIGURES |= {f"{EXPERIMENT}_{name}.png": task_figure(name) for name in cis.SEARCH_TASKS}  # None for tasks not run
OPTIONS = (
    Option("--tasks", choice_list(tuple(cis.SEARCH_TASKS), "task"), ",".join(cis.SEARCH_TASKS), "search tasks"),
    Option("--ps", probability_list, "0.001,0.01,0.03,0.1", "feature probabilities", metavar="LIST"),
    Option("--d-ratios", probability_list, "0.5", "d_mlp / n_features (each ratio is a whole grid)", metavar="LIST"),
    Option("--n-features", positive_int, PAPER.n_features, "features n of the grid"),
    seeds_option("5"),
    Option("--steps", positive_int, PAPER.steps, "training steps (the paper's 10,000 by default)"),
    Option("--batch-size", positive_int, PAPER.batch_size, "training batch (the paper's 2048 by default)"),
    Option("--scaling-ns", SCALING_NS, "50,100,200,400", "the n's of a positive task's scaling", metavar="LIST"),
    Option("--scaling-lrs", learning_rates, ",".join(map(str, cis.SCALING_LRS)), LRS_HELP, metavar="LIST"),
    Option("--eval-batches", positive_int, 32, "evaluation batches of 4096 rows per model"),
    Option("--quick", None, False, QUICK_HELP),
)
TITLE = "advantage over naive of each search task"
# sweep_controls=False: it trains through ccjax.cis, not train_sweep: one process, checkpoints per combination
SPEC = Experiment.from_module(__name__, title=TITLE, options=OPTIONS, resolve=resolve, sweep_controls=False)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
