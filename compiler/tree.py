"""The model as a tree: modules whose bodies are layers, child modules, repeats and wiring.

The expander (expand.py) builds the tree from a spec: blocks inlined as modules, repeats
multiplied out, every name set. Shape inference (shapes.py) fills in what each node receives and
produces. The builder (build.py) and the code generator (codegen.py) read the same tree, which
is what makes the two forms one function: the same children, in the same order, wired the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Union

from .errors import Problem, format_path
from .expressions import Expr
from .layers import LayerSpec, Shape


@dataclass(frozen=True)
class Where:
    """Where a node was written: its document path, and the block uses that led there."""

    path: tuple
    uses: tuple[
        tuple[tuple, int | None], ...
    ] = ()  # (document path of a use, its line)

    def at(self, *parts: Any) -> "Where":
        """Return the place of something inside this one."""
        return Where(self.path + parts, self.uses)

    def problem(self, message: str, line_of, extra: tuple = ()) -> Problem:
        """Return a Problem here: the outermost use's path and line, the definitions in between."""
        path = self.path + extra
        if not self.uses:
            return Problem(format_path(path), message, line_of(path))
        (first, first_line), *rest = self.uses
        inner = [*(p for p, _ in rest), path]
        text = format_path(first) + "".join(
            (
                f" ({format_path(p)}, line {line_of(p)})"
                if line_of(p) is not None
                else f" ({format_path(p)})"
            )
            for p in inner
        )
        return Problem(text, message, first_line)

    def key(self, message: str) -> tuple:
        """Return what makes a problem inside a block the same problem at every use."""
        return (self.path, message) if self.uses else (self.uses, self.path, message)


@dataclass(eq=False)
class Resolved:
    """What shape inference found for a node."""

    input_shape: Shape = ()
    output_shape: Shape = ()
    params: int = 0
    # the output's sizes as expressions over the constructor arguments of the generated class
    # that holds the node (None where a size is not expressible there)
    output_exprs: tuple[Expr | None, ...] = ()
    input_exprs: tuple[Expr | None, ...] = ()
    loop_var: str | None = None
    update_expr: Expr | None = (
        None  # the running size after one copy, over loop_var  # a repeat whose `times` is a parameter: the loop's running size
    )


@dataclass(eq=False)
class Leaf:
    """One torch.nn layer (or tensor op)."""

    layer: LayerSpec
    where: Where
    line: int | None
    exprs: dict[str, Expr] = field(default_factory=dict)  # arguments written with a `$`
    info: Resolved = field(default_factory=Resolved)
    kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # torch arguments, inferred included
    kwarg_exprs: dict[str, Expr | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.layer.name or ""

    def set_name(self, name: str) -> None:
        if self.layer.name != name:
            self.layer = self.layer.model_copy(update={"name": name})


@dataclass(eq=False)
class Bound:
    """The value of one block parameter at one use."""

    value: Any  # a scalar, or a raw layer list for a layer-list parameter
    expr: Expr | None  # the value as the caller's generated code writes it
    is_list: bool = False
    where: Where | None = None  # where a layer list was written
    bindings: dict[str, "Bound"] | None = (
        None  # the parameters visible where it was written
    )
    passed_from: str | None = (
        None  # `$p` of an enclosing block's own layer-list parameter
    )


@dataclass(eq=False)
class Module:
    """A child module: the model, a block use, a `sequential` group, a repeat's copy, a parameter."""

    kind: str  # "model" | "block" | "group" | "copy" | "param"
    name: str
    body: list["Op"]
    where: Where
    line: int | None = None
    block: str | None = None  # the block's name, for kind "block"
    args: dict[str, Bound] = field(default_factory=dict)
    written_name: bool = False
    info: Resolved = field(default_factory=Resolved)

    def set_name(self, name: str) -> None:
        self.name = name

    @property
    def is_chain(self) -> bool:
        """Return whether the body is a plain chain of children (no wiring)."""
        return all(isinstance(op, (Leaf, Module, Repeat)) for op in self.body)


@dataclass(eq=False)
class Repeat:
    """`times` copies, children `0`, `1`, ... of an nn.Sequential."""

    name: str
    times: int
    times_expr: Expr | None
    copies: list[Union[Leaf, Module]]
    where: Where
    line: int | None = None
    written_name: bool = False
    info: Resolved = field(default_factory=Resolved)

    def set_name(self, name: str) -> None:
        self.name = name


@dataclass(eq=False)
class Slot:
    """Where a block uses a layer-list parameter: its module, or None for `[]` (the identity)."""

    param: str
    module: Module | None
    info: Resolved = field(default_factory=Resolved)

    @property
    def name(self) -> str:
        return self.param


@dataclass(eq=False)
class Residual:
    """`layers(x) + shortcut(x)`; its layers belong to the module around it."""

    layers: list["Op"]
    shortcut: list["Op"]  # [] is the identity
    where: Where
    info: Resolved = field(default_factory=Resolved)


@dataclass(eq=False)
class Branches:
    """Paths that get the same input, merged by concat (along dim), add or mul."""

    merge: str
    dim: int
    paths: list[list["Op"]]
    where: Where
    info: Resolved = field(default_factory=Resolved)


Op = Union[Leaf, Module, Repeat, Slot, Residual, Branches]
Child = Union[Leaf, Module, Repeat, Slot]


def children(
    body: list[Op], running: bool = False, empty_slots: bool = False
) -> Iterator[Child]:
    """Yield the children a body registers, in order: through wiring, depth first.

    With `running`, in the order forward runs them instead: a residual's shortcut before its
    layers (the generated code computes `identity` first, as torchvision's style does).
    """
    for op in body:
        if isinstance(op, Residual):
            first, second = (
                (op.shortcut, op.layers) if running else (op.layers, op.shortcut)
            )
            yield from children(first, running, empty_slots)
            yield from children(second, running, empty_slots)
        elif isinstance(op, Branches):
            for path in op.paths:
                yield from children(path, running, empty_slots)
        elif isinstance(op, Slot):
            if op.module is not None or empty_slots:
                yield op
        else:
            yield op


def leaves(body: list[Op], running: bool = False) -> Iterator[tuple[str, Leaf]]:
    """Yield (qualified name, leaf) for every layer of a body, depth first (see `children`)."""
    for child in children(body, running):
        if isinstance(child, Leaf):
            yield child.name, child
        elif isinstance(child, Slot):
            for name, leaf in leaves(child.module.body, running):
                yield f"{child.name}.{name}", leaf
        elif isinstance(child, Module):
            for name, leaf in leaves(child.body, running):
                yield f"{child.name}.{name}", leaf
        else:
            for index, copy in enumerate(child.copies):
                if isinstance(copy, Leaf):
                    yield f"{child.name}.{index}", copy
                else:
                    for name, leaf in leaves(copy.body, running):
                        yield f"{child.name}.{index}.{name}", leaf
