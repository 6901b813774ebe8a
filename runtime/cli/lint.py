"""`nnspec lint SPEC...`: the course's advice on specs, before training, without importing torch."""

from __future__ import annotations

import argparse
import json
import sys

from compiler import SpecError
from compiler.lint import RULES, lint_file
from runtime.errors import UserError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json)"
    )
    parser.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="CODE",
        help="skip a warning code (repeatable, or comma-separated: --ignore NS101,NS102)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text: FILE:LINE: PATH: CODE message (fix: ...); json: a list of objects",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary line")


def ignored_codes(values: list[str]) -> set[str]:
    """Return the codes of the --ignore options; raise UserError for a code that does not exist."""

    codes = {
        code.strip().upper()
        for value in values
        for code in value.split(",")
        if code.strip()
    }
    unknown = sorted(codes - set(RULES))
    if unknown:
        raise UserError(
            f"--ignore {', '.join(unknown)}: no such lint code; the codes are {', '.join(RULES)} "
            "(see docs/lint.md)"
        )
    return codes


def run(args: argparse.Namespace) -> int:
    ignore = ignored_codes(args.ignore)
    invalid = warned = 0
    report: list[dict] = []
    for path in args.specs:
        try:
            _, warnings = lint_file(path, ignore)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            invalid += 1
            continue
        warned += bool(warnings)
        for warning in warnings:
            if args.format == "json":
                report.append(warning.as_dict(path))
            else:
                print(warning.format(path))
    if args.format == "json":
        print(json.dumps(report, indent=2))
    elif not args.quiet:
        count = len(args.specs)
        total = f"{count} spec{'s' if count != 1 else ''}"
        parts = [
            f"{n} {what}"
            for n, what in ((invalid, "invalid"), (warned, "with warnings"))
            if n
        ]
        print(
            f"lint: {total}: {', '.join(parts)}" if parts else f"lint: {total} clean",
            file=sys.stderr,
        )
    return 2 if invalid else 1 if warned else 0
