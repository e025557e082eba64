"""The README's API tour runs as written (with fewer steps, seeds and samples)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_api_tour_runs():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    tour = next(block for block in blocks if "import jax, ccjax" in block)
    shorter = {"TrainConfig(steps=2000)": "TrainConfig(steps=60, batch_size=256, log_every=10)"}
    shorter |= {"range(5)": "range(2)", "(result)": "(result, rel_sem=0.02)", "0.1, 1.0])": "0.1, 1.0], rel_sem=0.02)"}
    for long, short in shorter.items():
        assert long in tour  # each shortening must apply
        tour = tour.replace(long, short)
    namespace: dict = {}
    exec(compile(tour, "README.md", "exec"), namespace)
    assert namespace["outputs"].shape == (2, 4, 1024, 100)
    assert namespace["estimate"].loss_per_feature.shape == (2, 4)
    assert namespace["curve"].loss_per_feature.shape == (2, 4, 4)
    assert (namespace["resumed"].params.w_in == namespace["partial"].params.w_in).all()
    assert namespace["result"].diverged_points() == []
    assert abs(float(ccjax_exactly_one(namespace)) - 1 / 12) < 1e-6


def ccjax_exactly_one(namespace):
    return namespace["ccjax"].exactly_one_loss_per_feature(namespace["naive"], 0.0 * namespace["M"])


def test_adding_a_search_task_runs_as_written():
    """The README's "Adding a search task" example, with fewer steps and evaluation samples."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "class AbsoluteValue(ccjax.Task)" in block)
    shorter = {"steps=1000": "steps=50", 'lr": [3e-3]}, tasks)': 'lr": [3e-3]}, tasks, cis.EvalBudget(2, 256))'}
    for long, short in shorter.items():
        assert long in example  # each shortening must apply
        example = example.replace(long, short)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    check, task = namespace["check"], namespace["task"]
    assert abs(float(check.mean) - task.naive_loss(20, 10, 0.05)) < 4 * float(check.sem)
    assert namespace["gain"].shape == (2, 2, 1, 1)


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
    """The README's "A new mixing family" walkthrough, as written: its record, added to the
    registry of a copy of the package and nothing else, is a family that make_mixing
    builds, TrainConfig and a sweep over "mixing" accept, and an experiment's --mixing
    trains and records (a real process, as the copy must be imported afresh)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    block = next(block for block in blocks if 'MixingFamily(\n        "identity"' in block)
    record = re.search(r"^    MixingFamily\(\n.*?^    \),\n", block, flags=re.S | re.M).group(0)
    root = README.parent
    for package in ("ccjax", "experiments"):
        shutil.copytree(root / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    mixing = tmp_path / "ccjax" / "problem" / "_mixing.py"
    source = mixing.read_text()
    end = "\n)\nMIXING_FAMILIES"
    assert source.count(end) == 1  # the registry tuple ends right before MIXING_FAMILIES
    mixing.write_text(source.replace(end, "\n" + record.rstrip("\n") + end))
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
