"""Paper experiment 8: L/p against the rank of the mixing matrix M (docs/paper.md §3, §6.8).

Trains, on exactly-one data with a learned mixing scale, one model per (seed, family,
rank), where M = U V^T with U, V ~ N(0, 1) of shape (100, r) (``low-rank``) or their QR
Q factors (``low-rank-flat``: r equal non-zero singular values). Everything is one jitted
sweep over the axes seed x family x rank. A seed fixes U and V (the rank-r M of a seed
uses their first r columns), the initial weights and the data stream, so the ranks of a
seed are a paired comparison. Every L/p is exact on exactly-one data
(:func:`ccjax.exactly_one_loss_per_feature`, L/p = n c_1); the only noise is over seeds.

Two conventions (``--convention``):

* ``spec`` (default): docs/paper.md §3-4. M keeps its diagonal; AdamW lr 3e-3 with a
  half-cosine decay, batch 2048, 10,000 steps; both families, ranks 1..100.
* ``paper-code``: the authors' public code (``paper_code/nb6_mixing_matrix_rank.py`` with
  ``mlpinsoup.py``) as closely as ccjax allows. M's diagonal is zeroed after forming
  U V^T (so every "rank r" M is in fact full rank); AdamW lr 1e-3 constant, weight decay
  1e-2, batch 1024, 30,000 steps; scale from 0.01; the code's ranks 5, 7, 10, 15, 20, 50,
  100 of the ``low-rank`` family, plus its "full rank" point, an i.i.d. N(0, 1) M (ccjax's
  ``asymmetric`` family) with zero diagonal, trained as a second sweep over the same seeds
  (so it shares each seed's initial weights and data). What ccjax cannot match is listed
  in the manifest and printed.

``--zero-diagonal`` / ``--no-zero-diagonal`` set M's diagonal independently of the
training recipe (default: the convention's own choice, kept for ``spec`` and zeroed for
``paper-code``), so the two Ms can be compared in pairs: the same recipe and seeds (the
same U, V, initial weights and data), only the diagonal differs. A run whose diagonal is
not its convention's own writes ``rank_sweep_zero_diagonal`` (spec recipe, zeroed) or
``rank_sweep_paper_code_diagonal_kept`` (paper-code recipe, kept).

The paper publishes only the qualitative claim "lower rank gives lower loss", so the
summary measures that trend: the slope of L/p against ln(effective rank) and Spearman's
rank correlation, per seed, with their mean and SEM over seeds.

    python -m experiments.rank_sweep                     # 2 families x 9 ranks x 5 seeds
    python -m experiments.rank_sweep --convention paper-code   # 7 ranks + full rank, 5 seeds
    python -m experiments.rank_sweep --convention paper-code --no-zero-diagonal  # its pair: diagonal kept
    python -m experiments.rank_sweep --ranks 1,10,50 --seeds 2 --steps 2000
    python -m experiments.rank_sweep --plot-only
"""

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import ccjax
from ccjax import baselines

from ._cli import (
    HelpFormatter,
    choice_list,
    count,
    finite_mean,
    format_table,
    mean_and_sem,
    positive_int,
    say,
    seed_list,
)
from ._experiment import add_output_arguments, base_manifest, run_cli, train_sweep

EXPERIMENT = "rank_sweep"
FAMILIES = ("low-rank", "low-rank-flat")
FULL_RANK_FAMILY = "asymmetric"  # the code's "full rank" M: i.i.d. N(0, 1), n x n
CONVENTIONS = ("spec", "paper-code")
SPEC = ccjax.TrainConfig(data="exactly-one", mixing="low-rank", learn_scale=True)
# paper_code/nb6_mixing_matrix_rank.py (first version, commit 046b67a) with mlpinsoup.py.
PAPER_CODE = dataclasses.replace(
    SPEC,
    zero_diagonal=True,
    lr=1e-3,
    weight_decay=1e-2,
    schedule="constant",
    batch_size=1024,
    steps=30_000,
    scale_init=0.01,
)
CONFIGS = {"spec": SPEC, "paper-code": PAPER_CODE}
DEFAULT_RANKS = {"spec": "1,2,5,10,20,30,50,75,100", "paper-code": "5,7,10,15,20,50,100"}
DEFAULT_FAMILIES = {"spec": FAMILIES, "paper-code": ("low-rank",)}
DEFAULT_FULL_RANK = {"spec": False, "paper-code": True}
CONVENTION_LABELS = {
    "spec": "spec (docs/paper.md §3-4)",
    "paper-code": "paper-code (the authors' paper_code/nb6_mixing_matrix_rank.py)",
}
FULL_RANK_FORMULA = "M ~ N(0, 1) i.i.d., n_features x n_features (ccjax mixing 'asymmetric'; the code's 'full rank')"
FULL_RANK_LABEL = "full rank: M ~ N(0, 1) i.i.d."
PAPER_CLAIM = "lower rank gives lower loss (docs/paper.md §6.8; no numbers are published)"
TREND_SEMS = 2.0  # a trend is called when the mean slope is this many SEMs from zero

# What the authors' code does (Stefan-Heimersheim/toy-model-of-computation-in-superposition),
# read from paper_code/nb6_mixing_matrix_rank.py, nb6_mixing_matrix_rank_jb.py and mlpinsoup.py.
PAPER_CODE_SOURCE = (
    "Stefan-Heimersheim/toy-model-of-computation-in-superposition: paper_code/nb6_mixing_matrix_rank.py "
    "(first version, commit 046b67a) with paper_code/mlpinsoup.py (NoisyDataset, train, evaluate)"
)
PAPER_CODE_MATCHED = (
    "M = U V^T with U, V ~ N(0, 1) of shape (n, r), or an i.i.d. N(0, 1) n x n matrix for 'full rank'",
    "labels relu(x) + |s| x M^T: the code's einsum 'n_out n_in, batch n_in -> batch n_out' is ccjax's x @ M.T",
    "the labels use the magnitude |s| of the learned scale (mlpinsoup.py NoisyDataset._generate_labels; ccjax's "
    "learn_scale does the same, docs/paper.md §3), so the runs agree also where s crosses 0",
    "the learned scale multiplies only the M x term of the labels, and it is trained by the same AdamW as the "
    "weights, weight decay included (one parameter group)",
    "AdamW lr 1e-3 constant (no scheduler), weight decay 1e-2, betas 0.9/0.999, eps 1e-8 (torch defaults), "
    "batch 1024 of fresh samples, 30,000 steps, learned scale from 0.01",
    "exactly one active feature per sample (uniform), value U[-1, 1]; loss: mean squared error over batch and features",
    "W_in, W_out: kaiming-uniform, U(+-sqrt(6/50)) and U(+-sqrt(6/100)), as ccjax's init",
    "x axis: effective rank exp(entropy of the normalised singular values) of the M the labels use",
)
PAPER_CODE_DIAGONAL = {
    True: "then M's diagonal is set to 0, as in the first version (046b67a: M.fill_diagonal_(0))",
    False: "NOT the first version's diagonal: M's diagonal is kept here (--no-zero-diagonal), while 046b67a "
    "zeroes it (M.fill_diagonal_(0)); the current nb6_mixing_matrix_rank.py (c8eead4) keeps it",
}
PAPER_CODE_NOT_MATCHED = (
    "random draws: the code draws each rank's M, initial weights and data independently (data seeded from the "
    "clock); here a seed's ranks share U and V (the rank-r M uses their first r columns), the initial weights and "
    "the data stream: the same distribution per rank, paired across ranks",
    "evaluation: the code averages 1e6 Monte Carlo samples; here L/p is exact (n c_1)",
    "seeds: nb6_mixing_matrix_rank.py trains one model per rank; here --seeds models per rank",
    "its rank 100: nb6_mixing_matrix_rank.py draws an i.i.d. N(0, 1) M for every rank >= n_features, so its "
    "'rank 100' is a second full-rank draw; here rank 100 is U V^T (as in the code's next version, commit 29c3ec5, "
    "which trains 25,000 steps) and the full-rank point is separate",
    "not trained here: the code's extra fixed-scale reference (full-rank M at scale 0.035, not learned)",
)
PAPER_CODE_VERSIONS = (
    "paper_code/nb6_mixing_matrix_rank_jb.py (commit 18f361a; 5 runs per rank, the only version with seeds, as in "
    "the paper) uses the library defaults of its time (M's diagonal zeroed, lr 1e-3 constant, batch 1024), scale "
    "init 0.05, 30,000 steps and ranks 1000, 70, 30, 20, 9, plotted at hand-set effective ranks 80, 60, 40, 30, 20 "
    "(those of the zeroed-diagonal M). 29c3ec5 zeroes the diagonal through NoisyDataset's default of the time and "
    "trains 25,000 steps. The latest nb6_mixing_matrix_rank.py (commit c8eead4) sets zero_diagonal=False: a "
    "symmetrised flat-spectrum M with its diagonal kept, ranks 10, 20, 50, 100 and full, 10,000 steps at lr 3e-3 "
    "(cosine), batch 2048; since 5b72674 NoisyDataset's default keeps the diagonal. This run follows the first "
    "version (046b67a); --scale-init 0.05 --ranks 9,20,30,70 comes close to the _jb run"
)
PAPER_CODE_DIFFERENCES = (
    "the first version of the authors' paper_code/nb6_mixing_matrix_rank.py (commit 046b67a) zeroes M's diagonal "
    "after forming U V^T (so its 'rank r' M is full rank) and trains 30,000 steps at a constant lr 1e-3 with batch "
    "1024 (--convention paper-code); 29c3ec5 zeroes it through NoisyDataset's default of the time; the current "
    "version (c8eead4) keeps it (zero_diagonal=False). --zero-diagonal zeroes it under any recipe"
)
MODEL_ARRAYS = {  # name: (trailing axes, meaning); per model of the family sweep (F, K, R) or full-rank point (K)
    "loss": ("", "exact exactly-one L/p of the trained model on its labels relu(x) + |s| M x"),
    "scale": ("", "|s| at the end of training: the magnitude of the learned scale, what the labels use"),
    "effective_rank": (
        "",
        "exp(entropy of the normalised singular values) of the unscaled M (a scale does not change it)",
    ),
    "mixing_rms": ("", "RMS entry of the label map |s| M, |s| ||M||_F / n (comparable to a Gaussian sigma)"),
    "naive_loss": ("", "exact exactly-one L/p of the naive model on the same labels relu(x) + |s| M x"),
    "final_train_loss": ("", "training L/p over the last logging interval"),
    "train_loss_history": (", T", "training L/p per logging interval"),
    "scale_history": (", T", "|s| at the end of each logging interval"),
    "mixing": (", n_features, n_features", "unscaled M of each model"),
    "w_in": (", n_features, d_mlp", "trained W_in"),
    "w_out": (", d_mlp, n_features", "trained W_out"),
}
ARRAYS = {
    "convention": "() the convention: spec or paper-code",
    "families": "(F,) mixing families",
    "ranks": "(R,) ranks r of M (ascending)",
    "seeds": "(K,) seeds; a seed fixes U and V (the rank-r M uses their first r columns), init and data",
    "history_step": "(T,) step at the end of each logging interval",
    **{name: f"(F, K, R{axes}) {text}" for name, (axes, text) in MODEL_ARRAYS.items()},
}
FULL_RANK_ARRAYS = {
    f"full_rank_{name}": f"(K{axes}) full-rank point (i.i.d. N(0, 1) M, the same seeds): {text}"
    for name, (axes, text) in MODEL_ARRAYS.items()
}

DESCRIPTION = """\
Paper experiment 8 (rank of M): L/p against the (effective) rank of the mixing matrix.

Labels are relu(x) + |s| M x with a low-rank M = U V^T (U, V ~ N(0, 1), n_features x r),
or its flat-spectrum variant (U, V replaced by their QR Q factors), and a mixing scale s
that is learned with the weights (same AdamW, from s = 0.01; the labels use its magnitude,
as the authors' code does). Data: exactly one active feature per sample. The paper states
that lower rank gives lower loss; this run measures L/p (exact), the learned |s| and the
effective rank exp(entropy of normalised singular values).

--convention spec (default) follows docs/paper.md: M keeps its diagonal; lr 3e-3 with a
half-cosine decay, batch 2048, 10,000 steps; families low-rank and low-rank-flat, ranks
1,2,5,10,20,30,50,75,100. --convention paper-code follows the authors' nb6 code: M's
diagonal zeroed, lr 1e-3 constant, batch 1024, 30,000 steps; family low-rank, ranks
5,7,10,15,20,50,100, plus a full-rank point (i.i.d. N(0, 1) M, zero diagonal). --ranks,
--families, --steps, --scale-init and --full-rank override a convention's defaults.

--zero-diagonal / --no-zero-diagonal set M's diagonal independently of the recipe
(default: the convention's own), for the paired comparison of the two Ms: the same seeds
give the same U, V, initial weights and data, so only the diagonal differs.

Default --out: results/<stem>, and the figure is <stem>.png, where <stem> is rank_sweep
(spec) or rank_sweep_paper_code, plus _zero_diagonal or _diagonal_kept when the diagonal
is not the convention's own.
"""


def rank_list(text: str) -> list[int]:
    """``"1,10,50"`` -> ``[1, 10, 50]``: integers in 1..n_features, no repeats, sorted."""
    entries = [entry.strip() for entry in text.split(",")]
    if not text.strip() or "" in entries:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of ranks, got {text!r}")
    try:
        values = [int(entry) for entry in entries]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ranks must be integers, got {text!r}") from None
    n = SPEC.n_features
    bad = [value for value in values if not 1 <= value <= n]
    if bad:
        raise argparse.ArgumentTypeError(f"ranks must be in 1..{n} (n_features), got {bad[0]}")
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"repeated rank in {text!r}")
    return sorted(values)


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m experiments.{EXPERIMENT}", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--convention",
        choices=CONVENTIONS,
        default="spec",
        help="spec: docs/paper.md's M and training; paper-code: the authors' nb6 code (zero diagonal, lr 1e-3 "
        "constant, batch 1024, 30,000 steps, its ranks and a full-rank point)",
    )
    run.add_argument(
        "--ranks",
        type=rank_list,
        metavar="LIST",
        help=f"ranks r of M (1..100); default {DEFAULT_RANKS['spec']} (spec) or {DEFAULT_RANKS['paper-code']} "
        "(paper-code)",
    )
    run.add_argument(
        "--families",
        type=choice_list(FAMILIES),
        metavar="LIST",
        help=f"low-rank mixing families; default {','.join(FAMILIES)} (spec) or low-rank (paper-code)",
    )
    run.add_argument(
        "--full-rank",
        action=argparse.BooleanOptionalAction,
        help="also train the full-rank point (i.i.d. N(0, 1) M, the run's diagonal rule) over the same "
        "seeds; default: on for paper-code, off for spec",
    )
    run.add_argument(
        "--zero-diagonal",
        action=argparse.BooleanOptionalAction,
        help="set M's diagonal to 0 after forming it (the low-rank Ms and the full-rank point), whatever the "
        "training recipe; default: the convention's own (kept for spec, zeroed for paper-code)",
    )
    run.add_argument("--seeds", type=seed_list, default="5", metavar="N|LIST", help="a count N or a list of seeds")
    run.add_argument(
        "--steps",
        type=positive_int,
        help=f"training steps; default {SPEC.steps:,} (spec) or {PAPER_CODE.steps:,} (paper-code)",
    )
    run.add_argument(
        "--scale-init",
        type=finite_float,
        help="initial learned scale; default 0.01 (both conventions; the code's _jb variant used 0.05)",
    )
    add_output_arguments(parser, EXPERIMENT)
    parser.set_defaults(out=None)  # resolved per convention (output_stem)
    return parser


def output_stem(convention: str, zero_diagonal: bool | None = None) -> str:
    """The default --out folder and the figure name: ``rank_sweep`` (spec) or ``rank_sweep_paper_code``,
    plus ``_zero_diagonal`` or ``_diagonal_kept`` when ``zero_diagonal`` is not the convention's own."""
    stem = EXPERIMENT if convention == "spec" else f"{EXPERIMENT}_{convention.replace('-', '_')}"
    if zero_diagonal is None or zero_diagonal == CONFIGS[convention].zero_diagonal:
        return stem
    return f"{stem}_{'zero_diagonal' if zero_diagonal else 'diagonal_kept'}"


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset with the convention's defaults."""
    convention = args.convention
    if args.zero_diagonal is None:
        args.zero_diagonal = CONFIGS[convention].zero_diagonal
    if args.out is None:
        args.out = Path("results") / output_stem(convention, args.zero_diagonal)
    if args.ranks is None:
        args.ranks = rank_list(DEFAULT_RANKS[convention])
    if args.families is None:
        args.families = list(DEFAULT_FAMILIES[convention])
    if args.full_rank is None:
        args.full_rank = DEFAULT_FULL_RANK[convention]
    if args.steps is None:
        args.steps = CONFIGS[convention].steps
    if args.scale_init is None:
        args.scale_init = CONFIGS[convention].scale_init
    return args


def describe_config(config: dict) -> str:
    """One line: the training settings that differ between the conventions."""
    config = dataclasses.asdict(SPEC) | config  # results saved before a field existed had its default
    diagonal = "M's diagonal zeroed" if config["zero_diagonal"] else "M's diagonal kept"
    return (
        f"{diagonal}; AdamW lr {config['lr']:g} ({config['schedule']}), weight decay {config['weight_decay']:g}, "
        f"batch {config['batch_size']:,}, {config['steps']:,} steps; learned scale from {config['scale_init']:g}"
    )


@jax.jit
def _exact_losses(params: ccjax.FeatureMLP, scaled_mixing):
    return jax.vmap(ccjax.exactly_one_loss_per_feature)(params, scaled_mixing)


@jax.jit
def _naive_losses(scaled_mixing):
    naive = baselines.naive_model(scaled_mixing.shape[-1], SPEC.d_mlp)
    return jax.vmap(ccjax.exactly_one_loss_per_feature, in_axes=(None, 0))(naive, scaled_mixing)


_effective_ranks = jax.jit(jax.vmap(ccjax.effective_rank))


def _flat(array, lead: int):
    array = np.asarray(array)
    return jnp.asarray(array.reshape(-1, *array.shape[lead:]))


def model_arrays(result: ccjax.SweepResult) -> dict:
    """The per-model arrays of :data:`MODEL_ARRAYS`, each with the sweep's grid axes in front."""
    grid = result.grid.shape
    lead = len(grid)
    n = result.config.n_features
    params = jax.tree.map(lambda leaf: _flat(leaf, lead), result.params)
    scaled = _flat(result.scaled_mixing, lead)
    scale = np.asarray(result.scale, np.float64)  # |s|: the labels use the learned scale's magnitude
    return {
        "loss": np.asarray(_exact_losses(params, scaled), np.float64).reshape(grid),
        "scale": scale,
        "effective_rank": np.asarray(_effective_ranks(_flat(result.mixing, lead)), np.float64).reshape(grid),
        "mixing_rms": scale * np.linalg.norm(np.asarray(result.mixing, np.float64), axis=(-2, -1)) / n,
        "naive_loss": np.asarray(_naive_losses(scaled), np.float64).reshape(grid),
        "final_train_loss": np.asarray(result.history.train_loss)[..., -1],
        "train_loss_history": np.asarray(result.history.train_loss),
        "scale_history": np.asarray(result.history.scale),
        "mixing": np.asarray(result.mixing),
        "w_in": np.asarray(result.params.w_in),
        "w_out": np.asarray(result.params.w_out),
    }


def run(args: argparse.Namespace, argv: list[str]) -> tuple[dict, dict]:
    ranks, seeds, families, convention = args.ranks, args.seeds, args.families, args.convention
    base = dataclasses.replace(
        CONFIGS[convention], steps=args.steps, scale_init=args.scale_init, zero_diagonal=args.zero_diagonal
    )
    full_config = dataclasses.replace(base, mixing=FULL_RANK_FAMILY) if args.full_rank else None
    n, d = base.n_features, base.d_mlp
    n_models = len(families) * len(seeds) * len(ranks) + (len(seeds) if full_config else 0)
    family_count = f"{len(families)} famil{'y' if len(families) == 1 else 'ies'}"
    plus_full = f" + {count(len(seeds), 'full-rank model')}" if full_config else ""
    say(
        f"convention {convention}: {describe_config(dataclasses.asdict(base))}\n"
        f"{family_count} x {count(len(seeds), 'seed')} x {count(len(ranks), 'rank')}{plus_full}: "
        f"{n_models} models x {base.total_steps:,} steps"
    )
    if convention == "paper-code":
        say("what ccjax cannot match in the authors' code is listed after the table (and in the manifest)")
        if "low-rank-flat" in families:
            diagonal = "zeroes" if base.zero_diagonal else "keeps"
            say(f"note: the flat-spectrum family is not in the authors' nb6 code (it {diagonal} its diagonal here too)")
    start = time.perf_counter()
    axes = {"seed": seeds, "mixing": families, "mixing_rank": ranks}
    label = run_label(convention, base.zero_diagonal)
    result = train_sweep(base, axes, f"low-rank M, learned scale, exactly-one, {label}", args.session)
    full = None
    if full_config is not None:
        full = train_sweep(full_config, {"seed": seeds}, f"full-rank M, learned scale, {label}", args.session)
    train_seconds = time.perf_counter() - start

    def by_family(array):  # the sweep's (K, F, R, ...) -> (F, K, R, ...)
        return np.swapaxes(np.asarray(array), 0, 1)

    arrays = {
        "convention": np.asarray(convention),
        "families": np.asarray(families),
        "ranks": np.asarray(ranks),
        "seeds": np.asarray(seeds),
        "history_step": np.asarray(result.history.step)[(0,) * len(result.grid.shape)],
        **{name: by_family(value) for name, value in model_arrays(result).items()},
    }
    documented = dict(ARRAYS)
    if full is not None:
        arrays |= {f"full_rank_{name}": value for name, value in model_arrays(full).items()}
        documented |= FULL_RANK_ARRAYS
    manifest = base_manifest(EXPERIMENT, "L/p against the rank of M, learned scale, exactly-one data", argv)
    manifest |= {
        "convention": convention,
        "convention_description": CONVENTION_LABELS[convention],
        "config": dataclasses.asdict(base),
        "full_rank_config": dataclasses.asdict(full_config) if full_config else None,
        "axes": {"family": list(families), "seed": list(seeds), "rank": list(ranks)},
        "mixing": {family: ccjax.MIXING_FAMILIES[family].formula for family in families}
        | ({"full_rank": FULL_RANK_FORMULA} if full_config else {}),
        "zero_diagonal": base.zero_diagonal,
        "convention_zero_diagonal": CONFIGS[convention].zero_diagonal,
        "diagonal": DIAGONAL_TEXT[base.zero_diagonal]
        + (
            " (the convention's own)"
            if base.zero_diagonal == CONFIGS[convention].zero_diagonal
            else f" ({run_label(convention, base.zero_diagonal)}: not the convention's own)"
        ),
        "labels": "relu(x) + |s| M x (row vectors: x @ M.T): the magnitude of a scale s learned by the same AdamW "
        "(from scale_init), as docs/paper.md §3 and the authors' code (mlpinsoup.py)",
        "effective_rank": "exp(-sum_i w_i ln w_i), w = singular values of the unscaled M / their sum "
        "(ccjax.effective_rank; the same for s M)",
        "evaluation": "exact: L/p = n c_1 on exactly-one data (ccjax.exactly_one_loss_per_feature)",
        "references": {
            "naive": "W_in[f, f] = W_out[f, f] = 1 for f < 50, evaluated on each model's labels (naive_loss)",
            "naive_clean": "naive model on clean labels, (n - d) / n / 6",
        },
        "paper_claim": PAPER_CLAIM,
        "trend": {"definition": TREND_DEFINITION, **trend(arrays)},
        "naive_loss_per_feature": ccjax.naive_loss_per_feature(n, d),
        "timings": {
            "train_seconds": train_seconds,
            "sweep_run_seconds": result.run_seconds + (full.run_seconds if full else 0.0),
            "compile_seconds": result.compile_seconds + (full.compile_seconds if full else 0.0),
            "n_devices": result.n_devices,
        },
        "arrays": documented,
    }
    if convention == "paper-code":
        diagonal = PAPER_CODE_DIAGONAL[base.zero_diagonal]
        manifest["paper_code"] = {
            "source": PAPER_CODE_SOURCE,
            "matched": [*PAPER_CODE_MATCHED, *([diagonal] if base.zero_diagonal else [])],
            "not_matched": [*([] if base.zero_diagonal else [diagonal]), *PAPER_CODE_NOT_MATCHED],
            "other_versions": PAPER_CODE_VERSIONS,
        }
    else:
        manifest["paper_code_differences"] = PAPER_CODE_DIFFERENCES
    return arrays, manifest


def convention_of(manifest: dict) -> str:
    """The run's convention (results saved before conventions existed are spec)."""
    return manifest.get("convention", "spec")


def zero_diagonal_of(manifest: dict) -> bool:
    """Whether the run zeroed M's diagonal (results saved before the switch: the convention's own)."""
    return bool(manifest.get("zero_diagonal", CONFIGS[convention_of(manifest)].zero_diagonal))


DIAGONAL_TEXT = {True: "M's diagonal zeroed", False: "M's diagonal kept"}


def run_label(convention: str, zero_diagonal: bool, *, long: bool = False) -> str:
    """``convention spec`` etc. (``long``: with what it follows), plus the diagonal when it is not
    the convention's own."""
    label = f"convention {CONVENTION_LABELS[convention] if long else convention}"
    if zero_diagonal != CONFIGS[convention].zero_diagonal:
        label += f", {DIAGONAL_TEXT[zero_diagonal]} (--{'' if zero_diagonal else 'no-'}zero-diagonal)"
    return label


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (no ties expected: ranks are distinct, losses continuous)."""
    rank_x, rank_y = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    if np.all(rank_y == rank_y[0]):
        return float("nan")
    return float(np.corrcoef(rank_x, rank_y)[0, 1])


TREND_DEFINITION = (
    "per family (the full-rank point is not part of it); slope: least-squares slope of L/p against "
    "ln(effective rank) within each seed "
    "(L/p per e-fold of effective rank; > 0 means lower rank, lower loss), mean and SEM over seeds; "
    "spearman: Spearman correlation of rank and L/p within each seed, mean and SEM over seeds; "
    "rises: adjacent rank pairs whose seed-mean L/p rises with rank, out of steps"
)


def trend(arrays: dict) -> dict:
    """Per family: how L/p changes with rank, paired within each seed (see TREND_DEFINITION)."""
    out = {}
    for f, family in enumerate(str(family) for family in arrays["families"]):
        loss, effective = arrays["loss"][f], arrays["effective_rank"][f]  # (K, R)
        if loss.shape[1] < 2:
            out[family] = None
            continue
        slopes = np.array([np.polyfit(np.log(x), y, 1)[0] for x, y in zip(effective, loss, strict=True)])
        rhos = np.array([_spearman(np.asarray(arrays["ranks"]), y) for y in loss])
        slope, slope_sem = mean_and_sem(slopes)
        rho, rho_sem = mean_and_sem(rhos)
        steps = np.diff(finite_mean(loss))
        out[family] = {
            "slope": float(slope),
            "slope_sem": float(slope_sem),
            "spearman": float(rho),
            "spearman_sem": float(rho_sem),
            "rises": int(np.sum(steps > 0)),
            "steps": int(steps.size),
            "seeds_with_positive_slope": int(np.sum(slopes > 0)),
            "n_seeds": int(slopes.size),
        }
    return out


def _verdict(stats: dict) -> str:
    slope, sem = stats["slope"], stats["slope_sem"]
    if not np.isfinite(sem):
        direction = "the paper's direction" if slope > 0 else "AGAINST the paper's direction"
        return f"one seed, no SEM, no verdict (the slope's sign is {direction})"
    if slope > TREND_SEMS * sem:
        return f"lower rank, lower L/p (slope > {TREND_SEMS:g} SEM above 0): agrees with the paper"
    if slope < -TREND_SEMS * sem:
        return f"lower rank, HIGHER L/p (slope > {TREND_SEMS:g} SEM below 0): contradicts the paper"
    return f"no trend at {TREND_SEMS:g} SEM"


def _half_ratio(steps: np.ndarray, history: np.ndarray) -> np.ndarray:
    history = history.astype(np.float64)
    if steps.size < 2:  # one logging interval: nothing to compare with
        return np.full(history.shape[:-1], np.nan)
    half = int(np.argmin(np.abs(steps - steps[-1] / 2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return history[..., half] / history[..., -1]


def half_scale_ratio(arrays: dict, prefix: str = "") -> np.ndarray:
    """(F, K, R), or (K,) with ``prefix="full_rank_"``: |s| at the logged step nearest half
    the run over the final |s|.

    A convergence check for the learned scale: near 1 when it settled by mid-training.
    """
    return _half_ratio(arrays["history_step"], arrays[f"{prefix}scale_history"])


def _cell(values, digits: int = 4) -> str:
    mean, sem = mean_and_sem(values)
    return f"{mean:.{digits}f}" if not np.isfinite(sem) else f"{mean:.{digits}f} +- {sem:.{digits}f}"


def _row(family: str, rank: str, arrays: dict, index, ratio: np.ndarray, prefix: str = "") -> list[str]:
    def values(name):
        return arrays[f"{prefix}{name}"][index]

    row = [family, rank, f"{values('effective_rank').mean():.2f}"]
    row += [_cell(values("loss")), _cell(values("scale"), 5)]
    row += [f"{ratio[index].mean():.2f}" if np.all(np.isfinite(ratio[index])) else "-"]
    row += [_cell(values("mixing_rms")), _cell(values("naive_loss"))]
    return row


def summary(arrays: dict, manifest: dict) -> str:
    families = [str(family) for family in arrays["families"]]
    n_seeds = len(arrays["seeds"])
    convention = convention_of(manifest)
    has_full = "full_rank_loss" in arrays
    lines = [
        f"rank of M, {run_label(convention, zero_diagonal_of(manifest), long=True)}",
        f"  {describe_config(manifest['config'])}",
        f"learned scale, exactly-one data; {count(n_seeds, 'seed')} (mean +- SEM); L/p exact; naive L/p on clean "
        f"labels = {manifest['naive_loss_per_feature']:.4f}",
        "",
    ]
    headers = ["family", "rank", "eff. rank", "L/p", "|scale|", "|s| half/end", "rms(sM)", "naive, these labels"]
    rows = []
    ratio = half_scale_ratio(arrays)
    for f, family in enumerate(families):
        for r, rank in enumerate(arrays["ranks"]):
            rows.append(_row(family, str(rank), arrays, (f, slice(None), r), ratio))
    if has_full:
        full_ratio = half_scale_ratio(arrays, "full_rank_")
        rows.append(_row(FULL_RANK_FAMILY, "full", arrays, slice(None), full_ratio, "full_rank_"))
    lines.append(format_table(headers, rows))
    lines.append(
        "eff. rank: of the unscaled M (seed mean); |s| half/end: learned |scale| at mid-training over its final "
        "value (seed mean; 1 = settled); rms(sM) = |s| ||M||_F / n; naive: the naive model on each model's labels."
    )
    if has_full:
        lines.append(f"{FULL_RANK_FAMILY} / full: {FULL_RANK_FORMULA}, trained on the same seeds.")
    if convention == "paper-code":
        lines += ["", "not matched to the authors' code (manifest: paper_code):"]
        lines += [f"  - {item}" for item in manifest.get("paper_code", {}).get("not_matched", [])]
    lines += ["", f"paper: {PAPER_CLAIM}.", "trend per family (paired over the ranks of each seed):"]
    for family, stats in trend(arrays).items():
        if stats is None:
            lines.append(f"  {family}: one rank, no trend")
            continue
        sem = f" +- {stats['slope_sem']:.5f}" if np.isfinite(stats["slope_sem"]) else ""
        rho_sem = f" +- {stats['spearman_sem']:.2f}" if np.isfinite(stats["spearman_sem"]) else ""
        lines.append(
            f"  {family}: d(L/p)/d ln(eff. rank) = {stats['slope']:+.5f}{sem} "
            f"(> 0 in {stats['seeds_with_positive_slope']}/{stats['n_seeds']} seeds); "
            f"Spearman(rank, L/p) = {stats['spearman']:+.2f}{rho_sem}; "
            f"mean L/p rises in {stats['rises']}/{stats['steps']} rank steps -> {_verdict(stats)}"
        )
    if has_full:
        full = arrays["full_rank_loss"]
        for f, family in enumerate(families):
            low, high = arrays["loss"][f, :, 0], arrays["loss"][f, :, -1]
            ranks = arrays["ranks"]
            lines.append(
                f"  full rank vs {family} (paired by seed): L/p(full) - L/p(r={ranks[0]}) = {_cell(full - low)}, "
                f"L/p(full) - L/p(r={ranks[-1]}) = {_cell(full - high)}"
            )
    return "\n".join(lines)


def figure_name(manifest: dict) -> str:
    """``<output_stem>.png``: each convention and diagonal its own file."""
    return f"{output_stem(convention_of(manifest), zero_diagonal_of(manifest))}.png"


def figure(arrays: dict, manifest: dict):
    import matplotlib.pyplot as plt

    from ccjax.plot import NAIVE_STYLE

    families = [str(family) for family in arrays["families"]]
    has_full = "full_rank_loss" in arrays
    fig, grid = plt.subplots(2, 2, figsize=(13, 9.5), layout="constrained")
    axes, history_ax = [grid[0, 0], grid[0, 1], grid[1, 0]], grid[1, 1]
    panels = [
        ("loss", "L/p on exactly-one data (exact)", "L/p against the rank of M"),
        ("scale", "learned |scale|", "learned mixing scale"),
        ("mixing_rms", "RMS entry of s M  (|s| ||M||_F / n)", "size of the learned label mixing"),
    ]
    for f, family in enumerate(families):
        color = f"C{f}"
        effective = arrays["effective_rank"][f]  # (K, R)
        x = finite_mean(effective)
        for i, (ax, (name, _, _)) in enumerate(zip(axes, panels, strict=True)):
            values = arrays[name][f]
            ax.scatter(effective.ravel(), values.ravel(), s=10, color=color, alpha=0.35, linewidths=0)
            mean, sem = mean_and_sem(values)
            ax.plot(x, mean, "o-", ms=4, color=color, label=ccjax.MIXING_FAMILIES[family].label)
            if i == 0 and np.all(np.isfinite(sem)):  # the log-scale panels show the seeds' points only
                ax.fill_between(x, mean - sem, mean + sem, color=color, alpha=0.2, linewidth=0)
        naive_mean = finite_mean(arrays["naive_loss"][f])
        axes[0].plot(x, naive_mean, ls=":", lw=1.2, color=color, label="naive model on these labels")
    losses = [arrays["loss"].ravel()]
    if has_full:
        effective = arrays["full_rank_effective_rank"]  # (K,)
        for i, (ax, (name, _, _)) in enumerate(zip(axes, panels, strict=True)):
            values = arrays[f"full_rank_{name}"]
            ax.scatter(effective, values, s=14, marker="s", color="C3", alpha=0.35, linewidths=0)
            mean, sem = mean_and_sem(values)
            yerr = sem if i == 0 and np.isfinite(sem) else None
            ax.errorbar(effective.mean(), mean, yerr=yerr, fmt="s", ms=6, color="C3", label=FULL_RANK_LABEL)
        losses.append(arrays["full_rank_loss"])
    naive = manifest["naive_loss_per_feature"]
    axes[0].axhline(naive, **NAIVE_STYLE, label=f"naive, clean labels ({naive:.4f})", zorder=1)
    # Keep the trained models and the clean naive line in view (the naive model on mixed
    # labels may lie far above).
    all_losses = np.concatenate(losses)
    low, high = min(float(all_losses.min()), naive), max(float(all_losses.max()), naive)
    axes[0].set_ylim(low - 0.003, high + 0.01)
    for ax, (_, ylabel, title) in zip(axes, panels, strict=True):
        ax.set(xscale="log", xlabel="effective rank of M", ylabel=ylabel, title=title)
        ax.grid(True, alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8)
    _scale_history_panel(history_ax, arrays, families)
    n_seeds = len(arrays["seeds"])
    convention = convention_of(manifest)
    fig.suptitle(
        f"rank of M, {run_label(convention, zero_diagonal_of(manifest), long=True)}"
        f"\n{describe_config(manifest['config'])}; "
        f"exactly-one data\n({count(n_seeds, 'seed')}: points at each seed's own effective rank; lines: seed "
        "means; L/p band: +- SEM)"
    )
    return fig


def _scale_history_panel(ax, arrays: dict, families: list[str]) -> None:
    """Learned |scale| over training, over its final value (seed mean), one line per (family, rank)."""
    import matplotlib.pyplot as plt

    steps, ranks = arrays["history_step"], arrays["ranks"]
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(ranks)))
    styles = ["-", "--", ":", "-."]

    def relative(history):  # (..., T) -> seed mean of |s| / final |s|
        history = history.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nanmean(history / history[..., -1:], axis=0)

    for f in range(len(families)):
        mean = relative(arrays["scale_history"][f])  # (R, T)
        for r, rank in enumerate(ranks):
            label = f"r = {rank}" if f == 0 else None
            ax.plot(steps, mean[r], ls=styles[f % len(styles)], color=colors[r], lw=1.2, label=label)
    if "full_rank_scale_history" in arrays:
        ax.plot(steps, relative(arrays["full_rank_scale_history"]), color="C3", lw=1.5, label="full rank")
    ax.axhline(1.0, color="0.6", lw=0.8)
    family_key = ", ".join(f"{styles[f % len(styles)]} {family}" for f, family in enumerate(families))
    ax.set(
        xlabel="training step",
        ylabel="|scale| / final |scale|",
        title=f"learned scale during training ({family_key})",
        ylim=(0, 1.5),
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncols=2)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    return run_cli(parser, argv, EXPERIMENT, run, summary, {figure_name: figure}, resolve=resolve_defaults)


if __name__ == "__main__":
    sys.exit(main())
