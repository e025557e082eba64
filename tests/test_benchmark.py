"""The benchmark CLI runs end to end and reports a rate for every (path, mode, K)."""

import json

import jax
import pytest
from conftest import run_main

import ccjax
from benchmarks.throughput import print_forms, sparse_form_rates


@pytest.mark.integration
def test_benchmark_smoke(tmp_path):
    # --no-forms: the test process has 8 CPU devices, and the forms' timing runs a model on each
    # (test_sparse_form_rates_time_both_forms covers it at small shapes).
    args = ["--ks", "1", "--steps", "200", "--input-paths", "sparse", "--modes", "sweep,sequential", "--no-forms"]
    done = run_main("benchmarks.throughput", *args, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmark.json").read_text())
    rows = {(row["mode"], row["k"]): row for row in report["rows"]}
    assert set(rows) == {("sweep", 1), ("sequential", 1)}
    assert all(row["model_steps_per_s"] > 0 and row["compile_s"] > 0 for row in rows.values())
    assert report["environment"]["matmul_precision"] == "highest"
    assert "model-steps/s" in done.stdout
    # Progress with an ETA on stderr, one line per timing and one at the end.
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[0/2", "[1/2", "[2/2"]
    assert all("ETA" in line for line in progress)
    # The accelerator layout's cost analysis, against the matmul minimum and three chips' peaks.
    cost = report["accelerator_step_cost"]
    assert cost["flops_per_model_step"] <= 1.3 * cost["matmul_minimum_flops"] == 1.3 * 143_360_000
    assert set(cost["implied_model_steps_per_s"]) == {"H100 SXM", "H200 SXM", "TPU v5e"}
    assert "matmul minimum" in done.stdout and "rare branches" in done.stdout
    assert "sparse_forms" not in report and "Gram form" not in done.stdout


def test_sparse_form_rates_time_both_forms(capsys):
    # Two of the test process's 8 devices: each device compiles each form for itself.
    config = ccjax.TrainConfig(n_features=20, d_mlp=10, d_embed=50, batch_size=64, p=0.1, steps=10, log_every=10)
    forms = sparse_form_rates(config, repeats=1, steps=5, devices=jax.local_devices()[:2])
    assert set(forms) == {"gram", "direct", "devices"} and forms["devices"] == 2
    assert forms["gram"] > 0 and forms["direct"] > 0
    print_forms(forms)
    assert "Gram form" in capsys.readouterr().out


def test_benchmark_rejects_bad_input():
    done = run_main("benchmarks.throughput", "--modes", "fast")
    assert done.returncode == 2
    assert "--modes" in done.stderr
