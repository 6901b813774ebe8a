"""Static shape inference: the shape each node of the model tree receives and produces, in pure Python.

Shapes flow through layers, modules, repeats and wiring alike. Beside each concrete size, the
resolver carries an expression of it over the constructor arguments of the generated class that
holds the node (a block's parameters and its input channels), so that a generated block writes
`nn.BatchNorm2d(channels)` rather than a number that fits one use only. On the first impossible
shape, a Problem is added and resolution stops: later shapes are unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .errors import Problem, format_path
from .expressions import Const, Expr, Name, add, substitute
from .formatting import format_shape
from .layers import LayerSpec, Shape, ShapeProblem
from .tree import Branches, Leaf, Module, Repeat, Residual, Slot, Where, leaves


@dataclass(frozen=True)
class ResolvedLayer:
    """A layer with everything the builder, the generator and the summary need."""

    index: int  # the top-level entry it belongs to
    name: str
    type: str
    torch_class: str
    kwargs: dict[
        str, Any
    ]  # every argument of the torch.nn constructor, inferred ones included
    input_shape: Shape
    output_shape: Shape
    params: int
    line: int | None
    path: str = (
        ""  # where it was written, as problems name it: layers[3].residual.layers[0]
    )
    qualname: str = ""  # its key prefix in the state_dict: layer3.0.conv1


class _Stop(Exception):
    """Resolution cannot go on (a Problem was added, or an earlier entry was broken)."""


Exprs = tuple  # one Expr or None per sample dimension


class Resolver:
    """Fills in the `info` of every node of a model tree."""

    def __init__(self, line_of, problems: list[Problem]):
        self.line_of = line_of
        self.problems = problems
        # one mapping per block use being resolved: that block's names -> the caller's expressions
        self.scopes: list[dict[str, Expr | None]] = []
        self.names: list[set[str]] = [
            set()
        ]  # the names each scope's class already uses
        self.ids = False  # the values flowing are int64 ids (until an embedding)
        self.first: Leaf | None = (
            None  # the model's first entry, whose input is the spec's
        )

    def model(self, module: Module, shape: Shape, dtype: str = "float32") -> bool:
        """Resolve the whole model; return False when a Problem stopped it.

        With `dtype` int64 the samples are ids, which only a layer that `takes_ids` accepts.
        """
        self.ids = dtype != "float32"
        self.first = (
            module.body[0] if module.body and isinstance(module.body[0], Leaf) else None
        )
        try:
            exprs = tuple(Const(d) for d in shape)
            module.info.input_shape = shape
            module.info.output_shape, module.info.output_exprs = self.ops(
                module.body, shape, exprs
            )
        except _Stop:
            return False
        module.info.params = _params(module.body)
        return True

    # -- bodies -----------------------------------------------------------------------------------
    def ops(self, ops: list, shape: Shape, exprs: Exprs) -> tuple[Shape, Exprs]:
        producer: Leaf | None = None
        for op in ops:
            op.info.input_exprs = exprs
            if isinstance(op, Leaf):
                shape, exprs = self.leaf(op, shape, exprs, producer)
                producer = op
                continue
            op.info.input_shape = shape
            if isinstance(op, Module):
                shape, exprs = self.module(op, shape, exprs)
            elif isinstance(op, Repeat):
                shape, exprs = self.repeat(op, shape, exprs)
            elif isinstance(op, Slot):
                shape, exprs = self.slot(op, shape, exprs)
            elif isinstance(op, Residual):
                shape, exprs = self.residual(op, shape, exprs)
            else:
                shape, exprs = self.branches(op, shape, exprs)
            op.info.output_shape, op.info.output_exprs = shape, exprs
            producer = None
        return shape, exprs

    def leaf(
        self, leaf: Leaf, shape: Shape, exprs: Exprs, producer: Leaf | None
    ) -> tuple[Shape, Exprs]:
        if getattr(leaf, "broken", False):
            raise _Stop
        layer = leaf.layer
        if self.ids != layer.takes_ids:
            if self.ids:
                message = (
                    f"{layer.type_name} takes float values, but the input holds int64 ids "
                    "(`input.dtype`); start with `embedding` to turn each id into a vector"
                )
            elif leaf is self.first:
                message = (
                    f"{layer.type_name} takes int64 ids, but the input is float32; write "
                    f"`input: {{shape: {format_shape(shape)}, dtype: int64}}`"
                )
            else:
                message = (
                    f"{layer.type_name} takes int64 ids, but float values reach it"
                    f"{_provenance(shape, producer)}; it belongs first, on an int64 input"
                )
            self.problems.append(leaf.where.problem(message, self.line_of))
            raise _Stop
        self.ids = False
        try:
            kwargs, out, params = layer.resolve(shape)
        except ShapeProblem as exc:
            extra = (layer.type_name, exc.arg) if exc.arg else ()
            origin = (
                " (the spec's input)"
                if leaf is self.first
                else _provenance(shape, producer)
            )
            message = str(exc).replace("{origin}", origin)
            self.problems.append(leaf.where.problem(message, self.line_of, extra))
            raise _Stop from None
        inferred = layer.infer_exprs(exprs)
        arg_exprs = {
            arg: (
                leaf.exprs[arg]
                if arg in leaf.exprs
                else inferred[arg] if arg in inferred else Const(value)
            )
            for arg, value in kwargs.items()
        }
        leaf.kwargs, leaf.kwarg_exprs = kwargs, arg_exprs
        out_exprs = tuple(layer.output_exprs(exprs, arg_exprs, out))
        leaf.info.input_shape, leaf.info.output_shape, leaf.info.params = (
            shape,
            out,
            params,
        )
        leaf.info.output_exprs = out_exprs
        return out, out_exprs

    def module(self, module: Module, shape: Shape, exprs: Exprs) -> tuple[Shape, Exprs]:
        if module.kind != "block":
            out, out_exprs = self.ops(module.body, shape, exprs)
        else:
            symbol = input_symbol(module, shape)
            mapping: dict[str, Expr | None] = {symbol: exprs[0]}
            for param, bound in module.args.items():
                if not bound.is_list:
                    mapping[param] = bound.expr
            inner = (Name(symbol), *(None,) * (len(shape) - 1))
            self.scopes.append(mapping)
            self.names.append({symbol, *module.args})
            try:
                out, body_exprs = self.ops(module.body, shape, inner)
            finally:
                self.scopes.pop()
                self.names.pop()
            module.info.output_exprs = body_exprs  # inside the block's own class
            out_exprs = tuple(substitute(e, mapping) for e in body_exprs)
        module.info.params = _params(module.body)
        return out, out_exprs

    def repeat(self, repeat: Repeat, shape: Shape, exprs: Exprs) -> tuple[Shape, Exprs]:
        for copy in repeat.copies[:1]:
            if isinstance(copy, Leaf) and not copy.layer.plain_call():
                # its copies would be the children of an nn.Sequential, which calls x = layer(x)
                kind = copy.layer.type_name
                self.fail(
                    repeat.where,
                    f"a repeat whose copy is one {kind} cannot be an nn.Sequential of its copies "
                    f"({kind} is not called as `x = layer(x)`); write its layers as "
                    f"`[sequential: [{kind}: ...]]`"
                    + (
                        ""
                        if kind not in ("lstm", "gru", "rnn")
                        else ", or use num_layers"
                    ),
                    ("repeat",),
                )
        symbolic_times = repeat.times_expr is not None and not isinstance(
            repeat.times_expr, Const
        )
        out, out_exprs = shape, exprs
        variable = None
        if (
            symbolic_times
        ):  # a loop in the generated class: each copy over a running variable
            taken = self.names[-1]
            variable = Name(
                next(
                    n
                    for n in ("channels", "width", "features", "size", "running_size")
                    if n not in taken
                )
            )
            repeat.info.loop_var = variable.name
            out_exprs = (variable, *(None,) * (len(shape) - 1))
        start = out_exprs
        for index, copy in enumerate(repeat.copies):
            if symbolic_times:
                out_exprs = (
                    start  # every copy is written once, over the loop's running size
                )
            copy.info.input_shape, copy.info.input_exprs = out, out_exprs
            if isinstance(copy, Leaf):
                out, out_exprs = self.leaf(copy, out, out_exprs, None)
            else:
                out, out_exprs = self.module(copy, out, out_exprs)
                copy.info.output_shape = out
            if symbolic_times and index == 0:
                repeat.info.update_expr = out_exprs[0] if out_exprs else None
        if symbolic_times:
            same = repeat.info.update_expr == variable or not repeat.copies
            out_exprs = tuple(exprs) if same else (None,) * len(out)
        repeat.info.params = sum(_params([c]) for c in repeat.copies)
        return out, out_exprs

    def slot(self, slot: Slot, shape: Shape, exprs: Exprs) -> tuple[Shape, Exprs]:
        if slot.module is None:
            return shape, exprs
        # the list was written in the caller's scope: its sizes are the caller's expressions
        levels = len(self.scopes) - len(slot.module.where.uses)
        mapped = exprs
        for mapping in reversed(
            self.scopes[len(self.scopes) - levels :] if levels > 0 else []
        ):
            mapped = tuple(substitute(e, mapping) for e in mapped)
        slot.module.info.input_shape, slot.module.info.input_exprs = shape, mapped
        out, out_exprs = self.ops(slot.module.body, shape, mapped)
        slot.module.info.output_shape, slot.module.info.output_exprs = out, out_exprs
        slot.module.info.params = _params(slot.module.body)
        return out, (None,) * len(out)

    # -- wiring -----------------------------------------------------------------------------------
    def residual(
        self, residual: Residual, shape: Shape, exprs: Exprs
    ) -> tuple[Shape, Exprs]:
        ids = self.ids  # both sides get the same input: ids on an int64 input
        short_shape, short_exprs = self.ops(residual.shortcut, shape, exprs)
        short_ids, self.ids = self.ids, ids
        out, out_exprs = self.ops(residual.layers, shape, exprs)
        self.ids = self.ids or short_ids
        if out != short_shape:
            # a layer-list parameter left at `[]` is the identity too: the fix goes at the use
            empty = [
                op.param
                for op in residual.shortcut
                if isinstance(op, Slot) and op.module is None
            ]
            identity = len(empty) == len(residual.shortcut)
            self.fail(
                residual.where,
                residual_message(
                    shape,
                    out,
                    short_shape,
                    not identity,
                    empty[0] if identity and empty else None,
                ),
                ("residual",),
            )
        return out, _either(out_exprs, short_exprs)

    def branches(
        self, branches: Branches, shape: Shape, exprs: Exprs
    ) -> tuple[Shape, Exprs]:
        ids, after = (
            self.ids,
            [],
        )  # every path gets the same input: ids on an int64 input
        results = []
        for path in branches.paths:
            self.ids = ids
            results.append(self.ops(path, shape, exprs))
            after.append(self.ids)
        self.ids = any(after)
        shapes = [s for s, _ in results]
        listed = "; ".join(
            f"paths[{i}] gives {format_shape(s)}" for i, s in enumerate(shapes)
        )
        if len({len(s) for s in shapes}) > 1:
            self.fail(
                branches.where,
                f"the paths give outputs of different ranks ({listed}); "
                f"{branches.merge} needs the same number of dimensions",
                ("branches",),
            )
        rank = len(shapes[0])
        if branches.merge == "concat":
            dim = branches.dim + rank + 1 if branches.dim < 0 else branches.dim
            if dim == 0:
                self.fail(
                    branches.where,
                    "dim 0 is the batch: concatenating there would mix "
                    "samples; use 1 (channels) or another dimension of a sample",
                    ("branches", "dim"),
                )
            if not 1 <= dim <= rank:
                self.fail(
                    branches.where,
                    f"dim {branches.dim} is out of range for the batched "
                    f"outputs of rank {rank + 1}",
                    ("branches", "dim"),
                )
            axis = dim - 1
            for other in shapes[1:]:
                if any(
                    a != b
                    for i, (a, b) in enumerate(zip(shapes[0], other))
                    if i != axis
                ):
                    self.fail(
                        branches.where,
                        f"concat along dim {branches.dim} needs the paths' "
                        f"other sizes equal, but {listed}",
                        ("branches",),
                    )
            out = tuple(
                sum(s[axis] for s in shapes) if i == axis else d
                for i, d in enumerate(shapes[0])
            )
            merged = list(results[0][1])
            for _, path_exprs in results[1:]:
                merged[axis] = add(merged[axis], path_exprs[axis])
            return out, tuple(merged)
        out_list = []
        for i in range(rank):
            sizes = {s[i] for s in shapes}
            if len(sizes - {1}) > 1:
                self.fail(
                    branches.where,
                    f"{branches.merge} broadcasts as torch does (sizes equal, or "
                    f"1), but {listed}",
                    ("branches",),
                )
            out_list.append(max(sizes))
        out = tuple(out_list)
        merged = []
        for i in range(rank):
            candidates = [
                e[i] for s, e in results if s[i] == out[i] and e[i] is not None
            ]
            merged.append(candidates[0] if candidates else None)
        return out, tuple(merged)

    def fail(self, where, message: str, extra: tuple = ()) -> None:
        self.problems.append(where.problem(message, self.line_of, extra))
        raise _Stop


def input_symbol(module: Module, shape: Shape) -> str:
    """Return the name a block's class gives its input size: `in_channels` (or `in_features`)."""
    base = "in_features" if len(shape) == 1 else "in_channels"
    while base in module.args:
        base += "_"
    return base


def residual_message(
    shape: Shape,
    out: Shape,
    short: Shape,
    has_shortcut: bool,
    param: str | None = None,
) -> str:
    """Return why a residual's sides differ, with the projection shortcut that would fix it.

    `param` names the block's layer-list parameter that is the shortcut and was left at `[]`
    by this use: the fix is then to pass it there.
    """
    side = "the shortcut" if has_shortcut else "the identity shortcut"
    if param is not None:
        side = f"the identity shortcut (${param} is [] in this use)"
    text = (
        f"the layers give {format_shape(out)} but {side} gives {format_shape(short)} for the "
        f"input {format_shape(shape)}; both sides must have the same shape"
    )
    if not has_shortcut and len(shape) == 3 and len(out) == 3:
        stride = next(
            (
                s
                for s in range(1, max(shape[1:]) + 1)
                if all((n - 1) // s + 1 == m for n, m in zip(shape[1:], out[1:]))
            ),
            None,
        )
        if stride is not None:
            conv = f"conv2d: {{out_channels: {out[0]}, kernel_size: 1"
            conv += f", stride: {stride}" if stride > 1 else ""
            projection = f"[{conv}, bias: false}}, batchnorm2d]"
            if param is not None:
                text += (
                    f"; pass a projection shortcut in this use: `{param}: {projection}`"
                )
            else:
                text += f"; add a projection shortcut: `shortcut: {projection}`"
    return text


def _either(first: Exprs, second: Exprs) -> Exprs:
    return tuple(a if a is not None else b for a, b in zip(first, second))


def _params(ops: list) -> int:
    total = 0
    for op in ops:
        if isinstance(op, Leaf):
            total += op.info.params
        elif isinstance(op, Residual):
            total += _params(op.layers) + _params(op.shortcut)
        elif isinstance(op, Branches):
            total += sum(_params(p) for p in op.paths)
        elif isinstance(op, Slot):
            total += op.module.info.params if op.module is not None else 0
        else:
            total += op.info.params
    return total


def _provenance(shape: Shape, producer: Leaf | None) -> str:
    """Return where a shape came from, e.g. ` = 16x4x4 from layers[5] (flatten1)`."""
    if producer is None:
        return ""
    text = ""
    if producer.layer.type_name == "flatten" and len(producer.info.input_shape) > len(
        shape
    ):
        text = " = " + "\u00d7".join(str(d) for d in producer.info.input_shape)
    return f"{text} from {format_path(producer.where.path)} ({producer.name})"


def flat_layers(model: Module) -> tuple[ResolvedLayer, ...]:
    """Return every layer of a resolved model, depth first, as ResolvedLayer records."""
    out = []
    top = {id(op): i for i, op in enumerate(model.body)}
    for qualname, leaf in leaves(model.body):
        index = _top_index(model.body, leaf, top)
        out.append(
            ResolvedLayer(
                index,
                leaf.name,
                leaf.layer.type_name,
                leaf.layer.torch_class,
                leaf.kwargs,
                leaf.info.input_shape,
                leaf.info.output_shape,
                leaf.info.params,
                leaf.line,
                format_path(leaf.where.path),
                qualname,
            )
        )
    return tuple(out)


def _top_index(body: list, leaf: Leaf, top: dict) -> int:
    if id(leaf) in top:
        return top[id(leaf)]
    path = leaf.where.path
    if leaf.where.uses:
        path = leaf.where.uses[0][0]
    return (
        path[1]
        if len(path) > 1 and path[0] == "layers" and isinstance(path[1], int)
        else 0
    )


def iter_resolved(
    layers: Sequence[LayerSpec],
    input_shape: Shape,
    lines: Sequence[int | None],
    problems: list[Problem],
    prefix: tuple = ("layers",),
) -> Iterator[ResolvedLayer]:
    """Yield each layer of a plain chain resolved in turn; on the first impossible shape, stop.

    Kept for callers that resolve a chain of layer objects without a tree (benchmarks/scale.py).
    """

    body = [
        Leaf(layer, Where(prefix + (i,)), lines[i] if i < len(lines) else None)
        for i, layer in enumerate(layers)
    ]
    resolver = Resolver(lambda path: None, [])
    shape, exprs = tuple(input_shape), tuple(Const(d) for d in input_shape)
    producer = None
    for leaf in body:
        try:
            shape, exprs = resolver.leaf(leaf, shape, exprs, producer)
        except _Stop:
            for problem in resolver.problems:
                problems.append(Problem(problem.path, problem.message, leaf.line))
            return
        producer = leaf
        yield ResolvedLayer(
            prefix_index(leaf),
            leaf.name,
            leaf.layer.type_name,
            leaf.layer.torch_class,
            leaf.kwargs,
            leaf.info.input_shape,
            shape,
            leaf.info.params,
            leaf.line,
            format_path(leaf.where.path),
            leaf.name,
        )


def prefix_index(leaf: Leaf) -> int:
    return leaf.where.path[-1]
