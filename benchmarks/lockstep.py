"""Loops in processes of their own, timed in lockstep: one epoch of each in turn.

Each child stops itself (SIGSTOP) at the end of every epoch, once it has noted the time; this
process lets one child go at a time (SIGCONT) and waits until it stops again. So the loops'
epochs alternate a few tens of milliseconds apart, and a slow moment of a shared machine falls on
epochs of every loop alike instead of on whichever loop ran in that minute: timed one process
after another, the same bare loop's median epoch moved by up to 1.2x from one process to the
next on this 2-core machine (benchmarks/results.md, runs E-G in docs/performance.md), more than
the 2% a target asks. Nothing of a stopped child runs while another's epoch is timed (all its
threads stop, a checkpoint writer's too), and the time it spends stopped is not in its epochs:
an epoch runs from the moment the child is let go to its next stop. Each child starts alone and
runs its start-up and first epoch before the next one starts, so a thread probe at start-up is
timed as it would be on its own.

A child takes part through EpochClock: `epoch_ended()` at the end of each epoch (it stops the
process only when NNSPEC_BENCH_LOCKSTEP=1, so the same child runs alone too). Where a platform
has no SIGSTOP (Windows), the children run one after another.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "NNSPEC_BENCH_LOCKSTEP"
SUPPORTED = hasattr(signal, "SIGSTOP")


class EpochClock:
    """A child's clock: the end of each epoch and the moment it was let go after it."""

    def __init__(self) -> None:
        self.lockstep = SUPPORTED and os.environ.get(ENV) == "1"
        self.ends: list[float] = []
        self.resumes: list[float] = []

    def epoch_ended(self) -> None:
        """Note the end of an epoch; in lockstep, stop this process until it is let go."""
        self.ends.append(time.perf_counter())
        if self.lockstep:
            os.kill(os.getpid(), signal.SIGSTOP)
        self.resumes.append(time.perf_counter())

    def epoch_times(self) -> list[float]:
        """Return the seconds of epochs 2, 3, ...: from the moment the child was let go after
        the epoch before to the end of the epoch (the first has no clocked start)."""
        return [end - start for start, end in zip(self.resumes, self.ends[1:])]


@dataclass
class Child:
    """One process to run in lockstep; its stdout and stderr go to the files named."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    stdout: Path
    stderr: Path


def run(children: list[Child], timeout: float = 1800) -> dict[str, int | None]:
    """Run `children` in lockstep (module docstring); return each one's exit code by name,
    None for those still running after `timeout` seconds in all (killed then)."""
    codes: dict[str, int | None] = {}
    running: dict[str, subprocess.Popen] = {}
    timed_out: list[bool] = []

    def kill_all() -> None:
        timed_out.append(True)
        for process in list(running.values()):
            process.kill()  # SIGKILL ends a stopped process too

    watchdog = threading.Timer(timeout, kill_all)
    watchdog.daemon = True
    watchdog.start()
    try:
        for child in children:
            if timed_out:  # not started
                codes[child.name] = None
                continue
            process = _start(child)
            running[child.name] = process
            if timed_out:  # the watchdog fired as it started
                process.kill()
            if not SUPPORTED:  # one after another
                codes[child.name] = process.wait()
                del running[child.name]
                continue
            code = _until_stopped(process)  # start-up and the first epoch, alone
            if code is not None:
                codes[child.name] = code
                del running[child.name]
        while running:  # round robin: an epoch of each in turn
            for name in list(running):
                process = running[name]
                os.kill(process.pid, signal.SIGCONT)
                code = _until_stopped(process)
                if code is not None:
                    codes[name] = code
                    del running[name]
    finally:
        watchdog.cancel()
        for process in running.values():  # after an error: none is left stopped
            process.kill()
            process.wait()
    if timed_out:
        codes = {name: code if code == 0 else None for name, code in codes.items()}
    return codes


def _start(child: Child) -> subprocess.Popen:
    with open(child.stdout, "wb") as out, open(child.stderr, "wb") as err:
        return subprocess.Popen(
            child.command,
            env={**child.env, ENV: "1"},
            cwd=child.cwd,
            stdout=out,
            stderr=err,
        )


def _until_stopped(process: subprocess.Popen) -> int | None:
    """Wait until `process` stops (None) or exits (its exit code)."""
    while True:
        _, status = os.waitpid(process.pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            return None
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            code = os.waitstatus_to_exitcode(status)
            process.returncode = code  # reaped here: Popen must not wait for it again
            return code
