"""`nnspec schema`: print the JSON Schema of the spec language (for editors)."""

from __future__ import annotations

import argparse
import json

HELP = "print the JSON Schema of the spec language (editor completion and checks)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="FILE", help="write the schema to FILE instead of stdout"
    )


def run(args: argparse.Namespace) -> int:
    from compiler.schema import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
    if args.out:
        from runtime.storage.atomic import write_text_atomically

        write_text_atomically(args.out, text)
    else:
        print(text, end="")
    return 0
