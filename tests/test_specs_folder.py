"""Every spec in specs/: the static count and shapes equal what torch and torchsummary see."""

from __future__ import annotations

import contextlib
import io
import re

import pytest
import torch
from torchsummary import summary

from compiler import (
    build_sequential,
    count_params,
    load_spec,
    model_tree,
    output_shape,
    resolved_layers,
)
from compiler.layers import REGISTRY
from compiler.tree import children, leaves
from runtime.data.inputs import sample_batch, spec_inputs

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def torchsummary_report(model: torch.nn.Module, spec) -> str:
    """Return what torchsummary prints for the model on CPU (given ids for an int64 input)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), spec_inputs(model, spec):
        summary(model, input_size=tuple(spec.input), device="cpu")
    return out.getvalue()


def test_the_folder_holds_specs(example_specs):
    assert len(example_specs) >= 6
    assert {p.suffix for p in example_specs} >= {".yaml", ".json"}


def test_static_count_equals_torch_and_torchsummary(example_spec):
    spec = load_spec(example_spec)
    model = build_sequential(spec)
    static = count_params(spec)
    assert static == sum(p.numel() for p in model.parameters())
    assert static == sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not all(
        REGISTRY[layer.type].torchsummary_sees for layer in resolved_layers(spec)
    ):
        return  # torchsummary counts only .weight/.bias and fails on tuple outputs (LSTM, attention)
    report = torchsummary_report(model, spec)
    total = re.search(r"Total params: ([\d,]+)", report)
    trainable = re.search(r"Trainable params: ([\d,]+)", report)
    assert total and int(total.group(1).replace(",", "")) == static
    assert trainable and int(trainable.group(1).replace(",", "")) == static
    # torchsummary's per-layer rows: output shapes and counts, in order, as the static inference says
    rows = re.findall(
        r"^\s*(\w+)-\d+\s+\[(-1(?:, \d+)*)\]\s+([\d,]+)\s*$", report, re.M
    )
    rows = [r for r in rows if r[0] != "WiredModule"]  # a module's wiring, not a layer
    # torchsummary lists layers as forward runs them: a residual's shortcut before its layers
    layers = [leaf for _, leaf in leaves(model_tree(spec).body, running=True)]
    layers = [
        type(
            "Row",
            (),
            {
                "torch_class": leaf.layer.torch_class,
                "output_shape": leaf.info.output_shape,
                "params": leaf.info.params,
            },
        )
        for leaf in layers
    ]
    assert [r[0] for r in rows] == [layer.torch_class for layer in layers]
    assert [tuple(int(d) for d in r[1].split(", ")[1:]) for r in rows] == [
        layer.output_shape for layer in layers
    ]
    assert [int(r[2].replace(",", "")) for r in rows] == [
        layer.params for layer in layers
    ]


def test_forward_pass_gives_the_static_output_shape(example_spec):
    spec = load_spec(example_spec)
    torch.manual_seed(0)
    model = build_sequential(spec)
    names = [name for name, _ in model.named_children()]
    assert names == [child.name for child in children(model_tree(spec).body)]
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            out = model(sample_batch(spec, 2))
        assert tuple(out.shape) == (2, *output_shape(spec))
        assert torch.isfinite(out).all()


def test_every_spec_has_a_training_section(example_spec):
    spec = load_spec(example_spec)
    assert spec.training is not None
    assert spec.name.isidentifier()
    assert all(line is not None for line in spec.layer_lines)
