"""The declarative experiment spec (experiments/_spec.py): options from declarations,
defaults from the config, and the manifest fields the framework adds. No training."""

import sys
import types

import numpy as np
import pytest

import ccjax
from experiments import _spec


def _declare(tmp_module: str) -> _spec.Experiment:
    """A tiny experiment module (no training) declared the way the real ones are."""
    module = types.ModuleType(tmp_module)
    module.EXPERIMENT = "toy"
    module.DESCRIPTION = "a toy experiment"
    module.ARRAYS = {"steps": "() the configured steps"}
    module.PUBLISHED = {0.5: 0.07}

    def run(args, session):
        with session.timed("train"):
            steps = np.asarray(args.config.steps)
        return {"steps": steps}, {"evaluation": {"rel_sem": args.eval_rel_sem}}

    def figure(arrays, manifest):
        import matplotlib.pyplot as plt

        return plt.figure()

    module.run, module.summary, module.figure = run, lambda arrays, manifest: f"steps {arrays['steps']}", figure
    sys.modules[tmp_module] = module
    try:
        width = _spec.Option("--d-mlp", _spec.positive_int, None, "hidden neurons", field="d_mlp")
        options = (_spec.seeds_option("2"), *_spec.training_options(), *_spec.curve_options(rel_sem=0.1), width)
        config = ccjax.TrainConfig(mixing="none", scale=0.0, steps=7)
        axes = {"seed": "seeds"}
        return _spec.Experiment.from_module(tmp_module, title="toy", config=config, axes=axes, options=options)
    finally:
        del sys.modules[tmp_module]


def test_options_take_their_defaults_from_the_config_and_set_it():
    spec = _declare("toy_module")
    parser = spec.build_parser()
    assert parser.get_default("steps") == 7 and parser.get_default("seeds") == "2"
    assert "(default: 7)" in " ".join(parser.format_help().split())
    args = spec._resolve(parser.parse_args(["--steps", "9", "--no-step-scaling"]), parser)
    assert args.config.steps == 9 and args.config.scale_steps_for_sparsity is False


def test_the_manifest_holds_the_framework_fields_and_plot_only_reloads_them(tmp_path, capsys):
    spec = _declare("toy_module")
    out = tmp_path / "out"
    assert spec.main(["--steps", "5", "--out", str(out)]) == 0
    arrays, manifest = ccjax.load_results(out)
    assert int(arrays["steps"]) == 5 and manifest["config"]["steps"] == 5
    assert manifest["axes"] == {"seed": [0, 1]} and manifest["published"] == {"0.5": 0.07}
    assert set(manifest["timings"]) == {"train_seconds"} and manifest["arrays"] == {"steps": "() the configured steps"}
    assert manifest["evaluation"] == {"rel_sem": 0.1} and manifest["options"]["--steps"] == 5
    assert (out / "toy.png").exists()
    assert spec.main(["--plot-only", "--out", str(out)]) == 0
    assert "re-plotting" in capsys.readouterr().err


def test_a_config_the_options_make_invalid_is_a_usage_error_before_anything_is_written(tmp_path, capsys):
    spec = _declare("toy_module")
    with pytest.raises(SystemExit) as exit:
        spec.main(["--d-mlp", "1000", "--out", str(tmp_path / "out")])
    assert exit.value.code == 2 and "d_mlp (1000) must not exceed n_features" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
