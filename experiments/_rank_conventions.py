"""The conventions of the rank-of-M experiment, ``spec`` (docs/paper.md) and ``paper-code`` (the authors'
first nb6 script; recipes: ``ccjax.measure.RANK_CONFIGS``, ``rank_paper_code_record``): their default grids,
labels, output names, manifest record and reproduction stages, and how a saved run is set against the
paper's claim (:func:`compare`, :func:`paired_trends`)."""

import argparse
import dataclasses
from collections.abc import Iterable

import numpy as np

import ccjax
from ccjax import measure
from ccjax.report import Comparison, compare_rank_trend, count, count_families, format_rank_trend

from ._cli import choice_list, finite_float, int_range_list, mixing_formulas, positive_int
from ._experiment import default_out
from ._spec import QUICK_TRAIN, Option, Stage, seeds_option

FAMILIES = ("low-rank", "low-rank-flat")
FULL_RANK_FAMILY = "asymmetric"  # the code's "full rank" M: i.i.d. N(0, 1), n x n
FULL_RANK_FORMULA = "M ~ N(0, 1) i.i.d., n_features x n_features (ccjax mixing 'asymmetric'; the code's 'full rank')"
FULL_RANK_LABEL = "full rank: M ~ N(0, 1) i.i.d."
FULL_RANK_NOTE = f"{FULL_RANK_FAMILY} / full: {FULL_RANK_FORMULA}, trained on the same seeds."
DIAGONAL_TEXT = {True: "M's diagonal zeroed", False: "M's diagonal kept"}
SPEC, PAPER_CODE = measure.RANK_CONFIGS["spec"], measure.RANK_CONFIGS["paper-code"]


def diagonal_flag(zero_diagonal: bool) -> str:
    """``--zero-diagonal`` or ``--no-zero-diagonal``."""
    return f"--{'' if zero_diagonal else 'no-'}zero-diagonal"


@dataclasses.dataclass(frozen=True)
class Convention:
    """One recipe of the rank experiment: its training config (with its own rule for M's diagonal),
    default grid and what it follows."""

    name: str
    config: ccjax.TrainConfig
    ranks: str  # the default --ranks
    families: tuple[str, ...]  # the default --families
    full_rank: bool  # the default --full-rank
    label: str  # what it follows

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


PAPER_CODE_LABEL = "paper-code (the authors' paper_code/nb6_mixing_matrix_rank.py)"
CONVENTIONS = {
    "spec": Convention("spec", SPEC, "1,2,5,10,20,30,50,75,100", FAMILIES, False, "spec (docs/paper.md §3-4)"),
    "paper-code": Convention("paper-code", PAPER_CODE, "5,7,10,15,20,50,100", ("low-rank",), True, PAPER_CODE_LABEL),
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


def describe_config(config: ccjax.TrainConfig) -> str:
    """One line: the training settings that differ between the conventions."""
    return (
        f"{DIAGONAL_TEXT[config.zero_diagonal]}; AdamW lr {config.lr:g} ({config.schedule}), weight decay "
        f"{config.weight_decay:g}, batch {config.batch_size:,}, {config.steps:,} steps; "
        f"learned scale from {config.scale_init:g}"
    )


def heading(manifest: dict, indent: str = "  ") -> str:
    """A saved run's title (``rank of M, convention ...``) and, on the next line after ``indent``, its recipe."""
    convention, zero_diagonal = saved(manifest)
    title = f"rank of M, {convention.run_label(zero_diagonal, long=True)}"
    return f"{title}\n{indent}{describe_config(ccjax.io.saved_config(manifest))}"


def manifest_fields(args: argparse.Namespace) -> dict:
    """The manifest's record of the convention and M's diagonal, of how the run differs from the
    authors' code (spec: in short; paper-code: what ccjax matches of it), and of the run's configs and Ms."""
    convention, zero_diagonal = CONVENTIONS[args.convention], args.zero_diagonal
    own = convention.own(zero_diagonal)
    whose = "the convention's own" if own else f"{convention.run_label(zero_diagonal)}: not the convention's own"
    fields = {"convention": convention.name, "convention_description": convention.label, "zero_diagonal": zero_diagonal}
    fields |= {"convention_zero_diagonal": convention.config.zero_diagonal}
    fields["diagonal"] = f"{DIAGONAL_TEXT[zero_diagonal]} ({whose})"
    if convention.name == "spec":
        fields["paper_code_differences"] = measure.RANK_PAPER_CODE_DIFFERENCES
    else:
        fields["paper_code"] = measure.rank_paper_code_record(zero_diagonal)
    mixing = mixing_formulas(args.families) | ({"full_rank": FULL_RANK_FORMULA} if args.full_config else {})
    full_config = dataclasses.asdict(args.full_config) if args.full_config else None
    return fields | {"config": dataclasses.asdict(args.config), "full_rank_config": full_config, "mixing": mixing}


def resolve_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the options left unset with the convention's defaults; ``args.config``: the run's config,
    ``args.full_config``: the full-rank point's (None without --full-rank)."""
    own, fields = CONVENTIONS[args.convention], ("steps", "scale_init", "zero_diagonal")  # options of config fields
    defaults = {"ranks": rank_list(own.ranks), "families": list(own.families), "full_rank": own.full_rank}
    for name, value in (defaults | {field: getattr(own.config, field) for field in fields}).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = default_out(own.stem(args.zero_diagonal))
    args.config = dataclasses.replace(own.config, **{field: getattr(args, field) for field in fields})
    args.full_config = dataclasses.replace(args.config, mixing=FULL_RANK_FAMILY) if args.full_rank else None
    return args


def describe_run(args: argparse.Namespace) -> str:
    """What a run trains and with which recipe (and, for paper-code, where its differences are listed)."""
    config, n_seeds, n_ranks = args.config, len(args.seeds), len(args.ranks)
    grid = f"{count_families(len(args.families))} x {count(n_seeds, 'seed')} x {count(n_ranks, 'rank')}"
    n_models = len(args.families) * n_seeds * n_ranks
    if args.full_rank:
        grid, n_models = f"{grid} + {count(n_seeds, 'full-rank model')}", n_models + n_seeds
    lines = [f"convention {args.convention}: {describe_config(config)}"]
    lines.append(f"{grid}: {n_models} models x {config.total_steps:,} steps")
    if args.convention == "paper-code":
        lines.append("what ccjax cannot match in the authors' code is listed after the table (and in the manifest)")
        diagonal = "zeroes" if config.zero_diagonal else "keeps"
        flat = f"note: the flat-spectrum family is not in the authors' nb6 code (it {diagonal} its diagonal here too)"
        lines += [flat] if "low-rank-flat" in args.families else []
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
        quantity = f"{convention} recipe, {diagonal}, {family}: lower rank gives lower L/p"
        row = compare_rank_trend("rank_sweep", quantity, stats)
        if not (convention == "paper-code" and zero_diagonal):
            verdict = "the paper's direction" if row.agrees else "NOT the paper's direction"
            note = f"{row.note}; {diagonal} under the {convention} recipe: {verdict} (see erratum 5)"
            row = dataclasses.replace(row, agrees=None, note=note)
        rows.append(row)
    return rows


def paired_trends(manifests: Iterable[dict]) -> list[tuple[str, ...]]:
    """The trend slopes of saved runs paired by convention, training recipe and family: rows
    (recipe, family, slope with M's diagonal kept, with it zeroed), "not run" where a run is missing."""
    slopes: dict[tuple, dict[bool, str]] = {}  # (convention, recipe, family) -> {zeroed: slope}
    for manifest in manifests:
        convention, zero_diagonal = saved(manifest)
        config = ccjax.io.saved_config(manifest)  # its recipe: lr 3e-3 half-cosine, batch 2,048, 10,000 steps
        lr = np.format_float_scientific(config.lr, trim="-", exp_digits=1)
        recipe = f"{convention.name}: lr {lr} {config.schedule}, batch {config.batch_size:,}, {config.steps:,} steps"
        for family, stats in trends_of(manifest).items():
            slopes.setdefault((convention, recipe, family), {})[zero_diagonal] = format_rank_trend(stats)
    return [
        (recipe, family, *(by_zero.get(zero, f"not run (stage `{convention.stem(zero)}`)") for zero in (False, True)))
        for (convention, recipe, family), by_zero in slopes.items()
    ]


# Experiment 8 twice over: each recipe with M's diagonal kept and zeroed, paired by seed (erratum 5).
_spec, _code = CONVENTIONS.values()
STAGES = (
    _spec.stage(8.0, False, "1,20,100", "spec convention: M = U Vᵀ, diagonal kept"),
    _spec.stage(8.1, True, "1,20,100", "spec recipe, diagonal zeroed: the pair of the above"),
    _code.stage(8.2, True, "5,50", "the authors' code 046b67a: diagonal zeroed, 30k steps, lr 1e-3"),
    _code.stage(8.3, False, "5,50", "the authors' recipe, diagonal kept: the pair of the above"),
)
