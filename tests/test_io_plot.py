"""Results on disk (ccjax.io) and the plotting functions (ccjax.plot)."""

import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import ccjax
from ccjax import io, plot


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {
        "scales": np.array([0.0, 0.5, 1.0]),
        "seeds": np.arange(2),
        "loss_per_feature": rng.random((2, 3)).astype(np.float32),
        "n_nonempty": np.full((2, 3), 1000, np.int32),
        "flags": np.array([True, False]),
    }


@pytest.fixture
def manifest():
    return {
        "experiment": "test",
        "config": {"p": 0.01, "steps": 10},
        "tuple": (1, 2),
        "numpy_scalar": np.float32(0.5),
        "numpy_array": np.arange(3),
        "path": Path("a/b"),
        "sem": float("nan"),
    }


def test_round_trip(tmp_path, arrays, manifest):
    original = dict(manifest)
    ccjax.save_results(tmp_path / "run", arrays, manifest)
    assert manifest.keys() == original.keys()  # the caller's manifest gains no block
    loaded, loaded_manifest = ccjax.load_results(tmp_path / "run")
    assert loaded.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
    block = loaded_manifest.pop(io.RESULTS_FORMAT_KEY)
    assert block == {
        "version": io.RESULTS_FORMAT_VERSION,
        "arrays": {
            "scales": {"shape": [3], "dtype": "float64"},
            "seeds": {"shape": [2], "dtype": str(np.arange(2).dtype)},
            "loss_per_feature": {"shape": [2, 3], "dtype": "float32"},
            "n_nonempty": {"shape": [2, 3], "dtype": "int32"},
            "flags": {"shape": [2], "dtype": "bool"},
        },
        "results_sha256": hashlib.sha256((tmp_path / "run" / io.RESULTS_FILE).read_bytes()).hexdigest(),
        "config_sha256": hashlib.sha256(b'{"p":0.01,"steps":10}').hexdigest(),
    }
    assert loaded_manifest == {
        "experiment": "test",
        "config": {"p": 0.01, "steps": 10},
        "tuple": [1, 2],
        "numpy_scalar": 0.5,
        "numpy_array": [0, 1, 2],
        "path": "a/b",
        "sem": None,  # NaN is written as null: the file is standard JSON
    }
    json.loads((tmp_path / "run" / io.MANIFEST_FILE).read_text(), parse_constant=pytest.fail)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, arrays, manifest):
    ccjax.save_results(tmp_path, arrays, manifest)
    ccjax.save_results(tmp_path, {**arrays, "extra": np.ones(2)}, manifest)  # overwrite
    assert sorted(os.listdir(tmp_path)) == [io.MANIFEST_FILE, io.RESULTS_FILE]
    assert "extra" in ccjax.load_results(tmp_path)[0]


def test_failed_write_keeps_old_results_and_cleans_up(tmp_path, arrays, manifest, monkeypatch):
    ccjax.save_results(tmp_path, arrays, manifest)
    before = {name: (tmp_path / name).read_bytes() for name in (io.RESULTS_FILE, io.MANIFEST_FILE)}

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ccjax.save_results(tmp_path, {"other": np.zeros(3)}, {"experiment": "other"})
    assert sorted(os.listdir(tmp_path)) == [io.MANIFEST_FILE, io.RESULTS_FILE]
    assert {name: (tmp_path / name).read_bytes() for name in before} == before


def test_bad_values_fail_before_writing(tmp_path, arrays):
    with pytest.raises(TypeError, match="JSON"):
        ccjax.save_results(tmp_path / "a", arrays, {"bad": object()})
    with pytest.raises(TypeError, match="object"):
        ccjax.save_results(tmp_path / "b", {"ragged": np.array([[1], [1, 2]], dtype=object)}, {})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_missing_results_name_the_file(tmp_path, arrays, manifest):
    with pytest.raises(FileNotFoundError, match="results.npz is missing"):
        ccjax.load_results(tmp_path / "nowhere")
    ccjax.save_results(tmp_path, arrays, manifest)
    (tmp_path / io.MANIFEST_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="manifest.json is missing"):
        ccjax.load_results(tmp_path)


@pytest.mark.parametrize(
    "name, corrupt",
    [
        (io.RESULTS_FILE, lambda data: b"not a zip file"),
        (io.RESULTS_FILE, lambda data: data[: len(data) // 2]),  # truncated
        (io.MANIFEST_FILE, lambda data: data[:-5]),
        (io.MANIFEST_FILE, lambda data: b"[1, 2]"),
    ],
)
def test_corrupt_results_give_a_clear_error(tmp_path, arrays, manifest, name, corrupt):
    ccjax.save_results(tmp_path, arrays, manifest)
    path = tmp_path / name
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(ccjax.ResultsError, match=f"cannot read .*{name}"):
        ccjax.load_results(tmp_path)


def edit_manifest(directory, edit):
    """Apply ``edit`` to the JSON of ``directory``'s manifest, in place."""
    path = directory / io.MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_results_check_survives_awkward_values_and_resaving(tmp_path):
    config = {"tuple": (1, 2.5), "nan": float("nan"), 3: np.float32(0.1), "path": Path("x"), "nested": {"b": 1, "a": 0}}
    arrays = {"labels": np.array(["a", "bcd"]), "scalar": np.float16(2.0), "empty": np.zeros((0, 4), np.uint8)}
    ccjax.save_results(tmp_path / "a", arrays, {"config": config, "command": "python -m experiments.x"})
    loaded, manifest = ccjax.load_results(tmp_path / "a")
    assert {name: (array.shape, array.dtype) for name, array in loaded.items()} == {
        name: (np.shape(array), np.asarray(array).dtype) for name, array in arrays.items()
    }
    # Loaded results (block included) can be saved again, elsewhere or with other arrays.
    ccjax.save_results(tmp_path / "b", {**loaded, "more": np.ones(2)}, manifest)
    assert "more" in ccjax.load_results(tmp_path / "b")[1][io.RESULTS_FORMAT_KEY]["arrays"]
    ccjax.save_results(tmp_path / "c", loaded, {})  # no config: the hash of null
    assert ccjax.load_results(tmp_path / "c")[1][io.RESULTS_FORMAT_KEY]["config_sha256"] == (
        hashlib.sha256(b"null").hexdigest()
    )


def test_truncated_results_are_detected_by_their_hash(tmp_path, arrays, manifest):
    ccjax.save_results(tmp_path, arrays, manifest)
    path = tmp_path / io.RESULTS_FILE
    path.write_bytes(path.read_bytes()[:-10])
    pattern = f"cannot read {re.escape(str(path))}: it does not match .*partially written"
    with pytest.raises(ccjax.ResultsError, match=pattern):
        ccjax.load_results(tmp_path)


def test_results_from_another_run_are_detected(tmp_path, arrays, manifest):
    manifest = {**manifest, "command": "python -m experiments.scale_sweep --steps 10"}
    ccjax.save_results(tmp_path / "a", arrays, manifest)
    ccjax.save_results(tmp_path / "b", {name: array[::-1] for name, array in arrays.items()}, manifest)
    shutil.copy(tmp_path / "b" / io.RESULTS_FILE, tmp_path / "a" / io.RESULTS_FILE)  # same names and shapes
    with pytest.raises(ccjax.ResultsError) as caught:
        ccjax.load_results(tmp_path / "a")
    message = str(caught.value)
    assert "it does not match" in message and "different runs" in message
    assert "rerun the command" in message and manifest["command"] in message


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda block: block["arrays"]["loss_per_feature"].update(shape=[3, 2]), "'loss_per_feature' has shape"),
        (lambda block: block["arrays"]["flags"].update(dtype="int8"), "'flags' has dtype bool, the manifest records"),
        (lambda block: block["arrays"].pop("seeds"), "'seeds' is not recorded"),
        (lambda block: block["arrays"].update(extra={"shape": [1], "dtype": "float64"}), "'extra' is recorded but"),
    ],
)
def test_arrays_that_differ_from_the_manifest_are_detected(tmp_path, arrays, manifest, edit, expected):
    ccjax.save_results(tmp_path, arrays, manifest)
    edit_manifest(tmp_path, lambda data: edit(data[io.RESULTS_FORMAT_KEY]))  # the results hash still matches
    with pytest.raises(ccjax.ResultsError, match=f"cannot read .*{io.MANIFEST_FILE}: the arrays .*{expected}"):
        ccjax.load_results(tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: data["config"].update(steps=11),
        lambda data: data.pop("config"),
        lambda data: data["config"].update(extra=None),
    ],
)
def test_an_edited_config_is_detected(tmp_path, arrays, manifest, edit):
    ccjax.save_results(tmp_path, arrays, manifest)
    # Reordered keys and another JSON layout are not a change.
    edit_manifest(tmp_path, lambda data: data.update(config=dict(reversed(data["config"].items()))))
    ccjax.load_results(tmp_path)
    edit_manifest(tmp_path, edit)
    with pytest.raises(ccjax.ResultsError, match=f"cannot read .*{io.MANIFEST_FILE}: its config .*edited"):
        ccjax.load_results(tmp_path)


def test_a_newer_results_format_asks_to_upgrade(tmp_path, arrays, manifest):
    ccjax.save_results(tmp_path, arrays, manifest)
    edit_manifest(tmp_path, lambda data: data[io.RESULTS_FORMAT_KEY].update(version=io.RESULTS_FORMAT_VERSION + 1))
    pattern = f"cannot read .*{io.MANIFEST_FILE}: .*version {io.RESULTS_FORMAT_VERSION + 1}.*upgrade ccjax"
    with pytest.raises(ccjax.ResultsError, match=pattern):
        ccjax.load_results(tmp_path)


@pytest.mark.parametrize(
    "edit",
    [
        lambda data: data.update({io.RESULTS_FORMAT_KEY: None}),
        lambda data: data[io.RESULTS_FORMAT_KEY].update(version=0),
        lambda data: data[io.RESULTS_FORMAT_KEY].update(version="1"),
        lambda data: data[io.RESULTS_FORMAT_KEY].pop("results_sha256"),
        lambda data: data[io.RESULTS_FORMAT_KEY]["arrays"].update(flags={"shape": "2", "dtype": "bool"}),
    ],
)
def test_a_malformed_results_format_block_is_an_error(tmp_path, arrays, manifest, edit):
    ccjax.save_results(tmp_path, arrays, manifest)
    edit_manifest(tmp_path, edit)
    with pytest.raises(ccjax.ResultsError, match=f"cannot read .*{io.MANIFEST_FILE}: .*malformed"):
        ccjax.load_results(tmp_path)


def test_legacy_results_without_the_block_load_unchecked(tmp_path, arrays, manifest):
    ccjax.save_results(tmp_path, arrays, manifest)
    edit_manifest(tmp_path, lambda data: data.pop(io.RESULTS_FORMAT_KEY))
    edit_manifest(tmp_path, lambda data: data["config"].update(steps=11))  # nothing to check it against
    loaded, loaded_manifest = ccjax.load_results(tmp_path)
    assert io.RESULTS_FORMAT_KEY not in loaded_manifest and loaded_manifest["config"]["steps"] == 11
    np.testing.assert_array_equal(loaded["loss_per_feature"], arrays["loss_per_feature"])
    # A corrupt legacy results.npz is still caught, by its zip structure.
    path = tmp_path / io.RESULTS_FILE
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ccjax.ResultsError, match=f"cannot read {re.escape(str(path))}: (?!it does not match)"):
        ccjax.load_results(tmp_path)


def test_saved_config_rebuilds_the_train_config_from_a_saved_manifest(tmp_path, arrays):
    config = ccjax.TrainConfig(n_features=20, d_mlp=10, p=0.05, mixing="asymmetric", schedule="constant")
    manifest = {"config": dataclasses.asdict(config), "other": {"p": 0.1}}
    io.save_results(tmp_path, arrays, manifest)
    assert io.saved_config(io.load_results(tmp_path)[1]) == config
    older = {"config": {"p": 0.05, "steps": 30}}  # saved before the other fields existed: their defaults
    assert io.saved_config(older) == ccjax.TrainConfig(p=0.05, steps=30)
    for bad, message in (({}, "no 'config' block"), ({"config": {"q": 1}}, "fields TrainConfig does not: q")):
        with pytest.raises(io.ResultsError, match=message):
            io.saved_config(bad)
    with pytest.raises(io.ResultsError, match="not a valid TrainConfig"):
        io.saved_config({"config": {"p": 2.0}})
    with pytest.raises(io.ResultsError, match="no 'other' block"):
        io.saved_config({"config": manifest["config"]}, "other")


def test_environment_info():
    info = ccjax.io.environment_info()
    assert set(info["versions"]) >= {"ccjax", "jax", "jaxlib", "optax", "equinox", "numpy", "python"}
    assert info["versions"]["numpy"] == np.__version__
    assert info["device_count"] >= 1 and isinstance(info["device_kind"], str)
    assert info["matmul_precision"] == ccjax.problem.MATMUL_PRECISION_NAME
    assert set(info["git"]) == {"sha", "dirty"}
    json.dumps(info)


def test_git_info_outside_a_checkout_is_none(tmp_path):
    package = tmp_path / "ccjax"
    package.mkdir()
    assert io.git_info(package) == {"sha": None, "dirty": None}
    # A package inside some other repository is not that repository's checkout.
    if subprocess.run(["git", "init", "-q", str(tmp_path / "outer")], check=False).returncode == 0:
        nested = tmp_path / "outer" / "site-packages" / "ccjax"
        nested.mkdir(parents=True)
        assert io.git_info(nested) == {"sha": None, "dirty": None}


def test_plot_scale_sweep_returns_a_figure():
    scales = np.array([0.0, 0.5, 1.0])
    figure = plot.plot_scale_sweep(scales, np.random.default_rng(0).random((3, 3)), naive=0.0833, title="t")
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    assert ax.get_title() == "t"
    labels = ax.get_legend_handles_labels()[1]
    assert any("naive (0.0833)" in label for label in labels) and any("3 seeds" in label for label in labels)
    single = plot.plot_scale_sweep(scales, np.ones(3))  # one seed: no error bars, no crash
    assert "1 seed" in single.axes[0].get_legend_handles_labels()[1][0]


def test_plots_draw_into_a_given_axis():
    import matplotlib.pyplot as plt

    figure, (a, b, c) = plt.subplots(1, 3)
    scales, terms = np.arange(2.0), np.ones((2, 2))
    assert plot.plot_scale_sweep(scales, terms, ax=a) is figure
    assert plot.plot_loss_terms(scales, terms, -terms, ax=b) is figure
    steps = np.array([10.0, 20.0])
    assert plot.plot_history(steps, {"loss": np.ones((3, 2)), "single": np.ones(2)}, naive=0.08, ax=c) is figure
    assert [line.get_label() for line in c.get_lines()][:2] == ["loss", "single"]
    plt.close(figure)


def test_plots_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        plot.plot_scale_sweep(np.arange(3.0), np.ones((2, 4)))
    with pytest.raises(ValueError, match="shape"):
        plot.plot_history(np.arange(3.0), {"loss": np.ones((2, 2, 3))})


def test_plot_module_is_loaded_on_first_use():
    assert ccjax.plot is plot
    code = "import sys, ccjax; assert 'matplotlib' not in sys.modules; ccjax.plot; assert 'matplotlib' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_scale_plots_join_scales_in_increasing_order():
    figure = plot.plot_scale_sweep([1.0, 0.0, 2.0], np.array([[0.07, 0.083, 0.1]]))
    (line,) = figure.axes[0].get_lines()[:1]
    np.testing.assert_array_equal(line.get_xdata(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(line.get_ydata(), [0.083, 0.07, 0.1])
