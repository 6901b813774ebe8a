"""Open the files a user names (specs, data sets) safely: regular files only, bounded reads.

Kept free of other imports, so `nnspec validate`'s cached path can use it for nothing.
"""

from __future__ import annotations

import os
import stat


class FileRefused(Exception):
    """A path that nnspec will not read as a file (a NUL in it, a device, a pipe, too large);
    `str()` says why, to follow the path in a message ("is a named pipe, not a regular file").
    """


def _kind_of(mode: int) -> str:
    """Return what a file of `mode` is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_file(path: str | os.PathLike):
    """Return the regular file at `path` opened for binary reading (symlinks followed).

    Raises FileRefused for a path with a NUL or anything but a regular file (a device such as
    /dev/zero, a named pipe, a socket, a folder), and OSError when it cannot be opened. The file
    is opened before it is checked, without blocking, so a named pipe neither hangs the open
    nor can stand in for the file between a check and the read.
    """
    if "\0" in os.fsdecode(path):
        raise FileRefused("contains a NUL character, which no file name can hold")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = _kind_of(mode)
            raise FileRefused(
                f"is {kind}, not a regular file"
                if kind != "not a regular file"
                else "is not a regular file"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(
    path: str | os.PathLike, limit: int, what: str = "files"
) -> bytes:
    """Return the bytes of the regular file at `path`, reading at most `limit` + 1 of them.

    Raises FileRefused (see `open_regular_file`, and for a file over `limit` bytes: "is N
    bytes; WHAT are limited to LIMIT") and OSError.
    """
    with open_regular_file(path) as file:
        size = os.fstat(file.fileno()).st_size
        raw = file.read(limit + 1) if size <= limit else b""
        if size > limit or len(raw) > limit:
            size = max(size, len(raw))
            raise FileRefused(f"file is {size} bytes; {what} are limited to {limit}")
    return raw
