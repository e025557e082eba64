"""The parts every experiment CLI shares: output and run options, --plot-only loading,
the manifest's common fields, training with a progress bar, checkpoints and --resume,
diverged models and saving figures. The runner that puts them together is
:meth:`._spec.Experiment.main`.

``--out`` is a :class:`ccjax.io.ResultsFolder` (its layout, and what a run may do with it:
resume, replace or refuse); its refusals are usage errors here.
"""

import argparse
import contextlib
import dataclasses
import json
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

import ccjax
from ccjax.engine import describe_point

from . import _distributed
from ._cli import count, format_duration, positive_int, say

# Options that do not change a run's results: where outputs go, how the work is split,
# and the run-control flags themselves (value-taking ones first).
NEUTRAL_OPTIONS = ("--out", "--figures", "--figure", "--max-models-per-call")
NEUTRAL_FLAGS = ("--resume", "--overwrite", "--plot-only")
NEUTRAL_OPTIONS += _distributed.NEUTRAL_OPTIONS
NEUTRAL_FLAGS += _distributed.NEUTRAL_FLAGS
FIGURES = Path("figures")  # the committed figures: written only by runs into the default --out
RESULTS = Path("results")
QUICK_SUFFIX = "-quick"  # results/<experiment>-quick: a --quick run's folder, as experiments.reproduce --quick's


def default_out(experiment: str, quick: bool = False) -> Path:
    """``results/<experiment>``, or ``results/<experiment>-quick`` for a ``--quick`` run: a smoke
    run never meets the committed results (nor, through :func:`resolve_figures`, the figures)."""
    return RESULTS / f"{experiment}{QUICK_SUFFIX if quick else ''}"


def add_run_arguments(parser: argparse.ArgumentParser, sweep_controls: bool = True) -> None:
    """``--resume``, ``--overwrite`` and ``--max-models-per-call`` (and the multi-process
    options). Without ``sweep_controls`` (an experiment that does not train through
    :func:`train_sweep`, and keeps its own checkpoints): only ``--resume`` and ``--overwrite``."""
    control = parser.add_argument_group("interruptions and memory" if sweep_controls else "interruptions")
    control.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from the checkpoints in --out (same options; the results equal an "
        "uninterrupted run's); with finished results there, just report them; with nothing there, start afresh",
    )
    control.add_argument(
        "--overwrite", action="store_true", help="replace the results (and any checkpoints) already in --out"
    )
    if not sweep_controls:
        parser.set_defaults(max_models_per_call=None, coordinator=None, num_processes=None, process_id=None)
        parser.set_defaults(distributed=False)
        return
    control.add_argument(
        "--max-models-per-call",
        type=positive_int,
        metavar="N",
        help="train at most N models per compiled call (default: as many as fit in half the free memory); "
        "results do not depend on it",
    )
    _distributed.add_distributed_arguments(parser)


def add_output_arguments(
    parser: argparse.ArgumentParser, experiment: str, sweep_controls: bool = True, quick: bool = False
) -> argparse._ArgumentGroup:
    """``--out``, ``--figures`` and ``--plot-only``, and :func:`add_run_arguments`; returns
    the "output" group (for an experiment's own output options).

    With ``quick`` (the experiment has a ``--quick`` flag) ``--out`` defaults to None and
    :func:`resolve_out` picks :func:`default_out` by ``--quick``; an explicit ``--out`` wins."""
    output = parser.add_argument_group("output")
    if quick:
        where = f"default: {default_out(experiment)}, or {default_out(experiment, quick=True)} with --quick"
        help = f"results directory ({where}; an explicit --out wins)"
        output.add_argument("--out", type=Path, default=None, help=help)
    else:
        output.add_argument("--out", type=Path, default=default_out(experiment), help="results directory")
    full_run = " of a full run" if quick else ""
    output.add_argument(
        "--figures",
        type=Path,
        help=f"folder for the figures ({experiment}*.png); default: {FIGURES}/ with the default --out{full_run}, "
        "else --out itself (a custom --out never overwrites the committed figures)",
    )
    output.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw the figures and table from the results in --out, without training (other options are ignored)",
    )
    add_run_arguments(parser, sweep_controls)
    return output


def resolve_out(args: argparse.Namespace, parser: argparse.ArgumentParser, experiment: str) -> bool:
    """Fill ``--out`` when it was not given and the experiment has a ``--quick`` flag
    (:func:`add_output_arguments`): :func:`default_out` of a quick run or of a full one.
    Returns whether ``args.out`` is the committed results folder (the default ``--out`` of a
    full run), whose figures go to the committed :data:`FIGURES` folder."""
    if not hasattr(args, "quick"):
        return args.out == parser.get_default("out")
    if args.out is None:
        args.out = default_out(experiment, quick=args.quick)
        return not args.quick
    return args.out == default_out(experiment)


def resolve_figures(args: argparse.Namespace, default_out: bool) -> argparse.Namespace:
    """Fill ``--figures`` when it was not given: the committed :data:`FIGURES` folder for a
    run into the default ``--out``, else ``--out`` itself, beside the results."""
    if args.figures is None:
        args.figures = FIGURES if default_out else args.out
    return args


def check_output_paths(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Catch unusable output paths (and a ``--figure`` file type) before spending time on training."""
    figure = getattr(args, "figure", None)  # an experiment's single figure file, if it offers one
    if figure is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        formats = FigureCanvasBase.get_supported_filetypes()
        if figure.suffix.lstrip(".").lower() not in formats:
            parser.error(f"--figure {figure}: unsupported file type; use one of .{', .'.join(sorted(formats))}")
    folder = ("--figures", args.figures) if figure is None else ("--figure's folder", figure.parent)
    for what, path in (("--out", args.out), folder):
        if path.exists() and not path.is_dir():
            parser.error(f"{what} {path} exists and is not a directory")


def result_identity(argv: list[str]) -> list[str]:
    """``argv`` without the options that do not change the results (:data:`NEUTRAL_OPTIONS`
    with their values, :data:`NEUTRAL_FLAGS`): two commands with equal identities compute
    the same results."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in NEUTRAL_OPTIONS:
            skip = True
        elif arg not in NEUTRAL_FLAGS and not arg.startswith(tuple(f"{option}=" for option in NEUTRAL_OPTIONS)):
            kept.append(arg)
    return kept


def run_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The resolved value of every option that can change the results (all but
    :data:`NEUTRAL_OPTIONS` and :data:`NEUTRAL_FLAGS`), by option name, as JSON values:
    two runs with equal options compute the same results, however the options were spelt
    (``--seeds 3`` or ``--seeds 0,1,2``, a default or the same value given)."""
    options = {}
    for action in parser._actions:
        if not action.option_strings or set(action.option_strings) & {*NEUTRAL_OPTIONS, *NEUTRAL_FLAGS}:
            continue
        if hasattr(args, action.dest):  # not --help
            options[option_name(action)] = getattr(args, action.dest)
    return json.loads(json.dumps(options, default=str))


def option_name(action: argparse.Action) -> str:
    """``--seeds`` (the first long spelling: ``--full-rank``, not ``--no-full-rank``)."""
    return next((name for name in action.option_strings if name.startswith("--")), action.option_strings[0])


def load_saved(out: Path, experiment: str, parser: argparse.ArgumentParser) -> tuple[dict, dict]:
    """The arrays and manifest of a finished run, for ``--plot-only``."""
    try:
        saved = ccjax.io.ResultsFolder(out, experiment).load()
    except ccjax.io.ResultsFolderError as error:  # another experiment's results
        parser.error(f"--plot-only: {error}")
    except (FileNotFoundError, ccjax.ResultsError) as error:
        parser.error(f"--plot-only: {error} (run without --plot-only first)")
    say(f"re-plotting from {out} (no training)")
    return saved


@dataclasses.dataclass
class Session:
    """One CLI run's results folder (None: no checkpoints), resume flag and memory cap, and
    the models that diverged in its sweeps (filled by :func:`train_sweep`)."""

    folder: ccjax.io.ResultsFolder | None = None
    resume: bool = False
    max_models_per_call: int | None = None
    diverged: list[dict] = dataclasses.field(default_factory=list)
    run_record: dict | None = None  # written to checkpoints/run.json when training starts
    discard: bool = False  # remove the old checkpoints first (--overwrite)
    timings: dict[str, float] = dataclasses.field(default_factory=dict)  # the manifest's "timings"

    @property
    def checkpoints(self) -> Path | None:
        """``<out>/checkpoints`` (None without a results folder)."""
        return None if self.folder is None else self.folder.checkpoints

    @contextlib.contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Record the seconds the ``with`` block takes as ``timings["<name>_seconds"]``."""
        start = time.perf_counter()
        yield
        self.timings[f"{name}_seconds"] = time.perf_counter() - start

    def start(self) -> None:
        """Write the run's record into the checkpoint folder (once, just before the first
        training), so that a run that fails its checks leaves ``--out`` untouched."""
        if self.folder is not None and self.run_record is not None:
            self.folder.start(self.run_record, discard=self.discard)
            self.run_record = None


def prepare_output(
    args: argparse.Namespace, parser: argparse.ArgumentParser, experiment: str, argv: list[str], defaults: dict
):
    """Decide what a run may do with ``--out`` (:meth:`ccjax.io.ResultsFolder.prepare`; a
    refusal is a usage error): a :class:`Session` to train with, or the saved ``(arrays,
    manifest)`` when ``--resume`` finds the same run already done.

    "The same run" means equal :func:`run_options`; ``defaults``: those of a run with no
    arguments, for options the saved run did not record. A run saved before the options
    were recorded is compared by its command line (:func:`result_identity`)."""
    folder, options = ccjax.io.ResultsFolder(args.out, experiment), run_options(args, parser)
    try:
        plan = folder.prepare(
            options,
            resume=args.resume,
            overwrite=args.overwrite,
            defaults=defaults,
            legacy_match=lambda saved: result_identity(saved) == result_identity(argv),
        )
    except ccjax.io.ResultsFolderError as error:
        parser.error(str(error))
    if plan.note:
        say(plan.note)
    if plan.finished is not None:
        return plan.finished
    record = {"experiment": experiment, "argv": argv, "command": command_line(experiment, argv), "options": options}
    return Session(folder, args.resume, args.max_models_per_call, run_record=record, discard=plan.discard)


def command_line(experiment: str, argv: list[str]) -> str:
    """``python -m experiments.<experiment> <argv>``, quoted as a shell would need."""
    return shlex.join(["python", "-m", f"experiments.{experiment}", *argv])


def base_manifest(experiment: str, description: str, argv: list[str]) -> dict:
    """The fields every manifest starts with: what ran, how to rerun it, and where."""
    return {
        "experiment": experiment,
        "description": description,
        "argv": argv,
        "command": command_line(experiment, argv),
        "environment": ccjax.io.environment_info(),
    }


def train_sweep(
    config: ccjax.TrainConfig,
    axes: dict,
    what: str,
    session: Session | None = None,
    initial_params: ccjax.FeatureMLP | None = None,
) -> ccjax.SweepResult:
    """:func:`ccjax.sweep` with a progress bar and a status line before and after.

    With a ``session`` it checkpoints after every chunk of steps to its
    :meth:`~ccjax.io.ResultsFolder.sweep_checkpoint`, continues from that file under
    ``--resume``, and records diverged models in ``session.diverged``.
    """
    session = session or Session()
    grid = ccjax.make_grid(axes)
    checkpoint = resume = None
    if session.folder is not None:
        checkpoint = session.folder.sweep_checkpoint(config, grid, initial_params)
        resume = checkpoint.load() if session.resume else None
    if resume is not None:
        done = min(resume.intervals_done * config.log_every, config.total_steps)
        say(f"resuming {what} from its checkpoint at step {done:,} of {config.total_steps:,}")
    session.start()
    say(f"training {count(grid.size, 'model')} ({what}) for {config.total_steps:,} steps; compiling first ...")
    progress = ccjax.ProgressBar()
    try:
        result = ccjax.sweep(
            config,
            axes,
            on_progress=progress,
            on_checkpoint=checkpoint,
            resume=resume,
            max_models_per_call=session.max_models_per_call,
            initial_params=initial_params,
        )
    finally:
        progress.close()
    say(f"trained in {format_duration(result.run_seconds)} (+{result.compile_seconds:.1f}s compile)")
    points = result.diverged_points()
    if points:
        say(f"warning: {count(len(points), 'model')} of {grid.size} diverged ({what}); excluded from summaries")
    session.diverged.extend({"sweep": what, **point} for point in points)
    return result


def excluding_diverged(arrays: dict) -> dict:
    """``arrays`` with the losses and histories of diverged models set to NaN, so that every
    mean leaves them out (results from before ``diverged_step`` existed pass unchanged)."""
    if "diverged_step" not in arrays:
        return arrays
    diverged = arrays["diverged_step"] >= 0
    masked = dict(arrays)
    for name, value in arrays.items():
        if name.startswith(("loss_per_feature", "history_")) and name != "history_step":
            mask = diverged.reshape(diverged.shape + (1,) * (value.ndim - diverged.ndim))
            masked[name] = np.where(mask, np.nan, value)
    return masked


def diverged_note(manifest: dict) -> str | None:
    """The note printed under the table and drawn on the figures when models diverged."""
    points = manifest.get("diverged_models") or []
    if not points:
        return None
    listed = "; ".join(describe_point(point) for point in points[:8]) + ("; ..." if len(points) > 8 else "")
    return (
        f"note: {count(len(points), 'model')} diverged (loss NaN or inf) and "
        f"{'is' if len(points) == 1 else 'are'} excluded from every mean and fit: {listed}"
    )


def save_figure(figure, path: Path, note: str | None = None) -> None:
    """Write ``figure`` to ``path`` (creating its folder), with ``note`` along its foot, and close it."""
    import matplotlib.pyplot as plt

    if not _distributed.is_writer():  # one process writes
        plt.close(figure)
        return
    if note:  # below the axes; the tight bounding box grows the canvas to hold it
        figure.text(0.01, -0.01, note, fontsize=8, color="firebrick", ha="left", va="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150, **({"bbox_inches": "tight"} if note else {}))
    plt.close(figure)
    say(f"wrote {path}")


def family_first(array) -> np.ndarray:
    """A sweep's (K seeds, F families, ...) array as (F, K, ...)."""
    return np.swapaxes(np.asarray(array), 0, 1)


def curves_at_training_p(curve: ccjax.LossCurve, n_eval: int, *, sem_at_train_p: bool = True) -> dict:
    """Split a loss curve of models (T, K, ...) evaluated at ``[*p_eval, *p_train]`` (``n_eval``
    p_eval's first), where model group t was trained at ``p_train[t]``: L/p over p_eval, and
    each model's L/p at its own training p (the diagonal), with their Monte Carlo SEMs."""
    diagonal = np.arange(len(curve.loss_per_feature))
    arrays = {
        "loss_per_feature": curve.loss_per_feature[..., :n_eval],
        "loss_per_feature_sem": curve.sem[..., :n_eval],
        "at_train_p": curve.loss_per_feature[diagonal, :, n_eval + diagonal],
    }
    if sem_at_train_p:
        arrays["at_train_p_sem"] = curve.sem[diagonal, :, n_eval + diagonal]
    return arrays


def plot_trained_curves(arrays: dict, manifest: dict, labels, trained_at, at_train_p, *, ax, title: str):
    """The saved L/p over p_eval (``arrays["loss_per_feature"]``, (C, K, P), mean ± SEM over seeds)
    with the run's naive L/p, and a dot per curve at its training p ``trained_at`` (one p for
    all, or one per curve) at the seed mean of ``at_train_p`` (C, K)."""
    from ccjax import plot

    dots = list(zip(np.broadcast_to(trained_at, len(labels)), at_train_p.mean(axis=1), strict=True))
    return plot.plot_loss_curves(
        arrays["p_eval"],
        arrays["loss_per_feature"],
        labels,
        dots=dots,
        naive=manifest["naive_loss_per_feature"],
        ax=ax,
        title=title,
    )
