"""Signals through the real `nnspec train`: SIGTERM stops like Ctrl-C, a second interrupt stops
at once with one line, a killed process ends the others, and the report says what will work.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from compiler.formatting import plural
from runtime.cli.main import main
from runtime.training.report import format_report
from tests.test_ddp import SPEC as DDP_SPEC
from tests.test_ddp import launched, processes_naming
from tests.waiting import wait_until

SPEC = """\
name: TinyDigits
input: [1, 8, 8]
layers:
  - flatten
  - linear: 24
  - relu
  - linear: {out_features: 10, name: head}
training:
  data: {dataset: digits, val_fraction: 0.2}
  epochs: 100000
  batch_size: 64
  optimizer: {type: adam, lr: 0.01}
  early_stopping: null
  seed: 0
"""

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Running:
    """`nnspec ARGS` in a session of its own, its stderr read as it comes."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.chunks: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for chunk in iter(lambda: self.process.stderr.read(1), ""):
            self.chunks.append(chunk)

    @property
    def stderr(self) -> str:
        return "".join(self.chunks)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        stdout = self.process.stdout.read()
        self.process.wait(timeout=timeout)
        self.reader.join(timeout=10)
        return self.process.returncode, stdout, self.stderr


def no_temporary_files_and_whole_checkpoints(out: Path) -> None:
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    for path in out.glob("*.pt"):
        torch.load(path, weights_only=True)  # whole


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        for bad in ("Traceback", "Fatal Python error", "Exception ignored", "gloo"):
            assert bad not in text, text[-3000:]


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def test_sigterm_stops_one_process_like_ctrl_c_and_exits_143(spec_file, tmp_path):
    out = tmp_path / "run"
    run = Running("train", str(spec_file), "--out", str(out), "--quiet", cwd=tmp_path)
    wait_until(
        (out / "last.pt").exists, "the first epoch's last.pt", process=run.process
    )
    run.process.send_signal(signal.SIGTERM)
    code, stdout, stderr = run.finish()
    assert code == 143, stderr
    assert_no_traceback(stdout, stderr)
    resume = f"nnspec train {spec_file} --out {out} --resume"
    assert f"terminated (SIGTERM); continue with: {resume}" in stderr
    assert f"resume:   {resume}" in stdout
    last = torch.load(out / "last.pt", weights_only=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert summary["epochs_run"] == last["epoch"] >= 1
    assert summary["stop_message"].startswith("terminated (SIGTERM) ")
    no_temporary_files_and_whole_checkpoints(out)
    # the printed command goes on from there
    more = str(last["epoch"] + 1)
    words = shlex.split(resume)[1:] + ["--epochs", more, "--quiet"]
    assert main(words) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == int(more)


@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_stops_at_once_with_one_line(spec_file, tmp_path, second):
    out = tmp_path / "run"
    # with the progress bar: tqdm's monitor thread is running too
    run = Running("train", str(spec_file), "--out", str(out), cwd=tmp_path)
    wait_until(
        (out / "last.pt").exists, "the first epoch's last.pt", process=run.process
    )
    run.process.send_signal(signal.SIGINT)
    wait_until(lambda: "stopping after this batch" in run.stderr, "the first answer")
    run.process.send_signal(second)
    code, stdout, stderr = run.finish()
    assert code == 128 + second, stderr
    assert_no_traceback(stdout, stderr)
    lines = [line for line in stderr.splitlines() if "again: stopping now" in line]
    assert len(lines) == 1, stderr
    epoch = torch.load(out / "last.pt", weights_only=True)["epoch"]
    word = "interrupted" if second == signal.SIGINT else "terminated"
    assert lines[0].startswith(
        f"{word} again: stopping now; last.pt holds epoch {epoch}"
    )
    assert lines[0].endswith(
        f"continue with: nnspec train {spec_file} --out {out} --resume"
    )
    no_temporary_files_and_whole_checkpoints(out)


def test_ctrl_c_in_the_first_epoch_says_nothing_was_saved_and_how_to_start(
    spec_file, tmp_path
):
    out = tmp_path / "run"
    # one sample a batch: the first epoch lasts long enough to be interrupted
    run = Running(
        "train", str(spec_file), "--out", str(out), "--set", "training.batch_size=1",
        cwd=tmp_path,
    )  # fmt: skip
    # the bar is drawn once training has begun (the signal is then the loop's to handle)
    wait_until(lambda: "/100000" in run.stderr, "the progress bar", process=run.process)
    run.process.send_signal(signal.SIGINT)
    code, stdout, stderr = run.finish()
    assert code == 130, stderr
    assert_no_traceback(stdout, stderr)
    assert not (out / "last.pt").exists()
    assert "--resume" not in stdout + stderr
    assert "before any epoch finished" in stdout
    assert "nothing was saved" in stdout
    start = f"nnspec train {spec_file} --out {out} --set training.batch_size=1 --force"
    assert (
        f"interrupted before the first epoch finished, so nothing was saved; start "
        f"again with: {start}" in stderr
    )
    # what it prints works
    assert main(shlex.split(start)[1:] + ["--epochs", "1", "--quiet"]) == 0


def test_a_resumed_run_with_nothing_left_to_train_says_so(spec_file, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", str(spec_file), "--out", str(out), "--quiet"]
    assert main([*args, "--epochs", "2"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "1", "--resume"]) == 0
    report = capsys.readouterr().out
    assert "nothing left to train: the run already holds 2 epochs, and epochs is 1" in (
        report
    )
    assert "of 1" not in report
    # the printed command has --epochs 1: it is to be raised, not repeated
    assert (
        "--epochs 1 --resume (with its --epochs raised above 2, to go further)"
        in report
    )


def test_the_report_counts_in_the_singular_and_plural():
    assert plural(1, "parameter") == "1 parameter"
    assert plural(0, "epoch") == "0 epochs"
    assert plural(1810, "parameter") == "1,810 parameters"
    summary = {
        "name": "One",
        "form": "sequential",
        "params": 1,
        "data": "digits",
        "device": "cpu",
        "task": "classification",
        "stop_reason": "max_epochs",
        "stop_message": "reached epochs: 1",
        "epochs_run": 1,
        "epochs": 1,
        "resumed_from_epoch": 1,
        "seconds": 0.1,
        "best_epoch": 0,
        "files": {},
        "out": "run",
        "spec": "one.yaml",
    }
    report = format_report(summary)
    assert "(sequential, 1 parameter)" in report
    assert "the run already holds 1 epoch," in report


def ddp_spec(tmp_path) -> Path:
    spec = tmp_path / "mlp.yaml"
    spec.write_text(
        DDP_SPEC.replace("epochs: 3", "epochs: 100000").replace(
            "batch_size: 100", "batch_size: 16"
        )
    )
    return spec


def ddp_run(tmp_path, out: Path) -> subprocess.Popen:
    process = launched(
        "train", str(ddp_spec(tmp_path)), "--out", str(out), "--nproc", "2", "--quiet",
        "--device", "cpu", cwd=tmp_path,
    )  # fmt: skip
    wait_until((out / "last.pt").exists, "a finished epoch's last.pt", process=process)
    return process


def workers(out: Path) -> dict[int, int]:
    """Return {rank: pid} of the training processes of the run in `out`."""
    found = {}
    for pid in processes_naming(str(out)):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                found[int(item[5:])] = pid
    return found


def test_sigterm_to_nproc_2_stops_every_process_and_exits_143(tmp_path):
    out = tmp_path / "run"
    process = ddp_run(tmp_path, out)
    os.kill(process.pid, signal.SIGTERM)  # the command only, as a supervisor does
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr[-3000:]
    assert_no_traceback(stdout, stderr)
    assert processes_naming(str(out)) == []  # nothing goes on writing
    hint = [line for line in stderr.splitlines() if "continue with:" in line]
    assert len(hint) == 1 and hint[0].startswith("terminated (SIGTERM); ")
    assert hint[0].endswith("--nproc 2 --resume")
    summary = json.loads((out / "summary.json").read_text())
    last = torch.load(out / "last.pt", weights_only=True)
    assert summary["stop_reason"] == "interrupted"
    assert summary["epochs_run"] == last["epoch"]
    no_temporary_files_and_whole_checkpoints(out)


@pytest.mark.parametrize("rank", [1, 0])
def test_a_worker_killed_with_9_ends_the_others_with_one_message(tmp_path, rank):
    out = tmp_path / "run"
    process = ddp_run(tmp_path, out)
    ranks = workers(out)
    assert sorted(ranks) == [0, 1]
    os.kill(ranks[rank], signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGKILL, stderr[-3000:]
    assert_no_traceback(stdout, stderr)
    assert processes_naming(str(out)) == []
    assert f"nnspec train: error: process {rank} was killed by SIGKILL" in stderr
    epoch = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert f"{out / 'last.pt'} keeps epoch {epoch}; continue with: nnspec train " in (
        stderr
    )
    assert stderr.rstrip().endswith("--nproc 2 --resume")
    no_temporary_files_and_whole_checkpoints(out)


def test_the_processes_stop_when_the_launcher_alone_is_killed_with_9(tmp_path):
    out = tmp_path / "run"
    process = ddp_run(tmp_path, out)
    ranks = workers(out)
    assert sorted(ranks) == [0, 1]
    (launcher,) = [
        pid for pid in processes_naming(str(out)) if pid not in ranks.values()
        and b"runtime.parallel.launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]  # fmt: skip
    os.kill(launcher, signal.SIGKILL)  # as the OOM killer would
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGKILL, stderr[-3000:]
    assert_no_traceback(stdout, stderr)
    # the command waited for them: nothing goes on writing after it ended
    assert processes_naming(str(out)) == []
    assert (
        "nnspec train: error: the launcher (torch.distributed.run) was killed by SIGKILL; "
        "its processes were stopped with SIGTERM" in stderr
    )
    hint = [line for line in stderr.splitlines() if "continue with:" in line]
    assert len(hint) == 1 and hint[0].startswith("terminated (SIGTERM); ")
    assert hint[0].endswith("--nproc 2 --resume")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert (
        summary["epochs_run"] == torch.load(out / "last.pt", weights_only=True)["epoch"]
    )
    no_temporary_files_and_whole_checkpoints(out)


def test_the_launcher_stops_the_run_when_the_command_is_killed_with_9(tmp_path):
    out = tmp_path / "run"
    process = ddp_run(tmp_path, out)
    process.kill()  # the launcher is told by the system (Linux) and stops the run
    process.communicate(timeout=30)
    wait_until(lambda: processes_naming(str(out)) == [], "every process to end", 90)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    assert summary["stop_message"].startswith("terminated (SIGTERM) ")
    no_temporary_files_and_whole_checkpoints(out)


def test_a_sigterm_while_the_outputs_are_written_lets_them_finish(
    tmp_path, monkeypatch
):
    # the end-of-run writes happen under the run's own signal handling: a first SIGTERM there
    # (matplotlib's import and the plot take seconds) must not kill the process mid-write
    from compiler import load_spec
    from runtime.training import plots
    from runtime.training.train import train_spec

    real = plots.write_curves

    def terminated_meanwhile(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(plots, "write_curves", terminated_meanwhile)
    spec = load_spec(
        {
            "name": "Tiny",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 8}, "relu", {"linear": 10}],
            "training": {"epochs": 1, "early_stopping": None},
        }
    )
    out = tmp_path / "run"
    summary = train_spec(spec, out_dir=out, quiet=True)
    assert (
        summary["stop_reason"] != "interrupted"
    )  # the run had ended: it stays complete
    assert json.loads((out / "summary.json").read_text())["epochs_run"] == 1
    assert (out / "curves.png").is_file() and (out / "metrics.csv").is_file()
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_IGN
