"""Every choice that an experiment's ``--help`` offers works end to end (issue 11, item 3).

The experiments and their choices are discovered, not listed: every ``experiments.<name>``
module with a ``main`` is asked for its parser, and every option with ``choices`` (an
argparse ``choices`` list, or a :func:`experiments._cli.choice_list` type) is walked, one
tiny in-process run per choice, through to the written results and figures. A new mixing
family, a new choice or a new experiment is covered without editing this file; an
experiment that offers choices but has no tiny command line in :data:`TINY` fails.
"""

import argparse
import importlib
import pkgutil
from unittest import mock

import pytest

import ccjax
import experiments

# A tiny command line per experiment that offers choices: few steps, one seed, one grid
# point, a coarse evaluation. The choice under test is appended (and wins over a value here).
TINY = {
    "scale_sweep": ["--scales", "1", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--d-embed", "20"]
    + ["--log-every", "5", "--eval-rel-sem", "0.2"],
    "sparsity_regimes": ["--p-train", "0.05", "--seeds", "1", "--steps", "10", "--no-step-scaling"]
    + ["--eval-points", "2", "--eval-rel-sem", "0.2"],
    "lr_sweep": ["--lrs", "3e-3", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--eval-rel-sem", "0.2"],
    "transplant": ["--seeds", "1", "--steps", "10", "--finetune-steps", "10", "--eval-rel-sem", "0.2"],
    "rank_sweep": ["--ranks", "2", "--seeds", "1", "--steps", "10"],
    "sigma_sweep": ["--sigmas", "0.02", "--seeds", "1", "--steps", "10", "--eval-rel-sem", "0.2", "--bootstrap", "2"],
    "snmf_sweep": ["--sigmas", "0.02", "--seeds", "1", "--steps", "10", "--outer-iterations", "2"],
}


class _Parsed(Exception):
    """Raised in place of parsing, once an experiment's ``main`` has built its parser."""


def parser_of(module) -> argparse.ArgumentParser:
    """The parser that ``module.main`` builds (however it builds it), without running anything."""
    built = []

    def capture(parser, *args, **kwargs):
        built.append(parser)
        raise _Parsed

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            module.main([])
        except _Parsed:
            pass
    assert built, f"experiments.{module.__name__} main() never parsed its arguments"
    return built[0]


def offered_choices(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(option, choice) for every choice of every option; flags and free values offer none."""
    pairs = []
    for action in parser._actions:
        choices = action.choices if action.choices is not None else getattr(action.type, "choices", None)
        if action.option_strings and choices is not None:
            pairs += [(max(action.option_strings, key=len), str(choice)) for choice in choices]
    return pairs


def experiment_modules() -> list[str]:
    names = [info.name for info in pkgutil.iter_modules(experiments.__path__) if not info.name.startswith("_")]
    return [name for name in names if hasattr(importlib.import_module(f"experiments.{name}"), "main")]


CASES = [
    (name, option, choice)
    for name in experiment_modules()
    for option, choice in offered_choices(parser_of(importlib.import_module(f"experiments.{name}")))
]


def test_the_walk_finds_every_mixing_family_and_every_experiment_has_a_tiny_command():
    walked = {(name, option): set() for name, option, _ in CASES}
    for name, option, choice in CASES:
        walked[name, option].add(choice)
    assert walked["scale_sweep", "--mixing"] == set(ccjax.MIXING_NAMES)
    assert walked["sparsity_regimes", "--mixing"] == set(ccjax.MIXING_NAMES)
    missing = sorted({name for name, _, _ in CASES} - set(TINY))
    assert not missing, f"add a tiny command line to TINY for {missing}: they offer choices"


@pytest.mark.parametrize("name, option, choice", CASES, ids=[f"{n} {o} {c}" for n, o, c in CASES])
def test_every_offered_choice_runs_to_written_results_and_figures(name, option, choice, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that a stray write to figures/ or results/ would show up here
    out = tmp_path / "out"
    module = importlib.import_module(f"experiments.{name}")
    argv = [*TINY[name], option, choice, "--out", str(out)]
    assert module.main(argv) == 0
    arrays, manifest = ccjax.load_results(out)
    recorded = manifest["options"][option]
    assert choice in recorded if isinstance(recorded, list) else recorded == choice
    assert list(out.glob("*.png")), "a custom --out keeps the figures with the results"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # nothing under figures/ or results/
