"""Linear, normalization, dropout, flatten and activation layers."""

import math
from typing import Any, ClassVar, Literal

from pydantic import Field
from typing_extensions import Annotated

from ..expressions import Const, Items, multiply
from .base import (
    Bool,
    Float,
    LayerSpec,
    PosInt,
    PositiveFloat,
    Probability,
    Shape,
    ShapeProblem,
    Size,
)

Momentum = Annotated[float, Field(gt=0.0, le=1.0, strict=True)]
Eps = PositiveFloat


class Linear(LayerSpec):
    """nn.Linear, acting on the last dimension."""

    group: ClassVar[str] = "dense"

    type: Literal["linear"] = "linear"
    torch_class: ClassVar[str] = "Linear"
    primary: ClassVar[str | None] = "out_features"
    prefix: ClassVar[str] = "fc"
    inferred: ClassVar[tuple[str, ...]] = ("in_features",)
    inferred_dims: ClassVar[dict[str, int]] = {"in_features": -1}

    in_features: PosInt | None = None
    out_features: PosInt
    bias: Bool = True

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"in_features": shape[-1]}

    def output_shape(self, shape: Shape) -> Shape:
        return (*shape[:-1], self.out_features)

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (*exprs[:-1], args.get("out_features"))

    def count_params(self, shape: Shape) -> int:
        return shape[-1] * self.out_features + (self.out_features if self.bias else 0)


class _BatchNorm(LayerSpec):
    group: ClassVar[str] = "normalization"
    prefix: ClassVar[str] = "bn"
    inferred: ClassVar[tuple[str, ...]] = ("num_features",)
    inferred_dims: ClassVar[dict[str, int]] = {"num_features": 0}

    num_features: PosInt | None = None
    eps: Eps = 1e-5
    momentum: Momentum | None = 0.1
    affine: Bool = True
    track_running_stats: Bool = True

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"num_features": shape[0]}

    def count_params(self, shape: Shape) -> int:
        return 2 * shape[0] if self.affine else 0


class BatchNorm1d(_BatchNorm):
    """nn.BatchNorm1d on (C) or (C, L) samples."""

    type: Literal["batchnorm1d"] = "batchnorm1d"
    torch_class: ClassVar[str] = "BatchNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (1, 2)
    rank_hint: ClassVar[str] = "(C) or (C, L)"


class BatchNorm2d(_BatchNorm):
    """nn.BatchNorm2d on (C, H, W) samples."""

    type: Literal["batchnorm2d"] = "batchnorm2d"
    torch_class: ClassVar[str] = "BatchNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class BatchNorm3d(_BatchNorm):
    """nn.BatchNorm3d on (C, D, H, W) samples."""

    type: Literal["batchnorm3d"] = "batchnorm3d"
    torch_class: ClassVar[str] = "BatchNorm3d"
    ranks: ClassVar[tuple[int, ...]] = (4,)
    rank_hint: ClassVar[str] = "(C, D, H, W)"


class GroupNorm(LayerSpec):
    """nn.GroupNorm: normalizes groups of channels of (C, ...) samples."""

    group: ClassVar[str] = "normalization"

    type: Literal["groupnorm"] = "groupnorm"
    torch_class: ClassVar[str] = "GroupNorm"
    primary: ClassVar[str | None] = "num_groups"
    prefix: ClassVar[str] = "gn"
    inferred: ClassVar[tuple[str, ...]] = ("num_channels",)
    inferred_dims: ClassVar[dict[str, int]] = {"num_channels": 0}

    num_groups: PosInt
    num_channels: PosInt | None = None
    eps: Eps = 1e-5
    affine: Bool = True

    def infer(self, shape: Shape) -> dict[str, Any]:
        if shape[0] % self.num_groups:
            raise ShapeProblem(
                f"num_groups {self.num_groups} must divide the {shape[0]} channels{{origin}}",
                "num_groups",
            )
        return {"num_channels": shape[0]}

    def count_params(self, shape: Shape) -> int:
        return 2 * shape[0] if self.affine else 0


class _InstanceNorm(LayerSpec):
    group: ClassVar[str] = "normalization"
    prefix: ClassVar[str] = "inorm"
    inferred: ClassVar[tuple[str, ...]] = ("num_features",)
    inferred_dims: ClassVar[dict[str, int]] = {"num_features": 0}

    num_features: PosInt | None = None
    eps: Eps = 1e-5
    momentum: Momentum | None = 0.1
    affine: Bool = False
    track_running_stats: Bool = False

    def infer(self, shape: Shape) -> dict[str, Any]:
        if math.prod(shape[1:]) < 2:
            raise ShapeProblem(
                f"normalizes each channel over its positions, but the sample {list(shape)}"
                "{origin} has one position per channel (torch refuses it in training)"
            )
        return {"num_features": shape[0]}

    def count_params(self, shape: Shape) -> int:
        return 2 * shape[0] if self.affine else 0


class InstanceNorm1d(_InstanceNorm):
    """nn.InstanceNorm1d on (C, L) samples."""

    type: Literal["instancenorm1d"] = "instancenorm1d"
    torch_class: ClassVar[str] = "InstanceNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class InstanceNorm2d(_InstanceNorm):
    """nn.InstanceNorm2d on (C, H, W) samples."""

    type: Literal["instancenorm2d"] = "instancenorm2d"
    torch_class: ClassVar[str] = "InstanceNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class LayerNorm(LayerSpec):
    """nn.LayerNorm over the last dimension(s)."""

    group: ClassVar[str] = "normalization"

    type: Literal["layernorm"] = "layernorm"
    torch_class: ClassVar[str] = "LayerNorm"
    prefix: ClassVar[str] = "ln"
    inferred: ClassVar[tuple[str, ...]] = ("normalized_shape",)

    normalized_shape: Size | None = None
    eps: Eps = 1e-5
    elementwise_affine: Bool = True
    bias: Bool = True

    def infer(self, shape: Shape) -> dict[str, Any]:
        written = self.normalized_shape
        n = len(written) if isinstance(written, list) else 1
        if n > len(shape):
            raise ShapeProblem(
                f"normalizes {n} trailing dimensions, but the input has only {len(shape)}",
                "normalized_shape",
            )
        trailing = shape[-n:]
        return {
            "normalized_shape": (
                trailing[0] if not isinstance(written, list) else list(trailing)
            )
        }

    def infer_exprs(self, exprs: tuple) -> dict[str, Any]:
        written = self.normalized_shape
        if not isinstance(written, list):
            return {"normalized_shape": exprs[-1]}
        trailing = exprs[-len(written) :]
        return {
            "normalized_shape": None if None in trailing else Items(tuple(trailing))
        }

    def count_params(self, shape: Shape) -> int:
        written = self.normalized_shape
        n = len(written) if isinstance(written, list) else 1
        size = math.prod(shape[-n:])
        if not self.elementwise_affine:
            return 0
        return size * (2 if self.bias else 1)


class _Dropout(LayerSpec):
    group: ClassVar[str] = "dropout"
    primary: ClassVar[str | None] = "p"
    prefix: ClassVar[str] = "drop"

    p: Probability = 0.5
    inplace: Bool = False


class Dropout(_Dropout):
    """nn.Dropout: zeroes single elements."""

    type: Literal["dropout"] = "dropout"
    torch_class: ClassVar[str] = "Dropout"


class Dropout1d(_Dropout):
    """nn.Dropout1d: zeroes whole channels of (C, L) samples."""

    type: Literal["dropout1d"] = "dropout1d"
    torch_class: ClassVar[str] = "Dropout1d"
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class Dropout2d(_Dropout):
    """nn.Dropout2d: zeroes whole channels of (C, H, W) samples."""

    type: Literal["dropout2d"] = "dropout2d"
    torch_class: ClassVar[str] = "Dropout2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class Flatten(LayerSpec):
    """nn.Flatten; dims count the batch dimension as torch does (start_dim=1 keeps the batch)."""

    group: ClassVar[str] = "reshaping"

    type: Literal["flatten"] = "flatten"
    torch_class: ClassVar[str] = "Flatten"
    prefix: ClassVar[str] = "flatten"

    start_dim: Annotated[int, Field(strict=True)] = 1
    end_dim: Annotated[int, Field(strict=True)] = -1

    def output_shape(self, shape: Shape) -> Shape:
        batched = (1, *shape)
        rank = len(batched)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not 0 <= start < rank:
            raise ShapeProblem(
                f"start_dim {self.start_dim} is out of range for a batched input of rank {rank}",
                "start_dim",
            )
        if not 0 <= end < rank:
            raise ShapeProblem(
                f"end_dim {self.end_dim} is out of range for a batched input of rank {rank}",
                "end_dim",
            )
        if start == 0:
            raise ShapeProblem(
                "start_dim 0 would flatten the batch dimension; use 1", "start_dim"
            )
        if start > end:
            raise ShapeProblem(
                f"start_dim ({self.start_dim}) comes after end_dim ({self.end_dim})",
                "start_dim",
            )
        out = (
            *batched[:start],
            math.prod(batched[start : end + 1]),
            *batched[end + 1 :],
        )
        return out[1:]

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        batched = (Const(1), *exprs)
        rank = len(batched)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        merged = batched[start]
        for expr in batched[start + 1 : end + 1]:
            merged = multiply(merged, expr)
        return (*batched[:start], merged, *batched[end + 1 :])[1:]


class _Activation(LayerSpec):
    """An activation without arguments of its own beyond those listed per class."""

    group: ClassVar[str] = "activations"

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return tuple(
            exprs
        )  # an activation keeps the shape, even where it checks its arguments


class ReLU(_Activation):
    """nn.ReLU."""

    type: Literal["relu"] = "relu"
    torch_class: ClassVar[str] = "ReLU"
    prefix: ClassVar[str] = "relu"
    inplace: Bool = False


class LeakyReLU(_Activation):
    """nn.LeakyReLU."""

    type: Literal["leakyrelu"] = "leakyrelu"
    torch_class: ClassVar[str] = "LeakyReLU"
    primary: ClassVar[str | None] = "negative_slope"
    prefix: ClassVar[str] = "leakyrelu"
    negative_slope: Float = 0.01
    inplace: Bool = False


class GELU(_Activation):
    """nn.GELU."""

    type: Literal["gelu"] = "gelu"
    torch_class: ClassVar[str] = "GELU"
    prefix: ClassVar[str] = "gelu"
    approximate: Literal["none", "tanh"] = "none"


class SiLU(_Activation):
    """nn.SiLU."""

    type: Literal["silu"] = "silu"
    torch_class: ClassVar[str] = "SiLU"
    prefix: ClassVar[str] = "silu"
    inplace: Bool = False


class ELU(_Activation):
    """nn.ELU."""

    type: Literal["elu"] = "elu"
    torch_class: ClassVar[str] = "ELU"
    primary: ClassVar[str | None] = "alpha"
    prefix: ClassVar[str] = "elu"
    alpha: Float = 1.0
    inplace: Bool = False


class Tanh(_Activation):
    """nn.Tanh."""

    type: Literal["tanh"] = "tanh"
    torch_class: ClassVar[str] = "Tanh"
    prefix: ClassVar[str] = "tanh"


class Sigmoid(_Activation):
    """nn.Sigmoid."""

    type: Literal["sigmoid"] = "sigmoid"
    torch_class: ClassVar[str] = "Sigmoid"
    prefix: ClassVar[str] = "sigmoid"


class _SoftmaxLike(_Activation):
    primary: ClassVar[str | None] = "dim"
    # torch's default (None) picks a dimension by a legacy rule and warns; -1 is what it means
    # for every (N, classes) output, so it is the default here and always written out.
    dim: Annotated[int, Field(strict=True)] = -1
    always_written: ClassVar[tuple[str, ...]] = ("dim",)

    def output_shape(self, shape: Shape) -> Shape:
        rank = len(shape) + 1
        dim = self.dim + rank if self.dim < 0 else self.dim
        if not 0 <= dim < rank:
            raise ShapeProblem(
                f"dim {self.dim} is out of range for a batched input of rank {rank}",
                "dim",
            )
        if dim == 0:
            raise ShapeProblem(
                "dim 0 is the batch dimension; use -1 (the last) or 1", "dim"
            )
        return shape


class Softmax(_SoftmaxLike):
    """nn.Softmax."""

    type: Literal["softmax"] = "softmax"
    torch_class: ClassVar[str] = "Softmax"
    prefix: ClassVar[str] = "softmax"


class LogSoftmax(_SoftmaxLike):
    """nn.LogSoftmax."""

    type: Literal["logsoftmax"] = "logsoftmax"
    torch_class: ClassVar[str] = "LogSoftmax"
    prefix: ClassVar[str] = "logsoftmax"


class Identity(_Activation):
    """nn.Identity."""

    group: ClassVar[str] = "dense"

    type: Literal["identity"] = "identity"
    torch_class: ClassVar[str] = "Identity"
    prefix: ClassVar[str] = "identity"


class ReLU6(_Activation):
    """nn.ReLU6: min(max(0, x), 6) (MobileNet)."""

    type: Literal["relu6"] = "relu6"
    torch_class: ClassVar[str] = "ReLU6"
    prefix: ClassVar[str] = "relu6"
    inplace: Bool = False


class PReLU(_Activation):
    """nn.PReLU: a leaky ReLU with a learned slope (one, or one per channel)."""

    type: Literal["prelu"] = "prelu"
    torch_class: ClassVar[str] = "PReLU"
    primary: ClassVar[str | None] = "num_parameters"
    prefix: ClassVar[str] = "prelu"
    num_parameters: PosInt = 1
    init: Float = 0.25

    def output_shape(self, shape: Shape) -> Shape:
        if self.num_parameters not in (1, shape[0]):
            raise ShapeProblem(
                f"num_parameters must be 1 or the {shape[0]} channels{{origin}}, got "
                f"{self.num_parameters}",
                "num_parameters",
            )
        return shape

    def count_params(self, shape: Shape) -> int:
        return self.num_parameters


class Hardswish(_Activation):
    """nn.Hardswish (MobileNetV3)."""

    type: Literal["hardswish"] = "hardswish"
    torch_class: ClassVar[str] = "Hardswish"
    prefix: ClassVar[str] = "hardswish"
    inplace: Bool = False


class Hardsigmoid(_Activation):
    """nn.Hardsigmoid (MobileNetV3's gates)."""

    type: Literal["hardsigmoid"] = "hardsigmoid"
    torch_class: ClassVar[str] = "Hardsigmoid"
    prefix: ClassVar[str] = "hardsigmoid"
    inplace: Bool = False


class Hardtanh(_Activation):
    """nn.Hardtanh: x clipped to [min_val, max_val]."""

    type: Literal["hardtanh"] = "hardtanh"
    torch_class: ClassVar[str] = "Hardtanh"
    prefix: ClassVar[str] = "hardtanh"
    min_val: Float = -1.0
    max_val: Float = 1.0
    inplace: Bool = False

    def output_shape(self, shape: Shape) -> Shape:
        if self.max_val <= self.min_val:
            raise ShapeProblem(
                f"max_val ({self.max_val:g}) must be above min_val ({self.min_val:g})",
                "max_val",
            )
        return shape


class Mish(_Activation):
    """nn.Mish."""

    type: Literal["mish"] = "mish"
    torch_class: ClassVar[str] = "Mish"
    prefix: ClassVar[str] = "mish"
    inplace: Bool = False


class Softplus(_Activation):
    """nn.Softplus: log(1 + exp(beta x)) / beta."""

    type: Literal["softplus"] = "softplus"
    torch_class: ClassVar[str] = "Softplus"
    primary: ClassVar[str | None] = "beta"
    prefix: ClassVar[str] = "softplus"
    beta: Float = 1.0
    threshold: Float = 20.0


class SELU(_Activation):
    """nn.SELU (self-normalizing nets)."""

    type: Literal["selu"] = "selu"
    torch_class: ClassVar[str] = "SELU"
    prefix: ClassVar[str] = "selu"
    inplace: Bool = False


CELU_MIN_ALPHA = 3e-39  # 1 / float32's largest value (3.4e38)


class CELU(_Activation):
    """nn.CELU."""

    type: Literal["celu"] = "celu"
    torch_class: ClassVar[str] = "CELU"
    primary: ClassVar[str | None] = "alpha"
    prefix: ClassVar[str] = "celu"
    alpha: Float = 1.0
    inplace: Bool = False

    def output_shape(self, shape: Shape) -> Shape:
        # CELU is max(0,x) + min(0, alpha*(exp(x/alpha)-1)); torch computes 1/alpha in float32
        if abs(self.alpha) < CELU_MIN_ALPHA:
            raise ShapeProblem(
                f"alpha {self.alpha:g} is too close to 0: CELU divides by it, and 1/alpha "
                f"overflows float32 below {CELU_MIN_ALPHA:g}",
                "alpha",
            )
        return shape
