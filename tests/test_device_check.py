"""``python -m experiments.device_check`` end to end on CPU, at tiny shapes."""

import json

import jax
import pytest

from experiments import device_check

TINY = ["--n-features", "20", "--d-mlp", "10", "--batch-size", "64", "--check-models", "4", "--check-steps", "20"]


def limited_memory(real, split_k, out_of_memory_k):
    """``time_sweep`` on a device where the sweep splits ``split_k`` models into two calls
    and a one-call sweep of ``out_of_memory_k`` or more models runs out of memory."""

    def time_sweep(config, k, devices, max_models_per_call=None):
        if max_models_per_call is not None and max_models_per_call >= out_of_memory_k:
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 1.00GiB.")
        timing = real(config, k, devices, max_models_per_call)
        return timing._replace(models_per_call=k // 2) if k == split_k and max_models_per_call is None else timing

    return time_sweep


def test_device_check_reports_and_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device_check, "time_sweep", limited_memory(device_check.time_sweep, 4, 8))
    argv = [*TINY, "--paths", "dense", "--ks", "1,4", "--chunk-steps", "5", "--probe-steps", "5", "--max-k", "32"]
    assert device_check.main([*argv, "--out", str(tmp_path)]) == 0

    report = json.loads((tmp_path / "report.json").read_text())
    env = report["environment"]
    assert env["platform"] == "cpu" and env["device_count"] == len(jax.devices())
    assert env["matmul_precision"] == "highest" and env["jax"] == jax.__version__ and env["date"]
    check = report["correctness"]
    assert report["status"] == check["status"] == check["paths"]["dense"]["status"] == "PASS"
    assert check["rtol"] == device_check.DEFAULT_RTOL and check["n_models"] == 4 and check["steps"] == 20
    assert set(check["paths"]["dense"]["max_relative_difference"]) == {"final_loss", "w_in", "w_out"}
    rows = report["throughput"]["rows"]
    assert [(row["path"], row["k"], row["status"]) for row in rows] == [("dense", 1, "ok"), ("dense", 4, "ok")]
    assert all(row["model_steps_per_s"] > 0 and row["fraction_of_fp32_peak"] is None for row in rows)
    assert rows[0]["model_tflops_per_s"] == pytest.approx(rows[0]["model_steps_per_s"] * 12 * 64 * 20 * 10 / 1e12)
    # K = 4 was split into two calls, so it is probed in one; K = 8 ran out of memory
    # (both injected), so 16 and 32 were not tried.
    fit = report["largest_k"]
    assert [(probe["k"], probe["status"]) for probe in fit["probes"]] == [(4, "ok"), (8, "out of memory")]
    assert fit["largest_fitting_k"] == 4 and fit["limited_by"] == "out of memory at K=8"
    assert report["memory"]["peak_bytes_in_use"] is None  # CPU: not reported
    assert report["goals"]["torch_ratio"]["status"].startswith("not measured")
    assert report["goals"]["fp32_roofline"]["status"].startswith("unknown device")
    printed = capsys.readouterr()
    assert "PASS" in printed.out and "not reported" in printed.out and "ETA" in printed.err


def test_device_check_fails_on_a_mismatch(tmp_path, monkeypatch):
    """A 0.1% difference in the reference weights fails at the default tolerance (exit 1)
    and passes when --rtol allows it."""
    real = device_check.train_check_sweep

    def perturbed_reference(config, n_models, devices, group_size):
        result = real(config, n_models, devices, group_size)
        if group_size is not None:  # the device side
            return result
        return result._replace(params=jax.tree.map(lambda leaf: leaf * (1 + 1e-3), result.params))

    monkeypatch.setattr(device_check, "train_check_sweep", perturbed_reference)
    argv = [*TINY, "--paths", "dense", "--skip-throughput"]
    assert device_check.main([*argv, "--out", str(tmp_path / "strict")]) == 1
    report = json.loads((tmp_path / "strict" / "report.json").read_text())
    assert report["status"] == "FAIL" and report["throughput"]["rows"] == [] and report["largest_k"] is None
    assert report["correctness"]["paths"]["dense"]["max_relative_difference"]["w_in"] == pytest.approx(1e-3, rel=1e-2)
    assert device_check.main([*argv, "--rtol", "1e-2", "--out", str(tmp_path / "loose")]) == 0


def test_fp32_peaks_and_flops():
    assert device_check.fp32_peak("NVIDIA H100 80GB HBM3").tflops == 67.0
    assert device_check.fp32_peak("NVIDIA H100 PCIe").tflops == 51.0
    assert device_check.fp32_peak("NVIDIA H200").tflops == 67.0
    assert device_check.fp32_peak("NVIDIA A100-SXM4-80GB").tflops == 19.5
    assert device_check.fp32_peak("TPU v5 lite").tflops == pytest.approx(197 / 6)
    assert device_check.fp32_peak("NVIDIA L40S") is None and device_check.fp32_peak("cpu") is None
    # 3 passes x 2 matmuls x 2 B n d at paper shapes.
    assert device_check.model_flops_per_step(device_check.ccjax.TrainConfig()) == 3 * 2 * 2 * 2048 * 100 * 50
