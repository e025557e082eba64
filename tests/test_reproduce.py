"""experiments.reproduce: stage reuse, the report, and its comparison rules."""

import functools
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_main

from ccjax.report import compare_range, compare_value
from experiments import reproduce
from experiments._experiment import result_identity

run = functools.partial(run_main, "reproduce")


def test_output_and_run_control_flags_do_not_count_when_matching_a_saved_command():
    argv = ["--seeds", "2", "--out", "a", "--figures=b", "--figure", "c.png", "--resume", "--overwrite"]
    argv += ["--max-models-per-call", "3"]
    assert result_identity(argv) == ["--seeds", "2"]


def test_every_stage_names_an_experiment_module():
    for stage in reproduce.STAGES:
        assert (ROOT / "experiments" / f"{stage.module}.py").exists(), stage
    assert len(set(reproduce.STAGE_NAMES)) == len(reproduce.STAGE_NAMES)


def test_compare_value_uses_two_combined_standard_errors():
    assert compare_value("x", "q", 0.0700, [0.0715, 0.0717, 0.0713]).agrees  # 0.0015 < 2 sqrt(SEM² + 0.001²)
    assert not compare_value("x", "q", 0.0700, [0.0730, 0.0731, 0.0729]).agrees
    assert compare_value("x", "q", 1 / 6, [1 / 6], exact=True, read_error=1e-6).ours.endswith("(exact)")
    assert compare_range("x", "q", 0.02, 0.028, 0.029, 0.001).agrees
    assert not compare_range("x", "q", 0.02, 0.028, 0.035, 0.001).agrees
    assert not compare_range("x", "q", 0.02, 0.028, math.nan, 0.001).agrees


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    done = run("--quick", "--only", "transplant", "--out", str(out), "--no-compile-cache")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


@pytest.mark.integration  # reproduce in a real process
def test_quick_stages_write_results_figures_and_report(quick):
    out, _ = quick
    assert (out / "transplant" / "manifest.json").exists()
    assert (out / "figures" / "transplant.png").exists()
    report = (out / "REPRODUCTION.md").read_text()
    assert "quick smoke run: NOT paper scale" in report
    assert "Experiment 4: transplant / fine-tune" in report and "Errata" in report
    assert "Not run: no results" in report  # the stages left out
    log = json.loads((out / "reproduce.json").read_text())
    assert set(log) == {"transplant"} and log["transplant"]["returncode"] == 0
    assert "--no-compile-cache" in log["transplant"]["argv"]  # forwarded to the stage, which kept no cache
    assert json.loads((out / "transplant" / "manifest.json").read_text())["compile_cache"]["dir"] is None


@pytest.mark.integration
def test_a_second_invocation_reuses_matching_results(quick):
    out, _ = quick
    again = run("--quick", "--only", "transplant", "--out", str(out))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "reusing them" in again.stderr


@pytest.mark.parametrize("args", [["--only", "sigma"], ["--skip", ""], ["--only", "transplant,,dense_offset"]])
def test_bad_stage_lists_are_refused(args):
    done = run(*args)
    assert done.returncode == 2 and "stages from" in done.stderr and "Traceback" not in done.stderr


TOY_EXPERIMENT = '''"""A toy experiment: one file, with its stage in the paper's reproduction."""

from ccjax.report import compare_value

from ._spec import Experiment, Stage

EXPERIMENT = "toy"
DESCRIPTION = __doc__


def run(args, session):
    return {"value": [0.5]}, {}


def summary(arrays, manifest):
    return "toy"


def figure(arrays, manifest):
    return None


def compare(arrays, manifest):
    return [compare_value("toy", "a value", 0.5, arrays["value"])]


STAGES = (Stage("toy", "A toy stage", 9.5, quick_args=("--steps", "1"), compare=compare),)
SPEC = Experiment.from_module(__name__, title="a toy", sweep_controls=False)
'''


def test_a_new_experiment_with_a_stage_is_one_file(tmp_path):
    """Dropping one module into a copy of experiments/ adds its stage to reproduce and its
    section to the report, in its declared order, with no other edit (a real process: the
    stages are collected at import)."""
    shutil.copytree(ROOT / "experiments", tmp_path / "experiments", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "experiments" / "toy.py").write_text(TOY_EXPERIMENT)
    script = (
        "from experiments import reproduce\n"
        "toy = reproduce.STAGES[-1]\n"
        "print(reproduce.STAGE_NAMES[-2:], toy.module, toy.compare({'value': [0.5]}, {}))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "('rank_sweep_paper_code_diagonal_kept', 'toy') toy" in ran.stdout
    assert "agrees=True" in ran.stdout
