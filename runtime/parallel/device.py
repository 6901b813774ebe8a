"""Which device training runs on, and the autocast that goes with it."""

from __future__ import annotations

import contextlib
import math
import os

import torch

from compiler import resolved_layers
from runtime.errors import UserError


def resolve_device(requested: str | None) -> torch.device:
    """Return the torch.device for `auto`, `cpu`, `mps`, `cuda` or `cuda:N`; raise UserError.

    `auto` (or None) picks cuda, then mps, then cpu.
    """
    name = (requested or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise UserError(
                "device 'mps' was asked for, but this machine has no usable MPS (Apple GPU); "
                "use --device cpu or auto"
            )
        return torch.device("mps")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError(
                f"device '{name}' was asked for, but torch sees no CUDA GPU here "
                "(no driver, or a CPU-only torch); use --device cpu or auto"
            )
        index = name.partition(":")[2]
        if index and not (index.isdigit() and int(index) < torch.cuda.device_count()):
            raise UserError(
                f"device '{name}' does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
        return torch.device(name)
    raise UserError(f"unknown device '{requested}'; use auto, cpu, mps, cuda or cuda:N")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def autocast_for(device: torch.device, amp: bool) -> contextlib.AbstractContextManager:
    """Return bf16 autocast on cuda when `amp` is on, else a context that does nothing."""
    if amp and device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(device: torch.device) -> str:
    """Return the device as people name it: `cpu (2 threads)`, `cuda:0 (NVIDIA H200)`."""
    if device.type == "cuda":
        index = (
            device.index if device.index is not None else torch.cuda.current_device()
        )
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return str(device)


SMALL_BATCH_MACS = 50_000_000  # below this many multiply-adds per batch, threads cost more than they give


def batch_macs(spec, batch_size: int) -> int:
    """Return the multiply-adds of one forward pass of a batch, counted over Linear and Conv layers."""

    total = 0
    for layer in resolved_layers(spec):
        shape = layer.output_shape
        if layer.torch_class == "Linear":
            positions = math.prod(shape[:-1])
        elif layer.torch_class.startswith("Conv"):
            positions = math.prod(shape[1:])
        else:
            continue
        total += layer.params * positions
    return total * batch_size


@contextlib.contextmanager
def cpu_threads_for(spec, batch_size: int, device: torch.device):
    """Run the block with one CPU thread when the model is small, then restore the thread count.

    For a small model each operation is too short to split: on 2 cores, 2 threads made an epoch of
    the digits CNN up to 7x slower when other processes were busy. OMP_NUM_THREADS or
    MKL_NUM_THREADS in the environment means the user chose, and then nothing changes.
    """
    chosen = any(
        os.environ.get(name) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
    )
    before = torch.get_num_threads()
    small = device.type == "cpu" and batch_macs(spec, batch_size) < SMALL_BATCH_MACS
    if small and not chosen and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
