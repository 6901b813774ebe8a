"""Problems found in a spec, and the one exception that carries them all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Problem:
    """One mistake in a spec: where it is (path, line) and what is wrong."""

    path: str
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        """Return the problem as `SOURCE:LINE: PATH: MESSAGE` (SPEC.md's format)."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


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


def format_path(loc: Iterable[object]) -> str:
    """Return a dotted path such as `layers[3].linear.out_features` from a pydantic-style loc."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
