"""How many CPU threads `nnspec train` trains on: timed, not guessed from the model's size.

With `training.threads: auto` (the default) on the CPU, the run's own model and optimizer are
timed at one thread and at torch's count on a copy (the run's weights and random generators are
left as they were), and the count with the faster epoch is kept. An epoch is estimated, not run:
the median training step on the first batch times the epoch's steps, plus the median validation
pass over the first 256 validation samples times the passes the split takes (validation's large
batches split over threads better than training's small ones: make bench measured the digits CNN
1.16x slower per epoch at one thread when its steps alone timed 5.39 and 5.25 ms). One thread
must win by `FASTER_BY` to be chosen over torch's count, so a count near the tie does not flip
from run to run. The timing is bounded: a warm-up of each count, then rounds of steps and then
rounds of validation passes, the counts alternated, for `MEASURE_SECONDS` in all (at least
MIN_ROUNDS, fewer once one has taken LONG_PHASE_SECONDS, at most MAX_ROUNDS of each); when one
step at torch's count takes longer than `LONG_STEP_SECONDS`, that count is kept untimed at one
thread (a step that long is work threads pay for). A probe timed while other programs held the
cores (each of its threads waited for a CPU more than BUSY_WAIT of its timed rounds, on average:
the kernel's run-queue delay of each thread, /proc/self/task/*/schedstat) is used for its run
but not remembered: the next run times again. Beside one busy loop on 2 cores the digits MLP's
epoch timed 2.8x faster at one thread than at two (56 and 159 ms; the digits CNN 64 and 167),
which is the right choice while the loop runs and a 15% loss once it has stopped. For a model
with convolutions the layout is timed at both counts too (runtime/parallel/layout.py:
`time_epochs` times every (threads, layout) pair in one alternation), and the count is the one
`faster_count` picks in the chosen layout.

The thread count changes the last bits of CPU results (reductions split differently), so the
choice is made once per spec and machine and remembered in the user's cache folder (threads.json):
the same spec on the same machine trains the same way every time. A resumed run takes the count
its checkpoint recorded. Nothing is timed when the user chose (`training.threads: N`,
`OMP_NUM_THREADS` or `MKL_NUM_THREADS`; the processes of `--nproc` run with OMP_NUM_THREADS=1), off
the CPU, or where torch has one thread. Under a cgroup CPU quota (a container's `--cpus`) the
counts timed stop at the quota's whole CPUs (usable_threads); under two CPUs, one thread.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
from torch import nn

from runtime.data.stored import take
from runtime.errors import UserError
from runtime.parallel.device import autocast_for, uses_autocast
from runtime.storage.atomic import write_bytes_atomically
from runtime.storage.codegen_cache import cache_folder
from runtime.training.batches import batch_starts
from runtime.training.metrics import TaskMetrics
from runtime.training.optim import build_optimizer
from runtime.training.stepper import OptimizerStep

# the timed rounds take about this long, half steps and half validation passes
MEASURE_SECONDS = 0.3
# timed rounds of each (steps, then validation passes), fewer past LONG_PHASE_SECONDS
MIN_ROUNDS, MAX_ROUNDS = 3, 15
# one alternation stops after a round once it has taken this long (steps near
# LONG_STEP_SECONDS at four settings)
LONG_PHASE_SECONDS = 2.0
LONG_STEP_SECONDS = 1.0  # a step this long at torch's count is not timed at one thread
# a step this short is timed after an untimed one at its setting
SHORT_STEP_SECONDS = 0.02
# validation is timed on this many rows (or a batch, if larger) of the first chunk; passes
# this large split over threads as a chunk does, at a fraction of its cost
VALIDATION_ROWS = 256
# one thread is kept only when an epoch is at least 10% faster on it: on a shared machine a
# busy moment slows two threads more than one, and the choice is remembered
FASTER_BY = 0.10
# a probe whose threads waited for a CPU longer than this share of its timed rounds (each of
# the most threads it timed, on average; 0.0004-0.006 on a quiet 2-core machine, 0.26-0.42
# beside one busy loop, 0.08-0.24 there under OMP_WAIT_POLICY=passive) was timed while other
# programs ran: its choice is used, not remembered
BUSY_WAIT = 0.05
CACHE_FILE = "threads.json"
CHOICE_RULE = 4  # in the cache key: choices made by an earlier rule are made again
MAX_ENTRIES = 500  # the oldest go first
_USER_CHOICE = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
STEP, VALIDATION = 0, 1  # what time_epochs times
# what a probe that fails raises: the run's own checks then say what is wrong
TIMING_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, OSError, UserError)


@dataclass(frozen=True)
class ThreadChoice:
    """How many CPU threads a run trains on, and why: measured, remembered (measured by an
    earlier run of the spec), resumed (the checkpoint's), setting, environment, or the count
    torch has (`device`: not the CPU; `single`: torch has one thread; `quota`: the cgroup's CPU
    quota leaves one)."""

    chosen: int
    by: str
    measured: dict[int, float] = field(default_factory=dict)  # ms per epoch, by count
    # the share of the timed rounds its threads waited for a CPU (Estimates.waited), if read
    waited: float | None = None

    def summary(self) -> dict[str, Any]:
        """Return what summary.json records: {"chosen": 2, "by": ..., "measured": {"1": ms}},
        with "waited_for_cpu" when the probe read it."""
        summary = {
            "chosen": self.chosen,
            "by": self.by,
            "measured": {str(n): round(ms, 3) for n, ms in self.measured.items()},
        }
        if self.waited is not None:
            summary["waited_for_cpu"] = round(self.waited, 4)
        return summary

    def describe(self) -> str:
        """Return how the report names the choice, e.g. `measured: 36.1 ms/epoch at 2, 41.3
        at 1`, or `set by OMP_NUM_THREADS`."""
        if self.measured:
            times = sorted(
                self.measured.items(), key=lambda item: item[0] != self.chosen
            )
            shown = ", ".join(
                f"{ms:.1f} ms/epoch at {n}" if i == 0 else f"{ms:.1f} at {n}"
                for i, (n, ms) in enumerate(times)
            )
            if self.by == "measured" and is_busy(self.waited):
                return (
                    f"measured while the machine was busy (each of its threads waited for a "
                    f"CPU {self.waited:.0%} of the time; timed again next run): {shown}"
                )
            return f"{self.by}: {shown}"
        return {
            "setting": "set by training.threads",
            "environment": "set by OMP_NUM_THREADS/MKL_NUM_THREADS",
            "resumed": "as the checkpoint resumed",
            "untimed": "torch's count: a training step or validation pass failed when timed",
            "quota": "the CPU quota allows one",
        }.get(self.by, self.by)


def decided_threads(
    training, device: torch.device, resumed: Any = None
) -> ThreadChoice | None:
    """Return the thread count that is not timed (the device, the spec's setting, the
    environment, a resumed checkpoint, a torch of one thread or a CPU quota of under two CPUs
    decide it), None when choose_threads times it."""
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
    if usable_threads() <= 1:
        return ThreadChoice(1, "quota")
    return None


def usable_threads() -> int:
    """Return the most threads a probe times: torch's count, or fewer when the cgroup's CPU
    quota (a container's `--cpus`, systemd's CPUQuota) allows fewer whole CPUs. Threads past
    the quota are throttled in pauses a probe's median step does not see (under a 1-CPU quota
    two threads timed 43 ms/epoch and one 48, each thread waiting 43-54% of the time).
    """
    quota = cpu_quota()
    default = torch.get_num_threads()
    return default if quota is None else max(1, min(default, math.floor(quota)))


def cpu_quota(
    root: str = "/sys/fs/cgroup", cgroups: str = "/proc/self/cgroup"
) -> float | None:
    """Return the CPUs a second this process's cgroup may use, the least along its cgroup
    path (v2's cpu.max, v1's cpu.cfs_quota_us / cpu.cfs_period_us), None when unlimited or
    unknown. A path that is not under `root` (a container without its own cgroup namespace)
    leaves the files at `root`, the container's own."""
    try:
        with open(cgroups, errors="surrogateescape") as file:
            lines = file.read().splitlines()
    except (OSError, ValueError):
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2: one hierarchy
            folders = [root]
            reader = _v2_quota
        elif "cpu" in controllers.split(","):
            folders = [f"{root}/{name}" for name in (controllers, "cpu", "cpu,cpuacct")]
            reader = _v1_quota
        else:
            continue
        for folder in dict.fromkeys(folders):
            for level in _levels(path):
                quota = reader(f"{folder}{level}")
                if quota is not None:
                    quotas.append(quota)
    return min(quotas) if quotas else None


def _levels(path: str) -> list[str]:
    """Return a cgroup path and each folder above it: "/a/b" -> ["/a/b", "/a", ""]."""
    parts = [part for part in path.split("/") if part]
    return ["/" + "/".join(parts[:n]) if n else "" for n in range(len(parts), -1, -1)]


def _v2_quota(folder: str) -> float | None:
    try:
        with open(f"{folder}/cpu.max") as file:
            quota, period = file.read(64).split()[:2]
        return int(quota) / int(period) if quota != "max" and int(period) > 0 else None
    except (OSError, ValueError):
        return None


def _v1_quota(folder: str) -> float | None:
    try:
        with open(f"{folder}/cpu.cfs_quota_us") as file:
            quota = int(file.read(64))
        with open(f"{folder}/cpu.cfs_period_us") as file:
            period = int(file.read(64))
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def counts_to_time(
    training, device: torch.device, resumed: Any = None
) -> tuple[int, ...]:
    """Return the thread counts a run may train on: (1, torch's count, or the CPU quota's
    whole CPUs: usable_threads) when choose_threads times them, else the one count decided
    (what the layout is timed at)."""
    decided = decided_threads(training, device, resumed)
    return (decided.chosen,) if decided is not None else (1, usable_threads())


def choose_threads(
    model: nn.Module,
    data,
    training,
    device: torch.device,
    *,
    key: str,
    resumed: Any = None,
    channels_last: bool = False,
    timed: dict[int, float] | None = None,
) -> ThreadChoice:
    """Return the CPU threads to train `model` on (module docstring); `key` names the spec
    for the cache, `resumed` is the count a resumed checkpoint recorded (or None),
    `channels_last` the layout it trains in, `timed` the epochs already timed at each count
    in that layout (by choose_layout), used instead of timing them again."""
    decided = decided_threads(training, device, resumed)
    if decided is not None:
        return decided
    default = usable_threads()  # torch's count, or the CPU quota's
    entry_key = cache_key(key, default, str(CHOICE_RULE))
    remembered = _remembered(remembered_entry(CACHE_FILE, entry_key))
    if remembered is not None:
        return remembered
    if timed and default in timed:
        measured = timed
    else:
        try:
            measured = time_counts(model, data, training, (1, default), channels_last)
        except TIMING_ERRORS:
            # a model whose output does not fit its data: fit's check says so in one line
            return ThreadChoice(default, "untimed")
    waited = waited_for_cpu(measured)
    choice = ThreadChoice(
        faster_count(measured, default), "measured", dict(measured), waited
    )
    if not is_busy(waited):  # timed while other programs ran: timed again next run
        remember_entry(CACHE_FILE, entry_key, choice.summary())
    return choice


def faster_count(measured: dict[int, float], default: int) -> int:
    """Return the count to train on from estimated epochs by count: one thread when it is
    FASTER_BY faster than torch's `default` count, else `default`."""
    if 1 in measured and default in measured:
        if measured[1] <= measured[default] * (1 - FASTER_BY):
            return 1
    return default


class Estimates(dict):
    """Estimated ms per epoch by setting (time_epochs), with `waited`: the share of the timed
    rounds each thread waited for a CPU, on average (the process's run-queue wait over wall
    seconds x the most threads timed; None where the kernel does not say: not Linux, or no
    schedstat)."""

    def __init__(self, values=(), waited: float | None = None):
        super().__init__(values)
        self.waited = waited


def waited_for_cpu(estimates: dict) -> float | None:
    """Return the share of its timed rounds the probe of `estimates` waited for a CPU."""
    return getattr(estimates, "waited", None)


def is_busy(waited: float | None) -> bool:
    """Return whether a probe that waited `waited` of its time for a CPU was timed while
    other programs ran (over BUSY_WAIT; a wait the kernel did not say is not busy)."""
    return waited is not None and waited > BUSY_WAIT


def run_queue_delays() -> dict[str, int] | None:
    """Return the nanoseconds each thread of this process has spent runnable but waiting for
    a CPU, by thread id (the second field of Linux's /proc/self/task/*/schedstat), None where
    the kernel does not say. A thread that ends between the listing and its read is left out.
    """
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    delays = {}
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/schedstat", "rb") as file:
                delays[task] = int(file.read().split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return delays or None


def waited_between(before: dict[str, int], after: dict[str, int]) -> float:
    """Return the seconds the threads waited for a CPU between two run_queue_delays readings:
    a thread that ended in between is left out (its wait before is not taken off the sum),
    one that started counts whole."""
    return sum(ns - before.get(task, 0) for task, ns in after.items()) / 1e9


def time_counts(
    model: nn.Module,
    data,
    training,
    counts: tuple[int, ...],
    channels_last: bool = False,
) -> Estimates:
    """Return the estimated ms of an epoch of `model` (time_epochs) at each thread count in
    `counts` (torch's own last), in the layout `channels_last` says."""
    timed = time_epochs(
        model, data, training, [(n, channels_last) for n in reversed(counts)]
    )
    return Estimates({n: ms for (n, _), ms in timed.items()}, waited_for_cpu(timed))


def time_epochs(
    model: nn.Module, data, training, settings: list[tuple[int, bool]]
) -> Estimates:
    """Return the estimated ms of one epoch of `model` at each (threads, channels_last) of
    `settings`: the median training step (forward, loss, backward, optimizer step) on the
    first batch times the epoch's steps, plus the median validation pass (eval mode, no
    gradients) over the first VALIDATION_ROWS validation samples (a batch, if larger) times
    the passes the split takes at that size.

    Timed on a copy of the model and optimizer in each layout, the settings alternated round
    by round (a change of the machine's load hits all), steps first, then validation passes,
    each after a warm-up of every setting; the first setting is torch's count. When one step
    at it takes longer than LONG_STEP_SECONDS, only the settings at its thread count are
    timed, once each (a step that long is work threads pay for), and the estimate is of the
    steps alone. The estimates' `waited` is the share of the timed rounds (warm-ups left
    out) each thread spent waiting for a CPU, on average over the most threads timed.
    """
    task = TaskMetrics(training.task)
    # timed as the run trains: under bf16 autocast when training.amp applies on this CPU
    cpu = torch.device("cpu")
    autocast = autocast_for(cpu, uses_autocast(cpu, training.amp))
    x, y = first_batch(data, training, task)
    n_val = len(data.x_val)
    # a part of the first validation chunk, the passes over it scaled to the whole split
    rows = range(min(n_val, max(training.batch_size, VALIDATION_ROWS)))
    xv, yv = first_chunk(data, rows, task) if n_val else (None, None)
    passes = n_val / len(rows) if n_val else 0.0
    steps = len(batch_starts(len(data.x_train), training.batch_size))
    probes = {}
    for layout in dict.fromkeys(cl for _, cl in settings):
        probe = copy.deepcopy(model).cpu()
        if layout:
            probe.to(memory_format=torch.channels_last)
        # stepped as training steps it (the fused kernel called directly)
        probes[layout] = (
            probe,
            OptimizerStep(build_optimizer(probe, training.optimizer)),
        )
    before = torch.get_num_threads()
    samples: dict[tuple[int, bool], tuple[list[float], list[float]]] = {
        setting: ([], []) for setting in settings
    }  # [STEP], [VALIDATION] seconds
    # run-queue seconds of the process's threads, and wall seconds x the most threads timed,
    # of the timed rounds
    queued = [0.0, 0.0]
    threads_timed = max(n for n, _ in settings)

    @contextlib.contextmanager
    def counted() -> Iterator[None]:
        """Add the block's run-queue wait and wall seconds x threads to `queued`."""
        before, started = run_queue_delays(), time.perf_counter()
        yield
        after = run_queue_delays()
        if before is not None and after is not None:
            queued[0] += waited_between(before, after)
            queued[1] += (time.perf_counter() - started) * threads_timed

    def once(setting, kind: int, keep: bool = True) -> float:
        count, layout = setting
        torch.set_num_threads(count)
        probe, steps = probes[layout]
        if kind == STEP:
            seconds = step_seconds(probe, steps, task, x, y, autocast)
        else:
            seconds = validation_seconds(probe, task, xv, yv, autocast)
        if keep:
            samples[setting][kind].append(seconds)
        return seconds

    def alternate(kind: int, chosen: list) -> None:
        """Time `kind` at each setting of `chosen` in turn, after a warm-up of each: steps
        apart from validation passes, as an epoch runs them (a pass between two steps
        leaves their caches and allocations cold)."""
        last = {setting: once(setting, kind, keep=False) for setting in chosen}
        started = time.perf_counter()
        with counted():
            while True:
                for setting in chosen:
                    if kind == STEP and last[setting] < SHORT_STEP_SECONDS:
                        # a short step right after another setting's pays for the switch
                        # (the other threads woken, caches refilled), which an epoch pays
                        # once
                        once(setting, kind, keep=False)
                    last[setting] = once(setting, kind)
                rounds = min(len(samples[s][kind]) for s in chosen)
                spent = time.perf_counter() - started
                if (
                    rounds >= MAX_ROUNDS
                    or (rounds >= MIN_ROUNDS and spent >= MEASURE_SECONDS / 2)
                    or spent >= LONG_PHASE_SECONDS
                ):
                    return

    # dropout draws from torch's generator: forked, so the run draws what it would have
    with torch.random.fork_rng(devices=[]):
        try:
            # a warm-up step (allocations, kernels picked, one-time set-up), then one timed
            once(settings[0], STEP, keep=False)
            with counted():
                first = once(settings[0], STEP)
            if first > LONG_STEP_SECONDS:
                # a step that long: its own thread count only, one step each, no validation
                settings = [s for s in settings if s[0] == settings[0][0]]
                for setting in settings[1:]:
                    once(setting, STEP, keep=False)
                    with counted():
                        once(setting, STEP)
            else:
                alternate(STEP, settings)
                if xv is not None:
                    alternate(VALIDATION, settings)
        finally:
            torch.set_num_threads(before)
    return Estimates(
        {
            setting: 1000
            * (
                steps * median(samples[setting][STEP])
                + passes * median(samples[setting][VALIDATION] or [0.0])
            )
            for setting in settings
        },
        waited=queued[0] / queued[1] if queued[1] > 0 else None,
    )


def first_batch(data, training, task: TaskMetrics):
    """Return (x, y) of the first training batch of `data`, the batch a probe times (read
    from disk when the data set is streamed; y is x for reconstruction)."""
    rows = range(min(training.batch_size, len(data.x_train)))
    x = take(data.x_train, rows)
    return x, x if task.reconstructs else take(data.y_train, rows)


def step_seconds(
    model, steps: OptimizerStep, task: TaskMetrics, x, y, autocast=None
) -> float:
    """Return the wall seconds of one training step of `model` on (x, y), its forward and
    loss in `autocast` (a context; None: none)."""
    started = time.perf_counter()
    model.train()
    with autocast or contextlib.nullcontext():
        loss = task.loss(model(x), y)
    steps.zero_grad()
    loss.backward()
    steps.step()
    return time.perf_counter() - started


def first_chunk(data, rows: range, task: TaskMetrics):
    """Return (x, y) of the validation rows `rows` of `data` (y is x for reconstruction)."""
    x = take(data.x_val, rows)
    return x, x if task.reconstructs else take(data.y_val, rows)


def validation_seconds(model, task: TaskMetrics, x, y, autocast=None) -> float:
    """Return the wall seconds of one validation pass of `model` over (x, y): eval mode, no
    gradients, the loss taken, in `autocast` (a context; None: none)."""
    started = time.perf_counter()
    model.eval()
    with torch.inference_mode(), autocast or contextlib.nullcontext():
        task.loss(model(x), y)
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
    return ThreadChoice(chosen, "remembered", measured, remembered_wait(entry))


def remembered_wait(entry: dict) -> float | None:
    """Return the run-queue wait a cache entry recorded with its choice (None: none, or
    damaged; an entry written before the wait was read has none)."""
    waited = entry.get("waited_for_cpu")
    if not isinstance(waited, (int, float)) or isinstance(waited, bool):
        return None
    return float(waited)
