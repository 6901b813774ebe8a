"""Training in two processes on torch.distributed (gloo, CPU) follows a one-process run."""

import argparse
import csv
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import runtime.parallel.distributed
from runtime.cli.main import main
from runtime.cli.train import add_arguments, resume_command, start_command
from runtime.parallel.launcher import failed_exit_code
from tests.waiting import wait_until

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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def torchrun(*args, cwd) -> subprocess.CompletedProcess:
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        f"localhost:{free_port()}",
    ]
    return subprocess.run(
        [*launcher, "-m", "runtime", *args],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )


def losses(out: Path) -> list[tuple[float, float]]:
    with open(out / "metrics.csv") as handle:
        return [
            (float(row["train_loss"]), float(row["val_loss"]))
            for row in csv.DictReader(handle)
        ]


def max_difference(a, b) -> float:
    assert len(a) == len(b)
    return max(
        abs(x - y) for pair_a, pair_b in zip(a, b) for x, y in zip(pair_a, pair_b)
    )


@pytest.fixture(scope="module")
def one_process_losses(tmp_path_factory, one_torch_thread) -> list[tuple[float, float]]:
    """Return the (train, val) losses of SPEC trained 4 epochs in one process: the reference
    that the two-process runs follow, trained once for the module's tests that only read it.
    """
    folder = tmp_path_factory.mktemp("one-process")
    spec = folder / "mlp.yaml"
    spec.write_text(SPEC)
    with pytest.MonkeyPatch.context() as patch:
        # module scope: the autouse private_cache fixture does not reach here yet
        patch.setenv("NNSPEC_CACHE_DIR", str(folder / "nnspec-cache"))
        code = main(
            [
                "train",
                str(spec),
                "--out",
                str(folder / "one"),
                "--epochs",
                "4",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
    assert code == 0
    return losses(folder / "one")


def test_two_processes_follow_one_and_their_checkpoint_evaluates_and_resumes_alone(
    tmp_path, capsys, one_process_losses
):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    two = tmp_path / "two"
    done = nnspec(
        "train",
        str(spec),
        "--out",
        str(two),
        "--nproc",
        "2",
        "--quiet",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("best epoch") == 1  # one report: rank 0's

    reference = one_process_losses
    assert max_difference(losses(two), reference[:3]) < 1e-5

    checkpoint = torch.load(two / "last.pt", weights_only=True)
    assert not any(key.startswith("module.") for key in checkpoint["model"])
    capsys.readouterr()
    assert main(["evaluate", str(two / "last.pt"), "--json", "--device", "cpu"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["loss"] == pytest.approx(reference[2][1], abs=1e-5)

    # the two-process run continues in one process like the one-process run
    assert (
        main(
            [
                "train",
                str(spec),
                "--out",
                str(two),
                "--epochs",
                "4",
                "--resume",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert max_difference(losses(two), reference) < 1e-5


AUGMENTED_SPEC = """\
name: TinyConv
input: [1, 8, 8]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}
  - relu
  - flatten
  - linear: 10
training:
  data: {dataset: digits, noise: 0.1}
  epochs: 2
  batch_size: 100
  augment: {random_crop: {padding: 1}, horizontal_flip: true}
  channels_last: false  # as under --nproc, which never times it: nothing timed, nothing to differ
  early_stopping: null
  seed: 0
"""


def test_augmented_and_noised_batches_are_the_same_in_two_processes(tmp_path):
    # each sample's crop, flip and noise are drawn for the whole global batch, and each
    # process takes its part: two processes train as one does
    spec = tmp_path / "conv.yaml"
    spec.write_text(AUGMENTED_SPEC)
    common = ("--quiet", "--device", "cpu")
    assert main(["train", str(spec), "--out", str(tmp_path / "one"), *common]) == 0
    done = nnspec(
        "train",
        str(spec),
        "--out",
        str(tmp_path / "two"),
        "--nproc",
        "2",
        *common,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert max_difference(two, one) < 1e-5
    assert one[0][0] != one[1][0]  # it trained


def test_early_stopping_ends_both_processes_at_the_same_epoch_with_one_set_of_outputs(
    tmp_path, capsys
):
    spec = tmp_path / "mlp.yaml"
    # epoch 1 improves on nothing; no later epoch can improve by 100: patience 0 stops at 2
    spec.write_text(
        SPEC.replace(
            "early_stopping: null",
            "early_stopping: {monitor: val_loss, patience: 0, min_delta: 100}",
        )
        .replace("epochs: 3", "epochs: 5")
        .replace("  - relu\n", "  - batchnorm1d\n  - relu\n")
    )
    done = torchrun("train", str(spec), "--out", "run", "--device", "cpu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "early_stopping" and summary["epochs_run"] == 2
    assert done.stdout.count("best epoch") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlp.yaml", "run"]
    assert sorted(path.name for path in (tmp_path / "run").iterdir()) == [
        "best.pt",
        "curves.png",
        "last.pt",
        "metrics.csv",
        "summary.json",
    ]
    assert len(losses(tmp_path / "run")) == 2

    # with batch norm every process validates rank 0's running statistics: those it saves
    for name, epoch in (("best.pt", 1), ("last.pt", 2)):
        capsys.readouterr()
        assert (
            main(
                ["evaluate", str(tmp_path / "run" / name), "--json", "--device", "cpu"]
            )
            == 0
        )
        evaluation = json.loads(capsys.readouterr().out)
        assert evaluation["loss"] == pytest.approx(
            losses(tmp_path / "run")[epoch - 1][1], abs=1e-5
        )


def launched(*args, cwd) -> subprocess.Popen:
    """Start `nnspec ARGS` in a session of its own, as a terminal runs a command."""
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def processes_naming(text: str) -> list[int]:
    """Return the ids of the processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(
                errors="replace"
            ):
                found.append(int(entry.name))
        except OSError:  # ended meanwhile
            pass
    return found


@pytest.mark.parametrize(
    "case",
    ["spec mistake", "out holds a run", "nothing to resume", "resume of another spec"],
)
def test_a_mistake_under_nproc_is_one_message_and_starts_no_process(
    tmp_path, capsys, monkeypatch, case
):
    monkeypatch.setattr(
        runtime.parallel.distributed,
        "launch",
        lambda *a: pytest.fail("processes were launched despite the mistake"),
    )
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    args = [
        "train",
        str(spec),
        "--out",
        str(out),
        "--nproc",
        "2",
        "--quiet",
        "--device",
        "cpu",
    ]
    expected = {
        "spec mistake": "layers[3]",
        "out holds a run": "already holds a run",
        "nothing to resume": "nothing to resume",
        "resume of another spec": "trained from another spec",
    }[case]
    if case == "spec mistake":
        spec.write_text(SPEC.replace("linear: 10", "lineer: 10"))
    elif case == "out holds a run":
        out.mkdir()
        (out / "metrics.csv").write_text("epoch\n1\n")
    elif case == "nothing to resume":
        args.append("--resume")
    else:
        assert (
            main(
                [
                    "train",
                    str(spec),
                    "--out",
                    str(out),
                    "--epochs",
                    "1",
                    "--quiet",
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        args += ["--resume", "--set", "layers.1.out_features=32"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # one message, not one per process
    if case == "out holds a run":
        assert (out / "metrics.csv").read_text() == "epoch\n1\n"
    if case == "resume of another spec":
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_ctrl_c_stops_every_process_with_exit_130_and_the_run_resumes_in_one(tmp_path):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(
        SPEC.replace("epochs: 3", "epochs: 200").replace(
            "batch_size: 100", "batch_size: 16"
        )
    )
    out = tmp_path / "interrupted"
    process = launched(
        "train",
        str(spec),
        "--out",
        str(out),
        "--nproc",
        "2",
        "--quiet",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    wait_until(
        lambda: (out / "metrics.csv").is_file() and len(losses(out)) >= 1,
        "a finished epoch in metrics.csv",
        process=process,
    )
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C at a terminal does
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "Traceback" not in stdout
    assert stdout.count("best epoch") == 1
    resume_line = [line for line in stderr.splitlines() if "continue with:" in line]
    assert len(resume_line) == 1 and "--nproc 2" in resume_line[0]
    assert resume_line[0].endswith("--resume")
    assert processes_naming(str(out)) == []  # both processes ended with the launcher
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] >= 1 and len(last["metrics"]) == last["epoch"]
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["stop_reason"] == "interrupted"
        and summary["epochs_run"] == last["epoch"]
    )

    # one process continues the two-process run from its last finished epoch
    more = last["epoch"] + 1
    assert (
        main(
            [
                "train",
                str(spec),
                "--out",
                str(out),
                "--resume",
                "--epochs",
                str(more),
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["resumed_from_epoch"] == last["epoch"] and summary["epochs_run"] == more
    )
    rows = losses(out)
    assert len(rows) == more
    assert rows[: last["epoch"]] == [
        (r["train_loss"], r["val_loss"]) for r in last["metrics"]
    ]


def test_a_diverging_run_ends_both_processes_with_exit_1_and_one_message(tmp_path):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    process = launched(
        "train",
        str(spec),
        "--out",
        str(out),
        "--nproc",
        "2",
        "--quiet",
        "--device",
        "cpu",
        "--set",
        "training.optimizer.lr=1e30",
        cwd=tmp_path,
    )
    stdout, stderr = process.communicate(
        timeout=120
    )  # no process waits for another forever
    assert process.returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert stderr.count("is not finite") == 1, stderr
    assert stdout.count("diverged") == 1
    assert processes_naming(str(out)) == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "not_finite" and summary["epochs_run"] == 0
    assert not (out / "last.pt").exists() and "last.pt" not in summary["files"]


def test_a_one_process_run_resumed_in_two_follows_one_process(
    tmp_path, one_process_losses
):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(spec),
                "--out",
                str(out),
                "--epochs",
                "2",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    done = nnspec(
        "train",
        str(spec),
        "--out",
        str(out),
        "--epochs",
        "4",
        "--resume",
        "--nproc",
        "2",
        "--quiet",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["resumed_from_epoch"] == 2
    assert max_difference(losses(out), one_process_losses) < 1e-5


def test_the_launcher_ends_with_rank_0s_exit_code(capsys):
    assert failed_exit_code({0: 130}) == 130
    assert failed_exit_code({0: 1, 1: 2}) == 1
    assert failed_exit_code({1: 2}) == 2
    assert capsys.readouterr().err == ""
    # rank 1 was killed; torchrun then stopped rank 0 with SIGTERM: the cause is rank 1
    assert (
        failed_exit_code({0: -signal.SIGTERM, 1: -signal.SIGKILL})
        == 128 + signal.SIGKILL
    )
    assert "process 1 was killed by SIGKILL" in capsys.readouterr().err
    # rank 1 was killed and rank 0 did not stop within torchrun's 30 s, so torchrun killed
    # it too: found later, it is not the cause
    kill = -signal.SIGKILL
    assert failed_exit_code({0: kill, 1: kill}, found_at={0: 131, 1: 100}) == 137
    assert "process 1 was killed by SIGKILL" in capsys.readouterr().err
    assert failed_exit_code({0: kill, 1: kill}, found_at={0: 100, 1: 100}) == 137
    assert "process 0 was killed by SIGKILL" in capsys.readouterr().err
    assert failed_exit_code({0: -signal.SIGTERM, 1: 2}) == 2
    assert failed_exit_code({0: -signal.SIGTERM}) == 128 + signal.SIGTERM


@pytest.mark.parametrize("launcher", ["ended by itself", "killed"])
def test_what_a_killed_rank_0_left_half_written_goes_and_a_users_temporary_stays(
    tmp_path, capsys, monkeypatch, launcher
):
    spec = tmp_path / "mlp.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "run"
    out.mkdir()
    mine = (
        out / ".metrics.csv.mine.tmp"
    )  # there before the run: not the run's to remove
    mine.write_text("epoch,my notes\n")
    left = [out / ".last.pt.k1ll3d.tmp", out / ".summary.json.x.tmp"]

    def killed_while_writing(argv, nproc):
        assert argv[0] == "train" and argv[-2:] == ["--", str(spec)] and nproc == 2
        left[0].write_bytes(b"PK\x03\x04")  # a write cut short by kill -9
        left[1].write_text("{")
        # the launcher ends with rank 1's signal; killed itself, its processes may go on
        return (
            128 + signal.SIGKILL if launcher == "ended by itself" else -signal.SIGKILL
        )

    monkeypatch.setattr(runtime.parallel.distributed, "launch", killed_while_writing)
    code = main(
        ["train", str(spec), "--out", str(out), "--nproc", "2", "--quiet"]
        + ["--device", "cpu"]
    )
    if launcher == "ended by itself":
        assert code == 128 + signal.SIGKILL
        assert sorted(p.name for p in out.iterdir()) == [mine.name]
        err = capsys.readouterr().err
        assert "no epoch finished, so nothing was saved; start again with: " in err
    else:
        assert code == 128 + signal.SIGKILL
        assert all(path.exists() for path in left)
        assert "the launcher (torch.distributed.run) was killed by SIGKILL" in (
            capsys.readouterr().err
        )
    assert mine.read_text() == "epoch,my notes\n"


@pytest.mark.parametrize("name", ["mlp.yaml", "-mlp.yaml"])
def test_the_processes_get_the_command_line_back_whole(tmp_path, monkeypatch, name):
    # values that begin with "-" stay values in the command line each process parses, and a
    # spec file named "-mlp.yaml" (given after --) stays the spec
    (tmp_path / name).write_text(SPEC)
    monkeypatch.chdir(tmp_path)
    given = []
    monkeypatch.setattr(
        runtime.parallel.distributed, "launch", lambda argv, n: given.append(argv) or 0
    )
    command = ["train", "--out=-run", "--set", "training.epochs=2"]
    command += ["--form", "generated", "--epochs", "3", "--quiet", "--device", "cpu"]
    assert main(command + ["--nproc", "2", "--", name]) == 0
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    forwarded = vars(parser.parse_args(given[0][1:]))
    assert forwarded == vars(parser.parse_args(command[1:] + ["--", name]))
    assert forwarded["spec"] == name
    assert (
        tmp_path / "-run"
    ).is_dir()  # the folder the processes write, held meanwhile


@pytest.mark.parametrize("name", ["mlp.yaml", "-mlp.yaml"])
def test_the_commands_that_continue_or_restart_a_run_parse_back(name):
    # what a report prints ("continue with: ...", "start again with: ...") is a command that
    # runs: a folder or a spec named with a leading "-" stays a value
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    given = ["--out=-run", "--set", "training.epochs=2", "--nproc", "2", "--", name]
    args = parser.parse_args(given)
    for command, flag in (
        (resume_command(args, Path("-run")), "resume"),
        (start_command(args, Path("-run")), "force"),
    ):
        words = shlex.split(command)
        assert words[:2] == ["nnspec", "train"]
        again = vars(parser.parse_args(words[2:]))
        assert again == vars(args) | {flag: True}, command
    # the usual case reads as it always did
    if name == "mlp.yaml":
        assert resume_command(args, Path("run")) == (
            "nnspec train mlp.yaml --out run --set training.epochs=2 --nproc 2 --resume"
        )


def test_the_launcher_names_the_first_failure_torchrun_found(monkeypatch, capsys):
    from torch.distributed.elastic.multiprocessing.errors import (
        ChildFailedError,
        ProcessFailure,
    )

    import runtime.parallel.launcher as launcher

    def failure(rank, code, found_at):
        found = ProcessFailure(rank, 1000 + rank, code, "/nonexistent/error.json")
        found.timestamp = found_at
        return found

    def run(args):  # rank 1 killed; rank 0 killed 30 s later, not having stopped
        raise ChildFailedError(
            "runtime", {0: failure(0, -signal.SIGKILL, 130), 1: failure(1, -9, 100)}
        )

    monkeypatch.setattr(launcher, "run", run)
    monkeypatch.setattr(launcher, "parse_args", lambda argv: argv)
    assert launcher.main(["--standalone"]) == 128 + signal.SIGKILL
    assert "process 1 was killed by SIGKILL" in capsys.readouterr().err
