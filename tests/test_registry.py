"""The layer registry agrees with itself, with the pydantic union, and with the installed torch."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch
from pydantic_core import PydanticUndefined
from torch import nn

from compiler.layers import LAYER_TYPES, REGISTRY, Layer, LayerSpec
from compiler.layers.base import GROUPS
from compiler.reserved import RESERVED_ATTRIBUTES

# Defaults the spec language changes on purpose, each with its reason.
DELIBERATE_DEFAULTS = {
    # torch's None picks a dimension by a legacy rule and warns; -1 is what every spec means
    ("softmax", "dim"): -1,
    ("logsoftmax", "dim"): -1,
    # torch requires dim; a sample's first dimension is what a spec means
    ("unflatten", "dim"): 1,
    # torch's default is the function F.relu; a spec names it
    ("transformerencoderlayer", "activation"): "relu",
}


def torch_parameters(cls: type[LayerSpec]) -> dict:
    """Return the parameters of the torch.nn class's constructor (the recurrent classes take
    *args, so theirs are RNNBase's after `mode`, with nn.RNN's own `nonlinearity`)."""
    torch_cls = getattr(nn, cls.torch_class)
    parameters = dict(inspect.signature(torch_cls).parameters)
    if issubclass(torch_cls, nn.RNNBase):
        parameters = dict(inspect.signature(nn.RNNBase).parameters)
        parameters.pop("mode")
        if torch_cls is nn.RNN:
            nonlinearity = inspect.Parameter(
                "nonlinearity", inspect.Parameter.KEYWORD_ONLY, default="tanh"
            )
            parameters["nonlinearity"] = nonlinearity
    return parameters


def union_members() -> set[type]:
    """Return the classes of the explicit union `compiler.layers.Layer`."""
    union, *_ = typing.get_args(Layer)
    return set(typing.get_args(union))


def spec_arguments(cls: type[LayerSpec]) -> dict:
    """Return a layer class's torch arguments (pydantic fields other than type, name and the
    arguments of the call in forward, such as an LSTM's `output`)."""
    return {
        k: v
        for k, v in cls.model_fields.items()
        if k not in ("type", "name") and k not in cls.forward_args
    }


def test_union_and_registry_hold_the_same_classes():
    assert union_members() == set(REGISTRY.values())
    assert set(LAYER_TYPES) == set(REGISTRY.values())
    assert len(REGISTRY) >= 26  # every v1 type of SPEC.md


def test_registry_keys_are_the_type_tags():
    for type_name, cls in REGISTRY.items():
        assert cls.model_fields["type"].default == type_name
        assert type_name == type_name.lower() and type_name.isidentifier()


@pytest.mark.parametrize(
    "type_name", sorted(t for t, c in REGISTRY.items() if not c.tensor_op)
)
def test_torch_class_exists_with_the_same_argument_names_and_defaults(type_name):
    cls = REGISTRY[type_name]
    torch_cls = getattr(nn, cls.torch_class, None)
    assert isinstance(torch_cls, type) and issubclass(
        torch_cls, nn.Module
    ), cls.torch_class
    parameters = torch_parameters(cls)
    for (
        arg,
        value,
    ) in cls.fixed.items():  # batch_first=True and the like: torch's own arguments
        assert arg in parameters and arg not in cls.model_fields, (type_name, arg)
    args = spec_arguments(cls)
    for arg, field in args.items():
        assert (
            arg in parameters
        ), f"{type_name}.{arg} is not an argument of nn.{cls.torch_class}"
        torch_default = parameters[arg].default
        ours = field.default
        if (type_name, arg) in DELIBERATE_DEFAULTS:
            assert ours == DELIBERATE_DEFAULTS[(type_name, arg)]
        elif arg in cls.inferred:
            # inferred from the shape: optional in a spec, required by torch
            assert ours is None and torch_default is inspect.Parameter.empty
        elif torch_default is inspect.Parameter.empty:
            assert (
                ours is PydanticUndefined
            ), f"{type_name}.{arg}: torch requires it, the spec defaults it"
        else:
            assert ours == torch_default and type(ours) is type(
                torch_default
            ), f"{type_name}.{arg}: spec default {ours!r}, torch default {torch_default!r}"
    # the arguments keep torch's order, so generated code reads like torch's documentation
    order = [name for name in parameters if name in args]
    assert order == list(args)
    # every argument torch requires is in the spec (written or inferred)
    required = {
        n
        for n, p in parameters.items()
        if p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    assert required <= set(args) | set(cls.fixed)


@pytest.mark.parametrize(
    "type_name", sorted(t for t, c in REGISTRY.items() if c.tensor_op)
)
def test_tensor_ops_are_tensor_methods_with_a_built_module(type_name):
    from compiler import modules

    cls = REGISTRY[type_name]
    assert cls.torch_class == "" and callable(getattr(torch.Tensor, type_name))
    built = getattr(modules, cls.build_class)
    assert issubclass(built, nn.Module)


@pytest.mark.parametrize(
    "type_name",
    sorted(t for t, c in REGISTRY.items() if c.build_class and not c.tensor_op),
)
def test_built_classes_subclass_the_torch_class_the_generated_code_writes(type_name):
    from compiler import modules

    cls = REGISTRY[type_name]
    # the same class underneath: the same parameters, state_dict keys and initialization
    assert issubclass(getattr(modules, cls.build_class), getattr(nn, cls.torch_class))


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_class_attributes_are_consistent(type_name):
    cls = REGISTRY[type_name]
    args = spec_arguments(cls)
    assert cls.primary is None or cls.primary in args
    assert set(cls.inferred) <= set(args)
    assert cls.prefix.isidentifier()  # a prefix ending in a digit numbers as relu6_1
    assert (
        cls.group in GROUPS
    ), f"{type_name}: group {cls.group!r} is not a section of docs/layers.md"
    assert cls.ranks is None or all(1 <= r <= 4 for r in cls.ranks)
    assert cls.model_config.get("extra") == "forbid"
    assert cls.__doc__ and cls.__doc__.strip()


def test_reserved_names_equal_the_public_attributes_of_the_installed_torch():
    public = {
        n
        for n in set(dir(nn.Module())) | set(dir(nn.Sequential()))
        if not n.startswith("_")
    }
    assert set(RESERVED_ATTRIBUTES) == public, (
        f"missing from compiler/reserved.py: {sorted(public - RESERVED_ATTRIBUTES)}; "
        f"no longer in torch: {sorted(RESERVED_ATTRIBUTES - public)}"
    )
