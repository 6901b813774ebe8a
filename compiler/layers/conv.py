"""Convolution and pooling layers: conv1d/2d, max/avg pooling, adaptive average pooling."""

import math
from typing import Any, ClassVar, Literal

from .base import (
    Bool,
    LayerSpec,
    NonNegSize,
    Padding,
    PosInt,
    Shape,
    ShapeProblem,
    Size,
    expand,
)

_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def _spatial_output(
    size: int,
    kernel: int,
    stride: int,
    pad: int,
    dilation: int,
    ceil_mode: bool,
    dim: str,
) -> int:
    """Return the output length of one spatial dimension, exactly as torch computes it."""
    effective = dilation * (kernel - 1) + 1
    span = size + 2 * pad - effective
    # floor division rounds toward -inf like torch's div_rtn; in ceil mode a window may overhang
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # torch: the last window must start inside the input or left padding
    if out < 1:
        dilated = f" (dilated: {effective})" if dilation > 1 else ""
        raise ShapeProblem(
            f"kernel_size {kernel}{dilated} is larger than the padded input in {dim}: "
            f"{size} + 2*{pad} = {size + 2 * pad}",
            "kernel_size",
        )
    return out


# How far torch.nn.functional.pad can reach into an input of a given size, per padding mode.
_PAD_LIMITS = {
    "reflect": (lambda pad, size: pad < size, "less than"),
    "circular": (lambda pad, size: pad <= size, "at most"),
    "replicate": (lambda pad, size: True, ""),
}


class _Convolution(LayerSpec):
    """What a convolution and a transposed one share: in_channels from the input, groups, and
    out_channels as the output's channels."""

    group: ClassVar[str] = "convolution"
    feature_map: ClassVar[bool] = True
    dims: ClassVar[int]
    primary: ClassVar[str | None] = "out_channels"
    inferred: ClassVar[tuple[str, ...]] = ("in_channels",)
    inferred_dims: ClassVar[dict[str, int]] = {"in_channels": 0}

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"in_channels": shape[0]}

    def _check_groups(self, shape: Shape) -> None:
        if shape[0] % self.groups or self.out_channels % self.groups:
            raise ShapeProblem(
                f"groups={self.groups} must divide in_channels ({shape[0]}) and out_channels "
                f"({self.out_channels})",
                "groups",
            )

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (args.get("out_channels"), *(None,) * (len(out) - 1))


class _ConvNd(_Convolution):
    prefix: ClassVar[str] = "conv"

    in_channels: PosInt | None = None
    out_channels: PosInt
    kernel_size: Size
    stride: Size = 1
    padding: Padding = 0
    dilation: Size = 1
    groups: PosInt = 1
    bias: Bool = True
    padding_mode: Literal["zeros", "reflect", "replicate", "circular"] = "zeros"

    def output_shape(self, shape: Shape) -> Shape:
        n = self.dims
        k = expand(self.kernel_size, n, "kernel_size")
        s = expand(self.stride, n, "stride")
        d = expand(self.dilation, n, "dilation")
        self._check_groups(shape)
        if self.padding == "same":
            if any(v != 1 for v in s):
                raise ShapeProblem(
                    "padding 'same' needs stride 1 (torch refuses it otherwise)",
                    "padding",
                )
            # torch pads total = dilation*(kernel-1), the smaller half on the left
            sides = [
                (dd * (kk - 1) // 2, dd * (kk - 1) - dd * (kk - 1) // 2)
                for kk, dd in zip(k, d)
            ]
            self._check_padding_mode(shape, sides)
            return (self.out_channels, *shape[1:])
        p = (0,) * n if self.padding == "valid" else expand(self.padding, n, "padding")
        self._check_padding_mode(shape, [(pp, pp) for pp in p])
        spatial = tuple(
            _spatial_output(*args, False, dim)
            for *args, dim in zip(shape[1:], k, s, p, d, _DIM_NAMES[n])
        )
        return (self.out_channels, *spatial)

    def _check_padding_mode(self, shape: Shape, sides: list[tuple[int, int]]) -> None:
        """Raise ShapeProblem when padding_mode cannot pad the input by `sides` (left, right)."""
        if self.padding_mode == "zeros":
            return
        fits, relation = _PAD_LIMITS[self.padding_mode]
        for size, pads, dim in zip(shape[1:], sides, _DIM_NAMES[self.dims]):
            pad = max(pads)
            if not fits(pad, size):
                raise ShapeProblem(
                    f"padding_mode '{self.padding_mode}' needs padding {relation} the input size, "
                    f"but pads {pad} on an input of {size} in {dim}; use less padding or "
                    "padding_mode 'zeros'",
                    "padding",
                )

    def count_params(self, shape: Shape) -> int:
        k = expand(self.kernel_size, self.dims, "kernel_size")
        weights = self.out_channels * (shape[0] // self.groups) * math.prod(k)
        return weights + (self.out_channels if self.bias else 0)


class Conv1d(_ConvNd):
    """nn.Conv1d on (C, L) samples."""

    type: Literal["conv1d"] = "conv1d"
    torch_class: ClassVar[str] = "Conv1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class Conv2d(_ConvNd):
    """nn.Conv2d on (C, H, W) samples."""

    type: Literal["conv2d"] = "conv2d"
    torch_class: ClassVar[str] = "Conv2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class Conv3d(_ConvNd):
    """nn.Conv3d on (C, D, H, W) samples."""

    type: Literal["conv3d"] = "conv3d"
    torch_class: ClassVar[str] = "Conv3d"
    dims: ClassVar[int] = 3
    ranks: ClassVar[tuple[int, ...]] = (4,)
    rank_hint: ClassVar[str] = "(C, D, H, W)"


class _ConvTransposeNd(_Convolution):
    prefix: ClassVar[str] = "deconv"

    in_channels: PosInt | None = None
    out_channels: PosInt
    kernel_size: Size
    stride: Size = 1
    padding: NonNegSize = 0
    output_padding: NonNegSize = 0
    groups: PosInt = 1
    bias: Bool = True
    dilation: Size = 1
    # torch accepts only zeros for transposed convolutions
    padding_mode: Literal["zeros"] = "zeros"

    def output_shape(self, shape: Shape) -> Shape:
        n = self.dims
        k = expand(self.kernel_size, n, "kernel_size")
        s = expand(self.stride, n, "stride")
        p = expand(self.padding, n, "padding")
        o = expand(self.output_padding, n, "output_padding")
        d = expand(self.dilation, n, "dilation")
        self._check_groups(shape)
        for oo, ss, dd in zip(o, s, d):
            if oo >= ss and oo >= dd:
                raise ShapeProblem(
                    f"output_padding {oo} must be smaller than the stride ({ss}) or the dilation "
                    f"({dd}) (torch's rule)",
                    "output_padding",
                )
        spatial = tuple(
            (size - 1) * ss - 2 * pp + dd * (kk - 1) + oo + 1
            for size, kk, ss, pp, oo, dd in zip(shape[1:], k, s, p, o, d)
        )
        return (self.out_channels, *spatial)

    def count_params(self, shape: Shape) -> int:
        k = expand(self.kernel_size, self.dims, "kernel_size")
        weights = shape[0] * (self.out_channels // self.groups) * math.prod(k)
        return weights + (self.out_channels if self.bias else 0)


class ConvTranspose1d(_ConvTransposeNd):
    """nn.ConvTranspose1d on (C, L) samples."""

    type: Literal["convtranspose1d"] = "convtranspose1d"
    torch_class: ClassVar[str] = "ConvTranspose1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class ConvTranspose2d(_ConvTransposeNd):
    """nn.ConvTranspose2d on (C, H, W) samples."""

    type: Literal["convtranspose2d"] = "convtranspose2d"
    torch_class: ClassVar[str] = "ConvTranspose2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


def _channels_kept(exprs: tuple, out: Shape) -> tuple:
    """Return size expressions of a layer that keeps the channels and changes the rest."""
    return (exprs[0], *(None,) * (len(out) - 1))


class _PoolNd(LayerSpec):
    group: ClassVar[str] = "pooling"
    feature_map: ClassVar[bool] = True
    dims: ClassVar[int]
    primary: ClassVar[str | None] = "kernel_size"
    prefix: ClassVar[str] = "pool"

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return _channels_kept(exprs, out)

    def _pool_shape(self, shape: Shape, dilation: Size, ceil_mode: bool) -> Shape:
        n = self.dims
        k = expand(self.kernel_size, n, "kernel_size")
        s = k if self.stride is None else expand(self.stride, n, "stride")
        p = expand(self.padding, n, "padding")
        d = expand(dilation, n, "dilation")
        for kk, pp in zip(k, p):
            if pp > kk // 2:
                raise ShapeProblem(
                    f"padding {pp} must be at most half of kernel_size {kk} (torch's rule)",
                    "padding",
                )
        spatial = tuple(
            _spatial_output(*args, ceil_mode, dim)
            for *args, dim in zip(shape[1:], k, s, p, d, _DIM_NAMES[n])
        )
        return (shape[0], *spatial)


class _MaxPoolNd(_PoolNd):
    kernel_size: Size
    stride: Size | None = None
    padding: NonNegSize = 0
    dilation: Size = 1
    ceil_mode: Bool = False

    def output_shape(self, shape: Shape) -> Shape:
        return self._pool_shape(shape, self.dilation, self.ceil_mode)


class _AvgPoolNd(_PoolNd):
    kernel_size: Size
    stride: Size | None = None
    padding: NonNegSize = 0
    ceil_mode: Bool = False
    count_include_pad: Bool = True

    def output_shape(self, shape: Shape) -> Shape:
        return self._pool_shape(shape, 1, self.ceil_mode)


class MaxPool1d(_MaxPoolNd):
    """nn.MaxPool1d on (C, L) samples."""

    type: Literal["maxpool1d"] = "maxpool1d"
    torch_class: ClassVar[str] = "MaxPool1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class MaxPool2d(_MaxPoolNd):
    """nn.MaxPool2d on (C, H, W) samples."""

    type: Literal["maxpool2d"] = "maxpool2d"
    torch_class: ClassVar[str] = "MaxPool2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class AvgPool1d(_AvgPoolNd):
    """nn.AvgPool1d on (C, L) samples."""

    type: Literal["avgpool1d"] = "avgpool1d"
    torch_class: ClassVar[str] = "AvgPool1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class AvgPool2d(_AvgPoolNd):
    """nn.AvgPool2d on (C, H, W) samples."""

    type: Literal["avgpool2d"] = "avgpool2d"
    torch_class: ClassVar[str] = "AvgPool2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"
    divisor_override: PosInt | None = None


class MaxPool3d(_MaxPoolNd):
    """nn.MaxPool3d on (C, D, H, W) samples."""

    type: Literal["maxpool3d"] = "maxpool3d"
    torch_class: ClassVar[str] = "MaxPool3d"
    dims: ClassVar[int] = 3
    ranks: ClassVar[tuple[int, ...]] = (4,)
    rank_hint: ClassVar[str] = "(C, D, H, W)"


class AvgPool3d(_AvgPoolNd):
    """nn.AvgPool3d on (C, D, H, W) samples."""

    type: Literal["avgpool3d"] = "avgpool3d"
    torch_class: ClassVar[str] = "AvgPool3d"
    dims: ClassVar[int] = 3
    ranks: ClassVar[tuple[int, ...]] = (4,)
    rank_hint: ClassVar[str] = "(C, D, H, W)"
    divisor_override: PosInt | None = None

    def output_shape(self, shape: Shape) -> Shape:
        k = expand(self.kernel_size, 3, "kernel_size")
        for size, kk, dim in zip(shape[1:], k, _DIM_NAMES[3]):
            if size < kk:  # torch's 3-D average pool checks the input before padding
                raise ShapeProblem(
                    f"kernel_size {kk} is larger than the input in {dim} ({size}); avgpool3d "
                    "does not count padding here (torch's rule)",
                    "kernel_size",
                )
        return super().output_shape(shape)


class _AdaptiveAvgPoolNd(LayerSpec):
    group: ClassVar[str] = "pooling"
    feature_map: ClassVar[bool] = True
    dims: ClassVar[int]
    primary: ClassVar[str | None] = "output_size"
    prefix: ClassVar[str] = "pool"

    output_size: Size

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0], *expand(self.output_size, self.dims, "output_size"))

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return _channels_kept(exprs, out)


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """nn.AdaptiveAvgPool1d on (C, L) samples."""

    type: Literal["adaptiveavgpool1d"] = "adaptiveavgpool1d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """nn.AdaptiveAvgPool2d on (C, H, W) samples."""

    type: Literal["adaptiveavgpool2d"] = "adaptiveavgpool2d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """nn.AdaptiveAvgPool3d on (C, D, H, W) samples."""

    type: Literal["adaptiveavgpool3d"] = "adaptiveavgpool3d"
    torch_class: ClassVar[str] = "AdaptiveAvgPool3d"
    dims: ClassVar[int] = 3
    ranks: ClassVar[tuple[int, ...]] = (4,)
    rank_hint: ClassVar[str] = "(C, D, H, W)"


class AdaptiveMaxPool1d(_AdaptiveAvgPoolNd):
    """nn.AdaptiveMaxPool1d on (C, L) samples."""

    type: Literal["adaptivemaxpool1d"] = "adaptivemaxpool1d"
    torch_class: ClassVar[str] = "AdaptiveMaxPool1d"
    dims: ClassVar[int] = 1
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"


class AdaptiveMaxPool2d(_AdaptiveAvgPoolNd):
    """nn.AdaptiveMaxPool2d on (C, H, W) samples."""

    type: Literal["adaptivemaxpool2d"] = "adaptivemaxpool2d"
    torch_class: ClassVar[str] = "AdaptiveMaxPool2d"
    dims: ClassVar[int] = 2
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"
