"""Read YAML and JSON text into a Document (plain data with line numbers), safely.

YAML is read from PyYAML's event stream with the safe resolver and constructor, so no tag can
construct a Python object, and nesting never recurses. JSON is tokenized here for the same reason
and to know the line of every value; Python's `json` would lose the lines, accept NaN, and keep the
last of two duplicate keys without a word.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from .document import MAX_DEPTH, MAX_NUMBER_DIGITS, Document, DocumentBuilder, LoadError
from .errors import Problem

MAX_FILE_BYTES = 5 * 1024 * 1024


# libyaml's parser when PyYAML has it (about ten times faster than the pure-Python one, which
# dominates `nnspec validate`); the events, marks and safe constructor are the same.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _SpecYamlLoader(_SafeLoader):  # type: ignore[misc, valid-type]
    """Safe loader whose resolver also reads `1e-3` as a float (YAML 1.2), as people expect."""


_SpecYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def load_yaml_value(text: str) -> Any:
    """Return one YAML value read the way spec files are read: by the same event reader, with
    the same limits (nesting, values an alias expands to, digits of a number, tags, duplicate
    keys) and `1e-3` a float; an empty text is null. Raises LoadError.

    `--set` and `sweep --vary` values go through here, so a value means the same on the command
    line as in a spec file, and a 350-byte alias bomb is refused there as in a file.
    """
    builder = _build_yaml(text)
    return builder.root if builder.has_root else None


_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


def decode_text(raw: bytes, source: str) -> str:
    """Return the text of a spec file, refusing oversized files and invalid UTF-8."""
    if len(raw) > MAX_FILE_BYTES:
        raise LoadError(
            Problem(
                "", f"file is {len(raw)} bytes; specs are limited to {MAX_FILE_BYTES}"
            )
        )
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark carries no meaning; editors add it
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise LoadError(
            Problem(
                "",
                f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                "save the file as UTF-8",
                line,
            )
        ) from None


def read_yaml(text: str) -> Document:
    """Return the Document of a YAML text; raises LoadError on syntax or safety problems."""
    builder = _build_yaml(text)
    if not builder.has_root:
        raise LoadError(
            Problem(
                "",
                "the file is empty; a spec is a mapping with name, input and layers",
                1,
            )
        )
    return builder.document()


def _build_yaml(text: str) -> DocumentBuilder:
    """Return the DocumentBuilder fed with a YAML text's events; raises LoadError."""
    builder = DocumentBuilder()
    loader = _SpecYamlLoader(text)
    anchors: dict[str, tuple[object, int]] = {}
    open_anchors: list[tuple[str | None, int, object]] = []
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                _check_collection_tag(event, builder, line)
                container: dict | list = (
                    {} if isinstance(event, yaml.MappingStartEvent) else []
                )
                if builder.key_expected():
                    raise builder.value_problem(
                        "mapping keys must be plain names, not collections", line
                    )
                before = builder.nodes
                builder.start(container, line)
                open_anchors.append((event.anchor, before, container))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                builder.end()
                anchor, before, container = open_anchors.pop()
                if anchor:
                    anchors[anchor] = (container, builder.nodes - before)
            elif isinstance(event, yaml.ScalarEvent):
                try:
                    # a plain key is the name as written: YAML 1.1 would make `yes:` True
                    # and `1:` an int, which no key of a spec is
                    value = (
                        event.value
                        if builder.key_expected() and _plain_name(loader, event)
                        else _construct_scalar(loader, event, line)
                    )
                except LoadError as exc:
                    raise builder.value_problem(exc.problem.message, line) from None
                builder.scalar(value, line, event.value)
                if event.anchor:
                    anchors[event.anchor] = (value, 1)
            elif isinstance(event, yaml.AliasEvent):
                if event.anchor not in anchors:
                    raise builder.value_problem(
                        f"unknown alias '*{event.anchor}'", line
                    )
                value, size = anchors[event.anchor]
                builder.alias(value, size, line)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text) from None
    return builder


def _yaml_error(exc: yaml.YAMLError, text: str) -> LoadError:
    """Return PyYAML's (or libyaml's) complaint as a located LoadError, worded for people."""
    if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return LoadError(
            Problem(
                "",
                f"the character U+{code:04X} is not allowed in YAML; remove it",
                line,
            )
        )
    if not isinstance(exc, yaml.MarkedYAMLError):
        return LoadError(Problem("", f"YAML error: {exc}"))
    problem, context = exc.problem_mark, exc.context_mark
    mark = problem or context
    line = mark.line + 1 if mark else None
    found = exc.problem or exc.context or "unreadable YAML"
    if "maximum nesting depth" in found:  # libyaml's own limit, met before ours
        return LoadError(
            Problem(
                "",
                f"nested more than {MAX_DEPTH} levels deep; a spec needs a handful "
                "of levels",
                line,
            )
        )
    message = f"YAML syntax error: {found}"
    if exc.context and context and problem and context.line != problem.line:
        message += f" ({exc.context} that starts at line {context.line + 1})"
    if mark and _char_at(text, mark.line, mark.column) == "\t":
        message += "; YAML indents with spaces, not tabs"
    return LoadError(Problem("", message, line))


def _char_at(text: str, line: int, column: int) -> str:
    """Return the character at a 0-based line and column of `text` ('' when there is none)."""
    lines = text.split("\n", line + 1)
    return lines[line][column : column + 1] if line < len(lines) else ""


def _tag_message(tag: str) -> str:
    """Return why a YAML tag is refused, with what to write instead where that is clear."""
    if tag == "tag:yaml.org,2002:timestamp":
        return "this reads as a date in YAML; quote it to make it text"
    if tag == "tag:yaml.org,2002:merge":
        return "YAML merge keys (<<) are not supported; write the keys out"
    return f"YAML tag '{tag}' is not allowed; specs hold plain data only"


def _check_collection_tag(event, builder: DocumentBuilder, line: int) -> None:
    allowed = {None, "!", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"}
    if event.tag not in allowed:
        raise builder.value_problem(_tag_message(event.tag), line)


_RENAMED_KEY_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


def _plain_name(loader: yaml.SafeLoader, event: yaml.ScalarEvent) -> bool:
    """Return whether a plain scalar without a tag would read as a number, bool or null."""
    if event.tag is not None or event.style:
        return False
    tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    return tag in _RENAMED_KEY_TAGS


def _construct_scalar(loader: yaml.SafeLoader, event: yaml.ScalarEvent, line: int):
    if event.tag in (None, "!"):
        tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    else:
        tag = event.tag
    if tag not in _SAFE_SCALAR_TAGS:
        raise LoadError(Problem("", _tag_message(tag), line))
    if tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float"):
        digits = sum(ch.isdigit() for ch in event.value)
        if digits > MAX_NUMBER_DIGITS:
            raise LoadError(
                Problem(
                    "", f"a number with {digits} digits is too large for a spec", line
                )
            )
    node = yaml.ScalarNode(
        tag, event.value, event.start_mark, event.end_mark, event.style
    )
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as exc:
        raise LoadError(
            Problem("", f"cannot read {event.value[:40]!r}: {exc}", line)
        ) from None
    if event.tag in (None, "!") and isinstance(value, (int, float)):
        ambiguous = _yaml11_only_number(event.value, value)
        if ambiguous:
            raise LoadError(Problem("", ambiguous, line))
    return value


_OCTAL_11 = re.compile(r"[-+]?0[0-7_]+\Z")  # YAML 1.1 octal: 010 is 8; in YAML 1.2, 10


def _yaml11_only_number(text: str, number: float) -> str | None:
    """Return why a plain number is refused as ambiguous: YAML 1.1 (PyYAML) and YAML 1.2 read
    it differently (`010`: 8 or 10; `1:30`: 90 or the text), or None when both agree."""
    shown = text[:40]
    if ":" in text:  # base 60 in YAML 1.1: 1:30 is 90; text in YAML 1.2
        if float(number).is_integer():
            number = int(number)
        return (
            f"{shown} is ambiguous: YAML 1.1 reads it as {number} (base 60), YAML 1.2 as the "
            f"text '{shown}'; write {number} if that is the number meant, or quote it as text"
        )
    if _OCTAL_11.match(text) and text.strip("-+_0"):
        octal = int(text.replace("_", ""), 8)
        decimal = int(text.replace("_", ""), 10)
        return (
            f"{shown} is ambiguous: YAML 1.1 reads it as {octal} (octal), YAML 1.2 as "
            f"{decimal}; write {decimal} (or {octal}) without the leading 0, or quote it as text"
        )
    return None


_JSON_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\n]+)
      | (?P<punct>[{}\[\],:])
      | (?P<string>"(?:[^"\\\x00-\x1f]|\\.)*")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)(?![0-9A-Za-z_.])
      | (?P<word>true|false|null)(?![0-9A-Za-z_])
      | (?P<bad>NaN|-?Infinity)
    """,
    re.VERBOSE,
)


def _json_string(token: str, fail, start: int) -> str:
    """Return the text of a quoted JSON string token; raise a syntax error on a bad escape."""
    try:
        return json.loads(token)
    except ValueError as exc:
        raise fail(f"{exc.msg.lower()} in the string {token[:30]!r}", start) from None


def _json_unexpected(token: str, state: str, builder: DocumentBuilder) -> str:
    """Return what was expected where `token` stands, worded for a person fixing the file."""
    shown = repr(token[:20])
    in_mapping = bool(builder._stack) and isinstance(builder._stack[-1][0], dict)
    closer = "'}'" if in_mapping else "']'"
    if state == "comma_or_end":
        return f"expected ',' or {closer} before {shown} (a missing comma?)"
    if state == "colon":
        return f"expected ':' after the key, got {shown}"
    if token in "]}" and state in ("key", "value"):
        return f"a comma before {shown} is not allowed in JSON (a trailing comma?)"
    return f"unexpected {shown}"


def read_json(text: str) -> Document:
    """Return the Document of a JSON text; raises LoadError on syntax or safety problems."""
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    def line_at(pos: int) -> int:
        return bisect.bisect_right(newlines, pos - 1) + 1

    builder = DocumentBuilder()
    # Each open container expects: "value" | "key" | "colon" | "comma_or_end" (per frame)
    expect: list[str] = []
    pos, n = 0, len(text)

    def fail(message: str, at: int) -> LoadError:
        return LoadError(Problem("", f"JSON syntax error: {message}", line_at(at)))

    def value_done() -> None:
        if expect:
            expect[-1] = "comma_or_end"

    while pos < n:
        match = _JSON_TOKEN.match(text, pos)
        if not match:
            raise fail(f"unexpected character {text[pos]!r}", pos)
        kind, token, start = match.lastgroup, match.group(), pos
        pos = match.end()
        if kind == "ws":
            continue
        line = line_at(start)
        state = expect[-1] if expect else ("value" if not builder.has_root else "done")
        if state == "done":
            raise fail(
                f"unexpected {token[:20]!r} after the end of the document", start
            )
        if kind == "bad":
            raise builder.value_problem(
                f"{token} is not a number in JSON; write a finite number", line
            )
        if kind == "punct":
            if token in "{[" and state in ("value", "first_value"):
                builder.start({} if token == "{" else [], line)
                expect.append("first_key" if token == "{" else "first_value")
            elif (
                token == "}"
                and state in ("first_key", "comma_or_end")
                and isinstance(builder._stack[-1][0], dict)
            ):
                builder.end()
                expect.pop()
                value_done()
            elif (
                token == "]"
                and state in ("first_value", "comma_or_end")
                and isinstance(builder._stack[-1][0], list)
            ):
                builder.end()
                expect.pop()
                value_done()
            elif token == "," and state == "comma_or_end":
                expect[-1] = (
                    "key" if isinstance(builder._stack[-1][0], dict) else "value"
                )
            elif token == ":" and state == "colon":
                expect[-1] = "value"
            else:
                raise fail(_json_unexpected(token, state, builder), start)
            continue
        if state in ("key", "first_key"):
            if kind != "string":
                raise fail(f"expected a quoted key, got {token[:20]!r}", start)
            builder.scalar(_json_string(token, fail, start), line)
            expect[-1] = "colon"
            continue
        if state not in ("value", "first_value"):
            raise fail(_json_unexpected(token, state, builder), start)
        if kind == "string":
            value = _json_string(token, fail, start)
        elif kind == "word":
            value = {"true": True, "false": False, "null": None}[token]
        else:
            digits = sum(ch.isdigit() for ch in token)
            if digits > MAX_NUMBER_DIGITS:
                raise builder.value_problem(
                    f"a number with {digits} digits is too large for a spec", line
                )
            value = int(token) if re.fullmatch(r"-?[0-9]+", token) else float(token)
        builder.scalar(value, line, token)
        value_done()
    if expect:
        raise fail("unexpected end of file (an unclosed { or [)", n)
    if not builder.has_root:
        raise LoadError(
            Problem(
                "",
                "the file is empty; a spec is a mapping with name, input and layers",
                1,
            )
        )
    return builder.document()


_PLAIN_SCALARS = (str, bool, int, float, type(None))


def read_data(data: Any) -> Document:
    """Return the Document of Python data (a mapping given to load_spec), copied with the limits.

    The data goes through the same builder as a file, without recursion, so a mapping nested
    10,000 deep, NaN, an unhashable key or an object that is not plain data gets a located
    problem, never a RecursionError or a TypeError. Tuples count as lists.
    """
    builder = DocumentBuilder()
    stack: list[Any] = [iter([data])]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            if stack:
                builder.end()
            continue
        if isinstance(stack[-1], _MappingItems):
            key, item = item
            builder.scalar(key, None)
        if isinstance(item, Mapping):
            builder.start({}, None)
            stack.append(_MappingItems(item))
        elif isinstance(item, (list, tuple)):
            builder.start([], None)
            stack.append(iter(item))
        elif isinstance(item, _PLAIN_SCALARS):
            builder.scalar(item, None)
        else:
            raise builder.value_problem(
                "must be plain data (text, a number, true/false, null, a list or a mapping), "
                f"got {type(item).__name__}",
                None,
            )
    return builder.document()


class _MappingItems:
    """An iterator over a mapping's items that the walk can tell apart from a list's."""

    def __init__(self, mapping: Mapping) -> None:
        self._items = iter(list(mapping.items()))

    def __iter__(self) -> "_MappingItems":
        return self

    def __next__(self) -> tuple[Any, Any]:
        return next(self._items)


_END = object()
