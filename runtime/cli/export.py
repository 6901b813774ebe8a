"""`nnspec export CHECKPOINT --format onnx|torch-export|safetensors`: the trained model, for deployment."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.storage.checkpoint import read_weights
from runtime.storage.export import (
    check_output,
    default_output,
    export_program,
    onnx_modules,
    write_onnx,
    write_safetensors,
    write_torch_export,
)
from runtime.training.evaluation import model_from_checkpoint, spec_from_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "checkpoint",
        metavar="CHECKPOINT",
        help="a best.pt or last.pt written by nnspec train (or a .safetensors nnspec exported)",
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=("onnx", "torch-export", "safetensors"),
        help="onnx (needs pip install 'nnspec[export]'), torch-export (.pt2) or safetensors",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="the file to write (default: beside the checkpoint, "
        "e.g. runs/NAME/best.onnx)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace FILE if it exists"
    )


def run(args: argparse.Namespace) -> int:
    checkpoint = Path(args.checkpoint)

    if args.format == "onnx":
        onnx_modules()  # say what to install before reading anything
    out = Path(args.out) if args.out else default_output(checkpoint, args.format)
    if checkpoint.is_file():
        check_output(out, checkpoint, args.force)

    payload = read_weights(checkpoint)
    if args.format == "safetensors":
        report = write_safetensors(payload, out)
    else:
        spec = spec_from_checkpoint(payload, checkpoint)
        model = model_from_checkpoint(payload, spec, checkpoint).eval()
        traced = export_program(model, spec)
        writer = write_onnx if args.format == "onnx" else write_torch_export
        report = writer(traced, model, spec, out)
    print("\n".join(report.lines))
    if report.mismatch:
        print(
            f"the exported model does not match torch; {out} is kept for a look, do not deploy it"
        )
        return 1
    return 0
