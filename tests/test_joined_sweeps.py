"""ccjax.measure.join_sweeps / initial_mixings and ccjax.plot.plot_baseline_sweeps on tiny inputs."""

import numpy as np
import pytest

import ccjax
from ccjax import measure, plot
from ccjax.engine import SweepResult


def _sweep(families: int, offset: float) -> SweepResult:
    """A (2 seeds, families) SweepResult with only the fields join_sweeps reads filled in."""
    scale = offset + np.arange(2 * families, dtype=np.float32).reshape(2, families)
    w_in = scale[..., None, None] * np.ones((3, 2), np.float32)  # (2, families, n_features 3, d_mlp 2)
    params = ccjax.FeatureMLP(w_in=w_in, w_out=np.swapaxes(-w_in, -1, -2))
    return SweepResult(None, None, params, None, scale, None, 0.0, 0.0, 1, None, 1)


def test_join_sweeps_concatenates_along_the_family_axis():
    first, second = _sweep(3, 0.0), _sweep(2, 100.0)
    joined = measure.join_sweeps([first, second], ("scale", "params.w_in"))
    assert list(joined) == ["scale", "params.w_in"]
    assert joined["scale"].shape == (2, 5) and joined["scale"].dtype == np.float32
    np.testing.assert_array_equal(joined["scale"][:, :3], first.scale)
    np.testing.assert_array_equal(joined["scale"][:, 3:], second.scale)
    assert joined["params.w_in"].shape == (2, 5, 3, 2)
    np.testing.assert_array_equal(joined["params.w_in"][1, 4], second.params.w_in[1, 1])
    with pytest.raises(ValueError):  # the other axes must agree
        measure.join_sweeps([first, second], ("scale",), axis=0)


@pytest.mark.slow  # ~9 s: init_run runs eagerly (test_experiments' snmf --no-train run covers it by default)
def test_initial_mixings_follow_the_config():
    config = ccjax.TrainConfig(n_features=6, d_mlp=3, mixing="low-rank", mixing_rank=2, zero_diagonal=False)
    mixings = measure.initial_mixings(config, [0, 3, 0])  # one call: init_run runs eagerly
    assert mixings.shape == (3, 6, 6) and mixings.dtype == np.float32
    assert [np.linalg.matrix_rank(mixing) for mixing in mixings] == [2, 2, 2]  # U V^T of rank 2
    np.testing.assert_array_equal(mixings[0], mixings[2])  # a seed fixes its M
    assert not np.allclose(mixings[0], mixings[1])


def test_plot_baseline_sweeps_one_panel_per_family():
    sigmas = np.array([0.0, 0.01, 0.02])
    loss = 0.08 + 0.001 * np.arange(2 * 2 * 3 * 2).reshape(2, 2, 3, 2)  # (families, seeds, sigmas, orientations)
    references = [{"naive": np.full((2, 3), 0.083)}, {}]
    fig = plot.plot_baseline_sweeps(
        sigmas, loss, references, ["A", "B"], [{0.0: 0.0835}, None], naive=0.0833, ylim=(0.07, 0.13), title="t"
    )
    left, right = fig.axes
    assert [left.get_title(), right.get_title()] == ["A", "B"] and fig._suptitle.get_text() == "t"
    assert left.get_ylim() == pytest.approx((0.07, 0.13)) and right.get_ylim() == left.get_ylim()
    assert left.get_ylabel() == "L/p on exactly-one data (exact)"
    np.testing.assert_allclose(left.lines[0].get_ydata(), loss[0, :, :, 0].mean(axis=0))
    assert len(left.lines) > len(right.lines)  # the naive reference and the paper's crosses
    import matplotlib.pyplot as plt

    plt.close(fig)
