"""The two forms: forward + backward time of the generated class against the nn.Sequential.

Both forms of a spec are built from the same seed and fed the same batch (the spec's batch size).
The forms take turns step by step, and the ratio is the median of the ratios of neighbouring
steps, so the drift of a shared machine cancels out.
"""

from __future__ import annotations

import time
import warnings

import torch

from common import markdown_table, median, within


def forward_backward_seconds(model, batch: torch.Tensor) -> float:
    """Return the seconds of one forward + backward pass over `batch` (training mode)."""
    started = time.perf_counter()
    model.zero_grad(set_to_none=True)
    model(batch).float().sum().backward()
    return time.perf_counter() - started


def both_forms(path: str):
    """Return (spec, Sequential, generated instance) of a spec file, built from the same seed."""
    from compiler import build_sequential, load_spec
    from runtime.generated_form import load_generated_model

    spec = load_spec(path)
    torch.manual_seed(0)
    sequential = build_sequential(spec)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale generated/ would time the wrong code
        generated = load_generated_model(spec, path)
    return spec, sequential, generated


def compare(path: str, budget: float, min_pairs: int) -> dict:
    """Return the median step times of both forms of a spec and the median of the ratios
    generated/Sequential of neighbouring steps (the forms take turns, step by step)."""
    spec, sequential, generated = both_forms(path)
    sequential.train()
    generated.train()
    batch_size = spec.training_or_default.batch_size
    batch = torch.rand(
        batch_size, *spec.input, generator=torch.Generator().manual_seed(0)
    )
    for _ in range(3):  # warm-up
        one = forward_backward_seconds(sequential, batch)
        forward_backward_seconds(generated, batch)
    pairs = max(min_pairs, min(2000, int(budget / 2 / max(one, 1e-6))))
    seq_times, gen_times, ratios = [], [], []
    for step in range(pairs):
        if step % 2 == 0:
            seq_times.append(forward_backward_seconds(sequential, batch))
            gen_times.append(forward_backward_seconds(generated, batch))
        else:
            gen_times.append(forward_backward_seconds(generated, batch))
            seq_times.append(forward_backward_seconds(sequential, batch))
        ratios.append(gen_times[-1] / seq_times[-1])
    return {
        "spec": path,
        "batch": batch_size,
        "steps": pairs,
        "sequential": median(seq_times),
        "generated": median(gen_times),
        "ratio": median(ratios),
    }


def run(quick: bool, progress) -> tuple[str, list]:
    """Compare the two forms on the digits and MNIST specs; return the table and the targets."""
    paths = ["specs/digits_mlp.yaml", "specs/digits_cnn.yaml", "specs/mnist_cnn.yaml"]
    budget, min_pairs = (1.5, 10) if quick else (5.0, 30)
    results = []
    for path in paths:
        progress(f"forms: {path} (alternating steps, {budget:g} s)")
        results.append(compare(path, budget, min_pairs))
    rows = [
        [
            r["spec"],
            str(r["batch"]),
            str(r["steps"]),
            f"{r['sequential'] * 1000:.3f}",
            f"{r['generated'] * 1000:.3f}",
            f"{r['ratio']:.3f}",
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "spec",
            "batch",
            "steps per form",
            "Sequential ms/step",
            "generated ms/step",
            "generated / Sequential",
        ],
        rows,
    )
    targets = [
        within(
            f"{r['spec'].removeprefix('specs/')}: generated / Sequential",
            r["ratio"],
            1.0,
            0.03,
        )
        for r in results
    ]
    return table, targets
