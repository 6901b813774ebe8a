"""`load_spec`: read, normalize, validate and shape-check a spec, reporting every problem at once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from .augment import augment_problems
from .blocks import read_blocks
from .document import Document, LoadError
from .errors import Problem, SpecError, format_path
from .expand import Expander, LayerCounter
from .files import FileRefused, read_regular_file
from .layers.base import MAX_SIZE
from .layers.dense import Identity
from .messages import problems_from_validation
from .normalize import LIST_MARKER, did_you_mean
from .readers import (
    MAX_FILE_BYTES,
    decode_text,
    read_data,
    read_json,
    read_yaml,
)
from .shapes import Resolver, flat_layers
from .spec import DTYPES, MAX_LAYERS, MAX_RANK, Spec
from .tasks import task_problems
from .training import DATA_PATH_KEYS, single_sample_batch_problems

PARSERS = {".yaml": read_yaml, ".yml": read_yaml, ".json": read_json}


def read_document(path: str | os.PathLike) -> Document:
    """Return the Document of a spec file; raise SpecError when it cannot be read as data."""
    source = str(path)
    _check_file_type(source)
    return parse_document(read_spec_bytes(source), source)


def read_spec_bytes(path: str | os.PathLike) -> bytes:
    """Return the bytes of a spec file; raise SpecError for a file that is missing, unreadable,
    not a regular file (a device, a named pipe: never read, never waited on) or over the limit.

    At most MAX_FILE_BYTES + 1 bytes are read, so a symlink to /dev/zero costs nothing.
    """
    source = str(path)
    try:
        return read_regular_file(source, MAX_FILE_BYTES, "specs")
    except FileNotFoundError:
        raise SpecError([Problem("", "no such file")], source) from None
    except (IsADirectoryError, NotADirectoryError) as exc:
        reason = (
            "is a folder, not a spec file"
            if isinstance(exc, IsADirectoryError)
            else "no such file (a part of the path is not a folder)"
        )
        raise SpecError([Problem("", reason)], source) from None
    except FileRefused as exc:
        reason = str(exc)
        if reason == "is a folder, not a regular file":
            reason = "is a folder, not a spec file"
        raise SpecError([Problem("", reason)], source) from None
    except OSError as exc:
        raise SpecError(
            [Problem("", f"cannot read the file: {exc.strerror or exc}")],
            source,
        ) from None


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
            [
                Problem(
                    "",
                    f"unknown file type '{suffix or '(none)'}'; a spec ends in .yaml, .yml or .json",
                )
            ],
            source,
        )


def load_spec(source: str | os.PathLike | Mapping[str, Any]) -> Spec:
    """Return the validated, shape-checked Spec of a file or a mapping; raise SpecError."""
    if not isinstance(
        source, (str, os.PathLike)
    ):  # a mapping, or data that is not a spec
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
            [
                Problem(
                    "",
                    f"a spec is a mapping with name, input and layers at the top; got {kind}",
                    doc.line_of(()),
                )
            ],
            source,
        )
    problems: list[Problem] = []
    blocks = read_blocks(data.get("blocks"), data.get("name"), doc.line_of, problems)
    raw_layers = data.get("layers")
    tree = entries = None
    if isinstance(raw_layers, list) and len(raw_layers) > MAX_LAYERS:
        problems.append(
            Problem(
                "layers",
                f"{len(raw_layers)} layers is more than the limit of {MAX_LAYERS}",
                doc.line_of(("layers",)),
            )
        )
    elif isinstance(raw_layers, list) and raw_layers:
        count = LayerCounter(blocks).count(raw_layers)
        if count > MAX_LAYERS:
            problems.append(
                Problem(
                    "layers",
                    f"the layers expand to {count:,} (repeats multiplied out, blocks inlined; "
                    f"every layer, container and block use counts one), more than the limit of "
                    f"{MAX_LAYERS:,}",
                    doc.line_of(("layers",)),
                )
            )
        else:
            name = data.get("name") if isinstance(data.get("name"), str) else "Model"
            tree, entries = Expander(blocks, doc.line_of, problems).model(
                raw_layers, name
            )

    top = dict(data)
    _drop_schema_key(top, doc, problems)
    if (
        isinstance(raw_layers, list) and raw_layers
    ):  # checked above, entry by entry or by count
        top["layers"] = (
            entries
            if entries is not None and not problems
            else [Identity(name="placeholder")]
        )
    try:
        spec = Spec.model_validate(top)
    except ValidationError as exc:
        spec = None
        problems.extend(
            p
            for p in problems_from_validation(exc, (), doc, top_level=True)
            if not p.path.startswith("blocks")
        )  # blocks are checked by read_blocks

    sample = _valid_input(
        data.get("input")
    )  # resolved even when other sections have problems
    if tree is not None and sample is not None:
        Resolver(doc.line_of, problems).model(tree, *sample)
    if spec is not None and tree is not None and not problems:
        problems.extend(task_problems(spec, tree.info.output_shape, doc.line_of))
        if spec.training is not None:
            problems.extend(
                single_sample_batch_problems(
                    spec.training, flat_layers(tree), doc.line_of
                )
            )
            problems.extend(
                augment_problems(
                    spec.training, spec.input, spec.input_dtype, doc.line_of
                )
            )
    if problems:
        raise SpecError(_list_types_once(problems), source)
    spec._source = source
    spec._layer_lines = tuple(
        doc.line_of(("layers", i)) for i in range(len(raw_layers))
    )
    spec._data_lines = {
        key: doc.line_of(("training", "data", key)) for key in DATA_PATH_KEYS
    }
    spec._tree = tree
    spec._resolved = flat_layers(tree)
    return spec


def _drop_schema_key(top: dict, doc: Document, problems: list[Problem]) -> None:
    """Remove `"$schema"` (which editors read to find the JSON Schema); it must be a string."""
    if "$schema" not in top:
        return
    value = top.pop("$schema")
    if not isinstance(value, str):
        problems.append(
            Problem(
                format_path(("$schema",)),
                f"names the JSON Schema for editors: a URL or a path as a string, got {value!r}"[
                    :200
                ],
                doc.line_of(("$schema",)),
            )
        )


def _list_types_once(problems: list[Problem]) -> list[Problem]:
    """Return the problems with the list of layer types kept on the first unknown type only."""
    listed = None
    out = []
    for problem in problems:
        if LIST_MARKER in problem.message:
            if listed is None:
                listed = problem
            else:
                where = (
                    f"line {listed.line}" if listed.line is not None else listed.path
                )
                head = problem.message.split(LIST_MARKER)[0]
                problem = Problem(
                    problem.path,
                    f"{head}; the layer types are listed at {where}",
                    problem.line,
                )
        out.append(problem)
    return out


def _valid_input(value: Any) -> tuple[tuple[int, ...], str] | None:
    """Return (shape, dtype) of a valid `input` (a shape or {shape, dtype}), else None."""
    dtype = "float32"
    if isinstance(value, dict):
        if set(value) - {"shape", "dtype"} or value.get("dtype", dtype) not in DTYPES:
            return None
        value, dtype = value.get("shape"), value.get("dtype", dtype)
    if (
        isinstance(value, list)
        and 1 <= len(value) <= MAX_RANK
        and all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIZE
            for v in value
        )
    ):
        return tuple(value), dtype
    return None


__all__ = ["load_spec", "read_document", "validate_document", "did_you_mean"]
