"""`nnspec lint`: each rule fires on a spec that breaks it and stays quiet on one that does not."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compiler import load_spec
from compiler.lint import RULES, lint_file, lint_spec, training_sample_count
from runtime.cli.main import main

ROOT = Path(__file__).resolve().parent.parent

MLP = ["flatten", {"linear": 64}, "relu", {"dropout": 0.3}, {"linear": 10}]
CNN = [
    {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
    "relu",
    {"maxpool2d": 2},
    {"dropout2d": 0.25},
    "flatten",
    {"linear": 10},
]
TRAINING = {
    "data": {"dataset": "digits"},
    "early_stopping": {"monitor": "val_loss", "patience": 10},
}


def spec(layers, training=TRAINING, input_shape=(1, 8, 8), **extra):
    """Return a spec mapping; `training=None` leaves the section out."""
    data = {"name": "Net", "input": list(input_shape), "layers": layers, **extra}
    if training is not None:
        data["training"] = training
    return data


def codes(data) -> list[str]:
    """Return the codes of the warnings of a spec mapping."""
    return [w.code for w in lint_spec(load_spec(data))]


# (code, a spec that breaks the rule, a near twin that keeps it)
CASES = [
    (
        "NS101",
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                "relu",
                {"dropout": 0.25},
                "flatten",
                {"linear": 10},
            ]
        ),
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                "relu",
                {"dropout2d": 0.25},
                "flatten",
                {"linear": 10},
            ]
        ),
    ),
    (
        "NS101",  # conv1d feature maps want dropout1d
        spec(
            [
                {"conv1d": {"out_channels": 4, "kernel_size": 3}},
                {"dropout": 0.3},
                "flatten",
                {"linear": 10},
            ],
            input_shape=(2, 16),
        ),
        spec(
            [
                {"conv1d": {"out_channels": 4, "kernel_size": 3}},
                {"dropout1d": 0.3},
                "flatten",
                {"linear": 10},
            ],
            input_shape=(2, 16),
        ),
    ),
    (
        "NS101",  # the rule reads the registry's roles: a transposed conv and relu6 are seen too
        spec(
            [
                {"convtranspose2d": {"out_channels": 4, "kernel_size": 2, "stride": 2}},
                "relu6",
                {"dropout": 0.3},
                "flatten",
                {"linear": 10},
            ]
        ),
        spec(
            [
                {"convtranspose2d": {"out_channels": 4, "kernel_size": 2, "stride": 2}},
                "relu6",
                {"dropout2d": 0.3},
                "flatten",
                {"linear": 10},
            ]
        ),
    ),
    (
        "NS102",
        spec(["flatten", {"linear": 64}, "relu", {"dropout": 0.1}, {"linear": 10}]),
        spec(MLP),
    ),
    (
        "NS102",
        spec(["flatten", {"linear": 64}, "relu", {"dropout": 0.8}, {"linear": 10}]),
        spec(["flatten", {"linear": 64}, "relu", {"dropout": 0.5}, {"linear": 10}]),
    ),
    (
        "NS103",
        spec(["flatten", {"linear": 64}, "relu", {"linear": 10}, {"dropout": 0.3}]),
        spec(MLP),
    ),
    (
        "NS103",
        spec(
            [
                "flatten",
                {"linear": 64},
                "relu",
                {"linear": 10},
                {"dropout": 0.3},
                "relu",
            ]
        ),
        spec(MLP),
    ),
    ("NS104", spec(MLP + ["softmax"]), spec(MLP)),
    ("NS104", spec(MLP + ["logsoftmax"]), spec(MLP + ["logsoftmax"], training=None)),
    (
        "NS105",
        spec(
            [
                "flatten",
                {"linear": 16},
                "relu",
                {"dropout": 0.3},
                {"linear": 1},
                "sigmoid",
            ],
            training={**TRAINING, "task": "binary"},
        ),
        spec(
            ["flatten", {"linear": 16}, "relu", {"dropout": 0.3}, {"linear": 1}],
            training={**TRAINING, "task": "binary"},
        ),
    ),
    ("NS106", spec(MLP, training={**TRAINING, "early_stopping": None}), spec(MLP)),
    (
        "NS106",
        spec(MLP, training={**TRAINING, "early_stopping": {"patience": 0}}),
        spec(MLP, training={**TRAINING, "early_stopping": {"patience": 1}}),
    ),
    (
        "NS107",
        spec(MLP, training={**TRAINING, "early_stopping": {"monitor": "train_loss"}}),
        spec(MLP, training={**TRAINING, "early_stopping": {"monitor": "val_accuracy"}}),
    ),
    (
        "NS108",  # 85,002 parameters for 1,437 digits: 59 per sample
        spec(
            [
                "flatten",
                {"linear": 256},
                "relu",
                {"linear": 256},
                "relu",
                {"linear": 10},
            ]
        ),
        spec(
            [
                "flatten",
                {"linear": 256},
                "relu",
                {"linear": 256},
                "relu",
                {"linear": 10},
            ],
            training={**TRAINING, "regularization": {"l2": 0.0001}},
        ),
    ),
    (
        "NS108",
        spec(
            [
                "flatten",
                {"linear": 256},
                "relu",
                {"linear": 256},
                "relu",
                {"linear": 10},
            ]
        ),
        spec(
            [
                "flatten",
                {"linear": 256},
                "relu",
                {"linear": 256},
                "relu",
                {"linear": 10},
            ],
            training={**TRAINING, "data": {"dataset": "mnist"}},
        ),
    ),
    (
        "NS109",
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                "relu",
                {"linear": 10},
                "flatten",
                {"linear": 10},
            ]
        ),
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                "relu",
                "flatten",
                {"linear": 10},
            ]
        ),
    ),
    (
        "NS109",  # (C, L) from a conv1d
        spec(
            [
                {"conv1d": {"out_channels": 4, "kernel_size": 3}},
                {"linear": 10},
                "flatten",
                {"linear": 10},
            ],
            input_shape=(2, 16),
        ),
        # a linear on a (C, L) input is legal: it acts on each of the C feature vectors
        spec([{"linear": 10}, "flatten", {"linear": 10}], input_shape=(2, 16)),
    ),
    (
        "NS110",
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                {"dropout2d": 0.25},
                "batchnorm2d",
                "relu",
                "flatten",
                {"linear": 10},
            ]
        ),
        spec(
            [
                {"conv2d": {"out_channels": 8, "kernel_size": 3}},
                "batchnorm2d",
                "relu",
                {"dropout2d": 0.25},
                "flatten",
                {"linear": 10},
            ]
        ),
    ),
    (
        "NS110",
        spec(["flatten", {"dropout": 0.2}, "relu", "batchnorm1d", {"linear": 10}]),
        spec(["flatten", "batchnorm1d", {"dropout": 0.2}, {"linear": 10}]),
    ),
    (
        "NS111",
        spec(["flatten", {"linear": 64}, "relu", {"dropout": 0.3}, {"linear": 5}]),
        spec(MLP),
    ),
    (
        "NS111",
        spec(MLP, training={**TRAINING, "task": "binary"}),
        spec(MLP, training={**TRAINING, "task": "regression"}),
    ),
    (
        "NS111",  # classification needs [classes], not a feature map
        spec([{"conv2d": {"out_channels": 10, "kernel_size": 3}}]),
        spec(
            [
                {"conv2d": {"out_channels": 10, "kernel_size": 3}},
                "flatten",
                {"dropout": 0.3},
                {"linear": 10},
            ]
        ),
    ),
    (
        "NS100",
        spec(MLP, lint={"ignore": ["NS999"]}),
        spec(MLP, lint={"ignore": ["NS101"]}),
    ),
]


@pytest.mark.parametrize(
    "code,bad,good", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule_fires_on_a_spec_that_breaks_it_and_not_on_its_twin(code, bad, good):
    assert code in codes(bad)
    assert code not in codes(good)


def test_the_roles_come_from_the_registry():
    from compiler.layers import REGISTRY
    from compiler.lint import ACTIVATIONS, DROPOUTS, FEATURE_MAP_MAKERS

    assert {"relu6", "hardswish", "prelu", "celu"} <= ACTIVATIONS
    assert {
        "conv3d",
        "convtranspose1d",
        "adaptivemaxpool2d",
        "upsample",
    } <= FEATURE_MAP_MAKERS
    assert DROPOUTS == {t for t in REGISTRY if t.startswith("dropout")}
    assert not FEATURE_MAP_MAKERS & (ACTIVATIONS | DROPOUTS)


def test_every_rule_has_a_case_and_a_section_in_docs():
    assert {case[0] for case in CASES} == set(RULES)
    docs = (ROOT / "docs" / "lint.md").read_text()
    for code, rule in RULES.items():
        assert re.search(
            rf"^## {code} ", docs, re.M
        ), f"docs/lint.md has no section for {code}"


def test_good_models_are_clean():
    assert codes(spec(MLP)) == []
    assert codes(spec(CNN)) == []


def test_training_rules_need_a_training_section():
    no_training = spec(
        ["flatten", {"linear": 256}, "relu", {"linear": 5}, "softmax"], training=None
    )
    assert codes(no_training) == []


def test_every_example_spec_is_clean(example_spec):
    _, warnings = lint_file(example_spec)
    assert [w.format(str(example_spec)) for w in warnings] == []


def test_messages_show_the_values_at_fault():
    (rate,) = [
        w
        for w in lint_spec(
            load_spec(
                spec(
                    [
                        "flatten",
                        {"linear": 64},
                        "relu",
                        {"dropout": 0.05},
                        {"linear": 10},
                    ]
                )
            )
        )
        if w.code == "NS102"
    ]
    assert "0.05" in rate.message and rate.path == "layers[3]"
    (size,) = lint_spec(
        load_spec(
            spec(
                [
                    "flatten",
                    {"linear": 256},
                    "relu",
                    {"linear": 256},
                    "relu",
                    {"linear": 10},
                ]
            )
        )
    )
    assert (
        "85,002 parameters for 1,437 training samples (59 per sample)" in size.message
    )


NESTED_FILE = """\
name: Nested
input: [3, 8, 8]
blocks:
  Unit:
    params: {channels: required}
    layers:
      - conv2d: {out_channels: $channels, kernel_size: 3, padding: 1}
      - dropout: 0.3
layers:
  - residual:
      - conv2d: {out_channels: 3, kernel_size: 3, padding: 1}
      - dropout: 0.3
  - Unit: 4
  - repeat: {times: 2, layers: [Unit: 4]}
  - flatten
  - linear: 10
  - softmax
training: {task: classification, epochs: 3, early_stopping: {patience: 3}}
"""


def test_rules_apply_inside_containers_and_blocks_once_per_written_layer(
    tmp_path, capsys
):
    path = write(tmp_path, NESTED_FILE)
    assert main(["lint", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # the block's dropout runs three times (one use, two copies) but is written once: one warning,
    # at the definition's line and path
    assert lines == [
        f"{path}:8: blocks.Unit.layers[1]: NS101 dropout on the feature map [4, 8, 8] of "
        "blocks.Unit.layers[0] (unit1.conv1) drops single values, which their neighbours carry "
        "anyway (fix: use `dropout2d: 0.3`, which drops whole channels)",
        f"{path}:12: layers[0].residual[1]: NS101 dropout on the feature map [3, 8, 8] of "
        "layers[0].residual[0] (conv1) drops single values, which their neighbours carry anyway "
        "(fix: use `dropout2d: 0.3`, which drops whole channels)",
        f"{path}:17: layers[5]: NS104 final softmax with task classification: cross-entropy "
        "already applies log-softmax, so squashing the logits first shrinks the gradients and "
        "slows or stalls training (fix: remove the softmax layer; apply softmax to the outputs "
        "when you need probabilities)",
    ]


def test_training_sample_count_follows_the_runtime_split(tmp_path):
    digits = load_spec(
        spec(MLP, training={"data": {"dataset": "digits", "val_fraction": 0.2}})
    ).training
    assert training_sample_count(digits) == 1797 - 360
    cifar = load_spec(
        spec(MLP, training={"data": {"dataset": "cifar10", "val_fraction": 0.1}})
    ).training
    assert training_sample_count(cifar) == 45000
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b,y\n" + "1,2,0\n" * 40 + "\n")
    table = load_spec(
        spec(
            MLP,
            training={
                "data": {
                    "dataset": "csv",
                    "path": str(csv),
                    "target": "y",
                    "val_fraction": 0.25,
                }
            },
        )
    ).training
    assert training_sample_count(table) == 30
    missing = load_spec(
        spec(
            MLP,
            training={
                "data": {
                    "dataset": "csv",
                    "path": str(tmp_path / "no.csv"),
                    "target": "y",
                }
            },
        )
    ).training
    assert training_sample_count(missing) is None


BAD_FILE = """\
name: Bad
input: [1, 8, 8]
layers:
  - conv2d: {out_channels: 8, kernel_size: 3}
  - relu
  - dropout: 0.1
  - flatten
  - linear: 10
training:
  data: {dataset: digits}
  early_stopping: null
"""


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cli_prints_file_line_path_code_and_fix_and_exits_1(tmp_path, capsys):
    path = write(tmp_path, BAD_FILE)
    assert main(["lint", str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"{path}:6: layers[2]: NS101 dropout on the feature map [8, 6, 6] of layers[0] "
        "(conv1) drops single values, which their neighbours carry anyway "
        "(fix: use `dropout2d: 0.1`, which drops whole channels)"
    )
    assert lines[1].startswith(f"{path}:6: layers[2]: NS102 dropout rate 0.1 is below")
    assert lines[2].startswith(
        f"{path}:11: training.early_stopping: NS106 no early stopping"
    )
    assert len(lines) == 3


def test_cli_exit_codes_clean_and_invalid(tmp_path, capsys):
    assert main(["lint", str(ROOT / "specs" / "digits_cnn.yaml")]) == 0
    assert capsys.readouterr().out == ""
    invalid = write(
        tmp_path, "name: X\ninput: [4]\nlayers:\n  - linear: -3\n", "invalid.yaml"
    )
    clean = ROOT / "specs" / "digits_mlp.yaml"
    bad = write(tmp_path, BAD_FILE)
    assert (
        main(["lint", str(clean), str(invalid), str(bad)]) == 2
    )  # invalid beats warnings
    captured = capsys.readouterr()
    assert f"{invalid}:4: layers[0].linear.out_features" in captured.err
    assert "NS101" in captured.out  # the other specs are still linted


def test_cli_ignore_repeatable_and_comma_separated(tmp_path, capsys):
    path = write(tmp_path, BAD_FILE)
    assert (
        main(["lint", str(path), "--ignore", "NS101,ns102", "--ignore", "NS106"]) == 0
    )
    assert main(["lint", str(path), "--ignore", "NS101"]) == 1
    out = capsys.readouterr().out
    assert "NS101" not in out and "NS102" in out


def test_cli_ignore_rejects_unknown_codes(tmp_path, capsys):
    assert main(["lint", str(write(tmp_path, BAD_FILE)), "--ignore", "NS1O1"]) == 2
    assert "--ignore NS1O1: no such lint code" in capsys.readouterr().err


def test_spec_lint_ignore_list(tmp_path, capsys):
    path = write(tmp_path, BAD_FILE + "lint: {ignore: [NS101, NS102, NS106]}\n")
    assert main(["lint", str(path)]) == 0
    path = write(tmp_path, BAD_FILE + "lint:\n  ignore: [NS101, NS102, NS106, NS199]\n")
    assert main(["lint", str(path)]) == 1
    assert capsys.readouterr().out.startswith(
        f"{path}:13: lint.ignore[3]: NS100 lint.ignore lists NS199"
    )


def test_cli_json_format(tmp_path, capsys):
    path = write(tmp_path, BAD_FILE)
    assert main(["lint", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [(w["code"], w["line"], w["path"]) for w in report] == [
        ("NS101", 6, "layers[2]"),
        ("NS102", 6, "layers[2]"),
        ("NS106", 11, "training.early_stopping"),
    ]
    assert all(w["file"] == str(path) and w["fix"] for w in report)


def test_lint_never_imports_torch(tmp_path):
    path = write(tmp_path, BAD_FILE)
    code = (
        "import sys\nfrom runtime.cli.main import main\n"
        f"rc = main(['lint', {str(path)!r}, {str(ROOT / 'specs' / 'cifar10_cnn.yaml')!r}])\n"
        "assert rc == 1, rc\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'numpy'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
