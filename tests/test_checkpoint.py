"""Checkpoint files: atomic writes that never leave a half file, and loads that never run code."""

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime.errors import UserError
from runtime.storage import atomic
from runtime.storage.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    read_checkpoint,
    write_checkpoint_atomically,
)


def payload(epoch: int = 1) -> dict:
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
        "model": {
            "fc1.weight": torch.full((1, 2), float(epoch)),
            "fc1.bias": torch.zeros(1),
        },
        "metrics": [{"epoch": 1, "train_loss": 0.5, "train_accuracy": None}],
        "early_stopping": {"best": float("inf"), "wait": 0},
    }


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_round_trip(tmp_path):
    path = tmp_path / "best.pt"
    write_checkpoint_atomically(path, payload(3))
    loaded = read_checkpoint(path)
    assert loaded["epoch"] == 3
    assert torch.equal(loaded["model"]["fc1.weight"], torch.full((1, 2), 3.0))
    assert loaded["early_stopping"]["best"] == float("inf")
    assert leftovers(tmp_path) == []


def test_crash_between_write_and_replace_keeps_the_old_file_whole(
    tmp_path, monkeypatch
):
    path = tmp_path / "best.pt"
    write_checkpoint_atomically(path, payload(1))
    before = path.read_bytes()

    def crash(src, dst):
        raise KeyboardInterrupt  # the process dies right before the rename

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_checkpoint_atomically(path, payload(2))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    assert read_checkpoint(path)["epoch"] == 1


def test_disk_full_while_writing_keeps_the_old_file_and_says_why(tmp_path, monkeypatch):
    path = tmp_path / "best.pt"
    write_checkpoint_atomically(path, payload(1))
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(UserError, match="No space left on device"):
        write_checkpoint_atomically(path, payload(2))
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_exception_while_serializing_leaves_best_pt_byte_identical(tmp_path):
    path = tmp_path / "best.pt"
    write_checkpoint_atomically(path, payload(1))
    before = path.read_bytes()
    broken = payload(2)
    broken["model"]["oops"] = lambda: None  # torch.save cannot pickle a lambda
    with pytest.raises(Exception):
        write_checkpoint_atomically(path, broken)
    assert path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_truncated_file_is_a_clear_user_error(tmp_path):
    path = tmp_path / "last.pt"
    write_checkpoint_atomically(path, payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        UserError,
        match="not a loadable nnspec checkpoint: the file is truncated or corrupted",
    ):
        read_checkpoint(path)


@pytest.mark.parametrize(
    "content", [b"", b"hello, not a checkpoint", b"PK\x03\x04" + b"\0" * 40]
)
def test_garbage_is_a_clear_user_error(tmp_path, content):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(UserError, match="not a loadable nnspec checkpoint"):
        read_checkpoint(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(UserError, match="is a folder"):
        read_checkpoint(tmp_path)


def test_torch_file_that_nnspec_did_not_write_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"fc1.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="not an nnspec checkpoint"):
        read_checkpoint(path)
    data = payload()
    del data["spec"]
    torch.save(data, path)
    with pytest.raises(UserError, match="damaged: it lacks spec"):
        read_checkpoint(path)


class TouchMarker:
    """Unpickling this runs Path.touch: a stand-in for any code a hostile file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_payload_runs_nothing_even_with_the_unsafe_env_var(
    tmp_path, monkeypatch
):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    data = payload()
    data["model"] = TouchMarker(marker)
    torch.save(data, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UserError, match="refused for safety"):
        read_checkpoint(path)
    assert not marker.exists()
    assert (
        os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] == "1"
    )  # restored for the caller
    # the same file with the plain pickle module would have run the code: the test is real
    with open(path, "rb"):
        pass
    pickle.loads(pickle.dumps(TouchMarker(marker)))
    assert marker.exists()


def test_cli_evaluate_on_a_pickle_payload_exits_2_without_running_it(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    data = payload()
    data["model"] = TouchMarker(marker)
    torch.save(data, path)
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "evaluate", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert "refused for safety" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def test_also_gives_the_other_name_the_same_bytes_and_a_later_write_leaves_it_alone(
    tmp_path,
):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    atomic.write_bytes_atomically(last, b"epoch 1", also=[best])
    assert last.read_bytes() == best.read_bytes() == b"epoch 1"
    assert os.stat(last).st_ino == os.stat(best).st_ino  # one file, written once
    atomic.write_bytes_atomically(last, b"epoch 2")
    assert (last.read_bytes(), best.read_bytes()) == (b"epoch 2", b"epoch 1")
    assert leftovers(tmp_path) == []


def test_also_writes_the_bytes_again_where_hard_links_are_refused(
    tmp_path, monkeypatch
):
    def no_links(source, target):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    atomic.write_bytes_atomically(last, b"epoch 1", also=[best])
    assert last.read_bytes() == best.read_bytes() == b"epoch 1"
    assert os.stat(last).st_ino != os.stat(best).st_ino
    assert leftovers(tmp_path) == []


def test_a_crash_before_the_second_name_is_replaced_leaves_it_whole_and_no_temporary(
    tmp_path, monkeypatch
):
    last, best = tmp_path / "last.pt", tmp_path / "best.pt"
    atomic.write_bytes_atomically(last, b"epoch 1", also=[best])
    real_replace = os.replace

    def die_at_best(source, target):
        if Path(target).name == "best.pt":
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", die_at_best)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_bytes_atomically(last, b"epoch 2", also=[best])
    # last.pt is ahead of best.pt, never the other way round
    assert (last.read_bytes(), best.read_bytes()) == (b"epoch 2", b"epoch 1")
    assert leftovers(tmp_path) == []
