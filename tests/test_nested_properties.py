"""Property tests of nested specs: random containers inside containers and blocks with parameters,
in both forms.

The strategy draws a structure whose shapes are right by construction: it tracks the channels (or
features) flowing through every entry, as an integer or, inside a block, as an expression over the
block's parameters (`$width * 2`), and closes a residual, a repeat or an add/mul merge with a layer
back to the size it needs. Each drawn spec must validate; then the built module and the class
generated from the spec must be one function: the same state_dict keys and initial weights under
one seed, bit-equal outputs in eval mode, equal outputs, gradients and running statistics in train
mode (dropout included), checkpoints that load across forms strictly, and the static parameter
count and output shape.
"""

from __future__ import annotations

import ast
import io
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler import (
    build_module,
    count_params,
    generate_source,
    load_spec,
    model_tree,
    output_shape,
    spec_data,
)
from compiler.expressions import evaluate, parse_expression
from compiler.tree import Module, Repeat, Slot, children, leaves
from runtime.training.generated_form import compile_generated_class

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NESTED_SETTINGS = settings(
    derandomize=True, deadline=None, database=None, max_examples=50
)

Size = (
    int | str
)  # channels or features: an integer, or an expression over a block's parameters


def plus(a: Size, b: Size) -> Size:
    """Return the size a + b (an expression when either side is one)."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    return f"({a}) + ({b})"


@dataclass
class Context:
    """What the drawing knows: the model's rank, the blocks usable here, the names taken."""

    rank: int  # 3: [C, H, W] with convolutions; 1: [F] with linear layers
    blocks: list["Block"]  # blocks this layer list may use
    in_block: "Block | None" = None
    counter: list[int] = field(default_factory=lambda: [0])

    def fresh_name(self) -> str:
        self.counter[0] += 1
        return f"n{self.counter[0]}"


@dataclass
class Block:
    name: str
    uses_times: bool = False
    uses_extra: bool = False
    extra_size: Size = 0  # the size of the residual whose shortcut is `$extra`
    definition: dict[str, Any] = field(default_factory=dict)


def sizes(ctx: Context) -> st.SearchStrategy:
    """Sizes a layer may produce: small integers and, inside a block, expressions over `$width`."""
    fixed = st.integers(1, 4)
    if ctx.in_block is None:
        return fixed
    return fixed | st.sampled_from(["$width", "$width * 2", "$width + 1"])


def projection(ctx: Context, size: Size) -> dict[str, Any]:
    """Return a layer that maps any input to `size` channels (features) and keeps the rest."""
    if ctx.rank == 3:
        return {"conv2d": {"out_channels": size, "kernel_size": 1, "bias": False}}
    return {"linear": {"out_features": size}}


@st.composite
def leaf(draw, ctx: Context, size: Size) -> tuple[Any, Size]:
    """Return (a layer entry, its output size)."""
    name = {"name": ctx.fresh_name()} if draw(st.integers(0, 4)) == 0 else {}
    keeps = ["relu", "tanh", "gelu"]
    if ctx.rank == 3:
        kind = draw(
            st.sampled_from(["conv3", "conv1", "batchnorm2d", "dropout", *keeps])
        )
        if kind in ("conv3", "conv1"):
            out = draw(sizes(ctx))
            args = {"out_channels": out, "kernel_size": 3 if kind == "conv3" else 1}
            if kind == "conv3":
                args["padding"] = 1
            return {"conv2d": {**args, **name}}, out
    else:
        kind = draw(st.sampled_from(["linear", "batchnorm1d", "dropout", *keeps]))
        if kind == "linear":
            out = draw(sizes(ctx))
            if not name and draw(st.booleans()):
                return {"linear": out}, out  # the primary-argument form
            return {"linear": {"out_features": out, **name}}, out
    if kind == "dropout":
        return {"dropout": {"p": 0.25, **name}}, size
    if not name and draw(st.booleans()):
        return kind, size  # the bare form
    return {"type": kind, **name}, size


@st.composite
def body(draw, ctx: Context, size: Size, depth: int) -> tuple[list[Any], Size]:
    """Return (a layer list of 1-3 entries, its output size)."""
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        entry_, size = draw(entry(ctx, size, depth))
        layers.append(entry_)
    return layers, size


@st.composite
def closed_body(draw, ctx: Context, size: Size, depth: int) -> list[Any]:
    """Return a layer list whose output has the size of its input."""
    layers, out = draw(body(ctx, size, depth))
    if out != size:
        layers.append(projection(ctx, size))
    return layers


@st.composite
def entry(draw, ctx: Context, size: Size, depth: int) -> tuple[Any, Size]:
    """Return (a layer, container or block use, its output size)."""
    kinds = ["leaf", "leaf"]
    if depth > 0:
        kinds += ["sequential", "residual", "branches", "repeat"]
        if ctx.blocks:
            kinds += ["block", "block"]
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        return draw(leaf(ctx, size))
    if kind == "sequential":
        layers, out = draw(body(ctx, size, depth - 1))
        named = {"name": ctx.fresh_name()} if draw(st.booleans()) else {}
        if not named and draw(st.booleans()):
            return {"sequential": layers}, out
        return {"sequential": {**named, "layers": layers}}, out
    if kind == "residual":
        layers, out = draw(body(ctx, size, depth - 1))
        if out != size and draw(st.booleans()):
            layers.append(projection(ctx, size))
            out = size
        if out == size and draw(st.integers(0, 2)):
            return (
                {"residual": layers}
                if draw(st.booleans())
                else {"type": "residual", "layers": layers}
            ), out
        extra = (
            ["batchnorm2d" if ctx.rank == 3 else "batchnorm1d"]
            if draw(st.booleans())
            else []
        )
        shortcut = (
            [projection(ctx, out), *extra]
            if out != size or draw(st.booleans())
            else extra
        )
        return {"residual": {"layers": layers, "shortcut": shortcut}}, out
    if kind == "branches":
        merge = draw(st.sampled_from(["concat", "add", "mul"]))
        count = draw(st.integers(2, 3))
        if merge == "concat":
            paths, total = [], 0
            for _ in range(count):
                if draw(st.integers(0, 3)) == 0:
                    paths.append([])
                    total = plus(total, size)
                else:
                    layers, out = draw(body(ctx, size, depth - 1))
                    paths.append(layers)
                    total = plus(total, out)
            args: dict[str, Any] = {"paths": paths}
            how = draw(st.sampled_from(["default", "written", "negative"]))
            if how == "written":
                args.update(merge="concat", dim=1)
            elif how == "negative":
                args.update(
                    dim=-ctx.rank
                )  # the channel (feature) dimension, from the end
            return {"branches": args}, total
        if ctx.rank == 3 and merge == "mul" and draw(st.booleans()):
            # a squeeze-and-excitation gate: [C, H, W] * [C, 1, 1]
            gate = [{"adaptiveavgpool2d": 1}, projection(ctx, size), "sigmoid"]
            return {"branches": {"merge": "mul", "paths": [[], gate]}}, size
        target = draw(sizes(ctx) | st.just(size))
        paths = []
        for _ in range(count):
            if target == size and draw(st.integers(0, 3)) == 0:
                paths.append([])
                continue
            layers, out = draw(body(ctx, size, depth - 1))
            if out != target:
                layers.append(projection(ctx, target))
            paths.append(layers)
        return {"branches": {"merge": merge, "paths": paths}}, target
    if kind == "repeat":
        layers = draw(closed_body(ctx, size, depth - 1))
        times: Any = draw(st.integers(0, 2))
        if ctx.in_block is not None and draw(st.booleans()):
            times, ctx.in_block.uses_times = "$times", True
        named = {"name": ctx.fresh_name()} if draw(st.booleans()) else {}
        return {"repeat": {**named, "times": times, "layers": layers}}, size
    block = draw(st.sampled_from(ctx.blocks))
    return draw(block_use(ctx, block))


@st.composite
def block_use(draw, ctx: Context, block: Block) -> tuple[Any, Size]:
    """Return (a use of `block`, its output size `$width` evaluated at the use's width)."""
    width: Size = draw(st.integers(1, 3))
    if ctx.in_block is not None and draw(st.booleans()):
        width = "$width"  # passes its own parameter on, as ResNet-50's Stage does
    args: dict[str, Any] = {"width": width}
    if block.uses_times and draw(st.booleans()):
        args["times"] = draw(st.integers(0, 2))
    if block.uses_extra and draw(st.booleans()):
        # a shortcut for the block's residual: it maps that residual's size to itself
        size = block.extra_size
        if isinstance(width, int) and isinstance(size, str):
            size = evaluate(parse_expression(size), {"width": width})
        args["extra"] = [projection(ctx, size)]
    if draw(st.booleans()):
        args["name"] = ctx.fresh_name()
    if list(args) == ["width"] and draw(st.booleans()):
        return {block.name: width}, width  # the primary argument
    if draw(st.booleans()):
        return {"type": block.name, **args}, width
    return {block.name: args}, width


@st.composite
def block_definition(draw, ctx: Context, index: int) -> Block:
    """Return a block over `width` (required), `times` and `extra` (a layer list) that may use
    the blocks defined before it; its output has `$width` channels (features)."""
    block = Block(name=draw(st.sampled_from(["Unit", "Stage", "Cell"])) + str(index))
    inner = Context(ctx.rank, list(ctx.blocks), block, ctx.counter)
    layers: list[Any] = [projection(inner, "$width")]
    more, size = draw(body(inner, "$width", 2))
    layers += more
    if draw(st.booleans()):
        block.uses_extra, block.extra_size = True, size
        inner_layers = draw(closed_body(inner, size, 1))
        layers.append({"residual": {"layers": inner_layers, "shortcut": "$extra"}})
    if size != "$width":
        layers.append(projection(inner, "$width"))
    block.definition = {
        "description": f"Block {index} of a drawn spec.",
        "params": {"width": "required", "times": 1, "extra": []},
        "layers": layers,
    }
    return block


@st.composite
def nested_specs(draw) -> dict[str, Any]:
    """Return a valid spec mapping with 0-2 blocks and containers nested up to three deep."""
    rank = draw(st.sampled_from([3, 1]))
    if rank == 3:
        size = draw(st.integers(1, 3))
        shape = [size, draw(st.integers(2, 4)), draw(st.integers(2, 4))]
    else:
        size = draw(st.integers(2, 5))
        shape = [size]
    ctx = Context(rank, [])
    blocks = {}
    for index in range(draw(st.integers(0, 2))):
        block = draw(block_definition(ctx, index + 1))
        if block.name not in blocks:
            blocks[block.name] = block.definition
            ctx.blocks.append(block)
    layers, _ = draw(body(ctx, size, 3))
    mapping: dict[str, Any] = {"name": "Drawn", "input": shape}
    if blocks:
        mapping["blocks"] = blocks
    mapping["layers"] = layers
    return mapping


def both_forms(spec, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Return (built module, generated class instance), each made right after seeding."""
    cls = compile_generated_class(spec)
    torch.manual_seed(seed)
    built = build_module(spec)
    torch.manual_seed(seed)
    return built, cls()


def state_round_trip(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return the model's state_dict as torch.save and torch.load(weights_only=True) give it back."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@NESTED_SETTINGS
@given(nested_specs())
def test_random_nested_specs_are_one_function_in_both_forms(mapping):
    spec = load_spec(mapping)
    built, generated = both_forms(spec, seed=5)

    # the same keys and the same initial weights
    assert list(built.state_dict()) == list(generated.state_dict())
    for (key, a), b in zip(built.state_dict().items(), generated.state_dict().values()):
        assert torch.equal(a, b), key
    static = count_params(spec)
    assert sum(p.numel() for p in built.parameters()) == static
    assert sum(p.numel() for p in generated.parameters()) == static
    assert (
        sum(leaf_.info.params for _, leaf_ in leaves(model_tree(spec).body)) == static
    )

    # bit-equal outputs in eval mode, of the predicted shape
    x = torch.randn(3, *spec.input, generator=torch.Generator().manual_seed(1))
    built.eval(), generated.eval()
    with torch.no_grad():
        expected, actual = built(x), generated(x)
    assert tuple(expected.shape) == (3, *output_shape(spec))
    assert torch.equal(expected, actual)

    # train mode: the same dropout masks, outputs, gradients and running statistics
    outputs = []
    for model in (built, generated):
        model.train()
        torch.manual_seed(7)
        out = model(x)
        if out.requires_grad:  # not when nothing in the model has parameters
            (out.square().mean() + out.sum()).backward()
        outputs.append(out.detach())
    assert torch.equal(outputs[0], outputs[1])
    built_params = dict(built.named_parameters())
    for name, param in generated.named_parameters():
        other = built_params[name].grad
        assert (param.grad is None) == (other is None), name
        if other is not None:
            assert torch.equal(param.grad, other), name
    for (name, a), b in zip(built.named_buffers(), generated.buffers()):
        assert torch.equal(a, b), name

    # checkpoints load across forms, strictly, both ways
    for source, target in (
        (built, both_forms(spec, 9)[1]),
        (generated, both_forms(spec, 9)[0]),
    ):
        result = target.load_state_dict(state_round_trip(source), strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        source.eval(), target.eval()
        with torch.no_grad():
            assert torch.equal(source(x), target(x))

    # the normalized form reads back to the same spec
    assert spec_data(load_spec(spec_data(spec))) == spec_data(spec)


def used_blocks(body) -> set[str]:
    """Return the names of the blocks used anywhere in a body, through every kind of child."""
    found: set[str] = set()
    for child in children(body, empty_slots=False):
        if isinstance(child, Repeat):
            for copy in child.copies:
                if isinstance(copy, Module):
                    found |= {copy.block} if copy.kind == "block" else set()
                    found |= used_blocks(copy.body)
        elif isinstance(child, Slot):
            found |= used_blocks(child.module.body) if child.module else set()
        elif isinstance(child, Module):
            found |= {child.block} if child.kind == "block" else set()
            found |= used_blocks(child.body)
    return found


@settings(NESTED_SETTINGS, max_examples=25)
@given(nested_specs())
def test_random_nested_specs_generate_a_class_per_used_block_before_the_model(mapping):
    spec = load_spec(mapping)
    tree = ast.parse(generate_source(spec))
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes[-1] == "Drawn" and classes.count("Drawn") == 1
    used = used_blocks(model_tree(spec).body)
    for name in used:
        assert name in classes, (name, classes)
    # the model's constructor takes no arguments; every other class is built inside it
    model = next(
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name == "Drawn"
    )
    init = next(node for node in model.body if isinstance(node, ast.FunctionDef))
    assert [a.arg for a in init.args.args] == ["self"]
