"""Loading: YAML and JSON with line numbers, the four layer forms, limits, and mappings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compiler import SpecError, load_spec, resolved_layers, spec_data
from compiler.document import MAX_DEPTH, MAX_NUMBER_DIGITS, LoadError
from compiler.readers import read_data, read_json, read_yaml

ROOT = Path(__file__).resolve().parent.parent

FOUR_FORMS_YAML = """\
name: Forms
input: [1, 8, 8]
layers:
  - conv2d: {out_channels: 4, kernel_size: 3}
  - relu
  - relu:
  - maxpool2d: 2
  - {type: flatten}
  - linear:
      out_features: 10
      bias: false
"""

CANONICAL = {
    "name": "Forms",
    "input": [1, 8, 8],
    "layers": [
        {"type": "conv2d", "out_channels": 4, "kernel_size": 3},
        {"type": "relu"},
        {"type": "relu"},
        {"type": "maxpool2d", "kernel_size": 2},
        {"type": "flatten"},
        {"type": "linear", "out_features": 10, "bias": False},
    ],
}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_four_layer_forms_mean_the_same(tmp_path):
    from_yaml = load_spec(write(tmp_path, "forms.yaml", FOUR_FORMS_YAML))
    assert spec_data(from_yaml) == spec_data(load_spec(CANONICAL))
    assert [layer.name for layer in from_yaml.layers] == [
        "conv1",
        "relu1",
        "relu2",
        "pool1",
        "flatten1",
        "fc1",
    ]


def test_yaml_layer_lines(tmp_path):
    spec = load_spec(write(tmp_path, "forms.yaml", FOUR_FORMS_YAML))
    assert spec.layer_lines == (4, 5, 6, 7, 8, 9)
    assert [layer.line for layer in resolved_layers(spec)] == [4, 5, 6, 7, 8, 9]


def test_json_layer_lines_and_windows_line_endings(tmp_path):
    text = json.dumps(CANONICAL, indent=2).replace("\n", "\r\n")
    path = tmp_path / "forms.json"
    path.write_bytes(text.encode("utf-8"))
    spec = load_spec(path)
    lines = text.split("\r\n")
    expected = [i + 1 for i, line in enumerate(lines) if line == "    {"]
    assert spec.layer_lines == tuple(expected)
    bad = text.replace('"kernel_size": 2', '"kernel_size": -2')
    path.write_bytes(bad.encode("utf-8"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    line = next(i + 1 for i, text in enumerate(bad.split("\r\n")) if "-2" in text)
    assert [(p.line, p.path) for p in caught.value.problems] == [
        (line, "layers[3].maxpool2d.kernel_size")
    ]


def test_windows_line_endings_in_yaml(tmp_path):
    path = tmp_path / "crlf.yaml"
    path.write_bytes(FOUR_FORMS_YAML.replace("\n", "\r\n").encode("utf-8"))
    assert load_spec(path).layer_lines == (4, 5, 6, 7, 8, 9)


def test_problem_lines_point_at_the_argument_in_block_yaml(tmp_path):
    text = FOUR_FORMS_YAML.replace("bias: false", "bias: maybe")
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, "bad.yaml", text))
    (problem,) = caught.value.problems
    assert (problem.line, problem.path) == (11, "layers[5].linear.bias")
    assert "must be true or false, got 'maybe'" in problem.message


def test_all_problems_are_reported_sorted_by_line(tmp_path):
    text = """\
name: 1Bad
input: [0]
layers:
  - linear: 0
  - dropout: 3
  - conv9
"""
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, "many.yaml", text))
    got = [(p.line, p.path) for p in caught.value.problems]
    assert got == [
        (1, "name"),
        (2, "input[0]"),
        (4, "layers[0].linear.out_features"),
        (5, "layers[1].dropout.p"),
        (6, "layers[2]"),
    ]
    assert (
        str(caught.value)
        .splitlines()[0]
        .startswith(f"{tmp_path / 'many.yaml'}:1: name: ")
    )


def test_yaml_reads_exponent_floats_as_numbers(tmp_path):
    text = "name: F\ninput: [4]\nlayers: [relu]\ntraining:\n  optimizer: {lr: 1e-3, weight_decay: 5E-4}\n"
    spec = load_spec(write(tmp_path, "f.yaml", text))
    assert spec.training.optimizer.lr == 0.001
    assert spec.training.optimizer.weight_decay == 0.0005


def test_small_yaml_anchors_and_aliases_are_fine(tmp_path):
    text = """\
name: Aliases
input: &shape [1, 8, 8]
layers:
  - conv2d: &conv {out_channels: 4, kernel_size: 3, padding: 1}
  - relu
  - conv2d: *conv
"""
    spec = load_spec(write(tmp_path, "alias.yaml", text))
    assert spec.input == [1, 8, 8]
    assert spec.layers[0].arguments() == spec.layers[2].arguments() | {
        "in_channels": None
    }


@pytest.mark.parametrize("suffix", [".yml", ".YAML", ".Json"])
def test_suffixes_pick_the_parser_case_insensitively(suffix, tmp_path):
    text = json.dumps(CANONICAL)  # JSON is YAML too
    spec = load_spec(write(tmp_path, f"spec{suffix}", text))
    assert spec_data(spec) == spec_data(load_spec(CANONICAL))


def test_path_objects_and_strings_load_the_same():
    path = ROOT / "specs" / "digits_cnn.yaml"
    assert spec_data(load_spec(path)) == spec_data(load_spec(str(path)))
    assert load_spec(path).source == str(path)


# -- limits of the readers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "read,open_,close", [(read_json, "[", "]"), (read_yaml, "[", "]")]
)
def test_nesting_limit_is_exact(read, open_, close):
    assert read(open_ * MAX_DEPTH + close * MAX_DEPTH).data is not None
    with pytest.raises(LoadError) as caught:
        read(open_ * (MAX_DEPTH + 1) + close * (MAX_DEPTH + 1))
    assert f"nested more than {MAX_DEPTH} levels deep" in caught.value.problem.message


@pytest.mark.parametrize("read", [read_json, read_yaml])
def test_number_digit_limit_is_exact(read):
    assert read("[" + "9" * MAX_NUMBER_DIGITS + "]").data == [
        int("9" * MAX_NUMBER_DIGITS)
    ]
    with pytest.raises(LoadError) as caught:
        read("[" + "9" * (MAX_NUMBER_DIGITS + 1) + "]")
    assert caught.value.problem.path == "[0]"


def test_json_strings_keep_their_escapes_and_unicode():
    doc = read_json(
        '{"description": "caf\\u00e9 \\"quoted\\" \\\\ tab\\t", "name": "\u00e9"}'
    )
    assert doc.data == {"description": 'caf\u00e9 "quoted" \\ tab\t', "name": "\u00e9"}


def test_json_duplicate_keys_in_nested_mappings():
    with pytest.raises(LoadError) as caught:
        read_json('{"training": {\n "optimizer": {"lr": 0.1,\n "lr": 0.2}}}')
    assert (caught.value.problem.line, caught.value.problem.path) == (
        3,
        "training.optimizer.lr",
    )
    assert "duplicate key 'lr' (first at line 2)" in caught.value.problem.message


def test_yaml_duplicate_keys_in_nested_mappings():
    with pytest.raises(LoadError) as caught:
        read_yaml("training:\n  optimizer:\n    lr: 0.1\n    type: sgd\n    lr: 0.2\n")
    assert (caught.value.problem.line, caught.value.problem.path) == (
        5,
        "training.optimizer.lr",
    )
    assert "(first at line 3)" in caught.value.problem.message


# -- mappings -------------------------------------------------------------------------------------


def test_a_mapping_is_not_changed_by_loading():
    mapping = json.loads(json.dumps(CANONICAL))
    before = json.dumps(mapping)
    spec = load_spec(mapping)
    assert json.dumps(mapping) == before
    assert spec.source == "<spec>" and spec.layer_lines == (None,) * len(
        CANONICAL["layers"]
    )


def test_tuples_in_a_mapping_count_as_lists():
    spec = load_spec({**CANONICAL, "input": (1, 8, 8)})
    assert spec.input == [1, 8, 8]


@pytest.mark.parametrize(
    "value,fragment",
    [
        (b"bytes", "got bytes"),
        (object(), "got object"),
        ({1, 2}, "got set"),
        (float("nan"), "must be a finite number, got nan"),
        (float("-inf"), "must be a finite number, got -inf"),
    ],
)
def test_mapping_values_that_are_not_plain_data(value, fragment):
    with pytest.raises(SpecError) as caught:
        load_spec({**CANONICAL, "description": value})
    (problem,) = caught.value.problems
    assert problem.path == "description" and fragment in problem.message


def test_read_data_copies_and_records_no_lines():
    source = {"a": [1, {"b": None}]}
    doc = read_data(source)
    assert (
        doc.data == source
        and doc.data is not source
        and doc.data["a"] is not source["a"]
    )
    assert doc.line_of(("a", 1, "b")) is None


def test_libyaml_and_pure_python_parsers_read_the_same(example_specs, monkeypatch):
    """readers.py uses libyaml when PyYAML has it; the pure-Python parser must give the same Document."""
    import re

    import yaml

    import compiler.readers as readers

    class PureLoader(yaml.SafeLoader):
        pass

    PureLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    texts = [
        p.read_text(encoding="utf-8")
        for p in example_specs
        if p.suffix in (".yaml", ".yml")
    ]
    texts += [FOUR_FORMS_YAML, FOUR_FORMS_YAML.replace("\n", "\r\n")]
    fast = [read_yaml(t) for t in texts]
    monkeypatch.setattr(readers, "_SpecYamlLoader", PureLoader)
    pure = [read_yaml(t) for t in texts]
    assert [(d.data, d.lines) for d in fast] == [(d.data, d.lines) for d in pure]


def test_unpaired_surrogate_is_refused_in_files_and_mappings(tmp_path):
    from compiler import SpecError, load_spec

    path = tmp_path / "sur.json"
    path.write_text(
        '{"name": "N", "description": "a \\ud800 b", "input": [4], "layers": [{"linear": 2}]}'
    )
    for source in (
        path,
        {
            "name": "N",
            "description": "a \ud800 b",
            "input": [4],
            "layers": [{"linear": 2}],
        },
    ):
        with pytest.raises(SpecError) as err:
            load_spec(source)
        assert err.value.problems[0].path == "description"
        assert "surrogate" in err.value.problems[0].message
