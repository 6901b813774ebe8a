"""GPU benchmark, for a machine lent a CUDA GPU: epoch time on an MNIST-sized set, in one call.

    python benchmarks/gpu.py [--epochs 3] [--output FILE]

The device is chosen by the runtime's own logic (`runtime.parallel.device.resolve_device("auto")`); without
a CUDA device the script says so in one line and exits 0, so it is safe to run anywhere. On a GPU
it times, on 60,000 random 784-vectors (MLP 784-256-256-10) and 60,000 random 1x28x28 images
(specs/mnist_cnn.yaml's CNN):

- nnspec: `runtime.training.loop.fit` with `nnspec train`'s checkpoint writer, data resident on the device,
  bf16 autocast off and on (`training.amp`);
- bare: a hand-written loop on device-resident tensors, autocast off and on;
- DataLoader: the course's loop, CPU tensors moved to the device batch by batch.

Each case runs `--epochs` epochs (the first dropped: CUDA warm-up, cuBLAS plans) and reports the
median of the rest. The table comes last. Budget: a few minutes on one GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per case, first dropped"
    )
    parser.add_argument("--samples", type=int, default=60_000, help="training samples")
    parser.add_argument(
        "--output", metavar="FILE", help="also write the table (markdown) here"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: CUDA or nothing), or a device to run on anyway, e.g. "
        "cpu with a small --samples to try the script",
    )
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.samples < 1000:
        parser.error("--epochs must be at least 2 and --samples at least 1000")
    return args


def chosen_device(requested: str):
    """Return (device, "") for the runtime's choice, or (None, why) when `auto` finds no CUDA."""
    import torch

    from runtime.parallel.device import resolve_device

    device = resolve_device(requested)
    if requested == "auto" and device.type != "cuda":
        return None, (
            f"no CUDA device: torch {torch.__version__} picks '{device}' for device auto "
            f"(torch.cuda.is_available() = {torch.cuda.is_available()}); nothing to time"
        )
    return device, ""


def workloads(samples: int, device):
    """Return (name, spec, DataSplits on the device) of the MLP and the CNN workloads."""
    import torch
    from training import SYNTHETIC_SPEC

    from compiler import load_spec
    from runtime.data.load import DataSplits

    n_val = max(samples // 6, 100)
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (samples + n_val,), generator=generator)
    made = []
    for name, spec, shape in (
        ("MLP 784-256-256-10", load_spec(SYNTHETIC_SPEC), (784,)),
        (
            "specs/mnist_cnn.yaml CNN",
            load_spec(ROOT / "specs" / "mnist_cnn.yaml"),
            (1, 28, 28),
        ),
    ):
        x = torch.rand(samples + n_val, *shape, generator=generator)
        data = DataSplits(
            x[:samples],
            y[:samples],
            x[samples:],
            y[samples:],
            None,
            None,
            10,
            None,
            f"synthetic: {samples} train, {n_val} val",
        )
        made.append((name, spec, data))
    return made


def on_device(data, device):
    """Return a copy of DataSplits with its train and val tensors moved to `device`."""
    from dataclasses import replace

    return replace(
        data,
        x_train=data.x_train.to(device),
        y_train=data.y_train.to(device),
        x_val=data.x_val.to(device),
        y_val=data.y_val.to(device),
    )


def cases(spec, device):
    """Return (label, needs data on device, function(model, data, training, epochs)) to time."""
    import torch
    from loops import bare_loop, dataloader_loop, nnspec_loop

    def bf16():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    return [
        (
            "nnspec fp32",
            True,
            lambda m, d, t, e: nnspec_loop(m, d, t, e, spec=spec, device=device),
        ),
        (
            "nnspec bf16",
            True,
            lambda m, d, t, e: nnspec_loop(
                m, d, t, e, spec=spec, device=device, amp=True
            ),
        ),
        ("bare fp32", True, lambda m, d, t, e: bare_loop(m, d, t, e, device=device)),
        (
            "bare bf16",
            True,
            lambda m, d, t, e: bare_loop(m, d, t, e, device=device, autocast=bf16),
        ),
        (
            "DataLoader fp32",
            False,
            lambda m, d, t, e: dataloader_loop(m, d, t, e, device=device),
        ),
    ]


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from runtime.errors import UserError

    try:
        device, reason = chosen_device(args.device)
    except UserError as exc:
        print(f"benchmarks/gpu.py: error: {exc}", file=sys.stderr)
        return 2
    if device is None:
        print(reason)
        return 0
    from common import markdown_table, median

    from compiler import build_sequential
    from runtime.parallel.device import describe_device

    started = time.perf_counter()
    cuda = device.type == "cuda"
    bf16 = (
        torch.cuda.is_bf16_supported()
        if cuda
        else "n/a (nnspec's amp is for cuda only)"
    )
    print(
        f"device: {describe_device(device)}, torch {torch.__version__}, bf16 supported: {bf16}",
        flush=True,
    )
    rows = []
    for name, spec, cpu_data in workloads(args.samples, device):
        resident = on_device(cpu_data, device)
        training = spec.training_or_default
        times = {}
        for label, needs_device, run in cases(spec, device):
            torch.manual_seed(0)
            model = build_sequential(spec).to(device)
            epoch_times = run(
                model, resident if needs_device else cpu_data, training, args.epochs
            )
            if cuda:
                torch.cuda.synchronize(device)
            times[label] = median(epoch_times[1:])
            print(
                f"  {name}, batch {training.batch_size}: {label} {times[label] * 1000:.0f} ms/epoch",
                flush=True,
            )
        base = times["bare fp32"]
        rows += [
            [
                name,
                str(training.batch_size),
                label,
                f"{seconds * 1000:.0f}",
                f"{seconds / base:.2f}",
            ]
            for label, seconds in times.items()
        ]
        del resident
        if cuda:
            torch.cuda.empty_cache()
    table = markdown_table(
        ["workload", "batch", "loop", "ms/epoch", "x bare fp32"], rows
    )
    print(
        f"\n{table}\n\n{args.samples} training samples, median of {args.epochs - 1} epochs "
        f"after the first; {time.perf_counter() - started:.0f} s in all"
    )
    if args.output:
        Path(args.output).write_text(table + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
