"""The walkthroughs of docs/guide.md and docs/extending.md do what they say.

Every Python block of those pages runs in tests/test_doc_examples.py, in page order, with the
pages' own ``assert`` lines: the guide's checks of its API blocks (shapes, a resumed sweep equal
to the uninterrupted one bitwise, no diverged model, the naive model's exactly-one L/p of 1/12,
a saved config read back) and extending.md's checks of its task examples (the L4 task's naive
L/p of 0.05 within 4 SE, its training and evaluation on its own loss, the search task's naive
reference against Monte Carlo). The first test here keeps those lines in the executed blocks,
so that a page edit cannot drop a check silently; the second adds the mixing-family record
that docs/extending.md shows to a copy of the package, the one walkthrough a page cannot run
in place.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_doc_examples import shrunk_blocks

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"
EXTENDING = ROOT / "docs" / "extending.md"

# The checks each page's executed blocks make (formerly tests/test_readme.py on the README's
# API tour and search-task example, and tests/test_tasks.py::test_readme_task_example_runs).
CHECKS = {
    GUIDE: [
        "assert (resumed.params.w_in == partial.params.w_in).all()",
        "assert result.diverged_points() == []",
        "assert outputs.shape == (*result.grid.shape, *x.shape)",
        "assert estimate.loss_per_feature.shape == (len(seeds), 4)",
        "assert curve.loss_per_feature.shape == (len(seeds), 4, 4)",
        "assert abs(float(ccjax.exactly_one_loss_per_feature(naive, 0.0 * M)) - 1 / 12) < 1e-6",
        "assert ccjax.io.saved_config(manifest) == config",
    ],
    EXTENDING: [
        "assert task.declared_hooks() == ()",
        "assert (abs(curve.loss_per_feature - 0.05) < 4 * curve.sem).all()",
        "assert result.task == task",
        "assert (result.history.mixing_term_per_feature == 0).all()",
        "assert (trained.loss_per_feature < 0.065).all()",
        "assert abs(float(check.mean) - task.naive_loss(20, 10, 0.05)) < 4 * float(check.sem)",
        "assert gain.shape == (2, 2, 1, 1)",
        "assert not (result.params.w_in[0, 0] == result.params.w_in[0, 1]).all()",
    ],
}


@pytest.mark.parametrize(
    "page, check", [(page, check) for page, checks in CHECKS.items() for check in checks], ids=lambda v: str(v)[:60]
)
def test_the_pages_make_their_checks_in_blocks_that_run(page, check):
    """Each check is a line of a Python block as the tests run it (after the shrinking
    replacements), not of a text block or a comment."""
    lines = {line.strip() for block in shrunk_blocks(page) for line in block.splitlines()}
    assert any(line == check or line.startswith(check + "  #") for line in lines), f"{page.name}: {check}"


def mixing_record() -> str:
    """The ``MixingFamily(...)`` record of extending.md's runnable block, as written there."""
    block = next(block for block in shrunk_blocks(EXTENDING) if "identity = MixingFamily(" in block)
    return re.search(r"^identity = (MixingFamily\(\n.*?^\))$", block, flags=re.S | re.M).group(1)


def test_the_mixing_record_is_found_in_the_page():
    record = mixing_record()
    assert record.startswith('MixingFamily(\n    "identity",') and record.endswith("\n)")


MIXING_SCRIPT = """
import json, sys
import numpy as np
import ccjax
from experiments import scale_sweep

family = ccjax.MIXING_FAMILIES["identity"]
assert ccjax.MIXING_NAMES[-1] == "identity", ccjax.MIXING_NAMES
config = ccjax.TrainConfig(n_features=20, d_mlp=10, batch_size=64, steps=20, log_every=10, mixing="identity")
result = ccjax.sweep(config, {"seed": [0], "mixing": ["none", "identity"]})
assert np.array_equal(result.mixing[0, 1], np.eye(20)) and not result.mixing[0, 0].any()
out = sys.argv[1]
argv = ["--mixing", "identity", "--scales", "1", "--seeds", "1", "--steps", "10", "--eval-rel-sem", "0.2"]
assert scale_sweep.main([*argv, "--out", out]) == 0
manifest = json.load(open(out + "/manifest.json"))
assert manifest["mixing"]["formula"] == family.formula, manifest["mixing"]
print("identity family ok")
"""


def test_adding_a_mixing_family_is_one_record(tmp_path):
    """extending.md's "A mixing family" walkthrough: its record, appended to the registry of
    a copy of the package and nothing else, is a family that make_mixing builds, TrainConfig
    and a sweep over "mixing" accept, and an experiment's --mixing trains and records (a real
    process, as the copy must be imported afresh)."""
    record = mixing_record()
    for package in ("ccjax", "experiments"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    mixing = tmp_path / "ccjax" / "problem" / "_mixing.py"
    source = mixing.read_text()
    end = "\n)\nMIXING_FAMILIES"
    assert source.count(end) == 1  # the registry tuple ends right before MIXING_FAMILIES
    indented = "\n".join("    " + line for line in record.splitlines()) + ","
    mixing.write_text(source.replace(end, "\n" + indented + end))
    environment = {**os.environ, "PYTHONPATH": str(tmp_path)}
    ran = subprocess.run(
        [sys.executable, "-c", MIXING_SCRIPT, str(tmp_path / "out")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "identity family ok" in ran.stdout
