"""Build the nn.Sequential form of a spec; the only compiler module that imports torch."""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn

from .errors import Problem, SpecError

BYTES_PER_PARAM = 4  # float32


def available_memory_bytes() -> int | None:
    """Return the memory this process may still allocate (cgroup limit or MemAvailable), or None."""
    candidates = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    candidates.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = open(path).read().strip()
        except OSError:
            continue
        if text.isdigit():
            candidates.append(int(text))
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            pass
    return min(candidates) if candidates else None


def check_fits_in_memory(spec, params: int) -> None:
    """Raise SpecError when `params` float32 parameters would not fit in the available memory."""
    need = params * BYTES_PER_PARAM
    have = available_memory_bytes()
    if have is not None and need > have:
        raise SpecError(
            [Problem("layers", f"the model has {params:,} parameters ({format_bytes(need)} as float32), "
                     f"more than the {format_bytes(have)} of memory available; make it smaller")],
            spec.source,
        )


def format_bytes(n: float) -> str:
    """Return a byte count as `1.5 GiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def build_sequential(spec) -> nn.Sequential:
    """Return the spec's model as nn.Sequential(OrderedDict(name -> torch.nn layer))."""
    from . import count_params, resolved_layers

    check_fits_in_memory(spec, count_params(spec))
    children = OrderedDict(
        (layer.name, getattr(nn, layer.torch_class)(**layer.kwargs)) for layer in resolved_layers(spec)
    )
    return nn.Sequential(children)


__all__ = ["available_memory_bytes", "build_sequential", "check_fits_in_memory", "format_bytes", "torch"]
