"""Denormal floats flushed to zero on the CPU: what keeps long CPU runs at their first epoch's
speed.

Adam's moving averages of a weight whose gradient is zero (a dead ReLU unit, a constant input
feature) decay by beta1 and beta2 at every step and, after some hundreds of steps, reach the
denormal range (below 1.2e-38 in float32), where x86 CPUs take a slow path for every operation
on them. Measured on this project's 2-core machine, a bare loop's epoch of the 60,000-sample MLP
went from 0.74 s (epoch 1) to 1.34 s (epoch 6) that way, and stayed at 0.83 s with them
flushed (docs/performance.md). Flushing (x86's FTZ and DAZ, ARM's FZ) changes a value only
where it is below 1.2e-38, where it becomes 0, which no weight update or loss can show; it is
what TensorFlow does on the CPU by default.

The mode belongs to each thread: torch's intra-op threads take it from the thread that starts
them, and threads already started keep their own. So `nnspec train` (and sweep, evaluate,
predict) set it first thing, before torch runs anything in parallel; `flushing()` says whether
every thread took it. A command run in-process (`runtime.cli.main.main([...])` from Python or a
test) gives the calling thread its mode back when it returns, so the caller's own float
arithmetic (hypothesis checks that it can represent subnormals) is as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

# elements in the probe: enough for torch to split an elementwise op over its threads
_PROBE = 1 << 17


def flush_denormals() -> bool:
    """Flush denormal floats to zero in this thread and every intra-op thread started after;
    return False where the CPU has no such mode (nothing changes then)."""
    return bool(torch.set_flush_denormal(True))


def flushing() -> bool:
    """Return whether every thread of torch's CPU work flushes denormals (a multiplication of
    denormals, split over the threads, gives only zeros)."""
    return _flushed(_PROBE)


def this_thread_flushes() -> bool:
    """Return whether the calling thread flushes denormals (a one-element op runs in it)."""
    return _flushed(1)


def _flushed(elements: int) -> bool:
    # the bits of int32 1 are float32's smallest denormal (made without float arithmetic,
    # which would flush it already)
    tiny = torch.ones(elements, dtype=torch.int32).view(torch.float32)
    return not bool(torch.count_nonzero(tiny * 1.0))


def with_denormals_flushed(command: Callable[..., T]) -> Callable[..., T]:
    """Return `command` run with denormals flushed (flush_denormals first), the calling
    thread's mode restored after it."""

    @functools.wraps(command)
    def flushed(*args, **kwargs) -> T:
        before = this_thread_flushes()
        flush_denormals()
        try:
            return command(*args, **kwargs)
        finally:
            if not before:
                torch.set_flush_denormal(False)

    return flushed
