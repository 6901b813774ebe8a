"""Denormal floats are flushed to zero in every thread of `nnspec train`, which sets the mode
before torch starts its threads, and `flushing()` tells a process where only some threads do.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.parallel.denormals import this_thread_flushes
from tests.in_process_cli import nnspec_here

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys, torch
torch.set_num_threads(2)
from runtime.parallel.denormals import flush_denormals, flushing
if sys.argv[1] == "threads-first":
    torch.ones(1 << 20).mul(2.0)  # starts torch's intra-op threads
supported = flush_denormals()
print(supported, flushing())
"""


def probe(order: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, order],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    supported, flushing = done.stdout.split()
    return supported, flushing


def test_set_first_every_thread_flushes_set_late_only_some_do():
    supported, flushing = probe("mode-first")
    if supported == "False":
        pytest.skip("this CPU has no flush-to-zero mode")
    assert flushing == "True"
    assert probe("threads-first") == (
        "True",
        "False",
    )  # the started thread kept its mode


def test_nnspec_train_flushes_in_every_thread_and_says_so(tmp_path):
    if probe("mode-first")[0] == "False":
        pytest.skip("this CPU has no flush-to-zero mode")
    out = tmp_path / "run"
    subprocess.run(
        [sys.executable, "-m", "runtime", "train", "specs/digits_mlp.yaml"]
        + [
            "--out",
            str(out),
            "--epochs",
            "1",
            "--quiet",
            "--set",
            "training.threads=2",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["flush_denormal"] is True


def test_a_command_run_in_process_gives_the_callers_thread_its_mode_back(tmp_path):
    assert not this_thread_flushes()
    code = nnspec_here(
        "train",
        ROOT / "specs/digits_mlp.yaml",
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--quiet",
        cwd=tmp_path,
    ).returncode
    assert code == 0
    assert not this_thread_flushes()
    smallest = float("5e-324")  # python's own arithmetic sees subnormals again
    assert smallest * 1.0 > 0.0
