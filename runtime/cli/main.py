"""`nnspec`: the command line. Each subcommand lives in `runtime/cli/<name>.py`.

A command module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`, and imports
anything heavy (torch above all) inside `run`, so that `validate`, `summary`, `schema`, `lint` and
`codegen` answer in a fraction of a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from compiler.errors import SpecError
from compiler.version import __version__

from runtime.errors import UserError

COMMANDS = (
    "validate",
    "summary",
    "diff",
    "schema",
    "codegen",
    "lint",
    "train",
    "evaluate",
    "export",
    "sweep",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="nnspec",
        description="Declarative neural networks: validate specs, generate PyTorch, train.",
    )
    parser.add_argument("--version", action="version", version=f"nnspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"runtime.cli.{name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 findings, 2 user error, 130 Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"nnspec {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nnspec schema | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
