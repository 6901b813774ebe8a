"""A checkpoint save that fails half-way leaves the previous file byte-identical and no temporary
file; a saved checkpoint gets the mode any new file gets under the umask (not mkstemp's 0600).
"""

import errno
import io
import os
import stat
from pathlib import Path

import pytest
import torch

from runtime.errors import UserError
from runtime.storage import atomic, checkpoint
from runtime.storage.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    read_checkpoint,
    write_checkpoint_atomically,
)


def payload(epoch: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": {
            "name": "M",
            "input": [2],
            "layers": [{"type": "linear", "out_features": 1}],
        },
        "spec_sha256": "0" * 64,
        "epoch": epoch,
        "model": {"fc1.weight": torch.full((64, 64), float(epoch))},
        "metrics": [],
    }


@pytest.fixture
def best(tmp_path) -> Path:
    path = tmp_path / "best.pt"
    write_checkpoint_atomically(path, payload(1))
    return path


def only_best_is_left(best: Path, before: bytes) -> None:
    assert best.read_bytes() == before
    assert sorted(p.name for p in best.parent.iterdir()) == [
        "best.pt"
    ]  # no temporary file
    assert read_checkpoint(best)["epoch"] == 1


def test_torch_save_writing_part_of_its_bytes_then_raising(best, monkeypatch):
    before = best.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        whole = io.BytesIO()
        real_save(obj, whole, *args, **kwargs)
        f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        raise RuntimeError("serialization failed half-way")

    monkeypatch.setattr(checkpoint.torch, "save", half_then_fail)
    with pytest.raises(RuntimeError, match="half-way"):
        write_checkpoint_atomically(best, payload(2))
    monkeypatch.undo()
    only_best_is_left(best, before)


class FillsTheDisk(io.FileIO):
    """A file that takes some bytes, then fails like a full disk."""

    def write(self, data):
        super().write(bytes(data)[:1000])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_during_the_write_itself(best, monkeypatch):
    before = best.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(
        atomic.os,
        "fdopen",
        lambda fd, mode="r", *a, **k: (
            FillsTheDisk(fd, "wb") if "w" in mode else real_fdopen(fd, mode, *a, **k)
        ),
    )
    with pytest.raises(
        UserError, match=f"cannot write {best}: No space left on device"
    ):
        write_checkpoint_atomically(best, payload(2))
    monkeypatch.undo()
    only_best_is_left(best, before)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077, 0o002])
def test_checkpoint_mode_follows_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        new = tmp_path / "new.pt"
        write_checkpoint_atomically(new, payload(1))
        replaced = tmp_path / "replaced.pt"
        replaced.write_bytes(b"old")
        os.chmod(replaced, 0o600)
        write_checkpoint_atomically(replaced, payload(2))
        plain = tmp_path / "plain"
        plain.write_bytes(b"")  # what any other new file gets
        assert atomic.current_umask() == umask
    finally:
        os.umask(previous)
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~umask
    assert stat.S_IMODE(new.stat().st_mode) == expected
    assert stat.S_IMODE(replaced.stat().st_mode) == expected
    assert read_checkpoint(replaced)["epoch"] == 2
