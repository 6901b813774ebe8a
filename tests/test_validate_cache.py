"""`nnspec validate` remembers valid specs: an unchanged spec is answered without pydantic or the
layer registry, with the same output; anything changed, and every problem, is checked in full.
"""

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

from runtime.cli.validate import CACHE_FILE
from runtime.storage.codegen_cache import _DEPENDENCIES, installed_versions

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
name: Tiny
input: [4]
layers:
  - linear: 3
  - relu
  - linear: 2
"""

# runs the CLI in this process, then says whether pydantic (hence the compiler) was imported
PROBE = """\
import sys
from runtime.cli.main import main
code = main(sys.argv[1:])
print("PYDANTIC" if "pydantic" in sys.modules else "NO-PYDANTIC", file=sys.stderr)
sys.exit(code)
"""


def validate(*args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", PROBE, "validate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_unchanged_valid_spec_is_answered_from_the_cache_with_the_same_output(
    tmp_path,
):
    (tmp_path / "tiny.yaml").write_text(SPEC)
    first = validate("tiny.yaml", cwd=tmp_path)
    assert first.returncode == 0 and "PYDANTIC" in first.stderr.split()
    second = validate("tiny.yaml", cwd=tmp_path)
    assert second.returncode == 0 and "NO-PYDANTIC" in second.stderr
    assert (
        second.stdout
        == first.stdout
        == "tiny.yaml: ok (Tiny, 3 layers, 23 parameters)\n"
    )
    entries = json.loads(
        (Path(os.environ["NNSPEC_CACHE_DIR"]) / CACHE_FILE).read_text()
    )["entries"]
    assert list(entries.values()) == ['["Tiny", 3, 23]']


def test_a_changed_spec_is_checked_again_and_a_problem_is_never_cached(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SPEC)
    assert validate("tiny.yaml", cwd=tmp_path).returncode == 0
    spec.write_text(SPEC.replace("linear: 3", "linaer: 3"))
    for _ in range(
        2
    ):  # the second time too: the problem was not remembered as anything
        broken = validate("tiny.yaml", cwd=tmp_path)
        assert broken.returncode == 2 and "PYDANTIC" in broken.stderr.split()
        assert (
            "tiny.yaml:4: layers[0]" in broken.stderr
            and "did you mean 'linear'" in broken.stderr
        )
    spec.write_text(SPEC.replace("linear: 2", "linear: 5"))
    again = validate("tiny.yaml", cwd=tmp_path)
    assert again.stdout == "tiny.yaml: ok (Tiny, 3 layers, 35 parameters)\n"


def test_no_cache_checks_in_full_and_a_damaged_cache_is_ignored(tmp_path):
    (tmp_path / "tiny.yaml").write_text(SPEC)
    assert validate("tiny.yaml", cwd=tmp_path).returncode == 0
    full = validate("--no-cache", "tiny.yaml", cwd=tmp_path)
    assert full.returncode == 0 and "PYDANTIC" in full.stderr.split()
    cache = Path(os.environ["NNSPEC_CACHE_DIR"]) / CACHE_FILE
    entries = json.loads(cache.read_text())["entries"]
    cache.write_text(json.dumps({"entries": {key: "[1, 2" for key in entries}}))
    damaged = validate("tiny.yaml", cwd=tmp_path)
    assert damaged.returncode == 0 and "PYDANTIC" in damaged.stderr.split()
    assert damaged.stdout == "tiny.yaml: ok (Tiny, 3 layers, 23 parameters)\n"
    cache.write_text("not json")
    assert validate("tiny.yaml", cwd=tmp_path).returncode == 0


def test_the_same_bytes_under_another_suffix_are_not_taken_from_the_cache(tmp_path):
    (tmp_path / "tiny.yaml").write_text(SPEC)
    (tmp_path / "tiny.json").write_text(SPEC)  # YAML text is not JSON
    assert validate("tiny.yaml", cwd=tmp_path).returncode == 0
    as_json = validate("tiny.json", cwd=tmp_path)
    assert as_json.returncode == 2 and "tiny.json:1" in as_json.stderr


def test_installed_versions_agree_with_importlib_metadata():
    assert installed_versions(_DEPENDENCIES) == {
        name: importlib.metadata.version(name) for name in _DEPENDENCIES
    }
