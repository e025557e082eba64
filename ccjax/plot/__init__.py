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

from ._cis import plot_advantage, plot_advantage_by_ratio  # noqa: E402
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
from ._mechanisms import (  # noqa: E402
    TrainingCurve,
    plot_alignment_cosines,
    plot_baseline_sweep,
    plot_eigen_projections,
    plot_entry_fit,
    plot_fine_tuning,
    plot_learned_scales,
)
from ._panels import plot_baseline_sweeps  # noqa: E402
from ._rank import RankModels, plot_rank_sweep, plot_scale_histories  # noqa: E402
from ._scale_sweep import plot_mixing_scale_sweep  # noqa: E402
from ._sigma_sweep import SIGMA_SWEEP_COLORS, plot_sigma_sweep  # noqa: E402
from ._sweeps import (  # noqa: E402
    ReferenceDip,
    plot_dip,
    plot_dips,
    plot_model_responses,
    plot_optimal_offset,
    plot_reference_dip,
    plot_sweep_overview,
)
from ._trained import plot_trained_curves  # noqa: E402

__all__ = [
    "plot_baseline_sweeps",
    "ReferenceDip",
    "plot_dip",
    "plot_dips",
    "plot_model_responses",
    "plot_optimal_offset",
    "plot_reference_dip",
    "plot_sweep_overview",
    "plot_mixing_scale_sweep",
    "SIGMA_SWEEP_COLORS",
    "plot_sigma_sweep",
    "RankModels",
    "plot_rank_sweep",
    "plot_scale_histories",
    "plot_advantage",
    "plot_advantage_by_ratio",
    "plot_alignment_cosines",
    "plot_baseline_sweep",
    "plot_eigen_projections",
    "plot_entry_fit",
    "plot_fine_tuning",
    "TrainingCurve",
    "plot_learned_scales",
    "NAIVE_STYLE",
    "plot_scale_sweep",
    "plot_loss_terms",
    "plot_history",
    "plot_loss_curves",
    "plot_trained_curves",
    "plot_response_curves",
    "plot_neuron_bars",
    "plot_one_hot_heatmaps",
]
