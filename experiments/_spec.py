"""Experiments as declarations: an :class:`Experiment` names its options, grid, analysis and
figures; the runner (:meth:`Experiment.main`) builds the command line, the manifest, the
results files, ``--plot-only``, ``--resume``/``--overwrite`` and the output folders.

An experiment module (``lr_sweep.py`` is a small complete one, ``dense_offset.py`` one with
reproduction stages) declares, by these names:

- ``EXPERIMENT`` (its name), ``DESCRIPTION`` (the ``--help`` text; default: the module docstring).
- ``options=``: :class:`Option` records, using the builders below for shared options. An
  option with ``field=`` sets that ``ccjax.TrainConfig`` field (default: ``config=``'s), and
  the run receives the result as ``args.config``; a config the dataclass rejects, or a batch
  too small to train on (:func:`check_batch_size`), is a usage error before anything runs.
  A ``--quick`` flag makes ``--out`` default to ``results/<name>-quick``.
- ``run(args, session) -> (arrays, extras)``: trains with ``_experiment.train_sweep`` (which
  checkpoints and resumes through ``session``), times blocks with ``session.timed(name)``, and
  returns the arrays and the manifest fields particular to it. The runner adds the rest of
  the manifest (command, environment, config, axes, published numbers, naive L/p, timings,
  the ``ARRAYS`` documentation, diverged models, resolved options).
- ``summary(arrays, manifest) -> str`` and ``figure`` (or ``FIGURES``: file name to
  function); both read the config with ``ccjax.io.saved_config(manifest)``.
- ``ARRAYS`` (each array's documentation), ``PUBLISHED`` and ``STAGES`` (:class:`Stage` runs
  of ``python -m experiments.reproduce``, each with its ``compare(arrays, manifest)``:
  :class:`ccjax.report.Comparison` rows), which :func:`registered_stages` collects.
- ``SPEC = Experiment.from_module(__name__, title=..., config=..., axes=..., options=...)``
  (and any other :class:`Experiment` field: ``resolve``, ``defaults``, ``sweep_controls``, ...),
  ``build_parser, main = SPEC.build_parser, SPEC.main``, and ``if __name__ == "__main__":
  sys.exit(main())``.

Experiments never import each other: what two share goes to ``_cli.py``, ``_experiment.py``
or ``ccjax``. A conversion keeps ``results.npz`` bitwise and the manifest's keys unchanged
(compare a tiny run before and after).
"""

import argparse
import dataclasses
import importlib
import operator
import pkgutil
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax

import ccjax
from ccjax.engine import check_batch_size

from . import _cli, _distributed, _experiment
from ._cli import Option, positive_float, positive_int, say  # positive_*: for the experiments
from ._experiment import Session, run_options


def p_train_option(default: str) -> Option:
    return Option("--p-train", _cli.probability_list, default, "training p's", metavar="LIST", trains_p=True)


def seeds_option(default: str = "3") -> Option:
    return Option("--seeds", _cli.seed_list, default, "a count N or a list of seeds", metavar="N|LIST")


def eval_rel_sem_option(default: float = 0.003) -> Option:
    return Option("--eval-rel-sem", positive_float, default, "relative standard error of every L/p value")


def training_options() -> tuple[Option, ...]:
    """``--steps`` and ``--no-step-scaling`` (config fields ``steps``, ``scale_steps_for_sparsity``)."""
    scaling = "train every p for --steps steps (the paper scales steps by 1/(1 - (1-p)^n))"
    return (
        unscaled_steps_option("training steps before sparsity scaling"),
        Option("--no-step-scaling", None, False, scaling, field="scale_steps_for_sparsity", to_field=operator.not_),
    )


def mixing_option(what: str = "mixing family of M") -> Option:
    """``--mixing`` (config field ``mixing``), its help naming the two signs of the embedding M."""
    signs = "'embedding' is M = I - W_E W_E^T (faithful sign), 'embedding-code-sign' W_E W_E^T - I (the code's)"
    return Option("--mixing", str, None, f"{what}: {signs}", choices=ccjax.MIXING_NAMES, field="mixing")


def mixing_options() -> tuple[Option, ...]:
    """``--mixing`` and ``--scale`` (config fields ``mixing``, ``scale``)."""
    return mixing_option(), Option("--scale", _cli.non_negative_float, None, "mixing scale sigma", field="scale")


def curve_options(points: int = 100, rel_sem: float = 0.003) -> tuple[Option, ...]:
    """``--eval-points`` and ``--eval-rel-sem``: the p_eval grid of an L/p curve and its precision."""
    grid = Option("--eval-points", positive_int, points, "p_eval values, geometric in [1e-3, 1]")
    return grid, eval_rel_sem_option(rel_sem)


def single_p_options() -> tuple[Option, ...]:
    """``--steps``, ``--p`` and ``--batch-size`` of a run at one feature probability, without step scaling."""
    p = Option("--p", _cli.probability, None, "feature probability p in (0, 1]", field="p")
    batch_size = Option("--batch-size", positive_int, None, "fresh samples per step", field="batch_size")
    return unscaled_steps_option("training steps"), p, batch_size


def families_option(families: Sequence[str], **fields) -> Option:
    """``--families``: a comma-separated subset of ``families`` (default: all of them)."""
    choices = _cli.choice_list(families)
    return Option("--families", choices, ",".join(families), "Gaussian mixing families", "LIST", **fields)


def unscaled_steps_option(help: str = "training steps at p = 0.01") -> Option:
    """``--steps`` of an experiment whose steps are not scaled by sparsity (config field ``steps``)."""
    return Option("--steps", positive_int, None, help, field="steps")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One run of an experiment in the paper's reproduction (``python -m experiments.reproduce``):
    ``python -m experiments.<module> <args>`` into ``<out>/<name>``, the report section it fills (``title``, in the
    order of ``order``) and ``compare(arrays, manifest)``, its results next to the paper's numbers
    (:class:`ccjax.report.Comparison` rows). ``module`` is filled in from the declaring experiment's name, so a stage
    touches only its file."""

    name: str
    title: str
    order: float
    paper_args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    compare: Callable[[dict, dict], list] | None = None
    figure_flag: str = "--figures"  # scale_sweep takes one --figure file instead
    module: str = ""

    def argv(self, quick: bool, out: Path, figures: Path) -> list[str]:
        args = list(self.quick_args if quick else self.paper_args)
        figure = figures / f"{self.name}.png" if self.figure_flag == "--figure" else figures
        return [*args, "--out", str(out / self.name), self.figure_flag, str(figure)]


QUICK_TRAIN = ("--seeds", "2", "--steps", "200")  # the smoke size of most stages' quick_args


def registered_stages() -> tuple[Stage, ...]:
    """Every stage the experiments declare, in report order: each module of this package
    with a ``SPEC`` (private modules and the reproduction itself aside) is imported."""
    names = [info.name for info in pkgutil.iter_modules(importlib.import_module(__package__).__path__)]
    names = [name for name in names if not name.startswith("_") and name not in ("reproduce", "reproduction_report")]
    specs = [getattr(importlib.import_module(f"{__package__}.{name}"), "SPEC", None) for name in names]
    stages = [stage for spec in specs for stage in getattr(spec, "stages", ())]
    return tuple(sorted(stages, key=lambda stage: stage.order))


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment CLI by declaration (what a module declares: this module's docstring);
    ``figures``: file name, or a function of the manifest giving it, to its figure function."""

    name: str
    title: str  # the manifest's one-line description
    description: str  # the --help text
    run: Callable[[argparse.Namespace, Session], tuple[dict, dict]]  # the arrays and its own manifest fields
    summary: Callable[[dict, dict], str]
    figures: Mapping[Any, Callable[[dict, dict], object]]
    options: Sequence[Option] = ()
    config: ccjax.TrainConfig | None = None
    axes: Mapping[str, str] = dataclasses.field(default_factory=dict)  # manifest axis -> args dest
    arrays: Mapping[str, str] = dataclasses.field(default_factory=dict)
    published: Mapping = dataclasses.field(default_factory=dict)
    published_as: str = "published"
    resolve: Callable[[argparse.Namespace], argparse.Namespace] | None = None
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # parser.set_defaults, e.g. out=None
    sweep_controls: bool = True  # False: no --max-models-per-call or multi-host options (no train_sweep)
    stages: Sequence[Stage] = ()  # its runs in the paper's reproduction (module filled in)

    @classmethod
    def from_module(cls, module_name: str, **fields) -> "Experiment":
        """The experiment a module declares by the conventional names (``DESCRIPTION``
        defaults to the module docstring, ``FIGURES`` to ``figure`` as ``<EXPERIMENT>.png``);
        ``fields`` gives (or overrides) the rest."""
        module = sys.modules[module_name]
        name = module.EXPERIMENT
        declared = {
            "name": name,
            "description": getattr(module, "DESCRIPTION", module.__doc__),
            "run": module.run,
            "summary": module.summary,
            "figures": getattr(module, "FIGURES", None) or {f"{name}.png": module.figure},
            "arrays": getattr(module, "ARRAYS", {}),
            "published": getattr(module, "PUBLISHED", {}),
            "stages": tuple(dataclasses.replace(stage, module=name) for stage in getattr(module, "STAGES", ())),
        }
        return cls(**(declared | fields))

    def build_parser(self) -> argparse.ArgumentParser:
        """The declared options by group, then the runner's (:func:`runner_options`), then the
        declared output options (in the runner's "output" group)."""
        parser = _cli.ArgumentParser(
            prog=f"python -m experiments.{self.name}", description=self.description, formatter_class=_cli.HelpFormatter
        )
        options = [self._with_config_default(option) for option in self.options]
        quick = any(option.flag == "--quick" for option in options)  # then --out depends on --quick
        runner = _experiment.runner_options(self.name, self.sweep_controls, quick=quick)
        outputs = [option for option in options if option.group == "output"]
        _cli.add_options(parser, [*(option for option in options if option.group != "output"), *runner, *outputs])
        if not self.sweep_controls:
            parser.set_defaults(**{option.dest: option.default for option in _experiment.SWEEP_CONTROLS})
        parser.set_defaults(**self.defaults)
        return parser

    def _with_config_default(self, option: Option) -> Option:
        """``option`` with the config's value of its ``field`` as its default, if it declares none."""
        if option.default is not None or option.field is None or self.config is None:
            return option
        return dataclasses.replace(option, default=getattr(self.config, option.field))

    def main(self, argv: list[str] | None = None) -> int:
        """The experiment's command line for ``argv`` (default: ``sys.argv[1:]``); returns the exit
        status. Diverged models (``session.diverged``) land in the manifest, under the table and
        on every figure."""
        parser = self.build_parser()
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(argv)
        if not args.no_compile_cache and jax.config.jax_compilation_cache_dir is None:  # none yet (a test has its own)
            ccjax.enable_compile_cache()  # before anything compiles: JAX fixes the cache at its first compile
        args.compile_cache = jax.config.jax_compilation_cache_dir  # the run's cache folder, or None
        committed = _experiment.resolve_out(args, parser, self.name)
        args = self._resolve(args, parser)
        _experiment.resolve_figures(args, parser, committed)
        _distributed.initialize(args, parser)
        _cli.use_every_cpu_core()
        if args.plot_only:
            results = _experiment.load_saved(args.out, self.name, parser)
        else:
            results = self._train(args, parser, argv)
        if isinstance(results, int):
            return results
        self._report(*results, args)
        return 0

    def _train(self, args, parser, argv: list[str]) -> tuple[dict, dict] | int:
        """Run the experiment in the :class:`Session` of :func:`prepare_output` and save its results (process 0),
        or return the saved results of the same run; 130 when interrupted, 2 when its checkpoints do not fit."""
        no_arguments = self._resolve(parser.parse_args([]), parser)  # for options a saved run did not record
        session = _experiment.prepare_output(args, parser, self.name, argv, run_options(no_arguments, parser))
        _distributed.synchronize("output checked")  # before process 0 writes to --out
        if not isinstance(session, Session):
            return session
        try:
            with _distributed.stop_on_failure(), ccjax.engine.counting_compile_cache() as cache:
                arrays, manifest = self._run(args, argv, session)
        except KeyboardInterrupt:
            say(f"interrupted; continue with the same command plus --resume (checkpoints in {session.checkpoints})")
            return 130
        except ccjax.engine.CheckpointError as error:
            print(f"{parser.prog}: error: {error}; pass --overwrite to discard the checkpoints", file=sys.stderr)
            return 2
        manifest |= {"diverged_models": session.diverged, "input_path": session.input_paths}
        manifest["compile_cache"] = {"dir": args.compile_cache, **dataclasses.asdict(cache)}
        if args.compile_cache:
            say(f"compilation cache {args.compile_cache}: {cache.hits} programs read back, {cache.misses} compiled")
        manifest["options"] = run_options(args, parser)
        session.folder.finish(arrays, manifest)
        if _distributed.is_writer():
            say(f"wrote {args.out}")
        return arrays, manifest

    def _report(self, arrays: dict, manifest: dict, args: argparse.Namespace) -> None:
        """Print the summary (and the diverged models) and write each figure: to ``--figure``
        where the experiment offers one file, else by its name into ``--figures``."""
        print(self.summary(arrays, manifest), flush=True)
        note = ccjax.report.diverged_note(manifest.get("diverged_models") or [])
        if note:
            print(note, flush=True)
        for name, make in self.figures.items():  # a figure function returns None to draw nothing for these results
            name = name if isinstance(name, str) else name(manifest)
            figure = make(arrays, manifest)
            if figure is not None:
                path = ccjax.io.save_figure(figure, getattr(args, "figure", None) or args.figures / name, note)
                if path is not None:  # process 0 wrote it
                    say(f"wrote {path}")

    def _resolve(self, args: argparse.Namespace, parser: argparse.ArgumentParser) -> argparse.Namespace:
        """The experiment's own ``resolve``, then ``args.config``: the config with the options' fields."""
        try:
            args = self.resolve(args) if self.resolve else args  # its check of options that depend on each other
            if self.config is not None:
                fields = {o.field: o.config_value(getattr(args, o.dest)) for o in self.options if o.field}
                args.config = dataclasses.replace(self.config, **fields)
            if isinstance(getattr(args, "config", None), ccjax.TrainConfig):  # also one the experiment's resolve made
                self._check_batch_size(args)
        except ValueError as error:
            parser.error(str(error))
        return args

    def _check_batch_size(self, args: argparse.Namespace) -> None:
        """:func:`check_batch_size` of ``args.config`` at the smallest p the run trains at."""
        config, declared = args.config, {option.flag for option in self.options}
        swept = [option for option in self.options if option.trains_p]
        ps = [p for option in swept for p in getattr(args, option.dest)] or [config.p]
        batch_flag = "--batch-size" if "--batch-size" in declared else None
        flags = {"batch_flag": batch_flag, "p_flag": swept[0].flag if swept else "--p" if "--p" in declared else None}
        check_batch_size(config.batch_size, config.n_features, min(ps), data=config.data, smallest=len(ps) > 1, **flags)

    def _run(self, args: argparse.Namespace, argv: list[str], session: Session) -> tuple[dict, dict]:
        arrays, extras = self.run(args, session)
        manifest = {"experiment": self.name, "description": self.title, "argv": argv}  # what ran, how to rerun it
        manifest |= {"command": _experiment.command_line(self.name, argv), "environment": ccjax.io.environment_info()}
        if self.config is not None:
            manifest["config"] = dataclasses.asdict(args.config)
        if self.axes:
            manifest["axes"] = {axis: list(getattr(args, dest)) for axis, dest in self.axes.items()}
        manifest |= extras
        if self.published:
            manifest[self.published_as] = {str(key): value for key, value in self.published.items()}
        if self.config is not None:
            manifest["naive_loss_per_feature"] = ccjax.naive_loss_per_feature(args.config.n_features, args.config.d_mlp)
        manifest["timings"] = dict(session.timings)
        manifest["arrays"] = {name: text for name, text in self.arrays.items() if name in arrays}
        return arrays, manifest
