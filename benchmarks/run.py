"""`make bench`: time nnspec against what users would otherwise write; print a table of ratios.

    python benchmarks/run.py                       # everything, writes benchmarks/results.md
    python benchmarks/run.py --only training,cli   # a subset (no file unless --output)
    python benchmarks/run.py --quick               # fewer rounds and smaller sets, for a try

Sections: training (epoch time of `nnspec train` run as a command against the fused bare loop at
its faster thread count, the course's DataLoader loop and skorch, Lightning and Keras when
installed), overhead (CPU cost of each piece the runtime adds to an epoch), cli (validate /
codegen --check latency, no torch import), forms (generated class vs the built form on every
spec) and scale (validation time against layer count). Each target of issues 6 and 18 is printed
with PASS or FAIL; the exit code is 0 unless --strict and a target fails.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

SECTIONS = {
    "training": "Training: median epoch time",
    "overhead": "Overhead: the runtime's pieces of an epoch, in CPU time",
    "cli": "CLI latency",
    "forms": "The two forms: forward + backward",
    "scale": "Scale: validation time against layer count",
    "streaming": "Streaming: the same data set in memory and streamed from disk",
}
DEFAULT_OUTPUT = HERE / "results.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/run.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--only",
        metavar="LIST",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds and smaller synthetic sets: a quick look, noisier",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="torch threads of the loops that do not pick their own (default: nproc = "
        "%(default)s); the bare loop is also timed at 1, and `nnspec train` picks its own",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        default=None,
        help="markdown file to write (default: benchmarks/results.md for a full "
        "run; nothing for --quick or --only)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target fails"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown or not chosen:
        parser.error(
            f"--only takes sections from {', '.join(SECTIONS)}; got {args.only!r}"
        )
    if args.threads < 1:
        parser.error(f"--threads must be at least 1; got {args.threads}")
    args.sections = [name for name in SECTIONS if name in chosen]
    full = set(args.sections) == set(SECTIONS) and not args.quick
    args.output = (
        Path(args.output).resolve()
        if args.output
        else (DEFAULT_OUTPUT if full else None)
    )
    return args


def section_module(name: str):
    """Return the module that runs a section (each has `run(quick, progress) -> (table, targets)`)."""
    import importlib

    return importlib.import_module({"cli": "cli_latency"}.get(name, name))


def progress(message: str) -> None:
    """Say what is being timed, on stderr, so stdout holds only the tables."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(
        ROOT
    )  # specs, generated/ and data paths are relative to the repository root
    import torch
    from common import machine_description, targets_table

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > (os.cpu_count() or 1) * 0.75:
        progress(
            f"warning: load average {load:.2f} on {os.cpu_count()} CPUs; other work is "
            "running, so times are noisy (ratios from interleaved runs still hold best)"
        )
    parts, targets = [], []
    for name in args.sections:
        table, checked = section_module(name).run(args.quick, progress)
        parts.append(f"## {SECTIONS[name]}\n\n{table}\n")
        targets += checked
        print(f"\n## {SECTIONS[name]}\n\n{table}", flush=True)
    elapsed = time.perf_counter() - started
    summary = targets_table(targets) if targets else "(no targets in these sections)"
    print(
        f"\n## Targets\n\n{summary}\n\n{len(targets)} targets: "
        f"{sum(t.passed for t in targets)} PASS, {sum(not t.passed for t in targets)} FAIL "
        f"({elapsed:.0f} s)"
    )
    if args.output is not None:
        command = "python benchmarks/run.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        text = "\n".join(
            [
                "# nnspec benchmarks",
                "",
                f"Written by `{command.strip()}` on {datetime.date.today().isoformat()} in "
                f"{elapsed:.0f} s. Reproduce with `make bench`; see docs/performance.md.",
                "",
                "## Machine",
                "",
                *machine_description(),
                "",
                "## Targets",
                "",
                summary,
                "",
                *parts,
            ]
        )
        args.output.write_text(text, encoding="utf-8")
        progress(f"wrote {args.output}")
    return 1 if args.strict and not all(t.passed for t in targets) else 0


if __name__ == "__main__":
    sys.exit(main())
