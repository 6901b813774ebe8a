"""Python source for the argument values of a layer: `repr` of checked values, nothing else.

Only ints, finite floats, bools, None, tuples of those, and strings from the layer's own fixed
vocabulary (its `Literal` choices) are written; anything else raises CodegenError.
"""

from __future__ import annotations

import math
import typing
from typing import Any

from .naming import CodegenError, checked_identifier

# Words that an argument accepts through a validator rather than a `Literal` annotation
# (`padding` in layers/base.py takes an int, a list of ints, or one of these).
VALIDATOR_WORDS: dict[str, frozenset[str]] = {"padding": frozenset({"same", "valid"})}

_MAX_TUPLE = 8  # sizes are per spatial dimension; nothing in a spec needs more


def literal_words(annotation: Any) -> frozenset[str]:
    """Return every string that a `Literal[...]` inside `annotation` allows (through Annotated, |)."""
    if typing.get_origin(annotation) is typing.Literal:
        return frozenset(a for a in typing.get_args(annotation) if type(a) is str)
    words: frozenset[str] = frozenset()
    for arg in typing.get_args(annotation):
        words |= literal_words(arg)
    return words


def allowed_words(layer_class: type, argument: str) -> frozenset[str]:
    """Return the strings a layer class accepts for `argument` (empty when it takes no string)."""
    field = layer_class.model_fields.get(argument)
    words = literal_words(field.annotation) if field is not None else frozenset()
    return words | VALIDATOR_WORDS.get(argument, frozenset())


def python_literal(value: Any, words: frozenset[str] = frozenset()) -> str:
    """Return the Python source of a checked value; raise CodegenError for anything else."""
    kind = type(value)
    if value is None or kind is bool:
        return repr(value)
    if kind is int:
        return repr(value)
    if kind is float:
        if not math.isfinite(value):
            raise CodegenError(f"refusing to write the non-finite float {value!r}")
        return repr(value)
    if kind is str:
        if (
            value not in words
            or not value.isascii()
            or not value.replace("_", "").isalnum()
        ):
            raise CodegenError(
                f"refusing to write the string {value[:80]!r}: not a fixed choice"
            )
        return repr(value)
    if kind is tuple:
        if len(value) > _MAX_TUPLE:
            raise CodegenError(f"refusing to write a tuple of {len(value)} values")
        items = [python_literal(item) for item in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    raise CodegenError(f"refusing to write a value of type {kind.__name__}")


def keyword_arguments(layer_class: type, kwargs: dict[str, Any]) -> str:
    """Return `name=value, ...` for a torch.nn constructor call, every value checked."""
    parts = []
    for name, value in kwargs.items():
        checked_identifier(name, "argument name")
        parts.append(
            f"{name}={python_literal(value, allowed_words(layer_class, name))}"
        )
    return ", ".join(parts)


def all_words() -> frozenset[str]:
    """Return every fixed word any layer argument accepts (for values passed on to a block)."""
    # imported here: the layers import compiler.expressions, which imports this module
    from .layers import REGISTRY

    words: frozenset[str] = frozenset().union(*VALIDATOR_WORDS.values())
    for cls in REGISTRY.values():
        for argument in cls.model_fields:
            words |= allowed_words(cls, argument)
    return words
