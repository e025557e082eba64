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

import numpy as np

import ccjax
from ccjax import baselines, measure, report
from ccjax.report import Comparison, compare_value, count, format_estimate, format_mean_sem, format_table, mean_sem

from ._cli import format_duration, mixing_formulas, positive_int, say, sigma_list
from ._experiment import train_sweep
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, families_option, seeds_option, unscaled_steps_option

# Experiment 6 (docs/paper.md §5, §6.6): SNMF L/p on exactly-one data by sigma, asymmetric M, code orientation.
PUBLISHED = {0.0: 0.0835, 0.005: 0.0798, 0.008: 0.0787, 0.01: 0.0778, 0.015: 0.0785, 0.02: 0.0817}
PUBLISHED |= {0.03: 0.0924, 0.04: 0.1150}
PUBLISHED_FAMILY, PUBLISHED_NOTE = "asymmetric", "read off the published figure (about +-0.001)"

EXPERIMENT = "snmf_sweep"
PAPER = ccjax.TrainConfig(data="exactly-one", mixing="asymmetric")
NMF_KEY_TAG = 6  # each seed's NMFs draw from fold_in(key(seed), 6): apart from its training run's split of key(seed)
TRAINED = ("trained_loss", "final_train_loss_per_feature", "w_in", "w_out")
REFERENCES = ("trained_loss", "svd_loss", "naive_loss")  # the table's and the figure's references to SNMF
TITLE = "semi-NMF vs sigma, exactly-one data; {} (mean +- SEM); {} outer iterations; naive L/p on clean labels = {:.4f}"
ARRAYS = {
    "families": "(F,) mixing families",
    "sigmas": "(S,) mixing magnitudes sigma (the labels are relu(x) + sigma M x)",
    "seeds": "(K,) seeds; a seed fixes M, the NMF initialisation and the trained model's init and data",
    "orientations": "(O,) SNMF target orientations: faithful (I + sigma M)^T, paper-code I + sigma M",
    **measure.describe_arrays("F, K, S", measure.BASELINE_ARRAYS),
    "mixing": "(F, K, n_features, n_features) unscaled M of each seed (shared by every sigma)",
    **measure.describe_arrays("F, K, S", TRAINED, suffix=" (absent with --no-train)"),
}


def run(args, session) -> tuple[dict, dict]:
    families, seeds, sigmas = args.families, args.seeds, args.sigmas
    n_models = len(families) * len(seeds) * len(sigmas)
    plan = f"{report.count_families(len(families))} x {count(len(seeds), 'seed')} x {count(len(sigmas), 'sigma')}: "
    plan += f"{n_models * len(baselines.ORIENTATIONS)} semi-NMFs ({args.outer_iterations} outer iterations)"
    say(plan + ("" if args.no_train else f", {n_models} models x {args.config.total_steps:,} steps"))
    axes = {"families": np.asarray(families), "sigmas": np.asarray(sigmas, np.float64), "seeds": np.asarray(seeds)}
    arrays = axes | {"orientations": np.asarray(baselines.ORIENTATIONS)}
    arrays |= measure.stack_fields([family_arrays(family, args, session) for family in families])
    method = measure.describe_baseline_sweep(args.config.d_mlp, args.outer_iterations)
    method["semi_nmf"]["key"] = f"fold_in(key(seed), {NMF_KEY_TAG}), shared by every sigma and orientation"
    extras = {"trained": not args.no_train, "orientations": method.pop("orientations")}
    return arrays, extras | {"mixing": mixing_formulas(families)} | method


def family_arrays(family: str, args, session) -> dict[str, np.ndarray]:
    """One family's SNMF, SVD, naive (and trained) models' arrays, leading axes (K, S), and each seed's M (K, n, n)."""
    label, trained = ccjax.MIXING_FAMILIES[family].label, {}
    if args.no_train:  # the M that each seed's training run would draw
        mixing = measure.initial_mixings(dataclasses.replace(PAPER, mixing=family), args.seeds)
    else:
        with session.timed(f"train_{family}"):
            config, axes = dataclasses.replace(args.config, mixing=family), {"seed": args.seeds, "scale": args.sigmas}
            result = train_sweep(config, axes, f"{label}, exactly-one", session)
        trained = {"trained_loss": baselines.exactly_one_losses(result.params, result.scaled_mixing)}
        trained |= measure.sweep_arrays(result, TRAINED[1:])
        mixing = measure.shared_mixing(result.mixing, sigma_axis=1)
    say(f"{label}: {len(args.seeds) * len(args.sigmas) * len(baselines.ORIENTATIONS)} semi-NMFs ...")
    with session.timed(f"snmf_{family}"):
        nmf = (args.seeds, args.config.d_mlp, args.outer_iterations)
        found = measure.baseline_sweep_arrays(mixing, args.sigmas, *nmf, key_tag=NMF_KEY_TAG)
    say(f"done in {format_duration(session.timings[f'snmf_{family}_seconds'])}")
    return found | {"mixing": mixing} | trained


def summary(arrays: dict, manifest: dict) -> str:
    faithful, code = map(list(arrays["orientations"]).index, ("faithful", "paper-code"))
    headers = ["sigma", "SNMF faithful", "SNMF paper-code", "trained", "SVD", "naive", "paper", "code - paper"]
    headers.append("faithful - paper")
    seeds, naive = count(len(arrays["seeds"]), "seed"), manifest["naive_loss_per_feature"]
    lines = [TITLE.format(seeds, manifest["semi_nmf"]["outer_iterations"], naive)]
    for f, family in enumerate(arrays["families"]):
        snmf, rows = arrays["snmf_loss"][f], []
        for s, sigma in enumerate(arrays["sigmas"]):
            row = [f"{sigma:g}", *(format_mean_sem(snmf[:, s, o]) for o in (faithful, code))]
            row += [format_mean_sem(arrays[name][f, :, s]) if name in arrays else "-" for name in REFERENCES]
            paper = PUBLISHED.get(float(sigma)) if family == PUBLISHED_FAMILY else None
            gaps = [f"{snmf[:, s, o].mean() - paper:+.4f}" for o in (code, faithful)] if paper else ["-", "-"]
            rows.append([*row, f"{paper:.4f}" if paper else "-", *gaps])
        lines += ["", ccjax.MIXING_FAMILIES[family].label, format_table(headers, rows)]
        if family == "symmetric":
            gap = np.abs(snmf[..., faithful] - snmf[..., code]).max()
            lines.append(f"(symmetric M: the two orientations are the same target; max |difference| {gap:.1e})")
    lines += ["", f"paper: SNMF of I + sigma M (code orientation), asymmetric M, {PUBLISHED_NOTE}."]
    return "\n".join(lines + (["trained models: not run (--no-train)."] if "trained_loss" not in arrays else []))


def figure(arrays: dict, manifest: dict):
    from ccjax import plot

    families, loss = arrays["families"], arrays["snmf_loss"]
    references = [{n.removesuffix("_loss"): arrays[n][f] for n in REFERENCES if n in arrays} for f in range(len(loss))]
    titles = [ccjax.MIXING_FAMILIES[family].label for family in families]
    published = [PUBLISHED if family == PUBLISHED_FAMILY else None for family in families]
    ylim = (min(loss.min(), arrays.get("trained_loss", loss).min()) - 0.005, max(0.125, PUBLISHED[0.04] + 0.005))
    title = f"semi-NMF vs mixing magnitude ({count(len(arrays['seeds']), 'seed')}, mean +- SEM bands)"
    sigmas, naive = arrays["sigmas"], manifest["naive_loss_per_feature"]
    return plot.plot_baseline_sweeps(sigmas, loss, references, titles, published, naive=naive, ylim=ylim, title=title)


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    families, rows = list(arrays["families"]), []
    faithful, code = map(list(arrays["orientations"]).index, ("faithful", "paper-code"))
    for s, sigma in enumerate(arrays["sigmas"] if PUBLISHED_FAMILY in families else []):
        if float(sigma) in PUBLISHED:
            loss = arrays["snmf_loss"][families.index(PUBLISHED_FAMILY), :, s]
            quantity, note = f"SNMF of I + σM (code orientation), asym, σ = {sigma:g}", "faithful (I + σM)ᵀ: "
            note += format_estimate(*mean_sem(loss[:, faithful]))
            rows.append(compare_value(EXPERIMENT, quantity, PUBLISHED[float(sigma)], loss[:, code], note=note))
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
    published={"family": PUBLISHED_FAMILY, "orientation": "paper-code", "snmf_loss": PUBLISHED, "note": PUBLISHED_NOTE},
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
