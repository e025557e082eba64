"""Figures from result arrays: each function takes numpy arrays and an optional ``ax``.

Without ``ax`` a new figure is made; with one, the plot is drawn into it (so panels can
be combined). Every function returns the figure and saves nothing: experiments save.
Arrays with a leading seed axis are drawn as the mean over seeds with error bars of
the standard error over seeds (none for a single seed).

On a machine without a display (a server, CI) matplotlib is switched to the Agg
backend before pyplot loads, unless the user chose a backend (``MPLBACKEND``, as
Jupyter does).
"""

import os
import sys

import matplotlib

if (
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and "MPLBACKEND" not in os.environ
    and "matplotlib.pyplot" not in sys.modules
):
    matplotlib.use("Agg")

from ._loss import (  # noqa: E402  (after the backend choice)
    NAIVE_STYLE,
    plot_history,
    plot_loss_curves,
    plot_loss_terms,
    plot_neuron_bars,
    plot_one_hot_heatmaps,
    plot_response_curves,
    plot_scale_sweep,
)

__all__ = [
    "NAIVE_STYLE",
    "plot_scale_sweep",
    "plot_loss_terms",
    "plot_history",
    "plot_loss_curves",
    "plot_response_curves",
    "plot_neuron_bars",
    "plot_one_hot_heatmaps",
]
