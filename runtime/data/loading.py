"""Whether a data set is held in memory or streamed from disk: `training.loading` resolved."""

from __future__ import annotations

import os
from dataclasses import dataclass

from compiler.build import available_memory_bytes

# share of the memory this process may still allocate that `memory_budget: auto` gives the
# samples: the in-memory path copies them once more when it splits them, and the model, its
# gradients and the optimizer need the rest
AUTO_BUDGET_SHARE = 0.5
AUTO_WORKERS_MAX = 4


@dataclass(frozen=True)
class LoadingPolicy:
    """`training.loading` with `auto` resolved: the mode, the byte budget and the workers."""

    mode: str  # auto | memory | stream
    budget: int | None  # bytes the samples may take in memory; None: no limit known
    workers: int | str  # a count, or "auto" (decided by the kind of samples)

    def streams(self, nbytes: int) -> bool:
        """Return whether samples taking `nbytes` in memory are streamed from disk."""
        if self.mode != "auto":
            return self.mode == "stream"
        return self.budget is not None and nbytes > self.budget

    @property
    def forced(self) -> bool:
        """Return whether the spec asks for streaming whatever the size."""
        return self.mode == "stream"


def loading_policy(loading) -> LoadingPolicy:
    """Return the policy of a LoadingConfig (`training.loading`), its auto budget measured now."""
    budget = loading.memory_budget
    if budget == "auto":
        available = available_memory_bytes()
        budget = int(available * AUTO_BUDGET_SHARE) if available is not None else None
    return LoadingPolicy(loading.mode, budget, loading.workers)


def worker_count(workers: int | str, decodes: bool) -> int:
    """Return the DataLoader workers of a streamed split: the written count, or for `auto` up to
    4 (one CPU left to the training process) when samples are decoded (image files), and 0 for
    arrays, whose batch is one read that a worker would only copy once more."""
    if workers != "auto":
        return int(workers)
    if not decodes:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(0, min(AUTO_WORKERS_MAX, (cpus or os.cpu_count() or 1) - 1))


def describe_bytes(count: int) -> str:
    """Return `count` bytes in a short readable unit: "512.0 MiB", "2.5 GiB"."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"
