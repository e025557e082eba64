"""Results on disk (ccjax.io) and the plotting functions (ccjax.plot)."""

import json
import os
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
    ccjax.save_results(tmp_path / "run", arrays, manifest)
    loaded, loaded_manifest = ccjax.load_results(tmp_path / "run")
    assert loaded.keys() == arrays.keys()
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype
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


def test_environment_info():
    info = ccjax.environment_info()
    assert set(info["versions"]) >= {"ccjax", "jax", "jaxlib", "optax", "equinox", "numpy", "python"}
    assert info["versions"]["numpy"] == np.__version__
    assert info["device_count"] >= 1 and isinstance(info["device_kind"], str)
    assert info["matmul_precision"] == ccjax.MATMUL_PRECISION_NAME
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
