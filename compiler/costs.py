"""What a resolved model costs, statically: MACs, state_dict entries, activation and training memory.

Walks the model tree (compiler/tree.py) with the per-type rules of compiler/compute.py. Nothing
here imports torch: `nnspec summary` and `nnspec diff` read these numbers in a pre-commit hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Union

from .compute import (
    FLOAT_BYTES,
    Keeps,
    LayerCost,
    Site,
    TensorEntry,
    cost_of,
    dropout_keeps,
)
from .tree import Branches, Leaf, Module, Repeat, Residual, Slot, children

Node = Union[Leaf, Module, Repeat]


def site(leaf: Leaf) -> Site:
    """Return the Site of a resolved leaf (its torch arguments and one sample's shapes)."""
    return Site(
        leaf.kwargs, tuple(leaf.info.input_shape), tuple(leaf.info.output_shape)
    )


def leaf_macs(leaf: Leaf) -> int:
    """Return the MACs of one layer for one sample."""
    return cost_of(leaf.layer.type_name).macs(site(leaf))


def leaf_tensors(leaf: Leaf) -> list[TensorEntry]:
    """Return a layer's state_dict entries (names relative to the layer)."""
    return cost_of(leaf.layer.type_name).tensors(site(leaf))


def walk(body: list, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Yield (qualified name, node) for every child module and layer, depth first, in the order
    they register: the names are the state_dict prefixes (`layer1.0.conv1`)."""
    for child in children(body):
        name = f"{prefix}{child.name}"
        if isinstance(child, Slot):
            yield name, child.module
            yield from walk(child.module.body, f"{name}.")
        elif isinstance(child, Repeat):
            yield name, child
            for index, copy in enumerate(child.copies):
                yield f"{name}.{index}", copy
                if isinstance(copy, Module):
                    yield from walk(copy.body, f"{name}.{index}.")
        elif isinstance(child, Module):
            yield name, child
            yield from walk(child.body, f"{name}.")
        else:
            yield name, child


def node_macs(node: Any) -> int:
    """Return the MACs of a layer, module, repeat or wiring for one sample."""
    if isinstance(node, Leaf):
        return leaf_macs(node)
    if isinstance(node, Repeat):
        return sum(node_macs(copy) for copy in node.copies)
    if isinstance(node, Slot):
        return node_macs(node.module) if node.module is not None else 0
    if isinstance(node, Residual):
        return sum(map(node_macs, node.layers)) + sum(map(node_macs, node.shortcut))
    if isinstance(node, Branches):
        return sum(node_macs(op) for path in node.paths for op in path)
    return sum(map(node_macs, node.body))


def state_entries(tree: Module) -> dict[str, TensorEntry]:
    """Return the model's state_dict as {key: entry} (shape, parameter or buffer), without torch."""
    out: dict[str, TensorEntry] = {}
    for name, node in walk(tree.body):
        if isinstance(node, Leaf):
            for entry in leaf_tensors(node):
                out[f"{name}.{entry.name}"] = entry
    return out


# -- memory ---------------------------------------------------------------------------------------


@dataclass
class _Tensor:
    """A tensor of the forward pass: its bytes per sample, and whether it requires grad."""

    bytes: int
    requires_grad: bool
    number: int = 0  # tells tensors apart (ids of Python objects are reused)


class _Saved:
    """Walks the forward pass and collects what autograd keeps, per sample and per batch."""

    def __init__(self, dropout_mask_bytes: int | None) -> None:
        self.kept: dict[int, int] = (
            {}
        )  # number of a forward tensor -> its bytes per sample
        self.per_sample = 0
        self.per_batch = 0
        self.produced = 0  # every distinct forward tensor, per sample
        self.mask_bytes = dropout_mask_bytes
        self.numbers: list[_Tensor] = []

    def ops(self, ops: list, x: _Tensor) -> _Tensor:
        for op in ops:
            x = self.op(op, x)
        return x

    def op(self, op: Any, x: _Tensor) -> _Tensor:
        if isinstance(op, Leaf):
            return self.leaf(op, x)
        if isinstance(op, Repeat):
            for copy in op.copies:
                x = self.op(copy, x)
            return x
        if isinstance(op, Slot):
            return self.ops(op.module.body, x) if op.module is not None else x
        if isinstance(op, Module):
            return self.ops(op.body, x)
        if isinstance(op, Residual):
            short = self.ops(op.shortcut, x)
            main = self.ops(op.layers, x)
            return self.new(
                op.info.output_shape, main.requires_grad or short.requires_grad
            )
        outputs = [self.ops(path, x) for path in op.paths]
        if op.merge == "mul":  # each factor is kept for the gradient of the other
            for i, factor in enumerate(outputs):
                if any(o.requires_grad for j, o in enumerate(outputs) if j != i):
                    self.keep(factor)
        return self.new(op.info.output_shape, any(o.requires_grad for o in outputs))

    def leaf(self, leaf: Leaf, x: _Tensor) -> _Tensor:
        rule = cost_of(leaf.layer.type_name)
        where = site(leaf)
        keeps = self.keeps_of(leaf, rule, where)
        trainable = leaf.info.params > 0
        out = x if keeps.view else self.new(where.output, x.requires_grad or trainable)
        if keeps.view and trainable:
            out.requires_grad = True
        if not (x.requires_grad or trainable):
            return out  # no autograd node: nothing is kept
        if keeps.input:
            self.keep(x)
        if keeps.output:
            self.keep(out)
        if keeps.per_sample is not None:
            self.per_sample += keeps.per_sample(where)
        if keeps.per_batch is not None:
            self.per_batch += keeps.per_batch(where)
        return out

    def keeps_of(self, leaf: Leaf, rule: LayerCost, where: Site) -> Keeps:
        if self.mask_bytes is not None and leaf.layer.type_name == "dropout":
            return dropout_keeps(self.mask_bytes)(where)
        return rule.keeps(where)

    def new(self, shape, requires_grad: bool) -> _Tensor:
        tensor = _Tensor(
            _elements(shape) * FLOAT_BYTES, requires_grad, len(self.numbers) + 1
        )
        self.numbers.append(tensor)
        self.produced += tensor.bytes
        return tensor

    def keep(self, tensor: _Tensor) -> None:
        self.kept[tensor.number] = tensor.bytes


def _elements(shape) -> int:
    total = 1
    for d in shape:
        total *= d
    return total


@dataclass(frozen=True)
class ActivationMemory:
    """Activation bytes of a model: produced by a forward, and kept for backward in training."""

    forward_per_sample: (
        int  # every layer's output (views once), float32: an upper bound for inference
    )
    kept_per_sample: int  # what autograd keeps for backward, per sample of the batch
    kept_per_batch: int  # kept once per batch (batch norm statistics)

    def kept(self, batch: int) -> int:
        """Return the bytes kept for backward for a batch of `batch` samples."""
        return self.kept_per_sample * batch + self.kept_per_batch


def activation_memory(
    tree: Module, dropout_mask_bytes: int | None = None
) -> ActivationMemory:
    """Return the activation memory of a resolved model (the input batch counted where kept).

    `dropout_mask_bytes` overrides compute.DROPOUT_MASK_BYTES (4 for torch on the CPU).
    """
    saved = _Saved(dropout_mask_bytes)
    x = _Tensor(_elements(tree.info.input_shape) * FLOAT_BYTES, False)
    saved.ops(tree.body, x)
    return ActivationMemory(
        saved.produced, sum(saved.kept.values()) + saved.per_sample, saved.per_batch
    )


# Optimizer state per parameter, in copies of the parameters: momentum buffers, Adam's moments.
def optimizer_copies(optimizer: Any) -> int:
    """Return how many float32 copies of the parameters the optimizer keeps (0, 1 or 2)."""
    if optimizer.type == "sgd":
        return 1 if optimizer.momentum > 0 else 0
    return 2  # adam, adamw: exp_avg and exp_avg_sq


def training_memory(tree: Module, training: Any) -> dict[str, int]:
    """Return an estimate of training memory in bytes for the spec's batch size and optimizer.

    Parameters, their gradients, the optimizer's state, the buffers, and the activations kept for
    backward; not counted: the framework itself, the allocator's caching and its workspaces, and
    the transient gradients of activations during backward.
    """
    entries = state_entries(tree).values()
    params = (
        sum(_elements(e.shape) for e in entries if e.kind == "parameter") * FLOAT_BYTES
    )
    buffers = sum(
        _elements(e.shape) * (8 if e.dtype == "int64" else 4)
        for e in entries
        if e.kind == "buffer"
    )
    activations = activation_memory(tree).kept(training.batch_size)
    state = params * optimizer_copies(training.optimizer)
    parts = {
        "parameters": params,
        "gradients": params,
        "optimizer_state": state,
        "buffers": buffers,
        "activations": activations,
    }
    return {**parts, "total": sum(parts.values()), "batch_size": training.batch_size}
