""".pre-commit-hooks.yaml, run by pre-commit itself on a temporary git repository, offline.

The hooks are taken from the repository's .pre-commit-hooks.yaml as they are (entry, files,
pass_filenames), with one change: `language: system` instead of `python`, so pre-commit runs the
installed nnspec instead of building an environment from PyPI (which needs the network and
downloads torch). What a user's `repo:` entry gets is otherwise the same definitions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
HOOKS = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
GIT = shutil.which("git")
PRE_COMMIT = Path(sys.executable).with_name("pre-commit")

pytestmark = pytest.mark.skipif(
    GIT is None or not PRE_COMMIT.exists(),
    reason="needs git and pre-commit (dev extra)",
)


def test_the_manifest_declares_the_three_hooks():
    assert [hook["id"] for hook in HOOKS] == [
        "nnspec-validate",
        "nnspec-lint",
        "nnspec-codegen-check",
    ]
    assert {hook["language"] for hook in HOOKS} == {"python"}
    result = subprocess.run(
        [str(PRE_COMMIT), "validate-manifest", str(ROOT / ".pre-commit-hooks.yaml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def repo(tmp_path):
    """A git repository with one good spec, its generated module and a config of the three hooks."""
    folder = tmp_path / "project"
    (folder / "specs").mkdir(parents=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }

    def run(*args):
        return subprocess.run(
            args, cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )

    shutil.copy(ROOT / "specs" / "digits_cnn.yaml", folder / "specs" / "good.yaml")
    hooks = [{**hook, "language": "system"} for hook in HOOKS]
    (folder / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]})
    )
    assert run(GIT, "init", "-q").returncode == 0
    result = run(sys.executable, "-m", "runtime", "codegen")
    assert result.returncode == 0, result.stderr
    assert (folder / "generated" / "good.py").is_file()
    run(GIT, "add", ".")
    return folder, run


def pre_commit(run) -> tuple[int, str]:
    result = run(str(PRE_COMMIT), "run", "--all-files", "--color", "never")
    return result.returncode, result.stdout + result.stderr


def sections(out: str) -> dict[str, list[str]]:
    """Return each failed hook's output lines, by hook id."""
    found: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("- hook id: "):
            current = found.setdefault(line.removeprefix("- hook id: "), [])
        elif line.endswith(("Passed", "Failed", "Skipped")) and "..." in line:
            current = None
        elif current is not None:
            current.append(line)
    return found


def test_a_good_spec_passes_every_hook(repo):
    _, run = repo
    code, out = pre_commit(run)
    assert code == 0, out
    for name in ("nnspec validate", "nnspec lint", "nnspec codegen --check"):
        assert any(
            line.startswith(name) and line.endswith("Passed")
            for line in out.splitlines()
        ), out


def test_a_bad_spec_fails_validate_and_lint_with_located_problems(repo):
    folder, run = repo
    shutil.copy(
        ROOT / "tests" / "bad_specs" / "five_mistakes.yaml",
        folder / "specs" / "bad.yaml",
    )
    run(GIT, "add", ".")
    code, out = pre_commit(run)
    assert code == 1
    lines = out.splitlines()
    assert any(
        line.startswith("nnspec validate") and line.endswith("Failed") for line in lines
    ), out
    assert "- hook id: nnspec-validate" in lines and "- exit code: 2" in lines
    for hook in (
        "nnspec-validate",
        "nnspec-lint",
        "nnspec-codegen-check",
    ):  # each reports the five
        problems = [line for line in sections(out)[hook] if line.startswith("specs/")]
        assert problems[0].startswith(
            "specs/bad.yaml:4: layers[0].linear.out_featurs: unknown argument"
        ), hook
        assert [p.split(":")[1] for p in problems] == ["4", "5", "6", "7", "9"], hook
    assert any(
        line.startswith("nnspec lint") and line.endswith("Failed") for line in lines
    ), out
    assert "Traceback" not in out


def test_a_spec_changed_without_codegen_fails_the_check(repo):
    folder, run = repo
    spec = folder / "specs" / "good.yaml"
    spec.write_text(spec.read_text().replace("linear: 64", "linear: 96"))
    run(GIT, "add", ".")
    code, out = pre_commit(run)
    assert code == 1
    lines = out.splitlines()
    assert any(
        line.startswith("nnspec codegen --check") and line.endswith("Failed")
        for line in lines
    ), out
    assert any(
        line.startswith("nnspec validate") and line.endswith("Passed") for line in lines
    ), out
    assert "generated/good.py" in out
