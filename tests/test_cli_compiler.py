"""`nnspec validate`, `summary` and `schema`: output, exit codes, and no torch where none is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from compiler import count_params, load_spec, resolved_layers
from compiler.layers import REGISTRY
from compiler.load import read_document
from runtime.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad_specs"


def run(args: list[str], capsys) -> tuple[int, str, str]:
    """Return (exit code, stdout, stderr) of `nnspec ARGS`, in-process."""
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


# -- validate ---------------------------------------------------------------------------------


def test_validate_prints_ok_for_every_spec(example_specs, capsys):
    code, out, err = run(["validate", *map(str, example_specs)], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(example_specs)
    for line, path in zip(lines, example_specs):
        spec = load_spec(path)
        assert (
            line
            == f"{path}: ok ({spec.name}, {len(spec.layers)} layers, {count_params(spec):,} parameters)"
        )


def test_validate_quiet_prints_nothing_for_valid_specs(example_specs, capsys):
    assert run(["validate", "-q", *map(str, example_specs)], capsys) == (0, "", "")


def test_validate_without_arguments_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    assert "the following arguments are required: SPEC" in capsys.readouterr().err


# -- torch stays out ------------------------------------------------------------------------------

NO_TORCH = """
import sys
from runtime.cli.main import main
code = main({args!r})
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'torchsummary'))
print('HEAVY', heavy, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["validate", "specs/digits_cnn.yaml", "specs/wine_mlp.json"],
        ["validate", "tests/bad_specs/five_mistakes.yaml"],
        ["summary", "specs/cifar10_cnn.yaml"],
        ["summary", "--json", "specs/digits_cnn.yaml"],
        ["schema"],
    ],
    ids=["validate", "validate-bad", "summary", "summary-json", "schema"],
)
def test_commands_that_never_import_torch(args):
    result = subprocess.run(
        [sys.executable, "-c", NO_TORCH.format(args=args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode in (0, 2), result.stderr
    assert "HEAVY []" in result.stderr, result.stderr[-500:]


def test_summary_with_torchsummary_does_import_torch_and_prints_its_table(capsys):
    code, out, err = run(["summary", "--torchsummary", "specs/digits_cnn.yaml"], capsys)
    assert code == 0, err
    spec = load_spec(ROOT / "specs" / "digits_cnn.yaml")
    assert f"Total params: {count_params(spec):,}" in out  # torchsummary's own line
    assert "Conv2d-1" in out and "Linear-10" in out


# -- summary --------------------------------------------------------------------------------------


def test_summary_json_structure_and_values(example_spec, capsys):
    code, out, err = run(["summary", "--json", str(example_spec)], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert set(data) == {
        "total_params",
        "trainable_params",
        "total_macs",
        "memory",
        "layers",
    }
    spec = load_spec(example_spec)
    assert data["total_params"] == data["trainable_params"] == count_params(spec)
    assert data["memory"]["parameters"] == 4 * count_params(spec)
    training = data["memory"]["training"]
    assert training["batch_size"] == spec.training_or_default.batch_size
    assert training["total"] == sum(
        training[k]
        for k in (
            "parameters",
            "gradients",
            "optimizer_state",
            "buffers",
            "activations",
        )
    )
    assert len(data["layers"]) == len(spec.layers)
    assert [entry["name"] for entry in data["layers"]] == [
        layer.name for layer in spec.layers
    ]

    def flat(entries):
        for entry in entries:
            if (
                "children" in entry
            ):  # a module, wiring, or a residual's shortcut / a path
                assert set(entry) in (
                    {"name", "type", "output_shape", "params", "macs", "children"},
                    {"name", "type", "children"},
                )
                assert _total(entry) == sum(_total(c) for c in entry["children"])
                assert _total(entry, "macs") == sum(
                    _total(c, "macs") for c in entry["children"]
                )
                yield from flat(entry["children"])
            else:
                assert set(entry) == {"name", "type", "output_shape", "params", "macs"}
                yield entry

    layers = list(flat(data["layers"]))
    assert [(e["type"], e["output_shape"], e["params"]) for e in layers] == [
        (layer.type, list(layer.output_shape), layer.params)
        for layer in resolved_layers(spec)
    ]
    assert sum(_total(entry) for entry in data["layers"]) == data["total_params"]
    assert sum(_total(entry, "macs") for entry in data["layers"]) == data["total_macs"]


def _total(entry, key="params") -> int:
    if key in entry:
        return entry[key]
    return sum(_total(c, key) for c in entry["children"])


def test_summary_table_lists_every_layer_with_totals(capsys):
    path = ROOT / "specs" / "digits_cnn.yaml"
    code, out, _ = run(["summary", str(path)], capsys)
    assert code == 0
    spec = load_spec(path)
    lines = out.splitlines()
    assert lines[0] == spec.name
    for layer in resolved_layers(spec):
        row = next(line for line in lines if f" {layer.name} " in f" {line} ")
        assert layer.type in row and f"{layer.params:,}" in row
        assert "[" + ", ".join(map(str, layer.output_shape)) + "]" in row
    assert f"Total params:         {count_params(spec):,}" in out
    assert "Parameter memory:" in out and "(float32)" in out
    assert (
        "Total MACs:           26.2K per sample (26,240)" in out
    )  # 9,216 + 16,384 + 640
    conv = next(line for line in lines if " conv1 " in line)
    assert conv.endswith("  9.22K")  # 16 x 8 x 8 outputs x 1 x 3 x 3
    assert (
        "Training memory:      ~" in out and "at batch 64 with adam (estimate)" in out
    )


def test_summary_of_an_invalid_spec_prints_the_problems_and_exits_2(capsys):
    code, out, err = run(["summary", str(BAD / "five_mistakes.yaml")], capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 5 and "Traceback" not in err


# -- schema ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(data)
    return data


def accepts(schema: dict, document) -> bool:
    """Return True when the document validates against the schema."""
    return jsonschema.Draft202012Validator(schema).is_valid(document)


def test_schema_names_its_draft_and_id(schema):
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("https://")


def test_every_spec_in_the_folder_validates_against_the_schema(example_spec, schema):
    jsonschema.Draft202012Validator(schema).validate(read_document(example_spec).data)


def layer_forms(type_name: str) -> list:
    """Return every way SPEC.md allows to write a layer of this type, with small required values."""
    cls = REGISTRY[type_name]
    # a required argument is a size (2 is valid) or one of these lists
    lists = {"dims": [1, 2], "unflattened_size": [2, 4]}
    required = {
        k: lists.get(k, 2) for k, f in cls.model_fields.items() if f.is_required()
    }
    cls.model_validate(required)
    forms = [
        {"type": type_name, **required},
        {type_name: dict(required)},
        {type_name: {**required, "name": "x1"}},
    ]
    if not required:
        forms += [type_name, {type_name: None}, {type_name: {}}]
    if cls.primary is not None:
        forms.append(
            {
                type_name: required.get(
                    cls.primary, cls.model_fields[cls.primary].default
                )
            }
        )
    return forms


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_layer_form_validates_against_the_schema(type_name, schema):
    for form in layer_forms(type_name):
        spec = {"name": "M", "input": [2, 8, 8], "layers": [form]}
        assert accepts(schema, spec), form


@pytest.mark.parametrize(
    "document",
    [
        {"name": "M", "input": [4], "layers": ["conv2"]},  # unknown type, bare
        {
            "name": "M",
            "input": [4],
            "layers": [{"type": "os.system"}],
        },  # unknown type, canonical
        {
            "name": "M",
            "input": [4],
            "layers": [{"linear": {"out_featurs": 8}}],
        },  # unknown argument
        {
            "name": "M",
            "input": [4],
            "layers": [{"linear": "64"}],
        },  # text for an integer
        {"name": "M", "input": [4], "layers": [{"linear": -3}]},  # a negative size
        {"name": "M", "input": [4], "layers": [{"dropout": 1.5}]},  # p outside [0, 1]
        {
            "name": "M",
            "input": [4],
            "layers": ["linear"],
        },  # bare name of a layer with a required argument
        {
            "name": "M",
            "input": [4],
            "layers": [{"linear": 8, "relu": None}],
        },  # two keys without type
        {
            "name": "M",
            "input": [4],
            "layers": [
                {"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": "full"}}
            ],
        },
        {"input": [4], "layers": ["relu"]},  # no name
        {
            "name": "M",
            "input": [4],
            "layers": ["relu"],
            "layer": [],
        },  # unknown top-level key
        {
            "name": "M",
            "input": [4],
            "layers": ["relu"],
            "training": {"optimizer": {"type": "adm"}},
        },
    ],
)
def test_bad_documents_do_not_validate_against_the_schema(document, schema):
    assert not accepts(schema, document)


def test_schema_out_writes_the_same_schema_to_a_file(tmp_path, capsys, schema):
    target = tmp_path / "sub" / "nnspec.schema.json"
    code, out, _ = run(["schema", "--out", str(target)], capsys)
    assert code == 0 and out == ""
    assert json.loads(target.read_text(encoding="utf-8")) == schema
    assert [p.name for p in target.parent.iterdir()] == [
        target.name
    ]  # no temporary file left
