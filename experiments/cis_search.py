"""Beyond the paper: search toy tasks for computation in superposition (ccjax.cis).

For each task, d_mlp/n and p, trains 5 seeds and scores them against the task's naive
model (d_mlp outputs exact, the best constant for the rest) on the task's own loss:
advantage = (naive - trained) / naive, mean ± SEM over seeds. Where a task beats naive
by more than 2 SEM, its best cell is re-checked at 4x the steps and at a second
optimizer setting, and trained at n = 50..400 (same d/n, p) to see how it scales.
No task has a mixing matrix.

    python -m experiments.cis_search                                   # the committed run (paper budget)
    python -m experiments.cis_search --quick                           # under 2 minutes, into results/cis_search-quick/
    python -m experiments.cis_search --plot-only

Each trained combination (task, n, d/n) is kept in ``<out>/checkpoints/`` as soon as it
is evaluated; an interrupted run continues with the same command plus ``--resume``.
"""

import dataclasses
import sys
import time

import jax
import numpy as np

import ccjax
from ccjax import cis
from ccjax.measure.statistics import mean_and_sem
from ccjax.problem import seed_key

from ._cli import choice_list, format_duration, format_table, int_range_list, positive_int, probability_list, say
from ._experiment import Session
from ._spec import Experiment, Option, check_batch_size, seeds_option

EXPERIMENT = "cis_search"
PAPER = ccjax.TrainConfig(mixing="none", scale=0.0)  # AdamW, batch 2048, 10,000 steps (docs/paper.md §4)
SECOND_OPTIMIZER = {"lr": 1e-3, "weight_decay": 0.0}  # the re-check's other optimizer setting
QUICK = ["--ps", "0.01,0.1", "--d-ratios", "0.5", "--seeds", "2", "--steps", "300", "--batch-size", "256"]
QUICK += ["--scaling-ns", "20,40", "--eval-batches", "4"]
GRID = "(T, D, K, P): task, d/n, seed, p"
SCALING_NS = int_range_list(5, 100_000, "feature counts n", "and-pairs needs 5 for its 2n pairs")
ARRAYS = {f"grid_{name}": f"{GRID}: {what}" for name, what in cis.SEARCH_ARRAYS.items()}
ARRAYS |= {"grid_advantage": f"{GRID}: (naive - trained) / naive on the task's loss (naive: closed form, else MC)"}
ARRAYS |= {"tasks": "(T,)", "ps": "(P,)", "d_ratios": "(D,)", "seeds": "(K,)", "scaling_ns": "(N,)"}
ARRAYS |= {"positive_tasks": "(Q,) tasks beating naive by > 2 SEM somewhere, re-checked at their best cell"}
ARRAYS |= {"check_scaling": "(Q, N, K) advantage at each n", "check_long": "(Q, K) advantage at 4x steps"}
ARRAYS |= {"check_second_optimizer": f"(Q, K) advantage with {SECOND_OPTIMIZER}"}


def resolve(args):
    """``--quick``: the small grid of :data:`QUICK` in place of the grid options (and, unless
    ``--out`` is given, ``results/cis_search-quick``: see ``_experiment.resolve_out``). Refuses
    a batch too small to train on at the smallest p and n the run may train (a re-check's n too)."""
    if args.quick:
        quick = SPEC.build_parser().parse_args(QUICK)
        for name in ("ps", "d_ratios", "seeds", "steps", "batch_size", "scaling_ns", "eval_batches"):
            setattr(args, name, getattr(quick, name))
    ns = [args.n_features, *args.scaling_ns]
    smallest = len(args.ps) > 1 or len(set(ns)) > 1
    check_batch_size(
        args.batch_size, min(ns), min(args.ps), batch_flag="--batch-size", p_flag="--ps", smallest=smallest
    )
    return args


class _Progress:
    """Says which combination starts, then its steps as they finish, with elapsed time and ETA."""

    def __init__(self):
        self.started = time.perf_counter()

    def combination(self, index: int, total: int, combination: dict) -> None:
        say(f"[{index + 1}/{total}] {combination}")
        self.started = time.perf_counter()

    def steps(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self.started
        eta = format_duration(elapsed * (total - done) / done)
        say(f"    step {done:,}/{total:,}  {format_duration(elapsed)} elapsed, ETA {eta}")


def _grid(config, tasks, ns, ratios, seeds, ps, evaluation, cache) -> dict:
    """Train and evaluate tasks × n × d/n (one compile each) × seeds × p; adds the advantage.
    Each combination's results go to ``cache`` as it finishes, and come from it if there."""
    static = {"task": tasks, "n_features": ns, "d_ratio": ratios}
    traced = {"seed": seeds, "p": ps, "lr": [config.lr]}
    progress = _Progress()
    arrays = cis.search_grid(
        config, static, traced, cis.SEARCH_TASKS, evaluation, progress.combination, progress.steps, cache
    )
    arrays = {name: value[..., 0] for name, value in arrays.items()}  # one lr
    return arrays | {"advantage": cis.advantage(arrays["loss"], cis.naive_reference(arrays))}


def _recheck(config, args, task: str, ratio: float, p: float, evaluation, cache) -> dict:
    """A positive cell again: at n = ``--scaling-ns``, at 4x the steps, and with the second optimizer."""
    say(f"{task}: beats naive at d/n = {ratio:g}, p = {p:g}; re-checking it and scaling n")
    cell = {"tasks": [task], "ratios": [ratio], "seeds": args.seeds, "ps": [p], "evaluation": evaluation}
    cell |= {"cache": cache}
    long, other = (dataclasses.replace(config, **change) for change in ({"steps": 4 * config.steps}, SECOND_OPTIMIZER))
    return {
        "scaling": _grid(config, ns=args.scaling_ns, **cell)["advantage"][0, :, 0, :, 0],
        "long": _grid(long, ns=[args.n_features], **cell)["advantage"][0, 0, 0, :, 0],
        "second_optimizer": _grid(other, ns=[args.n_features], **cell)["advantage"][0, 0, 0, :, 0],
    }


def run(args, session: Session) -> tuple[dict, dict]:
    config = dataclasses.replace(PAPER, steps=args.steps, batch_size=args.batch_size)
    evaluation = cis.EvalBudget(args.eval_batches)
    cache = None
    if session.checkpoints is not None:  # each finished combination, for --resume
        session.start()
        cache = ccjax.io.StageFiles(session.checkpoints)
    with session.timed("train_and_evaluate"):
        main = _grid(config, args.tasks, [args.n_features], args.d_ratios, args.seeds, args.ps, evaluation, cache)
        main = {name: value[:, 0] for name, value in main.items()}  # (tasks, d/n, seeds, p)
        mean, sem = mean_and_sem(main["advantage"], axis=2)
        positive, checks = [], {"scaling": [], "long": [], "second_optimizer": []}
        for i, task in enumerate(args.tasks):
            best = np.where(cis.positive_cells(mean[i], sem[i]), mean[i], -np.inf)
            if np.isfinite(best).any():
                d, p = np.unravel_index(np.argmax(best), best.shape)
                positive.append(task)
                rechecked = _recheck(config, args, task, args.d_ratios[d], args.ps[p], evaluation, cache)
                for name, values in rechecked.items():
                    checks[name].append(values)
    arrays = {f"grid_{name}": value for name, value in main.items()}
    arrays |= {"tasks": np.asarray(args.tasks), "ps": np.asarray(args.ps), "d_ratios": np.asarray(args.d_ratios)}
    arrays |= {"seeds": np.asarray(args.seeds), "scaling_ns": np.asarray(args.scaling_ns)}
    arrays |= {"positive_tasks": np.asarray(positive, dtype=str)}
    per_cell = {"scaling": (len(args.scaling_ns), len(args.seeds))}
    for name, values in checks.items():
        shape = (len(positive),) + per_cell.get(name, (len(args.seeds),))
        arrays[f"check_{name}"] = np.asarray(values, np.float64).reshape(shape)
    extras = {
        "config": dataclasses.asdict(config),  # n_features and d_mlp: the grid's (below)
        "n_features": args.n_features,
        "tasks": {name: cis.SEARCH_TASKS[name].description for name in args.tasks},
        "families": {name: cis.MODEL_FAMILIES[cis.SEARCH_TASKS[name].family].formula for name in args.tasks},
        "second_optimizer": SECOND_OPTIMIZER,
        "mixing": "none: no task has a mixing matrix",
    }
    return arrays, extras


def _cell(mean, sem) -> str:
    return f"{mean:+.3f} ± {sem:.3f}" if np.isfinite(sem) else f"{mean:+.3f}"


def _offset_rows(arrays: dict, n: int) -> list[list[str]]:
    """The advantage of the naive + offset model (the dense-regime mechanism, not CiS) for relu."""
    rows = []
    for ratio in arrays["d_ratios"]:
        d = cis.d_mlp_of(n, float(ratio))
        _, offset = ccjax.baselines.optimal_offset(np.asarray(arrays["ps"]), n_features=n, d_mlp=d)
        naive = (n - d) / n / 6.0
        rows.append([f"{ratio:g}"] + [f"{(naive - loss) / naive:+.3f}" for loss in np.asarray(offset)])
    return rows


def _semi_nmf_rows(arrays: dict, manifest: dict) -> list[list[str]]:
    """The advantage of the two-step task's semi-NMF reference, on the evaluation's samples."""
    n, task, key = manifest["options"]["--n-features"], cis.OneLayerTwoStep(), seed_key(cis.EVALUATION_SEED)
    budget = cis.EvalBudget(manifest["options"]["--eval-batches"])
    rows = []
    for ratio in arrays["d_ratios"]:
        d = cis.d_mlp_of(n, float(ratio))
        params = cis.semi_nmf_reference(task, n, d, jax.random.key(0))
        cells = []
        for p in arrays["ps"]:
            capacity = ccjax.problem.default_capacity(budget.batch_size, n, float(p))
            result = cis.evaluate_model(task, params, n, d, float(p), key, *budget, capacity)
            cells.append(f"{cis.advantage(float(result.loss.mean), float(result.naive_loss.mean)):+.3f}")
        rows.append([f"{ratio:g}"] + cells)
    return rows


def summary(arrays: dict, manifest: dict) -> str:
    """The advantage table, the naive-like shares, the controls and the re-checks."""
    tasks, ps, ratios = arrays["tasks"], arrays["ps"], arrays["d_ratios"]
    mean, sem = mean_and_sem(arrays["grid_advantage"], axis=2)
    share = np.nanmean(arrays["grid_naive_like_share"], axis=2)
    rows = [
        [task, f"{ratio:g}"] + [f"{_cell(mean[t, d, j], sem[t, d, j])} ({share[t, d, j]:.2f})" for j in range(len(ps))]
        for t, task in enumerate(tasks)
        for d, ratio in enumerate(ratios)
    ]
    lines = ["advantage over naive, (naive - trained)/naive, mean ± SEM over seeds (naive-like share):"]
    lines.append(format_table(["task", "d/n"] + [f"p = {p:g}" for p in ps], rows))
    own_loss = [t for t in range(len(tasks)) if not np.allclose(arrays["grid_loss"][t], arrays["grid_mse"][t])]
    if own_loss and "grid_naive_mse" in arrays:  # trained on another loss: their MSE against the naive model's
        gain, gain_sem = mean_and_sem(cis.advantage(arrays["grid_mse"], arrays["grid_naive_mse"]), axis=2)
        rows = [
            [tasks[t], f"{r:g}"] + [_cell(gain[t, d, j], gain_sem[t, d, j]) for j in range(len(ps))]
            for t in own_loss
            for d, r in enumerate(ratios)
        ]
        lines.append("the same models' advantage in mean squared error (naive MSE - MSE) / naive MSE:")
        lines.append(format_table(["task", "d/n"] + [f"p = {p:g}" for p in ps], rows))
    z = (arrays["grid_naive_mc"] - arrays["grid_naive_closed_form"]) / arrays["grid_naive_mc_sem"]
    checked = {task: np.nanmax(np.abs(z[t])) for t, task in enumerate(tasks) if np.isfinite(z[t]).any()}
    lines.append(
        "naive closed form vs Monte Carlo, largest |z|: " + ", ".join(f"{k} {v:.1f}" for k, v in checked.items())
    )
    if "relu" in tasks and 0.01 in ps and 0.5 in ratios:
        t, d, j = list(tasks).index("relu"), list(ratios).index(0.5), list(ps).index(0.01)
        control = arrays["grid_loss"][t, d, :, j] / 0.01
        lines.append(f"control: relu at p = 0.01, d/n = 0.5 trains to L/p = {control.mean():.4f} (naive 0.0833)")
    if "relu" in tasks:
        lines.append("relu's reference without CiS, naive + the best offset (exact, docs/paper.md §5), has advantage")
        offset_rows = _offset_rows(arrays, manifest["options"]["--n-features"])
        lines.append(format_table(["d/n"] + [f"p = {p:g}" for p in ps], offset_rows))
    if "two-step" in tasks:
        lines.append("two-step's reference without CiS, a one-layer semi-NMF model of relu(A) (built, not trained):")
        lines.append(format_table(["d/n"] + [f"p = {p:g}" for p in ps], _semi_nmf_rows(arrays, manifest)))
    for k, task in enumerate(arrays["positive_tasks"]):
        long, other = (mean_and_sem(arrays[f"check_{name}"][k]) for name in ("long", "second_optimizer"))
        scaling = mean_and_sem(arrays["check_scaling"][k], axis=-1)
        by_n = ", ".join(f"n={n}: {_cell(m, s)}" for n, m, s in zip(arrays["scaling_ns"], *scaling, strict=True))
        lines.append(f"{task}: 4x steps {_cell(*long)}; second optimizer {_cell(*other)}; {by_n}")
    if not len(arrays["positive_tasks"]):
        lines.append("no task beats its naive model by more than 2 SEM anywhere on the grid")
    return "\n".join(lines)


def task_figure(name: str):
    def draw(arrays: dict, manifest: dict):
        if name not in arrays["tasks"]:
            return None
        import matplotlib.pyplot as plt

        t = list(arrays["tasks"]).index(name)
        fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
        mean, sem = mean_and_sem(arrays["grid_advantage"][t], axis=1)
        for d, ratio in enumerate(arrays["d_ratios"]):
            line = ax.plot(arrays["ps"], mean[d], marker="o", label=f"d/n = {ratio:g}")[0]
            ax.fill_between(arrays["ps"], mean[d] - sem[d], mean[d] + sem[d], color=line.get_color(), alpha=0.25)
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set(xscale="log", xlabel="feature probability p", ylabel="(naive - trained) / naive")
        ax.set_title(f"{name}: advantage over naive ({len(arrays['seeds'])} seeds, ±SEM)", fontsize=10)
        ax.legend()
        return fig

    return draw


def overview_figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    ratios = arrays["d_ratios"]
    fig, axes = plt.subplots(1, len(ratios), figsize=(6 * len(ratios), 4.2), layout="constrained", squeeze=False)
    mean, sem = mean_and_sem(arrays["grid_advantage"], axis=2)
    for d, ax in enumerate(axes[0]):
        for t, task in enumerate(arrays["tasks"]):
            ax.errorbar(arrays["ps"], mean[t, d], sem[t, d], marker="o", capsize=3, label=task)
        ax.axhline(0, color="k", linewidth=0.8)
        ax.set(xscale="log", xlabel="feature probability p", ylabel="(naive - trained) / naive")
        ax.set_title(f"every task, d/n = {ratios[d]:g}")
    axes[0][0].legend(fontsize=8)
    return fig


FIGURES = {f"{EXPERIMENT}.png": overview_figure}
FIGURES |= {f"{EXPERIMENT}_{name}.png": task_figure(name) for name in cis.SEARCH_TASKS}  # None for tasks not run
OPTIONS = (
    Option("--tasks", choice_list(tuple(cis.SEARCH_TASKS), "task"), ",".join(cis.SEARCH_TASKS), "search tasks"),
    Option("--ps", probability_list, "0.001,0.01,0.03,0.1", "feature probabilities", metavar="LIST"),
    Option("--d-ratios", probability_list, "0.25,0.5", "d_mlp / n_features", metavar="LIST"),
    Option("--n-features", positive_int, PAPER.n_features, "features n of the grid"),
    seeds_option("5"),
    Option("--steps", positive_int, PAPER.steps, "training steps (the paper's 10,000 by default)"),
    Option("--batch-size", positive_int, PAPER.batch_size, "training batch (the paper's 2048 by default)"),
    Option(
        "--scaling-ns", SCALING_NS, "50,100,200,400", "n of a positive task's scaling (same d/n, p)", metavar="LIST"
    ),
    Option("--eval-batches", positive_int, 32, "evaluation batches of 4096 rows per model"),
    Option(
        "--quick",
        None,
        False,
        f"a small grid: {' '.join(QUICK)}; results in results/{EXPERIMENT}-quick/ unless --out is given",
    ),
)
SPEC = Experiment.from_module(
    __name__,
    title="advantage over naive of each search task",
    options=OPTIONS,
    resolve=resolve,
    sweep_controls=False,  # trains through ccjax.cis, not train_sweep: one process, checkpoints per combination
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
