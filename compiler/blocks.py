"""The `blocks` section: reusable, parameterized layer lists, checked once where they are defined.

A definition is checked on its own, before any use: its name (CamelCase, not a built-in type,
not a name the generated module uses), its parameters, every `$name` and expression in its
layers, which parameters hold layer lists (used once, only where a layer list goes, never in a
repeat), and cycles between blocks (the error names the cycle).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .containers import CONTAINERS
from .errors import Problem, format_path
from .expressions import (
    ExpressionError,
    is_reference,
    parse_expression,
    whole_reference,
)
from .layers import REGISTRY, check_identifier
from .normalize import EntryKind, did_you_mean, layer_kinds, normalize_layer
from .reserved import is_reserved_class_name

REQUIRED = "required"
_DEFINITION_KEYS = ("description", "params", "layers")
_FORBIDDEN_PARAMS = {"name", "type", "self"}
# Container arguments that decide the wiring; generated code writes them as fixed values
STRUCTURAL = {"name", "type", "merge", "dim"}


@dataclass
class BlockDef:
    """One checked block definition."""

    name: str
    description: str | None
    params: dict[str, Any]  # name -> default (REQUIRED for none)
    layers: list[Any]  # raw layer entries, as written
    list_params: set[str] = field(
        default_factory=set
    )  # parameters that hold layer lists
    ok: bool = (
        True  # False when the definition has a problem that prevents expanding it
    )

    @property
    def primary(self) -> str | None:
        """Return the first parameter: the one `- Block: VALUE` sets."""
        return next(iter(self.params), None)

    def entry_kind(self) -> EntryKind:
        return EntryKind(self.primary, tuple(self.params))


def read_blocks(
    raw: Any, spec_name: Any, line_of: Callable, problems: list[Problem]
) -> dict[str, BlockDef]:
    """Return the checked definitions of a `blocks` section; append a Problem for each mistake."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "blocks",
                "must be a mapping of block names to definitions "
                "(`blocks: {BasicBlock: {params: ..., layers: [...]}}`)",
                line_of(("blocks",)),
            )
        )
        return {}
    blocks: dict[str, BlockDef] = {}
    for name, definition in raw.items():
        path = ("blocks", name)
        message = _name_problem(name, spec_name)
        if message:
            problems.append(Problem(format_path(path), message, line_of(path)))
            continue
        block = _read_definition(name, definition, path, line_of, problems)
        if block is not None:
            blocks[name] = block
    kinds = entry_kinds(blocks)
    _find_list_params(blocks, kinds)
    for block in blocks.values():
        _check_references(block, blocks, kinds, line_of, problems)
    _check_cycles(blocks, kinds, line_of, problems)
    return blocks


def entry_kinds(blocks: dict[str, BlockDef]) -> dict[str, EntryKind]:
    """Return what can stand in a layer list: layer types, containers and these blocks."""
    kinds = dict(layer_kinds())
    kinds.update({name: kind.entry_kind() for name, kind in CONTAINERS.items()})
    kinds.update({name: block.entry_kind() for name, block in blocks.items()})
    return kinds


def _name_problem(name: Any, spec_name: Any) -> str | None:
    try:
        check_identifier(name, "block name")
    except ValueError as exc:
        return str(exc)
    builtin = {t.lower(): t for t in [*REGISTRY, *CONTAINERS]}
    if not name[0].isupper():
        return f"a block name is CamelCase, its first letter upper case (e.g. {name[0].upper() + name[1:]})"
    if name.lower() in builtin:
        return (
            f"'{name}' is the built-in type '{builtin[name.lower()]}'; a block needs a name of "
            f"its own, e.g. My{name}"
        )
    if name == spec_name:
        return (
            f"'{name}' is the spec's name (the model's class); pick another block name"
        )
    if is_reserved_class_name(name):
        return f"'{name}' is a name the generated module uses; pick another block name"
    return None


def _read_definition(
    name: str, definition: Any, path: tuple, line_of, problems
) -> BlockDef | None:
    def fail(message: str, at: tuple = ()) -> None:
        problems.append(Problem(format_path(path + at), message, line_of(path + at)))

    if not isinstance(definition, dict):
        fail(
            "a block is a mapping with `params` (optional), `layers` and `description` (optional)"
        )
        return None
    for key in definition:
        if key not in _DEFINITION_KEYS:
            fail(
                f"unknown key '{key}'{did_you_mean(str(key), _DEFINITION_KEYS)}; a block takes: "
                f"{', '.join(_DEFINITION_KEYS)}",
                (key,),
            )
    description = definition.get("description")
    if description is not None and not isinstance(description, str):
        fail(f"must be text, got {type(description).__name__}", ("description",))
        description = None
    params = definition.get("params") or {}
    if not isinstance(params, dict):
        fail(
            "must be a mapping of parameter names to defaults (`required` for none)",
            ("params",),
        )
        params = {}
    checked: dict[str, Any] = {}
    for param, default in params.items():
        at = ("params", param)
        try:
            check_identifier(param, "parameter name")
        except ValueError as exc:
            fail(str(exc), at)
            continue
        if param in _FORBIDDEN_PARAMS or param.startswith("_"):
            fail(
                f"a parameter cannot be called '{param}'"
                + (
                    " (names starting with _ are torch's)"
                    if param.startswith("_")
                    else ""
                ),
                at,
            )
            continue
        if isinstance(default, dict) or is_reference(default):
            fail("a default is a number, true/false, text, a list, or `required`", at)
            continue
        checked[param] = default
    layers = definition.get("layers")
    ok = True
    if not isinstance(layers, list) or not layers:
        what = (
            "missing"
            if layers is None
            else "empty" if layers == [] else f"{type(layers).__name__}"
        )
        fail(
            f"a block needs `layers`: a non-empty list of layers (got {what})",
            ("layers",) if "layers" in definition else (),
        )
        layers, ok = [], False
    return BlockDef(name, description, checked, layers, ok=ok)


# -- walking a definition ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """One `$` in a definition: the names it reads, where, and whether a layer list stands there."""

    names: tuple[str, ...]
    path: tuple
    as_list: bool
    in_repeat: bool
    problem: str | None = None  # a `$` string that is not a valid expression


def references(
    layers: list, path: tuple, blocks: dict[str, BlockDef], kinds
) -> Iterator[Reference]:
    """Yield every `$` reference in a raw layer list (recursively through containers and uses)."""
    yield from _walk_list(layers, path, blocks, kinds, False)


def _walk_list(
    layers: Any, path: tuple, blocks, kinds, in_repeat: bool
) -> Iterator[Reference]:
    if isinstance(layers, str) and is_reference(layers):
        yield _list_reference(layers, path, in_repeat)
        return
    if not isinstance(layers, list):
        return
    for index, raw in enumerate(layers):
        normal = normalize_layer(
            raw, index, [], lambda p: None, path=path + (index,), kinds=kinds
        )
        if normal.data is None:
            continue
        data, arg_paths = normal.data, normal.arg_paths
        kind = normal.type
        for arg, value in data.items():
            if arg == "type":
                continue
            at = arg_paths.get(arg, normal.path + (arg,))
            if kind in CONTAINERS and arg in ("layers", "shortcut"):
                yield from _walk_list(
                    value, at, blocks, kinds, in_repeat or kind == "repeat"
                )
            elif kind == "branches" and arg == "paths" and isinstance(value, list):
                for i, item in enumerate(value):
                    yield from _walk_list(item, at + (i,), blocks, kinds, in_repeat)
            elif kind in blocks and arg in blocks[kind].list_params:
                yield from _walk_list(value, at, blocks, kinds, in_repeat)
            else:
                yield from _scalar_references(value, at, in_repeat)


def _list_reference(text: str, path: tuple, in_repeat: bool) -> Reference:
    name = whole_reference(text)
    if name is None:
        return Reference(
            (),
            path,
            True,
            in_repeat,
            f"{text!r}: where a layer list goes, write a "
            "list or `$parameter` (a parameter holding a layer list)",
        )
    return Reference((name,), path, True, in_repeat)


def _scalar_references(value: Any, path: tuple, in_repeat: bool) -> Iterator[Reference]:
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _scalar_references(item, path + (i,), in_repeat)
        return
    if not is_reference(value):
        return
    name = whole_reference(value)
    if name is not None:
        yield Reference((name,), path, False, in_repeat)
        return
    try:
        expr = parse_expression(value)
    except ExpressionError as exc:
        yield Reference((), path, False, in_repeat, str(exc))
        return
    yield Reference(tuple(sorted(expr.names())), path, False, in_repeat)


def _find_list_params(blocks: dict[str, BlockDef], kinds) -> None:
    """Set each block's layer-list parameters: used where a layer list goes, or defaulting to []."""
    for block in blocks.values():
        block.list_params = {p for p, d in block.params.items() if d == []}
    changed = True
    while (
        changed
    ):  # a parameter passed on to another block's layer-list parameter is one too
        changed = False
        for block in blocks.values():
            for ref in references(
                block.layers, ("blocks", block.name, "layers"), blocks, kinds
            ):
                for name in ref.names:
                    if (
                        ref.as_list
                        and name in block.params
                        and name not in block.list_params
                    ):
                        block.list_params.add(name)
                        changed = True


def _check_references(
    block: BlockDef, blocks, kinds, line_of, problems: list[Problem]
) -> None:
    where = ("blocks", block.name, "layers")
    list_uses: dict[str, list[tuple]] = {}
    params = list(block.params)

    def fail(path: tuple, message: str) -> None:
        problems.append(Problem(format_path(path), message, line_of(path)))
        if path[:3] == where:
            block.ok = False

    for ref in references(block.layers, where, blocks, kinds):
        if ref.problem:
            fail(ref.path, ref.problem)
            continue
        for name in ref.names:
            if name not in block.params:
                known = (
                    f"its parameters are: {', '.join(params)}"
                    if params
                    else "it has no parameters"
                )
                fail(
                    ref.path,
                    f"`${name}` is not a parameter of {block.name}"
                    f"{did_you_mean(name, params)}; {known}",
                )
            elif ref.as_list:
                list_uses.setdefault(name, []).append(ref.path)
                if ref.in_repeat:
                    fail(
                        ref.path,
                        f"the layer-list parameter `${name}` cannot stand inside a repeat "
                        "(each copy would need its own copy of it)",
                    )
            elif name in block.list_params:
                fail(
                    ref.path,
                    f"`${name}` holds a layer list; it can stand only where a layer list "
                    "goes (a container's layers, a shortcut, one of the paths)",
                )
    for name, paths in list_uses.items():
        if len(paths) > 1:
            first = format_path(paths[0])
            fail(
                paths[1],
                f"the layer-list parameter `${name}` is used twice (first at {first}); "
                "each use would need its own weights (v1 has no weight sharing)",
            )
        default = block.params[name]
        if default != REQUIRED and not isinstance(default, list):
            fail(
                ("blocks", block.name, "params", name),
                f"`${name}` stands where a layer list goes, so its default must be [] or required, "
                f"got {default!r}",
            )


def _check_cycles(
    blocks: dict[str, BlockDef], kinds, line_of, problems: list[Problem]
) -> None:
    uses = {
        name: sorted(
            set(_used_blocks(block.layers, blocks))
            | set(
                _used_blocks(
                    [v for v in block.params.values() if isinstance(v, list)], blocks
                )
            )
        )
        for name, block in blocks.items()
    }
    reported: set[frozenset] = set()
    for start in blocks:
        cycle = _cycle_from(start, uses)
        if cycle is None:
            continue
        members = frozenset(cycle)
        for name in members:
            blocks[name].ok = False
        if members in reported:
            continue
        reported.add(members)
        path = ("blocks", start)
        how = "itself" if len(cycle) == 2 else "itself through " + " -> ".join(cycle)
        problems.append(
            Problem(
                format_path(path),
                f"{start} uses {how}; a block cannot contain "
                "itself, directly or through other blocks",
                line_of(path),
            )
        )


def _cycle_from(start: str, uses: dict[str, list[str]]) -> list[str] | None:
    """Return the cycle start -> ... -> start, if there is one (depth first, in name order)."""
    stack = [(start, [start])]
    seen = set()
    while stack:
        node, trail = stack.pop()
        for nxt in reversed(uses.get(node, [])):
            if nxt == start:
                return trail + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, trail + [nxt]))
    return None


def _used_blocks(value: Any, blocks: dict[str, BlockDef]) -> Iterator[str]:
    """Yield every block name written as an entry's type anywhere inside `value`."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item in blocks:
            yield item
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str) and key in blocks:
                    yield key
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)
