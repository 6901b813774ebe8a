"""What float32 can reach on the CIFAR-sized CNN of `make bench`: its training step in every
configuration of the same arithmetic, against the step every framework loop runs.

    python benchmarks/cnn_limit.py            # 8 x 10 steps a configuration, interleaved
    python benchmarks/cnn_limit.py --quick    # a try (and the test's): 2 x 2 steps

The CNN (3 conv + batch norm + ReLU + max-pool, batch 128, fused Adam) spends its step in
torch's kernels, not around them, so a loop can only be faster than another by running faster
kernels. The reference is the step as the DataLoader loop, skorch, Lightning and Keras run it
(eager, torch's default layout); each row is one way of computing the same float32 function
(the last, bf16 autocast, is not: it is there for scale). Rounds are interleaved, so a change in
the machine's speed moves every row alike; the table gives each row's median step and its ratio
to the reference, and the best float32 ratio against issue 18's target for `nnspec train` /
Lightning (<= 0.55), which no loop reaches if its steps alone cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import torch  # noqa: E402
from common import markdown_table, median  # noqa: E402
from torch import nn  # noqa: E402
from training import CNN_LAYERS  # noqa: E402

from compiler import build_sequential, load_spec  # noqa: E402
from runtime.parallel.device import cpu_has_bf16  # noqa: E402

BATCH = 128
LIGHTNING_TARGET = 0.55  # issue 18: nnspec train / Lightning on the CIFAR-sized CNN


@dataclass(frozen=True)
class Step:
    """One way of running the CNN's training step: all but `autocast` compute in float32."""

    channels_last: bool = False
    flushed: bool = False  # denormals flushed to zero
    compiled: bool = False  # through torch.compile
    pool_first: bool = False  # each max-pool before its ReLU (the same outputs)
    autocast: bool = False  # bf16 autocast: another arithmetic, for scale


FAST = {"channels_last": True, "flushed": True}
CONFIGURATIONS = {
    "eager, default layout (the frameworks' step; ref)": Step(),
    "eager, default layout, denormals flushed": Step(flushed=True),
    "eager, channels last, denormals flushed (nnspec train's step)": Step(**FAST),
    "torch.compile, channels last, denormals flushed (training.compile: true)": Step(
        **FAST, compiled=True
    ),
    "eager, channels last, flushed, max-pool before ReLU (the same outputs; another model)": Step(
        **FAST, pool_first=True
    ),
    "torch.compile, channels last, flushed, max-pool before ReLU": Step(
        **FAST, compiled=True, pool_first=True
    ),
    "bf16 autocast, channels last, flushed (training.amp: true; not float32)": Step(
        **FAST, autocast=True
    ),
}


def layers(pool_first: bool) -> list:
    """Return the benchmark CNN's layers; with `pool_first` each ReLU after its max-pool (ReLU
    and max-pool commute: the same outputs, a quarter of the ReLU's work)."""
    out = list(CNN_LAYERS)
    if pool_first:
        for i in range(len(out) - 1):
            if (
                out[i] == "relu"
                and isinstance(out[i + 1], dict)
                and "maxpool2d" in out[i + 1]
            ):
                out[i], out[i + 1] = out[i + 1], out[i]
    return out


def step_function(configuration: Step, x, y, backend: str):
    """Return a function that runs one training step of a fresh CNN in `configuration`."""
    channels_last, compiled = configuration.channels_last, configuration.compiled
    pool_first, autocast = configuration.pool_first, configuration.autocast
    spec = load_spec(
        {"name": "Cnn", "input": [3, 32, 32], "layers": layers(pool_first)}
    )
    torch.manual_seed(0)
    model = build_sequential(spec)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), fused=True)
    forward = torch.compile(model, backend=backend) if compiled else model
    loss_fn = nn.CrossEntropyLoss()
    context = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if autocast
        else contextlib.nullcontext
    )
    batches = len(x) // BATCH
    position = [0]

    def step() -> None:
        start = position[0] * BATCH
        position[0] = (position[0] + 1) % batches
        optimizer.zero_grad(set_to_none=True)
        with context():
            loss = loss_fn(forward(x[start : start + BATCH]), y[start : start + BATCH])
        loss.backward()
        optimizer.step()

    return step


def run(quick: bool) -> str:
    """Time every configuration; return the markdown report."""
    rounds, steps, samples = (2, 2, 4 * BATCH) if quick else (8, 10, 8_000)
    # quick: aot_eager traces as inductor does without building C++ (the test's machine)
    backend = "aot_eager" if quick else "inductor"
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 3, 32, 32, generator=generator)
    y = torch.randint(0, 10, (samples,), generator=generator)
    has_bf16 = cpu_has_bf16()  # elsewhere bf16 is emulated, and slower than float32
    chosen = {
        name: c for name, c in CONFIGURATIONS.items() if has_bf16 or not c.autocast
    }
    steps_of, times, skipped = {}, {name: [] for name in chosen}, {}
    flush = torch.set_flush_denormal
    for name, configuration in chosen.items():
        flush(configuration.flushed)
        try:
            steps_of[name] = step_function(configuration, x, y, backend)
            steps_of[name]()  # the first step compiles; untimed
            steps_of[name]()
        except Exception as exc:  # noqa: BLE001 - torch.compile without a C++ compiler
            skipped[name] = f"not run: {type(exc).__name__}"
            del times[name]
    for _ in range(rounds):
        for name, step in steps_of.items():
            flush(chosen[name].flushed)
            started = time.perf_counter()
            for _ in range(steps):
                step()
            times[name].append((time.perf_counter() - started) / steps * 1000)
    flush(False)
    reference = median(next(iter(times.values())))
    rows = []
    for name in chosen:
        if name in skipped:
            rows.append([name, skipped[name], "-"])
            continue
        step_ms = median(times[name])
        rows.append([name, f"{step_ms:.2f}", f"{step_ms / reference:.3f}x"])
    float32 = [
        median(t) / reference for n, t in times.items() if not chosen[n].autocast
    ]
    best = min(float32)
    lines = [
        f"CIFAR-sized CNN, batch {BATCH}, {torch.get_num_threads()} threads, "
        f"median of {rounds} interleaved rounds of {steps} steps",
        "",
        markdown_table(["step", "ms", "x ref"], rows),
        "",
        f"best float32 step / the frameworks' step: {best:.3f} (issue 18 asks "
        f"nnspec train / Lightning <= {LIGHTNING_TARGET}: "
        f"{'reachable' if best <= LIGHTNING_TARGET else 'not reachable'} by the steps alone, "
        "Lightning's own cost around them aside)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 x 2 steps: a try")
    args = parser.parse_args(argv)
    print(run(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
