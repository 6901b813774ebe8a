"""The run folder: held by one run at a time, and only files nnspec can prove it wrote are removed.

A run holds its folder with an OS lock (`flock` on the folder itself, so no lock file is left
behind): the lock dies with the process, so a run killed with -9 leaves no stale lock. Before
`--force` replaces a run, each file of it is checked to be nnspec's: a checkpoint names nnspec's
format in its first bytes, summary.json is nnspec's JSON and lists the files the run wrote, and
metrics.csv and curves.png count only beside such a file. Anything else is the user's and is
never removed.
"""

from __future__ import annotations

import json
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from runtime.errors import UserError
from runtime.storage.checkpoint import is_nnspec_checkpoint_file

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not protected from each other
    fcntl = None

RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "summary.json", "curves.png")
CHECKPOINTS = ("last.pt", "best.pt")
# set by `nnspec train --nproc N` for the processes it launches while it holds the lock itself
HELD_BY_LAUNCHER = "NNSPEC_RUN_FOLDER_HELD"


def _folder_key(out: Path) -> str:
    return os.path.realpath(out)


@contextmanager
def hold_run_folder(out: Path) -> Iterator[None]:
    """Hold `out` (which must exist) exclusively for the `with` block; raise UserError when
    another nnspec run holds it."""
    if fcntl is None or os.environ.get(HELD_BY_LAUNCHER) == _folder_key(out):
        yield
        return
    try:
        fd = os.open(out, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise UserError(f"cannot open --out {out}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(
                f"{out} is in use by another nnspec run (it holds the folder); wait for "
                "it to end or choose another --out"
            ) from None
        except (
            OSError
        ):  # a file system without locks (some network mounts): go on unheld
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def hold_for_launched_processes(out: Path) -> Iterator[None]:
    """Hold `out` while `nnspec train --nproc N` runs its processes, telling them it does."""
    with hold_run_folder(out):
        saved = os.environ.get(HELD_BY_LAUNCHER)
        os.environ[HELD_BY_LAUNCHER] = _folder_key(out)
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop(HELD_BY_LAUNCHER, None)
            else:
                os.environ[HELD_BY_LAUNCHER] = saved


def check_run_names_are_files(out: Path) -> None:
    """Raise UserError when a name nnspec writes in `out` is taken by a folder or anything but
    a regular file (a symlink too: replacing it would not write where it points)."""
    for name in RUN_FILES:
        path = out / name
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(mode):
            what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise UserError(
                f"{path} is {what}; nnspec writes a file of that name there: move it "
                "away or choose another --out"
            )


def _is_nnspec_summary(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "nnspec_version" in data and "files" in data


def _head(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(size)
    except OSError:
        return b""


def owned_run_files(out: Path) -> tuple[list[str], list[str]]:
    """Return (the run files in `out` nnspec wrote, those of the same names it did not)."""
    present = [name for name in RUN_FILES if (out / name).is_file()]
    ours = {name for name in CHECKPOINTS if name in present}
    ours = {name for name in ours if is_nnspec_checkpoint_file(out / name)}
    if "summary.json" in present and _is_nnspec_summary(out / "summary.json"):
        ours.add("summary.json")
    if (
        ours
    ):  # beside a file of a run, its csv and plot are the run's, by their first bytes
        if "metrics.csv" in present and _head(out / "metrics.csv", 6) == b"epoch,":
            ours.add("metrics.csv")
        if (
            "curves.png" in present
            and _head(out / "curves.png", 8) == b"\x89PNG\r\n\x1a\n"
        ):
            ours.add("curves.png")
    return [n for n in present if n in ours], [n for n in present if n not in ours]


def stale_temporaries(out: Path) -> list[Path]:
    """Return the temporary checkpoints a killed run left in `out` (regular files named like
    them whose bytes begin an nnspec checkpoint); a user's file of such a name is not one.
    """
    found = []
    for name in CHECKPOINTS:
        for path in out.glob(f".{name}.*.tmp"):
            if is_nnspec_checkpoint_file(path):
                found.append(path)
    return found
