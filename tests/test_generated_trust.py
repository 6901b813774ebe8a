"""`--form generated` runs the committed class only when the whole file is what codegen writes.

An edit to `generated/<stem>.py` that keeps its header (the model's sha256) must not run: the
file is compared with freshly generated source and, when it differs, the class generated in
memory is trained instead, with a warning that says so. Names that codegen would refuse are
refused by validation first (one rule for both).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.in_process_cli import nnspec_here

ROOT = Path(__file__).resolve().parents[1]
SPEC = "digits_mlp.yaml"
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PAYLOAD = '\nimport pathlib\npathlib.Path("MARKER").write_text("ran")\n'


def nnspec(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    # in-process: what is tested is which class runs, not the process boundary; a line that
    # ran would write MARKER into `cwd` all the same
    return nnspec_here(*args, cwd=cwd)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "specs").mkdir()
    shutil.copy(ROOT / "specs" / SPEC, tmp_path / "specs" / SPEC)
    done = nnspec(tmp_path, "codegen", f"specs/{SPEC}", "--no-cache")
    assert done.returncode == 0, done.stderr
    return tmp_path


def train(project: Path) -> subprocess.CompletedProcess:
    return nnspec(
        project,
        "train",
        f"specs/{SPEC}",
        "--form",
        "generated",
        "--epochs",
        "1",
        "--out",
        "runs/x",
    )


def test_an_unedited_generated_file_is_trained_without_a_warning(project):
    done = train(project)
    assert done.returncode == 0, done.stderr
    assert "generated in memory" not in done.stderr


@pytest.mark.parametrize("where", ["end", "inside forward"])
def test_a_line_added_to_the_generated_file_never_runs(project, where):
    path = project / "generated" / "digits_mlp.py"
    text = path.read_text()
    if where == "end":
        text += PAYLOAD
    else:
        text = text.replace(
            "        x = self.fc1(x)",
            '        __import__("pathlib").Path("MARKER").write_text("ran")\n'
            "        x = self.fc1(x)",
            1,
        )
    assert text != path.read_text()
    path.write_text(text)
    done = train(project)
    assert done.returncode == 0, done.stderr
    assert not (project / "MARKER").exists()
    assert "differs from what `nnspec codegen` writes" in done.stderr
    assert "generated in memory" in done.stderr and "Traceback" not in done.stderr


def test_a_class_name_codegen_would_refuse_is_refused_by_validation(tmp_path):
    spec = tmp_path / "dunder.yaml"
    spec.write_text("name: __Foo\ninput: [4]\nlayers:\n  - linear: 2\n")
    for args in (
        ["validate"],
        ["codegen", "--stdout"],
        ["train", "--form", "generated"],
    ):
        done = nnspec(tmp_path, *args, str(spec))
        assert done.returncode == 2, (args, done.stderr)
        assert "dunder.yaml:1: name: '__Foo' would shadow a name" in done.stderr
        assert "Traceback" not in done.stderr
