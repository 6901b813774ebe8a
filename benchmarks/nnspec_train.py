"""`nnspec train` as a user runs it, in a process of its own, timed epoch by epoch.

The command is the real one (benchmarks/epoch_clock.py runs `nnspec train` in-process and only
adds a clock), so whatever the runtime does on its own is measured as it is: the thread count it
picks, its checkpoint policy, its progress bar. Nothing of it is re-implemented here.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from common import child_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLOCK = HERE / "epoch_clock.py"


@dataclass
class TrainRun:
    """What one `nnspec train` process did: its epochs' wall times and what it wrote."""

    epoch_times: list[float] = field(default_factory=list)  # epochs 2, 3, ...
    csv_seconds: list[float] = field(
        default_factory=list
    )  # metrics.csv, epochs 1, 2, ...
    device: str = ""  # summary.json's device, e.g. "cpu (1 thread)"
    wall: float = 0.0  # seconds from the process's start to its exit
    error: str = ""  # the last line of stderr when it failed

    @property
    def ok(self) -> bool:
        """Return whether the process ran to the end and timed its epochs."""
        return not self.error


def command(
    folder: Path,
    spec_path: str | os.PathLike,
    epochs: int,
    *,
    sets: tuple[str, ...] = (),
    device: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment of `nnspec train SPEC --epochs N [--set ...]`
    clocked by epoch_clock.py, its run and clock going into `folder` (read by `collect`).
    """
    argv = [sys.executable, str(CLOCK), "train", str(spec_path)]
    argv += ["--out", str(folder / "run"), "--epochs", str(epochs)]
    for item in sets:
        argv += ["--set", item]
    if device:
        argv += ["--device", device]
    return argv, child_env(ROOT, NNSPEC_BENCH_CLOCK=str(folder / "clock.json"))


def collect(folder: Path, code: int | None, wall: float, timeout: float) -> TrainRun:
    """Return the TrainRun of the `command` that ran in `folder` and exited with `code`
    (None: timed out), its stderr in folder/stderr.txt."""
    run = TrainRun(wall=wall)
    if code != 0:
        log = folder / "stderr.txt"
        run.error = (
            _last_line(log) if code is not None else f"timed out ({timeout:g} s)"
        )
        return run
    clock = json.loads((folder / "clock.json").read_text(encoding="utf-8"))
    run.epoch_times = clock["epoch_times"]
    out = folder / "run"
    run.csv_seconds = _csv_seconds(out / "metrics.csv")
    run.device = _summary(out).get("device", "")
    if not run.epoch_times:
        run.error = "no epoch was clocked (the progress bar was never updated)"
    return run


def train(
    spec_path: str | os.PathLike,
    epochs: int,
    *,
    sets: tuple[str, ...] = (),
    device: str | None = None,
    timeout: float = 1800,
) -> TrainRun:
    """Return the TrainRun of `nnspec train SPEC --epochs N [--set ...]` in a new process.

    The run goes into a temporary folder; the progress bar goes to a file (a user's terminal
    sees it: it is part of what an epoch costs). Threads are left to the runtime, so a user's
    OMP_NUM_THREADS reaches it, as it would reach `nnspec train`.
    """
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-train-") as folder:
        folder = Path(folder)
        argv, env = command(folder, spec_path, epochs, sets=sets, device=device)
        started = time.perf_counter()
        with open(folder / "stderr.txt", "w", encoding="utf-8") as stderr:
            try:
                done = subprocess.run(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=env,
                    cwd=ROOT,
                    timeout=timeout,
                    check=False,
                )
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = None
        return collect(folder, code, time.perf_counter() - started, timeout)


def _csv_seconds(path: Path) -> list[float]:
    """Return metrics.csv's `seconds` column (the training and validation of each epoch)."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)]


def _summary(out: Path) -> dict:
    path = out / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _last_line(path: Path) -> str:
    """Return the last non-empty line of a file (the one-line error of a failed command)."""
    lines = [
        line.strip()
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
    ]
    lines = [line for line in lines if line]
    return lines[-1] if lines else "failed without a message"
