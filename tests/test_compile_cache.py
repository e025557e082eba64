"""The persistent compilation cache (issue 22, item 1): ``import ccjax`` changes no JAX setting,
``ccjax.enable_compile_cache`` turns the cache on, and a second experiment process reads its
compiled programs back instead of compiling them, with the same results. Compiles and cache
hits are counted (never timed), in real processes: JAX fixes its cache at a process's first
compile, and this test session already has one (conftest)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration  # real processes: `pytest -m integration`
ROOT = Path(__file__).resolve().parents[1]
LIBRARY_SCRIPT = """
import json, sys
import jax
import ccjax
untouched = jax.config.jax_compilation_cache_dir is None
path = ccjax.enable_compile_cache(sys.argv[1])
with ccjax.engine.counting_compile_cache() as counts:
    jax.jit(lambda x: (x @ x.T).sum())(jax.numpy.ones((8, 8))).block_until_ready()
print(json.dumps({"untouched": untouched, "path": str(path)} | counts.__dict__))
"""
TINY_RUN = ["--lrs", "3e-3", "--seeds", "1", "--steps", "10", "--batch-size", "256", "--eval-rel-sem", "0.2"]


def python(args: list[str], cache: Path) -> subprocess.CompletedProcess:
    environment = os.environ | {"CCJAX_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_import_changes_nothing_and_the_call_turns_the_cache_on_for_the_next_process(tmp_path):
    first, second = (json.loads(python(["-c", LIBRARY_SCRIPT, str(tmp_path)], tmp_path).stdout) for _ in range(2))
    assert first["untouched"] and first["path"] == str(tmp_path)
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled and written
    assert second["hits"] == first["misses"] and second["misses"] == 0  # all read back


def run_lr_sweep(out: Path, cache: Path, *extra: str) -> tuple[dict, dict]:
    done = python(["-m", "experiments.lr_sweep", *TINY_RUN, *extra, "--out", str(out)], cache)
    manifest = json.loads((out / "manifest.json").read_text())
    return manifest["compile_cache"], {"stderr": done.stderr, "arrays": dict(np.load(out / "results.npz"))}


def test_a_second_run_reads_its_programs_back_with_the_same_results(tmp_path):
    cache = tmp_path / "cache"
    first, run1 = run_lr_sweep(tmp_path / "first", cache)
    second, run2 = run_lr_sweep(tmp_path / "second", cache)
    assert first["dir"] == second["dir"] == str(cache)
    assert first["hits"] == 0 and first["misses"] >= 2  # compiled and written: the training, the evaluation, ...
    assert second["misses"] == 0 and second["hits"] == first["misses"]  # every program read back
    assert f"{second['hits']} programs read back, 0 compiled" in run2["stderr"]
    for name, array in run1["arrays"].items():
        assert np.array_equal(array, run2["arrays"][name], equal_nan=True), name


def test_no_compile_cache_compiles_afresh_and_writes_nothing(tmp_path):
    cache = tmp_path / "cache"
    record, _ = run_lr_sweep(tmp_path / "out", cache, "--no-compile-cache")
    assert record == {"dir": None, "hits": 0, "misses": 0}
    assert not cache.exists()
