"""A parsed spec file: plain data plus the source line of every value, built without recursion.

Both the YAML and the JSON reader feed a `DocumentBuilder` with events (start of a mapping or a
sequence, a scalar, an end). The builder enforces the limits that keep hostile input harmless:
nesting depth, total node count (aliases included, so an alias bomb is refused, not expanded),
duplicate keys and non-finite numbers.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Problem, format_path

MAX_DEPTH = 64  # a spec needs about 6; deeper input is hostile or broken
MAX_NODES = 200_000  # a 10,000-layer spec stays far below this
MAX_NUMBER_DIGITS = 100  # longer numbers are never meaningful in a spec

Path = tuple  # a tuple of str keys and int indices


@dataclass
class Document:
    """Plain data (dicts, lists, scalars) and the line of each value, keyed by its path."""

    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """Return the line of the longest known prefix of `path`, or None."""
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]


class LoadError(Exception):
    """The file cannot be read as data at all; carries one Problem."""

    def __init__(self, problem: Problem):
        self.problem = problem
        super().__init__(problem.message)


_KEY_EXPECTED = object()
_SURROGATE = re.compile("[\ud800-\udfff]")


class DocumentBuilder:
    """Builds a Document from a stream of events, iteratively, with limits."""

    def __init__(self) -> None:
        self.root: Any = None
        self.has_root = False
        self.lines: dict[Path, int] = {}
        self._stack: list[list[Any]] = (
            []
        )  # [container, path, pending_key, sizes_so_far]
        self.nodes = 0

    # -- events ---------------------------------------------------------
    def start(self, container: dict | list, line: int | None) -> Path:
        """Open a mapping or sequence at `line`; return its path."""
        path = self._place(container, line, size=1)
        if len(self._stack) >= MAX_DEPTH:
            raise LoadError(
                Problem(
                    short_path(path),
                    f"nested more than {MAX_DEPTH} levels deep; a spec needs "
                    "a handful of levels",
                    line,
                )
            )
        self._stack.append([container, path, _KEY_EXPECTED])
        return path

    def end(self) -> None:
        """Close the innermost mapping or sequence."""
        self._stack.pop()

    def scalar(self, value: Any, line: int | None, text: str | None = None) -> None:
        """Add a scalar (or a mapping key, when a key is expected); `text` is how it was written."""
        if isinstance(value, str) and _SURROGATE.search(value):
            # JSON's "\ud800" escapes decode to text that cannot be written as UTF-8 anywhere
            bad = _SURROGATE.search(value).group()
            raise self.value_problem(
                f"contains the unpaired surrogate \\u{ord(bad):04x}, which is not valid text; "
                "remove it or write the whole character",
                line,
            )
        if (
            self._stack
            and isinstance(self._stack[-1][0], dict)
            and self._stack[-1][2] is _KEY_EXPECTED
        ):
            self._key(value, line)
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise self.value_problem(non_finite_message(value, text), line)
        self._place(value, line, size=1)

    def value_problem(self, message: str, line: int | None) -> LoadError:
        """Return a LoadError about the value about to be placed (or the key, when one is due)."""
        path = self._stack[-1][1] if self.key_expected() else self._next_path()
        return LoadError(Problem(short_path(path), message, line))

    def alias(self, value: Any, size: int, line: int) -> None:
        """Add a value that an alias refers to; it counts `size` nodes, as if written out."""
        if (
            self._stack
            and isinstance(self._stack[-1][0], dict)
            and self._stack[-1][2] is _KEY_EXPECTED
        ):
            raise LoadError(
                Problem(
                    format_path(self._stack[-1][1]), "an alias cannot be a key", line
                )
            )
        self._place(value, line, size=size)

    def key_expected(self) -> bool:
        """Return True when the next event is a mapping key."""
        return (
            bool(self._stack)
            and isinstance(self._stack[-1][0], dict)
            and self._stack[-1][2] is _KEY_EXPECTED
        )

    # -- internals --------------------------------------------------------
    def _key(self, key: Any, line: int | None) -> None:
        frame = self._stack[-1]
        container, path = frame[0], frame[1]
        if not isinstance(key, (str, int, bool)) and key is not None:
            shown = repr(key) if len(repr(key)) <= 40 else repr(key)[:37] + "..."
            where = "" if path else " (in the top-level mapping)"
            raise LoadError(
                Problem(
                    format_path(path),
                    f"mapping keys must be plain names, got {shown} "
                    f"({type(key).__name__}){where}",
                    line,
                )
            )
        if key in container:
            first = self.lines.get(path + (key,))
            where = f" (first at line {first})" if first else ""
            raise LoadError(
                Problem(
                    format_path(path + (key,)), f"duplicate key '{key}'{where}", line
                )
            )
        frame[2] = key
        # a value's line is its key's line: `layers:` rather than the first item below it
        if line is not None:
            self.lines[path + (key,)] = line

    def _next_path(self) -> Path:
        if not self._stack:
            return ()
        container, path, key = self._stack[-1]
        return path + ((len(container),) if isinstance(container, list) else (key,))

    def _place(self, value: Any, line: int | None, size: int) -> Path:
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise self.value_problem(
                f"the document expands to more than {MAX_NODES:,} values (an alias bomb or a "
                "runaway file); a spec is far smaller",
                line,
            )
        path = self._next_path()
        if not self._stack:
            if self.has_root:
                raise LoadError(Problem("", "more than one document in the file", line))
            self.root, self.has_root = value, True
        else:
            frame = self._stack[-1]
            container = frame[0]
            if isinstance(container, list):
                container.append(value)
            else:
                container[frame[2]] = value
                frame[2] = _KEY_EXPECTED
        if line is not None:
            self.lines.setdefault(path, line)
        return path

    def document(self) -> Document:
        """Return the finished Document."""
        return Document(self.root, self.lines)


def short_path(path: Path, keep: int = 6) -> str:
    """Return a path for a message, its middle elided when it is deep (`a[0][0]...[0]`)."""
    if len(path) <= keep + 1:
        return format_path(path)
    last = path[-1]
    tail = f"[{last}]" if isinstance(last, int) else f".{last}"
    return f"{format_path(path[:keep])}...{tail} ({len(path)} levels)"


def non_finite_message(value: float, text: str | None) -> str:
    """Return why a NaN or infinite number is refused, naming what was written."""
    written = f"{text[:40]!r}" if text is not None else str(value)
    if math.isnan(value):
        return f"must be a finite number, got {written} (not a number)"
    if text is not None and any(ch.isdigit() for ch in text):
        return (
            f"must be a finite number, got {written} (too large: it reads as infinity)"
        )
    return f"must be a finite number, got {written} (infinity)"
