"""The one atomic writer: every file nnspec writes goes through a temporary file, fsync and os.replace.

No torch here: `codegen` and `schema` write through it and must not load torch.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from typing import Sequence

from runtime.errors import UserError


def write_bytes_atomically(
    path: str | os.PathLike,
    data: bytes,
    *,
    also: Sequence[str | os.PathLike] = (),
    durable: bool = True,
) -> None:
    """Write `data` to `path` via a temporary file in the same folder, fsync and os.replace.

    A crash at any moment leaves either the old file or the new one, whole, and no temporary file
    once this returns or raises. Each path in `also` gets the same bytes after `path` does, as a
    hard link to the file just written (one write and one fsync for all of them), or written
    again where the file system has no hard links. A later write of `path` replaces its directory
    entry, never the file, so the other names keep their bytes. The file gets the mode any new
    file would get (mkstemp alone makes it 0600). `durable=False` skips the fsync, for a file
    rewritten every epoch whose content another file already keeps (metrics.csv): a crash may
    then leave the old version, never a torn one.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    links: list[tuple[str | None, Path]] = []
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), new_file_mode())
            if durable:
                os.fsync(f.fileno())
        for other in map(Path, also):
            links.append((_hard_link(tmp, other), other))
        os.replace(tmp, target)
        for link, other in links:
            if link is None:
                write_bytes_atomically(other, data, durable=durable)
            else:
                os.replace(link, other)
    except BaseException:
        for leftover in [tmp, *(link for link, _ in links)]:
            if leftover is not None and os.path.lexists(leftover):
                os.unlink(leftover)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8, newlines as written) to `path` atomically, creating its folder;
    raise UserError, naming the file, when the system refuses."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise UserError(f"cannot write {target}: {exc.strerror or exc}") from None


def _hard_link(source: str, target: Path) -> str | None:
    """Return a new temporary name beside `target` linked to `source`, or None where the file
    system refuses hard links (the caller then writes the bytes again)."""
    for _ in range(100):
        name = str(target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.link(source, name)
            return name
        except FileExistsError:
            continue
        except OSError:  # EPERM, ENOTSUP, EXDEV...: no hard links here
            return None
    return None


def current_umask() -> int:
    """Return the process umask without changing it, as other threads may create files meanwhile.

    Linux shows it in /proc/self/status; elsewhere it is read by the set-and-restore of os.umask,
    which is only unsafe against a thread creating a file in that instant.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Return the mode `open()` would give a new file: 0o666 less the process umask."""
    return 0o666 & ~current_umask()
