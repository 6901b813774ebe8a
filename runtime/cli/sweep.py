"""`nnspec sweep SPEC --vary PATH=V1,V2,...`: train a grid of variants, find the right complexity."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.parallel.denormals import with_denormals_flushed
from runtime.sweep.results import format_table
from runtime.sweep.run import run_sweep
from runtime.training.report import command_line, option_words


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="spec file (.yaml, .yml, .json)")
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="PATH=V1,V2,...",
        help="values to try, same paths as --set, e.g. layers.fc1.out_features=16,64,256 "
        "or layers.drop1.p=0.2,0.5 (repeatable: the grid of all combinations)",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change the spec for every variant (repeatable)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="sweep folder (default: runs/SPEC_STEM-sweep)"
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="auto, cpu, mps, cuda or cuda:N (default: the spec's training.device)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="train again the variants whose run folder holds a run of another spec",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars or per-variant lines"
    )


# denormals flushed before torch's first parallel work (runtime/parallel/denormals.py)
@with_denormals_flushed
def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.spec).stem}-sweep"
    outcome = run_sweep(
        args.spec,
        args.vary,
        args.assignments,
        out,
        device=args.device,
        quiet=args.quiet,
        force=args.force,
    )
    if outcome.rows:
        print(format_table(outcome.rows, outcome.paths, outcome.task, outcome.best))
    if not outcome.finished:
        print(
            f"interrupted; the finished variants are in {out / 'results.csv'}; continue with: "
            f"{again(args, out)}",
            file=sys.stderr,
        )
        return 130
    files = ["results.csv", "complexity.png"] + (
        ["best.yaml"] if outcome.best is not None else []
    )
    print(f"\n{', '.join(str(out / name) for name in files)}")
    if outcome.best is None:
        print(
            "nnspec sweep: error: no variant has a finite validation error, so none is best; "
            "lower the learning rate or check the data",
            file=sys.stderr,
        )
        return 1
    return 0


def again(args: argparse.Namespace, out: Path) -> str:
    """Return the command line that continues this sweep (report.command_line: a folder or a
    spec named with a leading "-" stays a value)."""
    words = []
    for text in args.vary:
        words += ["--vary", text]
    for text in args.assignments:
        words += ["--set", text]
    words += option_words("--out", str(out))
    return command_line(["nnspec", "sweep"], args.spec, words)
