"""Beyond the paper: search toy tasks for computation in superposition (ccjax.cis).

For each task, d_mlp/n and p, trains 5 seeds and scores them against the task's naive
model (d_mlp outputs exact, the best constant for the rest) on the task's own loss:
advantage = (naive - trained) / naive, mean ± SEM over seeds. Where a task beats naive
by more than 2 SEM, its best cell is re-checked at 4x the steps and at a second
optimizer setting, and trained at n = 50..400 (same d/n, p) to see how it scales.

    python -m experiments.cis_search                 # the full grid (see --help for its time)
    python -m experiments.cis_search --quick         # a small grid, under 2 minutes
    python -m experiments.cis_search --plot-only
"""

import argparse
import dataclasses
import sys
import time

import numpy as np

import ccjax
from ccjax import cis
from ccjax.cis import grid, summary

from ._cli import (
    HelpFormatter,
    choice_list,
    format_duration,
    format_table,
    mean_and_sem,
    positive_int,
    probability,
    say,
    seed_list,
)
from ._experiment import add_output_arguments, base_manifest, run_cli

EXPERIMENT = "cis_search"
PAPER = ccjax.TrainConfig(mixing="none", scale=0.0)  # AdamW, batch 2048, 10,000 steps (docs/paper.md §4)
SECOND_OPTIMIZER = {"lr": 1e-3, "weight_decay": 0.0}  # the re-check's other optimizer setting
QUICK = ["--ps", "0.01,0.1", "--d-ratios", "0.5", "--seeds", "2", "--steps", "300", "--batch-size", "256"]
QUICK += ["--scaling-ns", "20,40", "--eval-batches", "4"]


def probability_list(text: str) -> list[float]:
    return [probability(entry) for entry in text.split(",")]


def n_list(text: str) -> list[int]:
    return [positive_int(entry) for entry in text.split(",")]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{EXPERIMENT}", description=__doc__, formatter_class=HelpFormatter
    )
    run = parser.add_argument_group("grid")
    run.add_argument("--tasks", type=choice_list(tuple(cis.SEARCH_TASKS), "task"), default=",".join(cis.SEARCH_TASKS))
    run.add_argument("--ps", type=probability_list, default="0.001,0.01,0.03,0.1", help="feature probabilities")
    run.add_argument("--d-ratios", type=probability_list, default="0.25,0.5", help="d_mlp / n_features")
    run.add_argument("--n-features", type=positive_int, default=PAPER.n_features)
    run.add_argument("--seeds", type=seed_list, default="5", metavar="N|LIST", help="a count N or a list of seeds")
    run.add_argument("--steps", type=positive_int, default=PAPER.steps, help="training steps")
    run.add_argument("--batch-size", type=positive_int, default=PAPER.batch_size)
    run.add_argument("--scaling-ns", type=n_list, default="50,100,200,400", help="n for the scaling of a positive task")
    run.add_argument("--eval-batches", type=positive_int, default=32, help="evaluation batches of 4096 per model")
    run.add_argument("--quick", action="store_true", help=f"a small grid: {' '.join(QUICK)}")
    add_output_arguments(parser, EXPERIMENT, sweep_controls=False)  # trains through ccjax.cis, not ccjax.sweep
    return parser


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    if args.quick:
        quick = build_parser().parse_args(QUICK)
        for name in ("ps", "d_ratios", "seeds", "steps", "batch_size", "scaling_ns", "eval_batches"):
            setattr(args, name, getattr(quick, name))
    return args


def _grid(config, tasks, ns, ratios, seeds, ps, evaluation) -> dict:
    start = time.perf_counter()

    def announce(index, total, combination):
        elapsed = time.perf_counter() - start
        eta = f", ETA {format_duration(elapsed / index * (total - index))}" if index else ""
        say(f"[{index + 1}/{total}] {combination} (elapsed {format_duration(elapsed)}{eta})")

    static = {"task": tasks, "n_features": ns, "d_ratio": ratios}
    traced = {"seed": seeds, "p": ps, "lr": [config.lr]}
    arrays = grid.search_grid(config, static, traced, cis.SEARCH_TASKS, evaluation, on_combination=announce)
    arrays = {name: value[..., 0] for name, value in arrays.items()}  # one lr
    return arrays | {"advantage": summary.advantage(arrays["loss"], summary.naive_reference(arrays))}


def run(args: argparse.Namespace, argv: list[str]) -> tuple[dict, dict]:
    start = time.perf_counter()
    config = dataclasses.replace(PAPER, steps=args.steps, batch_size=args.batch_size)
    evaluation = grid.EvalBudget(args.eval_batches)
    seeds, n = args.seeds, args.n_features
    main = _grid(config, args.tasks, [n], args.d_ratios, seeds, args.ps, evaluation)
    main = {name: value[:, 0] for name, value in main.items()}  # (tasks, d_ratios, seeds, ps)
    mean, sem = mean_and_sem(main["advantage"], axis=2)
    arrays = {f"grid_{name}": value for name, value in main.items()}
    positive = [i for i in range(len(args.tasks)) if summary.positive_cells(mean[i], sem[i]).any()]
    checks = {"scaling": [], "long": [], "second_optimizer": []}
    for i in positive:
        best = np.where(summary.positive_cells(mean[i], sem[i]), mean[i], -np.inf)
        d, p = np.unravel_index(np.argmax(best), best.shape)
        task, ratio, prob = args.tasks[i], args.d_ratios[d], args.ps[p]
        say(f"{task}: beats naive at d/n = {ratio:g}, p = {prob:g}; re-checking and scaling n")
        cell = dict(tasks=[task], ratios=[ratio], seeds=seeds, ps=[prob], evaluation=evaluation)
        checks["scaling"].append(_grid(config, ns=args.scaling_ns, **cell)["advantage"][0, :, 0, :, 0])
        long = dataclasses.replace(config, steps=4 * config.steps)
        checks["long"].append(_grid(long, ns=[n], **cell)["advantage"][0, 0, 0, :, 0])
        other = dataclasses.replace(config, **SECOND_OPTIMIZER)
        checks["second_optimizer"].append(_grid(other, ns=[n], **cell)["advantage"][0, 0, 0, :, 0])
    arrays |= {"tasks": np.asarray(args.tasks), "ps": np.asarray(args.ps), "d_ratios": np.asarray(args.d_ratios)}
    arrays |= {"seeds": np.asarray(seeds), "scaling_ns": np.asarray(args.scaling_ns)}
    arrays |= {"positive_tasks": np.asarray([args.tasks[i] for i in positive], dtype=str)}
    per_cell = {"scaling": (len(args.scaling_ns), len(seeds)), "long": (len(seeds),)}
    for name, values in checks.items():
        shape = (len(positive),) + per_cell.get(name, (len(seeds),))
        arrays[f"check_{name}"] = np.asarray(values, np.float64).reshape(shape)
    manifest = base_manifest(EXPERIMENT, "advantage over naive of each search task", argv) | {
        "config": dataclasses.asdict(config),
        "tasks": {name: cis.SEARCH_TASKS[name].description for name in args.tasks},
        "families": {name: cis.MODEL_FAMILIES[cis.SEARCH_TASKS[name].family].formula for name in args.tasks},
        "second_optimizer": SECOND_OPTIMIZER,
        "mixing": "none: no task has a mixing matrix",
        "timings": {"total_seconds": time.perf_counter() - start},
    }
    return arrays, manifest


def _cell(mean, sem) -> str:
    return f"{mean:+.3f} ± {sem:.3f}" if np.isfinite(sem) else f"{mean:+.3f}"


def summary_text(arrays: dict, manifest: dict) -> str:
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
    z = (arrays["grid_naive_mc"] - arrays["grid_naive_closed_form"]) / arrays["grid_naive_mc_sem"]
    checked = {task: np.nanmax(np.abs(z[t])) for t, task in enumerate(tasks) if np.isfinite(z[t]).any()}
    lines.append(
        "naive closed form vs Monte Carlo, largest |z|: " + ", ".join(f"{k} {v:.1f}" for k, v in checked.items())
    )
    if "relu" in tasks and 0.01 in ps and 0.5 in ratios:
        t, d, j = list(tasks).index("relu"), list(ratios).index(0.5), list(ps).index(0.01)
        control = arrays["grid_loss"][t, d, :, j] / 0.01
        lines.append(f"control: relu at p = 0.01, d/n = 0.5 trains to L/p = {control.mean():.4f} (naive 0.0833)")
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


FIGURES = {f"{EXPERIMENT}_{name}.png": task_figure(name) for name in cis.SEARCH_TASKS}


def main(argv: list[str] | None = None) -> int:
    figures = {f"{EXPERIMENT}.png": overview_figure} | FIGURES
    return run_cli(build_parser(), argv, EXPERIMENT, run, summary_text, figures, resolve=resolve)


if __name__ == "__main__":
    sys.exit(main())
