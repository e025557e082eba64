"""Paper experiment 5 (eigen-subspace): how the trained weights align with the mixing matrix.

A trained model's linear map A = W_out W_in (paper notation) keeps the top eigen-directions
of the symmetrised label map and drops the rest: cos(E_i, A E_i) is near 1 for the top ~40
eigenvectors and collapses around i = 50 (the number of neurons). Its entries follow those
of sM with a slope near 2.
"""

import dataclasses
import sys

import numpy as np

import ccjax
from ccjax import measure, report
from ccjax.report import Comparison, compare_range, compare_value, format_estimate, mean_sem

from ._experiment import Session, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Stage, seeds_option, unscaled_steps_option

# Table rows by summary_numbers key: (label, paper, compare label, read error), docs/paper.md §6.5, asym σ = 0.03.
ROWS = {
    "cos_top20": ("cos(E_i, A E_i), mean i = 1..20", 0.97, "cos(E_i, A E_i), i ≲ 20", 0.01),
    "cos_at_40": ("cos(E_i, A E_i), mean i = 38..42", 0.89, "cos(E_i, A E_i), i ≈ 40", 0.02),
    "cos_from_70": ("cos(E_i, A E_i), mean i = 70..100", (0.0, 0.1), "cos(E_i, A E_i), i ≥ 70", None),
    "off_diagonal_slope": ("A vs sM: off-diagonal slope", 1.86, "off-diagonal slope of A vs sM", 0.05),
    "diagonal_slope": ("A vs sM: diagonal slope", 3.38, "diagonal fit slope", 0.1),
    "diagonal_intercept": ("A vs sM: diagonal intercept", 0.62, "diagonal fit intercept", 0.02),
    "share_in": ("share of |W_in|^2 in top-50 eigenspace", None, None, None),
    "share_out": ("share of |W_out|^2 in top-50 eigenspace", None, None, None),
    "effective_rank": ("effective rank of A", None, None, None),
}
PUBLISHED = {key: published for key, (_, published, *_) in ROWS.items() if published is not None}
ZERO_DIAGONAL = "embedding M has a zero diagonal: its diagonal fit is undefined (nan slope; intercept = mean diag(A))."
PAPER_CASE = "asym σ = 0.03: "  # the case the paper's numbers are of: the start of each compare row
PAPER_POINTS = ([10, 40, 85], [PUBLISHED["cos_top20"], PUBLISHED["cos_at_40"], 0.05])  # (i, cos) on the figure

EXPERIMENT = "eigen_subspace"
PAPER = ccjax.TrainConfig(steps=20_000)
CASES = (("embedding", 1.0), ("asymmetric", 0.03))  # (mixing family, scale)
FINAL = ("final_train_loss_per_feature",)  # besides the alignments: ccjax.measure.sweep_arrays names it
ARRAYS = {
    "families": "(C,) mixing family of each case",
    "scales": "(C,) mixing scale of each case (labels relu(x) + s M x)",
    "seeds": "(K,) seeds",
    **measure.describe_alignments("C, K"),  # the analyses of ccjax.analysis.alignment
    "scaled_mixing": "(C, K, n, n) the label map sM",
    **measure.describe_sweep_arrays("C, K", FINAL),
}


def run(args, session: Session) -> tuple[dict, dict]:
    per_case = []
    for family, scale in CASES:
        config = dataclasses.replace(args.config, mixing=family, scale=scale)
        with session.timed(f"train_{family}"):
            what = f"{ccjax.MIXING_FAMILIES[family].label}, s = {scale:g}"
            result = train_sweep(config, {"seed": args.seeds}, what, session)
        aligned = measure.alignments(result.params, result.scaled_mixing)  # by name, sorted: the saved arrays' order
        per_case.append(aligned | {"scaled_mixing": result.scaled_mixing} | measure.sweep_arrays(result, FINAL))
    families, scales = map(np.asarray, zip(*CASES, strict=True))
    arrays = measure.stack_fields(per_case) | {"families": families, "scales": scales, "seeds": np.asarray(args.seeds)}
    cases = [{"mixing": family, "scale": scale} for family, scale in CASES]
    return arrays, {"cases": cases, "conventions": measure.ALIGNMENT_CONVENTIONS}


def case_title(arrays: dict, c: int) -> str:
    """``"<mixing label>, s = <scale>"`` of case ``c``: its column in the table and its panels' title."""
    return f"{ccjax.MIXING_FAMILIES[str(arrays['families'][c])].label}, s = {arrays['scales'][c]:g}"


def summary_numbers(arrays: dict, case: int) -> dict[str, np.ndarray]:
    """The per-seed numbers of one case that the table shows, by :data:`ROWS` key."""
    bands = measure.alignment_bands(arrays["eigen_cos"][case])
    return bands | {key: arrays[key][case] for key in ROWS if key in arrays}  # the other rows are saved arrays


def _published(published) -> str:
    """The table's paper column: "~0.97", a range "0-0.1", or "-" where the paper gives nothing."""
    if published is None:
        return "-"
    return f"{published[0]:g}-{published[1]:g}" if isinstance(published, tuple) else f"~{published:g}"


def summary(arrays: dict, manifest: dict) -> str:
    numbers = [summary_numbers(arrays, c) for c in range(len(arrays["families"]))]
    rows = [
        [label, *[report.format_mean_sem(n[key], 3) for n in numbers], _published(published)]
        for key, (label, published, *_) in ROWS.items()
    ]
    steps, seeds = ccjax.io.saved_config(manifest).steps, report.count(len(arrays["seeds"]), "seed")
    title = f"eigen-subspace alignment: p = 0.01, {steps:,} steps, {seeds} (mean +- SEM)"
    headers = ["quantity", *[case_title(arrays, c) for c in range(len(numbers))], "paper (asym 0.03)"]
    return "\n".join([title, report.format_table(headers, rows), ZERO_DIAGONAL])


def figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    from ccjax import plot

    n_cases, d_mlp, seed = len(arrays["families"]), arrays["projection_in"].shape[-1], arrays["seeds"][0]
    fig, axes = plt.subplots(2, n_cases, figsize=(6.2 * n_cases, 9), layout="constrained", squeeze=False)
    eigen, svd, linear, scaled = (arrays[name] for name in ("eigen_cos", "svd_cos", "linear_map", "scaled_mixing"))
    for c in range(n_cases):  # cosines over seeds above, the entries of the first seed below
        title, paper = case_title(arrays, c), PAPER_POINTS if arrays["families"][c] == "asymmetric" else None
        plot.plot_alignment_cosines(eigen[c], svd[c], d_mlp, paper=paper, title=title, ax=axes[0, c])
        fit = [arrays[key][c, 0] for key in ("off_diagonal_slope", "diagonal_slope", "diagonal_intercept")]
        plot.plot_entry_fit(linear[c, 0], scaled[c, 0], fit, title=f"{title}: entries (seed {seed})", ax=axes[1, c])
    fig.suptitle(f"eigen-subspace alignment ({report.count(len(arrays['seeds']), 'seed')}, mean +- SEM bands)")
    return fig


def projection_figure(arrays: dict, manifest: dict):
    from ccjax import plot

    projections = arrays["projection_in"][:, 0], arrays["projection_out"][:, 0]  # the first seed's
    labels = [ccjax.MIXING_FAMILIES[str(family)].label for family in arrays["families"]]
    title = f"projections of the weights on the eigenvectors of M (seed {arrays['seeds'][0]})"
    return plot.plot_eigen_projections(*projections, labels, title=title)


FIGURES = {f"{EXPERIMENT}.png": figure, f"{EXPERIMENT}_projections.png": projection_figure}


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    numbers = summary_numbers(arrays, [str(f) for f in arrays["families"]].index("asymmetric"))
    rows = [
        compare_value(EXPERIMENT, PAPER_CASE + label, PUBLISHED[key], numbers[key], read_error=read, digits=3)
        for key, (_, _, label, read) in ROWS.items()
        if read is not None
    ]
    mean, sem, n = mean_sem(numbers["cos_from_70"])
    quantity, (low, high) = PAPER_CASE + ROWS["cos_from_70"][2], PUBLISHED["cos_from_70"]
    return [*rows, compare_range(EXPERIMENT, quantity, low, high, mean, sem, ours=format_estimate(mean, sem, n, 3))]


STAGES = (Stage(EXPERIMENT, "Experiment 5: eigen-subspace", 5.0, quick_args=QUICK_TRAIN, compare=compare),)

TITLE = "alignment of trained weights with the eigen-subspace of M"
OPTIONS = (seeds_option("5"), unscaled_steps_option("training steps (the paper: 20,000)"))
SPEC = Experiment.from_module(__name__, title=TITLE, config=PAPER, options=OPTIONS)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
