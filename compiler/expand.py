"""Expand a spec's layer list into the model tree: containers read, blocks inlined, names set.

Each entry is read in any of the four forms, then becomes a `Leaf` (a layer validated by its
registry class), a `Module` (a `sequential` group, a block use, a repeat's copy, a layer-list
parameter), a `Repeat`, or wiring (`Residual`, `Branches`). Inside a block, `$param` and integer
expressions are replaced by the use's values, and each replaced argument remembers its expression
so that the generated class can write it over its constructor arguments. Names are set per module.
The number of layers a spec expands to is counted first, without expanding anything.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import ValidationError

from .blocks import REQUIRED, STRUCTURAL, BlockDef, entry_kinds
from .containers import CONTAINERS, MERGES, Composite, numbered, snake_case
from .errors import Problem, format_path
from .expressions import (
    Const,
    Expr,
    ExpressionError,
    Items,
    Name,
    evaluate,
    is_reference,
    parse_expression,
    whole_reference,
)
from .layers import REGISTRY, LayerSpec, check_identifier
from .layers.dense import Identity
from .messages import problems_from_validation
from .normalize import NormalizedLayer, did_you_mean, normalize_layer
from .reserved import RESERVED_ATTRIBUTES
from .tree import (
    Bound,
    Branches,
    Leaf,
    Module,
    Op,
    Repeat,
    Residual,
    Slot,
    Where,
    children,
)

_FAILED = (
    object()
)  # a value that could not be substituted (the problem is already reported)
Bindings = dict[str, Bound] | None


class Expander:
    """Builds the model tree of one spec, collecting every problem on the way."""

    def __init__(
        self, blocks: dict[str, BlockDef], line_of: Callable, problems: list[Problem]
    ):
        self.blocks = blocks
        self.line_of = line_of
        self.problems = problems
        self.kinds = entry_kinds(blocks)
        self._seen: set = set()

    # -- problems ---------------------------------------------------------------------------------
    def report(self, where: Where, message: str, extra: tuple = ()) -> None:
        """Add a problem, once: a mistake inside a block is reported at its first use only."""
        key = where.at(*extra).key(message)
        if key in self._seen:
            return
        self._seen.add(key)
        self.problems.append(where.problem(message, self.line_of, extra))

    def report_located(self, where: Where, problem: Problem) -> None:
        """Add a Problem made for a document path, placed behind the block uses of `where`."""
        # inside a block the same mistake is one problem, reported at the first use
        key = (
            (problem.path, problem.message)
            if where.uses
            else ((), problem.path, problem.message)
        )
        if key in self._seen:
            return
        self._seen.add(key)
        if not where.uses:
            self.problems.append(problem)
            return
        (first, first_line), *rest = where.uses
        inner = "".join(f" ({format_path(p)}, line {self.line_of(p)})" for p, _ in rest)
        line = f", line {problem.line}" if problem.line is not None else ""
        self.problems.append(
            Problem(
                f"{format_path(first)}{inner} ({problem.path}{line})",
                problem.message,
                first_line,
            )
        )

    # -- modules ----------------------------------------------------------------------------------
    def model(self, raw_layers: list, name: str) -> tuple[Module, list]:
        """Return the model's module and its top-level entries (layers and Composites)."""
        where = Where(("layers",))
        body = self.body(raw_layers, where, None)
        module = Module("model", name, body, where)
        self.name_children(module)
        return module, [self.entry_of(op) for op in body]

    def body(self, raw_layers: Any, where: Where, bindings: Bindings) -> list[Op]:
        """Return the ops of a layer list (a `$param` there is a Slot)."""
        if isinstance(raw_layers, str) and is_reference(raw_layers):
            slot = self.slot(raw_layers, where, bindings)
            return [] if slot is None else [slot]
        if not isinstance(raw_layers, list):
            self.report(where, f"must be a list of layers, got {_describe(raw_layers)}")
            return []
        ops = []
        for index, raw in enumerate(raw_layers):
            op = self.entry(raw, where.at(index), bindings)
            if op is not None:
                ops.append(op)
        return ops

    def entry(self, raw: Any, where: Where, bindings: Bindings) -> Op | None:
        """Return the op of one entry of a layer list, or a placeholder after a problem."""
        found: list[Problem] = []
        normal = normalize_layer(
            raw, 0, found, self.line_of, path=where.path, kinds=self.kinds
        )
        for problem in found:
            self.report_located(where, problem)
        line = self.line_of(where.path)
        if normal.data is None:
            return self.broken(where, line)
        if normal.type in CONTAINERS:
            op = self.container(normal, where, bindings, line)
        elif normal.type in self.blocks:
            op = self.block_use(normal, where, bindings, line)
        else:
            return self.leaf(normal, where, bindings, line)
        op.raw = {k: v for k, v in normal.data.items() if k not in ("type", "name")}
        return op

    def broken(self, where: Where, line: int | None) -> Leaf:
        """Return a placeholder for an entry with a problem: shapes are checked up to it."""
        leaf = Leaf(Identity.model_construct(name=None), where, line)
        leaf.broken = True  # type: ignore[attr-defined]
        return leaf

    # -- layers -----------------------------------------------------------------------------------
    def leaf(
        self, normal: NormalizedLayer, where: Where, bindings: Bindings, line
    ) -> Leaf:
        """Return a validated layer, `$` values replaced."""
        data: dict[str, Any] = {}
        exprs: dict[str, Expr] = {}
        failed = False
        for arg, value in normal.data.items():
            at = Where(normal.arg_paths.get(arg, normal.path + (arg,)), where.uses)
            if arg in STRUCTURAL and is_reference(value):
                self.report(at, f"`{arg}` cannot come from a parameter")
                failed = True
                continue
            value, expr = self.substitute(value, at, bindings)
            if value is _FAILED:
                failed = True
                continue
            data[arg] = value
            if expr is not None:
                exprs[arg] = expr
        cls = REGISTRY[normal.type]
        if (
            failed
        ):  # the problem is reported; a validation without the value would add a second
            return self.broken(where, line)
        try:
            layer = cls.model_validate(data)
        except ValidationError as exc:
            for problem in _layer_problems(exc, normal, self.line_of):
                self.report_located(where, problem)
            return self.broken(where, line)
        if failed:
            return self.broken(where, line)
        return Leaf(layer, where, line, exprs)

    def substitute(
        self, value: Any, where: Where, bindings: Bindings
    ) -> tuple[Any, Expr | None]:
        """Return (value with `$` replaced, its expression or None when nothing was replaced)."""
        if isinstance(value, list):
            pairs = [
                self.substitute(item, where.at(i), bindings)
                for i, item in enumerate(value)
            ]
            if any(v is _FAILED for v, _ in pairs):
                return _FAILED, None
            values = [v for v, _ in pairs]
            if all(e is None for _, e in pairs):
                return values, None
            return values, Items(
                tuple(e if e is not None else Const(v) for v, e in pairs)
            )
        if not is_reference(value):
            return value, None
        if bindings is None:
            self.report(
                where,
                f"{value!r}: `$` values are parameters, allowed only inside a "
                "block's layers (blocks.NAME.layers); here write the value itself",
            )
            return _FAILED, None
        name = whole_reference(value)
        if name is not None:
            bound = bindings.get(name)
            if bound is None or bound.is_list:
                return _FAILED, None  # reported with the definition
            return bound.value, Name(name)
        try:
            expr = parse_expression(value)
            values = {n: bindings[n].value for n in expr.names()}
        except (ExpressionError, KeyError):
            return _FAILED, None  # reported with the definition
        try:
            return evaluate(expr, values), expr
        except ExpressionError as exc:
            shown = ", ".join(f"{n}={v!r}" for n, v in sorted(values.items()))
            self.report(where, f"{value!r} cannot be computed with {shown}: {exc}")
            return _FAILED, None

    # -- containers -------------------------------------------------------------------------------
    def container(
        self, normal: NormalizedLayer, where: Where, bindings: Bindings, line
    ) -> Op | None:
        kind = CONTAINERS[normal.type]
        data = normal.data

        def at(arg: str) -> Where:
            return Where(normal.arg_paths.get(arg, normal.path + (arg,)), where.uses)

        allowed = ("type", *kind.arguments, *(("name",) if kind.is_module else ()))
        for arg in data:
            if arg not in allowed:
                takes = ", ".join(a for a in allowed if a != "type")
                hint = (
                    " (residual and branches are wiring: their layers belong to the module "
                    "around them)"
                    if arg == "name"
                    else did_you_mean(str(arg), allowed)
                )
                self.report(
                    at(arg),
                    f"unknown argument '{arg}' for {kind.type}{hint}; it takes: {takes}",
                )
        required = {
            "sequential": ("layers",),
            "residual": ("layers",),
            "branches": ("paths",),
            "repeat": ("times", "layers"),
        }[kind.type]
        missing = [a for a in required if a not in data]
        for arg in missing:
            self.report(where, f"{kind.type} needs `{arg}`")
        if missing:
            return self.broken(where, line)
        name = self.written_name(data, at("name"))
        if kind.type == "sequential":
            module = Module(
                "group",
                name or "",
                self.body(data["layers"], at("layers"), bindings),
                where,
                line,
                written_name=name is not None,
            )
            self.name_children(module)
            return module
        if kind.type == "residual":
            shortcut = data.get("shortcut")
            return Residual(
                self.body(data["layers"], at("layers"), bindings),
                (
                    []
                    if shortcut is None
                    else self.body(shortcut, at("shortcut"), bindings)
                ),
                where,
            )
        if kind.type == "branches":
            return self.branches(data, at, where, bindings, line)
        return self.repeat(data, at, where, bindings, line, name)

    def branches(self, data: dict, at, where: Where, bindings: Bindings, line) -> Op:
        merge = data.get("merge", "concat")
        dim = data.get("dim", 1)
        ok = True
        if merge not in MERGES:
            self.report(
                at("merge"),
                f"must be one of {', '.join(MERGES)}, got {merge!r}"
                f"{did_you_mean(merge, MERGES)}",
            )
            ok = False
        if type(dim) is not int:
            self.report(
                at("dim"),
                f"must be an integer (a dimension, 1 = channels), got {dim!r}",
            )
            ok = False
        paths = data["paths"]
        if not isinstance(paths, list) or not paths:
            self.report(
                at("paths"),
                "must be a non-empty list of paths, each a list of layers "
                "([] is the identity)",
            )
            return self.broken(where, line)
        ops = [
            self.body(path, at("paths").at(i), bindings) for i, path in enumerate(paths)
        ]
        if not ok:
            return self.broken(where, line)
        return Branches(merge, dim, ops, where)

    def repeat(
        self, data: dict, at, where: Where, bindings: Bindings, line, name
    ) -> Op:
        times, times_expr = self.substitute(data["times"], at("times"), bindings)
        if times is _FAILED:
            return self.broken(where, line)
        if type(times) is not int or times < 0:
            self.report(
                at("times"),
                f"must be a whole number of copies (0 or more), got {times!r}",
            )
            return self.broken(where, line)
        raw = data["layers"]
        if not isinstance(raw, list):
            self.report(
                at("layers"),
                "must be a list of layers (a repeat's body is written in it)",
            )
            return self.broken(where, line)
        copies = []
        for index in range(times):
            body = self.body(raw, at("layers"), bindings)
            if len(body) == 1 and (
                isinstance(body[0], Leaf)
                or (isinstance(body[0], Module) and body[0].kind == "block")
            ):
                copies.append(
                    body[0]
                )  # a copy of one layer or one block use is that module itself
            else:
                copy = Module("copy", str(index), body, at("layers"), line)
                self.name_children(copy)
                copies.append(copy)
        return Repeat(
            name or "",
            times,
            times_expr,
            copies,
            where,
            line,
            written_name=name is not None,
        )

    def slot(self, text: str, where: Where, bindings: Bindings) -> Slot | None:
        """Return the Slot of a `$param` written where a layer list goes."""
        if bindings is None:
            self.report(
                where,
                f"{text!r}: `$` values are parameters, allowed only inside a block's "
                "layers (blocks.NAME.layers)",
            )
            return None
        name = whole_reference(text)
        bound = bindings.get(name) if name else None
        if bound is None or not bound.is_list:
            return None  # reported with the definition
        if not bound.value:
            return Slot(name, None)
        module = Module(
            "param",
            name,
            self.body(bound.value, bound.where, bound.bindings),
            bound.where,
        )
        self.name_children(module)
        return Slot(name, module)

    # -- blocks -----------------------------------------------------------------------------------
    def block_use(
        self, normal: NormalizedLayer, where: Where, bindings: Bindings, line
    ) -> Op:
        block = self.blocks[normal.type]
        data = normal.data
        use_where = Where(where.path + (normal.type,), where.uses)
        params = list(block.params)
        ok = block.ok
        for arg in data:
            if arg not in ("type", "name", *params):
                takes = ", ".join(params) if params else "no parameters"
                self.report(
                    Where(normal.arg_paths.get(arg, normal.path + (arg,)), where.uses),
                    f"unknown parameter '{arg}' for {block.name}{did_you_mean(str(arg), params)}; "
                    f"it takes: {takes}",
                )
                ok = False
        bound: dict[str, Bound] = {}
        for param, default in block.params.items():
            at = Where(normal.arg_paths.get(param, normal.path + (param,)), where.uses)
            if param not in data:
                if default == REQUIRED:
                    example = f"`- {block.name}: {{{param}: ...}}`"
                    self.report(
                        use_where,
                        f"{block.name} needs its parameter '{param}'; write {example}",
                    )
                    ok = False
                elif param in block.list_params:
                    bound[param] = Bound(
                        default,
                        None,
                        True,
                        Where(("blocks", block.name, "params", param), where.uses),
                        None,
                    )
                else:
                    bound[param] = Bound(default, Const(default))
                continue
            value = data[param]
            if param in block.list_params:
                ref = whole_reference(value) if isinstance(value, str) else None
                outer = bindings.get(ref) if (ref and bindings) else None
                if outer is not None and outer.is_list:
                    bound[param] = Bound(
                        outer.value, Name(ref), True, outer.where, outer.bindings, ref
                    )
                elif isinstance(value, list):
                    bound[param] = Bound(value, None, True, at, bindings)
                else:
                    self.report(
                        at,
                        f"'{param}' of {block.name} is a layer list ([] for none), got "
                        f"{_describe(value)}",
                    )
                    ok = False
                continue
            value, expr = self.substitute(value, at, bindings)
            if value is _FAILED:
                ok = False
                continue
            bound[param] = Bound(value, expr if expr is not None else Const(value))
        name = self.written_name(
            data, Where(normal.arg_paths.get("name", normal.path), where.uses)
        )
        if not ok:
            return self.broken(where, line)
        inner = Where(
            ("blocks", block.name, "layers"), where.uses + ((use_where.path, line),)
        )
        module = Module(
            "block",
            name or "",
            self.body(block.layers, inner, bound),
            use_where,
            line,
            block=block.name,
            args=bound,
            written_name=name is not None,
        )
        self.name_children(module)
        return module

    # -- names ------------------------------------------------------------------------------------
    def written_name(self, data: dict, where: Where) -> str | None:
        name = data.get("name")
        if name is None:
            return None
        try:
            return check_identifier(name)
        except ValueError as exc:
            self.report(where, str(exc))
            return None

    def name_children(self, module: Module) -> None:
        """Give every child of a module its name: written ones checked, automatic ones counted."""
        kids = list(children(module.body))
        written: dict[str, Any] = {}
        for kid in kids:
            name = _written(kid)
            if name is None:
                continue
            if name.startswith("_"):
                self.report(
                    _where_of(kid),
                    f"name {name!r} starts with '_', which torch keeps for "
                    "its internals",
                    _name_arg(kid),
                )
            elif name in RESERVED_ATTRIBUTES:
                self.report(
                    _where_of(kid),
                    f"name {name!r} is an attribute of torch.nn.Module; pick "
                    f"another, e.g. {name}_layer",
                    _name_arg(kid),
                )
            if name in written:
                other = written[name]
                what = "the parameter" if isinstance(other, Slot) else "the name"
                self.report(
                    _where_of(kid),
                    f"name {name!r} is already {what} of "
                    f"{format_path(_where_of(other).path)}; names must be unique in a module, "
                    "so give one of them another name",
                    _name_arg(kid),
                )
            else:
                written[name] = kid
        counters: dict[str, int] = {}
        used = set(written)
        for kid in kids:
            prefix = _prefix(kid)
            if prefix is None:
                continue
            counters[prefix] = counters.get(prefix, 0) + 1
            if _written(kid) is not None:
                continue
            name = numbered(prefix, counters[prefix])
            while name in used:
                counters[prefix] += 1
                name = numbered(prefix, counters[prefix])
            used.add(name)
            kid.set_name(name)

    # -- the entries of Spec.layers ---------------------------------------------------------------
    def entry_of(self, op: Op) -> LayerSpec | Composite:
        """Return what `Spec.layers` holds for a top-level op."""
        if isinstance(op, Leaf):
            return op.layer
        raw = _raw_at(op)
        name = getattr(op, "name", None) or None
        if isinstance(op, (Residual, Branches)):
            name = None
        return Composite(type=_type_of(op), name=name, arguments=raw)


def _written(kid) -> str | None:
    if isinstance(kid, Slot):
        return kid.param
    if isinstance(kid, Leaf):
        return kid.layer.name
    return kid.name if kid.written_name else None


def _prefix(kid) -> str | None:
    if isinstance(kid, Leaf):
        return getattr(kid.layer, "prefix", None)
    if isinstance(kid, Module):
        return snake_case(kid.block) if kid.kind == "block" else "group"
    if isinstance(kid, Repeat):
        return "repeat"
    return None


def _where_of(kid) -> Where:
    return kid.module.where if isinstance(kid, Slot) else kid.where


def _name_arg(kid) -> tuple:
    if isinstance(kid, Leaf):
        return (kid.layer.type_name, "name") if kid.where.path[-1:] != ("name",) else ()
    return ()


def _type_of(op) -> str:
    if isinstance(op, Module):
        return op.block if op.kind == "block" else "sequential"
    return {Repeat: "repeat", Residual: "residual", Branches: "branches"}[type(op)]


def _raw_at(op) -> dict:
    raw = getattr(op, "raw", None)
    return dict(raw) if isinstance(raw, dict) else {}


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value)


def _layer_problems(
    exc: ValidationError, normal: NormalizedLayer, line_of
) -> list[Problem]:
    """Return the Problems of one layer's validation error, with lines of the arguments at fault."""

    def line_at(loc: tuple) -> int | None:
        arg = loc[1] if len(loc) > 1 else None
        if arg in normal.arg_paths:
            return line_of(normal.arg_paths[arg] + tuple(loc[2:]))
        return line_of(normal.path)

    hint = {
        "choices": [a for a in REGISTRY[normal.type].model_fields if a != "type"],
        "layer": normal.type,
        "primary": REGISTRY[normal.type].primary,
    }

    class _Lines:  # problems_from_validation reads `doc.line_of` only through line_of here
        data = None

        @staticmethod
        def line_of(path):
            return line_of(path)

    return problems_from_validation(
        exc, normal.path, _Lines, line_of=line_at, layer_hint=hint, tag=normal.type
    )


# -- counting before expanding --------------------------------------------------------------------


class LayerCounter:
    """Counts the layers a list expands to (every layer, container and block use counts one)."""

    def __init__(self, blocks: dict[str, BlockDef]):
        self.blocks = blocks
        self.kinds = entry_kinds(blocks)
        self._memo: dict = {}

    def count(self, raw_layers: Any, values: dict[str, Any] | None = None) -> int:
        if not isinstance(raw_layers, list):
            return 0
        return sum(self.count_entry(raw, values) for raw in raw_layers)

    def count_entry(self, raw: Any, values: dict[str, Any] | None) -> int:
        normal = normalize_layer(raw, 0, [], lambda p: None, path=(), kinds=self.kinds)
        if normal.data is None:
            return 1
        data = normal.data
        kind = normal.type
        if kind == "repeat":
            times = _quiet_value(data.get("times"), values)
            times = times if type(times) is int and times > 0 else 0
            return 1 + times * self.count(data.get("layers"), values)
        if kind in ("sequential", "residual"):
            return (
                1
                + self.count(data.get("layers"), values)
                + self.count(data.get("shortcut"), values)
            )
        if kind == "branches":
            paths = data.get("paths")
            return (
                1 + sum(self.count(p, values) for p in paths)
                if isinstance(paths, list)
                else 1
            )
        if kind in self.blocks:
            block = self.blocks[kind]
            if not block.ok:
                return 1
            inner: dict[str, Any] = {}
            extra = 0
            for param, default in block.params.items():
                value = data.get(param, default)
                if param in block.list_params:
                    extra += self.count(value, values)
                else:
                    inner[param] = _quiet_value(value, values)
            key = (kind, repr(sorted(inner.items())))
            if key not in self._memo:
                self._memo[key] = self.count(block.layers, inner)
            return 1 + extra + self._memo[key]
        return 1


def _quiet_value(value: Any, values: dict[str, Any] | None) -> Any:
    """Return a `$` value computed from `values`, or None when it cannot be (reported elsewhere)."""
    if not is_reference(value):
        return value
    if values is None:
        return None
    name = whole_reference(value)
    if name is not None:
        return values.get(name)
    try:
        expr = parse_expression(value)
        return evaluate(expr, {n: values[n] for n in expr.names()})
    except (ExpressionError, KeyError):
        return None
