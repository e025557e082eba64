"""Paper experiment 6: the semi-NMF baseline's L/p against the mixing magnitude sigma (docs/paper.md §5, §6.6).

For each Gaussian mixing family, trains one sweep over (seed x sigma) on exactly-one data,
then factorises the target map of *the same* M (``SweepResult.mixing``) with the paper's
semi-NMF, in both target orientations (faithful ``(I + sigma M)^T`` and the paper code's
``I + sigma M``), and adds the naive and SVD models as references. Every model's L/p on
exactly-one data is exact (:func:`ccjax.exactly_one_loss_per_feature`, L/p = n c_1), so
no sampling is involved. Prints the table next to the published SNMF values (asymmetric
M, code orientation) and draws one panel per family.

    python -m experiments.snmf_sweep                 # the paper's sigmas, 3 seeds, trained models too
    python -m experiments.snmf_sweep --no-train      # SNMF, SVD and naive only (about a minute)
    python -m experiments.snmf_sweep --plot-only
"""

import argparse
import dataclasses
import functools
import sys

import jax
import jax.numpy as jnp
import numpy as np

import ccjax
from ccjax import baselines
from ccjax.engine import hyper_from_config, init_run
from ccjax.problem import seed_key

from ._cli import (
    count,
    count_families,
    format_duration,
    format_mean_sem,
    format_table,
    mixing_formulas,
    plot_seed_mean,
    positive_int,
    say,
    shared_mixing,
    sigma_list,
    stack_fields,
)
from ._compare import Comparison, compare_value, format_estimate, mean_sem
from ._experiment import Session, train_sweep
from ._spec import QUICK_TRAIN, Experiment, Option, Stage, families_option, seeds_option, unscaled_steps_option

# Experiment 6, docs/paper.md §5, §6.6: SNMF L/p on exactly-one data by sigma, asymmetric M, the
# paper code's orientation (I + sigma M), read off the published figure (±0.001).
PUBLISHED = {0.0: 0.0835, 0.005: 0.0798, 0.008: 0.0787, 0.01: 0.0778, 0.015: 0.0785, 0.02: 0.0817}
PUBLISHED |= {0.03: 0.0924, 0.04: 0.1150}

EXPERIMENT = "snmf_sweep"
FAMILIES = ("asymmetric", "symmetric")
PAPER = ccjax.TrainConfig(data="exactly-one", mixing="asymmetric")
PAPER_SIGMAS = "0,0.005,0.008,0.01,0.015,0.02,0.03,0.04"
PAPER_OUTER_ITERATIONS = 500
OUTER_ITERATIONS_HELP = "semi-NMF outer iterations (V solve + 5 projected-gradient steps on U each)"
# The curve of the published SNMF values (_published.SNMF_SWEEP).
PUBLISHED_FAMILY, PUBLISHED_ORIENTATION = "asymmetric", "paper-code"
# The NMF that seeds each semi-NMF draws from fold_in(key(seed), NMF_KEY_TAG): one key per
# seed, shared by every sigma and both orientations (common random numbers), and distinct
# from the training run's split of key(seed).
NMF_KEY_TAG = 6
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

DESCRIPTION = """\
Paper experiment 6 (SNMF vs sigma): the semi-NMF baseline's L/p against the mixing magnitude.

The semi-NMF model factorises the labels' linear map on positive inputs, T ~ U V with
U >= 0 (W_in = U, W_out = V). Like the trained models it beats the naive model
(L/p = 0.0833) for moderate sigma and loses for large sigma, without any computation in
superposition. Both target orientations are fitted: the faithful (I + sigma M)^T and the
paper code's I + sigma M (they agree for symmetric M). Trained models on the same
exactly-one data, the SVD model and the naive model are shown for comparison.
"""


def seed_mixing(family: str, seeds) -> np.ndarray:
    """(K, n, n): the unscaled M that the training run of each seed draws (via :func:`init_run`)."""
    config = dataclasses.replace(PAPER, mixing=family)
    hyper = hyper_from_config(config)
    return np.stack([np.asarray(init_run(config, seed_key(int(seed)), hyper).mixing) for seed in seeds])


def nmf_keys(seeds) -> jax.Array:
    """(K,) keys of the NMF initialisation, one per seed."""
    return jnp.stack([jax.random.fold_in(seed_key(int(seed)), NMF_KEY_TAG) for seed in seeds])


@functools.partial(jax.jit, static_argnames=("d_mlp", "outer_iterations"))
def _snmf_batch(targets, keys, *, d_mlp: int, outer_iterations: int):
    def one(target, key):
        factors = baselines.semi_nmf(target, d_mlp, key, outer_iterations=outer_iterations)
        return ccjax.FeatureMLP(w_in=factors.u, w_out=factors.v)

    return jax.vmap(one)(targets, keys)


@jax.jit
def _exactly_one_losses(params: ccjax.FeatureMLP, scaled_mixing):
    return jax.vmap(ccjax.exactly_one_loss_per_feature)(params, scaled_mixing)


def snmf_models(
    mixing: np.ndarray, sigmas, keys, *, d_mlp: int = 50, outer_iterations: int = PAPER_OUTER_ITERATIONS
) -> tuple[ccjax.FeatureMLP, np.ndarray]:
    """SNMF of every (seed, sigma, orientation) target: params with leading axes (K, S, O) and
    ``||T_o - W_in W_out||_F``, (K, S, O). ``mixing`` is (K, n, n), ``keys`` (K,)."""
    sigmas = np.asarray(sigmas, np.float32)
    n_seeds, n = mixing.shape[0], mixing.shape[-1]
    shape = (n_seeds, len(sigmas), len(baselines.ORIENTATIONS))
    targets = jnp.stack(
        [
            jnp.stack([jnp.stack([baselines.target_map(m, s, o) for o in baselines.ORIENTATIONS]) for s in sigmas])
            for m in jnp.asarray(mixing)
        ]
    )
    flat_keys = jnp.repeat(keys, shape[1] * shape[2])
    params = _snmf_batch(targets.reshape(-1, n, n), flat_keys, d_mlp=d_mlp, outer_iterations=outer_iterations)
    params = jax.tree.map(lambda leaf: np.asarray(leaf).reshape(*shape, *leaf.shape[1:]), params)
    fit_error = np.linalg.norm(np.asarray(targets) - params.w_in @ params.w_out, axis=(-2, -1))
    return params, fit_error


def exact_losses(params: ccjax.FeatureMLP, scaled_mixing: np.ndarray) -> np.ndarray:
    """Exact exactly-one L/p of models with any leading axes (those of ``scaled_mixing[..., :, :]``)."""
    lead = scaled_mixing.shape[:-2]
    n = scaled_mixing.shape[-1]
    flat = jax.tree.map(lambda leaf: jnp.asarray(leaf).reshape(-1, *leaf.shape[len(lead) :]), params)
    losses = _exactly_one_losses(flat, jnp.asarray(scaled_mixing, jnp.float32).reshape(-1, n, n))
    return np.asarray(losses, np.float64).reshape(lead)


@functools.partial(jax.jit, static_argnames=("d_mlp",))
def _svd_batch(targets, *, d_mlp: int):
    return jax.vmap(lambda target: baselines.svd_model(target, d_mlp))(targets)


def reference_models(mixing: np.ndarray, sigmas, d_mlp: int = 50) -> tuple[ccjax.FeatureMLP, ccjax.FeatureMLP]:
    """The naive and faithful-target SVD models for every (seed, sigma), leading axes (K, S)."""
    n_seeds, n = mixing.shape[0], mixing.shape[-1]
    shape = (n_seeds, len(sigmas))
    targets = jnp.stack([baselines.target_map(m, s, "faithful") for m in jnp.asarray(mixing) for s in sigmas])
    svd = jax.tree.map(lambda leaf: np.asarray(leaf).reshape(*shape, *leaf.shape[1:]), _svd_batch(targets, d_mlp=d_mlp))
    naive = baselines.naive_model(n, d_mlp)
    naive = jax.tree.map(lambda leaf: np.broadcast_to(np.asarray(leaf), (*shape, *leaf.shape)), naive)
    return naive, svd


def run(args: argparse.Namespace, session: Session) -> tuple[dict, dict]:
    """Fit (and unless --no-train, train) every family's models and collect the arrays and manifest extras."""
    say(plan(args))
    per_family = [family_arrays(family, args, session) for family in args.families]
    arrays = {
        "families": np.asarray(args.families),
        "sigmas": np.asarray(args.sigmas, np.float64),
        "seeds": np.asarray(args.seeds),
        "orientations": np.asarray(baselines.ORIENTATIONS),
        **stack_fields(per_family),
    }
    return arrays, manifest_extras(args)


def plan(args: argparse.Namespace) -> str:
    """The status line that says how many semi-NMFs (and trained models) the run makes."""
    families, seeds, sigmas = args.families, args.seeds, args.sigmas
    n_snmf = len(families) * len(seeds) * len(sigmas) * len(baselines.ORIENTATIONS)
    text = f"{count_families(len(families))} x {count(len(seeds), 'seed')} x {count(len(sigmas), 'sigma')}: "
    text += f"{n_snmf} semi-NMFs ({args.outer_iterations} outer iterations)"
    if not args.no_train:
        text += f", {len(families) * len(seeds) * len(sigmas)} models x {args.config.total_steps:,} steps"
    return text


def family_arrays(family: str, args: argparse.Namespace, session: Session) -> dict[str, np.ndarray]:
    """One family's SNMF, SVD and naive models (and trained ones) with their exact L/p, leading axes (K, S)."""
    if args.no_train:
        mixing, trained = seed_mixing(family, args.seeds), {}
    else:
        mixing, trained = train_family(family, args, session)
    scaled = np.asarray(args.sigmas, np.float64)[None, :, None, None] * mixing[:, None]  # (K, S, n, n)
    d, orientations = args.config.d_mlp, len(baselines.ORIENTATIONS)
    say(f"{ccjax.MIXING_FAMILIES[family].label}: {len(args.seeds) * len(args.sigmas) * orientations} semi-NMFs ...")
    with session.timed(f"snmf_{family}"):
        keys = nmf_keys(args.seeds)
        snmf, fit = snmf_models(mixing, args.sigmas, keys, d_mlp=d, outer_iterations=args.outer_iterations)
    say(f"done in {format_duration(session.timings[f'snmf_{family}_seconds'])}")
    naive, svd = reference_models(mixing, args.sigmas, d)
    return {
        "snmf_loss": exact_losses(snmf, np.repeat(scaled[:, :, None], orientations, axis=2)),
        "snmf_fit_error": fit,
        "svd_loss": exact_losses(svd, scaled),
        "naive_loss": exact_losses(naive, scaled),
        "snmf_w_in": snmf.w_in,
        "snmf_w_out": snmf.w_out,
        "mixing": mixing,
        **trained,
    }


def train_family(family: str, args: argparse.Namespace, session: Session) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train one family's (seed x sigma) sweep: the M of each seed and the trained models' arrays."""
    config = dataclasses.replace(args.config, mixing=family)
    with session.timed(f"train_{family}"):
        axes = {"seed": args.seeds, "scale": args.sigmas}
        result = train_sweep(config, axes, f"{ccjax.MIXING_FAMILIES[family].label}, exactly-one", session)
    # Every sigma of a seed shares its M; the SNMF factorises exactly that M.
    return shared_mixing(result.mixing, sigma_axis=1), {
        "trained_loss": exact_losses(result.params, result.scaled_mixing),
        "final_train_loss_per_feature": np.asarray(result.history.train_loss_per_feature[..., -1]),
        "w_in": np.asarray(result.params.w_in),
        "w_out": np.asarray(result.params.w_out),
    }


def manifest_extras(args: argparse.Namespace) -> dict:
    """The manifest's fields beyond the common ones: orientations, the semi-NMF, references and evaluation."""
    return {
        "trained": not args.no_train,
        "orientations": {
            "faithful": "T = (I + sigma M)^T, the map the labels apply to row inputs",
            "paper-code": "T = I + sigma M, what the paper code factorises (paper_code/nb7_semi_nmf_solution.py)",
        },
        "mixing": mixing_formulas(args.families),
        "semi_nmf": {
            "rank": args.config.d_mlp,
            "outer_iterations": args.outer_iterations,
            "inner_steps": 5,
            "step_size": "cosine-annealed 0.1 -> 0.001",
            "init": "U from NMF of |T| (Lee-Seung, 2000 iterations), V = pinv(U) T",
            "key": f"fold_in(key(seed), {NMF_KEY_TAG}), shared by every sigma and orientation",
        },
        "references": {
            "svd": "top-50 SVD of the faithful target, neuron signs flipped (baselines.svd_model)",
            "naive": "W_in[f, f] = W_out[f, f] = 1 for f < 50, evaluated on these labels",
        },
        "evaluation": "exact: L/p = n c_1 on exactly-one data (ccjax.exactly_one_loss_per_feature)",
    }


def summary(arrays: dict, manifest: dict) -> str:
    families = [str(family) for family in arrays["families"]]
    orientations = [str(orientation) for orientation in arrays["orientations"]]
    faithful, code = orientations.index("faithful"), orientations.index("paper-code")
    trained = "trained_loss" in arrays
    n_seeds = len(arrays["seeds"])
    lines = [
        f"semi-NMF vs sigma, exactly-one data; {count(n_seeds, 'seed')} (mean +- SEM); "
        f"{manifest['semi_nmf']['outer_iterations']} outer iterations; naive L/p on clean labels = "
        f"{manifest['naive_loss_per_feature']:.4f}",
    ]
    headers = ["sigma", "SNMF faithful", "SNMF paper-code", "trained", "SVD", "naive", "paper", "code - paper"]
    headers.append("faithful - paper")
    for f, family in enumerate(families):
        rows = []
        for s, sigma in enumerate(arrays["sigmas"]):
            snmf = arrays["snmf_loss"][f, :, s]
            published = PUBLISHED.get(float(sigma)) if family == PUBLISHED_FAMILY else None
            row = [f"{sigma:g}", format_mean_sem(snmf[:, faithful]), format_mean_sem(snmf[:, code])]
            row.append(format_mean_sem(arrays["trained_loss"][f, :, s]) if trained else "-")
            row += [format_mean_sem(arrays["svd_loss"][f, :, s]), format_mean_sem(arrays["naive_loss"][f, :, s])]
            if published is None:
                row += ["-", "-", "-"]
            else:
                row += [f"{published:.4f}", f"{snmf[:, code].mean() - published:+.4f}"]
                row.append(f"{snmf[:, faithful].mean() - published:+.4f}")
            rows.append(row)
        lines += ["", ccjax.MIXING_FAMILIES[family].label, format_table(headers, rows)]
        if family == "symmetric":
            gap = np.abs(arrays["snmf_loss"][f, ..., faithful] - arrays["snmf_loss"][f, ..., code]).max()
            lines.append(f"(symmetric M: the two orientations are the same target; max |difference| {gap:.1e})")
    lines.append("")
    lines.append(
        "paper: SNMF of I + sigma M (code orientation), asymmetric M, read off the published figure (about +-0.001)."
    )
    if not trained:
        lines.append("trained models: not run (--no-train).")
    return "\n".join(lines)


def figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    families = [str(family) for family in arrays["families"]]
    orientations = [str(orientation) for orientation in arrays["orientations"]]
    fig, axes = plt.subplots(
        1, len(families), figsize=(6.4 * len(families), 4.8), layout="constrained", sharey=True, squeeze=False
    )
    sigmas = arrays["sigmas"]
    naive = manifest["naive_loss_per_feature"]
    labels = {"faithful": "SNMF of (I + sigma M)^T (faithful)", "paper-code": "SNMF of I + sigma M (paper code)"}
    for f, (family, ax) in enumerate(zip(families, axes[0], strict=True)):
        for o, orientation in enumerate(orientations):
            style = {"marker": "o", "ms": 4} if orientation == "faithful" else {"marker": "s", "ms": 3, "ls": "--"}
            plot_seed_mean(
                ax, sigmas, arrays["snmf_loss"][f, :, :, o], label=labels[orientation], color=f"C{o}", **style
            )
        if "trained_loss" in arrays:
            plot_seed_mean(
                ax, sigmas, arrays["trained_loss"][f], label="trained (exactly-one data)", color="C2", marker="^"
            )
        plot_seed_mean(ax, sigmas, arrays["svd_loss"][f], label="SVD of (I + sigma M)^T", color="C4", marker=".", lw=1)
        plot_seed_mean(
            ax, sigmas, arrays["naive_loss"][f], label="naive model on these labels", color="0.5", ls=":", lw=1.2
        )
        ax.axhline(naive, **NAIVE_STYLE, label=f"naive, clean labels ({naive:.4f})", zorder=1)
        if family == PUBLISHED_FAMILY:
            published = np.array(sorted(PUBLISHED.items()))
            ax.plot(*published.T, "kx", ms=7, mew=1.5, label="paper: SNMF of I + sigma M (read off)", zorder=4)
        ax.set(xlabel="mixing magnitude sigma", title=ccjax.MIXING_FAMILIES[family].label)
        ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("L/p on exactly-one data (exact)")
    low = min(arrays["snmf_loss"].min(), arrays.get("trained_loss", arrays["snmf_loss"]).min())
    axes[0, 0].set_ylim(low - 0.005, max(0.125, PUBLISHED[0.04] + 0.005))
    n_seeds = len(arrays["seeds"])
    fig.suptitle(f"semi-NMF vs mixing magnitude ({count(n_seeds, 'seed')}, mean +- SEM bands)")
    return fig


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    families = [str(f) for f in arrays["families"]]
    if "asymmetric" not in families:
        return []
    f = families.index("asymmetric")
    orientations = [str(o) for o in arrays["orientations"]]
    code, faithful = orientations.index("paper-code"), orientations.index("faithful")
    rows = []
    for s, sigma in enumerate(arrays["sigmas"]):
        if float(sigma) in PUBLISHED:
            faithful_text = format_estimate(*mean_sem(arrays["snmf_loss"][f, :, s, faithful]))
            rows.append(
                compare_value(
                    "snmf_sweep",
                    f"SNMF of I + σM (code orientation), asym, σ = {sigma:g}",
                    PUBLISHED[float(sigma)],
                    arrays["snmf_loss"][f, :, s, code],
                    note=f"faithful (I + σM)ᵀ: {faithful_text}",
                )
            )
    return rows


STAGES = (
    Stage(
        "snmf_sweep",
        "Experiment 6: semi-NMF vs σ",
        6.0,
        quick_args=("--sigmas", "0,0.02", *QUICK_TRAIN, "--outer-iterations", "50"),
        compare=compare,
    ),
)

SPEC = Experiment.from_module(
    __name__,
    title="semi-NMF L/p against the mixing magnitude sigma, exactly-one data",
    config=PAPER,
    axes={"family": "families", "seed": "seeds", "sigma": "sigmas"},
    options=(
        Option("--sigmas", sigma_list, PAPER_SIGMAS, "mixing magnitudes (>= 0)", "LIST"),
        families_option(FAMILIES),
        seeds_option(),
        unscaled_steps_option("training steps (exactly-one data)"),
        Option("--no-train", None, False, "only the SNMF, SVD and naive models (no training)"),
        Option("--outer-iterations", positive_int, PAPER_OUTER_ITERATIONS, OUTER_ITERATIONS_HELP),
    ),
    published={
        "family": PUBLISHED_FAMILY,
        "orientation": PUBLISHED_ORIENTATION,
        "snmf_loss": {str(sigma): value for sigma, value in PUBLISHED.items()},
        "note": "read off the published figure (about +-0.001)",
    },
)
build_parser, main = SPEC.build_parser, SPEC.main

if __name__ == "__main__":
    sys.exit(main())
