"""Code generation: golden files, determinism, readable output, `nnspec codegen` and the runtime helper."""

from __future__ import annotations

import difflib
import inspect
import os
import re
import shutil
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import black
import pytest

from compiler import (
    count_params,
    load_spec,
    model_digest,
    model_tree,
)
from compiler.codegen import generate_package_index, generate_source, read_header
from compiler.tree import Leaf, children
from compiler.version import __version__
from runtime.cli.main import main
from runtime.training.generated_form import (
    StaleGeneratedCodeWarning,
    compile_generated_class,
    load_generated_model,
)

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"
MODE = black.Mode(target_versions={black.TargetVersion.PY310}, line_length=88)


def assert_same_text(expected: str, actual: str, name: str) -> None:
    """Fail with a unified diff and the command that updates the golden file."""
    if expected != actual:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True),
                actual.splitlines(True),
                f"{name} (committed)",
                f"{name} (generated now)",
            )
        )
        pytest.fail(
            f"{name} is stale; run `nnspec codegen` and commit the result\n{diff}"
        )


@pytest.fixture
def project(tmp_path, monkeypatch):
    """Return a copy of the project's specs/ and generated/ as the working directory."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(
        GENERATED, tmp_path / "generated", ignore=shutil.ignore_patterns("__pycache__")
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def run_cli(
    *args: str, cwd: Path, cache: Path, hash_seed: str = "0"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "NNSPEC_CACHE_DIR": str(cache), "PYTHONHASHSEED": hash_seed}
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.py"))}


# --- golden files -------------------------------------------------------------------------------


def test_generated_module_matches_the_committed_file(example_spec):
    spec = load_spec(example_spec)
    committed = GENERATED / f"{example_spec.stem}.py"
    assert committed.exists(), f"{committed} is missing; run `nnspec codegen`"
    assert_same_text(
        committed.read_text(encoding="utf-8"),
        generate_source(spec, f"specs/{example_spec.name}"),
        f"generated/{committed.name}",
    )


def test_package_index_matches_the_committed_file(example_specs):
    index = generate_package_index([(p.stem, load_spec(p).name) for p in example_specs])
    assert_same_text(
        (GENERATED / "__init__.py").read_text(encoding="utf-8"),
        index,
        "generated/__init__.py",
    )
    import generated

    assert sorted(generated.__all__) == sorted(load_spec(p).name for p in example_specs)
    for path in example_specs:
        assert (
            getattr(generated, load_spec(path).name).__module__
            == f"generated.{path.stem}"
        )


def test_regenerating_into_a_fresh_folder_gives_the_committed_bytes(tmp_path):
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    result = run_cli(
        "codegen",
        "--out",
        "fresh",
        cwd=tmp_path,
        cache=tmp_path / "cache",
        hash_seed="12345",
    )
    assert result.returncode == 0, result.stderr
    fresh, committed = snapshot(tmp_path / "fresh"), snapshot(GENERATED)
    assert sorted(fresh) == sorted(committed), "run `nnspec codegen`"
    for name in committed:
        assert_same_text(
            committed[name].decode(), fresh[name].decode(), f"generated/{name}"
        )


def test_committed_files_are_black_clean():
    for path in sorted(GENERATED.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert black.format_str(text, mode=MODE) == text, path


# --- what the source says ---------------------------------------------------------------------


def test_generation_is_deterministic(example_spec):
    first = generate_source(load_spec(example_spec), f"specs/{example_spec.name}")
    second = generate_source(load_spec(example_spec), f"specs/{example_spec.name}")
    assert first.encode() == second.encode()


def test_source_reads_like_a_hand_written_class(example_spec):
    spec = load_spec(example_spec)
    source = generate_source(spec, f"specs/{example_spec.name}")
    header = read_header(source)
    assert header == {
        "source": f"specs/{example_spec.name}",
        "model sha256": model_digest(spec),
        "nnspec": __version__,
    }
    assert source.startswith(
        "# generated, do not edit; run `nnspec codegen` to update\n"
    )
    assert "import torch\nfrom torch import nn\n" in source
    assert f"class {spec.name}(nn.Module):" in source
    assert "def forward(self, x: torch.Tensor) -> torch.Tensor:" in source
    assert f"{count_params(spec):,} trainable parameters" in source
    model = source[source.index(f"class {spec.name}(nn.Module):") :]
    init, forward = model.split("def forward")
    kids = list(children(model_tree(spec).body))
    for kid in kids:
        shape = ", ".join(["N", *map(str, kid.info.output_shape)])
        if isinstance(kid, Leaf) and not kid.layer.plain_call():
            # a tensor op is one line of forward; an LSTM or attention call unpacks its tuple
            assert (f"self.{kid.name} = " in init) != kid.layer.tensor_op, kid.name
            assert f"  # [{shape}]\n" in forward
            continue
        assert f"self.{kid.name} = " in init
        assert re.search(
            rf"= self\.{kid.name}\(\w+\)  # \[{shape}\]\n", forward
        ), kid.name
        if isinstance(kid, Leaf):
            assert f"self.{kid.name} = nn.{kid.layer.torch_class}(" in init
    # no source line numbers in the body: a comment-only edit of the spec changes no line
    assert f"specs/{example_spec.name}:" not in source.split("\n", 4)[4]
    # positional arguments, and only the keywords that differ from torch's defaults
    assert "in_channels=" not in source and "in_features=" not in source
    assert "padding_mode=" not in source and "inplace=False" not in source
    # __init__ creates the children in spec order; forward calls them in spec order
    names = [
        kid.name for kid in kids if not (isinstance(kid, Leaf) and kid.layer.tensor_op)
    ]
    assert sorted(names, key=lambda n: init.index(f"self.{n} =")) == names
    assert "\t" not in source and all(
        line == line.rstrip() for line in source.splitlines()
    )


def test_class_docstring_keeps_the_description():
    text = 'He said "hi" \\o/ and left """ C:\\temp\\ « quoted » ends with a quote"'
    spec = load_spec(
        {"name": "Quoted", "description": text, "input": [4], "layers": ["relu"]}
    )
    cls = compile_generated_class(spec)
    doc = inspect.getdoc(cls)
    assert doc.split("\n\nInput:")[0] == text
    assert "Input: [N, 4]; output: [N, 4]; 0 trainable parameters." in doc


def test_long_description_is_wrapped_and_default_docstring_used():
    long = " ".join(["word"] * 60)
    spec = load_spec(
        {"name": "Long", "description": long, "input": [4], "layers": ["relu"]}
    )
    source = generate_source(spec)
    assert max(len(line) for line in source.splitlines()) <= 88
    assert (
        " ".join(
            inspect.getdoc(compile_generated_class(spec)).split("\n\nInput:")[0].split()
        )
        == long
    )
    plain = load_spec({"name": "Plain", "input": [4], "layers": ["relu"]})
    assert inspect.getdoc(compile_generated_class(plain)).startswith(
        "The Plain network of its nnspec spec."
    )


def test_a_mapping_spec_names_no_file():
    spec = load_spec({"name": "FromMapping", "input": [3], "layers": [{"linear": 2}]})
    source = generate_source(spec)
    assert read_header(source)["source"] == "<spec>"
    assert "x = self.fc1(x)  # [N, 2]" in source


# --- the runtime helper -----------------------------------------------------------------------


def test_load_generated_model_uses_the_fresh_file(project):
    spec = load_spec("specs/digits_cnn.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = load_generated_model(spec, "specs/digits_cnn.yaml")
    assert inspect.getsourcefile(type(model)) == str(
        project / "generated" / "digits_cnn.py"
    )


def test_load_generated_model_falls_back_with_a_warning_when_stale_or_missing(project):
    spec_path = project / "specs" / "digits_cnn.yaml"
    spec_path.write_text(spec_path.read_text().replace("linear: 64", "linear: 48"))
    spec = load_spec(spec_path)
    with pytest.warns(
        StaleGeneratedCodeWarning, match=r"another version of .*nnspec codegen"
    ):
        model = load_generated_model(spec, spec_path)
    assert model.fc1.out_features == 48
    assert inspect.getsourcefile(type(model)).startswith("<nnspec-generated DigitsCNN")
    assert "self.fc1 = nn.Linear(256, 48)" in inspect.getsource(type(model))
    (project / "generated" / "digits_cnn.py").unlink()
    with pytest.warns(StaleGeneratedCodeWarning, match="does not exist"):
        assert load_generated_model(spec, spec_path).fc1.out_features == 48


def test_traceback_shows_the_generated_line():
    spec = load_spec({"name": "Tiny", "input": [3], "layers": [{"linear": 2}, "relu"]})
    model = compile_generated_class(spec)()
    import torch

    with pytest.raises(RuntimeError) as info:
        model(torch.zeros(2, 5))  # wrong feature count
    text = "".join(traceback.format_exception(info.value))
    assert "<nnspec-generated Tiny" in text
    assert "x = self.fc1(x)  # [N, 2]" in text


# --- the command line -------------------------------------------------------------------------


def test_check_passes_on_the_repository(tmp_path):
    result = run_cli("codegen", "--check", cwd=ROOT, cache=tmp_path / "cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


def test_check_fails_with_a_diff_after_a_spec_changes(project, capsys):
    assert main(["codegen", "--check"]) == 0  # also warms the cache
    spec = project / "specs" / "digits_cnn.yaml"
    spec.write_text(spec.read_text().replace("linear: 64", "linear: 32"))
    before = snapshot(project / "generated")
    capsys.readouterr()
    assert main(["codegen", "--check"]) == 1
    out, err = capsys.readouterr()
    assert "--- a/generated/digits_cnn.py\n+++ b/generated/digits_cnn.py" in out
    old = "-        self.fc1 = nn.Linear(256, 64)"
    new = "+        self.fc1 = nn.Linear(256, 32)"
    assert old in out and new in out
    assert "mnist_cnn.py" not in out  # only the stale file is shown
    assert "run `nnspec codegen`" in err
    assert snapshot(project / "generated") == before  # --check writes nothing
    assert main(["codegen"]) == 0
    out = capsys.readouterr().out
    assert "wrote generated/digits_cnn.py" in out
    assert "wrote generated/mnist_cnn.py" not in out  # unchanged files stay untouched
    assert main(["codegen", "--check"]) == 0


def test_check_catches_a_hand_edit_despite_a_warm_cache(project):
    assert main(["codegen", "--check"]) == 0
    target = project / "generated" / "wine_mlp.py"
    target.write_text(target.read_text().replace("p=0.3", "p=0.35"))
    assert main(["codegen", "--check"]) == 1
    assert main(["codegen"]) == 0
    assert "p=0.3)" in target.read_text()


def test_missing_and_stray_files(project, capsys):
    (project / "generated" / "mnist_cnn.py").unlink()
    (project / "generated" / "old_net.py").write_text(
        "# generated, do not edit; run `nnspec codegen` to update\nx = 1\n"
    )
    (project / "generated" / "notes.py").write_text("# mine\n")
    assert main(["codegen", "--check"]) == 1
    out = capsys.readouterr().out
    assert "--- /dev/null\n+++ b/generated/mnist_cnn.py" in out
    assert "--- a/generated/old_net.py\n+++ /dev/null" in out
    assert "--- a/generated/notes.py\n+++ /dev/null" in out
    assert main(["codegen"]) == 0
    captured = capsys.readouterr()
    assert (project / "generated" / "mnist_cnn.py").exists()
    assert not (project / "generated" / "old_net.py").exists()
    assert (
        project / "generated" / "notes.py"
    ).read_text() == "# mine\n"  # not ours: left alone
    assert "notes.py was not generated by nnspec" in captured.err


def test_second_run_rewrites_nothing(project, capsys):
    stamps = {p: p.stat().st_mtime_ns for p in (project / "generated").glob("*.py")}
    assert main(["codegen", "--no-cache"]) == 0
    assert "already up to date" in capsys.readouterr().out
    assert {
        p: p.stat().st_mtime_ns for p in (project / "generated").glob("*.py")
    } == stamps


def test_explicit_spec_out_and_stdout(project, capsys):
    assert main(["codegen", "specs/wine_mlp.json", "--out", "elsewhere"]) == 0
    assert sorted(p.name for p in (project / "elsewhere").iterdir()) == ["wine_mlp.py"]
    capsys.readouterr()
    assert main(["codegen", "specs/wine_mlp.json", "--stdout"]) == 0
    out = capsys.readouterr().out
    assert out == (project / "generated" / "wine_mlp.py").read_text()
    assert not (project / "elsewhere" / "__init__.py").exists()


def test_invalid_spec_is_reported_and_nothing_written(project, capsys):
    bad = project / "specs" / "digits_mlp.yaml"
    bad.write_text(bad.read_text().replace("linear: 256", "linear: -3", 1))
    before = snapshot(project / "generated")
    assert main(["codegen"]) == 2
    err = capsys.readouterr().err
    assert "specs/digits_mlp.yaml:8: layers[1].linear.out_features" in err
    assert "Traceback" not in err
    assert snapshot(project / "generated") == before


@pytest.mark.parametrize(
    "name, content, message",
    [
        (
            "my-net.yaml",
            None,
            "cannot name a Python module; rename the file, e.g. to my_net.yaml",
        ),
        (
            "digits_cnn.json",
            '{"name": "Other", "input": [3], "layers": ["relu"]}',
            "would both become",
        ),
        (
            "twin.json",
            '{"name": "DigitsCNN", "input": [3], "layers": ["relu"]}',
            "both name their class 'DigitsCNN'",
        ),
    ],
)
def test_file_and_class_name_clashes_are_user_errors(
    project, capsys, name, content, message
):
    (project / "specs" / name).write_text(
        content or (ROOT / "specs" / "wine_mlp.json").read_text()
    )
    assert main(["codegen"]) == 2
    assert message in capsys.readouterr().err


def test_no_specs_folder_is_a_user_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["codegen", "--check"]) == 2
    assert "no specs/ folder here" in capsys.readouterr().err


def test_codegen_never_imports_torch(project):
    code = (
        "import sys\nfrom runtime.cli.main import main\n"
        "codes = [main(['codegen', '--check', '--no-cache']), main(['codegen', '--stdout', 'specs/mnist_cnn.yaml'])]\n"
        "assert codes == [0, 0], codes\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy'))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


# --- the cache that lets --check answer without rendering -------------------------------------


def test_fingerprints_change_with_every_input(tmp_path):
    from runtime.storage.codegen_cache import input_fingerprint, toolchain_fingerprint

    tool = tmp_path / "tool.py"
    tool.write_text("a = 1\n")
    before = toolchain_fingerprint((tool,))
    assert toolchain_fingerprint((tool,)) == before
    tool.write_text("a = 2\n")
    after = toolchain_fingerprint((tool,))
    assert after != before
    base = input_fingerprint(after, "module", "specs/a.yaml", b"name: A")
    assert base == input_fingerprint(after, "module", "specs/a.yaml", b"name: A")
    assert base != input_fingerprint(before, "module", "specs/a.yaml", b"name: A")
    assert base != input_fingerprint(after, "module", "specs/b.yaml", b"name: A")
    assert base != input_fingerprint(after, "module", "specs/a.yaml", b"name: B")
    assert base != input_fingerprint(
        after, "module", "specs/a.yaml", b"", b"name: A"
    )  # parts are delimited


def test_cache_round_trip_and_damage(tmp_path, monkeypatch):
    from runtime.storage.codegen_cache import CACHE_FILE, OutputCache

    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path / "cache"))
    cache = OutputCache.open()
    assert not cache.holds("key", b"text")
    cache.record("key", b"text")
    cache.save()
    reopened = OutputCache.open()
    assert reopened.holds("key", b"text")
    assert not reopened.holds("key", b"other text") and not reopened.holds("key", None)
    assert not OutputCache.open(enabled=False).holds("key", b"text")
    (tmp_path / "cache" / CACHE_FILE).write_text("{not json")
    assert not OutputCache.open().holds("key", b"text")
    monkeypatch.setenv(
        "NNSPEC_CACHE_DIR", str(tmp_path / "cache" / CACHE_FILE / "below-a-file")
    )
    unwritable = OutputCache.open()
    unwritable.record("key", b"text")
    unwritable.save()  # a cache that cannot be written is simply not kept
