"""Small pieces the commands share."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from runtime.errors import UserError


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file and os.replace; raise UserError on failure."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(
                tmp, default_file_mode()
            )  # mkstemp makes 0600; a normal file is 0666 & ~umask
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None


def default_file_mode() -> int:
    """Return the mode `open()` would give a new file: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
