"""`nnspec schema`: print the JSON Schema of the spec language (for editors)."""

from __future__ import annotations

import argparse
import json

from compiler.schema import json_schema
from runtime.storage.atomic import write_text_atomically


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="FILE", help="write the schema to FILE instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.out:
        write_text_atomically(args.out, text)
    else:
        print(text, end="")
    return 0
