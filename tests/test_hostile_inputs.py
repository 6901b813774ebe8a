"""Hostile and unlucky inputs (issue 15): devices and pipes for files, NUL in paths, labels and
cells beyond range, alias bombs on the command line, float32 overflow, models whose activations do
not fit, batches of one sample under batch norm, YAML 1.1 surprises and escapes in messages.

Each is one message and exit 2 through the real CLI, never a traceback, never a hang. An input
that could hang or exhaust the process (a device, a pipe, an alias bomb, memory) runs the CLI in
a subprocess with a timeout; the others call it in this process (nnspec_here), seconds cheaper.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from compiler import SpecError, load_spec
from compiler.readers import load_yaml_value
from compiler.training import split_sizes
from runtime.cli.main import main
from runtime.errors import UserError, printable_message, shown
from runtime.sweep.overrides import parse_value
from tests.in_process_cli import nnspec_here

ROOT = Path(__file__).resolve().parent.parent

MLP = """\
name: Mlp
input: [2]
layers:
  - linear: 8
  - relu
  - linear: 2
training:
  data: {{dataset: csv, path: {path}, target: label, val_fraction: 0.25}}
  epochs: 1
  batch_size: 4
  early_stopping: null
  device: cpu
"""


def nnspec(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (a hang fails the test rather than the run)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runtime", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def assert_one_message(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Assert exit 2, one line on stderr holding every fragment, and no traceback."""
    err = result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout, err)
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return path


# -- item 9: spec paths that are devices or pipes ---------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "lint", "summary", "codegen", "train"])
@pytest.mark.parametrize(
    "target, kind",
    [
        ("/dev/zero", "a character device"),
        ("/dev/urandom", "a character device"),
        ("fifo", "a named pipe"),
    ],
)
def test_a_spec_that_is_a_device_or_a_pipe_is_refused_without_reading_it(
    command, target, kind, tmp_path
):
    if target == "fifo":
        os.mkfifo(tmp_path / "pipe")
        target = str(tmp_path / "pipe")
    (tmp_path / "spec.yaml").symlink_to(target)
    args = [command, "spec.yaml"]
    if command == "codegen":
        args += ["--out", str(tmp_path / "gen")]
    if command == "train":
        args += ["--out", str(tmp_path / "run")]
    result = nnspec(*args, cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"spec.yaml: is {kind}, not a regular file" in result.stderr


def test_diff_refuses_a_device(tmp_path):
    (tmp_path / "a.yaml").symlink_to("/dev/zero")
    result = nnspec(
        "diff", "a.yaml", str(ROOT / "specs" / "digits_cnn.yaml"), cwd=tmp_path
    )
    assert_one_message(result, "a.yaml: is a character device, not a regular file")


def test_read_document_reads_at_most_the_limit(tmp_path, monkeypatch):
    import compiler.load

    monkeypatch.setattr(compiler.load, "MAX_FILE_BYTES", 10)
    (tmp_path / "s.yaml").write_text("name: M\ninput: [1]\n")
    with pytest.raises(SpecError) as caught:
        compiler.load.read_document(tmp_path / "s.yaml")
    assert "file is 19 bytes; specs are limited to 10" in str(caught.value)


# -- item 10: data paths -----------------------------------------------------------------------------


def test_a_nul_in_the_data_path_is_refused_at_validation(tmp_path):
    (tmp_path / "m.yaml").write_text(MLP.format(path='"a\\0b.csv"'))
    result = nnspec_here("validate", "m.yaml", cwd=tmp_path)
    line = assert_one_message(
        result, "m.yaml:8: training.data.path: a path cannot hold a NUL character"
    )
    assert "\0" not in line


@pytest.mark.parametrize(
    "target, kind",
    [("/dev/zero", "a character device"), ("fifo", "a named pipe")],
)
def test_a_data_file_that_is_a_device_or_pipe_is_one_message(target, kind, tmp_path):
    if target == "fifo":
        os.mkfifo(tmp_path / "pipe")
        target = str(tmp_path / "pipe")
    (tmp_path / "d.csv").symlink_to(target)
    (tmp_path / "m.yaml").write_text(MLP.format(path="d.csv"))
    result = nnspec("train", "m.yaml", "--out", "run", cwd=tmp_path, timeout=120)
    assert_one_message(result, f"csv file 'd.csv' is {kind}, not a regular file")


def test_an_npz_that_is_a_device_is_one_message(tmp_path):
    from runtime.data.npz_file import read_npz

    with pytest.raises(UserError, match="npz file '/dev/zero' is a character device"):
        read_npz("/dev/zero", "x", "y", "classification")


def test_a_data_file_over_the_limit_is_refused_before_it_is_read(tmp_path):
    from runtime.data.files import open_data_file

    path = write_csv(tmp_path / "d.csv", ["1,2,0"])
    with pytest.raises(UserError, match="is 16 bytes, more than the 10 a data file"):
        open_data_file(str(path), "csv file", limit=10)


# -- item 11 and messages: labels and cells beyond range ---------------------------------------------


def test_a_label_of_1e300_names_its_row_and_suggests_nothing_impossible(tmp_path):
    write_csv(tmp_path / "d.csv", ["1,2,0", "3,4,1e300", "5,6,1", "7,8,0"])
    (tmp_path / "m.yaml").write_text(MLP.format(path="d.csv"))
    result = nnspec_here("train", "m.yaml", "--out", "run", cwd=tmp_path)
    line = assert_one_message(
        result, "d.csv, column 'label': line 3: class index 1e+300 is too large"
    )
    assert "out_features" not in line
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize(
    "label, message",
    [
        ("-1", "classification labels must be class indices"),
        ("1.5", "classification labels must be class indices"),
        ("inf", "label inf is not finite"),
    ],
)
def test_labels_are_integral_and_non_negative_with_the_row_named(
    label, message, tmp_path
):
    from runtime.data.csv_file import read_csv

    path = write_csv(tmp_path / "d.csv", ["1,2,0", f"3,4,{label}"])
    with pytest.raises(UserError, match="line 3") as caught:
        read_csv(
            str(path),
            target="label",
            features=None,
            input_shape=[2],
            task="classification",
        )
    assert message in str(caught.value)


def test_a_regression_target_beyond_float32_is_named(tmp_path):
    from runtime.data.csv_file import read_csv

    path = write_csv(tmp_path / "d.csv", ["1,2,0.5", "3,4,1e39"])
    with pytest.raises(UserError, match="line 3: target 1e\\+39 is beyond float32"):
        read_csv(
            str(path), target="label", features=None, input_shape=[2], task="regression"
        )


def test_a_cell_of_1e39_is_named_not_a_nan_loss(tmp_path):
    write_csv(tmp_path / "d.csv", ["1,2,0", "3,1e39,1", "5,6,1", "7,8,0"])
    (tmp_path / "m.yaml").write_text(MLP.format(path="d.csv"))
    result = nnspec_here("train", "m.yaml", "--out", "run", cwd=tmp_path)
    assert_one_message(
        result, "d.csv:3: column 'b' holds '1e39', which is beyond float32"
    )


def test_empty_features_are_refused_at_validation_without_suggesting_input_0(tmp_path):
    spec = MLP.format(path="d.csv").replace(
        "target: label,", "target: label, features: [],"
    )
    (tmp_path / "m.yaml").write_text(spec)
    result = nnspec_here("validate", "m.yaml", cwd=tmp_path)
    line = assert_one_message(
        result, "training.data.features: must have at least 1 item"
    )
    assert "input: [0]" not in line


def test_a_csv_of_only_the_target_says_it_has_no_features(tmp_path):
    from runtime.data.csv_file import read_csv

    (tmp_path / "d.csv").write_text("label\n0\n1\n")
    with pytest.raises(UserError, match="has no feature columns") as caught:
        read_csv(
            str(tmp_path / "d.csv"),
            target="label",
            features=None,
            input_shape=[1],
            task="classification",
        )
    assert "input: [0]" not in str(caught.value)


# -- item 15: values on the command line go through the file reader's limits ------------------------

ALIAS_BOMB = (
    "{a: &a [1,1,1,1,1,1,1,1,1,1], b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e], "
    "g: [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]}"
)


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_an_alias_bomb_on_the_command_line_is_refused(command, tmp_path):
    assert len(ALIAS_BOMB) < 400
    spec = str(ROOT / "specs" / "digits_cnn.yaml")
    option = "--set" if command == "train" else "--vary"
    result = nnspec(
        command,
        spec,
        option,
        f"training.epochs={ALIAS_BOMB}",
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
        timeout=60,
    )
    assert_one_message(result, "the document expands to more than 200,000 values")


@pytest.mark.parametrize(
    "text, value",
    [("1e-3", 0.001), ("128", 128), ("true", True), ("", None), ("[1, 2]", [1, 2])],
)
def test_command_line_values_read_as_before(text, value):
    assert parse_value(text, f"x={text}") == value


@pytest.mark.parametrize(
    "text, message",
    [
        ("[" * 100 + "]" * 100, "nested more than 64 levels"),
        ("1" * 200, "a number with 200 digits is too large"),
        ("{a: 1, a: 2}", "duplicate key 'a'"),
        ("!!python/object:os.system x", "is not allowed"),
        ("010", "010 is ambiguous"),
    ],
)
def test_command_line_values_have_the_file_limits(text, message):
    with pytest.raises(UserError, match=message):
        parse_value(text, f"x={text}")


# -- item 16: float32 range -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer, path",
    [
        ("leakyrelu: 1e308", "layers[0].leakyrelu.negative_slope"),
        ("elu: -1e39", "layers[0].elu.alpha"),
        ("batchnorm1d: {eps: 1e300}", "layers[0].batchnorm1d.eps"),
        ("upsample: {scale_factor: 1e300}", "layers[0].upsample.scale_factor"),
    ],
)
def test_floats_beyond_float32_are_refused_at_validation(layer, path, tmp_path):
    spec = tmp_path / "f.yaml"
    if layer.startswith("upsample"):
        spec.write_text(f"name: M\ninput: [1, 4]\nlayers:\n  - {layer}\n")
    else:
        spec.write_text(f"name: M\ninput: [4]\nlayers:\n  - {layer}\n  - linear: 2\n")
    for command in ("validate", "lint"):
        result = nnspec_here(command, "f.yaml", cwd=tmp_path)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert (
            f"f.yaml:4: {path}: must be within float32's range, at most 3.4028235e+38"
            in result.stderr
        )


def test_every_float_argument_of_every_layer_is_range_checked():
    """A new layer with a float argument gets the rule from compiler.layers.base."""
    from compiler.layers import REGISTRY

    checked = 0
    for name, cls in REGISTRY.items():
        cls.model_rebuild()
        for field, info in cls.model_fields.items():
            if info.annotation not in (float, float | None):
                continue
            if any(getattr(m, "le", None) is not None for m in info.metadata):
                continue  # bounded already (probabilities, momentum)
            with pytest.raises(ValidationError) as caught:
                cls.model_validate({"type": name, field: 1e300})
            assert any(
                e["loc"][:1] == (field,) and "float32" in e["msg"]
                for e in caught.value.errors()
            ), (name, field)
            checked += 1
    assert checked >= 10


# -- item 17: activations that do not fit ------------------------------------------------------------


def test_activations_that_do_not_fit_are_refused_with_the_numbers(tmp_path):
    (tmp_path / "wide.yaml").write_text(
        "name: Wide\ninput: [1, 8, 8]\nlayers:\n"
        "  - conv2d: {out_channels: 4000000, kernel_size: 1}\n  - flatten\n"
        "  - linear: 10\n"
        "training: {epochs: 1, batch_size: 64, device: cpu}\n"
    )
    result = nnspec("train", "wide.yaml", "--out", "run", cwd=tmp_path)
    line = assert_one_message(
        result, "of activations for a batch of 64", "of memory available"
    )
    assert "GiB" in line
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_the_memory_check_honours_ulimit_v():
    """Under `ulimit -v` a model that fits in RAM but not in the address space is refused."""
    code = (
        "import resource, compiler.build as b\n"
        "from compiler import load_spec\n"
        "soft = b._read_fields('/proc/self/status')['VmSize'] * 1024 + 300 * 2**20\n"
        "resource.setrlimit(resource.RLIMIT_AS, (soft, resource.RLIM_INFINITY))\n"
        "left = b.available_memory_bytes()\n"
        "assert left <= 300 * 2**20, left\n"
        "spec = load_spec({'name': 'M', 'input': [1000], 'layers': [{'linear': 100000}]})\n"
        "try:\n"
        "    b.check_fits_in_memory(spec, 100_100_000)\n"
        "except Exception as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "100,100,000 parameters" in result.stdout
    assert "of memory available" in result.stdout


# -- item 18: batches of one sample under batch norm -------------------------------------------------

BN = """\
name: Bn
input: [4]
layers:
  - linear: 8
  - batchnorm1d
  - relu
  - linear: 2
training: {{batch_size: {batch}, data: {data}}}
"""


def test_batch_size_1_with_batchnorm1d_is_refused_at_validation(tmp_path):
    (tmp_path / "b.yaml").write_text(
        BN.format(batch=1, data="{dataset: csv, path: d.csv, target: label}")
    )
    result = nnspec_here("validate", "b.yaml", cwd=tmp_path)
    assert_one_message(
        result,
        "b.yaml:8: training.batch_size: every training batch would be of one sample, "
        "but layers[1].batchnorm1d normalizes each of its 8 channels over the batch",
    )


def test_batchnorm2d_on_a_1x1_map_with_batch_size_1_is_refused(tmp_path):
    (tmp_path / "b.yaml").write_text(
        "name: Bn\ninput: [3, 1, 1]\nlayers:\n  - batchnorm2d\n  - flatten\n"
        "  - linear: 2\ntraining: {batch_size: 1}\n"
    )
    with pytest.raises(SpecError, match="training.batch_size: every training batch"):
        load_spec(tmp_path / "b.yaml")


def test_batch_size_1_is_fine_where_batch_norm_sees_many_values(tmp_path):
    (tmp_path / "b.yaml").write_text(
        "name: Bn\ninput: [3, 4, 4]\nlayers:\n  - batchnorm2d\n  - flatten\n"
        "  - linear: 2\ntraining: {batch_size: 1}\n"
    )
    load_spec(tmp_path / "b.yaml")


def test_a_built_in_training_split_of_one_sample_is_refused_at_validation(tmp_path):
    n_train, _, _ = split_sizes(1797, 0.999, 0.0)
    assert n_train == 1
    (tmp_path / "b.yaml").write_text(
        BN.replace("input: [4]", "input: [64]").format(
            batch=64, data="{dataset: digits, val_fraction: 0.999}"
        )
    )
    with pytest.raises(
        SpecError, match="the training split of digits would be 1 sample"
    ):
        load_spec(tmp_path / "b.yaml")


def test_a_csv_training_split_of_one_sample_is_refused_before_training(tmp_path):
    write_csv(tmp_path / "d.csv", ["1,2,0", "3,4,1"])
    (tmp_path / "b.yaml").write_text(
        BN.replace("input: [4]", "input: [2]").format(
            batch=4,
            data="{dataset: csv, path: d.csv, target: label, val_fraction: 0.5}",
        )
        + "  # one sample to train\n"
    )
    result = nnspec_here("train", "b.yaml", "--out", "run", cwd=tmp_path)
    assert_one_message(
        result, "the training split holds 1 sample, but layers[1].batchnorm1d"
    )


# -- messages: YAML 1.1 numbers, keys as written, escapes --------------------------------------------


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("010", "010 is ambiguous: YAML 1.1 reads it as 8 (octal), YAML 1.2 as 10"),
        ("1:30", "1:30 is ambiguous: YAML 1.1 reads it as 90 (base 60)"),
    ],
)
def test_yaml_1_1_numbers_are_refused_as_ambiguous(value, fragment, tmp_path):
    (tmp_path / "o.yaml").write_text(
        f"name: M\ninput: [4]\nlayers:\n  - linear: {value}\n"
    )
    result = nnspec_here("validate", "o.yaml", cwd=tmp_path)
    assert_one_message(result, f"o.yaml:4: layers[0].linear: {fragment}")


@pytest.mark.parametrize("text, value", [("0", 0), ("0x1F", 31), ('"010"', "010")])
def test_numbers_both_yaml_versions_agree_on_still_read(text, value):
    assert load_yaml_value(text) == value


def test_odd_keys_are_shown_as_written(tmp_path):
    (tmp_path / "k.yaml").write_text(
        "name: M\ninput: [4]\nlayers:\n  - linear: {out_features: 3, yes: 1}\n"
        "  - dropout: {p: 0.5, 1: 2}\ntraining:\n  on: 3\n"
    )
    result = nnspec_here("validate", "k.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "k.yaml:4: layers[0].linear.yes: unknown argument 'yes'" in result.stderr
    assert "k.yaml:5: layers[1].dropout['1']: unknown argument '1'" in result.stderr
    assert "k.yaml:7: training.on: unknown key 'on'" in result.stderr
    assert "[1]" not in result.stderr.replace("layers[1]", "")


def test_escapes_in_user_data_never_reach_the_terminal_raw(tmp_path):
    name = "d\x1b[31m\nfake.csv"
    write_csv(tmp_path / name, ["1,2,0"])
    (tmp_path / "m.yaml").write_text(
        MLP.format(path='"d\\e[31m\\nfake.csv"').replace(
            "target: label", "target: nope"
        )
    )
    result = nnspec_here("train", "m.yaml", "--out", "run", cwd=tmp_path)
    line = assert_one_message(result, "no target column 'nope'")
    assert "\x1b" not in result.stderr and "d\\x1b[31m\\nfake.csv" in line


def test_the_cli_escapes_control_characters_but_keeps_its_own_lines(
    capsys, monkeypatch
):
    import runtime.cli.validate

    def fail(args):
        raise UserError("first \x1b[2J line\nsecond line")

    monkeypatch.setattr(runtime.cli.validate, "run", fail)
    assert main(["validate", "x.yaml"]) == 2
    err = capsys.readouterr().err
    assert err == "nnspec validate: error: first \\x1b[2J line\nsecond line\n"


def test_shown_and_printable_message():
    assert shown("a\nb\x1b") == "a\\nb\\x1b"
    assert printable_message("a\x07\nb") == "a\\x07\nb"
