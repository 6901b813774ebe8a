"""Problems found in a spec, and the one exception that carries them all."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One mistake in a spec: where it is (path, line) and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        """Return the problem as `SOURCE:LINE: PATH: MESSAGE` (SPEC.md's format), on one line."""
        where = f"{source}:{self.line}" if self.line is not None else source
        text = (
            f"{where}: {self.path}: {self.message}"
            if self.path
            else f"{where}: {self.message}"
        )
        return one_line(text)


def one_line(text: str) -> str:
    """Return `text` with every character that could break or fake a line shown as an escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class SpecError(ValueError):
    """A spec is invalid; `.problems` lists every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem], source: str = "<spec>"):
        self.problems: list[Problem] = sorted(
            problems, key=lambda p: (p.line if p.line is not None else 0)
        )
        self.source = source
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(p.format(self.source) for p in self.problems)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def format_path(loc: Iterable[object]) -> str:
    """Return a path such as `layers[3].linear.out_features` from a pydantic-style loc.

    Keys that are not plain names are quoted (`training['my key']`), so a path is never empty
    for a non-empty loc and never holds a line break.
    """
    out = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            shown = repr(part)
            out += f"[{shown if len(shown) <= 30 else shown[:27] + '...'}]"
    return out
