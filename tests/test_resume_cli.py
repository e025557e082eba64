"""Issue 5 through the experiment CLIs: a killed run resumes to identical results,
results are never silently replaced, diverged models are reported and excluded, and bad
input is a one-line usage error."""

import dataclasses
import json
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_main, run_module

import ccjax
from ccjax.engine import sweep_fingerprint
from experiments import lr_sweep, scale_sweep

# About 20 checkpointed chunks of 200 steps: long enough to kill the run mid-way.
LONG = ["--scales", "0,1", "--seeds", "2", "--steps", "4000", "--batch-size", "64", "--d-embed", "50"]
LONG += ["--log-every", "10", "--eval-rel-sem", "0.01"]


def outputs(tmp, name: str) -> list[str]:
    return ["--out", str(tmp / name), "--figure", str(tmp / f"{name}.png")]


@pytest.mark.slow  # a real process killed mid-run (30 s); the in-process resume tests cover the same path by default
def test_a_killed_sweep_resumes_to_identical_results(tmp_path, capsys, request):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "experiments.scale_sweep", *LONG, *outputs(tmp_path, "killed")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The uninterrupted reference runs alongside, so the two start-ups overlap.
    reference_log = tmp_path / "reference.log"
    with reference_log.open("w") as log:
        reference_command = [sys.executable, "-m", "experiments.scale_sweep", *LONG, *outputs(tmp_path, "reference")]
        reference = subprocess.Popen(reference_command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    request.addfinalizer(reference.kill)  # never left running by a failed assertion
    deadline = time.monotonic() + 300
    while not list((out / "checkpoints").glob("sweep-*.npz")) and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before its first checkpoint"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: like a preempted machine
    process.wait()
    assert not (out / ccjax.io.RESULTS_FILE).exists()
    checkpoint = ccjax.load_checkpoint(next((out / "checkpoints").glob("sweep-*.npz")))
    assert 0 < checkpoint.intervals_done < 400  # it really stopped mid-run

    with pytest.raises(SystemExit) as refused:
        scale_sweep.main([*LONG, *outputs(tmp_path, "killed")])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "checkpoints of an interrupted run" in err and "--resume" in err

    resumed = run_module("scale_sweep", *LONG, *outputs(tmp_path, "killed"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert reference.wait(timeout=600) == 0, reference_log.read_text()
    assert "resuming seed x scale from its checkpoint at step" in resumed.stderr
    assert not (out / "checkpoints").exists()  # removed once the results are saved

    expected, _ = ccjax.load_results(tmp_path / "reference")
    arrays, manifest = ccjax.load_results(out)
    assert sorted(arrays) == sorted(expected)
    for name in expected:
        assert np.array_equal(arrays[name], expected[name]), name
    assert "--resume" in manifest["argv"]


TINY_LR = ["--lrs", "3e-3,1e6", "--seeds", "1", "--steps", "30", "--batch-size", "64", "--eval-rel-sem", "0.02"]


def lr_run(tmp_path, *extra: str) -> int:
    argv = [*TINY_LR, "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "figures"), *extra]
    try:
        return lr_sweep.main(argv)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.fixture(scope="module")
def diverged_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lr_sweep")
    done = run_main("lr_sweep", *TINY_LR, "--out", str(tmp / "out"), "--figures", str(tmp / "figures"))
    assert done.returncode == 0, done.stderr
    return tmp, done


def test_a_diverging_learning_rate_is_reported_and_excluded(diverged_run):
    tmp, done = diverged_run
    assert "warning: model seed=0, lr=1e+06 (step 30) diverged" in done.stderr
    arrays, manifest = ccjax.load_results(tmp / "out")
    assert manifest["diverged_models"] == [{"sweep": "seed x lr, embedding", "seed": 0, "lr": 1e6, "step": 30}]
    assert arrays["diverged_step"].tolist() == [[-1, 30]]
    assert np.isfinite(arrays["loss_per_feature"][0, 0]) and np.isnan(arrays["loss_per_feature"][0, 1])
    table = done.stdout.splitlines()
    row = next(line for line in table if line.strip().startswith("1e+06"))
    assert "n/a" in row and row.strip().endswith("0/1")
    assert any(line.startswith("note: 1 model diverged") and "seed=0, lr=1e+06" in line for line in table)
    assert (tmp / "figures" / "lr_sweep.png").stat().st_size > 0


def test_the_diverged_note_is_kept_when_replotting(diverged_run, capsys):
    tmp, _ = diverged_run
    assert lr_sweep.main(["--plot-only", "--out", str(tmp / "out"), "--figures", str(tmp / "replot")]) == 0
    assert "note: 1 model diverged" in capsys.readouterr().out


def test_results_are_never_replaced_without_overwrite(tmp_path, capsys):
    assert lr_run(tmp_path) == 0
    first = (tmp_path / "out" / ccjax.io.MANIFEST_FILE).read_text()
    capsys.readouterr()

    assert lr_run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "already holds results of lr_sweep" in err and "--overwrite" in err and "Traceback" not in err
    assert (tmp_path / "out" / ccjax.io.MANIFEST_FILE).read_text() == first

    assert lr_run(tmp_path, "--resume") == 0  # finished: reported, not retrained
    captured = capsys.readouterr()
    assert "already holds the finished results" in captured.err and "training" not in captured.err
    assert "1e+06" in captured.out

    assert lr_run(tmp_path, "--overwrite") == 0
    assert json.loads((tmp_path / "out" / ccjax.io.MANIFEST_FILE).read_text())["argv"][-1] == "--overwrite"


def test_another_experiments_results_are_never_replaced(diverged_run, capsys):
    tmp, _ = diverged_run
    argv = ["--out", str(tmp / "out"), "--figure", str(tmp / "x.png"), "--overwrite"]
    with pytest.raises(SystemExit) as exit_info:
        scale_sweep.main(argv)
    assert exit_info.value.code == 2
    assert "holds results of the experiment 'lr_sweep', not scale_sweep" in capsys.readouterr().err


def test_unreadable_results_need_overwrite(tmp_path, capsys):
    assert lr_run(tmp_path) == 0
    (tmp_path / "out" / ccjax.io.RESULTS_FILE).write_bytes(b"not a zip file")
    capsys.readouterr()
    assert lr_run(tmp_path) == 2
    assert "holds unreadable results" in capsys.readouterr().err
    assert lr_run(tmp_path, "--overwrite") == 0
    ccjax.load_results(tmp_path / "out")


def test_resume_refuses_checkpoints_of_another_command(tmp_path, capsys):
    checkpoints = tmp_path / "out" / "checkpoints"
    checkpoints.mkdir(parents=True)
    other = {
        "experiment": "lr_sweep",
        "argv": ["--lrs", "1e-2"],
        "command": "python -m experiments.lr_sweep --lrs 1e-2",
    }
    (checkpoints / "run.json").write_text(json.dumps(other))
    assert lr_run(tmp_path, "--resume") == 2
    err = capsys.readouterr().err
    assert "belong to another command" in err and "--lrs 1e-2" in err
    assert (checkpoints / "run.json").exists()  # nothing was discarded


BAD = [
    (["--lrs", "0,1e-3"], "learning rates must be > 0"),
    (["--lrs", ""], "empty string"),
    (["--lrs", "1e-3,,1e-2"], "empty entry"),
    (["--lrs", "1e-3,inf"], "not a finite number"),
    (["--scale", "-1"], ">= 0"),
    (["--scale", "nan"], "finite"),
    (["--p", "0"], "(0, 1]"),
    (["--p", "2"], "(0, 1]"),
    (["--steps", "0"], "positive integer"),
    (["--batch-size", "-3"], "positive integer"),
    (["--seeds", "0"], ">= 1"),
    (["--mixing", "gaussian"], "invalid choice"),
    (["--max-models-per-call", "0"], "positive integer"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(argv) for argv, _ in BAD])
def test_bad_input_is_a_one_line_usage_error(argv, message, tmp_path, capsys):
    assert lr_run(tmp_path, *argv) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_corrupt_checkpoint_is_a_clear_error(tmp_path, capsys):
    argv = [*TINY_LR, "--out", str(tmp_path / "out"), "--figures", str(tmp_path / "figures")]
    command = "python -m experiments.lr_sweep " + " ".join(argv)
    checkpoints = tmp_path / "out" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "run.json").write_text(json.dumps({"experiment": "lr_sweep", "argv": argv, "command": command}))
    config = dataclasses.replace(lr_sweep.SPEC.config, steps=30, batch_size=64)
    grid = ccjax.make_grid({"seed": [0], "lr": [3e-3, 1e6]})
    (checkpoints / f"sweep-{sweep_fingerprint(config, grid)[:16]}.npz").write_bytes(b"PK\x03\x04 truncated")
    assert lr_run(tmp_path, "--resume") == 2
    err = capsys.readouterr().err
    assert "cannot read the checkpoint" in err and "--overwrite" in err and "Traceback" not in err
    assert lr_run(tmp_path, "--overwrite") == 0


# Issue 11, item 5: --resume compares the resolved options, not the command line.
TINY_SCALES = ["--seeds", "1", "--steps", "10", "--batch-size", "32", "--d-embed", "20", "--eval-rel-sem", "0.2"]


def scale_run(out, *argv: str) -> int:
    try:
        return scale_sweep.main([*TINY_SCALES, "--out", str(out), *argv])
    except SystemExit as exit_info:
        return exit_info.code


def interrupted(out, options: dict, argv: list[str]) -> None:
    """Leave ``out`` as a run with these options would after an interruption (run.json only)."""
    (out / ccjax.io.MANIFEST_FILE).unlink()
    (out / ccjax.io.RESULTS_FILE).unlink()
    (out / "checkpoints").mkdir()
    record = {"experiment": "scale_sweep", "argv": argv, "command": shlex.join(argv), "options": options}
    (out / "checkpoints" / "run.json").write_text(json.dumps(record))


def test_resume_accepts_the_same_options_spelt_differently(tmp_path, capsys):
    out = tmp_path / "out"
    assert scale_run(out, "--scales", "0,0.5,1,2") == 0
    capsys.readouterr()
    assert scale_run(out, "--resume") == 0  # --scales left at its default: the same values
    assert "already holds the finished results of this run" in capsys.readouterr().err
    options = ccjax.load_results(out)[1]["options"]
    assert options["--scales"] == [0.0, 0.5, 1.0, 2.0] and options["--seeds"] == [0]

    interrupted(out, options, [*TINY_SCALES, "--scales", "0,0.5,1,2"])
    assert scale_run(out, "--resume", "--lr", "0.003") == 0  # the default lr, given
    assert "belong to another command" not in capsys.readouterr().err


def test_resume_with_another_value_names_the_option_and_both_values(tmp_path, capsys):
    out = tmp_path / "out"
    assert scale_run(out, "--scales", "0,0.5,1,2") == 0  # the shapes of the test above: no new compiles
    capsys.readouterr()
    assert scale_run(out, "--resume", "--scales", "0,2", "--lr", "1e-2") == 2
    err = capsys.readouterr().err
    assert "--scales: 0,0.5,1,2 there, 0,2 now" in err and "--lr: 0.003 there, 0.01 now" in err
    assert "--seeds" not in err.split("the options differ")[1]  # only the options that differ

    interrupted(out, ccjax.load_results(out)[1]["options"], ["--scales", "0,0.5,1,2"])
    assert scale_run(out, "--resume", "--p", "0.02") == 2
    err = capsys.readouterr().err
    assert "belong to another command" in err and "--p: 0.01 there, 0.02 now" in err
    assert (out / "checkpoints" / "run.json").exists()  # nothing was discarded


def test_an_option_added_since_a_run_was_saved_counts_as_its_default():
    from ccjax.io import option_differences

    saved = {"--lr": 0.003, "--scales": [0.0, 1.0]}
    defaults = {"--zero-diagonal": False}
    assert option_differences(saved, {**saved, "--zero-diagonal": False}, defaults) == []
    assert option_differences(saved, {**saved, "--zero-diagonal": True}, defaults) == [
        "--zero-diagonal: False there, True now"
    ]
    assert option_differences(saved, {**saved, "--lr": 0.0030000001}, defaults) == [
        "--lr: 0.003 there, 0.0030000001 now"  # never rounded to look equal
    ]
