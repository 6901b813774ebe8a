"""The error a command raises for a user's mistake: one clear line, exit code 2, no traceback."""

from __future__ import annotations

from compiler.errors import one_line


class UserError(Exception):
    """A mistake in what the user asked for (a missing file, a bad option); `str()` says what."""

    exit_code = 2


def shown(value: object) -> str:
    """Return user data (a path, a cell, a key) for a message: every control character, line
    break included, written as an escape (`\\n`, `\\x1b`), so it can neither break nor fake a line
    of the terminal."""
    return one_line(str(value))


def printable_message(text: str) -> str:
    """Return a message for the terminal with control characters escaped, its own line breaks
    kept: the last line of defence for user data a message did not pass through `shown`.
    """
    return "\n".join(one_line(line) for line in text.split("\n"))
