"""Training benchmark: median epoch time of nnspec's runtime against a bare loop, the course's
DataLoader loop and (when installed) Lightning, on the same model, data, batch size and optimizer.

The loops run in interleaved rounds (each round: every loop, in an order rotated from round to
round, `epochs` epochs on a freshly seeded model), and each loop's first epoch of a round is
dropped, so warm-up stays out; a ratio is the median over rounds of the ratio within a round, so
the drift of a machine shared with other work cancels out of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from common import at_most, markdown_table, median
from loops import (
    bare_loop,
    dataloader_loop,
    lightning_loop,
    lightning_module,
    nnspec_loop,
)

SYNTHETIC_SPEC = {
    "spec_version": 1,
    "name": "SyntheticMLP",
    "description": "MLP 784-256-256-10 on a random MNIST-sized set (60,000 x 784).",
    "input": [784],
    "layers": [{"linear": 256}, "relu", {"linear": 256}, "relu", {"linear": 10}],
    "training": {
        "data": {"dataset": "digits"},  # unused: the benchmark passes its own splits
        "task": "classification",
        "epochs": 3,
        "batch_size": 64,
        "optimizer": {"type": "adam", "lr": 0.001},
        "seed": 0,
    },
}


LEGEND = """\
Median wall time of an epoch (training + validation + whatever the loop does between epochs),
first epoch of each round dropped, loops interleaved round by round; in brackets the ratio to
the bare loop (median over rounds of the ratio within a round). bare: tensors in memory, batches by index, loss summed on the device.
nnspec: `runtime.training.loop.fit` with `nnspec train`'s RunWriter (last.pt, best.pt, metrics.csv every
epoch) and early stopping as in the spec, quiet, at the benchmark's thread count like every other
loop. nnspec+bar: the same with the progress bar (to /dev/null). fit only: `fit` without the
checkpoint writer. nnspec, own threads: as nnspec, with the thread count that `nnspec train`
chooses for the model (`runtime.parallel.device.cpu_threads_for`: one thread for small models). DataLoader: the course's loop
(TensorDataset + DataLoader(shuffle=True), per-batch loss.item() and accuracy .item(), validation
through a DataLoader). Lightning: a LightningModule with logged loss/accuracy and Trainer defaults
(end-of-epoch checkpoint), no progress bar or logger; shown only when lightning is installed."""


@dataclass
class Workload:
    """A model and its data: what every loop of one row of the table trains."""

    name: str
    spec: object  # compiler.Spec
    data: object  # runtime.data.load.DataSplits
    rounds: int
    epochs: int  # per round; the first of each round is dropped


@dataclass
class Row:
    """The epoch times of every loop on one workload, round by round."""

    workload: Workload
    rounds: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def times(self) -> dict[str, list[float]]:
        """Return every timed epoch of each loop, all rounds together."""
        return {
            name: [t for r in rounds for t in r] for name, rounds in self.rounds.items()
        }

    def median(self, loop: str) -> float:
        """Return the median epoch time of `loop` in seconds."""
        return median(self.times[loop])

    def ratio(self, loop: str, to: str = "bare") -> float:
        """Return the median over rounds of (median epoch of `loop` / median epoch of `to`).

        Each round's loops ran within seconds of each other, so a ratio within a round cancels
        the slow drift of a shared machine that a ratio of overall medians would keep.
        """
        return median(
            [median(a) / median(b) for a, b in zip(self.rounds[loop], self.rounds[to])]
        )


def loops(spec, include_variants: bool) -> dict[str, Callable]:
    """Return the loops to time by column name: bare first, since the ratios are to it."""
    chosen: dict[str, Callable] = {
        "bare": bare_loop,
        "nnspec": lambda m, d, t, e: nnspec_loop(m, d, t, e, spec=spec),
    }
    if include_variants:
        chosen["nnspec+bar"] = lambda m, d, t, e: nnspec_loop(
            m, d, t, e, spec=spec, quiet=False
        )
        chosen["fit only"] = lambda m, d, t, e: nnspec_loop(
            m, d, t, e, spec=spec, checkpoints=False
        )
    policy = thread_policy()
    if policy is not None:
        chosen["nnspec, own threads"] = lambda m, d, t, e: _with(
            policy(spec, t.batch_size, torch.device("cpu")),
            lambda: nnspec_loop(m, d, t, e, spec=spec),
        )
    chosen["DataLoader"] = dataloader_loop
    if lightning_module() is not None:
        chosen["Lightning"] = lightning_loop
    return chosen


def thread_policy():
    """Return the runtime's `cpu_threads_for(spec, batch_size, device)` (how many threads
    `nnspec train` gives a model), or None in a runtime without one."""
    try:
        from runtime.parallel.device import cpu_threads_for
    except ImportError:
        return None
    return cpu_threads_for


def _with(context, action):
    with context:
        return action()


def time_workload(workload: Workload, include_variants: bool) -> Row:
    """Return the epoch times (first epoch of each round dropped) of every loop on `workload`."""
    from compiler import build_sequential

    chosen = loops(workload.spec, include_variants)
    names = list(chosen)
    row = Row(workload, {name: [] for name in names})
    training = workload.spec.training_or_default
    for round_index in range(workload.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            torch.manual_seed(training.seed)
            model = build_sequential(workload.spec)
            times = chosen[name](model, workload.data, training, workload.epochs)
            row.rounds[name].append(times[1:])
    return row


def digits_workload(path: str, quick: bool) -> Workload:
    """Return the digits workload of a spec file (its model, batch size, optimizer and split)."""
    from compiler import load_spec
    from runtime.data.load import load_data

    spec = load_spec(path)
    training = spec.training_or_default
    data = load_data(training, spec.input, training.task)
    return Workload(
        path, spec, data, rounds=4 if quick else 12, epochs=3 if quick else 4
    )


def synthetic_workload(quick: bool) -> Workload:
    """Return the MNIST-sized workload: 60,000 random 784-vectors (and 10,000 to validate)."""
    from compiler import load_spec
    from runtime.data.load import DataSplits

    spec = load_spec(SYNTHETIC_SPEC)
    generator = torch.Generator().manual_seed(0)
    n_train, n_val = (12_000, 2_000) if quick else (60_000, 10_000)
    x = torch.rand(n_train + n_val, 784, generator=generator)
    y = torch.randint(0, 10, (n_train + n_val,), generator=generator)
    data = DataSplits(
        x[:n_train],
        y[:n_train],
        x[n_train:],
        y[n_train:],
        None,
        None,
        10,
        None,
        f"synthetic: {n_train} train, {n_val} val",
    )
    name = f"synthetic {n_train // 1000}k x 784 (MLP 784-256-256-10)"
    return Workload(name, spec, data, rounds=2, epochs=3 if quick else 4)


def run(quick: bool, progress: Callable[[str], None]) -> tuple[str, list]:
    """Time every workload; return the markdown table and the targets it checks."""
    rows = []
    for make, variants in (
        (lambda: digits_workload("specs/digits_mlp.yaml", quick), True),
        (lambda: digits_workload("specs/digits_cnn.yaml", quick), True),
        (lambda: synthetic_workload(quick), False),
    ):
        workload = make()
        progress(
            f"training: {workload.name} ({workload.rounds} rounds x {workload.epochs} epochs)"
        )
        rows.append(time_workload(workload, variants))
    return table(rows) + "\n\n" + LEGEND, targets(rows)


def table(rows: list[Row]) -> str:
    """Return the markdown table: median epoch time of each loop and its ratio to the bare loop."""
    columns = []
    for row in rows:
        columns += [name for name in row.times if name not in columns]
    header = ["workload", "batch", "epochs timed"] + [
        f"{name} ms (x bare)" for name in columns
    ]
    lines = []
    for row in rows:
        cells = [
            row.workload.name,
            str(row.workload.spec.training_or_default.batch_size),
            str(len(row.times["bare"])),
        ]
        for name in columns:
            if name not in row.times:
                cells.append("-")
            elif name == "bare":
                cells.append(f"{row.median(name) * 1000:.1f}")
            else:
                cells.append(f"{row.median(name) * 1000:.1f} ({row.ratio(name):.2f}x)")
        lines.append(cells)
    return markdown_table(header, lines)


def targets(rows: list[Row]) -> list:
    """Return runtime/bare <= 1.05 and runtime/DataLoader <= 0.85 for each digits spec."""
    checked = []
    for row in rows:
        if not row.workload.name.startswith("specs/digits"):
            continue
        name = row.workload.name.removeprefix("specs/")
        checked.append(at_most(f"{name}: nnspec / bare", row.ratio("nnspec"), 1.05))
        checked.append(
            at_most(
                f"{name}: nnspec / DataLoader", row.ratio("nnspec", "DataLoader"), 0.85
            )
        )
    return checked
