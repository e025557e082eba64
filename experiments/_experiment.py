"""The parts every experiment CLI shares: the runner's options, output folders, --plot-only
loading, checkpoints and --resume (:class:`Session`), training with a progress bar, and the
train-then-evaluate sequences of several experiments. :meth:`._spec.Experiment.main` runs them.

``--out`` is a :class:`ccjax.io.ResultsFolder` (its layout, and what a run may do with it:
resume, replace or refuse); its refusals are usage errors here.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np

import ccjax
from ccjax import measure
from ccjax.report import count

from . import _distributed
from ._cli import Option, format_duration, positive_int, say

FIGURES = Path("figures")  # the committed figures: written only by runs into the default --out
RESULTS = Path("results")


def default_out(experiment: str, quick: bool = False) -> Path:
    """``results/<experiment>``, or ``results/<experiment>-quick`` for a ``--quick`` run (as
    experiments.reproduce --quick's): a smoke run never meets the committed results or figures."""
    return RESULTS / f"{experiment}{'-quick' if quick else ''}"


RESUME_HELP = (
    "continue an interrupted run from the checkpoints in --out (same options; the results equal an "
    "uninterrupted run's); with finished results there, just report them; with nothing there, start afresh"
)
PLOT_ONLY_HELP = "redraw the figures and table from the results in --out, without training (other options are ignored)"
NO_CACHE_HELP = (
    "compile every program afresh: no persistent compilation cache (default: in $CCJAX_CACHE_DIR or the user's "
    "cache folder, so that a second run reads its compiled programs back; results do not depend on it)"
)
MEMORY_HELP = (
    "train at most N models per compiled call (default: as many as fit in half the free memory); "
    "results do not depend on it"
)
# Only for an experiment that trains through train_sweep (sweep_controls): else set to these defaults.
SWEEP_CONTROLS = (
    Option("--max-models-per-call", positive_int, None, MEMORY_HELP, "N", group="interruptions and memory"),
    *_distributed.OPTIONS,
)


def runner_options(experiment: str, sweep_controls: bool = True, quick: bool = False) -> tuple[Option, ...]:
    """``--out``, ``--figures``, ``--plot-only`` (group "output"), ``--resume``, ``--overwrite``
    and, with ``sweep_controls``, :data:`SWEEP_CONTROLS`.

    With ``quick`` (the experiment has a ``--quick`` flag) ``--out`` defaults to None and
    :func:`resolve_out` picks :func:`default_out` by ``--quick``; an explicit ``--out`` wins."""
    out = Option("--out", Path, default_out(experiment), "results directory", group="output")
    if quick:
        where = f"default: {default_out(experiment)}, or {default_out(experiment, quick=True)} with --quick"
        out = dataclasses.replace(out, default=None, help=f"results directory ({where}; an explicit --out wins)")
    full_run = " of a full run" if quick else ""
    figures = (
        f"folder for the figures ({experiment}*.png); default: {FIGURES}/ with the default --out{full_run}, "
        "else --out itself (a custom --out never overwrites the committed figures)"
    )
    control = "interruptions and memory" if sweep_controls else "interruptions"
    return (
        out,
        Option("--figures", Path, None, figures, group="output"),
        Option("--plot-only", None, False, PLOT_ONLY_HELP, group="output"),
        Option("--resume", None, False, RESUME_HELP, group=control),
        Option("--overwrite", None, False, "replace the results (and any checkpoints) already in --out", group=control),
        Option("--no-compile-cache", None, False, NO_CACHE_HELP, group=control),
        *(SWEEP_CONTROLS if sweep_controls else ()),
    )


# Options that do not change a run's results, and whether each takes a value: the runner's own
# (where outputs go, how the work is split, the run-control flags) and an experiment's --figure file.
NEUTRAL = {option.flag: option.type is not None for option in runner_options("any")} | {"--figure": True}


def resolve_out(args: argparse.Namespace, parser: argparse.ArgumentParser, experiment: str) -> bool:
    """Fill in ``--out`` where an experiment with a ``--quick`` flag left it unset (:func:`default_out`). Returns
    whether the run writes into the committed results (a full run's default ``--out``; figures: :data:`FIGURES`)."""
    quick = getattr(args, "quick", None)
    committed = args.out == (parser.get_default("out") if quick is None else default_out(experiment))
    if quick is not None and args.out is None:
        args.out, committed = default_out(experiment, quick=quick), not quick
    return committed


def resolve_figures(args: argparse.Namespace, parser: argparse.ArgumentParser, committed: bool) -> None:
    """Fill in ``--figures`` where it was not given (:data:`FIGURES` for a run into the ``committed`` results, else
    ``--out`` itself) and check the output paths (unusable paths, a ``--figure`` file type) before any training."""
    args.figures = args.figures or (FIGURES if committed else args.out)
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
    """``argv`` without the options that do not change the results (:data:`NEUTRAL`, with
    their values): two commands with equal identities compute the same results."""
    kept, skip = [], False
    for arg in argv:
        flag, equals, _ = arg.partition("=")
        if skip:
            skip = False
        elif flag in NEUTRAL:
            skip = NEUTRAL[flag] and not equals
        else:
            kept.append(arg)
    return kept


def run_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict:
    """The resolved value of every option but the neutral ones (:func:`result_identity`), by
    option name, as JSON values: two runs with equal options compute the same results, however
    the options were spelt (``--seeds 3`` or ``--seeds 0,1,2``, a default or the same value given)."""
    options = {
        option_name(action): getattr(args, action.dest)
        for action in parser._actions
        if action.option_strings and not NEUTRAL.keys() & action.option_strings and hasattr(args, action.dest)
    }  # hasattr: not --help
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
    input_paths: list[dict] = dataclasses.field(default_factory=list)  # the manifest's "input_path"

    @property
    def checkpoints(self) -> Path | None:  # None without a results folder
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
    """Decide what a run may do with ``--out`` (:meth:`ccjax.io.ResultsFolder.prepare`; a refusal
    is a usage error): a :class:`Session` to train with, or the saved ``(arrays, manifest)`` when
    ``--resume`` finds the same run (equal :func:`run_options`, with ``defaults`` for options it
    did not record; or, saved before options were recorded, :func:`result_identity`) done."""
    folder, options = ccjax.io.ResultsFolder(args.out, experiment), run_options(args, parser)
    flags, identity = {"resume": args.resume, "overwrite": args.overwrite, "defaults": defaults}, result_identity(argv)
    try:
        plan = folder.prepare(options, **flags, legacy_match=lambda saved: result_identity(saved) == identity)
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


def train_sweep(
    config: ccjax.TrainConfig,
    axes: dict,
    what: str,
    session: Session | None = None,
    initial_params: ccjax.FeatureMLP | None = None,
) -> ccjax.SweepResult:
    """:func:`ccjax.sweep` with a progress bar and a status line before and after. With a ``session`` it checkpoints
    after every chunk of steps to its :meth:`~ccjax.io.ResultsFolder.sweep_checkpoint`, continues from that file under
    ``--resume``, and records diverged models in ``session.diverged``."""
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
    run = {"on_checkpoint": checkpoint, "resume": resume, "max_models_per_call": session.max_models_per_call}
    with contextlib.closing(ccjax.ProgressBar()) as progress:
        result = ccjax.sweep(config, axes, on_progress=progress, initial_params=initial_params, **run)
    compiled = f"(+{result.compile_seconds:.1f}s compile, {result.input_path.path} input path)"
    say(f"trained in {format_duration(result.run_seconds)} {compiled}")
    session.input_paths.append({"sweep": what, **result.input_path._asdict()})
    points = result.diverged_points()
    if points:
        say(f"warning: {count(len(points), 'model')} of {grid.size} diverged ({what}); excluded from summaries")
    session.diverged.extend({"sweep": what, **point} for point in points)
    return result


def train_and_evaluate(
    config: ccjax.TrainConfig, axes: dict, what: str, session: Session, *, rel_sem: float, p: float | None = None
) -> tuple[ccjax.SweepResult, measure.Estimate]:
    """:func:`train_sweeps` of one sweep, then :func:`ccjax.evaluate_sweep` of every model at ``p`` (default: its
    training p) to the relative standard error ``rel_sem``, timed as "eval", with status lines; returns both."""
    (result,) = train_sweeps(session, [(config, axes, what)])
    models, at = count(result.grid.size, "model"), config.p if p is None else p
    say(f"evaluating {models} at p = {at:g} to a relative standard error of {rel_sem:g} ...")
    with session.timed("eval"):
        estimate = ccjax.evaluate_sweep(result, p, rel_sem=rel_sem)
    n_samples = int(np.asarray(estimate.n_samples).flat[0])
    say(f"evaluated in {format_duration(session.timings['eval_seconds'])} on {n_samples:,} exactly-k samples")
    return result, estimate


def train_at_each_p(args: argparse.Namespace, session: Session, what) -> tuple[list, ccjax.FeatureMLP]:
    """Train ``args.config`` at each of ``args.p_train`` over ``args.seeds`` (one :func:`train_sweep` per p, described
    by ``what(p)``), timed as ``session``'s "train"; returns the sweeps and their weights stacked as (T, K, ...)."""
    configs = [dataclasses.replace(args.config, p=p) for p in args.p_train]
    results = train_sweeps(session, [(config, {"seed": args.seeds}, what(config.p)) for config in configs], False)
    return results, jax.tree.map(lambda *leaves: np.stack(leaves), *(result.params for result in results))


def evaluate_curves(args: argparse.Namespace, session: Session, params, scaled_mixing, p_train):
    """:func:`ccjax.loss_curve` of every model at ``args.eval_points`` p_eval (geometric in [1e-3, 1]) and at
    ``p_train`` to ``args.eval_rel_sem``, timed as ``session``'s "eval", with status lines: p_eval and the curve."""
    p_eval = np.geomspace(1e-3, 1.0, args.eval_points)
    p_all = np.append(p_eval, p_train)
    say(f"evaluating {count(math.prod(np.shape(scaled_mixing)[:-2]), 'model')} at {len(p_all)} p's ...")
    with session.timed("eval"):
        curve = ccjax.loss_curve(params, scaled_mixing, p_all, ccjax.evaluation_key(), rel_sem=args.eval_rel_sem)
    say(f"evaluated in {format_duration(session.timings['eval_seconds'])} on {curve.n_evaluations:,} exactly-k samples")
    return p_eval, curve


def curves_at_each_p(args, session: Session, results, params, scaled_mixing, *, sem_at_train_p: bool = True):
    """L/p curves of models trained by :func:`train_at_each_p`, over p_eval and at each model's own training p
    (:func:`evaluate_curves`): the arrays ``p_train``, ``seeds``, ``steps``, ``p_eval`` and those of
    :func:`ccjax.measure.curves_at_training_p`, and the curve itself."""
    p_eval, curve = evaluate_curves(args, session, params, scaled_mixing, args.p_train)
    steps = [result.config.total_steps for result in results]
    arrays = {"p_train": np.asarray(args.p_train), "seeds": np.asarray(args.seeds), "steps": np.asarray(steps)}
    arrays |= {"p_eval": p_eval, **measure.curves_at_training_p(curve, len(p_eval), sem_at_train_p=sem_at_train_p)}
    return arrays, curve


def plot_trained_curves(arrays: dict, manifest: dict, labels, trained_at, at_train_p, *, ax, title: str):
    """:func:`ccjax.plot.plot_trained_curves` of the saved ``loss_per_feature`` over ``p_eval``."""
    from ccjax import plot

    curves, naive = (arrays["p_eval"], arrays["loss_per_feature"]), manifest["naive_loss_per_feature"]
    return plot.plot_trained_curves(*curves, labels, trained_at, at_train_p, naive=naive, ax=ax, title=title)


def train_sweeps(session: Session, sweeps, record: bool = True) -> list:
    """Each ``(config, axes, what)`` of ``sweeps`` trained by :func:`train_sweep`, in order and timed together as
    ``session``'s "train"; with ``record``, their summed run and compile seconds and device count join its timings."""
    with session.timed("train"):
        results = [train_sweep(config, axes, what, session) for config, axes, what in sweeps]
    if record:
        session.timings["sweep_run_seconds"] = sum(result.run_seconds for result in results)
        session.timings["compile_seconds"] = sum(result.compile_seconds for result in results)
        session.timings["n_devices"] = results[0].n_devices
    return results
