"""Which device training runs on, and the autocast that goes with it."""

from __future__ import annotations

import contextlib
import platform

import torch

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


# what `training.amp` trains in where it applies (checkpoints record it as this text)
AUTOCAST_DTYPE = "bfloat16"


def cpu_has_bf16() -> bool:
    """Return whether this CPU computes bf16 in hardware: AVX512-BF16 or AMX on x86, the BF16
    extension on Arm (as oneDNN sees it). Elsewhere bf16 is emulated (on other AVX-512 CPUs
    too, which oneDNN counts as bf16-capable), several times slower than float32."""
    try:
        if platform.machine().lower() in ("aarch64", "arm64"):
            return bool(
                torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported()
            )
        return any(
            getattr(torch.cpu, name, lambda: False)()
            for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        )
    except (AttributeError, RuntimeError):  # a torch without these checks or oneDNN
        return False


def uses_autocast(
    device: torch.device, amp: bool, checkpoint: dict | None = None
) -> bool:
    """Return whether a model with `amp` on runs under bf16 autocast on `device`: on cuda,
    and on a CPU with bf16 instructions (cpu_has_bf16); not on mps or another CPU.

    `checkpoint`, the payload a run resumes from (or a model is evaluated from), decides
    instead, so a resume trains as its run began: its `autocast` entry, or, in a checkpoint
    from before that was recorded (when amp applied on cuda only), whether `device` is cuda.
    """
    if not amp:
        return False
    if checkpoint is not None:
        if "autocast" in checkpoint:
            return checkpoint["autocast"] == AUTOCAST_DTYPE
        return device.type == "cuda"
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())


def autocast_for(device: torch.device, on: bool) -> contextlib.AbstractContextManager:
    """Return bf16 autocast on `device` (cuda or cpu) when `on` (uses_autocast), else a
    context that does nothing."""
    if on and device.type in ("cuda", "cpu"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe_device(
    device: torch.device, threads=None, layout=None, autocast: bool = False
) -> str:
    """Return the device as people name it: `cpu (2 threads)`, `cuda:0 (NVIDIA H200)`; with a
    ThreadChoice, how the threads were chosen: `cpu (2 threads; measured: 36.1 ms/epoch at 2,
    41.3 at 1)`; with a LayoutChoice of a model with convolutions, the layout and why
    (`...; channels last (measured: 36.1 ms/epoch, 41.3 contiguous)`); `autocast`: training
    runs under bf16 autocast (`..., bf16 autocast`)."""
    described = _describe(device, threads, layout)
    return f"{described}, bf16 autocast" if autocast else described


def _describe(device: torch.device, threads, layout) -> str:
    layout_text = layout.describe() if layout is not None else ""
    if device.type == "cuda":
        index = (
            device.index if device.index is not None else torch.cuda.current_device()
        )
        name = f"cuda:{index} ({torch.cuda.get_device_name(index)})"
        return f"{name}, {layout_text}" if layout_text else name
    if device.type == "cpu":
        count = torch.get_num_threads()
        how = f"; {threads.describe()}" if threads is not None else ""
        how += f"; {layout_text}" if layout_text else ""
        return f"cpu ({count} thread{'s' if count != 1 else ''}{how})"
    return f"{device}, {layout_text}" if layout_text else str(device)
