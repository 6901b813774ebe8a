"""`nnspec summary SPEC`: the model layer by layer, computed statically (no torch)."""

from __future__ import annotations

import argparse
import json

HELP = "show the model layer by layer (shapes, parameters, memory) without running torch"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="spec file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--torchsummary", action="store_true",
        help="also build the model and print torchsummary's own table (imports torch; CPU)",
    )


def run(args: argparse.Namespace) -> int:
    from compiler import load_spec
    from compiler.summary import summary_data, summary_table

    spec = load_spec(args.spec)
    data = summary_data(spec)
    if args.json:
        print(json.dumps({k: data[k] for k in ("total_params", "trainable_params", "layers")}, indent=2))
    else:
        print(summary_table(data))
    if args.torchsummary:
        from compiler import build_sequential
        from torchsummary import summary

        model = build_sequential(spec).eval()
        print()
        summary(model, input_size=tuple(spec.input), device="cpu")
    return 0
