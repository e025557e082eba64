"""The benchmark CLI runs end to end and reports a rate for every (path, mode, K)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_benchmark_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "experiments.benchmark", "--ks", "1", "--steps", "200"]
        + ["--input-paths", "sparse", "--modes", "sweep,sequential", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    rows = {(row["mode"], row["k"]): row for row in report["rows"]}
    assert set(rows) == {("sweep", 1), ("sequential", 1)}
    assert all(row["model_steps_per_s"] > 0 and row["compile_s"] > 0 for row in rows.values())
    assert report["environment"]["matmul_precision"] == "highest"
    assert "model-steps/s" in done.stdout


def test_benchmark_rejects_bad_input():
    done = subprocess.run(
        [sys.executable, "-m", "experiments.benchmark", "--modes", "fast"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--modes" in done.stderr
