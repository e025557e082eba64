"""ccjax.print_progress: the ready-made on_progress reporter for sweeps."""

import io

import numpy as np

import ccjax


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def _progress(steps_done, total_steps=1000, *, diverged=(), n_diverged=0):
    history = ccjax.History(*(np.zeros((4, 1), np.float32) for _ in ccjax.History._fields))
    return ccjax.engine.Progress(
        steps_done=steps_done,
        total_steps=total_steps,
        n_models=4,
        compile_seconds=2.5,
        run_seconds=10.0 * steps_done / 250,
        history=history,
        diverged=diverged,
        n_diverged=n_diverged,
    )


def test_reports_step_rate_and_eta_on_stderr(capsys):
    ccjax.print_progress(_progress(250))
    captured = capsys.readouterr()
    assert captured.out == ""
    # 250 of 1000 steps in 10 s: 30 s to go; 4 models x 250 steps / 10 s = 100 model-steps/s.
    assert captured.err == ("sweep: step 250/1,000 (25%), 4 models, 100 model-steps/s, compile 2.5s, ETA 30s\n")


def test_last_report_gives_the_total_time():
    stream = io.StringIO()
    ccjax.print_progress(_progress(1000), stream=stream)
    assert "(100%)" in stream.getvalue() and "done in 40s" in stream.getvalue()


def test_reports_each_diverged_model():
    stream = io.StringIO()
    point = {"seed": 3, "lr": 1e6, "step": 200}
    ccjax.print_progress(_progress(250, diverged=(point,), n_diverged=1), stream=stream)
    warning, line = stream.getvalue().splitlines()
    assert warning.startswith("warning: model seed=3, lr=1e+06 (step 200) diverged")
    assert line.endswith(", 1 diverged")


def test_redraws_one_line_on_a_terminal():
    stream = _Terminal()
    for steps in (250, 500, 1000):
        ccjax.print_progress(_progress(steps), stream=stream)
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.endswith("done in 40s\x1b[K\n")


def test_sweep_reports_every_chunk(capsys):
    config = ccjax.TrainConfig(
        n_features=8, d_mlp=4, d_embed=16, mixing_rank=4, batch_size=16, steps=20, log_every=5, p=0.1
    )
    ccjax.sweep(config, {"seed": range(2)}, chunk_intervals=2, on_progress=ccjax.print_progress)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == ["sweep: step 10/20 (50%)", "sweep: step 20/20 (100%)"]
    assert "ETA" in lines[0] and "done in" in lines[1]
