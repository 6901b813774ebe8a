"""Shared pieces of the benchmarks: timing statistics, verdicts, tables and the machine's description."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Target:
    """One target of issue 6 and whether the measured value meets it."""

    name: str
    value: float
    limit: str  # how the limit reads in the table, e.g. "<= 1.05"
    passed: bool
    note: str = ""

    @property
    def verdict(self) -> str:
        """Return PASS or FAIL."""
        return "PASS" if self.passed else "FAIL"


def at_most(name: str, value: float, limit: float, note: str = "") -> Target:
    """Return the target `value <= limit`."""
    return Target(name, value, f"<= {limit:g}", value <= limit, note)


def below(name: str, value: float, limit: float, note: str = "") -> Target:
    """Return the target `value < limit`."""
    return Target(name, value, f"< {limit:g}", value < limit, note)


def within(
    name: str, value: float, centre: float, tolerance: float, note: str = ""
) -> Target:
    """Return the target `|value - centre| <= tolerance` (a ratio within +-tolerance of centre)."""
    return Target(
        name,
        value,
        f"{centre:g} +- {tolerance:g}",
        abs(value - centre) <= tolerance + 1e-12,
        note,
    )


def median(values: list[float]) -> float:
    """Return the median of `values` (NaN when there are none)."""
    return statistics.median(values) if values else float("nan")


def mean(values: list[float]) -> float:
    """Return the mean of `values` (NaN when there are none)."""
    return statistics.fmean(values) if values else float("nan")


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """Return (intercept, slope, r_squared) of the least-squares line through the points."""
    n = len(xs)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in ys)
    residual = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys))
    return intercept, slope, (1.0 - residual / total) if total else 1.0


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Return a GitHub markdown table whose columns are padded to line up in a terminal too."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def targets_table(targets: list[Target]) -> str:
    """Return the targets as a markdown table with a PASS/FAIL column."""
    rows = [[t.name, _number(t.value), t.limit, t.verdict, t.note] for t in targets]
    return markdown_table(["target", "measured", "limit", "verdict", "note"], rows)


def _number(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"


def machine_description() -> list[str]:
    """Return lines that describe the machine: CPU, cores, Python, torch and its threads."""
    import torch

    lines = [
        f"- CPU: {_cpu_model()}, `nproc` = {os.cpu_count()}",
        f"- OS: {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads (`torch.set_num_threads(nproc)`)",
        f"- frameworks timed beside nnspec: {_frameworks()}",
        f"- load average at the end of the run: {_load_average()}",
    ]
    return lines


def _frameworks() -> str:
    """Return the optional frameworks found (each one a column of the training table)."""
    from loops import keras_module, lightning_module, skorch_module

    found = []
    for label, module in (
        ("Lightning", lightning_module()),
        ("skorch", skorch_module()),
        ("Keras", keras_module()),
    ):
        if module is not None:
            found.append(f"{label} {module.__version__}")
    return (
        ", ".join(found)
        if found
        else "none installed (no skorch, Lightning or Keras column)"
    )


def _cpu_model() -> str:
    try:
        out = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _load_average() -> str:
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def child_env(*folders: Path, **extra: str) -> dict[str, str]:
    """Return this process's environment for a benchmark's child process: `folders` first on
    its PYTHONPATH (before any the user set), and the `extra` variables."""
    path = [str(folder) for folder in folders]
    path += filter(None, [os.environ.get("PYTHONPATH")])
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(path)}


def epoch_times(code: int | None, stdout: str, stderr: str) -> list[float] | str:
    """Return the epoch times a benchmark's child process printed as the JSON list of its last
    line (a framework may print before it), or a str saying why it failed (`code` None: it
    timed out; otherwise its last line on stderr, or its exit code)."""
    if code is None:
        return "failed: timed out"
    lines = stdout.strip().splitlines()
    if code != 0 or not lines:
        errors = stderr.strip().splitlines()
        return f"failed: {errors[-1] if errors else code}"
    return json.loads(lines[-1])


def python_executable() -> str:
    """Return the Python that runs the benchmarks (the project's .venv when run by `make bench`)."""
    return sys.executable
