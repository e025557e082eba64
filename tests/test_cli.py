"""The scale-sweep CLI: a tiny end-to-end run, --plot-only, --help and bad input.

The end-to-end run is one in-process ``main`` call shared by the module (tiny settings,
small evaluation); input errors are checked in-process, where they fail before any JAX
work, and once through the real ``python -m`` entry point.
"""

import importlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

import ccjax
from experiments import _cli, _experiment, _spec, scale_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--steps", "20", "--batch-size", "64", "--seeds", "2", "--scales", "0,1", "--d-embed", "50"]
TINY += ["--log-every", "10", "--eval-rel-sem", "0.01"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return run_main("scale_sweep", *args)


def run_entry_point(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.scale_sweep", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny training run through the real entry point."""
    tmp = tmp_path_factory.mktemp("scale_sweep")
    out, figure = tmp / "results", tmp / "figures" / "sweep.png"
    done = run_cli(*TINY, "--out", str(out), "--figure", str(figure))
    assert done.returncode == 0, done.stderr
    return out, figure, done


def test_results_hold_every_model(tiny_run):
    out, _, _ = tiny_run
    arrays, _ = ccjax.load_results(out)
    K, S, n_logs = 2, 2, 2
    expected = {
        "scales": (S,),
        "seeds": (K,),
        "loss_per_feature": (K, S),
        "loss_per_feature_sem": (K, S),
        "n_evaluations": (K, S),
        "final_scale": (K, S),
        "diverged_step": (K, S),
        "w_in": (K, S, 100, 50),
        "w_out": (K, S, 50, 100),
        "mixing": (K, S, 100, 100),
        **{f"history_{name}": (K, S, n_logs) for name in ccjax.History._fields},
    }
    assert {name: array.shape for name, array in arrays.items()} == expected
    np.testing.assert_array_equal(arrays["scales"], [0.0, 1.0])
    np.testing.assert_array_equal(arrays["seeds"], [0, 1])
    np.testing.assert_array_equal(arrays["final_scale"], [[0.0, 1.0], [0.0, 1.0]])
    np.testing.assert_array_equal(arrays["diverged_step"], [[-1, -1], [-1, -1]])
    np.testing.assert_array_equal(arrays["history_step"][0, 0], [10, 20])
    assert np.all(arrays["n_evaluations"] > 0)
    assert np.all(arrays["loss_per_feature_sem"] <= 0.01 * arrays["loss_per_feature"])
    assert np.all(np.isfinite(arrays["loss_per_feature"]))
    # A seed fixes M; the scale multiplies it in the labels, not in the stored matrix.
    np.testing.assert_array_equal(arrays["mixing"][:, 0], arrays["mixing"][:, 1])
    np.testing.assert_allclose(np.diagonal(arrays["mixing"], axis1=-2, axis2=-1), 0.0, atol=1e-6)


def test_manifest_explains_the_run(tiny_run):
    out, figure, _ = tiny_run
    _, manifest = ccjax.load_results(out)
    assert manifest["experiment"] == "scale_sweep"
    assert manifest["config"]["steps"] == 20 and manifest["config"]["d_embed"] == 50
    assert manifest["config"]["lr"] == 3e-3 and manifest["config"]["weight_decay"] == 1e-2  # paper defaults
    assert manifest["argv"][:2] == ["--steps", "20"] and str(figure) in manifest["argv"]
    assert manifest["command"].startswith("python -m experiments.scale_sweep --steps 20")
    assert manifest["axes"] == {"seed": [0, 1], "scale": [0.0, 1.0]}
    assert manifest["mixing"]["name"] == "embedding" and "I - W_E W_E^T" in manifest["mixing"]["formula"]
    (path,) = manifest["input_path"]  # one sweep: its path and why "auto" chose it
    assert path["sweep"] == "seed x scale" and path["path"] == "sparse" and path["reason"].startswith("auto on CPU")
    assert manifest["evaluation"]["p"] == 0.01 and manifest["evaluation"]["rel_sem"] == 0.01
    assert manifest["naive_loss_per_feature"] == pytest.approx(1 / 12)
    timings = {"train_seconds", "sweep_run_seconds", "compile_seconds", "n_devices", "eval_seconds"}
    assert set(manifest["timings"]) == timings  # those of ._experiment.train_and_evaluate
    environment = manifest["environment"]
    for package in ("ccjax", "jax", "jaxlib", "optax", "equinox", "numpy"):
        assert environment["versions"][package]
    assert environment["device_count"] >= 1 and environment["device_kind"]
    assert environment["matmul_precision"] == ccjax.problem.MATMUL_PRECISION_NAME
    assert "sha" in environment["git"] and environment["date"]
    assert set(manifest["arrays"]) == set(ccjax.load_results(out)[0])


def test_run_prints_table_progress_and_figure(tiny_run):
    _, figure, done = tiny_run
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header, table = done.stdout.splitlines()[0], done.stdout.splitlines()[1]
    assert "embedding" in header and "2 seeds" in header and "naive L/p = 0.0833" in header
    assert " ".join(table.split()) == "scale L/p SEM seeds L/p - naive ReLU term mixing term MC SEM"
    # Not a terminal: plain progress lines (no carriage returns), ending at 100%.
    assert "\r" not in done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert progress and "100%" in progress[-1] and "20/20 steps" in progress[-1]
    assert "model-steps/s" in progress[-1] and "compile" in progress[-1] and "train L/p" in progress[-1]


def test_plot_only_replots_without_training(tiny_run):
    out, figure, _ = tiny_run
    results = out / "results.npz"
    before = (results.read_bytes(), results.stat().st_mtime_ns)
    figure.unlink()
    start = time.perf_counter()
    done = run_cli("--plot-only", "--out", str(out), "--figure", str(figure))
    seconds = time.perf_counter() - start
    assert done.returncode == 0, done.stderr
    assert figure.exists()
    assert "no training" in done.stderr and "compiling" not in done.stderr
    assert (results.read_bytes(), results.stat().st_mtime_ns) == before
    assert "naive L/p = 0.0833" in done.stdout  # the table is reprinted from the saved results
    assert seconds < 30, seconds  # imports only: the training run above compiles for longer


def test_plot_only_without_results_is_a_usage_error(tmp_path, capsys):
    code = exit_code(["--plot-only", "--out", str(tmp_path / "none"), "--figure", str(tmp_path / "f.png")])
    assert code == 2
    assert "results.npz is missing" in capsys.readouterr().err


def test_plot_only_with_corrupt_results_is_a_usage_error(tiny_run, tmp_path, capsys):
    out, _, _ = tiny_run
    (tmp_path / "results.npz").write_bytes(b"garbage")
    (tmp_path / "manifest.json").write_bytes((out / "manifest.json").read_bytes())
    assert exit_code(["--plot-only", "--out", str(tmp_path), "--figure", str(tmp_path / "f.png")]) == 2
    assert "cannot read" in capsys.readouterr().err


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        scale_sweep.main(argv)
    return exit_info.value.code


def test_help_lists_every_option(capsys):
    assert exit_code(["--help"]) == 0
    text = capsys.readouterr().out
    options = [option for action in scale_sweep.build_parser()._actions for option in action.option_strings]
    for option in options:
        assert option in text
    required = "--scales --seeds --steps --p --batch-size --lr --mixing --d-embed --full-model --out --figure"
    required += " --plot-only --log-every --input-path --eval-rel-sem"
    assert set(required.split()) <= set(options)
    assert "(default: 0,0.5,1,2)" in text and "(default: 10000)" in text and "(default: 0.003)" in text


BAD_INPUT = [
    (["--scales", "0,,a"], "empty entry"),
    (["--scales", ""], "empty string"),
    (["--scales", "0,a"], "'a' is not a number"),
    (["--scales", "0,nan"], "not a finite number"),
    (["--scales", "inf"], "not a finite number"),
    (["--scales", "0,-1"], "scales must be >= 0"),
    (["--scales", "1,1"], "repeated"),
    (["--p", "0"], "(0, 1]"),
    (["--p", "1.5"], "(0, 1]"),
    (["--p", "nan"], "finite"),
    (["--steps", "0"], "positive integer"),
    (["--steps", "-5"], "positive integer"),
    (["--steps", "1.5"], "not an integer"),
    (["--seeds", "0"], ">= 1"),
    (["--seeds", "-2"], ">= 1"),
    (["--seeds", "1,-2"], "[0, 2**32)"),
    (["--seeds", "3,3"], "repeated seed"),
    (["--seeds", "two"], "number of seeds"),
    (["--batch-size", "0"], "positive integer"),
    (["--batch-size", "30000000"], "below 2**31"),  # caught by TrainConfig, converted
    (["--batch-size", "3"], "--batch-size 3 is too small to train on"),
    (["--p", "0.001", "--batch-size", "64"], "= 6.4 active features on average"),
    (["--lr", "0"], "positive"),
    (["--d-embed", "0"], "positive integer"),
    (["--log-every", "0"], "positive integer"),
    (["--mixing", "gaussian"], "invalid choice"),
    (["--input-path", "gpu"], "invalid choice"),
    (["--full-model", "--mixing", "none"], "--mixing embedding"),
    (["--full-model", "--mixing", "embedding-code-sign"], "--mixing embedding"),
    (["--figure", "plot.xyz"], "unsupported file type"),
    (["--eval-rel-sem", "0"], "positive"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUT, ids=[" ".join(argv) or "empty" for argv, _ in BAD_INPUT])
def test_bad_input_is_a_one_line_usage_error(argv, message, tmp_path, capsys):
    argv = [*argv, "--out", str(tmp_path / "out")]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_bad_input_exit_status_through_the_entry_point():
    done = run_entry_point("--scales", "0,,a")
    assert done.returncode == 2
    assert "error: argument --scales: empty entry in the list '0,,a'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_usage_error_is_a_short_usage_line_and_the_error():
    """Not argparse's 15-line usage block: one usage line pointing to --help, then the error."""
    done = run_entry_point("--scales", "0,,a")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "usage: python -m experiments.scale_sweep [options] (see --help)",
        "python -m experiments.scale_sweep: error: argument --scales: empty entry in the list '0,,a'",
    ]


def _experiment_modules(attribute: str = "build_parser") -> list[str]:
    """The command lines of experiments/ (with ``attribute="SPEC"``: those declared as an Experiment)."""
    import pkgutil

    import experiments

    names = [module.name for module in pkgutil.iter_modules(experiments.__path__) if not module.name.startswith("_")]
    return [name for name in names if hasattr(importlib.import_module(f"experiments.{name}"), attribute)]


@pytest.mark.parametrize("name", _experiment_modules())
def test_every_experiment_reports_a_usage_error_in_at_most_two_lines(name, capsys):
    parser = importlib.import_module(f"experiments.{name}").build_parser()
    assert isinstance(parser, _cli.ArgumentParser)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--no-such-option"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) <= 2 and lines[0] == f"usage: python -m experiments.{name} [options] (see --help)"
    assert "--no-such-option" in lines[-1] and "error:" in lines[-1]
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])  # --help still prints the whole usage
    assert exit_info.value.code == 0 and "--out" in capsys.readouterr().out


def test_a_batch_too_small_to_train_on_is_a_one_line_error_through_the_entry_point(tmp_path):
    done = run_entry_point("--batch-size", "3", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    usage, error = done.stderr.splitlines()
    assert usage.startswith("usage: ") and error.startswith("python -m experiments.scale_sweep: error: ")
    assert "--batch-size 3 is too small to train on" in error
    assert "batch_size * n_features * p = 3 active features on average" in error  # at p = 0.01, n = 100
    assert "at least 10" in error and "use --batch-size 10 or more, or p >= 0.034 (--p)" in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", _experiment_modules("SPEC"))
def test_every_experiments_defaults_hold_enough_active_features_per_batch(name):
    module = importlib.import_module(f"experiments.{name}")
    parser = module.build_parser()
    module.SPEC._resolve(parser.parse_args([]), parser)  # a usage error (SystemExit) if not


def test_a_swept_p_is_checked_at_its_smallest_value(capsys):
    from experiments import sparsity_regimes

    with pytest.raises(SystemExit) as exit_info:
        sparsity_regimes.main(["--p-train", "0.1,0.00001", "--out", "unused"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "a batch of 2048 samples is too small to train on: at the smallest p = 1e-05" in error
    assert "2.05 active features" in error and "use p >= 4.9e-05 (--p-train)" in error


def test_quick_runs_default_to_their_own_output_folder():
    """The rule of every experiment with a --quick flag (here a declared toy one): results/<name>-quick
    unless --out is given, and its figures beside them, never in the committed figures/."""
    toy = _spec.Experiment(
        name="toy",
        title="toy",
        description="toy",
        run=None,
        summary=None,
        figures={},
        options=(_spec.Option("--quick", None, False, "a small run"),),
    )
    parser = toy.build_parser()
    assert "results/toy-quick with --quick" in " ".join(parser.format_help().split())
    cases = {
        (): (Path("results/toy"), True),
        ("--quick",): (Path("results/toy-quick"), False),
        ("--quick", "--out", "mine"): (Path("mine"), False),
        ("--out", "results/toy"): (Path("results/toy"), True),
    }
    for argv, (out, committed) in cases.items():
        args = parser.parse_args(list(argv))
        assert _experiment.resolve_out(args, parser, "toy") == committed, argv
        _experiment.resolve_figures(args, parser, committed)
        assert args.out == out, argv
        assert args.figures == (_experiment.FIGURES if committed else out), argv
    plain = _spec.Experiment(name="plain", title="", description="", run=None, summary=None, figures={})
    parser = plain.build_parser()  # no --quick: --out's default is the folder itself, as before
    args = parser.parse_args([])
    _experiment.resolve_figures(args, parser, _experiment.resolve_out(args, parser, "plain"))
    assert args.out == Path("results/plain") and args.figures == _experiment.FIGURES


def test_options_reach_the_config():
    parser = scale_sweep.build_parser()
    args = parser.parse_args(["--full-model", "--steps", "7", "--p", "0.1", "--d-embed", "64", "--input-path", "dense"])
    config = scale_sweep.SPEC._resolve(args, parser).config
    assert config == ccjax.TrainConfig(steps=7, p=0.1, d_embed=64, full_model=True, input_path="dense")
    defaults = scale_sweep.SPEC._resolve(parser.parse_args([]), parser).config
    assert defaults == ccjax.TrainConfig()  # the CLI's defaults are the paper's
    assert defaults.steps == 10_000 and defaults.batch_size == 2048 and defaults.p == 0.01
    assert defaults.lr == 3e-3 and defaults.weight_decay == 1e-2 and defaults.schedule == "half-cosine"
    assert defaults.mixing == "embedding" and defaults.d_embed == 1000
    assert parser.parse_args([]).scales == [0.0, 0.5, 1.0, 2.0]
    assert parser.parse_args([]).seeds == [0, 1, 2, 3, 4]
    assert parser.parse_args(["--seeds", "3,7"]).seeds == [3, 7]
    assert parser.parse_args([]).eval_rel_sem == 0.001


@pytest.mark.parametrize("seconds, text", [(0.4, "0s"), (59.6, "1m00s"), (3725, "1h02m05s"), (float("nan"), "?")])
def test_format_duration(seconds, text):
    assert _cli.format_duration(seconds) == text


def test_figures_go_with_a_custom_out_and_to_figures_only_with_the_default_out(tmp_path, monkeypatch):
    """Issue 11, item 4: a run into another --out never replaces the committed figures/."""
    from experiments import lr_sweep

    monkeypatch.chdir(tmp_path)
    tiny = ["--scales", "1", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--d-embed", "20"]
    tiny += ["--eval-rel-sem", "0.2"]
    assert scale_sweep.main([*tiny, "--out", "custom"]) == 0
    assert (tmp_path / "custom" / "scale_sweep.png").exists() and not (tmp_path / "figures").exists()
    lr_tiny = ["--lrs", "3e-3", "--seeds", "1", "--steps", "10", "--batch-size", "32", "--eval-rel-sem", "0.2"]
    assert lr_sweep.main([*lr_tiny, "--out", "lr"]) == 0  # the same rule for every experiment
    assert (tmp_path / "lr" / "lr_sweep.png").exists() and not (tmp_path / "figures").exists()

    assert scale_sweep.main([*tiny, "--out", "other", "--figures", "chosen"]) == 0
    assert (tmp_path / "chosen" / "scale_sweep.png").exists() and not list((tmp_path / "other").glob("*.png"))
    assert scale_sweep.main([*tiny, "--out", "third", "--figure", "one/file.svg"]) == 0
    assert (tmp_path / "one" / "file.svg").exists()

    assert scale_sweep.main(tiny) == 0  # the default --out: the committed figure folder
    assert (tmp_path / "results" / "scale_sweep" / "results.npz").exists()
    assert (tmp_path / "figures" / "scale_sweep.png").exists()
