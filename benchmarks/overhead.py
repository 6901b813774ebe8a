"""Overhead: where the time that nnspec's runtime adds to an epoch goes, piece by piece.

Each piece of work that `fit` and `nnspec train` do beyond a bare loop is timed on its own, in
CPU milliseconds per epoch of the spec (per-batch pieces times the number of batches), next to
the CPU time of a bare epoch, all on one torch thread (with more, idle threads spin and inflate
CPU time). CPU time, unlike wall time, hardly moves when other processes share
the machine, so this table stays readable on a busy one. Pieces marked "writer thread" run on
RunWriter's background thread: they cost wall time only when no core is free for it.
"""

from __future__ import annotations

import importlib
import io
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import markdown_table
from torch.nn import functional as F

SPECS = ("specs/digits_mlp.yaml", "specs/digits_cnn.yaml")
CHECKPOINT_SIZES: dict[str, int] = (
    {}
)  # spec path -> bytes of its checkpoint, for the note
# metrics.csv is rewritten whole each epoch, so its cost grows with the epochs run
HISTORY_ROWS = 50


# a metrics row of a classification epoch, as the runtime keeps them
ROW = {
    "epoch": 1,
    "train_loss": 0.5,
    "train_accuracy": 0.9,
    "val_loss": 0.6,
    "val_accuracy": 0.8,
    "lr": 0.001,
    "seconds": 0.1,
}


def optional(module: str, name: str):
    """Return `module.name`, or None when this version of the runtime has no such thing."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def cpu_ms(action, repeats: int) -> float:
    """Return the median CPU milliseconds (all threads of the process) of one `action()`."""
    action()  # warm-up
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        action()
        samples.append((time.process_time() - started) * 1000)
    return statistics.median(samples)


def wall_ms(action, repeats: int) -> float:
    """Return the median wall milliseconds of one `action()`."""
    action()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def trained_state(spec, data):
    """Return (model, optimizer, TrainingState) after one step, so Adam has its moments."""
    from compiler import build_sequential
    from runtime.training.early_stopping import EarlyStopping
    from runtime.training.loop import TrainingState

    torch.manual_seed(0)
    model = build_sequential(spec)
    training = spec.training_or_default
    optimizer = torch.optim.Adam(model.parameters(), lr=training.optimizer.lr)
    F.cross_entropy(model(data.x_train[:64]), data.y_train[:64]).backward()
    optimizer.step()
    state = TrainingState(
        model, optimizer, None, EarlyStopping.from_config(training.early_stopping)
    )
    state.history = [{**ROW, "epoch": i + 1} for i in range(HISTORY_ROWS)]
    state.epoch = HISTORY_ROWS
    return model, optimizer, state


def pieces(path: str, repeats: int) -> list[tuple[str, str, float]]:
    """Return (piece, where it runs, CPU ms per epoch) for one spec, the bare epoch first."""
    from loops import bare_loop

    from compiler import load_spec
    from runtime.data.load import load_data

    spec = load_spec(path)
    training = spec.training_or_default
    data = load_data(training, spec.input, training.task)
    batches = math.ceil(len(data.x_train) / training.batch_size)
    model, optimizer, state = trained_state(spec, data)

    found = []

    def bare_epoch():
        bare_loop(model, data, training, 1)

    found.append(
        ("bare epoch (the reference)", "main", cpu_ms(bare_epoch, max(3, repeats // 4)))
    )

    output = model(data.x_train[: training.batch_size]).detach()
    target = data.y_train[: training.batch_size]
    total = torch.zeros((), dtype=torch.float64)
    counted = torch.zeros((), dtype=torch.int64)

    def metric_float64():
        for _ in range(batches):
            total.add_((output.argmax(dim=1) == target).sum())

    def metric_int64():
        for _ in range(batches):
            counted.add_((output.argmax(dim=1) == target).sum())

    found.append(
        (
            "accuracy summed into a float64 tensor, per batch",
            "main",
            cpu_ms(metric_float64, repeats),
        )
    )
    found.append(
        ("  the same into an int64 tensor", "main", cpu_ms(metric_int64, repeats))
    )

    fused = adam_step_saving(model, data, training, batches, repeats)
    if fused is not None:
        found.append(
            (
                "Adam step, default minus fused (saved: the runtime uses fused)",
                "main",
                fused,
            )
        )

    run_writer = optional("runtime.training.run_writer", "RunWriter") or optional(
        "runtime.training.train", "RunWriter"
    )
    checkpoint_bytes = optional("runtime.storage.checkpoint", "checkpoint_bytes")
    write_atomically = optional("runtime.storage.atomic", "write_bytes_atomically")
    write_csv = optional("runtime.training.metrics", "write_metrics_csv")
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-overhead-") as folder:
        out = Path(folder)
        if run_writer is not None:
            writer = run_writer(out, spec, "sequential", data, training.task)
            found.append(
                (
                    "checkpoint payload (state copied)",
                    "main",
                    cpu_ms(lambda: writer.payload(state), repeats),
                )
            )
            payload = writer.payload(state)
            if checkpoint_bytes is not None:
                found.append(
                    (
                        "torch.save of the payload",
                        "writer thread",
                        cpu_ms(lambda: checkpoint_bytes(payload), repeats),
                    )
                )
                data_bytes = checkpoint_bytes(payload)
                CHECKPOINT_SIZES[path] = len(data_bytes)
                if write_atomically is not None:

                    def write_file():
                        write_atomically(out / "last.pt", data_bytes)

                    found.append(
                        (
                            "last.pt written + fsync (wall ms; best.pt is a hard link to it)",
                            "writer thread",
                            wall_ms(write_file, repeats),
                        )
                    )
        if write_csv is not None:
            found.append(
                (
                    f"metrics.csv rewritten ({HISTORY_ROWS} rows)",
                    "writer thread",
                    cpu_ms(
                        lambda: write_csv(
                            out / "metrics.csv", state.history, training.task
                        ),
                        repeats,
                    ),
                )
            )
    progress = optional("runtime.training.progress", "EpochProgress")
    if progress is not None:
        found.append(
            ("progress bar update (to a file)", "main", progress_ms(progress, repeats))
        )
    return found


def adam_step_saving(model, data, training, batches: int, repeats: int) -> float | None:
    """Return the CPU ms per epoch that Adam(fused=True) saves over torch's default Adam."""
    xb, yb = data.x_train[: training.batch_size], data.y_train[: training.batch_size]
    try:
        optimizers = {
            kind: torch.optim.Adam(model.parameters(), lr=1e-3, **extra)
            for kind, extra in (("default", {}), ("fused", {"fused": True}))
        }
    except (RuntimeError, TypeError):  # a torch without fused Adam on this device
        return None
    costs = {}
    loss = F.cross_entropy(model(xb), yb)
    loss.backward()
    for kind, optimizer in optimizers.items():
        optimizer.step()  # creates its moments before timing

        def steps(optimizer=optimizer):
            for _ in range(batches):
                optimizer.step()

        costs[kind] = cpu_ms(steps, max(3, repeats // 2))
    return costs["default"] - costs["fused"]


def progress_ms(progress_class, repeats: int) -> float:
    """Return the CPU ms of one EpochProgress.update, its output going to a throwaway file."""
    import contextlib

    row = dict(ROW)
    with contextlib.redirect_stderr(io.StringIO()):
        bar = progress_class(10**6, 0, "accuracy", False)
        try:
            return cpu_ms(lambda: bar.update(row), repeats)
        finally:
            bar.close()


def run(quick: bool, progress) -> tuple[str, list]:
    """Time the pieces on both digits specs; return the table (no targets: it explains them)."""
    repeats = 10 if quick else 40
    columns = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # CPU time of one thread is the work itself, without idle spinning
    try:
        for path in SPECS:
            progress(f"overhead: pieces of an epoch of {path}")
            columns[path] = pieces(path, repeats)
    finally:
        torch.set_num_threads(threads)
    names = [name for name, _, _ in columns[SPECS[0]]]
    where = {name: place for name, place, _ in columns[SPECS[0]]}
    rows = []
    for name in names:
        cells = [name, where[name]]
        for path in SPECS:
            values = {n: v for n, _, v in columns[path]}
            bare = values["bare epoch (the reference)"]
            value = values.get(name)
            if value is None:
                cells.append("-")
            elif name.startswith("bare"):
                cells.append(f"{value:.2f}")
            else:
                cells.append(f"{value:.2f} ({value / bare * 100:.1f}%)")
        rows.append(cells)
    header = ["piece", "runs on"] + [
        f"{Path(p).stem} ms/epoch (% of bare)" for p in SPECS
    ]
    note = (
        f"CPU ms per epoch (1 torch thread, {os.cpu_count()} CPUs), "
        "median of repeated runs; per-batch pieces are multiplied by the batches of an epoch. "
        "The fsync'd write is wall time (it waits on the disk, not the CPU). Checkpoint sizes: "
        + ", ".join(
            f"{Path(p).stem} {n / 1e6:.2f} MB" for p, n in CHECKPOINT_SIZES.items()
        )
        + "."
    )
    return markdown_table(header, rows) + "\n\n" + note, []
