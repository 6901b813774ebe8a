"""Scale: static validation and shape inference of long generated specs, and how time grows.

A spec of N layers alternates `linear: 16` and `relu` on an input of [16]. For N in 250 ... 4000
the benchmark times `load_spec(file)` (read, validate, infer every shape: what `nnspec validate`
does after its imports) and the shape inference alone (`compiler.shapes.iter_resolved`), best of
a few runs each. Growth must be linear: a least-squares line through the points gives the time per
layer, and the time per layer of the longest spec must stay within 1.5x of that of the shortest.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import at_most, fit_line, markdown_table

SIZES = (250, 500, 1000, 2000, 4000)
LINEARITY_LIMIT = 1.5


def long_spec_text(layers: int) -> str:
    """Return the YAML of a valid spec of `layers` layers: linear 16 and relu, alternating."""
    lines = [
        "spec_version: 1",
        f"name: Long{layers}",
        f"description: {layers} alternating linear 16 / relu layers (scale benchmark).",
        "input: [16]",
        "layers:",
    ]
    lines += ["  - linear: 16" if i % 2 == 0 else "  - relu" for i in range(layers)]
    return "\n".join(lines) + "\n"


def best_seconds(action, repeats: int) -> float:
    """Return the fastest of `repeats` runs of `action()` in seconds (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def infer_shapes(spec) -> int:
    """Return the number of layers whose shapes were inferred, running the inference afresh."""
    from compiler.errors import Problem
    from compiler.shapes import iter_resolved

    problems: list[Problem] = []
    resolved = list(
        iter_resolved(spec.layers, tuple(spec.input), spec.layer_lines, problems)
    )
    if problems:
        raise AssertionError(f"the generated spec has problems: {problems[:3]}")
    return len(resolved)


def measure(sizes: tuple[int, ...], repeats: int) -> list[dict]:
    """Return, for each size, the best seconds of load_spec(file) and of shape inference alone.

    The repeats go round all the sizes in turn, so a busy moment of the machine does not land on
    one size only.
    """
    from compiler import load_spec

    results = {
        size: {"layers": size, "load": float("inf"), "shapes": float("inf")}
        for size in sizes
    }
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-scale-") as folder:
        paths, specs = {}, {}
        for size in sizes:
            paths[size] = Path(folder) / f"long_{size}.yaml"
            paths[size].write_text(long_spec_text(size), encoding="utf-8")
            specs[size] = load_spec(
                paths[size]
            )  # warm-up, and the spec to infer shapes of
            if len(specs[size].layers) != size or infer_shapes(specs[size]) != size:
                raise AssertionError(f"expected {size} layers")
        for _ in range(repeats):
            for size in sizes:
                row = results[size]
                row["load"] = min(
                    row["load"], best_seconds(lambda: load_spec(paths[size]), 1)
                )
                row["shapes"] = min(
                    row["shapes"], best_seconds(lambda: infer_shapes(specs[size]), 1)
                )
        results[2000]["cli"] = cli_seconds(paths[2000]) if 2000 in results else None
    return [results[size] for size in sizes]


def cli_seconds(path: Path, runs: int = 3) -> float:
    """Return the median wall time of `nnspec validate PATH` as a fresh process."""
    import statistics
    import subprocess

    from cli_latency import nnspec_command

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [*nnspec_command(), "validate", "--no-cache", str(path)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(quick: bool, progress) -> tuple[str, list]:
    """Time the long specs; return the markdown table and the targets (2,000 layers, linearity)."""
    repeats = 2 if quick else 5
    progress(f"scale: specs of {', '.join(map(str, SIZES))} layers (best of {repeats})")
    results = measure(SIZES, repeats)
    sizes = [r["layers"] for r in results]
    rows = [
        [
            str(r["layers"]),
            f"{r['load'] * 1000:.1f}",
            f"{r['load'] / r['layers'] * 1e6:.1f}",
            f"{r['shapes'] * 1000:.2f}",
            f"{r['shapes'] / r['layers'] * 1e6:.2f}",
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "layers",
            "load_spec ms",
            "load_spec us/layer",
            "shape inference ms",
            "shapes us/layer",
        ],
        rows,
    )
    notes = []
    targets = []
    for key, label in (("load", "load_spec"), ("shapes", "shape inference")):
        seconds = [r[key] for r in results]
        intercept, slope, r2 = fit_line(sizes, seconds)
        growth = (seconds[-1] / sizes[-1]) / (seconds[0] / sizes[0])
        notes.append(
            f"- {label}: {slope * 1e6:.2f} us per layer + {intercept * 1000:.2f} ms "
            f"(least squares, R^2 = {r2:.4f}); per-layer time at {sizes[-1]} layers / at "
            f"{sizes[0]} layers = {growth:.2f}"
        )
        targets.append(
            at_most(
                f"{label}: per-layer time {sizes[-1]} / {sizes[0]} layers",
                growth,
                LINEARITY_LIMIT,
                f"R^2 {r2:.4f}",
            )
        )
    at_2000 = next(r for r in results if r["layers"] == 2000)
    notes.append(
        f"- a 2,000-layer spec: load_spec {at_2000['load'] * 1000:.0f} ms, shape inference "
        f"{at_2000['shapes'] * 1000:.1f} ms, `nnspec validate` as a new process "
        f"{at_2000['cli'] * 1000:.0f} ms (median of 3)"
    )
    return table + "\n\n" + "\n".join(notes), targets
