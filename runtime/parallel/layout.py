"""Whether a model with 2-d convolutions trains with its weights in channels-last memory layout.

Channels last (`model.to(memory_format=torch.channels_last)`: a [O, I, kH, kW] weight stored as
O x kH x kW x I) lets oneDNN run the convolutions of a CPU training step without reordering its
tensors: a training step of a CIFAR-sized CNN (three conv 3x3 + batch norm + max-pool blocks, batch
128) took 56-63 ms in torch's default layout and 36-40 ms in channels last on 2 cores. Only the
layout changes, never a value's meaning: the same `state_dict` keys and shapes, checkpoints
written in the default layout (runtime/training/run_writer.py), inputs as they are (the first
convolution's output follows its weight). The arithmetic is done in another order, so the last
bits of results differ from the default layout's (and dropout over a channels-last tensor draws
its mask in memory order, so one seed drops other units), and a spec may be slower in it (small
or grouped convolutions): so with `training.channels_last: auto` (the default) it is timed, not
assumed.

`auto` on the CPU, for a model with a Conv2d or ConvTranspose2d: the epoch of the run's own
model and optimizer is estimated in both layouts on copies (threads.time_epochs: a training step
on the first batch and a validation pass over the first validation samples, timed alternately;
the run's weights and random generators are left as they were), at each thread count the run may
train on (one thread and torch's count when `threads: auto`), and channels last is kept only
when its faster epoch is at least `FASTER_BY` faster than the default layout's, so a tie keeps
torch's default. The thread choice then takes the counts' epochs in the chosen layout instead of
timing them again. As with the thread count (runtime/parallel/threads.py), the choice is
remembered per spec and machine in the cache folder (layout.json) and a resumed run takes its
checkpoint's; a choice timed while the machine was busy (threads.BUSY_WAIT) is used for its run
but not remembered. Nothing is timed for a model without such
a convolution, off the CPU (`auto` keeps the default layout there; `true` applies it on any
device), under `--nproc` (every process must use the same layout; `true` applies it to all), or
when the spec says `true` or `false`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from runtime.parallel.threads import (
    TIMING_ERRORS,
    Estimates,
    cache_key,
    faster_count,
    is_busy,
    remember_entry,
    remembered_entry,
    remembered_wait,
    time_epochs,
    usable_threads,
    waited_for_cpu,
)

FASTER_BY = 0.05  # channels last is kept only when an epoch is at least 5% faster in it
CACHE_FILE = "layout.json"
CHOICE_RULE = 3  # in the cache key: choices made by an earlier rule are made again
LAYOUTS = ("contiguous", "channels_last")
_CONVOLUTIONS = (nn.Conv2d, nn.ConvTranspose2d)


@dataclass(frozen=True)
class LayoutChoice:
    """Whether a run trains in channels last, and why: measured, remembered, resumed, setting,
    or not applicable (`no conv2d`: the model has no 2-d convolution; `device`: auto off the CPU;
    `distributed`: auto under --nproc)."""

    channels_last: bool
    by: str
    measured: dict[str, float] = field(default_factory=dict)  # ms per epoch, by layout
    # ms per epoch of the chosen layout by thread count, when measured: what the thread
    # choice then takes instead of timing again (not remembered, not compared)
    timed: dict[int, float] = field(default_factory=dict, compare=False)
    # the share of the timed rounds its threads waited for a CPU (threads.Estimates), if read
    waited: float | None = None

    @property
    def applies(self) -> bool:
        """Return whether the model has a 2-d convolution (the choice means something)."""
        return self.by != "no conv2d"

    def summary(self) -> dict[str, Any]:
        """Return what summary.json records: {"chosen": true, "by": ..., "measured": {...}}."""
        summary = {
            "chosen": self.channels_last,
            "by": self.by,
            "measured": {name: round(ms, 3) for name, ms in self.measured.items()},
        }
        if self.waited is not None:
            summary["waited_for_cpu"] = round(self.waited, 4)
        return summary

    def describe(self) -> str:
        """Return how the report names the choice: `channels last: measured 36.1 ms/epoch,
        41.3 contiguous`, `contiguous: set by training.channels_last`; "" without a conv.
        """
        if not self.applies:
            return ""
        mine, other = LAYOUTS[self.channels_last], LAYOUTS[not self.channels_last]
        name = mine.replace("_", " ")
        if self.measured:
            busy = self.by == "measured" and is_busy(self.waited)
            return (
                f"{name}: {self.by} {self.measured[mine]:.1f} ms/epoch, "
                f"{self.measured[other]:.1f} {other.replace('_', ' ')}"
            ) + (" (the machine busy: timed again next run)" if busy else "")
        how = {
            "setting": "set by training.channels_last",
            "resumed": "as the checkpoint resumed",
            "device": "channels last is timed on the CPU only",
            "distributed": "channels last is timed in one process only",
            "untimed": "a training step or validation pass failed when timed",
        }[self.by]
        return f"{name}: {how}"


def has_convolution(model: nn.Module) -> bool:
    """Return whether `model` holds a Conv2d or ConvTranspose2d (what channels last speeds up)."""
    return any(isinstance(module, _CONVOLUTIONS) for module in model.modules())


def choose_layout(
    model: nn.Module,
    data,
    training,
    device: torch.device,
    *,
    key: str,
    resumed: Any = None,
    distributed: bool = False,
    counts: tuple[int, ...] | None = None,
) -> LayoutChoice:
    """Return whether to train `model` in channels last (module docstring); `key` names the
    spec for the cache, `resumed` is what a resumed checkpoint recorded (or None), `counts`
    the thread counts the run may train on (threads.counts_to_time; default: torch's count),
    each layout timed at each."""
    if not has_convolution(model):
        return LayoutChoice(False, "no conv2d")
    setting = training.channels_last
    if isinstance(setting, bool):
        return LayoutChoice(setting, "setting")
    if isinstance(resumed, bool):
        return LayoutChoice(resumed, "resumed")  # the same layout resumes bit for bit
    if device.type != "cpu":
        return LayoutChoice(False, "device")
    if distributed:
        return LayoutChoice(False, "distributed")
    usable = usable_threads()  # torch's count, or the CPU quota's
    counts = counts or (usable,)
    # the counts timed are part of the choice: one made at a pinned count is not reused by a
    # run that may choose its count
    entry_key = cache_key(key, usable, f"layout {CHOICE_RULE} {list(counts)}")
    entry = remembered_entry(CACHE_FILE, entry_key)
    if entry is not None:
        remembered = _from_entry(entry)
        if remembered is not None:
            return remembered
    try:
        timed = time_layouts(model, data, training, counts)
    except TIMING_ERRORS:
        # a model whose output does not fit its data: fit's check says so in one line
        return LayoutChoice(False, "untimed")
    waited = waited_for_cpu(timed)
    # each layout at the count the thread rule would train it on (not merely its fastest)
    by_layout = {
        layout: Estimates(
            {n: ms for (n, cl), ms in timed.items() if cl == layout}, waited
        )
        for layout in (False, True)
    }
    trains_at = {
        layout: faster_count(epochs, counts[-1]) for layout, epochs in by_layout.items()
    }
    measured = {
        name: by_layout[layout][trains_at[layout]]
        for layout, name in zip((False, True), LAYOUTS)
    }
    faster = measured["channels_last"] <= measured["contiguous"] * (1 - FASTER_BY)
    choice = LayoutChoice(
        faster, "measured", measured, timed=by_layout[faster], waited=waited
    )
    if not is_busy(waited):  # timed while other programs ran: timed again next run
        remember_entry(CACHE_FILE, entry_key, choice.summary())
    return choice


def apply_layout(model: nn.Module, choice: LayoutChoice) -> nn.Module:
    """Put `model`'s 4-d weights in channels last when `choice` says so; return `model`."""
    if choice.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def time_layouts(
    model: nn.Module, data, training, counts: tuple[int, ...]
) -> dict[tuple[int, bool], float]:
    """Return the estimated ms of an epoch (threads.time_epochs) of a copy of `model` in each
    layout at each thread count of `counts` (torch's own last), keyed (count, channels_last).
    """
    settings = [(n, layout) for n in reversed(counts) for layout in (False, True)]
    return time_epochs(model, data, training, settings)


def _from_entry(entry: dict) -> LayoutChoice | None:
    """Return the remembered choice of a cache entry, None when it is damaged."""
    try:
        chosen = entry["chosen"]
        measured = {str(k): float(v) for k, v in entry["measured"].items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if not isinstance(chosen, bool) or set(measured) != set(LAYOUTS):
        return None
    return LayoutChoice(chosen, "remembered", measured, waited=remembered_wait(entry))
