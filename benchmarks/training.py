"""Training benchmark: the epoch time users get from `nnspec train` against the fastest loop a
careful user could write (a bare in-memory loop with fused Adam at its best thread count), the
course's DataLoader loop and, when importable, skorch, Lightning and Keras (torch backend).

`nnspec train` runs as a user runs it, a process per round (nnspec_train.py): its own thread
choice, its own checkpoint policy, its progress bar. The bare loops, the course's DataLoader loop
and the frameworks it is measured against run in processes of their own too, in lockstep with it
(lockstep.py: one epoch of each in turn, so epoch k of `nnspec train` is timed within a few
seconds of epoch k of every other loop; bare_process.py, framework_process.py).

The loops run in interleaved rounds (each round: every loop once, in an order rotated from round
to round, on a freshly seeded model) and warm-up epochs are dropped; a ratio is the median over
rounds of the ratio of the two loops' median epochs within a round, so the drift of a machine
shared with other work cancels out of it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import bare_process
import framework_process
import lockstep
import nnspec_train
import numpy as np
import torch
from common import at_most, epoch_times, markdown_table, mean
from common import median as median_of
from loops import fused_supported

NNSPEC = "nnspec train"
LOCKSTEP = "nnspec train, the bare loops and the frameworks, in lockstep"
TIMEOUT = 1800  # seconds a lockstep round may take
ROOT = Path(__file__).resolve().parent.parent
COMPILED = "nnspec train, training.compile: true"
AMP = "nnspec train, training.amp: true (bf16; not a reference)"
# a bare loop with its weights in channels-last layout: shown, not a reference (the issue's
# reference is the bare loop as written; nnspec train chooses the layout by timing it)
CHANNELS_LAST = "bare, fused Adam, channels last (not a reference)"
# the bare loop as nnspec train runs: denormals flushed to zero (and channels last on CNNs)
AS_NNSPEC = (
    "bare, fused Adam, denormals flushed (+ CNNs channels last) (not a reference)"
)
NOT_REFERENCES = (CHANNELS_LAST, AS_NNSPEC)
NNSPEC_WARMUP = (
    2  # epochs of each `nnspec train` run left untimed (start-up, thread choice)
)
LIMITS = {"bare": 1.02, "DataLoader": 0.75, "Lightning": 0.55}

MLP_LAYERS = [{"linear": 256}, "relu", {"linear": 256}, "relu", {"linear": 10}]
CNN_LAYERS = [
    {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
    "batchnorm2d",
    "relu",
    {"maxpool2d": 2},
    {"conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}},
    "batchnorm2d",
    "relu",
    {"maxpool2d": 2},
    {"conv2d": {"out_channels": 64, "kernel_size": 3, "padding": 1}},
    "batchnorm2d",
    "relu",
    {"maxpool2d": 2},
    "flatten",
    {"linear": 10},
]
# (name, input shape, layers, train samples, validation samples), full and --quick
SYNTHETIC = [
    ("MLP 784-256-256-10", [784], MLP_LAYERS, (60_000, 10_000), (12_000, 2_000)),
    ("CNN 3x32x32, 3 conv", [3, 32, 32], CNN_LAYERS, (8_000, 2_000), (2_000, 500)),
]

# A spec with the synthetic MLP; tests and gpu.py build on it too.
SYNTHETIC_SPEC = {
    "spec_version": 1,
    "name": "SyntheticMLP",
    "description": "MLP 784-256-256-10 on a random MNIST-sized set (60,000 x 784).",
    "input": [784],
    "layers": MLP_LAYERS,
    "training": {
        "data": {
            "dataset": "digits"
        },  # replaced where the spec is written with its data
        "task": "classification",
        "epochs": 3,
        "batch_size": 128,
        "optimizer": {"type": "adam", "lr": 0.001},
        "early_stopping": {"monitor": "val_loss", "patience": 10},
        "seed": 0,
    },
}

LEGEND = """\
Median wall time of an epoch (training, validation and whatever the loop does between epochs) and in
brackets its ratio to the reference, the faster of the two fused bare loops (median over rounds
of the ratio within a round; loops interleaved round by round). `nnspec train` is the command
itself in a new process per round, with its own thread choice and checkpoint policy, its
progress bar going to a file; an epoch is the time from the end of one epoch to the end of the
next (every cost of an epoch, writes included), its first {warmup} epochs untimed; "metrics.csv
seconds" is the same runs' own `seconds` column (training + validation only), "mean epoch" the
mean instead of the median (periodic costs such as a checkpoint written every few seconds show
there). Every other loop runs in a process of its own too, in lockstep with `nnspec train` (one
epoch of each process in turn, the others stopped meanwhile; their first {warmup} epochs
untimed too): bare = tensors in memory, batches by index_select, loss summed on the device,
fused Adam, at 1 and {threads} threads as written (the "channels last" line: the same with the
model's 4-d weights in channels-last layout, at {threads} threads, shown for CNNs; `nnspec
train` times that layout and keeps it when faster; the "denormals flushed" line: the same
flushing denormal floats to zero first, as `nnspec train` does, channels last on CNNs, at
{threads} threads). The course's loop and the frameworks, at {threads} torch threads, denormals as
torch leaves them:
DataLoader = the course's loop (TensorDataset + DataLoader(shuffle=True), per-batch .item());
skorch = NeuralNetClassifier with its default callbacks; Lightning = a LightningModule logging
loss and accuracy, Trainer defaults (end-of-epoch checkpoint), no progress bar or logger; Keras =
Keras 3 on torch, the same module in a TorchModuleWrapper, fit(validation_data=...) on NumPy."""


@dataclass
class Workload:
    """A model and its data: what every loop of one column of the table trains."""

    name: str
    spec_path: Path  # the file `nnspec train` reads
    spec: object  # compiler.Spec of that file
    data: object  # runtime.data.load.DataSplits, as `nnspec train` loads them
    rounds: int
    epochs: int  # per process of every loop in a round; the first NNSPEC_WARMUP untimed
    compile_rounds: (
        int  # rounds that also run `training.compile: true` (it compiles first)
    )

    @property
    def batch_size(self) -> int:
        """Return the spec's batch size."""
        return self.spec.training_or_default.batch_size


@dataclass
class Row:
    """The epoch times of every loop on one workload, by loop and round."""

    workload: Workload
    rounds: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # why a loop has no time
    reference: str = ""  # the loop the ratios are to

    def add(self, loop: str, round_index: int, times: list[float]) -> None:
        """Record one round of a loop."""
        self.rounds.setdefault(loop, {})[round_index] = times

    def times(self, loop: str) -> list[float]:
        """Return every timed epoch of `loop`, all rounds together."""
        return [t for r in self.rounds.get(loop, {}).values() for t in r]

    def median(self, loop: str) -> float:
        """Return the median epoch time of `loop` in seconds (NaN when it has none)."""
        return median_of(self.times(loop))

    def ratio(self, loop: str, to: str | None = None, statistic=median_of) -> float:
        """Return the median over rounds of statistic(epochs of `loop`) / statistic(epochs
        of `to`) (default: the reference), over the rounds where both ran.

        A round's loops ran within seconds of each other, so a ratio within a round cancels
        the slow drift of a shared machine that a ratio of overall medians would keep.
        """
        mine, theirs = self.rounds.get(loop, {}), self.rounds.get(
            to or self.reference, {}
        )
        return median_of(
            [
                statistic(mine[r]) / statistic(theirs[r])
                for r in mine
                if r in theirs and mine[r] and theirs[r]
            ]
        )


@dataclass
class Loop:
    """One column of rounds: `time(workload, round) -> epoch times`, or a str saying why not."""

    name: str
    time: Callable[[Workload, int], list[float] | str]
    only_rounds: Callable[[Workload], int] | None = (
        None  # run in this many first rounds
    )


def nnspec_loop(sets: tuple[str, ...] = ()):
    """Return a Loop's timer that runs `nnspec train` (with `--set`s) as a new process."""

    def time_it(workload: Workload, _round: int) -> list[float] | str:
        run = nnspec_train.train(
            workload.spec_path, workload.epochs, sets=sets, device="cpu"
        )
        return _nnspec_times(run, workload, {})

    return time_it


def compile_accepted(spec) -> str:
    """Return "" when this nnspec's spec language has `training.compile`, else why not."""
    fields = type(spec.training_or_default).model_fields
    if "compile" in fields:
        return ""
    return "skipped: this nnspec's spec language has no `training.compile` yet"


def loops(threads: int, seen: dict) -> list[Loop]:
    """Return the loops to time: `nnspec train`, the references and the frameworks in
    lockstep, then `nnspec train` compiled, then under bf16 autocast (a CPU with bf16
    instructions only: the others would emulate it)."""
    return [
        Loop(LOCKSTEP, lockstep_group(threads, seen, framework_process.available())),
        Loop(COMPILED, _compiled_loop, only_rounds=lambda w: w.compile_rounds),
        Loop(AMP, _amp_loop, only_rounds=lambda w: w.compile_rounds),
    ]


def bare_name(threads: int) -> str:
    """Return the table's name of the fused bare loop at `threads` threads."""
    return f"bare, fused Adam, {threads} thread{'s' if threads > 1 else ''}"


def lockstep_group(threads: int, seen: dict, frameworks: list[str]):
    """Return a Loop's timer that runs `nnspec train`, the bare loops and the `frameworks`
    (names of framework_process.LOOPS), each a process of its own, in lockstep
    (benchmarks/lockstep.py): the fused bare loop at 1 and `threads` threads (the references),
    and, not references, the same in channels last on a CNN and the same as `nnspec train` runs
    (denormals flushed, channels last on a CNN); the frameworks at `threads` threads. Every
    process runs the workload's `epochs` epochs; the first NNSPEC_WARMUP of each are untimed,
    so epoch k of one is timed beside epoch k of the others."""

    def time_it(workload: Workload, round_index: int) -> dict[str, list[float] | str]:
        cnn = _has_convolution(workload.spec)
        bares = [(bare_name(1), 1, False, False)]
        if threads > 1:
            bares.append((bare_name(threads), threads, False, False))
        if cnn:
            bares.append((CHANNELS_LAST, threads, True, False))
        bares.append((AS_NNSPEC, threads, cnn, True))
        epochs = workload.epochs
        with tempfile.TemporaryDirectory(prefix="nnspec-bench-lockstep-") as folder:
            folder = Path(folder)
            children = []
            for index, (name, count, channels_last, flush) in enumerate(
                [(NNSPEC, 0, False, False), *bares]
                + [(name, threads, False, False) for name in frameworks]
            ):
                place = folder / str(index)
                place.mkdir()
                if name == NNSPEC:
                    argv, env = nnspec_train.command(
                        place, workload.spec_path, epochs, device="cpu"
                    )
                elif name in frameworks:
                    argv, env = framework_process.command(
                        name, workload.spec_path, epochs, count
                    )
                else:
                    argv, env = bare_process.command(
                        workload.spec_path,
                        epochs,
                        count,
                        channels_last=channels_last,
                        flush=flush,
                    )
                children.append(
                    lockstep.Child(
                        name,
                        argv,
                        env,
                        ROOT,
                        place / "stdout.txt",
                        place / "stderr.txt",
                    )
                )
            shift = round_index % len(children)  # which starts first, round by round
            codes = lockstep.run(children[shift:] + children[:shift], TIMEOUT)
            timed: dict[str, list[float] | str] = {}
            for child in children:
                place = child.stdout.parent
                if child.name == NNSPEC:
                    timed[NNSPEC] = _nnspec_times(
                        nnspec_train.collect(place, codes[NNSPEC], 0.0, TIMEOUT),
                        workload,
                        seen,
                    )
                    continue
                # a bare loop prints every epoch's time, a framework's process those from
                # its second epoch on (lockstep.EpochClock's, as nnspec train's)
                first = NNSPEC_WARMUP - 1 if child.name in frameworks else NNSPEC_WARMUP
                epochs_timed = epoch_times(
                    codes[child.name],
                    child.stdout.read_text(encoding="utf-8"),
                    child.stderr.read_text(encoding="utf-8", errors="replace"),
                )
                timed[child.name] = (
                    epochs_timed
                    if isinstance(epochs_timed, str)
                    else epochs_timed[first:]
                )
        return timed

    return time_it


def _nnspec_times(run, workload: Workload, seen: dict) -> list[float] | str:
    """Return the timed epochs of one `nnspec train` run (its first NNSPEC_WARMUP left out),
    noting its device and metrics.csv seconds in `seen`; or why it failed."""
    if not run.ok:
        return f"`nnspec train` failed: {run.error}"
    seen.setdefault(workload.name, set()).add(run.device)
    seen.setdefault(("csv", workload.name), []).append(run.csv_seconds[NNSPEC_WARMUP:])
    return run.epoch_times[NNSPEC_WARMUP - 1 :]


def _has_convolution(spec) -> bool:
    from compiler import build_sequential
    from runtime.parallel.layout import has_convolution

    return has_convolution(build_sequential(spec))


def _compiled_loop(workload: Workload, round_index: int) -> list[float] | str:
    why_not = compile_accepted(workload.spec)
    if why_not:
        return why_not
    return nnspec_loop(("training.compile=true",))(workload, round_index)


def _amp_loop(workload: Workload, round_index: int) -> list[float] | str:
    from runtime.parallel.device import cpu_has_bf16

    if not cpu_has_bf16():
        return "skipped: this CPU has no bf16 instructions (AVX512-BF16, AMX)"
    return nnspec_loop(("training.amp=true",))(workload, round_index)


def time_workload(workload: Workload, threads: int, progress) -> Row:
    """Return the epoch times of every loop on `workload`, loops interleaved round by round."""
    seen: dict = {}
    chosen = loops(threads, seen)
    row = Row(workload)
    for round_index in range(workload.rounds):
        shift = round_index % len(chosen)
        for loop in chosen[shift:] + chosen[:shift]:
            if loop.name in row.notes:
                continue  # refused once (not installed, not accepted, failed): not again
            if loop.only_rounds and round_index >= loop.only_rounds(workload):
                continue
            timed = loop.time(workload, round_index)
            for name, times in (
                timed.items() if isinstance(timed, dict) else [(loop.name, timed)]
            ):
                if isinstance(times, str):
                    row.notes.setdefault(name, times)
                    progress(f"training: {workload.name}: {name}: {times}")
                else:
                    row.add(name, round_index, times)
    bare = [
        name
        for name in row.rounds
        if name.startswith("bare") and name not in NOT_REFERENCES
    ]
    row.reference = min(bare, key=row.median)
    devices = sorted(seen.get(workload.name, set()))
    if devices:
        row.notes.setdefault(NNSPEC, f"ran on {', '.join(devices)}")
    csv_rounds = seen.get(("csv", workload.name), [])
    for round_index, csv in zip(sorted(row.rounds.get(NNSPEC, {})), csv_rounds):
        row.add(f"{NNSPEC}, metrics.csv seconds", round_index, csv)
    return row


def digits_workload(path: str, quick: bool) -> Workload:
    """Return the workload of a digits spec file, as `nnspec train` runs it (its batch size,
    optimizer, early stopping and split)."""
    from compiler import load_spec
    from runtime.data.load import load_spec_data

    spec = load_spec(path)
    return Workload(
        name=Path(path).name,
        spec_path=Path(path),
        spec=spec,
        data=load_spec_data(spec),
        rounds=4 if quick else 10,
        epochs=8 if quick else 14,
        compile_rounds=1 if quick else 3,
    )


def write_synthetic(
    folder: Path,
    stem: str,
    shape: list,
    layers: list,
    n_train: int,
    n_val: int,
    seed: int,
):
    """Return (spec path, Spec, DataSplits) of random samples of `shape` with 10 classes,
    written as `stem`.npz into `folder` with a spec `stem`.yaml that reads them (batch 128,
    Adam, early stopping): `nnspec train` loads them like a user's data, and the DataSplits
    are what it loads."""
    import yaml

    from compiler import load_spec
    from runtime.data.load import load_spec_data

    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n_train + n_val, *shape, generator=generator)
    y = torch.randint(0, 10, (n_train + n_val,), generator=generator)
    npz = folder / f"{stem}.npz"
    np.savez(npz, x=x.numpy(), y=y.numpy())
    text = {
        **SYNTHETIC_SPEC,
        "name": stem.capitalize(),
        "description": f"{n_train + n_val} random samples of shape {shape}",
        "input": shape,
        "layers": layers,
    }
    text["training"] = {
        **SYNTHETIC_SPEC["training"],
        "data": {
            "dataset": "npz",
            "path": str(npz),
            "val_fraction": n_val / (n_train + n_val),
        },
    }
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(text, sort_keys=False), encoding="utf-8")
    spec = load_spec(path)
    return path, spec, load_spec_data(spec)


def synthetic_workload(index: int, quick: bool, folder: Path) -> Workload:
    """Return the `index`th SYNTHETIC workload, its data written into `folder`."""
    name, shape, layers, full, small = SYNTHETIC[index]
    n_train, n_val = small if quick else full
    path, spec, data = write_synthetic(
        folder, f"synthetic{index}", shape, layers, n_train, n_val, index
    )
    return Workload(
        name=f"{name}, {n_train // 1000}k samples",
        spec_path=path,
        spec=spec,
        data=data,
        rounds=2 if quick else 3,
        epochs=4 if quick else 6,
        compile_rounds=1,
    )


def run(quick: bool, progress: Callable[[str], None]) -> tuple[str, list]:
    """Time every workload; return the markdown table and the targets it checks."""
    threads = torch.get_num_threads()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-data-") as folder:
        makers = [
            lambda: digits_workload("specs/digits_mlp.yaml", quick),
            lambda: digits_workload("specs/digits_cnn.yaml", quick),
        ] + [
            lambda i=i: synthetic_workload(i, quick, Path(folder))
            for i in range(len(SYNTHETIC))
        ]
        for make in makers:
            workload = make()
            progress(
                f"training: {workload.name} ({workload.rounds} rounds of "
                f"{workload.epochs} epochs in each loop's process)"
            )
            rows.append(time_workload(workload, threads, progress))
    note = "" if fused_supported() else "\n\nThis torch has no fused Adam on the CPU."
    legend = LEGEND.format(warmup=NNSPEC_WARMUP, threads=threads)
    return table(rows) + "\n\n" + notes(rows) + "\n\n" + legend + note, targets(rows)


def table(rows: list[Row]) -> str:
    """Return the markdown table: a loop a line, each workload's median epoch and ratio."""
    names: list[str] = []
    for row in rows:
        names += [name for name in row.rounds if name not in names]
    mean_row = f"{NNSPEC}, mean epoch"
    if NNSPEC in names:
        names.insert(names.index(NNSPEC) + 1, mean_row)
    header = ["loop"] + [
        f"{row.workload.name}, batch {row.workload.batch_size}: ms (x ref)"
        for row in rows
    ]
    lines = []
    for name in names:
        cells = [name]
        for row in rows:
            if name == mean_row and NNSPEC in row.rounds:
                value = mean(row.times(NNSPEC))
                ratio = row.ratio(NNSPEC, statistic=mean)
                cells.append(f"{value * 1000:.1f} ({ratio:.3f}x)")
            elif name not in row.rounds:
                cells.append("-")
            else:
                mark = ", ref" if name == row.reference else ""
                ratio = row.ratio(name)
                cells.append(f"{row.median(name) * 1000:.1f} ({ratio:.3f}x{mark})")
        lines.append(cells)
    epochs = ["epochs timed (ref; nnspec train)"] + [
        f"{len(row.times(row.reference))}; {len(row.times(NNSPEC))}" for row in rows
    ]
    return markdown_table(header, lines + [epochs])


def notes(rows: list[Row]) -> str:
    """Return the notes of each workload: the threads nnspec chose, loops that did not run."""
    lines = []
    for row in rows:
        for loop, note in row.notes.items():
            lines.append(f"- {row.workload.name}: {loop}: {note}")
    return "\n".join(lines) if lines else "- every loop ran on every workload"


def targets(rows: list[Row]) -> list:
    """Return the targets of issue 18: `nnspec train` / fused bare <= 1.02, / DataLoader
    <= 0.75, / Lightning <= 0.55 (when installed), on each workload."""
    checked = []
    for row in rows:
        name = row.workload.name
        failed = row.notes.get(NNSPEC, "") if NNSPEC not in row.rounds else ""
        for other, limit in LIMITS.items():
            to = row.reference if other == "bare" else other
            if other != "bare" and other not in row.rounds:
                continue  # not installed: no column, no target
            label = "fused bare (ref)" if other == "bare" else other
            value = row.ratio(NNSPEC, to) if not failed else float("nan")
            target = at_most(f"{name}: nnspec train / {label}", value, limit, failed)
            checked.append(target)
    return checked
