"""Paper experiment 6 (SNMF vs sigma): the semi-NMF baseline's L/p against the mixing magnitude.

The semi-NMF model factorises the labels' linear map on positive inputs, T ~ U V with
U >= 0 (W_in = U, W_out = V). Like the trained models it beats the naive model
(L/p = 0.0833) for moderate sigma and loses for large sigma, without any computation in
superposition. Both target orientations are fitted: the faithful (I + sigma M)^T and the
paper code's I + sigma M (they agree for symmetric M). Trained models on the same
exactly-one data, the SVD model and the naive model are shown for comparison.
"""

import dataclasses
import sys

import jax
import jax.numpy as jnp
import numpy as np

import ccjax
from ccjax import baselines, measure, report
from ccjax.problem import seed_key
from ccjax.report import Comparison, compare_value, count, format_estimate, format_mean_sem, format_table, mean_sem

from . import _cli
from ._cli import format_duration, positive_int, say, sigma_list
from ._experiment import train_sweep
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, families_option, seeds_option, unscaled_steps_option

# Experiment 6 (docs/paper.md §5, §6.6): SNMF L/p on exactly-one data by sigma, asymmetric M, code orientation.
PUBLISHED = {0.0: 0.0835, 0.005: 0.0798, 0.008: 0.0787, 0.01: 0.0778, 0.015: 0.0785, 0.02: 0.0817}
PUBLISHED |= {0.03: 0.0924, 0.04: 0.1150}
PUBLISHED_FAMILY, PUBLISHED_NOTE = "asymmetric", "read off the published figure (about +-0.001)"

EXPERIMENT = "snmf_sweep"
PAPER = ccjax.TrainConfig(data="exactly-one", mixing="asymmetric")
ORIENTATIONS = baselines.ORIENTATIONS
NMF_KEY_TAG = 6  # each seed's NMFs draw from fold_in(key(seed), 6): apart from its training run's split of key(seed)
ARRAYS = {
    "families": "(F,) mixing families",
    "sigmas": "(S,) mixing magnitudes sigma (the labels are relu(x) + sigma M x)",
    "seeds": "(K,) seeds; a seed fixes M, the NMF initialisation and the trained model's init and data",
    "orientations": "(O,) SNMF target orientations: faithful (I + sigma M)^T, paper-code I + sigma M",
    "snmf_loss": "(F, K, S, O) exact exactly-one L/p of the SNMF model",
    "snmf_fit_error": "(F, K, S, O) ||T_o - W_in W_out||_F against the orientation's own target T_o",
    "svd_loss": "(F, K, S) exact exactly-one L/p of the top-50 SVD of the faithful target",
    "naive_loss": "(F, K, S) exact exactly-one L/p of the naive model on these labels",
    "snmf_w_in": "(F, K, S, O, n_features, d_mlp) SNMF W_in (= U >= 0)",
    "snmf_w_out": "(F, K, S, O, d_mlp, n_features) SNMF W_out (= V)",
    "mixing": "(F, K, n_features, n_features) unscaled M of each seed (shared by every sigma)",
    "trained_loss": "(F, K, S) exact exactly-one L/p of the trained model (absent with --no-train)",
    "final_train_loss_per_feature": "(F, K, S) training L/p over the last logging interval (absent with --no-train)",
    "w_in": "(F, K, S, n_features, d_mlp) trained W_in (absent with --no-train)",
    "w_out": "(F, K, S, d_mlp, n_features) trained W_out (absent with --no-train)",
}


def run(args, session) -> tuple[dict, dict]:
    families, seeds, sigmas = args.families, args.seeds, args.sigmas
    n_models = len(families) * len(seeds) * len(sigmas)
    plan = f"{report.count_families(len(families))} x {count(len(seeds), 'seed')} x {count(len(sigmas), 'sigma')}: "
    plan += f"{n_models * len(ORIENTATIONS)} semi-NMFs ({args.outer_iterations} outer iterations)"
    say(plan + ("" if args.no_train else f", {n_models} models x {args.config.total_steps:,} steps"))
    arrays = {
        "families": np.asarray(families),
        "sigmas": np.asarray(sigmas, np.float64),
        "seeds": np.asarray(seeds),
        "orientations": np.asarray(ORIENTATIONS),
        **measure.stack_fields([family_arrays(family, args, session) for family in families]),
    }
    method = measure.describe_baseline_sweep(args.config.d_mlp, args.outer_iterations)
    method["semi_nmf"]["key"] = f"fold_in(key(seed), {NMF_KEY_TAG}), shared by every sigma and orientation"
    extras = {"trained": not args.no_train, "orientations": method.pop("orientations")}
    return arrays, extras | {"mixing": _cli.mixing_formulas(families)} | method


def family_arrays(family: str, args, session) -> dict[str, np.ndarray]:
    """One family's SNMF, SVD and naive models (and trained ones) with their exact L/p, leading axes (K, S)."""
    mixing, trained = mixing_and_training(family, args, session)
    n_factorisations = len(args.seeds) * len(args.sigmas) * len(ORIENTATIONS)
    say(f"{ccjax.MIXING_FAMILIES[family].label}: {n_factorisations} semi-NMFs ...")
    with session.timed(f"snmf_{family}"):
        keys = jnp.stack([jax.random.fold_in(seed_key(int(seed)), NMF_KEY_TAG) for seed in args.seeds])
        found = measure.baseline_sweep(mixing, args.sigmas, keys, args.config.d_mlp, args.outer_iterations)
    say(f"done in {format_duration(session.timings[f'snmf_{family}_seconds'])}")
    losses = {name: getattr(found, name) for name in ("snmf_loss", "snmf_fit_error", "svd_loss", "naive_loss")}
    weights = {"snmf_w_in": found.snmf.w_in, "snmf_w_out": found.snmf.w_out, "mixing": mixing}
    return losses | weights | trained


def mixing_and_training(family: str, args, session) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(K, n, n): the unscaled M of each seed (shared by its sigmas) and, unless --no-train, the trained arrays."""
    if args.no_train:  # the M that each seed's training run would draw
        return measure.initial_mixings(dataclasses.replace(PAPER, mixing=family), args.seeds), {}
    with session.timed(f"train_{family}"):
        axes, what = {"seed": args.seeds, "scale": args.sigmas}, f"{ccjax.MIXING_FAMILIES[family].label}, exactly-one"
        result = train_sweep(dataclasses.replace(args.config, mixing=family), axes, what, session)
    trained = {"trained_loss": baselines.exactly_one_losses(result.params, result.scaled_mixing)}
    trained |= measure.sweep_arrays(result, ("final_train_loss_per_feature", "w_in", "w_out"))
    return measure.shared_mixing(result.mixing, sigma_axis=1), trained


REFERENCES = ("trained_loss", "svd_loss", "naive_loss")  # the table's and the figure's references to SNMF


def summary(arrays: dict, manifest: dict) -> str:
    faithful, code = map(list(arrays["orientations"]).index, ("faithful", "paper-code"))
    lines = [
        f"semi-NMF vs sigma, exactly-one data; {count(len(arrays['seeds']), 'seed')} (mean +- SEM); "
        f"{manifest['semi_nmf']['outer_iterations']} outer iterations; naive L/p on clean labels = "
        f"{manifest['naive_loss_per_feature']:.4f}",
    ]
    headers = ["sigma", "SNMF faithful", "SNMF paper-code", "trained", "SVD", "naive", "paper", "code - paper"]
    headers.append("faithful - paper")
    for f, family in enumerate(arrays["families"]):
        rows = []
        for s, sigma in enumerate(arrays["sigmas"]):
            snmf = arrays["snmf_loss"][f, :, s]
            row = [f"{sigma:g}", format_mean_sem(snmf[:, faithful]), format_mean_sem(snmf[:, code])]
            row += [format_mean_sem(arrays[name][f, :, s]) if name in arrays else "-" for name in REFERENCES]
            published = PUBLISHED.get(float(sigma)) if family == PUBLISHED_FAMILY else None
            if published is None:
                row += ["-", "-", "-"]
            else:
                row += [f"{published:.4f}", *(f"{snmf[:, o].mean() - published:+.4f}" for o in (code, faithful))]
            rows.append(row)
        lines += ["", ccjax.MIXING_FAMILIES[family].label, format_table(headers, rows)]
        if family == "symmetric":
            gap = np.abs(arrays["snmf_loss"][f, ..., faithful] - arrays["snmf_loss"][f, ..., code]).max()
            lines.append(f"(symmetric M: the two orientations are the same target; max |difference| {gap:.1e})")
    lines += ["", f"paper: SNMF of I + sigma M (code orientation), asymmetric M, {PUBLISHED_NOTE}."]
    if "trained_loss" not in arrays:
        lines.append("trained models: not run (--no-train).")
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    from ccjax import plot

    families, loss = arrays["families"], arrays["snmf_loss"]
    references = [
        {name.removesuffix("_loss"): arrays[name][f] for name in REFERENCES if name in arrays}
        for f in range(len(families))
    ]
    published = [PUBLISHED if family == PUBLISHED_FAMILY else None for family in families]
    titles = [ccjax.MIXING_FAMILIES[family].label for family in families]
    low = min(loss.min(), arrays.get("trained_loss", loss).min())
    ylim = (low - 0.005, max(0.125, PUBLISHED[0.04] + 0.005))
    title = f"semi-NMF vs mixing magnitude ({count(len(arrays['seeds']), 'seed')}, mean +- SEM bands)"
    naive = manifest["naive_loss_per_feature"]
    return plot.plot_baseline_sweeps(
        arrays["sigmas"], loss, references, titles, published, naive=naive, ylim=ylim, title=title
    )


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    families, rows = list(arrays["families"]), []
    if PUBLISHED_FAMILY not in families:
        return rows
    loss = arrays["snmf_loss"][families.index(PUBLISHED_FAMILY)]
    faithful, code = map(list(arrays["orientations"]).index, ("faithful", "paper-code"))
    for s, sigma in enumerate(arrays["sigmas"]):
        if float(sigma) in PUBLISHED:
            quantity = f"SNMF of I + σM (code orientation), asym, σ = {sigma:g}"
            note = f"faithful (I + σM)ᵀ: {format_estimate(*mean_sem(loss[:, s, faithful]))}"
            rows.append(compare_value(EXPERIMENT, quantity, PUBLISHED[float(sigma)], loss[:, s, code], note=note))
    return rows


QUICK_ARGS = ("--sigmas", "0,0.02", *QUICK_TRAIN, "--outer-iterations", "50")
STAGES = (Stage("snmf_sweep", "Experiment 6: semi-NMF vs σ", 6.0, quick_args=QUICK_ARGS, compare=compare),)

OUTER_HELP = "semi-NMF outer iterations (V solve + 5 projected-gradient steps on U each)"
SPEC = Experiment.from_module(
    __name__,
    title="semi-NMF L/p against the mixing magnitude sigma, exactly-one data",
    config=PAPER,
    axes={"family": "families", "seed": "seeds", "sigma": "sigmas"},
    options=(
        Option("--sigmas", sigma_list, "0,0.005,0.008,0.01,0.015,0.02,0.03,0.04", "mixing magnitudes (>= 0)", "LIST"),
        families_option(("asymmetric", "symmetric")),
        seeds_option(),
        unscaled_steps_option("training steps (exactly-one data)"),
        Option("--no-train", None, False, "only the SNMF, SVD and naive models (no training)"),
        Option("--outer-iterations", positive_int, 500, OUTER_HELP),
    ),
    published={
        "family": PUBLISHED_FAMILY,
        "orientation": "paper-code",
        "snmf_loss": {str(sigma): value for sigma, value in PUBLISHED.items()},
        "note": PUBLISHED_NOTE,
    },
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
