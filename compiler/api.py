"""The compiler's public functions over a loaded Spec (re-exported by `compiler`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import Problem, SpecError
from .shapes import ResolvedLayer, iter_resolved
from .spec import Spec

if TYPE_CHECKING:
    import torch


def resolved_layers(spec: Spec) -> tuple[ResolvedLayer, ...]:
    """Return every layer of a spec with its torch arguments, shapes and parameter count."""
    if not spec._resolved:  # a Spec built directly, not through load_spec
        problems: list[Problem] = []
        resolved = tuple(iter_resolved(spec.layers, tuple(spec.input), spec.layer_lines, problems))
        if problems:
            raise SpecError(problems, spec.source)
        spec._resolved = resolved
    return spec._resolved


def count_params(spec: Spec) -> int:
    """Return the number of trainable parameters of the spec's model, computed without torch."""
    return sum(layer.params for layer in resolved_layers(spec))


def output_shape(spec: Spec) -> tuple[int, ...]:
    """Return the shape of one output sample (no batch dimension)."""
    return resolved_layers(spec)[-1].output_shape


def generate_source(spec: Spec, source_name: str | None = None) -> str:
    """Return the black-formatted source of a module holding the spec's nn.Module class."""
    from .codegen import generate_source as generate

    return generate(spec, source_name) if source_name is not None else generate(spec)


def build_sequential(spec: Spec) -> "torch.nn.Sequential":
    """Return the spec's model as an nn.Sequential whose children are named like the layers."""
    from .build import build_sequential as build

    return build(spec)
