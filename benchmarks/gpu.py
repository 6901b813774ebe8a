"""GPU benchmark, for a machine lent a CUDA GPU: one prepared script of a few minutes, one table.

    python benchmarks/gpu.py [--epochs 3] [--samples 60000] [--output FILE]
    python benchmarks/gpu.py --smoke      # on the CPU in seconds: every code path, tiny sizes

The device is chosen by the runtime's own logic (`runtime.parallel.device.resolve_device("auto")`);
without a CUDA device (and without --smoke or --device) the script says so in one line and exits
0, so it is safe to run anywhere. It times:

1. Epochs on 60,000 random 784-vectors (MLP 784-256-256-10) and 60,000 random 1x28x28 images
   (specs/mnist_cnn.yaml's CNN), batch 128, the data resident on the device:
   - `nnspec train --device cuda` as a user runs it (a process per case; it moves the whole set
     to the device itself): fp32, bf16 autocast (`--set training.amp=true`), bf16 with the
     weights in channels-last layout (`training.channels_last=true`; `auto` times it on the CPU
     only) and `torch.compile` (`--set training.compile=true`, skipped with a note where the spec
     language lacks it);
   - a bare loop on device-resident tensors with fused Adam: fp32, bf16 autocast, bf16 in
     channels last, and the model through `torch.compile` (inductor);
   - the course's DataLoader loop, CPU tensors moved to the device batch by batch.
   Each case runs `--epochs` epochs; the first is dropped (CUDA warm-up, cuBLAS plans,
   compilation), and for `nnspec train` the first two (its clock starts at the end of epoch 1).
2. The generated ResNet-18 (generated/resnet18.py) against torchvision's `resnet18(weights=None)`:
   forward + backward of one batch of 256 224x224 images, fp32 and bf16 autocast, the two models
   taking turns step by step (median step; median of the ratios of neighbouring steps).

--smoke runs it on the CPU with 1,000 samples, the MLP alone, 3 epochs, one `nnspec train`
process (fp32), ResNets on 2 images of 32x32 and torch.compile's "eager" backend (no C++
toolchain needed): every code path but the extra `nnspec train` cases, in seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

RESNET_BATCH = 256


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="benchmarks/gpu.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per case (default 4; smoke 3)"
    )
    parser.add_argument(
        "--samples", type=int, default=None, help="training samples (default 60,000)"
    )
    parser.add_argument(
        "--output", metavar="FILE", help="also write the tables (markdown) here"
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: CUDA or nothing), or a device to run on anyway",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="on the CPU, tiny sizes, seconds: proves every code path, times nothing useful",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.device = "cpu" if args.device == "auto" else args.device
    args.epochs = args.epochs or (3 if args.smoke else 4)
    args.samples = args.samples or (1000 if args.smoke else 60_000)
    if args.epochs < 3 or args.samples < 1000:
        parser.error("--epochs must be at least 3 and --samples at least 1000")
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


def workloads(samples: int, folder: Path, smoke: bool):
    """Return (name, spec path, Spec, DataSplits on the CPU) of the MLP and CNN workloads."""
    import yaml
    from training import MLP_LAYERS, write_synthetic

    cnn = yaml.safe_load((ROOT / "specs" / "mnist_cnn.yaml").read_text("utf-8"))
    n_val = max(samples // 6, 100)
    made = []
    for index, (name, shape, layers) in enumerate(
        [
            ("MLP 784-256-256-10", [784], MLP_LAYERS),
            ("specs/mnist_cnn.yaml CNN", cnn["input"], cnn["layers"]),
        ][: 1 if smoke else 2]
    ):
        path, spec, data = write_synthetic(
            folder, f"gpu{index}", shape, layers, samples, n_val, index
        )
        made.append((name, path, spec, data))
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


def epoch_cases(spec, device, smoke: bool):
    """Return (label, kind, function) of each training case: kind "nnspec" functions take
    (spec path, epochs) and return epoch times or a note; "resident" and "cpu" ones take
    (model, data, training, epochs), with the data on the device or on the CPU."""
    import nnspec_train
    import torch
    from loops import bare_loop, dataloader_loop
    from training import NNSPEC_WARMUP, compile_accepted

    def nnspec(*sets):
        def run(path, epochs):
            done = nnspec_train.train(path, epochs, sets=sets, device=str(device))
            if not done.ok:
                return f"`nnspec train` failed: {done.error}"
            return done.epoch_times[NNSPEC_WARMUP - 1 :]

        return run

    def bf16():
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    backend = "eager" if smoke else "inductor"
    no_compile = compile_accepted(spec)
    cases = [
        ("nnspec train fp32", "nnspec", nnspec()),
        ("nnspec train bf16 (training.amp)", "nnspec", nnspec("training.amp=true")),
        (
            "nnspec train bf16, channels last",
            "nnspec",
            nnspec("training.amp=true", "training.channels_last=true"),
        ),
        (
            "nnspec train, training.compile",
            "nnspec",
            (lambda *_: no_compile) if no_compile else nnspec("training.compile=true"),
        ),
        (
            "bare fp32",
            "resident",
            lambda m, d, t, e: bare_loop(m, d, t, e, device=device, fused=True),
        ),
        (
            "bare bf16 autocast",
            "resident",
            lambda m, d, t, e: bare_loop(
                m, d, t, e, device=device, fused=True, autocast=bf16
            ),
        ),
        (
            "bare bf16 autocast, channels last",
            "resident",
            lambda m, d, t, e: bare_loop(
                m, d, t, e, device=device, fused=True, autocast=bf16, channels_last=True
            ),
        ),
        (
            f"bare, torch.compile ({backend})",
            "resident",
            lambda m, d, t, e: bare_loop(
                m, d, t, e, device=device, fused=True, compile_backend=backend
            ),
        ),
        (
            "DataLoader fp32 (batches moved)",
            "cpu",
            lambda m, d, t, e: dataloader_loop(m, d, t, e, device=device),
        ),
    ]
    if (
        smoke
    ):  # one `nnspec train` process proves the path; three would take most of the time
        cases = [case for case in cases if case[1] != "nnspec"] + cases[:1]
    return cases


def time_epochs(args, device, folder: Path, say) -> list[list[str]]:
    """Return the rows of the epochs table: every case on every workload."""
    import torch
    from common import median

    from compiler import build_sequential

    rows = []
    for name, path, spec, cpu_data in workloads(args.samples, folder, args.smoke):
        resident = on_device(cpu_data, device)
        training = spec.training_or_default
        times = {}
        for label, kind, run in epoch_cases(spec, device, args.smoke):
            if kind == "nnspec":
                timed = run(path, args.epochs + 1)  # its clock starts after epoch 1
            else:
                torch.manual_seed(0)
                model = build_sequential(spec).to(device)
                data = resident if kind == "resident" else cpu_data
                timed = run(model, data, training, args.epochs)[1:]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[label] = timed if isinstance(timed, str) else median(timed)
            shown = timed if isinstance(timed, str) else f"{times[label] * 1000:.1f} ms"
            say(f"  {name}, batch {training.batch_size}: {label}: {shown}")
        base = times["bare fp32"]
        for label, value in times.items():
            if isinstance(value, str):
                rows.append([name, label, "-", "-", value])
            else:
                rows.append(
                    [name, label, f"{value * 1000:.1f}", f"{value / base:.2f}", ""]
                )
        del resident
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def synced_step(model, batch, autocast, device) -> float:
    """Return the seconds of one forward + backward pass, the device synchronized both sides."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    model.zero_grad(set_to_none=True)
    with autocast():
        output = model(batch)
    output.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started


def time_resnets(
    device, batch_size: int, pairs: int, say, side: int | None = None
) -> list[list[str]]:
    """Return the rows of the ResNet-18 table: generated against torchvision, fp32 and bf16,
    on images of the spec's size (or `side` x `side`: both end in an adaptive pool)."""
    import torch
    import torchvision.models
    from common import median
    from forms import both_forms

    spec, _, generated = both_forms("specs/resnet18.yaml")
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    generated, reference = generated.to(device).train(), reference.to(device).train()
    shape = spec.input if side is None else [spec.input[0], side, side]
    batch = torch.rand(
        batch_size, *shape, generator=torch.Generator().manual_seed(0)
    ).to(device)
    rows = []
    for precision, autocast in (
        ("fp32", contextlib.nullcontext),
        (
            "bf16 autocast",
            lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16),
        ),
    ):
        for _ in range(2):  # warm-up: cuDNN picks its algorithms on the first steps
            synced_step(reference, batch, autocast, device)
            synced_step(generated, batch, autocast, device)
        ours, theirs, ratios = [], [], []
        for step in range(pairs):
            order = [(reference, theirs), (generated, ours)]
            for model, times in order if step % 2 == 0 else order[::-1]:
                times.append(synced_step(model, batch, autocast, device))
            ratios.append(ours[-1] / theirs[-1])
        say(
            f"  resnet18 {precision}, batch {batch_size}: generated "
            f"{median(ours) * 1000:.1f} ms, torchvision {median(theirs) * 1000:.1f} ms"
        )
        rows.append(
            [
                precision,
                str(batch_size),
                str(pairs),
                f"{median(theirs) * 1000:.1f}",
                f"{median(ours) * 1000:.1f}",
                f"{median(ratios):.3f}",
            ]
        )
    return rows


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
    from common import markdown_table

    from runtime.parallel.device import describe_device

    def say(message: str) -> None:
        print(message, flush=True)

    if args.smoke:  # one thread: two spin-waiting threads crawl on a busy CPU
        torch.set_num_threads(1)
    started = time.perf_counter()
    cuda = device.type == "cuda"
    bf16 = torch.cuda.is_bf16_supported() if cuda else "on the CPU: autocast only"
    say(
        f"device: {describe_device(device)}, torch {torch.__version__}, "
        f"bf16 supported: {bf16}{' (--smoke)' if args.smoke else ''}"
    )
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-gpu-") as folder:
        epochs = time_epochs(args, device, Path(folder), say)
    if args.smoke:  # 32x32 images: the same code, a step in milliseconds on a CPU
        resnets = time_resnets(device, 2, 2, say, side=32)
    else:
        resnets = time_resnets(device, RESNET_BATCH, 20, say)
    tables = "\n\n".join(
        [
            markdown_table(
                ["workload", "loop", "ms/epoch", "x bare fp32", "note"], epochs
            ),
            markdown_table(
                [
                    "ResNet-18, forward + backward",
                    "batch",
                    "pairs",
                    "torchvision ms/step",
                    "generated ms/step",
                    "generated / torchvision",
                ],
                resnets,
            ),
        ]
    )
    print(
        f"\n{tables}\n\n{describe_device(device)}; {args.samples} training samples, batch "
        f"128, median epoch after the first; {time.perf_counter() - started:.0f} s in all"
    )
    if args.output:
        Path(args.output).write_text(tables + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
