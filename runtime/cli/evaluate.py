"""`nnspec evaluate CHECKPOINT`: the model rebuilt from a checkpoint alone, measured on a split."""

from __future__ import annotations

import argparse
import json

from runtime.parallel.denormals import with_denormals_flushed
from runtime.training.evaluation import evaluate_checkpoint, format_evaluation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a best.pt or last.pt written by nnspec train (or a .safetensors nnspec exported)",
    )
    parser.add_argument(
        "--split",
        choices=("val", "test", "train"),
        default="val",
        help="which split of the spec's data set (default: val, the one training watched)",
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="auto, cpu, mps, cuda or cuda:N (default: the spec's)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


# denormals flushed before torch's first parallel work (runtime/parallel/denormals.py)
@with_denormals_flushed
def run(args: argparse.Namespace) -> int:
    result = evaluate_checkpoint(args.checkpoint, args.split, args.device)
    print(json.dumps(result, indent=2) if args.json else format_evaluation(result))
    return 0
