"""Static shape inference: the shape each layer receives and produces, in pure Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from .errors import Problem, format_path
from .layers import LayerSpec, Shape, ShapeProblem, format_shape


@dataclass(frozen=True)
class ResolvedLayer:
    """A layer with everything the builder, the generator and the summary need."""

    index: int
    name: str
    type: str
    torch_class: str
    kwargs: dict[str, Any]  # every argument of the torch.nn constructor, inferred ones included
    input_shape: Shape
    output_shape: Shape
    params: int
    line: int | None


def _provenance(shape: Shape, producer: ResolvedLayer | None) -> str:
    """Return where a shape came from, e.g. ` = 16x4x4 from layers[5] (flatten1)`."""
    if producer is None:
        return " (the spec's input)"
    text = ""
    if producer.type == "flatten" and len(producer.input_shape) > len(shape):
        text = " = " + "\u00d7".join(str(d) for d in producer.input_shape)
    return f"{text} from layers[{producer.index}] ({producer.name})"


def iter_resolved(
    layers: Sequence[LayerSpec], input_shape: Shape, lines: Sequence[int | None], problems: list[Problem],
    prefix: tuple = ("layers",),
) -> Iterator[ResolvedLayer]:
    """Yield each layer resolved in turn; on the first impossible shape, append a Problem and stop.

    A layer sequence is a value: containers (version 2) call this on their body with their own
    path prefix and input shape.
    """
    shape = tuple(input_shape)
    producer: ResolvedLayer | None = None
    for index, layer in enumerate(layers):
        line = lines[index] if index < len(lines) else None
        try:
            kwargs, out, params = layer.resolve(shape)
        except ShapeProblem as exc:
            path = prefix + (index,) + ((layer.type_name, exc.arg) if exc.arg else ())
            message = str(exc).replace("{origin}", _provenance(shape, producer))
            problems.append(Problem(format_path(path), message, line))
            return
        producer = ResolvedLayer(
            index, layer.name or "", layer.type_name, layer.torch_class, kwargs, shape, out, params, line
        )
        yield producer
        shape = out


def describe_shape(shape: Shape) -> str:
    """Return a shape as `[16, 4, 4]` (re-exported for the summary)."""
    return format_shape(shape)
