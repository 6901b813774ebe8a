"""`nnspec predict CHECKPOINT INPUT`: the checkpoint's model applied to new samples, as CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.errors import UserError, shown
from runtime.parallel.denormals import with_denormals_flushed
from runtime.storage.atomic import write_text_atomically
from runtime.training.prediction import predict_checkpoint, table_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a best.pt or last.pt written by nnspec train (or a .safetensors nnspec exported)",
    )
    parser.add_argument(
        "input",
        metavar="INPUT",
        help="a .csv or .npz file, an image, or a folder of images (searched recursively)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the CSV to FILE (replaced whole if it exists; never a folder) instead of "
        "standard output",
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="auto, cpu, mps, cuda or cuda:N (default: the spec's)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="samples per forward pass (default: max(the spec's batch_size, 1024))",
    )


# denormals flushed before torch's first parallel work (runtime/parallel/denormals.py)
@with_denormals_flushed
def run(args: argparse.Namespace) -> int:
    if args.out is not None and Path(args.out).is_dir():
        raise UserError(f"--out {shown(args.out)} is a folder; name a file to write")
    header, rows = predict_checkpoint(
        args.checkpoint, args.input, device=args.device, batch_size=args.batch_size
    )
    text = table_text(header, rows)
    if args.out is None:
        sys.stdout.write(text)
    else:
        write_text_atomically(args.out, text)
    return 0
