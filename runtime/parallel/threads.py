"""How many CPU threads `nnspec train` trains on: timed, not guessed from the model's size.

With `training.threads: auto` (the default) on the CPU, a few training steps of the run's own
model, optimizer and batch are timed at one thread and at torch's count, alternately, on a copy of
the model and optimizer (the run's weights and random generators are left as they were), and the
faster count is kept; one thread must win by `FASTER_BY` to be chosen over torch's count (a step
timed alike at both is still faster at torch's count over an epoch: validation's large batches
split well; make bench measured the digits CNN 1.16x slower per epoch at one thread when its steps
timed 5.39 and 5.25 ms), so a count near the tie does not flip from run to run. The timing is bounded: a warm-up step, then
steps alternated for `MEASURE_SECONDS` (at least two at each count); when one step at torch's
count takes longer than `LONG_STEP_SECONDS`, that count is kept untimed at one thread (a step
that long is work threads pay for).

The thread count changes the last bits of CPU results (reductions split differently), so the
choice is made once per spec and machine and remembered in the user's cache folder (threads.json):
the same spec on the same machine trains the same way every time. A resumed run takes the count
its checkpoint recorded. Nothing is timed when the user chose (`training.threads: N`,
`OMP_NUM_THREADS` or `MKL_NUM_THREADS`; the processes of `--nproc` run with OMP_NUM_THREADS=1), off
the CPU, or where torch has one thread.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from runtime.data.stored import take
from runtime.errors import UserError
from runtime.storage.atomic import write_bytes_atomically
from runtime.storage.codegen_cache import cache_folder
from runtime.training.metrics import TaskMetrics
from runtime.training.optim import build_optimizer

MEASURE_SECONDS = (
    0.3  # the timed steps take about this long (at least two at each count)
)
LONG_STEP_SECONDS = 1.0  # a step this long at torch's count is not timed at one thread
FASTER_BY = 0.10  # one thread is kept only when a step is at least 10% faster on it
CACHE_FILE = "threads.json"
CHOICE_RULE = 2  # in the cache key: choices made by an earlier rule are made again
MAX_ENTRIES = 500  # the oldest go first
_USER_CHOICE = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass(frozen=True)
class ThreadChoice:
    """How many CPU threads a run trains on, and why: measured, remembered (measured by an
    earlier run of the spec), resumed (the checkpoint's), setting, environment, or the count
    torch has (`device`: not the CPU; `single`: torch has one thread)."""

    chosen: int
    by: str
    measured: dict[int, float] = field(default_factory=dict)  # ms per step, by count

    def summary(self) -> dict[str, Any]:
        """Return what summary.json records: {"chosen": 2, "by": ..., "measured": {"1": ms}}."""
        return {
            "chosen": self.chosen,
            "by": self.by,
            "measured": {str(n): round(ms, 3) for n, ms in self.measured.items()},
        }

    def describe(self) -> str:
        """Return how the report names the choice, e.g. `measured: 0.81 ms/step at 2, 1.23 at
        1`, or `set by OMP_NUM_THREADS`."""
        if self.measured:
            times = sorted(
                self.measured.items(), key=lambda item: item[0] != self.chosen
            )
            shown = ", ".join(
                f"{ms:.2f} ms/step at {n}" if i == 0 else f"{ms:.2f} at {n}"
                for i, (n, ms) in enumerate(times)
            )
            return f"{self.by}: {shown}"
        return {
            "setting": "set by training.threads",
            "environment": "set by OMP_NUM_THREADS/MKL_NUM_THREADS",
            "resumed": "as the checkpoint resumed",
            "untimed": "torch's count: a training step failed when timed",
        }.get(self.by, self.by)


def choose_threads(
    model: nn.Module,
    data,
    training,
    device: torch.device,
    *,
    key: str,
    resumed: Any = None,
) -> ThreadChoice:
    """Return the CPU threads to train `model` on (module docstring); `key` names the spec
    for the cache, `resumed` is the count a resumed checkpoint recorded (or None)."""
    default = torch.get_num_threads()
    if device.type != "cpu":
        return ThreadChoice(default, "device")
    if isinstance(training.threads, int):
        return ThreadChoice(training.threads, "setting")
    if any(os.environ.get(name) for name in _USER_CHOICE):
        return ThreadChoice(default, "environment")
    if (
        isinstance(resumed, int)
        and not isinstance(resumed, bool)
        and 0 < resumed <= 1024
    ):
        return ThreadChoice(resumed, "resumed")  # the same count resumes bit for bit
    if default <= 1:
        return ThreadChoice(default, "single")
    entry_key = cache_key(key, default, str(CHOICE_RULE))
    remembered = _remembered(remembered_entry(CACHE_FILE, entry_key))
    if remembered is not None:
        return remembered
    try:
        measured = time_steps(model, data, training, (1, default))
    except (RuntimeError, ValueError, IndexError, TypeError):
        # a model whose output does not fit its data: fit's check says so in one line
        return ThreadChoice(default, "untimed")
    chosen = default
    if len(measured) == 2 and measured[1] <= measured[default] * (1 - FASTER_BY):
        chosen = 1
    choice = ThreadChoice(chosen, "measured", measured)
    remember_entry(
        CACHE_FILE,
        entry_key,
        {"chosen": choice.chosen, "measured": choice.summary()["measured"]},
    )
    return choice


def time_steps(
    model: nn.Module, data, training, counts: tuple[int, ...]
) -> dict[int, float]:
    """Return the median ms of one training step (forward, loss, backward, optimizer step) of a
    copy of `model` on the first batch of `data`, at each thread count in `counts` (torch's
    own last); only the last when one step at it takes longer than LONG_STEP_SECONDS."""
    task = TaskMetrics(training.task)
    probe = copy.deepcopy(model).cpu()
    optimizer = build_optimizer(probe, training.optimizer)
    x, y = first_batch(data, training, task)
    before = torch.get_num_threads()
    samples: dict[int, list[float]] = {n: [] for n in counts}
    # dropout draws from torch's generator: forked, so the run draws what it would have
    with torch.random.fork_rng(devices=[]):
        try:
            # torch's count first: a warm-up step (allocations, kernels picked, one-time
            # set-up), then one timed; a step that long is work threads pay for
            torch.set_num_threads(counts[-1])
            step_seconds(probe, optimizer, task, x, y)
            first = step_seconds(probe, optimizer, task, x, y)
            if first > LONG_STEP_SECONDS:
                return {counts[-1]: first * 1000}
            samples[counts[-1]].append(first)
            started = time.perf_counter()
            while (
                time.perf_counter() - started < MEASURE_SECONDS
                or min(map(len, samples.values())) < 2
            ):
                for (
                    n
                ) in counts:  # alternated, so a change of the machine's load hits both
                    torch.set_num_threads(n)
                    samples[n].append(step_seconds(probe, optimizer, task, x, y))
        finally:
            torch.set_num_threads(before)
    return {n: median(times) * 1000 for n, times in samples.items()}


def first_batch(data, training, task: TaskMetrics):
    """Return (x, y) of the first training batch of `data`, the batch a probe times (read
    from disk when the data set is streamed; y is x for reconstruction)."""
    rows = range(min(training.batch_size, len(data.x_train)))
    x = take(data.x_train, rows)
    return x, x if task.reconstructs else take(data.y_train, rows)


def step_seconds(model, optimizer, task: TaskMetrics, x, y) -> float:
    """Return the wall seconds of one training step of `model` on (x, y)."""
    started = time.perf_counter()
    model.train()
    loss = task.loss(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    """Return the median of `values` (the upper one of an even count)."""
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


@contextlib.contextmanager
def cpu_threads(choice: ThreadChoice) -> Iterator[None]:
    """Run the block on `choice.chosen` torch threads, then restore the count before."""
    before = torch.get_num_threads()
    if choice.chosen != before:
        torch.set_num_threads(choice.chosen)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def cache_key(key: str, default: int, rule: str) -> str:
    """Return the cache key of a spec on this machine under a choice's `rule`: the spec, torch,
    the CPU and its cores, torch's thread count."""
    machine = (
        f"{key}\0{torch.__version__}\0{platform.machine()}\0{platform.processor()}\0"
        f"{os.cpu_count()}\0{default}\0{rule}"
    )
    return hashlib.sha256(machine.encode()).hexdigest()


def remembered_entry(file: str, entry_key: str) -> dict | None:
    """Return the entry an earlier run wrote under `entry_key` in the cache folder's `file`,
    None when there is none (no cache, or a damaged one: the choice is made again)."""
    try:
        entry = json.loads((cache_folder() / file).read_text())[entry_key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry if isinstance(entry, dict) else None


def remember_entry(file: str, entry_key: str, entry: dict) -> None:
    """Record `entry` under `entry_key` in the cache folder's `file` (the oldest of more than
    MAX_ENTRIES go); a cache that cannot be written is no error (the next run measures again).
    """
    path = cache_folder() / file
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, dict):
            entries = {}
    except (OSError, ValueError):
        entries = {}
    entries.pop(entry_key, None)
    entries[entry_key] = entry
    kept = dict(list(entries.items())[-MAX_ENTRIES:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(path, json.dumps(kept).encode(), durable=False)
    except (OSError, UserError):  # a cache is not worth a failed run
        pass


def _remembered(entry: dict | None) -> ThreadChoice | None:
    """Return the choice an earlier run measured (its cache entry), None when there is none."""
    try:
        chosen = entry["chosen"]
        measured = {int(n): float(ms) for n, ms in entry["measured"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # no entry, or a damaged one: measure again
    if not isinstance(chosen, int) or isinstance(chosen, bool) or chosen < 1:
        return None
    return ThreadChoice(chosen, "remembered", measured)
