"""`nnspec validate SPEC...`: check specs without importing torch."""

from __future__ import annotations

import argparse
import sys

HELP = "check specs: print ok, or every problem as FILE:LINE: PATH: MESSAGE (exit 2)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print problems only")


def run(args: argparse.Namespace) -> int:
    from compiler import SpecError, count_params, load_spec

    failed = 0
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            print(f"{path}: ok ({spec.name}, {len(spec.layers)} layers, {count_params(spec):,} parameters)")
    return 2 if failed else 0
