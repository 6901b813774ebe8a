"""The classes of a generated module, computed from the model tree before any template runs.

The model is one class; each block is one class whose constructor takes the block's parameters
and the input sizes its layers need (`BasicBlock(in_channels, channels, stride=1,
downsample=None)`); a group or a repeat's copy that is not a plain chain is a small class of its
own; a chain is an `nn.Sequential`. Inside a block's class, sizes are written as expressions over
its constructor arguments (`nn.Conv2d(width, width * 4, 1)`); where a size cannot be expressed
so (a `linear` after `flatten` reads the spatial size), the class takes it as an argument named
after the layer (`fc1_in_features`). Each use of a block renders the class again and the texts
must agree, so the class is right for every use; when they cannot (a rare wiring whose sizes
depend on the use), the block is written as one class per distinct use instead.

Every piece of text here is built from checked identifiers (naming.py), literals of checked
values (pyliteral.py) and expressions over those; nothing from a spec is copied in as code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import format_path
from .expressions import Const, Expr, evaluate
from .layers import REGISTRY
from .naming import CodegenError, attribute_name, checked_identifier, class_name
from .pyliteral import all_words, allowed_words, python_literal
from .reserved import is_reserved_class_name
from .shapes import input_symbol
from .tree import Bound, Branches, Leaf, Module, Repeat, Residual, Slot, children


class Unsupported(Exception):
    """A block's class cannot serve every use with one text (it is written per use instead)."""


class Restart(Exception):
    """A block turned out to need one class per use: write the module again knowing it."""

    def __init__(self, block: str):
        self.block = block
        super().__init__(block)


@dataclass
class ClassCode:
    """One nn.Module class as the class template writes it."""

    name: str
    docstring: str
    parameters: list[str]  # `in_channels: int`, `stride: int = 1`, `*`
    init_lines: list[str]
    forward_docstring: str
    forward_lines: list[str]


@dataclass
class Scope:
    """The names a class under construction can read, and what it had to take as arguments."""

    symbolic: bool
    values: dict[str, Any] = field(
        default_factory=dict
    )  # each name's value at this use
    fallbacks: dict[str, Any] = field(
        default_factory=dict
    )  # extra size arguments, in order
    used: set[str] = field(default_factory=set)
    locals: set[str] = field(default_factory=set)

    def take(self, wanted: str, value: Any) -> str:
        """Return a new size argument of the class (for a size no expression gives)."""
        name = wanted
        while name in self.values or name in self.fallbacks or name in self.locals:
            name += "_"
        self.fallbacks[name] = value
        self.used.add(name)
        return name

    def local(self, wanted: str) -> str:
        """Return a local variable name of `__init__` that no argument uses."""
        name = wanted
        while name in self.values or name in self.fallbacks or name in self.locals:
            name += "_"
        self.locals.add(name)
        return name


class ClassWriter:
    """Collects the classes of one generated module: helpers and blocks first, the model last."""

    def __init__(
        self, model_name: str, blocks: dict, per_use: frozenset[str] = frozenset()
    ):
        self.model_name = class_name(model_name)
        self.blocks = blocks
        self.classes: list[ClassCode] = []
        self._by_text: dict[str, str] = {}
        self._names: set[str] = {self.model_name, *blocks}
        self._block_texts: dict[str, str] = {}  # block -> the text of its one class
        self._per_use = set(per_use)  # blocks written as one class per use
        self.uses_ordered_dict = False

    # -- classes ----------------------------------------------------------------------------------
    def model_class(
        self, model: Module, docstring: str, forward_docstring: str
    ) -> ClassCode:
        scope = Scope(symbolic=False)
        init = self.init_lines(model, scope)
        code = ClassCode(
            self.model_name,
            docstring,
            [],
            init,
            forward_docstring,
            ForwardWriter(comments=True).body(model.body),
        )
        self.classes.append(code)
        return code

    def block_call(self, module: Module, scope: Scope) -> str:
        """Return the constructor call of a block use, in the caller's scope."""
        block = self.blocks[module.block]
        if module.block not in self._per_use:
            try:
                code, inner = self.render_block(module, symbolic=True)
                text = _text(code)
                known = self._block_texts.get(module.block)
                if known is not None and known != text:
                    raise Unsupported
                if known is None:
                    self._block_texts[module.block] = text
                    self.classes.append(code)
                return self._call(code.name, module, block, inner, scope)
            except Unsupported:
                raise Restart(module.block) from None
        code, _ = self.render_block(module, symbolic=False)
        name = self._register(code, module.block)
        return f"{name}()"

    def render_block(self, module: Module, symbolic: bool) -> tuple[ClassCode, Scope]:
        block = self.blocks[module.block]
        symbol = input_symbol(module, module.info.input_shape)
        values = {
            symbol: module.info.input_shape[0] if module.info.input_shape else None
        }
        for param, bound in module.args.items():
            values[param] = bound.value
        scope = Scope(symbolic=symbolic, values=values)
        init = self.init_lines(module, scope)
        parameters = []
        if symbolic:
            if symbol in scope.used:
                parameters.append(f"{checked_identifier(symbol, 'argument')}: int")
            parameters += [
                f"{checked_identifier(n, 'argument')}: int" for n in scope.fallbacks
            ]
            keyword_only = False
            for position, (param, default) in enumerate(block.params.items()):
                if param not in scope.used:
                    continue
                later_required = any(
                    d == "required" and p in scope.used
                    for p, d in list(block.params.items())[position + 1 :]
                )
                if default != "required" and later_required and not keyword_only:
                    parameters.append("*")
                    keyword_only = True
                parameters.append(_parameter(param, default, module.args[param], block))
        docstring = _docstring(block.description or f"The {module.block} block.")
        name = class_name(module.block)
        forward = ForwardWriter(comments=False).body(module.body)
        return (
            ClassCode(
                name,
                docstring,
                parameters,
                init,
                "Return the block's output for a batch of inputs.",
                forward,
            ),
            scope,
        )

    def _call(
        self, name: str, module: Module, block, inner: Scope, scope: Scope
    ) -> str:
        positional: list[str] = []
        keywords: list[str] = []
        symbol = input_symbol(module, module.info.input_shape)
        if symbol in inner.used:
            positional.append(
                self.size_text(
                    module.info.input_exprs[0],
                    module.info.input_shape[0],
                    scope,
                    f"{module.name}_{symbol}",
                )
            )
        for fallback, value in inner.fallbacks.items():
            positional.append(
                self.size_text(None, value, scope, f"{module.name}_{fallback}")
            )
        keyword_mode = False
        for param, default in block.params.items():
            if param not in inner.used:
                continue
            bound = module.args[param]
            if bound.is_list:
                text = self.list_argument(module, param, bound, scope)
                if text is None:
                    keyword_mode = True
                    continue
            else:
                if not keyword_mode and default != "required":
                    keyword_mode = True
                if keyword_mode and _is_default(bound, default, scope):
                    continue
                text = self.value_text(
                    bound.expr, bound.value, scope, words=all_words()
                )
            if keyword_mode or default != "required":
                keyword_mode = True
                keywords.append(f"{param}={text}")
            else:
                positional.append(text)
        return f"{name}({', '.join(positional + keywords)})"

    def list_argument(
        self, module: Module, param: str, bound: Bound, scope: Scope
    ) -> str | None:
        """Return the module a block use passes for a layer-list parameter (None: the default [])."""
        if bound.passed_from is not None:
            scope.used.add(bound.passed_from)
            return checked_identifier(bound.passed_from, "parameter")
        slot = _find_slot(module, param)
        if slot is None or slot.module is None:
            return None
        return self.module_constructor(slot.module, scope)

    def helper_class(self, module: Module, scope: Scope, base: str) -> str:
        """Return the call of a small class for a module that is not a chain (not a block)."""
        inner = Scope(symbolic=scope.symbolic, values=dict(scope.values))
        init = self.init_lines(module, inner)
        params = sorted(n for n in inner.used if n in scope.values)
        fallbacks = list(inner.fallbacks)
        code = ClassCode(
            "",
            _docstring(f"The `{module.name}` part of {self.model_name}."),
            [
                f"{checked_identifier(n, 'argument')}: {_hint(scope.values.get(n))}"
                for n in params
            ]
            + [f"{n}: int" for n in fallbacks],
            init,
            "Return the output for a batch of inputs.",
            ForwardWriter(comments=False).body(module.body),
        )
        name = self._register(code, base)
        args = [n for n in params]
        for n in params:
            scope.used.add(n)
        args += [
            self.size_text(None, v, scope, f"{module.name}_{n}")
            for n, v in inner.fallbacks.items()
        ]
        return f"{name}({', '.join(args)})"

    def _register(self, code: ClassCode, base: str) -> str:
        """Return the name of a class with this text, adding it under a free name if it is new."""
        key = _text(code)
        if key in self._by_text:
            return self._by_text[key]
        name = _camel(base)
        counter = 1
        candidate = name
        while (
            candidate in self._names - ({base} if base in self.blocks else set())
            or is_reserved_class_name(candidate)
            or any(c.name == candidate for c in self.classes)
        ):
            counter += 1
            candidate = f"{name}{counter}"
        code.name = class_name(candidate)
        self._names.add(candidate)
        self._by_text[key] = candidate
        self.classes.append(code)
        return candidate

    # -- constructors -----------------------------------------------------------------------------
    def init_lines(self, module: Module, scope: Scope) -> list[str]:
        lines: list[str] = []
        kids = list(children(module.body, empty_slots=True))
        # a block's own layer-list modules come from its caller; a per-use class builds them first
        prebuilt: dict[str, str] = {}
        if module.kind == "block" and not scope.symbolic:
            for kid in kids:
                if isinstance(kid, Slot) and kid.module is not None:
                    local = scope.local(kid.param)
                    lines.append(
                        f"{local} = {self.module_constructor(kid.module, scope)}"
                    )
                    prebuilt[kid.param] = local
        for kid in kids:
            name = attribute_name(kid.name)
            if isinstance(kid, Slot):
                if scope.symbolic:
                    value = checked_identifier(kid.param, "parameter")
                    scope.used.add(kid.param)
                else:
                    value = prebuilt.get(kid.param, "None")
                lines.append(f"self.{name} = {value}")
            elif (
                isinstance(kid, Repeat)
                and kid.info.loop_var is not None
                and scope.symbolic
            ):
                lines += self.loop_lines(kid, scope, f"self.{name}")
            elif isinstance(kid, Leaf) and kid.layer.tensor_op:
                continue  # a tensor operation is a line of forward, not a module
            else:
                lines.append(f"self.{name} = {self.constructor(kid, scope)}")
        return lines

    def constructor(self, kid, scope: Scope) -> str:
        if isinstance(kid, Leaf):
            return self.layer_constructor(kid, scope)
        if isinstance(kid, Repeat):
            for copy in kid.copies:
                if isinstance(copy, Leaf) and not copy.layer.plain_call():
                    raise CodegenError(
                        f"{format_path(copy.where.path)}: a repeat whose copy is one "
                        f"{copy.layer.type_name} cannot be an nn.Sequential of its copies (its "
                        "forward is not `x = layer(x)`); put the layer in a `sequential` inside "
                        "the repeat"
                    )
            return f"nn.Sequential({', '.join(self.constructor(c, scope) for c in kid.copies)})"
        if kid.kind == "block":
            return self.block_call(kid, scope)
        return self.module_constructor(kid, scope)

    def module_constructor(self, module: Module, scope: Scope) -> str:
        if not module.is_chain or not all(
            kid.layer.plain_call()
            for kid in children(module.body)
            if isinstance(kid, Leaf)
        ):
            base = module.name if module.kind != "copy" else f"{module.name}_copy"
            return self.helper_class(module, scope, base)
        self.uses_ordered_dict = True
        items = ", ".join(
            f"({attribute_name(kid.name)!r}, {self.constructor(kid, scope)})"
            for kid in children(module.body)
        )
        return f"nn.Sequential(OrderedDict([{items}]))"

    def loop_lines(self, repeat: Repeat, scope: Scope, target: str) -> list[str]:
        """Return the loop that builds a repeat whose `times` is a parameter."""
        variable = repeat.info.loop_var
        first = repeat.copies[0] if repeat.copies else None
        copies = scope.local("copies")
        scope.locals.add(variable)
        times = repeat.times_expr.render()
        scope.used |= repeat.times_expr.names()
        if first is None:
            return [f"{target} = nn.Sequential()"]  # noqa - times is 0 in this use
        texts = {self.constructor(c, scope) for c in repeat.copies}
        if len(texts) != 1:
            raise Unsupported
        update = repeat.info.update_expr
        if update is None:
            raise Unsupported
        start = self.size_text(
            repeat.info.input_exprs[0],
            repeat.info.input_shape[0],
            scope,
            f"{repeat.name}_in_channels",
        )
        lines = [
            f"{copies} = []",
            f"{variable} = {start}",
            f"for _ in range({times}):",
            f"    {copies}.append({texts.pop()})",
        ]
        if update.render() != variable:
            lines.append(f"    {variable} = {update.render()}")
            scope.used |= update.names() - {variable}
        lines.append(f"{target} = nn.Sequential(*{copies})")
        return lines

    def layer_constructor(self, leaf: Leaf, scope: Scope) -> str:
        layer_class = REGISTRY[leaf.layer.type_name]
        torch_class = checked_identifier(layer_class.torch_class, "torch.nn class")
        positional, keywords = [], []
        fields = layer_class.model_fields
        leading = True
        for arg, value in leaf.layer.constructor_kwargs(leaf.kwargs).items():
            checked_identifier(arg, "argument name")
            if (
                arg in layer_class.fixed
            ):  # batch_first=True: always said, never written in a spec
                keywords.append(f"{arg}={python_literal(value, frozenset())}")
                leading = False
                continue
            expr = leaf.kwarg_exprs.get(arg)
            required = arg in layer_class.inferred or fields[arg].is_required()
            leading = leading and required
            written = (
                expr is not None and not isinstance(expr, Const) and scope.symbolic
            )
            if (
                not leading
                and not written
                and arg not in layer_class.always_written
                and _same(value, fields[arg].default)
            ):
                continue
            text = self.value_text(
                expr,
                value,
                scope,
                allowed_words(layer_class, arg),
                f"{leaf.name}_{arg}",
            )
            (positional if leading else keywords).append(
                text if leading else f"{arg}={text}"
            )
        return f"nn.{torch_class}({', '.join(positional + keywords)})"

    # -- values -----------------------------------------------------------------------------------
    def value_text(
        self,
        expr: Expr | None,
        value: Any,
        scope: Scope,
        words=frozenset(),
        fallback: str | None = None,
    ) -> str:
        """Return an argument's source: a literal in the model, an expression inside a block."""
        if not scope.symbolic or isinstance(expr, Const):
            return python_literal(_as_tuple(value), words)
        if expr is None:
            if fallback is None or type(value) is not int:
                raise Unsupported
            return scope.take(fallback, value)
        names = expr.names()
        unknown = names - set(scope.values) - scope.locals
        if unknown:
            raise Unsupported
        if not scope.locals & names:
            try:
                if _as_tuple(evaluate(expr, scope.values)) != _as_tuple(value):
                    raise Unsupported
            except (
                Exception
            ) as exc:  # a value that does not compute here: write it per use
                raise Unsupported from exc
        scope.used |= names
        return expr.render()

    def size_text(
        self, expr: Expr | None, value: Any, scope: Scope, fallback: str
    ) -> str:
        """Return a size the caller passes to a class: a literal, an expression, or an argument."""
        return self.value_text(expr, value, scope, fallback=fallback)


def _find_slot(module: Module, param: str) -> Slot | None:
    stack = list(module.body)
    while stack:
        op = stack.pop()
        if isinstance(op, Slot) and op.param == param:
            return op
        if isinstance(op, Residual):
            stack.extend(op.layers + op.shortcut)
        elif isinstance(op, Branches):
            for path in op.paths:
                stack.extend(path)
        elif isinstance(op, Module) and op.kind == "block":
            for inner_param, bound in op.args.items():
                if bound.passed_from == param:
                    found = _find_slot(op, inner_param)
                    if found is not None:
                        return found
    return None


def _parameter(param: str, default: Any, bound: Bound, block) -> str:
    name = checked_identifier(param, "parameter")
    if bound.is_list:
        return f"{name}: nn.Module | None = None"
    hint = _hint(bound.value if default == "required" else default)
    if default == "required":
        return f"{name}: {hint}"
    return f"{name}: {hint} = {python_literal(_as_tuple(default), all_words())}"


def _hint(value: Any) -> str:
    if type(value) is bool:
        return "bool"
    if type(value) is int:
        return "int"
    if type(value) is float:
        return "float"
    if type(value) is str:
        return "str"
    if isinstance(value, (list, tuple)):
        return "tuple[int, ...]"
    return "int"


def _is_default(bound: Bound, default: Any, scope: Scope) -> bool:
    if default == "required":
        return False
    if scope.symbolic and not isinstance(bound.expr, Const):
        return False
    return _same(bound.value, default)


def _same(value: Any, default: Any) -> bool:
    return type(_as_tuple(value)) is type(_as_tuple(default)) and _as_tuple(
        value
    ) == _as_tuple(default)


def _as_tuple(value: Any) -> Any:
    return (
        tuple(_as_tuple(v) for v in value)
        if isinstance(value, (list, tuple))
        else value
    )


def _camel(name: str) -> str:
    parts = [p for p in name.replace("-", "_").split("_") if p]
    text = "".join(p[:1].upper() + p[1:] for p in parts) or "Part"
    return text if text[0].isalpha() else f"Part{text}"


def _text(code: ClassCode) -> str:
    return "\n".join(
        [code.docstring, *code.parameters, *code.init_lines, *code.forward_lines]
    )


def _docstring(text: str) -> str:
    # imported here: compiler.codegen imports this module, so a top-level import is a cycle
    from .codegen import docstring_text

    return docstring_text(text)


class ForwardWriter:
    """Writes a forward body: one line per child call, residuals and branches inline."""

    def __init__(self, comments: bool):
        self.comments = comments
        self.lines: list[str] = []
        self._counters: dict[str, int] = {}

    def body(self, ops: list) -> list[str]:
        self.chain(ops, "x", "x")
        return self.lines

    def temp(self, base: str) -> str:
        self._counters[base] = self._counters.get(base, 0) + 1
        count = self._counters[base]
        if base == "identity":
            return "identity" if count == 1 else f"identity{count}"
        return f"{base}{count}"

    def emit(self, line: str, shape: tuple | None) -> None:
        if self.comments and shape is not None:
            line += f"  # {_batched(shape)}"
        self.lines.append(line)

    def chain(self, ops: list, source: str, target: str) -> None:
        if not ops and source != target:
            self.lines.append(f"{target} = {source}")
        current = source
        for op in ops:
            self.op(op, current, target)
            current = target

    def op(self, op, source: str, target: str) -> None:
        if isinstance(op, Slot):
            name = attribute_name(op.param)
            self.emit(
                f"{target} = {source} if self.{name} is None else self.{name}({source})",
                op.info.output_shape if self.comments else None,
            )
        elif isinstance(op, Residual):
            identity = self.temp("identity")
            self.chain(op.shortcut, source, identity)
            self.chain(op.layers, source, target)
            self.emit(f"{target} = {target} + {identity}", op.info.output_shape)
        elif isinstance(op, Branches):
            outputs = []
            for path in op.paths:
                if not path:
                    outputs.append(source)
                    continue
                branch = self.temp("branch")
                self.chain(path, source, branch)
                outputs.append(branch)
            if op.merge == "concat":
                text = f"torch.cat([{', '.join(outputs)}], dim={int(op.dim)})"
            else:
                text = (" + " if op.merge == "add" else " * ").join(outputs)
            self.emit(f"{target} = {text}", op.info.output_shape)
        elif isinstance(op, Leaf):
            call = f"self.{attribute_name(op.name)}"
            *lines, last = op.layer.forward_lines(call, source, target, op.kwargs)
            self.lines.extend(lines)
            self.emit(last, op.info.output_shape)
        else:
            name = attribute_name(op.name)
            self.emit(f"{target} = self.{name}({source})", op.info.output_shape)


def _batched(shape: tuple) -> str:
    return "[" + ", ".join(["N", *(str(int(d)) for d in shape)]) + "]"


__all__ = ["ClassCode", "ClassWriter", "CodegenError", "ForwardWriter"]
