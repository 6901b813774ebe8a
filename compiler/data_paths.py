"""Where a data file named in a spec is: relative paths are read from the spec file's folder."""

from __future__ import annotations

import os
from pathlib import Path

# what Spec.source is for a spec given as a mapping (no file, so no folder of its own)
NO_FILE = "<spec>"


def spec_folder(source: str | os.PathLike | None) -> Path | None:
    """Return the absolute folder of the spec file `source`, None for a spec without a file
    (its relative paths are then read from the working directory)."""
    if source is None or str(source) == NO_FILE:
        return None
    return Path(os.path.abspath(source)).parent


def resolve_data_path(path: str, folder: str | os.PathLike | None) -> str:
    """Return `path` as read: an absolute path as it is, a relative one inside `folder` (the
    spec's; the working directory when None)."""
    if folder is None or os.path.isabs(path):
        return path
    return str(Path(folder) / path)
