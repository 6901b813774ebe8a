"""The commands' shared helpers."""

import os
import stat

import pytest

from runtime.errors import UserError
from runtime.storage.atomic import write_text_atomically


def test_atomic_text_write_gives_a_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "sub" / "out.txt"
        write_text_atomically(target, "hello\n")
    finally:
        os.umask(old)
    assert target.read_text() == "hello\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == [
        "out.txt"
    ]  # no temporary file left


def test_atomic_text_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old\n")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(UserError, match="No space left"):
        write_text_atomically(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
