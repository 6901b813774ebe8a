"""Helpers shared by the readers of the user's own files: opening errors, did-you-mean, listings."""

from __future__ import annotations

import difflib
import os

from compiler.files import FileRefused, open_regular_file
from runtime.errors import UserError, shown

# A data file larger than this is refused before it is read: it would not fit in memory as
# Python values anyway (a csv cell costs tens of bytes as a str), and it stops a path that
# names a growing file or a device mistaken for a file from running the machine out of memory.
MAX_DATA_BYTES = 4 * 1024**3


def open_data_file(path: str, kind: str, limit: int = MAX_DATA_BYTES):
    """Return the regular file `path` opened in binary; raise UserError for a missing or
    unreadable path, a device, a named pipe (never waited on) or a file over `limit` bytes.
    """
    try:
        file = open_regular_file(path)
    except FileRefused as exc:
        reason = (
            "is a folder, not a file" if str(exc).startswith("is a folder") else exc
        )
        raise UserError(f"{kind} '{shown(path)}' {reason}") from None
    except OSError as exc:
        raise file_error(path, kind, exc) from None
    size = os.fstat(file.fileno()).st_size
    if size > limit:
        file.close()
        raise UserError(
            f"{kind} '{shown(path)}' is {size:,} bytes, more than the {limit:,} a data file "
            f"may hold"
        )
    return file


def file_error(path: str, kind: str, exc: OSError) -> UserError:
    """Return the one-line UserError for a data file that cannot be opened."""
    path = shown(path)
    if isinstance(exc, FileNotFoundError):
        where = (
            ""
            if os.path.isabs(path)
            else f" (relative paths are read from {os.getcwd()})"
        )
        return UserError(f"{kind} '{path}' not found{where}")
    if isinstance(exc, IsADirectoryError):
        return UserError(f"{kind} '{path}' is a folder, not a file")
    if isinstance(exc, PermissionError):
        return UserError(f"{kind} '{path}' cannot be read: permission denied")
    return UserError(f"{kind} '{path}' cannot be read: {exc.strerror or exc}")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest of `choices` to `name`, or ""."""
    lowered = {choice.lower(): choice for choice in choices}
    if name.lower() in lowered:
        return f" (did you mean '{shown(lowered[name.lower()])}'?)"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{shown(close[0])}'?)" if close else ""


def listing(names: list[str], limit: int = 12) -> str:
    """Return `names` quoted and comma-separated, cut after `limit` of them."""
    text = ", ".join(f"'{shown(name)}'" for name in names[:limit])
    return text + (f", ... ({len(names)} in all)" if len(names) > limit else "")
