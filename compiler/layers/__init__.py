"""The layer registry: every layer type of the spec language, each one small definition.

`Layer` is the discriminated union that pydantic validates; it is listed explicitly, and a test
asserts that it and `REGISTRY` hold the same types. Adding a layer type means writing its class in
`conv.py` or `dense.py` (or a new module) and naming it in the union `Layer` below.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .base import REGISTRY, LayerSpec, Shape, ShapeProblem, check_identifier, format_shape
from .conv import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    MaxPool1d,
    MaxPool2d,
)
from .dense import (
    ELU,
    GELU,
    BatchNorm1d,
    BatchNorm2d,
    Dropout,
    Dropout1d,
    Dropout2d,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)

Layer = Annotated[
    Union[
        Linear,
        Conv1d,
        Conv2d,
        MaxPool1d,
        MaxPool2d,
        AvgPool1d,
        AvgPool2d,
        AdaptiveAvgPool1d,
        AdaptiveAvgPool2d,
        BatchNorm1d,
        BatchNorm2d,
        LayerNorm,
        Dropout,
        Dropout1d,
        Dropout2d,
        Flatten,
        ReLU,
        LeakyReLU,
        GELU,
        SiLU,
        ELU,
        Tanh,
        Sigmoid,
        Softmax,
        LogSoftmax,
        Identity,
    ],
    Field(discriminator="type"),
]

# Every concrete class registers itself in REGISTRY when defined; the union above is written out
# by hand so that pydantic's schema stays explicit, and tests/ asserts that the two agree.
LAYER_TYPES: tuple[type[LayerSpec], ...] = tuple(REGISTRY.values())

__all__ = [
    "LAYER_TYPES",
    "REGISTRY",
    "Layer",
    "LayerSpec",
    "Shape",
    "ShapeProblem",
    "check_identifier",
    "format_shape",
]
