"""Training in two processes on torch.distributed (gloo, CPU) follows a one-process run."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from runtime.cli import main

SPEC = """\
name: TinyMLP
input: [1, 8, 8]
layers:
  - flatten
  - linear: 16
  - relu
  - linear: 10
training:
  data: {dataset: digits, val_fraction: 0.2}
  epochs: 3
  batch_size: 100
  optimizer: {type: sgd, lr: 0.1, momentum: 0.9}
  early_stopping: null
  seed: 0
"""
# 1437 training samples: the last global batch (37) splits 19/18 over two processes


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def child_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def nnspec(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "runtime", *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=240)


def torchrun(*args, cwd) -> subprocess.CompletedProcess:
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{free_port()}"]
    return subprocess.run([*launcher, "-m", "runtime", *args], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=240)


def losses(out: Path) -> list[tuple[float, float]]:
    with open(out / "metrics.csv") as handle:
        return [(float(row["train_loss"]), float(row["val_loss"])) for row in csv.DictReader(handle)]


def max_difference(a, b) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for pair_a, pair_b in zip(a, b) for x, y in zip(pair_a, pair_b))


def test_two_processes_follow_one_and_their_checkpoint_evaluates_and_resumes_alone(
    tmp_path, capsys
):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    two = tmp_path / "two"
    done = nnspec("train", str(spec), "--out", str(two), "--nproc", "2", "--quiet",
                  "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # one report: rank 0's

    one = tmp_path / "one"
    assert main(["train", str(spec), "--out", str(one), "--epochs", "4", "--quiet",
                 "--device", "cpu"]) == 0
    reference = losses(one)
    assert max_difference(losses(two), reference[:3]) < 1e-5

    checkpoint = torch.load(two / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in checkpoint["model"])
    capsys.readouterr()
    assert main(["evaluate", str(two / "last.pt"), "--json", "--device", "cpu"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["loss"] == pytest.approx(reference[2][1], abs=1e-5)

    # the two-process run continues in one process like the one-process run
    assert main(["train", str(spec), "--out", str(two), "--epochs", "4", "--resume",
                 "--quiet", "--device", "cpu"]) == 0
    assert max_difference(losses(two), reference) < 1e-5


def test_early_stopping_ends_both_processes_at_the_same_epoch_with_one_set_of_outputs(tmp_path):
    spec = tmp_path / "mlp.yaml"
    # epoch 1 improves on nothing; no later epoch can improve by 100: patience 0 stops at 2
    spec.write_text(SPEC.replace(
        "early_stopping: null",
        "early_stopping: {monitor: val_loss, patience: 0, min_delta: 100}",
    ).replace("epochs: 3", "epochs: 5"))
    done = torchrun("train", str(spec), "--out", "run", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping" and summary["epochs_run"] == 2
    assert done.stdout.count("best epoch") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlp.yaml", "run"]
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [
        "best.pt", "curves.png", "last.pt", "metrics.csv", "summary.json"]
    assert len(losses(tmp_path / "run")) == 2
