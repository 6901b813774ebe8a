"""How numbers and shapes read in messages, tables and generated comments: one rule for each."""

from __future__ import annotations

from typing import Iterable


def format_shape(shape: Iterable[int]) -> str:
    """Return a shape as `[16, 4, 4]`."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def batched_shape(shape: Iterable[int]) -> str:
    """Return a sample shape with the batch dimension in front, e.g. `[N, 16, 8, 8]`."""
    return "[" + ", ".join(["N", *(str(int(d)) for d in shape)]) + "]"


def format_bytes(n: float, digits: int = 1) -> str:
    """Return a byte count in binary units, `digits` decimals above bytes: `1.5 GiB`, `512 B`."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    for unit in units:
        if n < 1024 or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.{digits}f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_count(n: int) -> str:
    """Return a count in 3 significant digits with K, M, G, T: `1.81G`, `118M`, `4.7K`, `96`."""
    if n < 1000:
        return str(n)
    for unit in ("K", "M", "G", "T", "P"):
        n /= 1000
        if n < 999.5 or unit == "P":
            return f"{n:.3g}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def plural(count: int, word: str, many: str | None = None) -> str:
    """Return `1 epoch`, `2 epochs`, `3 classes`: the count with the word it takes (`many`, when
    the plural is not `word` + s)."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {many or word + 's'}"
