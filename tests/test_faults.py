"""Faults during training, through the real `nnspec` CLI in subprocesses: kill -9, divergence,
an oversized model, damaged or hostile checkpoints given to `--resume` and `evaluate`, a changed
spec. (Ctrl-C is tested in tests/test_cli_train.py; save failures in-process in
tests/test_checkpoint_faults.py.)
"""

import csv
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent

SPEC = """\
name: Tiny
input: [1, 8, 8]
layers:
  - flatten
  - linear: 16
  - relu
  - linear: 10
training:
  data: {dataset: digits, val_fraction: 0.2}
  epochs: 100000
  batch_size: 64
  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
  early_stopping: null
  seed: 0
"""


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "runtime", *map(str, args)]


def environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    env.update(extra)
    return env


def nnspec(*args: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment(**extra),
        timeout=300,
    )


def assert_user_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    for fragment in fragments:
        assert fragment in done.stderr, done.stderr


def every_checkpoint_loads(out: Path) -> dict[str, dict]:
    """Return each `.pt` in `out` loaded with weights_only=True (a half-written one would raise)."""
    loaded = {
        p.name: torch.load(p, weights_only=True)
        for p in out.iterdir()
        if p.suffix == ".pt"
    }
    for payload in loaded.values():
        assert payload["epoch"] == len(payload["metrics"]) >= 1
        assert all(torch.isfinite(t).all() for t in payload["model"].values())
    return loaded


def csv_epochs(out: Path) -> list[dict]:
    with open(out / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def kill_when(process: subprocess.Popen, ready, deadline_s: float = 120) -> None:
    """SIGKILL `process` as soon as `ready()` holds (it must not have ended first)."""
    wait_until(ready, "the moment to kill the run", timeout=deadline_s, process=process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def test_kill_9_at_several_moments_leaves_loadable_checkpoints_and_resume_continues(
    tmp_path,
):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    last = out / "last.pt"
    popen = dict(
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=environment(),
    )

    # moment 1: the instant the first last.pt appears (the first epoch's write just ended)
    process = subprocess.Popen(command("train", spec, "--out", out, "--quiet"), **popen)
    kill_when(process, last.exists)
    first = every_checkpoint_loads(out)
    assert first["last.pt"]["epoch"] >= 1

    # moment 2: a resumed run killed mid-way, while it rewrites last.pt every 0.5 s (the
    # checkpoint policy; the kill falls at a random point of an epoch or of a write). What a
    # kill -9 can lose is bounded: last.pt is never older than checkpoint_seconds plus the
    # epoch in progress and the write in flight (tens of ms here; the slack is for a loaded
    # machine), and it is rewritten at most that often, not after each of the short epochs
    every = 0.5
    process = subprocess.Popen(
        command(
            "train",
            spec,
            "--out",
            out,
            "--quiet",
            "--resume",
            "--set",
            f"training.checkpoint_seconds={every}",
        ),
        **popen,
    )
    start = last.stat().st_mtime_ns
    seen = set()
    ages = []

    def after_four_rewrites():
        try:
            mtime = last.stat().st_mtime_ns
        except FileNotFoundError:  # never: os.replace swaps the name in one step
            raise AssertionError("last.pt vanished during a rewrite")
        seen.add(mtime)
        if len(seen - {start}) >= 2:  # the resumed run is writing on its own schedule
            ages.append(time.time() - mtime / 1e9)
        return len(seen - {start}) >= 4

    started = time.monotonic()
    kill_when(process, after_four_rewrites)
    elapsed = time.monotonic() - started
    second = every_checkpoint_loads(out)
    killed_at = second["last.pt"]["epoch"]
    assert killed_at >= first["last.pt"]["epoch"] + 4
    assert ages and max(ages) < every + 2.0, ages
    # four rewrites took at least three intervals (after the first epoch's write)
    assert elapsed >= 3 * every
    # metrics.csv is rewritten right after last.pt: never ahead of it
    assert first["last.pt"]["epoch"] < len(csv_epochs(out)) <= killed_at
    # the epochs done before the first kill were carried over, not redone
    assert (
        second["last.pt"]["metrics"][: len(first["last.pt"]["metrics"])]
        == first["last.pt"]["metrics"]
    )

    # finishing: resume for two more epochs; metrics go on from the last finished epoch
    done = nnspec(
        "train",
        spec,
        "--out",
        out,
        "--quiet",
        "--resume",
        "--epochs",
        killed_at + 2,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    final = every_checkpoint_loads(out)
    rows = csv_epochs(out)
    assert [int(row["epoch"]) for row in rows] == list(range(1, killed_at + 3))
    assert final["last.pt"]["metrics"][:killed_at] == second["last.pt"]["metrics"]
    # best.pt is the best epoch of the whole run, across both interruptions, never a worse one
    val = [float(row["val_loss"]) for row in rows]
    assert final["best.pt"]["epoch"] == val.index(min(val)) + 1
    # a temporary file a kill may leave is never taken for a checkpoint: no other .pt exists
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".pt") == [
        "best.pt",
        "last.pt",
    ]


def test_diverging_run_stops_at_that_epoch_keeps_best_pt_and_exits_1(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    # a sane first epoch, then a learning rate of 1e29: the loss is NaN in epoch 2
    done = nnspec(
        "train",
        spec,
        "--out",
        out,
        "--quiet",
        "--epochs",
        4,
        "--set",
        "training.scheduler={type: step, step_size: 1, gamma: 1.0e+30}",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "loss is not finite (nan) at epoch 2" in done.stderr
    assert [row["epoch"] for row in csv_epochs(out)] == [
        "1",
        "2",
    ]  # stopped there, not at 4
    assert csv_epochs(out)[1]["train_loss"] == "nan"
    kept = every_checkpoint_loads(out)
    assert kept["best.pt"]["epoch"] == 1 and kept["last.pt"]["epoch"] == 1


def test_a_model_of_10_to_the_12_parameters_is_refused_before_allocation(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text(
        SPEC.replace("input: [1, 8, 8]", "input: [1000000]").replace(
            "  - flatten\n  - linear: 16\n  - relu\n  - linear: 10\n",
            "  - linear: 1000000\n",
        )
    )
    out = tmp_path / "run"
    started = time.monotonic()
    done = nnspec("train", spec, "--out", out, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert_user_error(
        done, "1,000,001,000,000 parameters", "3.6 TiB as float32", "more than the"
    )
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [
        "huge.yaml"
    ]
    # no 3.6 TiB (nor any large part of it) was ever allocated: the child's peak memory is small
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 < 4 * 2**30
    assert (
        elapsed < 60
    )  # a generous bound for a loaded machine; an attempt to build would not end


class TouchMarker:
    """Unpickling this runs Path.touch: a stand-in for any code a hostile file would run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """Return (folder, spec file, run folder) of a 2-epoch run made by the CLI."""
    folder = tmp_path_factory.mktemp("faults")
    spec = folder / "tiny.yaml"
    spec.write_text(SPEC)
    done = nnspec(
        "train", spec, "--out", folder / "run", "--quiet", "--epochs", 2, cwd=folder
    )
    assert done.returncode == 0, done.stderr
    return folder, spec, folder / "run"


def test_damaged_hostile_or_foreign_checkpoints_are_refused_by_evaluate_and_resume(
    finished_run, tmp_path
):
    folder, spec, run = finished_run
    good = (run / "last.pt").read_bytes()
    marker = tmp_path / "marker"
    payload = torch.load(run / "last.pt", weights_only=True)
    payload["model"] = TouchMarker(marker)
    damages = {
        "truncated": lambda path: path.write_bytes(good[: len(good) // 2]),
        "corrupted": lambda path: path.write_bytes(good[:200] + bytes(len(good) - 200)),
        "pickle": lambda path: torch.save(payload, path),
    }
    runs = {}
    for name, damage in damages.items():
        copy = tmp_path / name
        copy.mkdir()
        for file in run.iterdir():
            (copy / file.name).write_bytes(file.read_bytes())
        damage(copy / "last.pt")
        runs[name] = copy
    # all six commands at once: each is mostly the start of a Python process with torch
    env = environment(TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    started = {}
    for name, copy in runs.items():
        for how in ("evaluate", "resume"):
            args = (
                ["evaluate", copy / "last.pt"]
                if how == "evaluate"
                else [
                    "train",
                    spec,
                    "--out",
                    copy,
                    "--quiet",
                    "--resume",
                    "--epochs",
                    3,
                ]
            )
            started[name, how] = subprocess.Popen(
                command(*args),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env=env,
            )
    expected = {
        "truncated": "truncated or corrupted",
        "corrupted": "is not a loadable nnspec checkpoint",
        "pickle": "refused for safety",
    }
    for (name, how), process in started.items():
        stdout, stderr = process.communicate(timeout=300)
        done = subprocess.CompletedProcess(
            process.args, process.returncode, stdout, stderr
        )
        assert_user_error(done, expected[name], str(runs[name] / "last.pt"))
        assert stderr.count("\n") == 1, stderr  # one line, no torch dump
    assert not marker.exists()
    for name, copy in runs.items():  # nothing in the folders was replaced
        assert sorted(p.name for p in copy.iterdir()) == sorted(
            p.name for p in run.iterdir()
        )
        assert (copy / "best.pt").read_bytes() == (run / "best.pt").read_bytes()
    # the hostile file was real: a plain (unsafe) load would have run its code
    torch.load(runs["pickle"] / "last.pt", weights_only=False)
    assert marker.exists()


def test_resume_with_a_changed_spec_is_refused_with_the_reason(finished_run):
    folder, spec, run = finished_run
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    changed = folder / "changed.yaml"
    changed.write_text(SPEC.replace("linear: 16", "linear: 17"))
    done = nnspec(
        "train",
        changed,
        "--out",
        run,
        "--quiet",
        "--resume",
        "--epochs",
        3,
        "--set",
        "training.optimizer.lr=0.5",
        cwd=folder,
    )
    assert_user_error(
        done,
        "was trained from another spec",
        "training.optimizer.lr: 0.1 in the checkpoint, 0.5 now",
    )
    assert "17" in done.stderr  # the layer change is listed too
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
