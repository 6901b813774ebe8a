"""Build the nn.Sequential form of a spec; the only compiler module that imports torch."""

from __future__ import annotations

import os

try:
    import resource  # POSIX only: ulimit -v
except ImportError:  # pragma: no cover - Windows
    resource = None
from collections import OrderedDict

import torch
from torch import nn

from . import modules
from .api import count_params, model_tree
from .costs import training_memory
from .errors import Problem, SpecError
from .formatting import format_bytes
from .tree import Branches, Leaf, Module, Repeat, Residual, Slot, children

BYTES_PER_PARAM = 4  # float32


def available_memory_bytes() -> int | None:
    """Return the memory this process may still allocate, or None when nothing says.

    The least of: MemAvailable; the cgroup's limit (memory.max, or v1's limit_in_bytes) less
    what the cgroup holds beyond its reclaimable file cache; and the address space `ulimit -v`
    (RLIMIT_AS) leaves beside what the process has mapped already.
    """
    candidates = []
    meminfo = _read_fields("/proc/meminfo")
    if "MemAvailable" in meminfo:
        candidates.append(meminfo["MemAvailable"] * 1024)
    for limit_file, usage_file, stat_file, cache_key in (
        (
            "/sys/fs/cgroup/memory.max",
            "/sys/fs/cgroup/memory.current",
            "/sys/fs/cgroup/memory.stat",
            "file",
        ),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
            "/sys/fs/cgroup/memory/memory.stat",
            "cache",
        ),
    ):
        limit = _read_int(limit_file)
        if limit is None:
            continue
        used = _read_int(usage_file) or 0
        cache = _read_fields(stat_file).get(cache_key, 0)
        candidates.append(max(limit - max(used - cache, 0), 0))
    address_space = _address_space_left()
    if address_space is not None:
        candidates.append(address_space)
    if not candidates and hasattr(os, "sysconf"):
        try:
            candidates.append(
                os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            )
        except (ValueError, OSError):
            pass
    return min(candidates) if candidates else None


def _read_int(path: str) -> int | None:
    """Return the integer a one-line file holds (None when absent, unreadable or `max`)."""
    try:
        with open(path) as file:
            text = file.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_fields(path: str) -> dict[str, int]:
    """Return the `name value` (or `Name: value kB`) lines of a file as {name: value}."""
    fields: dict[str, int] = {}
    try:
        with open(path) as file:
            for line in file:
                parts = line.replace(":", " ").split()
                if len(parts) >= 2 and parts[1].isdigit():
                    fields[parts[0]] = int(parts[1])
    except OSError:
        pass
    return fields


def _address_space_left() -> int | None:
    """Return the bytes `ulimit -v` (RLIMIT_AS) leaves this process to map, None if unlimited."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = _read_fields("/proc/self/status").get("VmSize", 0) * 1024
    return max(soft - mapped, 0)


def check_fits_in_memory(spec, params: int, *, training: bool = True) -> None:
    """Raise SpecError when the model would not fit in the memory this process may allocate.

    For training (the default): the parameters, their gradients, the optimizer's state, the
    buffers and the activations kept for backward for one batch of the spec's batch size
    (compiler.costs.training_memory, the estimate `nnspec summary` shows). Otherwise the float32
    parameters alone.
    """
    need = params * BYTES_PER_PARAM
    have = available_memory_bytes()
    if have is None:
        return
    if need > have:
        raise SpecError(
            [
                Problem(
                    "layers",
                    f"the model has {params:,} parameters ({format_bytes(need)} as float32), "
                    f"more than the {format_bytes(have)} of memory available; make it smaller",
                )
            ],
            spec.source,
        )
    if not training:
        return
    settings = spec.training_or_default
    parts = training_memory(model_tree(spec), settings)
    if parts["total"] > have:
        raise SpecError(
            [
                Problem(
                    "layers",
                    f"training needs about {format_bytes(parts['total'])} "
                    f"({format_bytes(parts['activations'])} of activations for a batch of "
                    f"{settings.batch_size:,}, {format_bytes(parts['parameters'])} of "
                    f"parameters ({params:,}), and their gradients and optimizer state), more "
                    f"than the {format_bytes(have)} of memory available; make the model or "
                    f"training.batch_size smaller",
                )
            ],
            spec.source,
        )


class WiredModule(nn.Module):
    """A module that is not a plain chain: its children, and the wiring that runs them.

    The program is a tuple of steps over child names: `("call", name)`, `("residual", layers,
    shortcut)` (the shortcut runs first, then the layers, then `x = x + identity`, as the generated
    code writes it) and `("branches", merge, dim, paths)` (paths in order, merged left to right).
    An empty program is the identity.
    """

    def __init__(self, children: "OrderedDict[str, nn.Module]", program: tuple) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)
        self.program = program

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.program, x)

    def _run(self, program: tuple, x: torch.Tensor) -> torch.Tensor:
        modules = self._modules
        for step in program:
            kind = step[0]
            if kind == "call":
                x = modules[step[1]](x)
            elif kind == "residual":
                identity = self._run(step[2], x)
                x = self._run(step[1], x)
                x = x + identity
            else:
                _, merge, dim, paths = step
                outputs = [self._run(path, x) for path in paths]
                if merge == "concat":
                    x = torch.cat(outputs, dim=dim)
                else:
                    x = outputs[0]
                    for other in outputs[1:]:
                        x = x + other if merge == "add" else x * other
        return x

    def extra_repr(self) -> str:
        return f"program={_describe_program(self.program)}"


def _describe_program(program: tuple) -> str:
    parts = []
    for step in program:
        if step[0] == "call":
            parts.append(step[1])
        elif step[0] == "residual":
            parts.append(
                f"residual({_describe_program(step[1])} + {_describe_program(step[2]) or 'x'})"
            )
        else:
            inner = ", ".join(_describe_program(p) or "x" for p in step[3])
            parts.append(f"{step[1]}({inner})")
    return " -> ".join(parts)


def build_module(spec) -> nn.Module:
    """Return the spec's model: an nn.Sequential where it is a chain, a WiredModule elsewhere.

    Children are named like the spec's layers and modules, built in the order the generated
    class builds them (a block's layer-list arguments before its own layers, as Python evaluates
    a call's arguments first), so one seed gives both forms the same weights.
    """

    check_fits_in_memory(spec, count_params(spec), training=False)
    return _build(model_tree(spec), {})


def build_sequential(spec) -> nn.Module:
    """Return the spec's model (`build_module`'s older name; an nn.Sequential for a chain)."""
    return build_module(spec)


def _build(module: Module, prebuilt: dict[int, nn.Module]) -> nn.Module:
    if module.kind == "block":
        for param in module.args:  # the caller builds layer-list arguments first
            slot = _slot_of(module, module.args[param])
            if (
                slot is not None
                and slot.module is not None
                and id(slot) not in prebuilt
            ):
                prebuilt[id(slot)] = _build(slot.module, prebuilt)
    built = OrderedDict()
    for child in children(module.body):
        built[child.name] = _build_child(child, prebuilt)
    if module.is_chain:
        return nn.Sequential(built)
    return WiredModule(built, _program(module.body))


def _build_child(child, prebuilt: dict[int, nn.Module]) -> nn.Module:
    if isinstance(child, Leaf):
        layer = child.layer
        if layer.build_class is not None:
            return getattr(modules, layer.build_class)(**child.kwargs)
        return getattr(nn, layer.torch_class)(**layer.constructor_kwargs(child.kwargs))
    if isinstance(child, Slot):
        if id(child) not in prebuilt:
            prebuilt[id(child)] = _build(child.module, prebuilt)
        return prebuilt[id(child)]
    if isinstance(child, Repeat):
        return nn.Sequential(*(_build_child(copy, prebuilt) for copy in child.copies))
    return _build(child, prebuilt)


def _slot_of(module: Module, bound) -> Slot | None:
    """Return the Slot that a block's layer-list argument fills, however deep it was passed on."""
    stack = list(module.body)
    while stack:
        op = stack.pop()
        if isinstance(op, Slot):
            if (
                op.module is not None
                and op.module.where == bound.where
                and op.module.body
                and bound.is_list
                and bound.value
            ):
                return op
        elif isinstance(op, Residual):
            stack.extend(op.layers + op.shortcut)
        elif isinstance(op, Branches):
            for path in op.paths:
                stack.extend(path)
        elif isinstance(op, Module) and op.kind == "block":
            stack.extend(op.body)
    return None


def _program(body: list) -> tuple:
    steps = []
    for op in body:
        if isinstance(op, Residual):
            steps.append(("residual", _program(op.layers), _program(op.shortcut)))
        elif isinstance(op, Branches):
            steps.append(
                ("branches", op.merge, op.dim, tuple(_program(p) for p in op.paths))
            )
        elif isinstance(op, Slot):
            if op.module is not None:
                steps.append(("call", op.name))
        else:
            steps.append(("call", op.name))
    return tuple(steps)


__all__ = [
    "WiredModule",
    "available_memory_bytes",
    "build_module",
    "build_sequential",
    "check_fits_in_memory",
    "torch",
]
