"""The two conventions of the rank-of-M experiment (``rank_sweep``): their training recipes, default grids,
labels and output names, what the authors' code does that ccjax matches or not (docs/paper.md §3-4, §6.8),
and how a saved run of each is set against the paper's claim (:func:`compare`, :func:`paired_trends`).

``spec`` follows docs/paper.md; ``paper-code`` the first version of the authors'
``paper_code/nb6_mixing_matrix_rank.py`` (commit 046b67a) with ``mlpinsoup.py``.
"""

import argparse
import dataclasses
from collections.abc import Iterable

import numpy as np

import ccjax
from ccjax.report import Comparison, as_float, count, count_families, format_number, format_pm, is_missing

from ._cli import choice_list, finite_float, int_range_list, mixing_formulas, positive_int
from ._experiment import default_out
from ._spec import QUICK_TRAIN, Option, Stage, seeds_option

FAMILIES = ("low-rank", "low-rank-flat")
FULL_RANK_FAMILY = "asymmetric"  # the code's "full rank" M: i.i.d. N(0, 1), n x n
FULL_RANK_FORMULA = "M ~ N(0, 1) i.i.d., n_features x n_features (ccjax mixing 'asymmetric'; the code's 'full rank')"
FULL_RANK_LABEL = "full rank: M ~ N(0, 1) i.i.d."
DIAGONAL_TEXT = {True: "M's diagonal zeroed", False: "M's diagonal kept"}
SPEC = ccjax.TrainConfig(data="exactly-one", mixing="low-rank", learn_scale=True)
# paper_code/nb6_mixing_matrix_rank.py (first version, commit 046b67a) with mlpinsoup.py; scale_init 0.01 as SPEC.
PAPER_CODE = dataclasses.replace(
    SPEC, zero_diagonal=True, lr=1e-3, weight_decay=1e-2, schedule="constant", batch_size=1024, steps=30_000
)

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
# nb6_mixing_matrix_rank_jb.py (5 runs per rank, as in the paper's figure): the ranks it trains and the
# effective ranks it plots them at (set by hand in the script).
JB_RANKS = (1000, 70, 30, 20, 9)
JB_PLOTTED_AT = (80, 60, 40, 30, 20)
JB_DRAWS = 5  # as the _jb script's 5 runs per rank
PAPER_CODE_VERSIONS = (
    f"paper_code/nb6_mixing_matrix_rank_jb.py (commit 18f361a; {JB_DRAWS} runs per rank, the only version with "
    "seeds, as in the paper) uses the library defaults of its time (M's diagonal zeroed, lr 1e-3 constant, batch "
    f"1024), scale init 0.05, 30,000 steps and ranks {', '.join(map(str, JB_RANKS))}, plotted at hand-set "
    f"effective ranks {', '.join(map(str, JB_PLOTTED_AT))} (those of the zeroed-diagonal M). 29c3ec5 zeroes the "
    "diagonal through NoisyDataset's default of the time and trains 25,000 steps. The latest "
    "nb6_mixing_matrix_rank.py (commit c8eead4) sets zero_diagonal=False: a symmetrised flat-spectrum M with its "
    "diagonal kept, ranks 10, 20, 50, 100 and full, 10,000 steps at lr 3e-3 (cosine), batch 2048; since 5b72674 "
    "NoisyDataset's default keeps the diagonal. This run follows the first version (046b67a); --scale-init 0.05 "
    "--ranks 9,20,30,70 comes close to the _jb run"
)
PAPER_CODE_DIFFERENCES = (
    "the first version of the authors' paper_code/nb6_mixing_matrix_rank.py (commit 046b67a) zeroes M's diagonal "
    "after forming U V^T (so its 'rank r' M is full rank) and trains 30,000 steps at a constant lr 1e-3 with batch "
    "1024 (--convention paper-code); 29c3ec5 zeroes it through NoisyDataset's default of the time; the current "
    "version (c8eead4) keeps it (zero_diagonal=False). --zero-diagonal zeroes it under any recipe"
)


def diagonal_flag(zero_diagonal: bool) -> str:
    """``--zero-diagonal`` or ``--no-zero-diagonal``."""
    return f"--{'' if zero_diagonal else 'no-'}zero-diagonal"


@dataclasses.dataclass(frozen=True)
class Convention:
    """One recipe of the rank experiment: its training config (with its own rule for M's diagonal),
    default grid, what it follows, and (paper-code) what ccjax matches of the authors' code or not."""

    name: str
    config: ccjax.TrainConfig
    ranks: str  # the default --ranks
    families: tuple[str, ...]  # the default --families
    full_rank: bool  # the default --full-rank
    label: str  # what it follows
    matched: tuple[str, ...] = ()  # empty: the run records PAPER_CODE_DIFFERENCES instead
    not_matched: tuple[str, ...] = ()

    def own(self, zero_diagonal: bool) -> bool:
        """Whether ``zero_diagonal`` is the convention's own rule for M's diagonal."""
        return zero_diagonal == self.config.zero_diagonal

    def stem(self, zero_diagonal: bool) -> str:
        """The default --out folder and figure name: ``rank_sweep`` (spec) or ``rank_sweep_paper_code``,
        plus ``_zero_diagonal`` or ``_diagonal_kept`` when the diagonal is not the convention's own."""
        stem = "rank_sweep" if self.name == "spec" else f"rank_sweep_{self.name.replace('-', '_')}"
        return stem if self.own(zero_diagonal) else f"{stem}_{'zero_diagonal' if zero_diagonal else 'diagonal_kept'}"

    def run_label(self, zero_diagonal: bool, *, long: bool = False) -> str:
        """``convention spec`` (``long``: with what it follows), plus the diagonal when not the own."""
        label = f"convention {self.label if long else self.name}"
        own = self.own(zero_diagonal)
        return label if own else f"{label}, {DIAGONAL_TEXT[zero_diagonal]} ({diagonal_flag(zero_diagonal)})"

    def stage(self, order: float, zero_diagonal: bool, quick_ranks: str, what: str) -> Stage:
        """The reproduction stage of this recipe with M's diagonal zeroed or kept, named :meth:`stem`."""
        args = ("--convention", self.name) if self.name != "spec" else ()
        args = args if self.own(zero_diagonal) else (*args, diagonal_flag(zero_diagonal))
        quick = (*args, "--ranks", quick_ranks, *QUICK_TRAIN)
        return Stage(self.stem(zero_diagonal), f"Experiment 8: rank of M ({what})", order, args, quick, compare)

    def record(self, zero_diagonal: bool) -> dict:
        """The manifest's record of the convention, M's diagonal and how the run differs from the authors' code."""
        own = self.own(zero_diagonal)
        whose = "the convention's own" if own else f"{self.run_label(zero_diagonal)}: not the convention's own"
        fields = {"convention": self.name, "convention_description": self.label, "zero_diagonal": zero_diagonal}
        fields |= {"convention_zero_diagonal": self.config.zero_diagonal}
        fields["diagonal"] = f"{DIAGONAL_TEXT[zero_diagonal]} ({whose})"
        if not self.matched:
            return fields | {"paper_code_differences": PAPER_CODE_DIFFERENCES}
        note = [PAPER_CODE_DIAGONAL[zero_diagonal]]
        matched = [*self.matched, *note] if zero_diagonal else list(self.matched)
        not_matched = list(self.not_matched) if zero_diagonal else [*note, *self.not_matched]
        paper_code = {"source": PAPER_CODE_SOURCE, "matched": matched, "not_matched": not_matched}
        return fields | {"paper_code": paper_code | {"other_versions": PAPER_CODE_VERSIONS}}


CONVENTIONS = {
    "spec": Convention("spec", SPEC, "1,2,5,10,20,30,50,75,100", FAMILIES, False, "spec (docs/paper.md §3-4)"),
    "paper-code": Convention(
        "paper-code",
        PAPER_CODE,
        "5,7,10,15,20,50,100",
        ("low-rank",),
        True,
        "paper-code (the authors' paper_code/nb6_mixing_matrix_rank.py)",
        PAPER_CODE_MATCHED,
        PAPER_CODE_NOT_MATCHED,
    ),
}
rank_list = int_range_list(1, SPEC.n_features, "ranks", "n_features")

HELP = {  # the options whose defaults are the convention's
    "convention": "spec: docs/paper.md's M and training; paper-code: the authors' nb6 code (zero diagonal, lr 1e-3 "
    "constant, batch 1024, 30,000 steps, its ranks and a full-rank point)",
    "ranks": f"ranks r of M (1..100); default {CONVENTIONS['spec'].ranks} (spec) or {CONVENTIONS['paper-code'].ranks} "
    "(paper-code)",
    "families": f"low-rank mixing families; default {','.join(FAMILIES)} (spec) or low-rank (paper-code)",
    "full_rank": "also train the full-rank point (i.i.d. N(0, 1) M, the run's diagonal rule) over the same seeds; "
    "default: on for paper-code, off for spec",
    "zero_diagonal": "set M's diagonal to 0 after forming it (the low-rank Ms and the full-rank point), whatever "
    "the training recipe; default: the convention's own (kept for spec, zeroed for paper-code)",
    "steps": f"training steps; default {SPEC.steps:,} (spec) or {PAPER_CODE.steps:,} (paper-code)",
    "scale_init": "initial learned scale; default 0.01 (both conventions; the code's _jb variant used 0.05)",
}
OPTIONS = (  # None defaults: resolve_defaults fills in the convention's
    Option("--convention", str, "spec", HELP["convention"], choices=tuple(CONVENTIONS)),
    Option("--ranks", rank_list, None, HELP["ranks"], metavar="LIST"),
    Option("--families", choice_list(FAMILIES), None, HELP["families"], metavar="LIST"),
    Option("--full-rank", None, None, HELP["full_rank"], action=argparse.BooleanOptionalAction),
    Option("--zero-diagonal", None, None, HELP["zero_diagonal"], action=argparse.BooleanOptionalAction),
    seeds_option("5"),
    Option("--steps", positive_int, None, HELP["steps"]),
    Option("--scale-init", finite_float, None, HELP["scale_init"]),
)


def saved(manifest: dict) -> tuple[Convention, bool]:
    """A saved run's convention (results saved before conventions existed are spec) and whether it
    zeroed M's diagonal (results saved before the switch: the convention's own)."""
    convention = CONVENTIONS[manifest.get("convention", "spec")]
    return convention, bool(manifest.get("zero_diagonal", convention.config.zero_diagonal))


def figure_name(manifest: dict) -> str:
    """A saved run's figure, ``<default --out stem>.png``: each convention and diagonal its own file."""
    convention, zero_diagonal = saved(manifest)
    return f"{convention.stem(zero_diagonal)}.png"


def not_matched(manifest: dict) -> list[str]:
    """A saved paper-code run's summary lines on what ccjax does not match in the authors' code."""
    if saved(manifest)[0].name != "paper-code":
        return []
    items = manifest.get("paper_code", {}).get("not_matched", [])
    return ["", "not matched to the authors' code (manifest: paper_code):", *(f"  - {item}" for item in items)]


def describe_config(config: ccjax.TrainConfig) -> str:
    """One line: the training settings that differ between the conventions."""
    return (
        f"{DIAGONAL_TEXT[config.zero_diagonal]}; AdamW lr {config.lr:g} ({config.schedule}), weight decay "
        f"{config.weight_decay:g}, batch {config.batch_size:,}, {config.steps:,} steps; "
        f"learned scale from {config.scale_init:g}"
    )


def heading(manifest: dict) -> tuple[str, str]:
    """A saved run's title (``rank of M, convention ...``) and its training recipe."""
    convention, zero_diagonal = saved(manifest)
    title = f"rank of M, {convention.run_label(zero_diagonal, long=True)}"
    return title, describe_config(ccjax.io.saved_config(manifest))


def manifest_fields(args: argparse.Namespace) -> dict:
    """The manifest's record of the convention and M's diagonal, of how the run differs from the
    authors' code (:meth:`Convention.record`), and of the run's training configs and Ms."""
    mixing = mixing_formulas(args.families) | ({"full_rank": FULL_RANK_FORMULA} if args.full_config else {})
    return CONVENTIONS[args.convention].record(args.zero_diagonal) | {
        "config": dataclasses.asdict(args.config),
        "full_rank_config": dataclasses.asdict(args.full_config) if args.full_config else None,
        "mixing": mixing,
    }


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset with the convention's defaults; ``args.config``: the run's config,
    ``args.full_config``: the full-rank point's (None without --full-rank)."""
    own = CONVENTIONS[args.convention]
    defaults = {"zero_diagonal": own.config.zero_diagonal, "ranks": rank_list(own.ranks), "full_rank": own.full_rank}
    defaults |= {"families": list(own.families), "steps": own.config.steps, "scale_init": own.config.scale_init}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = default_out(own.stem(args.zero_diagonal))
    fields = {"steps": args.steps, "scale_init": args.scale_init, "zero_diagonal": args.zero_diagonal}
    args.config = dataclasses.replace(own.config, **fields)
    args.full_config = dataclasses.replace(args.config, mixing=FULL_RANK_FAMILY) if args.full_rank else None
    return args


def describe_run(args: argparse.Namespace) -> str:
    """What a run trains and with which recipe (and, for paper-code, where its differences are listed)."""
    config, families, n_seeds, full_rank = args.config, args.families, len(args.seeds), args.full_rank
    n_models = len(families) * n_seeds * len(args.ranks) + (n_seeds if full_rank else 0)
    plus_full = f" + {count(n_seeds, 'full-rank model')}" if full_rank else ""
    lines = [
        f"convention {args.convention}: {describe_config(config)}",
        f"{count_families(len(families))} x {count(n_seeds, 'seed')} x {count(len(args.ranks), 'rank')}{plus_full}: "
        f"{n_models} models x {config.total_steps:,} steps",
    ]
    if args.convention == "paper-code":
        lines.append("what ccjax cannot match in the authors' code is listed after the table (and in the manifest)")
        if "low-rank-flat" in families:
            diagonal = "zeroes" if config.zero_diagonal else "keeps"
            lines.append(
                f"note: the flat-spectrum family is not in the authors' nb6 code (it {diagonal} its diagonal here too)"
            )
    return "\n".join(lines)


def trends_of(manifest: dict) -> dict[str, dict]:
    """A saved run's trend statistics per family (a family with one rank has none)."""
    return {family: stats for family, stats in manifest["trend"].items() if isinstance(stats, dict)}


def compare(arrays: dict, manifest: dict) -> list[Comparison]:
    """The paper's qualitative claim, lower rank, lower L/p: a slope of L/p against ln(effective rank) above 2 SEM
    over seeds. Counted only for the M the published figure was most likely made with (the authors' recipe with M's
    diagonal zeroed, erratum 5); shown, not counted, for the others."""
    convention, zero_diagonal = saved(manifest)
    convention, diagonal = convention.name, "diagonal zeroed" if zero_diagonal else "diagonal kept"
    rows = []
    for family, stats in trends_of(manifest).items():
        slope, sem = stats["slope"], stats["slope_sem"]
        agrees = not is_missing(slope) and not is_missing(sem) and as_float(slope) > 2 * as_float(sem)
        per_fold = f"slope {format_pm(slope, sem, sign='+')} per e-fold of eff. rank ({stats['n_seeds']} seeds)"
        ours = format_number(slope) if is_missing(slope) else per_fold
        note = f"Spearman(rank, L/p) {format_number(stats['spearman'], 2, sign='+')}"
        if not (convention == "paper-code" and zero_diagonal):
            verdict = "the paper's direction" if agrees else "NOT the paper's direction"
            note, agrees = f"{note}; {diagonal} under the {convention} recipe: {verdict} (see erratum 5)", None
        quantity = f"{convention} recipe, {diagonal}, {family}: lower rank gives lower L/p"
        rows.append(Comparison("rank_sweep", quantity, "yes (qualitative)", ours, agrees, note))
    return rows


def _recipe(config: ccjax.TrainConfig) -> str:
    """``lr 3e-3 half-cosine, batch 2,048, 10,000 steps``: a run's training recipe."""
    lr = np.format_float_scientific(config.lr, trim="-", exp_digits=1)
    return f"lr {lr} {config.schedule}, batch {config.batch_size:,}, {config.steps:,} steps"


def paired_trends(manifests: Iterable[dict]) -> list[tuple[str, ...]]:
    """The trend slopes of saved runs paired by convention, training recipe and family: rows
    (recipe, family, slope with M's diagonal kept, with it zeroed), "not run" where a run is missing."""
    slopes: dict[tuple[str, str, str], dict[bool, str]] = {}  # (convention, recipe, family) -> {zeroed: slope}
    for manifest in manifests:
        convention, zero_diagonal = saved(manifest)
        key = (convention.name, _recipe(ccjax.io.saved_config(manifest)))
        for family, stats in trends_of(manifest).items():
            rho = format_number(stats["spearman"], 2, sign="+")
            text = f"{format_pm(stats['slope'], stats['slope_sem'], sign='+')} (ρ {rho})"
            slopes.setdefault((*key, family), {})[zero_diagonal] = text
    rows = []
    for (convention, recipe, family), by_diagonal in slopes.items():
        kept, zeroed = (
            by_diagonal.get(zero, f"not run (stage `{CONVENTIONS[convention].stem(zero)}`)") for zero in (False, True)
        )
        rows.append((f"{convention}: {recipe}", family, kept, zeroed))
    return rows
