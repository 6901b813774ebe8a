"""`load_spec`: read, normalize, validate and shape-check a spec, reporting every problem at once."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from .document import Document, LoadError
from .errors import Problem, SpecError, format_path
from .layers import REGISTRY, LayerSpec
from .layers.dense import Identity
from .messages import problems_from_validation
from .normalize import NormalizedLayer, did_you_mean, normalize_layer
from .readers import decode_text, read_data, read_json, read_yaml
from .shapes import iter_resolved
from .spec import MAX_LAYERS, Spec, assign_names

PARSERS = {".yaml": read_yaml, ".yml": read_yaml, ".json": read_json}


def read_document(path: str | os.PathLike) -> Document:
    """Return the Document of a spec file; raise SpecError when it cannot be read as data."""
    source = str(path)
    _check_file_type(source)
    try:
        raw = FsPath(source).read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem("", "no such file")], source) from None
    except IsADirectoryError:
        raise SpecError([Problem("", "is a folder, not a spec file")], source) from None
    except OSError as exc:
        raise SpecError([Problem("", f"cannot read the file: {exc.strerror}")], source) from None
    return parse_document(raw, source)


def parse_document(raw: bytes, source: str) -> Document:
    """Return the Document of a spec file's bytes, parsed by the suffix of its name `source`."""
    _check_file_type(source)
    try:
        return PARSERS[FsPath(source).suffix.lower()](decode_text(raw, source))
    except LoadError as exc:
        raise SpecError([exc.problem], source) from None


def _check_file_type(source: str) -> None:
    suffix = FsPath(source).suffix.lower()
    if suffix not in PARSERS:
        raise SpecError(
            [Problem("", f"unknown file type '{suffix or '(none)'}'; a spec ends in .yaml, .yml or .json")],
            source,
        )


def load_spec(source: str | os.PathLike | Mapping[str, Any]) -> Spec:
    """Return the validated, shape-checked Spec of a file or a mapping; raise SpecError."""
    if not isinstance(source, (str, os.PathLike)):  # a mapping, or data that is not a spec
        try:
            return validate_document(read_data(source), "<spec>")
        except LoadError as exc:
            raise SpecError([exc.problem], "<spec>") from None
    return validate_document(read_document(source), str(source))


def validate_document(doc: Document, source: str) -> Spec:
    """Return the Spec of a parsed Document; raise SpecError listing every problem."""
    data = doc.data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"{data!r}"
        raise SpecError(
            [Problem("", f"a spec is a mapping with name, input and layers at the top; got {kind}", doc.line_of(()))],
            source,
        )
    problems: list[Problem] = []
    raw_layers = data.get("layers")
    layers: list[LayerSpec] | None = None
    lines: list[int | None] = []
    if isinstance(raw_layers, list) and len(raw_layers) > MAX_LAYERS:
        problems.append(Problem("layers", f"{len(raw_layers)} layers is more than the limit of {MAX_LAYERS}",
                                doc.line_of(("layers",))))
    elif isinstance(raw_layers, list) and raw_layers:
        layers, lines = _validate_layers(raw_layers, doc, problems)

    top = dict(data)
    if isinstance(raw_layers, list) and raw_layers:  # checked above, one by one or by count
        top["layers"] = layers if layers is not None and not problems else [Identity(name="placeholder")]
    try:
        spec = Spec.model_validate(top)
    except ValidationError as exc:
        spec = None
        problems.extend(problems_from_validation(exc, (), doc, top_level=True))

    input_ok = spec is not None or _valid_input(data.get("input"))
    if layers is not None and input_ok:
        # shapes are known up to the first layer with a problem of its own: check that far
        valid = layers[: _first_layer_with_problems(problems, len(layers))]
        resolved = list(iter_resolved(valid, tuple(data["input"]), lines, problems))
    if problems:
        raise SpecError(problems, source)
    spec._source = source
    spec._layer_lines = tuple(lines)
    spec._resolved = tuple(resolved)
    return spec


def _first_layer_with_problems(problems: list[Problem], count: int) -> int:
    """Return the index of the first layer that a problem names (`count` when none does)."""
    indices = [int(m.group(1)) for p in problems if (m := _LAYER_INDEX.match(p.path))]
    return min(indices, default=count)


_LAYER_INDEX = re.compile(r"layers\[(\d+)\]")


def _valid_input(value: Any) -> bool:
    return (
        isinstance(value, list)
        and 1 <= len(value) <= 4
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    )


def _validate_layers(raw_layers: list, doc: Document, problems: list[Problem]) -> tuple[list[LayerSpec], list]:
    """Return the validated, named layers (placeholders where invalid) and each layer's line."""
    layers: list[LayerSpec] = []
    lines: list[int | None] = []
    for index, raw in enumerate(raw_layers):
        normal: NormalizedLayer = normalize_layer(raw, index, problems, doc.line_of)
        lines.append(doc.line_of(("layers", index)))
        if normal.data is None:
            layers.append(Identity.model_construct(name=None))
            continue
        try:
            layers.append(REGISTRY[normal.type].model_validate(normal.data))
        except ValidationError as exc:
            problems.extend(_layer_problems(exc, normal, doc))
            cls = REGISTRY[normal.type]
            name = normal.data.get("name")
            layers.append(cls.model_construct(name=name if isinstance(name, str) and name.isidentifier() else None))
    named, name_problems = assign_names(layers)
    for index, message in name_problems:
        path = ("layers", index)
        problems.append(Problem(format_path(path + (named[index].type_name, "name")), message,
                                doc.line_of(path + ("name",))))
    return named, lines


def _layer_problems(exc: ValidationError, normal: NormalizedLayer, doc: Document) -> list[Problem]:
    """Return the Problems of one layer's validation error, with lines of the arguments at fault."""

    def line_of(loc: tuple) -> int | None:
        # loc is (type, arg, ...); find the argument's source path
        arg = loc[1] if len(loc) > 1 else None
        if arg in normal.arg_paths:
            return doc.line_of(normal.arg_paths[arg] + tuple(loc[2:]))
        return doc.line_of(normal.path)

    extra_hint = {
        "choices": [a for a in REGISTRY[normal.type].model_fields if a != "type"],
        "layer": normal.type,
        "primary": REGISTRY[normal.type].primary,
    }
    return problems_from_validation(exc, normal.path, doc, line_of=line_of, layer_hint=extra_hint,
                                    tag=normal.type)


__all__ = ["load_spec", "read_document", "validate_document", "did_you_mean"]
