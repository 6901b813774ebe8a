"""Integer expressions over block parameters: `$width`, `"$width * 4"`, `"$channels // 2 + 1"`.

An expression is parsed with Python's `ast` in eval mode and accepted only when every node is an
integer literal, a parameter name, `+ - * //` or a unary minus; nothing else is ever evaluated.
The same small tree serves the code generator: it renders an expression over the constructor
arguments of a generated class (`width * 4`), and substitutes one class's names by the
expressions its caller passes, so shapes stay symbolic through nested blocks.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any, Mapping

from .pyliteral import python_literal

MAX_EXPRESSION_LENGTH = 200
_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_WHOLE_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\Z")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2}
_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//"}


class ExpressionError(ValueError):
    """A `$` string that is not a parameter reference or allowed integer arithmetic."""


@dataclass(frozen=True)
class Expr:
    """Base of the expression tree."""

    def render(self, parent: int = 0) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def names(self) -> frozenset[str]:
        """Return the parameter names the expression reads."""
        return frozenset()


@dataclass(frozen=True)
class Const(Expr):
    """A literal value (an int in arithmetic; any checked value as a whole argument)."""

    value: Any

    def render(self, parent: int = 0) -> str:
        text = python_literal(_as_tuple(self.value))
        return (
            f"({text})"
            if parent and isinstance(self.value, int) and self.value < 0
            else text
        )


@dataclass(frozen=True)
class Name(Expr):
    """A constructor argument of the generated class."""

    name: str

    def render(self, parent: int = 0) -> str:
        return self.name

    def names(self) -> frozenset[str]:
        return frozenset({self.name})


@dataclass(frozen=True)
class BinOp(Expr):
    """`left op right` with one of `+ - * //`."""

    op: str
    left: Expr
    right: Expr

    def render(self, parent: int = 0) -> str:
        mine = _PRECEDENCE[self.op]
        # the right operand of - and // needs parentheses at equal precedence: a - (b + c)
        text = f"{self.left.render(mine)} {self.op} {self.right.render(mine + 1)}"
        return f"({text})" if parent > mine else text

    def names(self) -> frozenset[str]:
        return self.left.names() | self.right.names()


@dataclass(frozen=True)
class Items(Expr):
    """A list argument some of whose items come from parameters: `(k, k)`."""

    items: tuple[Expr, ...]

    def render(self, parent: int = 0) -> str:
        inner = ", ".join(item.render() for item in self.items)
        return f"({inner},)" if len(self.items) == 1 else f"({inner})"

    def names(self) -> frozenset[str]:
        return frozenset().union(*(item.names() for item in self.items))


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def is_reference(value: Any) -> bool:
    """Return whether a spec value is a `$` string (a reference or an expression)."""
    return isinstance(value, str) and "$" in value


def referenced_names(text: str) -> list[str]:
    """Return the parameter names a `$` string mentions, in order."""
    return _REFERENCE.findall(text)


def whole_reference(text: str) -> str | None:
    """Return `name` when `text` is exactly `$name` (a whole value of any kind), else None."""
    match = _WHOLE_REFERENCE.match(text.strip())
    return match.group(1) if match else None


def parse_expression(text: str) -> Expr:
    """Return the tree of an integer expression such as `$width * 4`; raise ExpressionError."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"an expression is at most {MAX_EXPRESSION_LENGTH} characters"
        )
    if "$" in _REFERENCE.sub("", text):
        raise ExpressionError(f"{text!r}: a `$` must be followed by a parameter name")
    source = _REFERENCE.sub(lambda m: f"__p_{m.group(1)}", text)
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except SyntaxError:
        raise ExpressionError(
            f"{text!r} is not integer arithmetic over parameters (+ - * //, parentheses, "
            "integers)"
        ) from None
    return _convert(tree, text)


def _convert(node: ast.AST, text: str) -> Expr:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Const(node.value)
    if isinstance(node, ast.Name) and node.id.startswith("__p_"):
        return Name(node.id[4:])
    if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
        return BinOp(
            _AST_OPS[type(node.op)],
            _convert(node.left, text),
            _convert(node.right, text),
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return BinOp("-", Const(0), _convert(node.operand, text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        return _convert(node.operand, text)
    what = type(node).__name__
    if isinstance(node, ast.BinOp):
        what = f"operator {type(node.op).__name__}"
    elif isinstance(node, ast.Name):
        what = f"the bare name {node.id!r} (write ${node.id})"
    raise ExpressionError(
        f"{text!r} uses {what}; an expression allows only + - * //, parentheses, integers and "
        "$parameters"
    )


def evaluate(expr: Expr, values: Mapping[str, Any]) -> Any:
    """Return the value of `expr` with each name bound in `values`; raise ExpressionError."""
    if isinstance(expr, Const):
        return expr.value
    if isinstance(expr, Name):
        return values[expr.name]
    if isinstance(expr, Items):
        return [evaluate(item, values) for item in expr.items]
    assert isinstance(expr, BinOp)
    left, right = evaluate(expr.left, values), evaluate(expr.right, values)
    for side in (left, right):
        if type(side) is not int:
            raise ExpressionError(f"arithmetic needs integers, got {side!r}")
    if expr.op == "+":
        return left + right
    if expr.op == "-":
        return left - right
    if expr.op == "*":
        return left * right
    if right == 0:
        raise ExpressionError("division by zero")
    return left // right


def substitute(expr: Expr | None, mapping: Mapping[str, Expr | None]) -> Expr | None:
    """Return `expr` with names replaced by `mapping`'s expressions (None: not expressible)."""
    if expr is None:
        return None
    if isinstance(expr, Name):
        return mapping.get(expr.name)
    if isinstance(expr, Items):
        items = tuple(substitute(item, mapping) for item in expr.items)
        return None if any(item is None for item in items) else Items(items)
    if isinstance(expr, BinOp):
        left, right = substitute(expr.left, mapping), substitute(expr.right, mapping)
        if left is None or right is None:
            return None
        return simplify(BinOp(expr.op, left, right))
    return expr


def simplify(expr: Expr) -> Expr:
    """Return `expr` with constant operands folded (`64 * 4` -> `256`, `x + 0` -> `x`)."""
    if not isinstance(expr, BinOp):
        return expr
    left, right = expr.left, expr.right
    if isinstance(left, Const) and isinstance(right, Const):
        if type(left.value) is int and type(right.value) is int:
            if expr.op != "//" or right.value != 0:
                return Const(evaluate(expr, {}))
    if isinstance(right, Const) and right.value == 0 and expr.op in "+-":
        return left
    if isinstance(left, Const) and left.value == 0 and expr.op == "+":
        return right
    if isinstance(right, Const) and right.value == 1 and expr.op in ("*", "//"):
        return left
    return expr


def add(left: Expr | None, right: Expr | None) -> Expr | None:
    """Return `left + right`, simplified; None when either is not expressible."""
    if left is None or right is None:
        return None
    return simplify(BinOp("+", left, right))


def multiply(left: Expr | None, right: Expr | None) -> Expr | None:
    """Return `left * right`, simplified; None when either is not expressible."""
    if left is None or right is None:
        return None
    return simplify(BinOp("*", left, right))
