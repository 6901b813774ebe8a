"""`nnspec lint`: not built yet (see the issue tracker)."""

from __future__ import annotations

import argparse

from ..errors import UserError

HELP = "lint (not available yet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rest", nargs="*")


def run(args: argparse.Namespace) -> int:
    raise UserError("'nnspec lint' is not available in this version yet")
