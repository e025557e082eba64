"""Every choice that an experiment's ``--help`` offers works end to end (issue 11, item 3).

The experiments and their choices are discovered, not listed: every ``experiments.<name>``
module with a ``main`` is asked for its parser, and every option with ``choices`` (an
argparse ``choices`` list, or a :func:`experiments._cli.choice_list` type) is walked
through tiny in-process runs to the written results and figures. One run covers several
choices: a list-valued option (a ``choice_list``) is given all its choices at once, and the
k-th run of an experiment takes the k-th choice of each of its one-valued options, so an
experiment needs as many runs as its longest one-valued option has choices.

A one-valued option that several experiments offer with the same choices (``--mixing``:
one declaration, :func:`experiments._spec.mixing_option`, that sets the same config field
everywhere) is shared out: its choices are dealt round-robin to the experiments that offer
it, so every choice runs end to end in one of them and every such experiment runs the option
at least once (7 families in 4 experiments: 7 runs, not 28). Every choice must reach its
run's recorded options. A new mixing family, a new choice or a new experiment is covered
without editing this file; an experiment that offers choices but has no tiny command line
in :data:`TINY` fails.
"""

import argparse
import importlib
import inspect
import json
import pkgutil
from unittest import mock

import pytest

import ccjax
import experiments
from experiments._experiment import option_name

pytestmark = pytest.mark.integration  # every choice end to end: `pytest -m integration`

# A tiny command line per experiment that offers choices: few steps, one seed, one grid
# point, a coarse evaluation. The choices under test are appended (and win over a value here).
TINY = {
    # scale_sweep, lr_sweep and sparsity_regimes train the same shapes here (batch 2048,
    # p = 0.01, 10 steps, one model), so they share one compilation.
    "scale_sweep": ["--scales", "1", "--seeds", "1", "--steps", "10", "--eval-rel-sem", "0.2"],
    "lr_sweep": ["--lrs", "3e-3", "--seeds", "1", "--steps", "10", "--eval-rel-sem", "0.2"],
    "sparsity_regimes": ["--p-train", "0.01", "--seeds", "1", "--steps", "10", "--no-step-scaling"]
    + ["--eval-points", "2", "--eval-rel-sem", "0.2"],
    "transplant": ["--seeds", "1", "--steps", "10", "--finetune-steps", "10", "--eval-rel-sem", "0.2"],
    "rank_sweep": ["--ranks", "2", "--seeds", "1", "--steps", "10"],
    "sigma_sweep": ["--sigmas", "0.02", "--seeds", "1", "--steps", "10", "--eval-rel-sem", "0.2", "--bootstrap", "2"],
    "snmf_sweep": ["--sigmas", "0.02", "--seeds", "1", "--steps", "10", "--outer-iterations", "2"],
    "cis_search": ["--ps", "0.1", "--d-ratios", "0.5", "--n-features", "10", "--seeds", "2", "--steps", "10"]
    + ["--batch-size", "32", "--eval-batches", "1", "--scaling-ns", "10"],
    "device_check": ["--n-features", "20", "--d-mlp", "10", "--batch-size", "64", "--check-models", "2"]
    + ["--short-steps", "5", "--check-steps", "5", "--ks", "1", "--chunk-steps", "5"],
}
# Experiments that write a JSON report (its "options" under argparse's names) instead of
# results and figures.
REPORTS = {"device_check": "report.json"}


class _Parsed(Exception):
    """Raised in place of parsing, once an experiment's ``main`` has built its parser."""


def parser_of(module) -> argparse.ArgumentParser | None:
    """The parser of an experiment: its ``build_parser()``, or else the one its ``main``
    builds (caught as it starts parsing, before anything runs); None without argparse."""
    if hasattr(module, "build_parser"):
        return module.build_parser()
    if "ArgumentParser" not in inspect.getsource(module):
        return None
    built = []

    def capture(parser, *args, **kwargs):
        built.append(parser)
        raise _Parsed

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", capture):
        try:
            module.main([])
        except _Parsed:
            pass
    assert built, f"{module.__name__}.main() never parsed its arguments"
    return built[0]


def offered_choices(parser: argparse.ArgumentParser | None) -> list[tuple[str, str]]:
    """(option, choice) for every choice of every option; flags and free values offer none."""
    pairs = []
    if parser is None:
        return pairs
    for action in parser._actions:
        choices = action.choices if action.choices is not None else getattr(action.type, "choices", None)
        if action.option_strings and choices is not None:
            pairs += [(option_name(action), str(choice)) for choice in choices]
    return pairs


def list_valued(parser: argparse.ArgumentParser, option: str) -> bool:
    """Whether ``option`` takes a comma-separated list of its choices (a ``choice_list`` type)."""
    action = next(action for action in parser._actions if option in action.option_strings)
    return action.choices is None and getattr(action.type, "choices", None) is not None


def experiment_modules() -> list[str]:
    names = [info.name for info in pkgutil.iter_modules(experiments.__path__) if not info.name.startswith("_")]
    return [name for name in names if hasattr(importlib.import_module(f"experiments.{name}"), "main")]


PARSERS = {name: parser_of(importlib.import_module(f"experiments.{name}")) for name in experiment_modules()}
WALK = [(name, option, choice) for name, parser in PARSERS.items() for option, choice in offered_choices(parser)]


def shared_out(walk: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """``walk`` with each shared one-valued option's choices dealt round-robin to the
    experiments that offer it (see the module docstring); every other choice as it is."""
    offered: dict[tuple[str, str], list[str]] = {}
    for name, option, choice in walk:
        offered.setdefault((name, option), []).append(choice)
    by_option: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (name, option), choices in offered.items():
        if not list_valued(PARSERS[name], option):
            by_option.setdefault((option, tuple(choices)), []).append(name)
    dealt, shared = [], set()
    for (option, choices), names in by_option.items():
        if len(names) > 1:
            shared |= {(name, option) for name in names}
            dealt += [
                (names[i % len(names)], option, choices[i % len(choices)])
                for i in range(max(map(len, (names, choices))))
            ]
    return [entry for entry in walk if entry[:2] not in shared] + sorted(set(dealt))


def runs(walk: list[tuple[str, str, str]]) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """The runs that cover ``walk``: (experiment, [(option, its choices in this run)]).

    A list-valued option gets all its choices in an experiment's first run; the k-th run
    takes the k-th choice of each one-valued option (an option with fewer choices sits out
    the later runs)."""
    planned: dict[str, list[list[tuple[str, list[str]]]]] = {}
    for name, option, choice in walk:
        runs_of = planned.setdefault(name, [])
        index = 0 if list_valued(PARSERS[name], option) else sum(option == o for run in runs_of for o, _ in run)
        runs_of += [[] for _ in range(index + 1 - len(runs_of))]
        given = dict(runs_of[index])
        if option in given:
            given[option].append(choice)
        else:
            runs_of[index].append((option, [choice]))
    return [(name, pairs) for name, runs_of in planned.items() for pairs in runs_of]


RUNS = runs(shared_out(WALK))


def test_the_walk_finds_every_mixing_family_and_every_experiment_has_a_tiny_command():
    walked = {(name, option): set() for name, option, _ in WALK}
    for name, option, choice in WALK:
        walked[name, option].add(choice)
    for name in ("scale_sweep", "sparsity_regimes", "lr_sweep", "transplant"):
        assert walked[name, "--mixing"] == set(ccjax.MIXING_NAMES)
    assert walked["sigma_sweep", "--families"] == {"symmetric", "asymmetric"}  # a choice_list type
    missing = sorted({name for name, _, _ in WALK} - set(TINY))
    assert not missing, f"add a tiny command line to TINY for {missing}: they offer choices"
    covered = [(name, option, choice) for name, pairs in RUNS for option, choices in pairs for choice in choices]
    assert sorted(covered) == sorted(shared_out(WALK))  # every planned choice in exactly one run
    assert {(option, choice) for _, option, choice in covered} == {(option, choice) for _, option, choice in WALK}
    assert {(name, option) for name, option, _ in covered} == {(name, option) for name, option, _ in WALK}
    mixing_runs = [name for name, option, _ in covered if option == "--mixing"]
    assert len(mixing_runs) == len(ccjax.MIXING_NAMES)  # shared out: each family once, not once per experiment
    for name, pairs in RUNS:  # one choice per run of a one-valued option
        assert all(len(choices) == 1 or list_valued(PARSERS[name], option) for option, choices in pairs)


def run_id(name: str, pairs: list[tuple[str, list[str]]]) -> str:
    return f"{name} " + " ".join(f"{option} {','.join(choices)}" for option, choices in pairs)


@pytest.mark.parametrize("name, pairs", RUNS, ids=[run_id(name, pairs) for name, pairs in RUNS])
def test_every_offered_choice_runs_to_written_results_and_figures(name, pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so that a stray write to figures/ or results/ would show up here
    out = tmp_path / "out"
    argv = [*TINY[name], *(word for option, choices in pairs for word in (option, ",".join(choices)))]
    assert importlib.import_module(f"experiments.{name}").main([*argv, "--out", str(out)]) == 0
    if name in REPORTS:
        report = json.loads((out / REPORTS[name]).read_text())
        options = {"--" + dest.replace("_", "-"): value for dest, value in report["options"].items()}
    else:
        options = ccjax.load_results(out)[1]["options"]
        assert list(out.glob("*.png")), "a custom --out keeps the figures with the results"
    for option, choices in pairs:  # every choice reached the run
        recorded = options[option]
        for choice in choices:
            assert choice in recorded if isinstance(recorded, list) else recorded == choice
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]  # nothing under figures/ or results/
