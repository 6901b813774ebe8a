"""The layer registry: every layer type of the spec language, each one small definition.

`Layer` is the discriminated union that pydantic validates; it is listed explicitly, and a test
asserts that it and `REGISTRY` hold the same types. Adding a layer type means writing its class in
`conv.py`, `dense.py`, `reshape.py`, `sequence.py` or `ops.py` (or a new module) and naming it in the union `Layer` below.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from .base import (
    REGISTRY,
    LayerSpec,
    Shape,
    ShapeProblem,
    check_identifier,
)
from .conv import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    Conv1d,
    Conv2d,
    Conv3d,
    ConvTranspose1d,
    ConvTranspose2d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from .dense import (
    CELU,
    ELU,
    GELU,
    SELU,
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    Dropout,
    Dropout1d,
    Dropout2d,
    Flatten,
    GroupNorm,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    Identity,
    InstanceNorm1d,
    InstanceNorm2d,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .ops import Amax, Mean, Permute, Select, Transpose
from .reshape import PixelShuffle, Unflatten, Upsample, ZeroPad1d, ZeroPad2d
from .sequence import (
    GRU,
    LSTM,
    RNN,
    ClsToken,
    Embedding,
    MultiheadAttention,
    Positional,
    TransformerEncoderLayer,
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
        Conv3d,
        ConvTranspose1d,
        ConvTranspose2d,
        MaxPool3d,
        AvgPool3d,
        AdaptiveAvgPool3d,
        AdaptiveMaxPool1d,
        AdaptiveMaxPool2d,
        BatchNorm3d,
        GroupNorm,
        InstanceNorm1d,
        InstanceNorm2d,
        ReLU6,
        PReLU,
        Hardswish,
        Hardsigmoid,
        Hardtanh,
        Mish,
        Softplus,
        SELU,
        CELU,
        Upsample,
        Unflatten,
        ZeroPad1d,
        ZeroPad2d,
        PixelShuffle,
        Embedding,
        LSTM,
        GRU,
        RNN,
        MultiheadAttention,
        TransformerEncoderLayer,
        Positional,
        ClsToken,
        Transpose,
        Permute,
        Mean,
        Amax,
        Select,
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
]
