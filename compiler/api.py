"""The compiler's public functions over a loaded Spec (re-exported by `compiler`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .document import Document
from .load import validate_document
from .shapes import ResolvedLayer
from .spec import Spec, spec_data
from .tree import Module

if TYPE_CHECKING:
    import torch


def model_tree(spec: Spec) -> Module:
    """Return the spec's resolved model tree (modules, layers, wiring, shapes)."""
    if spec._tree is None:  # a Spec built directly, not through load_spec

        checked = validate_document(Document(spec_data(spec)), spec.source)
        spec._tree, spec._resolved = checked._tree, checked._resolved
    return spec._tree


def resolved_layers(spec: Spec) -> tuple[ResolvedLayer, ...]:
    """Return every layer of a spec, depth first, with its torch arguments, shapes and count."""
    model_tree(spec)
    return spec._resolved


def count_params(spec: Spec) -> int:
    """Return the number of trainable parameters of the spec's model, computed without torch."""
    return model_tree(spec).info.params


def output_shape(spec: Spec) -> tuple[int, ...]:
    """Return the shape of one output sample (no batch dimension)."""
    return model_tree(spec).info.output_shape


def generate_source(spec: Spec, source_name: str | None = None) -> str:
    """Return the black-formatted source of a module holding the spec's nn.Module class."""
    # imported here: compiler.codegen imports this module (count_params, model_tree)
    from .codegen import generate_source as generate

    return generate(spec, source_name) if source_name is not None else generate(spec)


def build_module(spec: Spec) -> "torch.nn.Module":
    """Return the spec's model: nn.Sequential where it is a chain, a small wired module elsewhere."""
    # imported here: building imports torch, which validate, lint and codegen never load
    from .build import build_module as build

    return build(spec)


def build_sequential(spec: Spec) -> "torch.nn.Module":
    """Return the spec's model (`build_module`; an nn.Sequential named like the layers for a chain)."""
    return build_module(spec)
