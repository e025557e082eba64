"""The loss-curve and per-model response figures of paper experiment 1 (ccjax.plot)."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from ccjax import plot

P_EVAL = np.geomspace(1e-3, 1.0, 5)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_loss_curves_lines_dots_band_and_naive():
    curves = np.random.default_rng(0).random((3, 5))
    dots = [(1e-3, 0.07), None, (1.0, 0.05)]
    figure = plot.plot_loss_curves(
        P_EVAL, curves, ["a", "b", "c"], sem=np.full((3, 5), 0.01), dots=dots, naive=0.0833, title="t"
    )
    assert isinstance(figure, Figure)
    (ax,) = figure.axes
    assert ax.get_xscale() == "log" and ax.get_title() == "t"
    lines = ax.get_lines()
    assert len(lines) == 3 + 2 + 1  # curves, two dots, naive
    curve_lines = [line for line in lines if line.get_label() in ("a", "b", "c")]
    assert [line.get_label() for line in curve_lines] == ["a", "b", "c"]
    dot_lines = [line for line in lines if line.get_marker() == "o"]
    assert [dot.get_color() for dot in dot_lines] == [curve_lines[0].get_color(), curve_lines[2].get_color()]
    np.testing.assert_array_equal(dot_lines[1].get_xydata(), [[1.0, 0.05]])
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 3  # one band per curve
    assert any(label.startswith("naive") for label in ax.get_legend_handles_labels()[1])


def test_loss_curves_seed_axis_gives_mean_and_band():
    seeds = np.stack([np.ones((2, 5)), 3 * np.ones((2, 5))], axis=1)  # (curves 2, seeds 2, p 5)
    figure = plot.plot_loss_curves(P_EVAL[::-1], seeds, ["x", "y"])
    ax = figure.axes[0]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), 2.0)
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), P_EVAL)  # sorted
    assert len(ax.collections) == 2
    no_band = plot.plot_loss_curves(P_EVAL, np.ones((2, 5)), ["x", "y"])
    assert len(no_band.axes[0].collections) == 0


def test_loss_curves_reject_mismatches():
    curves = np.ones((2, 5))
    with pytest.raises(ValueError, match="labels"):
        plot.plot_loss_curves(P_EVAL, curves, ["only one"])
    with pytest.raises(ValueError, match="shape"):
        plot.plot_loss_curves(P_EVAL, np.ones((2, 4)), ["a", "b"])
    with pytest.raises(ValueError, match="sem"):
        plot.plot_loss_curves(P_EVAL, curves, ["a", "b"], sem=np.ones((2, 4)))
    with pytest.raises(ValueError, match="dots"):
        plot.plot_loss_curves(P_EVAL, curves, ["a", "b"], dots=[(0.1, 0.1)])
    with pytest.raises(ValueError, match="not both"):
        plot.plot_loss_curves(P_EVAL, np.ones((2, 3, 5)), ["a", "b"], sem=curves)


def test_response_curves():
    values = np.linspace(-1.0, 1.0, 7)
    responses = np.maximum(values, 0.0)[:, None] * np.arange(4.0)[None]
    figure = plot.plot_response_curves(values, responses, title="r")
    assert len(figure.axes) == 2  # the plot and its feature-index colour bar
    ax = figure.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 4 + 1
    relu = [line for line in lines if line.get_label() == "relu(v)"]
    assert len(relu) == 1 and relu[0].get_linestyle() == "--" and relu[0].get_color() == "k"
    np.testing.assert_array_equal(relu[0].get_ydata(), np.maximum(values, 0.0))
    subset = plot.plot_response_curves(values, responses, features=[1, 3])
    assert len(subset.axes[0].get_lines()) == 2 + 1
    np.testing.assert_array_equal(subset.axes[0].get_lines()[1].get_ydata(), responses[:, 3])


def test_response_curves_reject_mismatches():
    with pytest.raises(ValueError, match="shape"):
        plot.plot_response_curves(np.arange(3.0), np.ones((4, 2)))
    with pytest.raises(ValueError, match="features"):
        plot.plot_response_curves(np.arange(3.0), np.ones((3, 2)), features=[2])


def test_neuron_bars_stack_positive_up_and_negative_down():
    contributions = np.array([[1.0, 0.5, -0.25], [0.0, -1.0, -2.0]])  # (d_mlp 2, n_features 3)
    figure = plot.plot_neuron_bars(contributions, title="w")
    ax = figure.axes[0]
    assert len(figure.axes) == 2
    segments = [path.vertices for path in ax.collections[0].get_paths()]
    assert len(segments) == 5  # one segment per non-zero entry
    tops = {(round(v[:4, 0].mean()), v[0, 1], v[1, 1]) for v in segments}  # (neuron, from, to)
    # Neuron 0: 1 then 0.5 stacked upward, -0.25 downward; neuron 1: -1 then -2 downward.
    assert tops == {(0, 0.0, 1.0), (0, 1.0, 1.5), (0, 0.0, -0.25), (1, 0.0, -1.0), (1, -1.0, -3.0)}


def test_neuron_bars_reject_bad_shape():
    with pytest.raises(ValueError, match="shape"):
        plot.plot_neuron_bars(np.ones(3))


def test_one_hot_heatmaps():
    plus = np.diag([1.0, 0.5, 0.0])
    minus = -0.2 * np.ones((3, 3))
    figure = plot.plot_one_hot_heatmaps(plus, minus, title="h")
    assert len(figure.axes) == 3  # two heatmaps and one colour bar
    left, right = figure.axes[:2]
    for ax, expected in ((left, plus), (right, minus)):
        (image,) = ax.get_images()
        np.testing.assert_array_equal(image.get_array(), expected)
        assert image.get_clim() == (-1.0, 1.0)  # shared and symmetric around 0
    # Into a subfigure, so panels can be combined.
    outer = plt.figure(layout="constrained")
    sub = outer.subfigures(1, 2)[1]
    assert plot.plot_one_hot_heatmaps(plus, minus, fig=sub) is sub
    assert len(outer.axes) == 3


def test_one_hot_heatmaps_reject_mismatches():
    with pytest.raises(ValueError, match="square"):
        plot.plot_one_hot_heatmaps(np.ones((3, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="square"):
        plot.plot_one_hot_heatmaps(np.ones((2, 3)), np.ones((2, 3)))


def test_response_plots_draw_into_a_given_axis():
    figure, (a, b, c) = plt.subplots(1, 3)
    assert plot.plot_loss_curves(P_EVAL, np.ones((1, 5)), ["m"], ax=a) is figure
    assert plot.plot_response_curves(np.arange(3.0), np.ones((3, 2)), ax=b) is figure
    assert plot.plot_neuron_bars(np.ones((2, 2)), ax=c) is figure
