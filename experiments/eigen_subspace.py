"""Paper experiment 5 (eigen-subspace): how the trained weights align with the mixing matrix.

A trained model's linear map A = W_out W_in (paper notation) keeps the top eigen-directions
of the symmetrised label map and drops the rest: cos(E_i, A E_i) is near 1 for the top ~40
eigenvectors and collapses around i = 50 (the number of neurons). Its entries follow those
of sM with a slope near 2.
"""

import dataclasses
import sys

import jax
import numpy as np

import ccjax
from ccjax import analysis

from ._cli import count, format_mean_sem, format_table, plot_seed_mean, stack_fields
from ._compare import Comparison, compare_range, compare_value, format_estimate, mean_sem
from ._experiment import Session, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Stage, seeds_option, unscaled_steps_option

# The summary table's rows, per-seed numbers of one case (summary_numbers), by key: (label, published, compare row's
# label, read error). Experiment 5, docs/paper.md §6.5: asymmetric sigma = 0.03, read off the figures (about ±0.01).
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
ZERO_DIAGONAL_NOTE = (
    "embedding M has a zero diagonal: its diagonal fit is undefined (nan slope; intercept = mean diag(A))."
)
PAPER_CASE = "asym σ = 0.03: "  # the case the paper's numbers are of: the start of each compare row

EXPERIMENT = "eigen_subspace"
PAPER = ccjax.TrainConfig(steps=20_000)
CASES = (("embedding", 1.0), ("asymmetric", 0.03))  # (mixing family, scale)
ARRAYS = {
    "families": "(C,) mixing family of each case",
    "scales": "(C,) mixing scale of each case (labels relu(x) + s M x)",
    "seeds": "(K,) seeds",
    "eigenvalues": "(C, K, n) eigenvalues of (sM + sM^T)/2, descending",
    "eigen_cos": "(C, K, n) cos(E_i, A E_i), A = (W_in W_out)^T",
    "svd_cos": "(C, K, n) cos(U_i, A V_i) for the SVD of the target map I + sM",
    "projection_in": "(C, K, n, d_mlp) E_i . W_in[:, h]",
    "projection_out": "(C, K, n, d_mlp) E_i . W_out[h, :]",
    "share_in": "(C, K) share of ||W_in||^2 inside the top-d_mlp eigen-subspace",
    "share_out": "(C, K) share of ||W_out||^2 inside the top-d_mlp eigen-subspace",
    "off_diagonal_slope": "(C, K) least-squares slope through 0 of A's off-diagonal entries against sM's",
    "diagonal_slope": "(C, K) diag(A) ~ slope diag(sM) + intercept",
    "diagonal_intercept": "(C, K)",
    "effective_rank": "(C, K) effective rank of A",
    "linear_map": "(C, K, n, n) A = (W_in W_out)^T",
    "scaled_mixing": "(C, K, n, n) the label map sM",
    "final_train_loss_per_feature": "(C, K) training L/p over the last logging interval",
}
# Unsharded, on one device: XLA:CPU deadlocked on sharded decompositions (see ccjax.sweep). A dict comes out of
# jit with its keys sorted: the saved arrays' order.
_alignments = jax.jit(jax.vmap(lambda params, scaled_mixing: analysis.alignment(params, scaled_mixing)._asdict()))


def run(args, session: Session) -> tuple[dict, dict]:
    per_case = []
    for family, scale in CASES:
        config = dataclasses.replace(args.config, mixing=family, scale=scale)
        with session.timed(f"train_{family}"):
            what = f"{ccjax.MIXING_FAMILIES[family].label}, s = {scale:g}"
            result = train_sweep(config, {"seed": args.seeds}, what, session)
        scaled, final = result.scaled_mixing, result.history.train_loss_per_feature[..., -1]
        aligned = _alignments(result.params, np.asarray(scaled, np.float32))
        per_case.append(aligned | {"scaled_mixing": scaled, "final_train_loss_per_feature": final})
    families, scales = zip(*CASES, strict=True)
    arrays = {name: np.asarray(value) for name, value in stack_fields(per_case).items()}
    arrays |= {"families": np.asarray(families), "scales": np.asarray(scales), "seeds": np.asarray(args.seeds)}
    return arrays, {
        "cases": [{"mixing": family, "scale": scale} for family, scale in CASES],
        "conventions": {
            "A": "(W_in W_out)^T: the paper's W_out W_in (column convention) in ccjax's row convention",
            "E": "eigenvectors of (sM + sM^T)/2, descending eigenvalue, largest-|entry| positive",
            "target": "I + sM, the column-convention label map on non-negative inputs",
        },
    }


def case_title(arrays: dict, c: int) -> str:
    """``"<mixing label>, s = <scale>"`` of case ``c``: its column in the table and its panels' title."""
    return f"{ccjax.MIXING_FAMILIES[str(arrays['families'][c])].label}, s = {arrays['scales'][c]:g}"


def summary_numbers(arrays: dict, case: int) -> dict[str, np.ndarray]:
    """The per-seed numbers of one case that the table shows, by :data:`ROWS` key."""
    cos = arrays["eigen_cos"][case]  # (K, n), i = 0 is the top eigenvector
    bands = {"cos_top20": cos[:, :20], "cos_at_40": cos[:, 38:43], "cos_from_70": cos[:, 69:]}  # i = 40 +- 2
    saved = {key: arrays[key][case] for key in ROWS if key in arrays}  # the other rows are saved arrays
    return {key: band.mean(axis=1) for key, band in bands.items()} | saved


def _published(published) -> str:
    """The table's paper column: "~0.97", a range "0-0.1", or "-" where the paper gives nothing."""
    if published is None:
        return "-"
    return f"{published[0]:g}-{published[1]:g}" if isinstance(published, tuple) else f"~{published:g}"


def summary(arrays: dict, manifest: dict) -> str:
    cases = range(len(arrays["families"]))
    numbers = [summary_numbers(arrays, c) for c in cases]
    rows = [
        [label, *[format_mean_sem(n[key], 3) for n in numbers], _published(published)]
        for key, (label, published, *_) in ROWS.items()
    ]
    steps, seeds = ccjax.io.saved_config(manifest).steps, count(len(arrays["seeds"]), "seed")
    title = f"eigen-subspace alignment: p = 0.01, {steps:,} steps, {seeds} (mean +- SEM)"
    table = format_table(["quantity", *[case_title(arrays, c) for c in cases], "paper (asym 0.03)"], rows)
    return f"{title}\n{table}\n{ZERO_DIAGONAL_NOTE}"


def figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    n_cases, d_mlp, seed = len(arrays["families"]), arrays["projection_in"].shape[-1], arrays["seeds"][0]
    fig, axes = plt.subplots(2, n_cases, figsize=(6.2 * n_cases, 9), layout="constrained", squeeze=False)
    index = np.arange(1, arrays["eigen_cos"].shape[-1] + 1)
    for c in range(n_cases):
        ax, title = axes[0, c], case_title(arrays, c)
        for key, label, color in (("eigen_cos", "cos(E_i, A E_i)", "C0"), ("svd_cos", "cos(U_i, A V_i)", "C1")):
            plot_seed_mean(ax, index, arrays[key][c], color=color, label=label, alpha=0.25)
        ax.axvline(d_mlp, color="0.5", ls=":", lw=1, label=f"i = d_mlp = {d_mlp}")
        if arrays["families"][c] == "asymmetric":
            ax.plot([10, 40, 85], [PUBLISHED["cos_top20"], PUBLISHED["cos_at_40"], 0.05], "kx", ms=8, label="paper")
        ax.set(xlabel="eigen / singular index i (descending)", ylabel="cosine", title=title, ylim=(-0.1, 1.05))
        ax.legend(fontsize=8)

        ax = axes[1, c]  # the entries of A against those of sM (first seed), with the off-diagonal and diagonal fits
        linear, scaled = arrays["linear_map"][c, 0], arrays["scaled_mixing"][c, 0]
        off = ~np.eye(linear.shape[0], dtype=bool)
        ax.scatter(scaled[off], linear[off], s=2, alpha=0.3, color="C0", label="off-diagonal", rasterized=True)
        ax.scatter(np.diag(scaled), np.diag(linear), s=8, color="C3", label="diagonal")
        x, slope = np.linspace(scaled[off].min(), scaled[off].max(), 2), arrays["off_diagonal_slope"][c, 0]
        ax.plot(x, slope * x, "k-", lw=1, label=f"off-diagonal slope {slope:.2f}")
        d_slope, d_icpt = arrays["diagonal_slope"][c, 0], arrays["diagonal_intercept"][c, 0]
        if np.isfinite(d_slope):
            xd = np.linspace(np.diag(scaled).min(), np.diag(scaled).max(), 2)
            ax.plot(xd, d_slope * xd + d_icpt, "r--", lw=1, label=f"diagonal {d_slope:.2f} x + {d_icpt:.2f}")
        ax.set(xlabel="entry of sM", ylabel="entry of A = W_out W_in", title=f"{title}: entries (seed {seed})")
        ax.legend(fontsize=8, markerscale=3)
    fig.suptitle(f"eigen-subspace alignment ({count(len(arrays['seeds']), 'seed')}, mean +- SEM bands)")
    return fig


def projection_figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    families = [str(f) for f in arrays["families"]]
    fig, axes = plt.subplots(len(families), 2, figsize=(11, 4.5 * len(families)), layout="constrained", squeeze=False)
    for c, family in enumerate(families):
        for ax, side in zip(axes[c], ("in", "out"), strict=True):
            data = arrays[f"projection_{side}"][c, 0]
            limit = np.abs(data).max()
            image = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
            title = f"E . W_{side}: {ccjax.MIXING_FAMILIES[family].label}"
            ax.set(xlabel="neuron", ylabel="eigenvector i (descending)", title=title)
            fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"projections of the weights on the eigenvectors of M (seed {arrays['seeds'][0]})")
    return fig


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

SPEC = Experiment.from_module(
    __name__,
    title="alignment of trained weights with the eigen-subspace of M",
    config=PAPER,
    options=(seeds_option("5"), unscaled_steps_option("training steps (the paper: 20,000)")),
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
