"""`--set PATH=VALUE`: change a spec on the command line, then validate it again like a file.

PATH is dotted: `training.optimizer.lr`, `layers.fc1.out_features` (a layer by its name, written
or automatic), `layers.3.p` (by index), `input.0`. VALUE is read as one YAML value, so `128` is an
int, `0.01` and `1e-3` are floats, `true` a bool, `null` None, `[1, 2]` a list.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from compiler import Problem, Spec, SpecError
from compiler.blocks import entry_kinds, read_blocks
from compiler.containers import CONTAINERS, numbered, snake_case
from compiler.document import Document, LoadError
from compiler.errors import format_path
from compiler.layers import REGISTRY
from compiler.load import read_document, validate_document
from compiler.normalize import did_you_mean, normalize_layer
from compiler.readers import load_yaml_value
from runtime.errors import UserError, shown

MAX_VALUE_LENGTH = 10_000


def parse_assignment(text: str) -> tuple[list[str | int], Any]:
    """Return (path parts, value) of `PATH=VALUE`; digits in the path become int indices."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UserError(
            f"--set {text}: expected PATH=VALUE, e.g. training.optimizer.lr=0.01"
        )
    parts: list[str | int] = []
    for part in key.split("."):
        part = part.strip()
        if not part:
            raise UserError(f"--set {text}: empty step in the path {key!r}")
        parts.append(int(part) if part.isdigit() else part)
    return parts, parse_value(raw, text)


def parse_value(raw: str, text: str) -> Any:
    """Return VALUE read as YAML (safely), numbers like 1e-3 read as floats."""
    if len(raw) > MAX_VALUE_LENGTH:
        raise UserError(
            f"--set {text[:40]}...: the value is longer than {MAX_VALUE_LENGTH} characters"
        )
    try:
        return load_yaml_value(raw)
    except LoadError as exc:
        problem = exc.problem
        where = f" (at {problem.path})" if problem.path else ""
        message = problem.message
        if message.startswith("YAML syntax error: "):
            message = f"the value is not valid YAML ({message[19:]}); quote text"
        raise UserError(f"--set {shown(text)}: {message}{where}") from None


def apply_overrides(data: dict, assignments: list[str]) -> dict:
    """Return a copy of spec data with each `PATH=VALUE` assignment applied in order.

    A layer addressed by name or index is first rewritten in canonical form
    (`{type: linear, out_features: 64}`), so any of its arguments can be set.
    """
    result = copy.deepcopy(data)
    if not isinstance(result, dict):
        raise UserError("--set needs a spec that is a mapping at the top")
    for text in assignments:
        parts, value = parse_assignment(text)
        _assign(result, parts, value, text)
    return result


def _assign(data: dict, parts: list, value: Any, text: str) -> None:
    node: Any = data
    walked: list = []
    kinds = _entry_kinds(data.get("blocks"))
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if walked and walked[-1] in ("layers", "shortcut") and isinstance(node, list):
            # a layer list (the model's, or a container's): entries by name or index
            part = _layer_index(node, part, text, kinds)
            if not last:
                node[part] = _canonical_layer(node[part], part, text, kinds)
        elif isinstance(node, list):
            if not isinstance(part, int) or part >= len(node):
                where = format_path(walked)
                raise UserError(
                    f"--set {text}: {where} is a list of {len(node)} items; "
                    f"{part!r} is not an index of it"
                )
        elif isinstance(node, dict):
            part = str(part)
        else:
            raise UserError(
                f"--set {text}: {format_path(walked)} is {node!r}, not a section; "
                f"it has no {part!r}"
            )
        walked.append(part)
        if last:
            node[part] = value
        else:
            if isinstance(node, dict) and (part not in node or node[part] is None):
                node[part] = {}
            node = node[part]


def _entry_kinds(blocks: Any) -> dict:
    """Return what may stand in a layer list of this spec: layers, containers, its blocks."""
    found = (
        read_blocks(blocks, None, lambda path: None, [])
        if isinstance(blocks, dict)
        else {}
    )
    return entry_kinds(found)


def _prefix(kind: str | None, kinds: dict) -> str | None:
    if kind in REGISTRY:
        return REGISTRY[kind].prefix
    if kind in CONTAINERS:
        return CONTAINERS[kind].prefix
    return snake_case(kind) if kind in kinds else None


def _layer_names(layers: list, kinds: dict | None = None) -> list[str | None]:
    """Return each raw entry's name: the written one, else the automatic one (prefix + counter).

    Counted over this list alone: layers inside a residual or branches before an entry also
    count in its module, so address those by index when in doubt.
    """
    kinds = kinds if kinds is not None else _entry_kinds(None)
    normals = [
        normalize_layer(raw, i, [], lambda path: None, kinds=kinds)
        for i, raw in enumerate(layers)
    ]
    written = [
        n.data.get("name") if n.data and isinstance(n.data.get("name"), str) else None
        for n in normals
    ]
    used = {w for w in written if w}
    counters: dict[str, int] = {}
    names: list[str | None] = []
    for normal, name in zip(normals, written):
        prefix = _prefix(normal.type, kinds)
        automatic = None
        if prefix is not None:
            counters[prefix] = counters.get(prefix, 0) + 1
            automatic = numbered(prefix, counters[prefix])
            while name is None and automatic in used:
                counters[prefix] += 1
                automatic = numbered(prefix, counters[prefix])
            used.add(automatic)
        names.append(name if name is not None else automatic)
    return names


def _layer_index(
    layers: list, part: str | int, text: str, kinds: dict | None = None
) -> int:
    if isinstance(part, int):
        if part >= len(layers):
            raise UserError(
                f"--set {text}: there are {len(layers)} layers, indexed 0 to {len(layers) - 1}"
            )
        return part
    names = _layer_names(layers, kinds)
    if part in names:
        return names.index(part)
    known = [n for n in names if n]
    raise UserError(
        f"--set {text}: no layer is named {part!r}{did_you_mean(part, known)}; "
        f"the layers are {', '.join(known[:20])}{' ...' if len(known) > 20 else ''}"
    )


def _canonical_layer(
    raw: Any, index: int, text: str, kinds: dict | None = None
) -> dict:
    problems: list[Problem] = []
    normal = normalize_layer(raw, index, problems, lambda path: None, kinds=kinds)
    if normal.data is None:
        reason = problems[0].message if problems else "it cannot be read"
        raise UserError(
            f"--set {text}: layers[{index}] cannot take arguments: {reason}"
        )
    return dict(normal.data)


def load_spec_with_overrides(path: str | os.PathLike, assignments: list[str]) -> Spec:
    """Return the spec file at `path` with the assignments applied, validated again as a file.

    A problem in a value that an assignment set says so (`... (set by --set X)`).
    """
    document = read_document(path)
    data = apply_overrides(document.data, assignments)
    try:
        return validate_document(Document(data, document.lines), str(path))
    except SpecError as exc:
        raise _blame_assignments(exc, data, assignments) from None


def _blame_assignments(exc: SpecError, data: dict, assignments: list[str]) -> SpecError:
    """Return the SpecError with problems in assigned values marked with their --set."""
    prefixes: list[tuple[str, str]] = []
    for text in assignments:
        parts, _ = parse_assignment(text)
        candidates = [format_path(parts)]
        if parts[:1] == ["layers"] and len(parts) > 2:
            layers = data.get("layers") if isinstance(data, dict) else None
            index = parts[1] if isinstance(parts[1], int) else None
            if index is None and isinstance(layers, list):
                names = _layer_names(layers)
                index = names.index(parts[1]) if parts[1] in names else None
            if (
                index is not None
                and isinstance(layers, list)
                and isinstance(layers[index], dict)
            ):
                kind = layers[index].get("type")
                candidates = [
                    format_path(["layers", index, kind, *parts[2:]]),
                    format_path(["layers", index, *parts[2:]]),
                ]
        prefixes.extend((candidate, text) for candidate in candidates)
    problems = []
    for problem in exc.problems:
        blamed = next(
            (
                text
                for prefix, text in prefixes
                if problem.path == prefix
                or problem.path.startswith((prefix + ".", prefix + "["))
            ),
            None,
        )
        message = (
            f"{problem.message} (set by --set {blamed})" if blamed else problem.message
        )
        problems.append(Problem(problem.path, message, problem.line))
    return SpecError(problems, exc.source)
