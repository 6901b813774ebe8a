"""`nnspec summary SPEC`: the model layer by layer, computed statically (no torch)."""

from __future__ import annotations

import argparse
import json

from compiler import build_sequential, load_spec, resolved_layers
from compiler.layers import REGISTRY
from compiler.summary import summary_data, summary_table

JSON_KEYS = ("total_params", "trainable_params", "total_macs", "memory", "layers")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="spec file")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument(
        "--torchsummary",
        action="store_true",
        help="also build the model and print torchsummary's own table (imports torch; CPU)",
    )


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    data = summary_data(spec)
    if args.json:
        print(json.dumps({k: data[k] for k in JSON_KEYS}, indent=2))
    else:
        print(summary_table(data))
    if args.torchsummary:
        # imported here: these load torch, which `nnspec summary` without --torchsummary never does
        from torchsummary import summary

        from runtime.data.inputs import spec_inputs

        blind = sorted(
            {
                layer.type
                for layer in resolved_layers(spec)
                if not REGISTRY[layer.type].torchsummary_sees
            }
        )
        if blind:
            print(
                f"\ntorchsummary cannot summarize this model: it counts only .weight and .bias "
                f"and fails on modules that return tuples, as {', '.join(blind)} do; the table "
                "above is nnspec's own count"
            )
            return 0
        model = build_sequential(spec).eval()
        print()
        # torchsummary 1.5.1 makes float inputs only: int64 specs get ids through a hook
        with spec_inputs(model, spec):
            summary(model, input_size=tuple(spec.input), device="cpu")
    return 0
