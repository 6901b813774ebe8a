"""`nnspec train` on the command line: outputs, report, errors and exit codes, Ctrl-C."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from runtime.cli.main import build_parser, main
from runtime.training.report import format_report
from tests.waiting import wait_until

SPEC = """\
name: TinyDigits
input: [1, 8, 8]
layers:
  - flatten
  - linear: 24
  - relu
  - dropout: 0.1
  - linear: {out_features: 10, name: head}
training:
  data: {dataset: digits, val_fraction: 0.2}
  epochs: 50
  batch_size: 64
  optimizer: {type: adam, lr: 0.01}
  early_stopping: {monitor: val_loss, patience: 5}
  seed: 0
"""


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(SPEC)
    return path


def test_train_writes_the_run_and_prints_the_report(spec_file, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            str(spec_file),
            "--out",
            str(out),
            "--epochs",
            "3",
            "--quiet",
            "--set",
            "layers.fc1.out_features=20",
            "--device",
            "cpu",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["epochs_run"] == 3 and summary["stop_reason"] == "max_epochs"
    assert summary["params"] == 64 * 20 + 20 + 20 * 10 + 10  # the --set took effect
    report = captured.out
    assert f"best epoch {summary['best_epoch']} (val_loss" in report
    assert "ran all epochs: epoch 3 of 3 (" in report and "reached epochs" not in report
    assert f"evaluate: nnspec evaluate {out / 'best.pt'}" in report
    assert "--set layers.fc1.out_features=20" in report and "--resume" in report
    assert captured.err == ""  # --quiet: no progress bar


def test_progress_bar_shows_losses_unless_quiet(spec_file, tmp_path, capsys):
    assert (
        main(["train", str(spec_file), "--out", str(tmp_path / "run"), "--epochs", "2"])
        == 0
    )
    err = capsys.readouterr().err
    assert "2/2" in err and "(train/val)" in err and "acc" in err


def test_default_out_is_runs_spec_stem(spec_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(spec_file), "--epochs", "1", "--quiet"]) == 0
    assert (tmp_path / "runs" / "tiny" / "best.pt").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--set", "layers.fc7.out_features=3"],
            "nnspec train: error: --set layers.fc7.out_features=3: no layer is named 'fc7'",
        ),
        (["--set", "training.optimizer.lr=-1"], "training.optimizer.lr: "),
        (
            ["--epochs", "0"],
            "nnspec train: error: --epochs must be a positive integer, got 0",
        ),
        (["--resume"], "nnspec train: error: nothing to resume"),
    ],
)
def test_user_errors_exit_2_without_traceback(
    spec_file, tmp_path, capsys, args, message
):
    code = main(
        ["train", str(spec_file), "--out", str(tmp_path / "run"), "--quiet", *args]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_existing_run_is_refused_then_resumed(spec_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(["train", str(spec_file), "--out", str(out), "--epochs", "2", "--quiet"])
        == 0
    )
    best = (out / "best.pt").read_bytes()
    assert (
        main(["train", str(spec_file), "--out", str(out), "--epochs", "2", "--quiet"])
        == 2
    )
    assert "already holds a run" in capsys.readouterr().err
    assert (out / "best.pt").read_bytes() == best
    assert (
        main(
            [
                "train",
                str(spec_file),
                "--out",
                str(out),
                "--epochs",
                "3",
                "--quiet",
                "--resume",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 3


def test_diverging_run_stops_keeps_best_and_exits_1(spec_file, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            str(spec_file),
            "--out",
            str(out),
            "--quiet",
            "--set",
            # a sane first epoch, then a learning rate of 1e28: the loss is NaN in epoch 2, so
            # there is a finite epoch to keep (an absurd lr from the start diverges in epoch 1,
            # and then no checkpoint is written at all)
            "training.scheduler={type: step, step_size: 1, gamma: 1.0e+30}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "not_finite"
    assert summary["epochs_run"] == summary["best_epoch"] == 1
    assert "loss is not finite" in err and "at epoch 2" in err
    assert "best.pt keeps epoch 1" in err
    assert "Traceback" not in err
    # what is kept is the last finite epoch, never the weights of the diverged one
    for name in ("last.pt", "best.pt"):
        kept = torch.load(out / name, weights_only=True)
        assert kept["epoch"] == 1, name
        assert all(torch.isfinite(v).all() for v in kept["model"].values()), name


def test_ctrl_c_saves_last_pt_prints_how_to_resume_and_exits_130(spec_file, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "runtime",
        "train",
        str(spec_file),
        "--out",
        str(out),
        "--quiet",
        "--epochs",
        "100000",
        "--set",
        "training.early_stopping=null",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    # last.pt is written by the first finished epoch, inside the loop that catches Ctrl-C
    wait_until((out / "last.pt").exists, "the first epoch's last.pt", process=process)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert (
        f"nnspec train {spec_file} --out {out} --set training.early_stopping=null --epochs 100000 --resume"
        in stderr
    )
    last = torch.load(out / "last.pt", weights_only=True)
    assert last["epoch"] >= 1 and len(last["metrics"]) == last["epoch"]
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["stop_reason"] == "interrupted"
        and summary["epochs_run"] == last["epoch"]
    )
    assert not [p for p in Path(out).iterdir() if p.name.endswith(".tmp")]


def test_committed_generated_class_trains_like_the_sequential(
    tmp_path, capsys, monkeypatch
):
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # generated/ is found relative to the working directory
    runs = {}
    for form in ("sequential", "generated"):
        out = tmp_path / form
        assert (
            main(
                [
                    "train",
                    "specs/digits_mlp.yaml",
                    "--out",
                    str(out),
                    "--epochs",
                    "2",
                    "--quiet",
                    "--form",
                    form,
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        with open(out / "metrics.csv") as f:
            runs[form] = [line.rsplit(",", 1)[0] for line in f]  # all but `seconds`
    assert "warning" not in capsys.readouterr().err  # generated/digits_mlp.py is fresh
    assert runs["generated"] == runs["sequential"] and len(runs["sequential"]) == 3


def test_a_model_too_large_for_memory_is_refused_before_anything(tmp_path, capsys):
    spec = tmp_path / "huge.yaml"
    spec.write_text(SPEC.replace("linear: 24", "linear: 1000000000"))
    started = time.monotonic()
    code = main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 10
    assert "parameters" in err and "more than the" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_the_commands_a_report_prints_run_for_a_spec_and_folder_named_with_a_dash(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-mlp.yaml").write_text(
        (Path(__file__).parent.parent / "specs" / "digits_mlp.yaml").read_text()
    )
    command = ["train", "--out=-run", "--epochs", "1", "--quiet", "--device", "cpu"]
    assert main(command + ["--", "-mlp.yaml"]) == 0
    lines = {
        line.split(":", 1)[0]: line.split(":", 1)[1]
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(("evaluate:", "resume:"))
    }
    evaluate = build_parser().parse_args(shlex.split(lines["evaluate"])[1:])
    assert (evaluate.command, evaluate.checkpoint) == ("evaluate", "-run/best.pt")
    resume = build_parser().parse_args(
        shlex.split(lines["resume"].split(" (with")[0])[1:]
    )
    assert (resume.spec, resume.out, resume.resume) == ("-mlp.yaml", "-run", True)
    # the report built from summary.json alone (no command given) says the same
    summary = json.loads((tmp_path / "-run" / "summary.json").read_text())
    line = next(
        line
        for line in format_report(summary).splitlines()
        if line.startswith("resume:")
    )
    again = build_parser().parse_args(shlex.split(line.split(" (with")[0])[2:])
    assert (again.spec, again.out, again.resume) == ("-mlp.yaml", "-run", True)


def test_the_hint_to_train_further_fits_the_printed_resume_command():
    from runtime.training.report import _further

    assert _further("nnspec train s.yaml --out r --resume", 5) == (
        " (with --epochs N, N > 5, to go further)"
    )
    # after `--` every word is the spec: --epochs goes before it
    assert _further("nnspec train --out r --resume -- -s.yaml", 5) == (
        " (with --epochs N before the --, N > 5, to go further)"
    )
    # a resume line that has --epochs already: raise it, do not add another
    for command in (
        "nnspec train s.yaml --out r --resume --epochs 5",
        "nnspec train --out r --resume --epochs=5 -- -s.yaml",
    ):
        assert (
            _further(command, 5) == " (with its --epochs raised above 5, to go further)"
        )


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "-net.yaml"],
        ["lint", "-net.yaml"],
        ["codegen", "--stdout", "-net.yaml"],  # unknown to the top parser
    ],
)
def test_a_spec_named_with_a_leading_dash_gets_a_hint_how_to_name_it(
    args, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-net.yaml").write_text(
        "name: Net\ninput: [4]\nlayers: [{linear: 2}]\n"
    )
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "'-net.yaml' is a file, read as an option because it begins with '-'" in err
    assert (
        f"write ./-net.yaml, or put it last, after -- (nnspec {args[0]} ... -- -net.yaml)"
        in err
    )
    if (
        args[0] != "codegen"
    ):  # (codegen wants a module name: the stem cannot begin with "-")
        assert main([args[0], "./-net.yaml"]) in (0, 1)
        assert main([args[0], "--", "-net.yaml"]) in (0, 1)
    # an option that names no file gets argparse's message alone
    with pytest.raises(SystemExit):
        main([args[0], "-nothere.yaml"])
    assert "is a file" not in capsys.readouterr().err
