"""The whole tree stays black-formatted and ruff-clean (configured in pyproject.toml), so that
`make test` catches a change that is not."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True)


def test_black_leaves_every_file_as_it_is():
    done = _run(sys.executable, "-m", "black", "--check", "--quiet", ".")
    assert (
        done.returncode == 0
    ), f"black would reformat (run `black .`):\n{done.stdout}{done.stderr}"


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which(
        "ruff"
    )
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -e '.[dev]'")
    done = _run(ruff, "check", "--quiet", ".")
    assert (
        done.returncode == 0
    ), f"ruff finds problems (`ruff check --fix .` fixes most):\n{done.stdout}{done.stderr}"


def test_the_checks_would_see_a_bad_file(tmp_path):
    # the two checks above must be able to fail: a badly formatted file with an unused import
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx=1\n")
    assert _run(
        sys.executable, "-m", "black", "--check", "--quiet", str(bad)
    ).returncode
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or "ruff"
    assert _run(ruff, "check", "--quiet", "--no-cache", str(bad)).returncode
