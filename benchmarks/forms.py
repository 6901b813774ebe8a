"""The two forms: forward + backward time of the generated class against the nn.Sequential,
and of the generated ResNet-18 against torchvision's own resnet18.

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
    from runtime.training.generated_form import load_generated_model

    spec = load_spec(path)
    torch.manual_seed(0)
    sequential = build_sequential(spec)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stale generated/ would time the wrong code
        generated = load_generated_model(spec, path)
    return spec, sequential, generated


def alternate(
    first, second, batch: torch.Tensor, budget: float, min_pairs: int
) -> dict:
    """Return the median step times of two models on one batch and the median of the ratios
    second/first of neighbouring steps (the models take turns, step by step)."""
    first.train()
    second.train()
    for _ in range(3):  # warm-up
        one = forward_backward_seconds(first, batch)
        forward_backward_seconds(second, batch)
    pairs = max(min_pairs, min(2000, int(budget / 2 / max(one, 1e-6))))
    first_times, second_times, ratios = [], [], []
    for step in range(pairs):
        if step % 2 == 0:
            first_times.append(forward_backward_seconds(first, batch))
            second_times.append(forward_backward_seconds(second, batch))
        else:
            second_times.append(forward_backward_seconds(second, batch))
            first_times.append(forward_backward_seconds(first, batch))
        ratios.append(second_times[-1] / first_times[-1])
    return {
        "steps": pairs,
        "first": median(first_times),
        "second": median(second_times),
        "ratio": median(ratios),
    }


def compare(path: str, budget: float, min_pairs: int) -> dict:
    """Compare the generated class of a spec with its nn.Sequential on the spec's batch size."""
    spec, sequential, generated = both_forms(path)
    batch_size = spec.training_or_default.batch_size
    batch = torch.rand(
        batch_size, *spec.input, generator=torch.Generator().manual_seed(0)
    )
    timed = alternate(sequential, generated, batch, budget, min_pairs)
    return {"spec": path, "batch": batch_size, **timed}


def compare_with_torchvision(
    path: str, builder: str, batch_size: int, budget: float, min_pairs: int
) -> dict | None:
    """Compare the generated class of a spec with torchvision's own model (weights=None) on
    one batch; None when torchvision is not installed."""
    try:
        import torchvision.models
    except ImportError:
        return None
    spec, _, generated = both_forms(path)
    torch.manual_seed(0)
    reference = getattr(torchvision.models, builder)(weights=None)
    batch = torch.rand(
        batch_size, *spec.input, generator=torch.Generator().manual_seed(0)
    )
    timed = alternate(reference, generated, batch, budget, min_pairs)
    return {
        "spec": path,
        "reference": f"torchvision {builder}",
        "batch": batch_size,
        **timed,
    }


def run(quick: bool, progress) -> tuple[str, list]:
    """Compare the two forms on the digits and MNIST specs, and the generated ResNet-18 with
    torchvision's; return the table and the targets."""
    paths = ["specs/digits_mlp.yaml", "specs/digits_cnn.yaml", "specs/mnist_cnn.yaml"]
    budget, min_pairs = (1.5, 10) if quick else (5.0, 30)
    results = []
    for path in paths:
        progress(f"forms: {path} (alternating steps, {budget:g} s)")
        results.append(compare(path, budget, min_pairs))
    progress(
        "forms: generated resnet18 against torchvision's resnet18 (batch 8, 224x224)"
    )
    # about 0.8 s a step on 2 cores: 36 pairs, as the noise of a shared machine needs
    against = compare_with_torchvision(
        "specs/resnet18.yaml", "resnet18", 8, budget, 10 if quick else 36
    )
    rows = [
        [
            r["spec"],
            "nn.Sequential",
            str(r["batch"]),
            str(r["steps"]),
            f"{r['first'] * 1000:.3f}",
            f"{r['second'] * 1000:.3f}",
            f"{r['ratio']:.3f}",
        ]
        for r in results + ([against] if against else [])
    ]
    if against:
        rows[-1][1] = against["reference"]
    table = markdown_table(
        [
            "spec",
            "against",
            "batch",
            "steps per form",
            "against ms/step",
            "generated ms/step",
            "generated / against",
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
    if against:
        targets.append(
            within(
                "resnet18.yaml: generated / torchvision resnet18",
                against["ratio"],
                1.0,
                0.03,
            )
        )
    return table, targets
