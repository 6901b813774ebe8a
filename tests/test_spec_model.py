"""The Spec model: names, the normalized form and its digest, resolved layers, training, building."""

from __future__ import annotations

import inspect
import time

import pydantic
import pytest

from compiler import (
    Problem,
    Spec,
    SpecError,
    build_sequential,
    count_params,
    load_spec,
    output_shape,
    resolved_layers,
    spec_data,
    spec_digest,
)
from compiler.layers import REGISTRY


def spec_with(*layers, input=(4,), **top) -> dict:
    return {"name": "M", "input": list(input), "layers": list(layers), **top}


def problems_of(mapping: dict) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        load_spec(mapping)
    return [(p.path, p.message) for p in caught.value.problems]


# -- names ----------------------------------------------------------------------------------------


def test_automatic_names_follow_spec_md():
    spec = load_spec(
        spec_with(
            {"conv2d": {"out_channels": 2, "kernel_size": 1}},
            {"conv2d": {"out_channels": 2, "kernel_size": 1}},
            "batchnorm2d",
            "relu",
            {"maxpool2d": 1},
            {"dropout2d": 0.1},
            "flatten",
            {"linear": 4},
            {"dropout": 0.1},
            {"linear": 2},
            "layernorm",
            "gelu",
            "identity",
            {"softmax": -1},
            input=(1, 2, 2),
        )
    )
    assert [layer.name for layer in spec.layers] == [
        "conv1",
        "conv2",
        "bn1",
        "relu1",
        "pool1",
        "drop1",
        "flatten1",
        "fc1",
        "drop2",
        "fc2",
        "ln1",
        "gelu1",
        "identity1",
        "softmax1",
    ]


def test_a_named_layer_keeps_its_place_in_the_counting():
    # numbering is positional: naming one layer never renumbers the others
    spec = load_spec(
        spec_with({"linear": {"out_features": 4, "name": "hidden"}}, {"linear": 2})
    )
    assert [layer.name for layer in spec.layers] == ["hidden", "fc2"]


@pytest.mark.parametrize(
    "name,fragment",
    [
        ("2fc", "must be an ASCII Python identifier"),
        ("f\u00e9", "must be an ASCII Python identifier"),
        ("class", "cannot be the Python keyword 'class'"),
        ("match", "cannot be the Python keyword 'match'"),
        ("forward", "is an attribute of torch.nn.Module"),
        ("training", "is an attribute of torch.nn.Module"),
        ("append", "is an attribute of torch.nn.Module"),  # nn.Sequential's own
        ("_modules", "starts with '_'"),
        ("x" * 65, "at most 64 characters"),
        ("", "must be an ASCII Python identifier"),
    ],
)
def test_layer_name_rules(name, fragment):
    ((path, message),) = problems_of(spec_with({"relu": {"name": name}}))
    assert path == "layers[0].relu.name" and fragment in message


def test_names_must_be_unique_including_automatic_ones():
    got = problems_of(
        spec_with(
            {"relu": {"name": "a"}},
            {"relu": {"name": "a"}},
            "relu",
            {"tanh": {"name": "relu3"}},
        )
    )
    assert got == [
        (
            "layers[1].relu.name",
            "name 'a' is already the name of layers[0]; names must be unique in a "
            "module, so give one of them another name",
        ),
    ]


def test_automatic_names_never_take_a_written_name():
    # SPEC.md: an automatic name never takes a name already used in its module, also one written later
    spec = load_spec(spec_with("relu", "relu", {"tanh": {"name": "relu2"}}, "relu"))
    assert [layer.name for layer in spec.layers] == ["relu1", "relu3", "relu2", "relu4"]


@pytest.mark.parametrize(
    "name", ["torch", "nn", "Tensor", "list", "print", "None", "def", "My Net"]
)
def test_class_name_rules(name):
    ((path, _),) = problems_of({**spec_with("relu"), "name": name})
    assert path == "name"


def test_a_valid_name_of_64_characters_is_fine():
    assert load_spec(spec_with({"relu": {"name": "x" * 64}})).layers[0].name == "x" * 64


# -- normalized form and digest -------------------------------------------------------------------


def test_spec_data_round_trips(example_spec):
    spec = load_spec(example_spec)
    again = load_spec(spec_data(spec))
    assert spec_data(again) == spec_data(spec)
    assert spec_digest(again) == spec_digest(spec)
    assert [layer.name for layer in again.layers] == [
        layer.name for layer in spec.layers
    ]


def test_digest_is_equal_for_equal_meaning_and_differs_otherwise():
    short = spec_with({"linear": 8}, "relu")
    canonical = spec_with(
        {"type": "linear", "out_features": 8, "bias": True, "name": "fc1"},
        {"type": "relu", "inplace": False},
    )
    changed = spec_with({"linear": 9}, "relu")
    assert spec_digest(load_spec(short)) == spec_digest(load_spec(canonical))
    assert spec_digest(load_spec(short)) != spec_digest(load_spec(changed))
    assert len(spec_digest(load_spec(short))) == 64


def test_spec_data_is_canonical_plain_json():
    data = spec_data(load_spec(spec_with({"linear": 8})))
    assert data["layers"] == [
        {
            "type": "linear",
            "name": "fc1",
            "in_features": None,
            "out_features": 8,
            "bias": True,
        }
    ]
    assert data["spec_version"] == 1 and data["training"] is None


# -- resolved layers --------------------------------------------------------------------------------


def test_resolved_kwargs_are_complete_torch_arguments(example_spec):
    spec = load_spec(example_spec)
    from test_registry import torch_parameters  # the recurrent classes' real signature

    for layer in resolved_layers(spec):
        cls = REGISTRY[layer.type]
        if cls.tensor_op:
            continue  # a tensor method, not a torch.nn class
        parameters = torch_parameters(cls)
        # (*args, **kwargs) of a class without its own __init__, such as nn.Sigmoid, are not required
        required = {
            n
            for n, p in parameters.items()
            if p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }
        constructor = {k for k in layer.kwargs if k not in cls.forward_args} | set(
            cls.fixed
        )
        assert required <= constructor <= set(parameters)
        assert not any(
            isinstance(v, list) for v in layer.kwargs.values()
        )  # lists become tuples
        assert all(
            v is not None
            for k, v in layer.kwargs.items()
            if k in ("in_features", "in_channels", "num_features")
        )


def test_resolved_layers_chain_shapes_and_counts():
    spec = load_spec(
        spec_with(
            {"conv2d": {"out_channels": 3, "kernel_size": 3}},
            "flatten",
            {"linear": 5},
            input=(2, 5, 5),
        )
    )
    conv, flatten, linear = resolved_layers(spec)
    assert (conv.input_shape, conv.output_shape, conv.params) == (
        (2, 5, 5),
        (3, 3, 3),
        3 * 2 * 9 + 3,
    )
    assert (flatten.input_shape, flatten.output_shape) == ((3, 3, 3), (27,))
    assert linear.kwargs == {"in_features": 27, "out_features": 5, "bias": True}
    assert count_params(spec) == 57 + 27 * 5 + 5
    assert output_shape(spec) == (5,)


def test_a_spec_built_directly_resolves_lazily():
    spec = Spec.model_validate(spec_with({"type": "linear", "out_features": 3}))
    assert count_params(spec) == 4 * 3 + 3
    assert spec.layers[0].name == "fc1"
    broken = Spec.model_validate(
        spec_with({"type": "conv2d", "out_channels": 3, "kernel_size": 3})
    )
    with pytest.raises(SpecError) as caught:
        resolved_layers(broken)
    assert (
        caught.value.problems[0].path == "layers[0]"
        and "conv2d needs a 3-D input" in caught.value.problems[0].message
    )


def test_specs_are_frozen():
    spec = load_spec(spec_with("relu"))
    with pytest.raises(pydantic.ValidationError):
        spec.name = "Other"
    with pytest.raises(pydantic.ValidationError):
        spec.layers[0].inplace = True


# -- training ----------------------------------------------------------------------------------------


def test_training_defaults_and_resolved_mode():
    spec = load_spec(spec_with("relu"))
    assert spec.training is None
    default = spec.training_or_default
    assert (default.data.dataset, default.epochs, default.optimizer.type) == (
        "digits",
        200,
        "adam",
    )
    assert default.early_stopping.resolved_mode == "min"
    tuned = load_spec(
        spec_with("relu", training={"early_stopping": {"monitor": "val_accuracy"}})
    )
    assert tuned.training.early_stopping.resolved_mode == "max"
    never = load_spec(spec_with("relu", training={"early_stopping": None}))
    assert never.training.early_stopping is None


@pytest.mark.parametrize(
    "training,path,fragment",
    [
        (
            {"optimizer": {"type": "adam", "nesterov": True}},
            "training.optimizer.nesterov",
            "adam takes no nesterov; its arguments are lr, weight_decay, betas",
        ),
        (
            {"data": {"dataset": "csv", "path": "x.csv"}},
            "training.data",
            "needs `target`",
        ),
        ({"data": {"dataset": "npz"}}, "training.data", "needs `path`"),
        (
            {"data": {"val_fraction": 1.0}},
            "training.data.val_fraction",
            "must be less than 1.0",
        ),
        (
            {"device": "gpu"},
            "training.device",
            "must be auto, cpu, cuda, cuda:N or mps, got 'gpu'",
        ),
        (
            {"optimizer": {"betas": [0.9]}},
            "training.optimizer.betas",
            "must have at least 2 items, got 1",
        ),
        (
            {"scheduler": {"type": "cosine", "t_max": 0}},
            "training.scheduler.t_max",
            "must be a positive integer",
        ),
        ({"epochs": 10**7}, "training.epochs", "must be at most 1,000,000"),
        ({"lr": 0.1}, "training.lr", "unknown key 'lr'"),
    ],
)
def test_training_mistakes(training, path, fragment):
    got = problems_of(spec_with("relu", training=training))
    assert len(got) == 1 and got[0][0] == path and fragment in got[0][1], got


def test_lint_ignore_codes():
    assert load_spec(spec_with("relu", lint={"ignore": ["NS001"]})).lint.ignore == [
        "NS001"
    ]
    ((path, _),) = problems_of(spec_with("relu", lint={"ignore": ["W001"]}))
    assert path == "lint.ignore[0]"


# -- errors and building ------------------------------------------------------------------------------


def test_problem_and_spec_error_format():
    assert Problem("layers[0]", "bad", 3).format("f.yaml") == "f.yaml:3: layers[0]: bad"
    assert Problem("", "empty", 1).format("f.yaml") == "f.yaml:1: empty"
    assert Problem("name", "bad", None).format("<spec>") == "<spec>: name: bad"
    assert (
        Problem("x", "two\nlines\u2028here", 1).format("f")
        == "f:1: x: two\\nlines\\u2028here"
    )
    error = SpecError(
        [
            Problem("b", "second", 9),
            Problem("", "file", None),
            Problem("a", "first", 2),
        ],
        "s.yaml",
    )
    assert str(error).splitlines() == [
        "s.yaml: file",
        "s.yaml:2: a: first",
        "s.yaml:9: b: second",
    ]
    assert isinstance(error, ValueError)


def test_building_a_model_too_large_for_memory_is_refused_before_allocating():
    # 10**12 parameters: 4 TB as float32
    spec = load_spec(spec_with({"linear": 1_000_000}, input=(1_000_000,)))
    assert count_params(spec) == 10**12 + 10**6
    start = time.monotonic()
    with pytest.raises(SpecError) as caught:
        build_sequential(spec)
    assert time.monotonic() - start < 5
    (problem,) = caught.value.problems
    assert (
        "1,000,001,000,000 parameters" in problem.message
        and "TiB as float32" in problem.message
    )


def test_build_refuses_when_the_memory_limit_is_small(monkeypatch):
    import compiler.build

    monkeypatch.setattr(compiler.build, "available_memory_bytes", lambda: 1000)
    spec = load_spec(spec_with({"linear": 100}))  # 500 parameters: 2,000 bytes
    with pytest.raises(SpecError) as caught:
        build_sequential(spec)
    assert (
        "500 parameters (2.0 KiB as float32), more than the 1000 B of memory available"
        in str(caught.value)
    )
