"""ccjax.io.ResultsFolder: what a run may do with its results folder (resume, replace or
refuse, with the experiment CLIs' messages), its run record, and its sweeps' checkpoint
files. One tiny sweep; everything else is files."""

import json

import numpy as np
import pytest
from conftest import small

import ccjax
from ccjax.io import CheckpointFile, ResultsFolder, ResultsFolderError, RunPlan, option_differences

OPTIONS = {"--scales": [0.0, 1.0], "--seeds": [0, 1], "--lr": 0.003}
COMMAND = "python -m experiments.toy --scales 0,1"


def finished(tmp_path, experiment="toy", options=OPTIONS) -> ResultsFolder:
    """A folder with the finished results of ``experiment`` run with ``options``."""
    folder = ResultsFolder(tmp_path / "out", "toy")
    manifest = {"experiment": experiment, "command": COMMAND, "options": options}
    ccjax.save_results(folder.path, {"x": np.arange(3)}, manifest)
    return folder


def interrupted(tmp_path, record=None) -> ResultsFolder:
    """A folder left by an interrupted run: its record and one sweep checkpoint file."""
    folder = ResultsFolder(tmp_path / "out", "toy")
    folder.start(record or {"experiment": "toy", "command": COMMAND, "options": OPTIONS})
    (folder.checkpoints / "sweep-0123456789abcdef.npz").write_bytes(b"old")
    return folder


def refusal(folder: ResultsFolder, options=OPTIONS, **flags) -> str:
    with pytest.raises(ResultsFolderError) as refused:
        folder.prepare(options, **flags)
    assert isinstance(refused.value, ccjax.ResultsError)
    return str(refused.value)


def test_an_empty_folder_starts_afresh(tmp_path):
    folder = ResultsFolder(tmp_path / "out", "toy")
    assert folder.prepare(OPTIONS) == RunPlan(None, False, None)
    assert folder.prepare(OPTIONS, resume=True) == RunPlan(
        note=f"--resume: no checkpoints in {folder.path}; starting afresh"
    )
    assert not folder.path.exists()  # deciding writes nothing


def test_finished_results_of_the_same_run_are_reported_under_resume(tmp_path):
    folder = finished(tmp_path)
    folder.checkpoints.mkdir()  # left over: removed with the report
    respelt = {"--lr": 0.003, "--seeds": [0, 1], "--scales": [0.0, 1.0]}
    plan = folder.prepare(respelt, resume=True)
    arrays, manifest = plan.finished
    assert arrays["x"].tolist() == [0, 1, 2] and manifest["command"] == COMMAND
    assert plan.note == f"--resume: {folder.path} already holds the finished results of this run; reporting them"
    assert not plan.discard and not folder.checkpoints.exists()
    assert folder.load()[1]["options"] == OPTIONS


def test_finished_results_are_replaced_only_with_overwrite(tmp_path):
    folder = finished(tmp_path)
    assert refusal(folder) == (
        f"--out {folder.path} already holds results of toy ({COMMAND}); pass --overwrite to replace them, "
        "--plot-only to redraw them, or choose another --out"
    )
    assert folder.prepare(OPTIONS, overwrite=True) == RunPlan()


def test_other_options_are_refused_naming_each_difference(tmp_path):
    folder = finished(tmp_path)
    now = {**OPTIONS, "--scales": [0.0, 0.5, 1.0, 2.0], "--lr": 0.01}
    message = refusal(folder, now, resume=True)
    assert message.endswith(
        "; the options differ: --scales: 0,1 there, 0,0.5,1,2 now; --lr: 0.003 there, 0.01 now; "
        "pass --overwrite to replace them, --plot-only to redraw them, or choose another --out"
    )


def test_another_experiments_results_are_refused_even_with_overwrite(tmp_path):
    folder = finished(tmp_path, experiment="other")
    assert refusal(folder, overwrite=True) == (
        f"--out {folder.path} holds results of the experiment 'other', not toy; choose another --out "
        "(results of another experiment are never replaced)"
    )
    with pytest.raises(ResultsFolderError, match="holds results of 'other', not toy$"):
        folder.load()


def test_unreadable_results_need_overwrite(tmp_path):
    folder = finished(tmp_path)
    (folder.path / ccjax.io.RESULTS_FILE).write_bytes(b"not a zip file")
    assert refusal(folder).startswith(f"--out {folder.path} holds unreadable results (cannot read ")
    assert refusal(folder).endswith("; pass --overwrite to replace them")
    assert folder.prepare(OPTIONS, overwrite=True) == RunPlan()


def test_an_interrupted_run_is_resumed_or_discarded_but_never_ignored(tmp_path):
    folder = interrupted(tmp_path)
    assert refusal(folder) == (
        f"--out {folder.path} holds checkpoints of an interrupted run ({COMMAND}); "
        "pass --resume to continue it or --overwrite to discard it"
    )
    assert folder.prepare(OPTIONS, resume=True) == RunPlan()  # continue: keep the checkpoints
    assert folder.prepare(OPTIONS, resume=True, overwrite=True) == RunPlan()
    plan = folder.prepare(OPTIONS, overwrite=True)
    assert plan == RunPlan(discard=True) and (folder.checkpoints / "sweep-0123456789abcdef.npz").exists()
    folder.start({"experiment": "toy", "options": {"--seeds": [0]}}, discard=plan.discard)
    assert [path.name for path in folder.checkpoints.iterdir()] == [ccjax.io.RUN_FILE]  # old sweep gone, no temp file
    assert folder.run_record() == {"experiment": "toy", "options": {"--seeds": [0]}}


def test_resuming_another_runs_checkpoints_is_refused(tmp_path):
    folder = interrupted(tmp_path)
    message = refusal(folder, {**OPTIONS, "--seeds": [0, 1, 2]}, resume=True)
    assert message == (
        f"--resume: the checkpoints in {folder.checkpoints} belong to another command ({COMMAND}); the options "
        "differ: --seeds: 0,1 there, 0,1,2 now; resume with that command's options, or pass --overwrite "
        "(without --resume) to discard them"
    )
    assert folder.prepare({**OPTIONS, "--seeds": [0, 1, 2]}, resume=True, overwrite=True).discard
    other = interrupted(tmp_path / "other", {"experiment": "lr_sweep", "options": OPTIONS})
    assert refusal(other, resume=True) == (
        f"--out {other.path} holds checkpoints of the experiment 'lr_sweep', not toy; choose another --out"
    )


def test_an_unreadable_run_record_is_an_unknown_command(tmp_path):
    folder = interrupted(tmp_path)
    (folder.checkpoints / ccjax.io.RUN_FILE).write_text("{not json")
    assert folder.run_record() == {}
    assert "interrupted run (unknown)" in refusal(folder)
    assert "belong to another command (unknown)" in refusal(folder, resume=True)


def test_options_added_since_count_as_their_defaults_and_old_records_use_legacy_match(tmp_path):
    folder = finished(tmp_path)
    now = {**OPTIONS, "--zero-diagonal": False}
    assert folder.prepare(now, resume=True, defaults={"--zero-diagonal": False}).finished is not None
    assert "--zero-diagonal: None there, False now" in refusal(folder, now, resume=True)
    old = interrupted(tmp_path / "old", {"experiment": "toy", "argv": ["--seeds", "2"]})  # no "options"
    assert refusal(old, resume=True).startswith("--resume: the checkpoints")  # no legacy_match: never the same
    assert old.prepare(OPTIONS, resume=True, legacy_match=lambda argv: argv == ["--seeds", "2"]) == RunPlan()
    assert option_differences({"--lr": 0.003}, {"--lr": 0.0030000001}) == ["--lr: 0.003 there, 0.0030000001 now"]


def test_a_sweep_checkpoint_file_resumes_to_the_same_results_and_finish_removes_it(tmp_path):
    config, axes = small(steps=20, log_every=10), {"seed": [0, 1]}
    folder = ResultsFolder(tmp_path / "out", "toy")
    checkpoint = folder.sweep_checkpoint(config, ccjax.make_grid(axes))
    fingerprint = ccjax.engine.sweep_fingerprint(config, ccjax.make_grid(axes))
    assert checkpoint == CheckpointFile(folder.checkpoints / f"sweep-{fingerprint[:16]}.npz")
    assert checkpoint.load() is None  # nothing saved yet
    folder.start({"experiment": "toy", "options": {}})
    reference = ccjax.sweep(config, axes, on_checkpoint=checkpoint, chunk_intervals=1)
    saved = checkpoint.load()
    assert saved.intervals_done == 2 and saved.fingerprint == fingerprint
    resumed = ccjax.sweep(config, axes, resume=saved)
    np.testing.assert_array_equal(resumed.params.w_in, reference.params.w_in)
    folder.finish({"w_in": resumed.params.w_in}, {"experiment": "toy", "options": {}})
    assert not folder.checkpoints.exists() and json.loads((folder.path / ccjax.io.MANIFEST_FILE).read_text())
    assert folder.prepare({}, resume=True).finished is not None


def test_save_figure_writes_the_figure_with_its_note_and_closes_it(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1])
    plain = ccjax.io.save_figure(figure, tmp_path / "new" / "plain.png")
    assert plain == tmp_path / "new" / "plain.png" and plain.exists() and not plt.fignum_exists(figure.number)
    figure, ax = plt.subplots(figsize=(2, 1))
    noted = ccjax.io.save_figure(figure, str(tmp_path / "noted.png"), note="2 models diverged")
    assert noted.exists() and not plt.fignum_exists(figure.number)
    taller = plt.imread(noted).shape[0] > plt.imread(plain).shape[0]  # the canvas grew to hold the note
    assert taller and plt.imread(plain).shape[:2] == (150, 300)  # 2 x 1 inches at 150 dpi
