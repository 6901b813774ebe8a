"""Containers and blocks: naming, generated block classes, overrides inside them, training a residual net."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from compiler import (
    SpecError,
    build_module,
    count_params,
    generate_source,
    load_spec,
    model_tree,
)
from compiler.tree import children
from runtime.sweep.overrides import load_spec_with_overrides
from runtime.training.generated_form import compile_generated_class

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def basic_block_spec(**extra) -> dict:
    return {
        "name": "Net",
        "input": [3, 8, 8],
        "blocks": {
            "BasicBlock": {
                "params": {"channels": "required", "stride": 1, "downsample": []},
                "layers": [
                    {
                        "residual": {
                            "layers": [
                                {
                                    "conv2d": {
                                        "out_channels": "$channels",
                                        "kernel_size": 3,
                                        "stride": "$stride",
                                        "padding": 1,
                                        "bias": False,
                                    }
                                },
                                "batchnorm2d",
                                "relu",
                                {
                                    "conv2d": {
                                        "out_channels": "$channels",
                                        "kernel_size": 3,
                                        "padding": 1,
                                        "bias": False,
                                    }
                                },
                                "batchnorm2d",
                            ],
                            "shortcut": "$downsample",
                        }
                    },
                    "relu",
                ],
            },
        },
        "layers": [
            {"BasicBlock": {"channels": 3, "name": "block1"}},
            {
                "BasicBlock": {
                    "channels": 8,
                    "stride": 2,
                    "downsample": [
                        {
                            "conv2d": {
                                "out_channels": 8,
                                "kernel_size": 1,
                                "stride": 2,
                                "bias": False,
                            }
                        },
                        "batchnorm2d",
                    ],
                }
            },
            {"repeat": {"name": "stage3", "times": 2, "layers": [{"BasicBlock": 8}]}},
            {"adaptiveavgpool2d": 1},
            "flatten",
            {"linear": 4},
        ],
        **extra,
    }


def test_generated_resnet18_has_a_basic_block_class_over_its_parameters():
    source = (ROOT / "generated" / "resnet18.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    assert list(classes)[-1] == "ResNet18" and "BasicBlock" in classes
    init = next(n for n in classes["BasicBlock"].body if isinstance(n, ast.FunctionDef))
    args = [a.arg for a in init.args.args] + [a.arg for a in init.args.kwonlyargs]
    assert args == ["self", "in_channels", "channels", "stride", "downsample"]
    assert "nn.BatchNorm2d(channels)" in source and "stride=stride" in source
    assert "identity = x if self.downsample is None else self.downsample(x)" in source


def test_names_state_dict_keys_and_both_forms():
    spec = load_spec(basic_block_spec())
    assert [c.name for c in children(model_tree(spec).body)] == [
        "block1",
        "basic_block2",
        "stage3",
        "pool1",
        "flatten1",
        "fc1",
    ]
    model = build_module(spec)
    keys = list(model.state_dict())
    assert (
        "stage3.0.conv1.weight" in keys
        and "basic_block2.downsample.conv1.weight" in keys
    )
    assert keys.index("basic_block2.bn2.weight") < keys.index(
        "basic_block2.downsample.conv1.weight"
    )
    assert count_params(spec) == sum(p.numel() for p in model.parameters())
    cls = compile_generated_class(spec)
    torch.manual_seed(3)
    built = build_module(spec)
    torch.manual_seed(3)
    generated = cls()
    assert list(built.state_dict()) == list(generated.state_dict())
    for (key, a), b in zip(built.state_dict().items(), generated.state_dict().values()):
        assert torch.equal(a, b), key
    built.eval(), generated.eval()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(built(x), generated(x))


def test_one_class_serves_every_use_of_a_block():
    source = generate_source(load_spec(basic_block_spec()))
    assert source.count("class BasicBlock(") == 1 and "class BasicBlock2" not in source
    assert "BasicBlock(3, 3)" in source and "BasicBlock(8, 8)" in source
    from compiler.codegen import render_module

    assert "BasicBlock(3, 8, stride=2, downsample=nn.Sequential(" in render_module(
        load_spec(basic_block_spec())
    )


def test_times_from_a_parameter_is_a_loop_in_the_block_class():
    spec = load_spec(
        {
            "name": "Deep",
            "input": [4],
            "blocks": {
                "Stack": {
                    "params": {"width": "required", "depth": 2},
                    "layers": [
                        {
                            "repeat": {
                                "times": "$depth",
                                "layers": [{"linear": "$width"}, "relu"],
                            }
                        }
                    ],
                }
            },
            "layers": [
                {"Stack": {"width": 8, "depth": 3}},
                {"Stack": {"width": 8, "depth": 1}},
                {"linear": 2},
            ],
        }
    )
    source = generate_source(spec)
    assert "for _ in range(depth):" in source and source.count("class Stack(") == 1
    cls = compile_generated_class(spec)
    torch.manual_seed(0)
    built = build_module(spec)
    torch.manual_seed(0)
    generated = cls()
    assert list(built.state_dict()) == list(generated.state_dict())
    x = torch.randn(5, 4)
    assert torch.equal(built(x), generated(x))
    assert count_params(spec) == sum(p.numel() for p in generated.parameters())


def test_branches_merge_add_and_mul_broadcast_as_torch_does():
    spec = load_spec(
        {
            "name": "Gate",
            "input": [4, 6, 6],
            "layers": [
                {
                    "branches": {
                        "merge": "mul",
                        "paths": [
                            [],
                            [
                                {"adaptiveavgpool2d": 1},
                                {"conv2d": {"out_channels": 4, "kernel_size": 1}},
                                "sigmoid",
                            ],
                        ],
                    }
                },
                {"branches": {"merge": "add", "paths": [[], ["relu"], ["tanh"]]}},
            ],
        }
    )
    model = build_module(spec).eval()
    x = torch.randn(2, 4, 6, 6)
    assert tuple(model(x).shape) == (2, 4, 6, 6)
    gate = torch.sigmoid(model.conv1(model.pool1(x)))
    y = x * gate
    assert torch.allclose(model(x), y + torch.relu(y) + torch.tanh(y))


def test_times_zero_is_the_identity():
    spec = load_spec(
        {
            "name": "Zero",
            "input": [4],
            "layers": [
                {"repeat": {"times": 0, "layers": [{"linear": 9}]}},
                {"linear": 2},
            ],
        }
    )
    assert count_params(spec) == 4 * 2 + 2


def test_set_and_blocks_params_reach_inside_containers(tmp_path):
    path = ROOT / "specs" / "digits_resnet.yaml"
    base = count_params(load_spec(path))
    deeper = load_spec_with_overrides(path, ["layers.stage1.times=4"])
    assert count_params(deeper) - base == 2 * (
        count_params(load_spec(path))
        - count_params(load_spec_with_overrides(path, ["layers.stage1.times=1"]))
    )
    with pytest.raises(SpecError) as caught:
        load_spec_with_overrides(path, ["layers.stage2.channels=48"])
    assert "the layers give [48, 4, 4] but the shortcut gives [32, 4, 4]" in str(
        caught.value
    )


def test_a_problem_inside_a_block_is_reported_once_with_both_places():
    spec = basic_block_spec()
    spec["blocks"]["BasicBlock"]["layers"][1] = {"dropout": 3.0}
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert (
        problem.path == "layers[0].BasicBlock (blocks.BasicBlock.layers[1].dropout.p)"
    )


def test_the_residual_digits_net_trains(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "runtime",
            "train",
            str(ROOT / "specs" / "digits_resnet.yaml"),
            "--out",
            str(out),
            "--set",
            "training.epochs=3",
            "--set",
            "training.batch_size=128",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "best.pt").exists() and (out / "metrics.csv").exists()
    rows = (out / "metrics.csv").read_text().splitlines()
    assert len(rows) == 4  # a header and three epochs
