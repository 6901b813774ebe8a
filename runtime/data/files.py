"""Helpers shared by the readers of the user's own files: opening errors, did-you-mean, listings."""

from __future__ import annotations

import difflib
import os

from runtime.errors import UserError


def file_error(path: str, kind: str, exc: OSError) -> UserError:
    """Return the one-line UserError for a data file that cannot be opened."""
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
        return f" (did you mean '{lowered[name.lower()]}'?)"
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(names: list[str], limit: int = 12) -> str:
    """Return `names` quoted and comma-separated, cut after `limit` of them."""
    shown = ", ".join(f"'{name}'" for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
