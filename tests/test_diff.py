"""`nnspec diff OLD NEW`: changes per module and layer, totals, state_dict compatibility, git forms."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import load_spec
from compiler.model_diff import spec_diff
from runtime.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
RESNET18 = (ROOT / "specs" / "resnet18.yaml").read_text()
GIT = shutil.which("git")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def nnspec(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def resnets(tmp_path):
    """resnet18, and a copy with a 10-class head, a third block in layer1 and a dropout after the stem."""
    new = RESNET18.replace("out_features: 1000", "out_features: 10")
    new = new.replace(
        "times: 2, layers: [BasicBlock: 64]", "times: 3, layers: [BasicBlock: 64]"
    )
    new = new.replace("  - maxpool2d", "  - dropout2d: 0.1\n  - maxpool2d", 1)
    assert (
        new.count("out_features: 10,") == 1 and "times: 3" in new and "dropout2d" in new
    )
    return write(tmp_path, "old.yaml", RESNET18), write(tmp_path, "new.yaml", new)


def test_text_names_each_change_the_totals_and_the_state_dict(resnets, capsys):
    old, new = resnets
    code, out, err = nnspec(["diff", str(old), str(new)], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[:2] == [f"OLD  {old}", f"NEW  {new}"]
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: no, 2 keys change shape, 12 keys appear"
        in lines
    )
    assert "  fc.weight [1000, 512] -> [10, 512]" in lines
    assert "  layer1.2.* (12 keys) appear (in NEW only)" in lines
    assert (
        "+ drop1  dropout2d {p: 0.1}: output [64, 112, 112], 0 params, 0 MACs" in lines
    )
    assert (
        "+ layer1.2  BasicBlock {channels: 64, stride: 1, downsample: []}: 6 layers, output [64, 56, 56], "
        "73,984 params, 231M MACs" in lines
    )
    fc = lines.index("~ fc  linear")
    assert lines[fc + 1 : fc + 5] == [
        "    out_features 1000 -> 10",
        "    output [1000] -> [10]",
        "    params 513,000 -> 5,130 (-507,870, -99.0%)",
        "    MACs 512K -> 5.12K (-507K, -99.0%)",
    ]
    assert lines[lines.index("~ layer1  repeat") + 1] == "    times 2 -> 3"
    # the layers inside the new block are not listed one by one
    assert not any(line.startswith("+ layer1.2.") for line in lines)
    params = next(line for line in lines if line.startswith("params"))
    assert params.split() == [
        "params",
        "11,689,512",
        "->",
        "11,255,626",
        "-433,886,",
        "-3.7%",
    ]


def test_json_is_the_data_and_the_state_dict_verdict_matches_torch(resnets, capsys):
    old, new = resnets
    code, out, _ = nnspec(["diff", "--json", str(old), str(new)], capsys)
    data = json.loads(out)
    assert code == 0 and data == json.loads(
        json.dumps(spec_diff(load_spec(old), load_spec(new), str(old), str(new)))
    )
    assert (data["old"]["params"], data["new"]["params"]) == (11_689_512, 11_255_626)
    assert data["old"]["macs"] == 1_814_073_344
    assert [(c["status"], c["path"]) for c in data["changes"]] == [
        ("added", "drop1"),
        ("changed", "layer1"),
        ("added", "layer1.2"),
        ("changed", "fc"),
    ]
    state = data["state_dict"]
    assert state["loads"] is False and state["vanish"] == []
    assert state["reshaped"] == [
        {"key": "fc.weight", "old": [1000, 512], "new": [10, 512]},
        {"key": "fc.bias", "old": [1000], "new": [10]},
    ]
    from compiler import build_module

    old_model, new_model = build_module(load_spec(old)), build_module(load_spec(new))
    theirs = old_model.state_dict()
    ours = new_model.state_dict()
    assert sorted(k for k in ours if k not in theirs) == sorted(
        e["key"] for e in state["appear"]
    )
    assert sorted(
        k for k in theirs if k in ours and theirs[k].shape != ours[k].shape
    ) == ["fc.bias", "fc.weight"]
    with pytest.raises(RuntimeError, match="size mismatch for fc.weight"):
        new_model.load_state_dict(theirs)


SMALL = "name: Small\ninput: [1, 8, 8]\nlayers:\n{body}training: {{epochs: 20}}\n"
CHAIN = "  - conv2d: {out_channels: 4, kernel_size: 3, padding: 1}\n  - relu\n  - flatten\n  - linear: 10\n"
WRAPPED = (
    "  - residual: [conv2d: {out_channels: 1, kernel_size: 3, padding: 1}, relu]\n"
    "  - flatten\n  - linear: 10\n"
)


def test_an_unchanged_model_loads_and_a_training_change_is_listed(tmp_path, capsys):
    old = write(tmp_path, "a.yaml", SMALL.format(body=CHAIN))
    new = write(
        tmp_path, "b.yaml", SMALL.format(body=CHAIN).replace("epochs: 20", "epochs: 5")
    )
    code, out, _ = nnspec(["diff", str(old), str(new)], capsys)
    assert code == 0
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: yes, the same 4 keys and shapes"
        in out
    )
    assert "no layer or module changed" in out
    assert out.splitlines()[-2:] == ["training:", "  epochs 20 -> 5"]
    from compiler import build_module  # the verdict is torch's: strict loading works

    result = build_module(load_spec(new)).load_state_dict(
        build_module(load_spec(old)).state_dict()
    )
    assert not result.missing_keys and not result.unexpected_keys


def test_a_wiring_change_is_shown_even_when_the_keys_are_the_same(tmp_path, capsys):
    wrapped = write(tmp_path, "a.yaml", SMALL.format(body=WRAPPED))
    chain = write(
        tmp_path,
        "b.yaml",
        SMALL.format(body=WRAPPED.replace("  - residual: [", "  - sequential: [")),
    )
    code, out, _ = nnspec(["diff", str(wrapped), str(chain)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: no, 2 keys vanish, 2 keys appear"
        in lines
    )
    assert (
        "+ group1  sequential: 2 layers, output [1, 8, 8], 10 params, 576 MACs" in lines
    )
    assert (
        "- conv1  conv2d {out_channels: 1, kernel_size: 3, padding: 1}: output [1, 8, 8], 10 params, 576 MACs"
        in lines
    )
    flat = write(
        tmp_path,
        "c.yaml",
        SMALL.format(
            body=WRAPPED.replace("  - residual: [", "  - [").replace(
                "  - [conv2d: {out_channels: 1, kernel_size: 3, padding: 1}, relu]\n",
                "  - conv2d: {out_channels: 1, kernel_size: 3, padding: 1}\n  - relu\n",
            )
        ),
    )
    code, out, _ = nnspec(["diff", str(wrapped), str(flat)], capsys)
    lines = out.splitlines()
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: yes, the same 4 keys and shapes"
        in lines
    )
    at = lines.index("~ (model)  model")
    assert lines[at + 1 : at + 4] == [
        "    wiring",
        "      old: residual(conv1 -> relu1 + x) -> flatten1 -> fc1",
        "      new: conv1 -> relu1 -> flatten1 -> fc1",
    ]


BLOCKS = """name: Blocky
input: [3, 8, 8]
blocks:
  Unit:
    params: {width: required}
    layers: [conv2d: {out_channels: $width, kernel_size: 3, padding: 1}, batchnorm2d, relu]
layers:
  - Unit: {width: WIDTH, name: unit}
  - flatten
  - linear: 2
"""


def test_a_block_argument_change_names_the_use_and_every_layer_it_reaches(
    tmp_path, capsys
):
    old = write(tmp_path, "a.yaml", BLOCKS.replace("WIDTH", "4"))
    new = write(tmp_path, "b.yaml", BLOCKS.replace("WIDTH", "6"))
    code, out, _ = nnspec(["diff", str(old), str(new)], capsys)
    lines = out.splitlines()
    assert code == 0
    assert lines[lines.index("~ unit  Unit") + 1] == "    width 4 -> 6"
    assert (
        lines[lines.index("~ unit.bn1  batchnorm2d") + 1]
        == "    num_features 4 -> 6 (inferred)"
    )
    assert (
        lines[lines.index("~ fc1  linear") + 1]
        == "    in_features 256 -> 384 (inferred)"
    )
    assert "  unit.conv1.weight [4, 3, 3, 3] -> [6, 3, 3, 3]" in lines
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: no, 7 keys change shape"
        in lines
    )


def test_markdown_is_a_table_for_a_pull_request(resnets, capsys):
    old, new = resnets
    code, out, _ = nnspec(["diff", "--markdown", str(old), str(new)], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "### nnspec diff: `ResNet18`"
    assert "| params | 11,689,512 | 11,255,626 | -433,886, -3.7% |" in lines
    assert (
        "**state_dict**: a checkpoint of OLD loads into NEW: **no**, 2 keys change shape, 12 keys appear"
        in lines
    )
    assert (
        "| ~ | `fc` | linear | out_features 1000 -> 10; output [1000] -> [10]; params 513,000 -> 5,130 "
        "(-507,870, -99.0%); MACs 512K -> 5.12K (-507K, -99.0%) |" in lines
    )
    table = [line for line in lines if line.startswith("| ")]
    assert all(line.count(" | ") == 3 for line in table)  # no cell breaks the table


def test_dev_null_is_a_spec_that_does_not_exist(resnets, capsys):
    old, _ = resnets
    code, out, _ = nnspec(["diff", "/dev/null", str(old)], capsys)
    assert code == 0
    assert (
        "a checkpoint of OLD loads into NEW: no, one of the two specs does not exist"
        in out
    )
    assert (
        "+ layer4  sequential: 14 layers, output [512, 7, 7], 8,393,728 params, 411M MACs"
        in out
    )


def test_invalid_inputs_are_reported_with_their_lines_and_exit_2(tmp_path, capsys):
    good = write(tmp_path, "good.yaml", SMALL.format(body=CHAIN))
    bad = write(
        tmp_path,
        "bad.yaml",
        SMALL.format(body=CHAIN.replace("linear: 10", "linear: -1")),
    )
    code, out, err = nnspec(["diff", str(bad), str(tmp_path / "missing.yaml")], capsys)
    assert code == 2 and out == ""
    assert f"{bad}:7: layers[3].linear.out_features:" in err
    assert f"{tmp_path / 'missing.yaml'}: no such file" in err
    assert "Traceback" not in err
    code, _, err = nnspec(["diff", str(good)], capsys)
    assert code == 2 and "give two specs, OLD and NEW; got 1 arguments" in err
    code, _, err = nnspec(["diff", "git:HEAD", str(good)], capsys)
    assert (
        code == 2 and "write git:REV:PATH, e.g. git:origin/main:specs/model.yaml" in err
    )


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A git repository with specs/m.yaml committed, then changed in the working tree."""
    if GIT is None:
        pytest.skip("git is not installed")
    folder = tmp_path / "repo"
    (folder / "specs").mkdir(parents=True)
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(tmp_path),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    def git(*args):
        return subprocess.run(
            [GIT, *args], cwd=folder, capture_output=True, text=True, check=True
        )

    git("init", "-q")
    write(folder / "specs", "m.yaml", SMALL.format(body=CHAIN))
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    write(
        folder / "specs",
        "m.yaml",
        SMALL.format(body=CHAIN.replace("linear: 10", "linear: 5")),
    )
    monkeypatch.chdir(folder)
    return folder, git


def test_git_rev_path_reads_the_committed_spec(repo, capsys):
    code, out, err = nnspec(["diff", "git:HEAD:specs/m.yaml", "specs/m.yaml"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "OLD  git:HEAD:specs/m.yaml"
    assert "~ fc1  linear\n    out_features 10 -> 5" in out
    code, _, err = nnspec(["diff", "git:HEAD:specs/gone.yaml", "specs/m.yaml"], capsys)
    assert (
        code == 2
        and "git:HEAD:specs/gone.yaml: fatal: path 'specs/gone.yaml' does not exist in 'HEAD'"
        in err
    )


def test_as_git_diff_driver_git_diff_shows_the_model_diff_and_never_stops(repo):
    folder, git = repo
    write(folder, ".gitattributes", "*.yaml diff=nnspec\n")
    git(
        "config",
        "diff.nnspec.command",
        f"{sys.executable} -m runtime diff --git-diff-driver",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [GIT, "diff"], cwd=folder, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "nnspec diff a/specs/m.yaml b/specs/m.yaml",
        "OLD  a/specs/m.yaml",
        "NEW  b/specs/m.yaml",
    ]
    assert (
        "state_dict: a checkpoint of OLD loads into NEW: no, 2 keys change shape"
        in result.stdout
    )
    write(folder / "specs", "m.yaml", "name: M\ninput: [4]\nlayers: [linear: 0]\n")
    result = subprocess.run(
        [GIT, "diff"], cwd=folder, capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "b/specs/m.yaml:3: layers[0].linear.out_features:" in result.stdout
    assert "(not compared: a side is not a valid spec" in result.stdout


def test_diff_never_imports_torch(resnets):
    old, new = resnets
    probe = (
        "import sys\nfrom runtime.cli.main import main\n"
        f"code = main(['diff', '--markdown', {str(old)!r}, {str(new)!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\nsys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stderr
