"""More than one host (jax.distributed): two local CPU processes with two devices each
train one ``scale_sweep`` together and must give the results of a single 4-device
process; a process that dies leaves the other with a clear error, and ``--resume``
finishes the job.

Every run is a subprocess (``jax.distributed`` must start before JAX's backends, which
this test process has started). CPU processes exchange data over gloo on localhost.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import ROOT

import ccjax
from ccjax.engine._sharding import local_models, model_sharding, process_rows, put_models, to_host
from experiments import scale_sweep
from experiments._experiment import result_identity

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux", reason="gloo CPU collectives are tested on Linux"),
]

# 4 models (one per device); 20 chunks of 10 steps, each checkpointed.
ARGS = ["--scales", "0,1", "--seeds", "2", "--steps", "200", "--batch-size", "64", "--d-embed", "50"]
ARGS += ["--log-every", "10", "--eval-rel-sem", "0.1"]
TIMEOUT = 300  # seconds any one run may take before the test calls it a hang


def environment(devices: int) -> dict:
    # Fast compiles (as in conftest; the same for every run, so results stay comparable).
    flags = f"--xla_force_host_platform_device_count={devices} --xla_backend_optimization_level=0"
    flags += " --xla_cpu_use_fusion_emitters=false"
    return os.environ | {"XLA_FLAGS": flags, "PYTHONPATH": str(ROOT)}


def command(out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "experiments.scale_sweep", *ARGS, "--out", str(out), "--figure", f"{out}.png", *extra]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def start_pair(out, *extra: str, out_1=None) -> list[subprocess.Popen]:
    """Two processes of one run, with two CPU devices each (process 1 writing to ``out_1``
    if given, else to ``out`` too)."""
    coordinator = ["--coordinator", f"localhost:{free_port()}", "--num-processes", "2"]
    return [
        subprocess.Popen(
            command(out if index == 0 or out_1 is None else out_1, *coordinator, "--process-id", str(index), *extra),
            cwd=ROOT,
            env=environment(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]


def finish(processes: list[subprocess.Popen]) -> list[tuple[int, str]]:
    """(return code, stderr) of each process; kills them all if one hangs."""
    results = []
    try:
        for process in processes:
            _, err = process.communicate(timeout=TIMEOUT)
            results.append((process.returncode, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def assert_same_results(out, reference) -> None:
    expected, _ = ccjax.load_results(reference)
    arrays, manifest = ccjax.load_results(out)
    assert sorted(arrays) == sorted(expected)
    for name in expected:  # training is per model (no cross-device arithmetic): all bitwise
        assert np.array_equal(arrays[name], expected[name]), name
    assert manifest["environment"]["process_count"] == 2
    assert manifest["environment"]["device_count"] == 4


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("multihost") / "single"
    done = subprocess.run(command(out), cwd=ROOT, env=environment(4), capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert ccjax.load_results(out)[1]["environment"]["process_count"] == 1
    return out


def test_two_processes_give_the_results_of_one(reference, tmp_path):
    # Two model chunks per step: each process parks its own models on its host between turns.
    (code0, err0), (code1, err1) = finish(start_pair(tmp_path / "pair", "--max-models-per-call", "2"))
    assert code0 == 0, err0
    assert code1 == 0, err1
    assert f"wrote {tmp_path / 'pair'}" in err0
    assert "wrote" not in err1  # only process 0 writes
    assert_same_results(tmp_path / "pair", reference)


@pytest.mark.slow  # three real processes (23 s); test_two_processes_give_the_results_of_one stays in the default run
def test_a_dead_process_stops_the_other_and_resume_finishes(reference, tmp_path):
    out = tmp_path / "pair"
    processes = start_pair(out)
    deadline = time.monotonic() + TIMEOUT
    while not list((out / "checkpoints").glob("sweep-*.npz")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes), "no checkpoint"
        time.sleep(0.02)
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    (code0, err0), _ = finish(processes)
    assert time.monotonic() - killed_at < 60  # stopped at its next collective, no hang
    assert code0 == 1
    assert "another process of this run died" in err0 and "--resume" in err0
    assert not (out / ccjax.io.RESULTS_FILE).exists()
    checkpoint = ccjax.load_checkpoint(next((out / "checkpoints").glob("sweep-*.npz")))
    assert 0 < checkpoint.intervals_done < 20  # it really stopped mid-run

    # A process that cannot see the checkpoint (here: another --out) must not train from scratch.
    for code, err in finish(start_pair(out, "--resume", out_1=tmp_path / "elsewhere")):
        assert code == 2 and "every process must read the same checkpoint" in err, err
    assert not (tmp_path / "elsewhere").exists()

    (code0, err0), (code1, err1) = finish(start_pair(out, "--resume"))
    assert code0 == 0, err0
    assert code1 == 0, err1
    assert "resuming seed x scale from its checkpoint at step" in err1
    assert not (out / "checkpoints").exists()
    assert_same_results(out, reference)


def test_one_process_holds_every_row_and_round_trips_keys():
    devices, _, sharding = model_sharding(None, 8)
    assert len(devices) == 8 and process_rows(sharding, 8) == slice(0, 8)
    tree = {"x": np.arange(16, dtype=np.float32).reshape(8, 2), "key": jax.random.split(jax.random.key(3), 8)}
    placed = put_models(tree, sharding, 8)
    assert placed["x"].sharding == sharding and placed["key"].sharding == sharding
    back = local_models(placed, slice(0, 8))
    np.testing.assert_array_equal(back["x"], tree["x"])
    np.testing.assert_array_equal(jax.random.key_data(back["key"]), jax.random.key_data(tree["key"]))
    np.testing.assert_array_equal(to_host(placed["x"]), tree["x"])


DISTRIBUTED_USAGE = [
    (["--coordinator", "localhost:1234", "--num-processes", "2"], "go together"),
    (["--coordinator", "localhost", "--num-processes", "2", "--process-id", "0"], "is not HOST:PORT"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "must be below --num-processes"),
    (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "-1"], "non-negative integer"),
    (["--distributed"], "could not join the multi-process run"),  # no cluster here (and JAX has started)
]


@pytest.mark.parametrize("argv, message", DISTRIBUTED_USAGE, ids=[" ".join(a) for a, _ in DISTRIBUTED_USAGE])
def test_bad_distributed_options_are_usage_errors(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        scale_sweep.main([*argv, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_processes_of_one_run_share_its_identity():
    """--resume accepts checkpoints of any process (and of another process count)."""
    base = ["--seeds", "2", "--out", "x"]
    zero = [*base, "--coordinator", "h:1", "--num-processes", "2", "--process-id", "0"]
    assert result_identity(zero) == result_identity([*base, "--process-id", "1", "--distributed"]) == ["--seeds", "2"]
