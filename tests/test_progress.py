"""ccjax.ProgressBar: the one on_progress reporter for sweeps (the library's and the CLIs')."""

import io

import numpy as np

import ccjax


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _progress(steps_done, total_steps=100, *, n_models=3, padded=4, intervals=3, run_seconds=2.0, diverged=()):
    """A chunk whose last interval lies past the end, with padding rows, as the sweep sends."""
    step = np.minimum(np.arange(1, intervals + 1) * 20 + steps_done - 40, total_steps).astype(np.float32)
    losses = np.tile(np.array([0.5, 0.1, 0.0], np.float32), (padded, 1))
    losses[n_models:] = 99.0  # padding rows must not enter the mean
    field = np.zeros((padded, intervals), np.float32)
    history = ccjax.History(np.tile(step, (padded, 1)), losses, field, field, field)
    return ccjax.engine.Progress(
        steps_done, total_steps, n_models, 1.5, run_seconds, history, diverged=diverged, n_diverged=len(diverged)
    )


def test_a_report_gives_steps_rate_loss_compile_time_and_eta_on_stderr(capsys):
    ccjax.ProgressBar()(_progress(50, run_seconds=2.0))
    captured = capsys.readouterr()
    assert captured.out == ""
    # 50 of 100 steps in 2 s: 2 s to go; 3 models x 50 steps / 2 s = 75 model-steps/s; the
    # mean L/p of the latest logged interval (step 70: 0.0 for every real model).
    assert captured.err == (
        "[############............]  50%  50/100 steps  3 models  75 model-steps/s  train L/p 0.0000  "
        "compile 1.5s  ETA 2s\n"
    )


def test_on_a_terminal_it_redraws_one_line():
    stream = _Terminal()
    bar = ccjax.ProgressBar(stream)
    bar(_progress(60))
    bar(_progress(100))
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    final = text.split("\r")[-1]
    assert "100%" in final and "100/100 steps" in final and "3 models" in final
    assert "150 model-steps/s" in final and "compile 1.5s" in final and "done in 2s" in final
    assert "train L/p 0.1000" in final  # last interval that ran, real models only
    assert "ETA 1s" in text.split("\r")[1]


def test_in_a_log_it_prints_occasional_lines():
    stream = io.StringIO()
    bar = ccjax.ProgressBar(stream, line_fraction=0.25, line_seconds=1e9)
    for done in (40, 50, 60, 70, 80, 90, 100):
        bar(_progress(done))
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split()[2] for line in lines] == ["40/100", "70/100", "100/100"]


def test_it_warns_of_each_diverged_model():
    stream = _Terminal()
    bar = ccjax.ProgressBar(stream)
    bar(_progress(40))
    point = {"seed": 3, "lr": 1e6, "step": 200}
    bar(_progress(60, diverged=(point,)))
    drawn, warning, line = stream.getvalue().split("\n")
    assert drawn.startswith("\r[") and warning.startswith("warning: model seed=3, lr=1e+06 (step 200) diverged")
    assert line.endswith("  1 diverged")


def test_a_sweep_reports_every_chunk(capsys):
    config = ccjax.TrainConfig(
        n_features=8, d_mlp=4, d_embed=16, mixing_rank=4, batch_size=16, steps=20, log_every=5, p=0.1
    )
    ccjax.sweep(config, {"seed": range(2)}, chunk_intervals=2, on_progress=ccjax.ProgressBar(line_fraction=0.5))
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[2] for line in lines] == ["10/20", "20/20"]
    assert "ETA" in lines[0] and "done in" in lines[1]
