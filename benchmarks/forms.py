"""The two forms: forward + backward time of the generated class against the built one
(`build_sequential`: an nn.Sequential, with nested containers for blocks) on every spec in
specs/, and of the generated ResNet-18 against torchvision's own resnet18.

Both forms of a spec are built from the same seed and fed the same batch of the spec's input
shape and dtype: the spec's batch size, halved until a step takes at most STEP_SECONDS (the
ImageNet-sized specs run at a few images a step on 2 cores). The forms take turns step by step,
and the ratio is the median of the ratios of neighbouring steps, so the drift of a shared machine
cancels out. Everything runs on one torch thread: both forms run the same kernels, so threads do
not change the ratio, and on a busy machine a second thread that waits for its core stretches
single steps by seconds.
"""

from __future__ import annotations

import glob
import time
import warnings

import torch
from common import markdown_table, median, within
from loops import torch_threads

STEP_SECONDS = 0.15  # the longest forward + backward step a batch is allowed


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


def spec_paths() -> list[str]:
    """Return every spec file in specs/, sorted."""
    return sorted(glob.glob("specs/*.yaml") + glob.glob("specs/*.json"))


def first_batch_size(spec) -> int:
    """Return the spec's batch size, halved (down to 2) until the training memory the compiler
    estimates for it takes at most a quarter of the memory available: a DenseNet-121 step at
    its batch of 64 on 224x224 images needs over 20 GiB, and the kernel would kill the run.
    """
    from compiler.api import model_tree  # the benchmark's own imports stay light
    from compiler.build import available_memory_bytes
    from compiler.costs import training_memory

    settings = spec.training_or_default
    budget = (available_memory_bytes() or 8 * 1024**3) // 4
    tree = model_tree(spec)
    size = settings.batch_size
    while size > 2:
        sized = settings.model_copy(update={"batch_size": size})
        if training_memory(tree, sized)["total"] <= budget:
            break
        size = max(2, size // 2)
    return size


def fitting_batch(spec, model) -> torch.Tensor:
    """Return a batch of the spec's input: its batch size, cut (down to 2, which batch norm
    needs) until a forward + backward step takes at most STEP_SECONDS.

    A step too long cuts the size in proportion at once (to a power of two), instead of halving
    one step at a time: a ResNet-50 step at 32 images takes over 10 s on one thread, and each
    halving cost two steps.
    """
    from runtime.data.inputs import sample_batch

    size = first_batch_size(spec)
    model.train()
    while True:
        batch = sample_batch(spec, size, generator=torch.Generator().manual_seed(0))
        forward_backward_seconds(model, batch)  # the first step of a shape is a warm-up
        seconds = forward_backward_seconds(model, batch)
        if size <= 2 or seconds <= STEP_SECONDS:
            return batch
        fitting = max(2, int(size * STEP_SECONDS / seconds))
        size = max(2, min(size // 2, 1 << (fitting.bit_length() - 1)))


def compare(path: str, budget: float, min_pairs: int) -> dict:
    """Compare the generated class of a spec with its built form on one batch."""
    spec, sequential, generated = both_forms(path)
    batch = fitting_batch(spec, sequential)
    timed = alternate(sequential, generated, batch, budget, min_pairs)
    return {"spec": path, "batch": len(batch), **timed}


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
    """Compare the two forms on every spec in specs/, and the generated ResNet-18 with
    torchvision's, on one thread; return the table and the targets."""
    with torch_threads(1):
        return _run(quick, progress)


def _run(quick: bool, progress) -> tuple[str, list]:
    paths = spec_paths()
    # single steps of the larger specs (about 0.13 s) scatter by several per cent on a shared
    # machine: 20 pairs gave 1.039 and then 1.011 for one spec, so 40 at least
    budget, min_pairs = (1.0, 6) if quick else (8.0, 40)
    results = []
    for path in paths:
        progress(f"forms: {path} (alternating steps, {budget:g} s)")
        results.append(compare(path, budget, min_pairs))
    progress(
        "forms: generated resnet18 against torchvision's resnet18 (batch 8, 224x224)"
    )
    # about 1.5 s a step on one thread: 24 pairs, as the noise of a shared machine needs
    against = compare_with_torchvision(
        "specs/resnet18.yaml", "resnet18", 8, budget, 6 if quick else 24
    )
    rows = [
        [
            r["spec"],
            "built (build_sequential)",
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
            f"{r['spec'].removeprefix('specs/')}: generated / built",
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
