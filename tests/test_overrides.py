"""`--set PATH=VALUE`: paths into the spec, layers by name or index, YAML values, clear errors."""

import pytest

from compiler import SpecError
from runtime.errors import UserError
from runtime.sweep.overrides import (
    apply_overrides,
    load_spec_with_overrides,
    parse_assignment,
)

SPEC = """\
name: Net
input: [1, 8, 8]
layers:
  - flatten
  - linear: 32
  - relu
  - dropout: 0.2
  - {type: linear, out_features: 10, name: head}
training:
  epochs: 5
  optimizer: {type: adam, lr: 0.001}
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(SPEC)
    return path


@pytest.mark.parametrize(
    "text, parts, value",
    [
        ("training.optimizer.lr=0.01", ["training", "optimizer", "lr"], 0.01),
        ("training.optimizer.lr=1e-3", ["training", "optimizer", "lr"], 0.001),
        ("training.optimizer.lr=-2E+2", ["training", "optimizer", "lr"], -200.0),
        ("layers.fc1.out_features=128", ["layers", "fc1", "out_features"], 128),
        ("layers.3.p=0.5", ["layers", 3, "p"], 0.5),
        ("training.amp=true", ["training", "amp"], True),
        ("training.early_stopping=null", ["training", "early_stopping"], None),
        (
            "training.scheduler={type: cosine}",
            ["training", "scheduler"],
            {"type": "cosine"},
        ),
        ("input=[1, 8, 8]", ["input"], [1, 8, 8]),
        ("name=Other", ["name"], "Other"),
        ("training.data.target='1e3'", ["training", "data", "target"], "1e3"),
        ("description=a=b", ["description"], "a=b"),
    ],
)
def test_parse_assignment(text, parts, value):
    assert parse_assignment(text) == (parts, value)


def test_apply_by_name_index_and_section_without_touching_the_input():
    data = {
        "name": "Net",
        "input": [4],
        "layers": [
            "relu",
            {"linear": 8},
            {"dropout": 0.1},
            {"linear": {"out_features": 2, "name": "head"}},
        ],
    }
    out = apply_overrides(
        data,
        [
            "layers.fc1.out_features=16",
            "layers.2.p=0.3",
            "layers.head.bias=false",
            "training.optimizer.lr=0.1",
            "layers.0=gelu",
        ],
    )
    assert out["layers"] == [
        "gelu",
        {"type": "linear", "out_features": 16},
        {"type": "dropout", "p": 0.3},
        {"type": "linear", "out_features": 2, "name": "head", "bias": False},
    ]
    assert out["training"] == {"optimizer": {"lr": 0.1}}
    assert data["layers"][1] == {"linear": 8}  # the caller's data is left alone


def test_automatic_names_count_per_type_over_the_whole_spec():
    data = {
        "layers": [
            {"linear": 8},
            "relu",
            {"linear": {"out_features": 4, "name": "mid"}},
            {"linear": 2},
        ]
    }
    out = apply_overrides(
        data, ["layers.fc3.out_features=3"]
    )  # the third linear, even though the 2nd is named
    assert out["layers"][3] == {"type": "linear", "out_features": 3}


@pytest.mark.parametrize(
    "text, message",
    [
        ("training.optimizer.lr", "--set training.optimizer.lr: expected PATH=VALUE"),
        ("=3", "--set =3: expected PATH=VALUE"),
        ("training..lr=3", "empty step in the path 'training..lr'"),
        (
            "layers.fc9.out_features=3",
            "no layer is named 'fc9' (did you mean 'fc1'?); the layers are flatten1, fc1, relu1, drop1, head",
        ),
        ("layers.7.p=0.1", "there are 5 layers, indexed 0 to 4"),
        (
            "training.epochs.max=3",
            "training.epochs is 5, not a section; it has no 'max'",
        ),
        ("input.5=3", "input is a list of 3 items; 5 is not an index of it"),
        ("training.optimizer.lr=[1, 2", "the value is not valid YAML"),
    ],
)
def test_errors_name_the_assignment(spec_file, text, message):
    with pytest.raises(UserError) as info:
        load_spec_with_overrides(spec_file, [text])
    assert message in str(info.value)
    assert str(info.value).startswith(f"--set {text}")


def test_result_is_validated_again_like_a_file(spec_file):
    spec = load_spec_with_overrides(
        spec_file,
        [
            "layers.fc1.out_features=64",
            "training.optimizer.lr=1e-2",
            "layers.drop1.p=0.5",
        ],
    )
    assert spec.layers[1].out_features == 64
    assert spec.layers[3].p == 0.5
    assert spec.training.optimizer.lr == 0.01
    assert spec.training.epochs == 5  # the rest is as in the file
    assert spec.source == str(spec_file)


def test_invalid_values_are_spec_errors_that_name_the_assignment(spec_file):
    with pytest.raises(SpecError) as info:
        load_spec_with_overrides(
            spec_file, ["layers.fc1.out_features=-3", "training.optimizer.lr=0.01"]
        )
    text = str(info.value)
    assert f"{spec_file}:5: layers[1].linear.out_features:" in text
    assert "(set by --set layers.fc1.out_features=-3)" in text
    assert "lr" not in text  # only the bad value is reported
    with pytest.raises(SpecError) as info:
        load_spec_with_overrides(spec_file, ["training.optimizer.learning_rate=0.1"])
    assert "training.optimizer.learning_rate" in str(info.value)
    assert "(set by --set training.optimizer.learning_rate=0.1)" in str(info.value)


def test_a_set_can_repair_an_invalid_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(SPEC.replace("dropout: 0.2", "dropout: 2.0"))
    with pytest.raises(SpecError):
        load_spec_with_overrides(path, [])
    assert load_spec_with_overrides(path, ["layers.3.p=0.1"]).layers[3].p == 0.1


def test_hostile_values_stay_data(spec_file):
    with pytest.raises(UserError, match="is not allowed; specs hold plain data only"):
        load_spec_with_overrides(
            spec_file, ["name=!!python/object/apply:os.system ['touch x']"]
        )
    with pytest.raises(UserError, match="longer than"):
        load_spec_with_overrides(spec_file, ["name=" + "x" * 20_000])
