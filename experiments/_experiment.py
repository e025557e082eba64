"""The parts every experiment CLI shares: output options, --plot-only loading, the
manifest's common fields, training with a progress bar, saving figures, and the
run-or-reload-then-report flow of ``main`` (:func:`run_cli`)."""

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import ccjax

from ._cli import ProgressBar, count, format_duration, say, use_every_cpu_core


def add_output_arguments(parser: argparse.ArgumentParser, experiment: str) -> None:
    """``--out``, ``--figures`` and ``--plot-only``."""
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("results") / experiment, help="results directory")
    output.add_argument(
        "--figures", type=Path, default=Path("figures"), help=f"folder for the figures ({experiment}*.png)"
    )
    output.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the figures and table from the results in --out, without training (other options are ignored)",
    )


def check_output_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Catch unusable output paths before spending time on training."""
    for path, what in ((args.out, "--out"), (args.figures, "--figures")):
        if path.exists() and not path.is_dir():
            parser.error(f"{what} {path} exists and is not a directory")


def load_saved(out: Path, experiment: str, parser: argparse.ArgumentParser) -> tuple[dict, dict]:
    """The arrays and manifest of a finished run, for ``--plot-only``."""
    try:
        arrays, manifest = ccjax.load_results(out)
    except (FileNotFoundError, ccjax.ResultsError) as error:
        parser.error(f"--plot-only: {error} (run without --plot-only first)")
    if manifest.get("experiment") != experiment:
        parser.error(f"--plot-only: {out} holds results of {manifest.get('experiment')!r}, not {experiment}")
    say(f"re-plotting from {out} (no training)")
    return arrays, manifest


def base_manifest(experiment: str, description: str, argv: list[str]) -> dict:
    """The fields every manifest starts with: what ran, how to rerun it, and where."""
    return {
        "experiment": experiment,
        "description": description,
        "argv": argv,
        "command": shlex.join(["python", "-m", f"experiments.{experiment}", *argv]),
        "environment": ccjax.environment_info(),
    }


def train_sweep(config: ccjax.TrainConfig, axes: dict, what: str) -> ccjax.SweepResult:
    """:func:`ccjax.sweep` with a progress bar and a status line before and after."""
    n_models = 1
    for values in axes.values():
        n_models *= len(values)
    say(f"training {count(n_models, 'model')} ({what}) for {config.total_steps:,} steps; compiling first ...")
    progress = ProgressBar()
    try:
        result = ccjax.sweep(config, axes, on_progress=progress)
    finally:
        progress.close()
    say(f"trained in {format_duration(result.run_seconds)} (+{result.compile_seconds:.1f}s compile)")
    return result


def save_figure(figure, path: Path) -> None:
    """Write ``figure`` to ``path`` (creating its folder) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    plt.close(figure)
    say(f"wrote {path}")


Results = tuple[dict, dict]  # (arrays, manifest)


def run_cli(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    experiment: str,
    run: Callable[[argparse.Namespace, list[str]], Results],
    summary: Callable[[dict, dict], str],
    figures: dict[str | Callable[[dict], str], Callable[[dict, dict], object]],
    resolve: Callable[[argparse.Namespace], argparse.Namespace] = lambda args: args,
) -> int:
    """An experiment's ``main``: parse ``argv`` (then ``resolve`` option defaults that depend
    on other options), run (or ``--plot-only``: reload), save the results, print the summary
    and write each ``figures[name](arrays, manifest)``; a name may be a function of the manifest."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = resolve(parser.parse_args(argv))
    use_every_cpu_core()
    check_output_paths(args, parser)
    if args.plot_only:
        arrays, manifest = load_saved(args.out, experiment, parser)
    else:
        try:
            arrays, manifest = run(args, argv)
        except KeyboardInterrupt:
            say("interrupted; nothing was saved")
            return 130
        ccjax.save_results(args.out, arrays, manifest)
        say(f"wrote {args.out}")
    print(summary(arrays, manifest), flush=True)
    for name, make in figures.items():
        save_figure(make(arrays, manifest), args.figures / (name if isinstance(name, str) else name(manifest)))
    return 0
