"""Reproduce the whole paper: every experiment at paper scale, all figures, and REPRODUCTION.md.

    python -m experiments.reproduce               # paper scale; figures/ and REPRODUCTION.md
    python -m experiments.reproduce --quick       # a small smoke version (results/reproduce-quick/)
    python -m experiments.reproduce --only sigma_sweep,transplant
    python -m experiments.reproduce --report-only # rebuild REPRODUCTION.md from saved results

Each stage is one experiment CLI in its own process, writing ``<out>/<stage>/``, declared by
that experiment as its ``STAGES`` (:class:`experiments._spec.Stage`). A stage whose saved
results came from the same command is reused (``--rerun`` retrains). The report compares every
number the paper publishes (docs/paper.md §2, §5–6) with ours and lists the errata.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import ccjax

from ._cli import ArgumentParser, HelpFormatter, format_duration, say
from ._experiment import FIGURES, RESULTS, command_line, default_out, result_identity
from ._spec import Stage, registered_stages
from .reproduction_report import saved_results, write_report

STAGES = registered_stages()  # every experiment's declared stages, in report order
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def stage_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not set(names) <= set(STAGE_NAMES):  # also an empty entry
        expected = f"expected a comma-separated list of stages from {', '.join(STAGE_NAMES)}"
        raise argparse.ArgumentTypeError(f"{expected}, got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m experiments.reproduce",
        description=__doc__.split("\n\n")[0],
        epilog="stages: " + ", ".join(STAGE_NAMES),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small smoke version of every stage (minutes)")
    parser.add_argument("--only", type=stage_list, metavar="LIST", help="run only these stages")
    parser.add_argument("--skip", type=stage_list, default=[], metavar="LIST", help="leave out these stages")
    parser.add_argument("--rerun", action="store_true", help="rerun stages even if their saved results match")
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from saved results")
    parser.add_argument("--out", type=Path, help="results root (default results/, or results/reproduce-quick)")
    parser.add_argument("--figures", type=Path, help="figure folder (default figures/, or <out>/figures with --quick)")
    parser.add_argument("--report", type=Path, help="report file (default REPRODUCTION.md, or <out>/ with --quick)")
    parser.add_argument("--no-compile-cache", action="store_true", help="pass --no-compile-cache to every stage")
    return parser


def saved_run_matches(directory: Path, argv: list[str]) -> bool:
    """Whether ``directory`` holds finished results of the command ``argv`` (output flags aside)."""
    saved = saved_results(directory)
    return saved is not None and result_identity(saved[1].get("argv", [])) == result_identity(argv)


def run_stage(stage: Stage, argv: list[str]) -> dict:
    """Run one stage in its own process (its output goes to the terminal); returns its log entry."""
    say(f"$ {command_line(stage.module, argv)}")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", f"experiments.{stage.module}", *argv], check=False)
    seconds = time.perf_counter() - start
    return {"argv": argv, "seconds": seconds, "returncode": done.returncode, "finished": time.time()}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    # At paper scale the stages write where each experiment writes by default (results/<name>),
    # so runs made one experiment at a time are reused.
    out = args.out or (default_out("reproduce", quick=True) if args.quick else RESULTS)  # results/reproduce-quick
    figures = args.figures or (out / "figures" if args.quick else FIGURES)
    report = args.report or (out / "REPRODUCTION.md" if args.quick else Path("REPRODUCTION.md"))
    selected = [s for s in STAGES if (args.only is None or s.name in args.only) and s.name not in args.skip]
    log_path, failed = out / "reproduce.json", []
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        for index, stage in enumerate(selected, 1):
            stage_argv = stage.argv(args.quick, out, figures)
            prefix = f"[{index}/{len(selected)}] {stage.name}"
            if not args.rerun and saved_run_matches(out / stage.name, stage_argv):
                say(f"{prefix}: saved results match this command; reusing them (--rerun to retrain)")
                continue
            say(f"{prefix} ...")
            # Replace stale results; continue an interrupted run of this stage unless told to rerun.
            control = ["--overwrite"] if args.rerun else ["--resume", "--overwrite"]
            control += ["--no-compile-cache"] if args.no_compile_cache else []
            entry = run_stage(stage, [*stage_argv, *control])
            ccjax.io.update_json_record(log_path, stage.name, entry)
            if entry["returncode"] != 0:
                say(f"{prefix} FAILED (exit code {entry['returncode']}); continuing with the rest")
                failed.append(stage.name)
            else:
                say(f"{prefix} done in {format_duration(entry['seconds'])}")
        say(f"stages took {format_duration(time.perf_counter() - start)} in this invocation")
    write_report(report, out, STAGES, ccjax.io.load_json_record(log_path), quick=args.quick)
    say(f"wrote {report}")
    if failed:
        say(f"failed stages: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
