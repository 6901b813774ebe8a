"""The bad-input corpus (tests/bad_specs/): every file is refused with a clear, located message.

Each file holds one class of mistake (the five_mistakes file holds five). CORPUS below is the
manifest: for each file, every line `nnspec validate` must print, as (line, path, message
fragment). Each case asserts exit code 2, no traceback, the exact `FILE:LINE: PATH:` prefix, the
fragment, that nothing was written next to the spec, and that no injected code ran (the hostile
files try to create INJECTION_MARKER in the working directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from compiler import SpecError, load_spec, spec_data
from runtime.cli.main import main

CORPUS_DIR = Path(__file__).resolve().parent / "bad_specs"
ROOT = CORPUS_DIR.parent.parent
MARKER = "INJECTION_MARKER"
LAYER_TYPES_HINT = "the layer types are: conv1d, conv2d"

# file -> every problem it must produce: (line, path, message fragment); "" = no path
CORPUS: dict[str, list[tuple[int | None, str, str]]] = {
    # -- syntax ----------------------------------------------------------------------------------
    "syntax_error.yaml": [(6, "", "expected ',' or '}'")],
    "syntax_error.json": [
        (6, "", "JSON syntax error: a comma before ']' is not allowed")
    ],
    "tab_indentation.yaml": [(4, "", "YAML indents with spaces, not tabs")],
    "json_comment.json": [(2, "", "JSON syntax error: unexpected character '/'")],
    "single_quotes.json": [(4, "", "JSON syntax error: unexpected character")],
    "trailing_garbage.json": [(2, "", "after the end of the document")],
    "multiple_documents.yaml": [(5, "", "more than one document in the file")],
    "bom_then_syntax_error.json": [(4, "", "expected ',' or '}' before '\"layers\"'")],
    # -- junk files ------------------------------------------------------------------------------
    "empty.yaml": [(1, "", "the file is empty")],
    "empty.json": [(1, "", "the file is empty")],
    "list_at_top.yaml": [
        (
            1,
            "",
            "a spec is a mapping with name, input and layers at the top; got a list",
        )
    ],
    "scalar_at_top.json": [(1, "", "at the top; got 'a spec'")],
    "invalid_utf8.yaml": [(2, "", "not valid UTF-8 (byte 0xe9")],
    # -- layer types -----------------------------------------------------------------------------
    "unknown_layer_type.yaml": [
        (4, "layers[0]", "unknown layer type 'conv2' (did you mean 'conv2d'?)")
    ],
    "type_os_system.yaml": [
        (4, "layers[0]", f"unknown layer type 'os.system'; {LAYER_TYPES_HINT}")
    ],
    "type_builtins_eval.json": [
        (5, "layers[0].type", "unknown layer type 'builtins.eval'")
    ],
    "type_torch_nn_module.yaml": [
        (4, "layers[0].type", "unknown layer type 'torch.nn.Module'")
    ],
    "layer_is_a_number.yaml": [(5, "layers[1]", "a layer is a type name (`- relu`)")],
    "two_keys_without_type.yaml": [
        (
            4,
            "layers[0]",
            "must have exactly one key, the layer type; got 'linear', 'bias'",
        )
    ],
    "type_and_key_both.yaml": [
        (4, "layers[0].linear.type", "`type` is already given by the key 'linear'")
    ],
    "primary_form_without_primary.yaml": [
        (4, "layers[0].flatten", "flatten has no primary argument")
    ],
    # -- arguments: names, types, ranges -------------------------------------------------------
    "unknown_argument.yaml": [
        (
            5,
            "layers[0].linear.out_featurs",
            "unknown argument 'out_featurs' for linear (did you mean 'out_features'?)",
        )
    ],
    "unknown_argument.json": [(5, "layers[0].linear.biass", "(did you mean 'bias'?)")],
    "null_required.yaml": [
        (4, "layers[0].linear.out_features", "required; write `- linear: VALUE`")
    ],
    "string_for_int.yaml": [
        (4, "layers[0].linear.out_features", "must be an integer, got '64' (str)")
    ],
    "float_for_int.yaml": [
        (5, "layers[1].linear.out_features", "must be an integer, got 64.0 (float)")
    ],
    "float_kernel.json": [
        (
            5,
            "layers[0].conv2d.kernel_size",
            "must be a positive integer or a list of them, got 2.5",
        )
    ],
    "bool_for_int.yaml": [
        (4, "layers[0].linear.out_features", "must be an integer, got True (bool)")
    ],
    "negative_size.yaml": [
        (6, "layers[2].linear.out_features", "must be a positive integer, got -3")
    ],
    "huge_model.yaml": [
        (
            4,
            "layers[0].linear.out_features",
            "must be at most 2,147,483,647, got 100000000000000",
        )
    ],
    "p_out_of_range.yaml": [(4, "layers[0].dropout.p", "must be at most 1.0, got 1.5")],
    "p_negative.json": [(5, "layers[0].dropout.p", "must be at least 0.0, got -0.1")],
    "gelu_bad_choice.yaml": [
        (
            4,
            "layers[0].gelu.approximate",
            "must be one of 'none' or 'tanh', got 'tahn' (did you mean 'tanh'?)",
        )
    ],
    "kernel_list_length.yaml": [
        (
            4,
            "layers[0].conv2d.kernel_size",
            "needs 1 value or a list of 2, got a list of 3",
        )
    ],
    # -- numbers that are not numbers ----------------------------------------------------------
    "nan_in_yaml.yaml": [
        (4, "layers[0].dropout", "must be a finite number, got '.nan' (not a number)")
    ],
    "inf_in_yaml.yaml": [
        (4, "layers[0].leakyrelu.negative_slope", "must be a finite number, got '.inf'")
    ],
    "nan_in_json.json": [(5, "layers[0].dropout", "NaN is not a number in JSON")],
    "infinity_in_json.json": [
        (5, "layers[0].elu", "-Infinity is not a number in JSON")
    ],
    "overflow_float_in_json.json": [
        (5, "layers[0].elu", "got '1e999' (too large: it reads as infinity)")
    ],
    "overflow_float_in_yaml.yaml": [
        (6, "training.optimizer.lr", "got '1e400' (too large: it reads as infinity)")
    ],
    "five_thousand_digits.yaml": [
        (4, "layers[0].linear", "a number with 5000 digits is too large")
    ],
    "five_thousand_digits.json": [
        (3, "input[0]", "a number with 5000 digits is too large")
    ],
    # -- shapes ----------------------------------------------------------------------------------
    "kernel_larger_than_input.yaml": [
        (
            4,
            "layers[0].conv2d.kernel_size",
            "kernel_size 3 is larger than the padded input in H: 2 + 2*0 = 2",
        )
    ],
    "kernel_larger_after_pooling.json": [
        (
            7,
            "layers[2].conv2d.kernel_size",
            "kernel_size 3 is larger than the padded input",
        )
    ],
    "conv2d_on_1d.yaml": [
        (
            4,
            "layers[0]",
            "conv2d needs a 3-D input (C, H, W), but the shape reaching it is [64] (the spec's input)",
        )
    ],
    "batchnorm2d_after_flatten.yaml": [
        (
            6,
            "layers[2]",
            "batchnorm2d needs a 3-D input (C, H, W), but the shape reaching it is [256] = 4\u00d78\u00d78 from layers[1] (flatten1); for this shape use batchnorm1d",
        )
    ],
    "in_features_mismatch.yaml": [
        (
            7,
            "layers[3].linear.in_features",
            "written as 100, but the shape reaching it is [256] = 16\u00d74\u00d74 from layers[2] (flatten1); remove it or write 256",
        )
    ],
    "in_channels_mismatch.json": [
        (
            5,
            "layers[0].conv2d.in_channels",
            "written as 1, but the shape reaching it is [3, 8, 8]",
        )
    ],
    "layernorm_shape_mismatch.json": [
        (
            5,
            "layers[0].layernorm.normalized_shape",
            "written as [5, 6], but the shape reaching it is [4, 6]",
        )
    ],
    "same_padding_with_stride.yaml": [
        (4, "layers[0].conv2d.padding", "padding 'same' needs stride 1")
    ],
    "groups_do_not_divide.yaml": [
        (
            4,
            "layers[0].conv2d.groups",
            "groups=2 must divide in_channels (3) and out_channels (4)",
        )
    ],
    "padding_too_large_for_pool.yaml": [
        (4, "layers[0].maxpool2d.padding", "must be at most half of kernel_size 2")
    ],
    "reflect_padding_too_large.yaml": [
        (
            4,
            "layers[0].conv2d.padding",
            "padding_mode 'reflect' needs padding less than the input size",
        )
    ],
    "flatten_too_large.json": [
        (
            5,
            "layers[0]",
            "the output shape would be [2500000000]; sizes above 2,147,483,647",
        )
    ],
    "softmax_over_batch.yaml": [
        (5, "layers[1].softmax.dim", "dim 0 is the batch dimension")
    ],
    # -- names -----------------------------------------------------------------------------------
    "invalid_name.yaml": [
        (4, "layers[0].linear.name", "a name must be an ASCII Python identifier")
    ],
    "duplicate_name.yaml": [
        (6, "layers[2].linear.name", "name 'fc2' is already the name of layers[0]")
    ],
    "reserved_name.yaml": [
        (
            4,
            "layers[0].linear.name",
            "name 'forward' is an attribute of torch.nn.Module; pick another",
        )
    ],
    "keyword_name.json": [
        (5, "layers[0].relu.name", "a name cannot be the Python keyword 'class'")
    ],
    "underscore_name.yaml": [(4, "layers[0].relu.name", "starts with '_'")],
    "long_name.yaml": [
        (4, "layers[0].relu.name", "a name is at most 64 characters, got 85")
    ],
    "class_name_builtin.yaml": [
        (1, "name", "'list' would shadow a name the generated module uses")
    ],
    "class_name_with_code.json": [
        (2, "name", "a class name must be an ASCII Python identifier")
    ],
    "name_with_statement.yaml": [
        (4, "layers[0].relu.name", "must be an ASCII Python identifier")
    ],
    "name_with_newline.json": [(5, "layers[0].relu.name", "got 'fc\\nimport os'")],
    "name_with_line_separator.json": [
        (5, "layers[0].relu.name", "got 'fc\\u2028import_os'")
    ],
    "name_with_triple_quotes.yaml": [(4, "layers[0].relu.name", 'got \'"""\'')],
    "name_with_braces.yaml": [(1, "name", "got '{x}'")],
    "name_with_dotdot.yaml": [(1, "name", "got '../../etc/passwd'")],
    "description_control_char.json": [
        (3, "description", "contains the control character '\\x07'")
    ],
    "description_not_text.yaml": [(2, "description", "must be text, got list")],
    # -- structure ---------------------------------------------------------------------------------
    "duplicate_key.yaml": [(5, "input", "duplicate key 'input' (first at line 2)")],
    "duplicate_key.json": [
        (5, "layers[0].out_features", "duplicate key 'out_features'")
    ],
    "missing_sections.yaml": [
        (1, "input", "required, but missing"),
        (1, "layers", "required, but missing"),
    ],
    "empty_layers.json": [(1, "layers", "must have at least 1 item, got 0")],
    "layers_not_a_list.yaml": [(3, "layers", "must be a list, got a mapping")],
    "input_as_text.json": [(3, "input", "must be a list, got '1x8x8' (str)")],
    "input_too_many_dims.yaml": [(2, "input", "must have at most 4 items, got 5")],
    "zero_input.json": [(2, "input[0]", "must be a positive integer, got 0")],
    "wrong_type_in_list.yaml": [(2, "input[1]", "must be an integer, got '8' (str)")],
    "unknown_top_level_key.yaml": [
        (3, "layer", "unknown key 'layer' (did you mean 'layers'?)")
    ],
    "spec_version_2.yaml": [(1, "spec_version", "must be one of 1, got 2")],
    "unknown_optimizer.yaml": [
        (6, "training.optimizer.type", "got 'adm' (did you mean 'adam'?)")
    ],
    "bad_training_values.json": [
        (6, "training.epochs", "must be a positive integer, got 0"),
        (7, "training.data", "dataset 'csv' needs `path`"),
    ],
    # a float field's bound is no call for an integer, though `0` is written as one
    "zero_learning_rate.yaml": [
        (6, "training.optimizer.lr", "must be a positive number, got 0")
    ],
    # -- hostile YAML --------------------------------------------------------------------------------
    "python_object_tag.yaml": [
        (
            2,
            "input",
            "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed",
        )
    ],
    "python_name_tag.yaml": [
        (
            4,
            "layers[0]",
            "YAML tag 'tag:yaml.org,2002:python/name:builtins.eval' is not allowed",
        )
    ],
    "alias_bomb.yaml": [
        (6, "f[1]", "the document expands to more than 200,000 values (an alias bomb")
    ],
    "unknown_alias.yaml": [(2, "input", "unknown alias '*shape'")],
    "yaml_merge_key.yaml": [
        (5, "layers[0].linear", "YAML merge keys (<<) are not supported")
    ],
    "date_as_name.yaml": [(2, "description", "this reads as a date in YAML; quote it")],
    "collection_as_key.yaml": [(4, "layers[0]", "mapping keys must be plain names")],
    # libyaml stops at its own depth limit while scanning ahead, before the path is known
    "nested_10000_deep.yaml": [
        (
            4,
            "" if yaml.__with_libyaml__ else "layers[0][0][0][0][0]...[0] (64 levels)",
            "nested more than 64 levels deep",
        )
    ],
    "nested_10000_deep.json": [
        (
            2,
            "layers[0][0][0][0][0]...[0] (64 levels)",
            "nested more than 64 levels deep",
        )
    ],
    # -- containers and blocks ---------------------------------------------------------------------
    "block_cycle.yaml": [(4, "blocks.A", "A uses itself through A -> B -> A")],
    "block_missing_param.yaml": [
        (8, "layers[0].Dense", "Dense needs its parameter 'width'"),
        (
            9,
            "layers[1].Dense.widht",
            "unknown parameter 'widht' for Dense (did you mean 'width'?)",
        ),
    ],
    "param_outside_block.yaml": [
        (4, "layers[0].linear", "allowed only inside a block's layers")
    ],
    "residual_mismatch.yaml": [
        (
            4,
            "layers[0].residual",
            "the layers give [16, 4, 4] but the identity " "shortcut gives [3, 8, 8]",
        )
    ],
    "block_residual_needs_downsample.yaml": [
        (
            14,
            "layers[0].BasicBlock (blocks.BasicBlock.layers[0].residual, line 7)",
            "the identity shortcut ($downsample is [] in this use) gives [3, 8, 8] for the input [3, 8, 8]; "
            "both sides must have the same shape; pass a projection shortcut in this use: `downsample: "
            "[conv2d: {out_channels: 8, kernel_size: 1, stride: 2, bias: false}, batchnorm2d]`",
        )
    ],
    "concat_mismatch.yaml": [
        (4, "layers[0].branches", "paths[0] gives [4, 8, 8]; paths[1] gives [3, 4, 4]")
    ],
    "repeat_bomb.yaml": [(3, "layers", "the layers expand to 1,000,001,000,001")],
    "block_named_like_builtin.yaml": [
        (4, "blocks.Linear", "'Linear' is the built-in type 'linear'")
    ],
    "block_unknown_reference.yaml": [
        (
            7,
            "blocks.Dense.layers[0].linear",
            "`$widht` is not a parameter of " "Dense (did you mean 'width'?)",
        )
    ],
    "block_inner_problem.yaml": [
        (
            11,
            "layers[1].Dense (blocks.Dense.layers[1].dropout.p, line 8)",
            "must be at most 1.0, got 1.5",
        )
    ],
    # -- all problems at once ------------------------------------------------------------------------
    "shape_error_before_unknown_type.yaml": [
        (
            4,
            "layers[0].conv2d.kernel_size",
            "kernel_size 5 is larger than the padded input in H: 4 + 2*0 = 4",
        ),
        (6, "layers[2]", "unknown layer type 'conv9'; the layer types are: "),
    ],
    "five_mistakes.yaml": [
        (4, "layers[0].linear.out_featurs", "(did you mean 'out_features'?)"),
        (5, "layers[1]", "unknown layer type 'Conv2D' (did you mean 'conv2d'?)"),
        (6, "layers[2].dropout.p", "must be at most 1.0, got 2.0"),
        (7, "layers[3].relu.name", "name 'forward' is an attribute of torch.nn.Module"),
        (9, "training.epochs", "must be a positive integer, got -1"),
    ],
}


def expected_prefix(name: str, line: int | None, path: str) -> str:
    """Return the `FILE:LINE: PATH: ` start of a problem line (SPEC.md's format)."""
    where = f"{name}:{line}" if line is not None else name
    return f"{where}: {path}: " if path else f"{where}: "


def snapshot(folder: Path) -> dict[str, bytes]:
    """Return every file under `folder` with its bytes (to prove nothing was written)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_reported(
    output: str, name: str, expected: list[tuple[int | None, str, str]]
) -> None:
    """Assert that `output` holds exactly the expected problem lines of file `name`, in order."""
    lines = [line for line in output.splitlines() if line.startswith(f"{name}:")]
    assert len(lines) == len(
        expected
    ), f"{name}: expected {len(expected)} problems, got:\n" + "\n".join(lines)
    for got, (line, path, fragment) in zip(lines, expected):
        prefix = expected_prefix(name, line, path)
        assert got.startswith(prefix), f"{got!r} does not start with {prefix!r}"
        assert fragment in got[len(prefix) :], f"{fragment!r} not in {got!r}"


def run_cli_in(
    folder: Path, args: list[str], capsys, monkeypatch
) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `nnspec ARGS` run in-process inside `folder`."""
    monkeypatch.chdir(folder)
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_corpus_and_manifest_match():
    files = {p.name for p in CORPUS_DIR.iterdir() if p.is_file()}
    assert files == set(
        CORPUS
    ), f"not in CORPUS: {files - set(CORPUS)}; missing files: {set(CORPUS) - files}"
    assert len(files) >= 40
    assert sum(f.endswith(".json") for f in files) >= 15
    assert sum(f.endswith(".yaml") for f in files) >= 15


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_bad_spec_is_refused_with_a_located_message(
    name, tmp_path, capsys, monkeypatch
):
    shutil.copy(CORPUS_DIR / name, tmp_path / name)
    before = snapshot(tmp_path)
    code, out, err = run_cli_in(tmp_path, ["validate", name], capsys, monkeypatch)
    assert code == 2
    assert out == ""
    assert "Traceback" not in err
    assert_reported(err, name, CORPUS[name])
    assert snapshot(tmp_path) == before
    assert not (tmp_path / MARKER).exists()
    # the Python API raises the same problems, each located
    with pytest.raises(SpecError) as caught:
        load_spec(tmp_path / name)
    assert len(caught.value.problems) == len(CORPUS[name])
    for problem, (line, path, _) in zip(caught.value.problems, CORPUS[name]):
        assert (problem.line, problem.path) == (line, path)


def test_whole_corpus_in_one_subprocess(tmp_path):
    """The real `nnspec` console script: exit 2, every expected line, no traceback, nothing written."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    before = snapshot(corpus)
    nnspec = Path(sys.executable).with_name("nnspec")
    command = [str(nnspec)] if nnspec.exists() else [sys.executable, "-m", "runtime"]
    result = subprocess.run(
        [*command, "validate", *sorted(CORPUS)],
        cwd=corpus,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    for name, expected in CORPUS.items():
        assert_reported(result.stderr, name, expected)
    assert snapshot(corpus) == before
    assert not (corpus / MARKER).exists()
    assert not (ROOT / MARKER).exists()


def test_a_valid_spec_among_bad_ones_is_still_checked_and_the_exit_code_is_2(
    tmp_path, capsys, monkeypatch
):
    shutil.copy(ROOT / "specs" / "digits_mlp.yaml", tmp_path / "good.yaml")
    shutil.copy(CORPUS_DIR / "negative_size.yaml", tmp_path / "bad.yaml")
    code, out, err = run_cli_in(
        tmp_path, ["validate", "good.yaml", "bad.yaml"], capsys, monkeypatch
    )
    assert code == 2
    assert out.startswith("good.yaml: ok (DigitsMLP")
    assert err.startswith("bad.yaml:6: layers[2].linear.out_features: ")


# -- cases generated here rather than committed ---------------------------------------------------


def test_more_layers_than_the_limit(tmp_path, capsys, monkeypatch):
    from compiler.spec import MAX_LAYERS

    text = "name: Long\ninput: [4]\nlayers:\n" + "  - relu\n" * (MAX_LAYERS + 1)
    (tmp_path / "long.yaml").write_text(text)
    code, _, err = run_cli_in(tmp_path, ["validate", "long.yaml"], capsys, monkeypatch)
    assert code == 2
    assert (
        err
        == f"long.yaml:3: layers: {MAX_LAYERS + 1} layers is more than the limit of {MAX_LAYERS}\n"
    )


def test_file_larger_than_the_limit(tmp_path, capsys, monkeypatch):
    from compiler.readers import MAX_FILE_BYTES

    (tmp_path / "big.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    code, _, err = run_cli_in(tmp_path, ["validate", "big.json"], capsys, monkeypatch)
    assert code == 2
    assert err.startswith(
        f"big.json: file is {MAX_FILE_BYTES + 1} bytes; specs are limited to"
    )


@pytest.mark.parametrize("spec", ["digits_cnn.yaml", "wine_mlp.json"])
def test_a_bom_before_a_valid_spec_is_ignored(spec, tmp_path):
    """Editors on Windows add a UTF-8 byte-order mark; it carries no meaning, so the spec loads."""
    original = ROOT / "specs" / spec
    with_bom = tmp_path / spec
    with_bom.write_bytes(b"\xef\xbb\xbf" + original.read_bytes())
    loaded, plain = load_spec(with_bom), load_spec(original)
    assert spec_data(loaded) == spec_data(plain)
    assert loaded.layer_lines == plain.layer_lines


@pytest.mark.parametrize(
    "make,args,message",
    [
        (lambda d: None, ["missing.yaml"], "missing.yaml: no such file"),
        (
            lambda d: (d / "folder.yaml").mkdir(),
            ["folder.yaml"],
            "folder.yaml: is a folder, not a spec file",
        ),
        (
            lambda d: (d / "spec.txt").write_text("name: X"),
            ["spec.txt"],
            "spec.txt: unknown file type '.txt'",
        ),
        (
            lambda d: (d / "spec").write_text("name: X"),
            ["spec"],
            "spec: unknown file type '(none)'",
        ),
    ],
)
def test_files_that_are_not_specs(make, args, message, tmp_path, capsys, monkeypatch):
    make(tmp_path)
    code, out, err = run_cli_in(tmp_path, ["validate", *args], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert err.startswith(message)
    assert "Traceback" not in err


def test_hostile_tags_run_no_code_even_as_the_python_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (
        "python_object_tag.yaml",
        "python_name_tag.yaml",
        "type_os_system.yaml",
        "type_builtins_eval.json",
    ):
        with pytest.raises(SpecError):
            load_spec(CORPUS_DIR / name)
    assert not (tmp_path / MARKER).exists()
