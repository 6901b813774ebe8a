"""Layers that change a sample's size without weights: upsample, unflatten, zero padding, pixel shuffle."""

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import (
    Bool,
    LayerSpec,
    NonNegSize,
    PosInt,
    PositiveFloat,
    Shape,
    ShapeProblem,
    Size,
    expand,
)

Scale = PositiveFloat

# the sample ranks each mode works on: (C, L), (C, H, W), (C, D, H, W)
_MODE_RANKS = {
    "nearest": (2, 3, 4),
    "linear": (2,),
    "bilinear": (3,),
    "bicubic": (3,),
    "trilinear": (4,),
}


class Upsample(LayerSpec):
    """nn.Upsample: scale (C, L), (C, H, W) or (C, D, H, W) by `scale_factor`, or to `size`."""

    group: ClassVar[str] = "reshaping"
    feature_map: ClassVar[bool] = True

    type: Literal["upsample"] = "upsample"
    torch_class: ClassVar[str] = "Upsample"
    primary: ClassVar[str | None] = "scale_factor"
    prefix: ClassVar[str] = "up"
    ranks: ClassVar[tuple[int, ...]] = (2, 3, 4)
    rank_hint: ClassVar[str] = "(C, L), (C, H, W) or (C, D, H, W)"

    size: Size | None = None
    scale_factor: (
        Scale | Annotated[list[Scale], Field(min_length=1, max_length=3)] | None
    ) = None
    mode: Literal["nearest", "linear", "bilinear", "bicubic", "trilinear"] = "nearest"
    align_corners: Bool | None = None

    def output_shape(self, shape: Shape) -> Shape:
        n = len(shape) - 1
        if (self.size is None) == (self.scale_factor is None):
            raise ShapeProblem(
                "give exactly one of scale_factor and size", "scale_factor"
            )
        if len(shape) not in _MODE_RANKS[self.mode]:
            fits = [m for m, ranks in _MODE_RANKS.items() if len(shape) in ranks]
            raise ShapeProblem(
                f"mode '{self.mode}' does not take the sample {list(shape)}{{origin}}; for it use "
                + " or ".join(f"'{m}'" for m in fits),
                "mode",
            )
        if self.align_corners is not None and self.mode == "nearest":
            raise ShapeProblem(
                "align_corners is for the interpolating modes, not 'nearest'",
                "align_corners",
            )
        if self.size is not None:
            return (shape[0], *expand(self.size, n, "size"))
        factors = (
            self.scale_factor
            if isinstance(self.scale_factor, list)
            else [self.scale_factor] * n
        )
        if len(factors) != n:
            raise ShapeProblem(
                f"needs 1 value or a list of {n}, got a list of {len(factors)}",
                "scale_factor",
            )
        return (shape[0], *(int(size * f) for size, f in zip(shape[1:], factors)))

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (exprs[0], *(None,) * (len(out) - 1))


class Unflatten(LayerSpec):
    """nn.Unflatten: split one dimension (`unflatten: [128, 7, 7]` turns [6272] into [128, 7, 7])."""

    group: ClassVar[str] = "reshaping"

    type: Literal["unflatten"] = "unflatten"
    torch_class: ClassVar[str] = "Unflatten"
    primary: ClassVar[str | None] = "unflattened_size"
    prefix: ClassVar[str] = "unflatten"

    # torch requires dim; 1 (a sample's first dimension) is what a spec means by default
    dim: Annotated[int, Field(strict=True)] = 1
    unflattened_size: Annotated[list[PosInt], Field(min_length=1, max_length=4)]
    always_written: ClassVar[tuple[str, ...]] = ("dim",)

    def output_shape(self, shape: Shape) -> Shape:
        rank = len(shape) + 1
        at = self.dim + rank if self.dim < 0 else self.dim
        if not 0 < at < rank:
            raise ShapeProblem(
                f"dim {self.dim} is not a dimension of the sample {list(shape)}", "dim"
            )
        size = shape[at - 1]
        if math.prod(self.unflattened_size) != size:
            raise ShapeProblem(
                f"{' x '.join(map(str, self.unflattened_size))} = {math.prod(self.unflattened_size)} "
                f"does not equal the size {size} of dimension {self.dim}{{origin}}",
                "unflattened_size",
            )
        return (*shape[: at - 1], *self.unflattened_size, *shape[at:])


class _ZeroPad(LayerSpec):
    group: ClassVar[str] = "reshaping"
    feature_map: ClassVar[bool] = True
    primary: ClassVar[str | None] = "padding"
    prefix: ClassVar[str] = "pad"
    sides: ClassVar[int]

    padding: NonNegSize

    def output_shape(self, shape: Shape) -> Shape:
        if (
            isinstance(self.padding, list)
            and len(self.padding) % 2 == 0
            and len(self.padding) <= self.sides
        ):
            pads = tuple(
                self.padding
            )  # [left, right] pads only the last dimension, as in torch
        elif isinstance(self.padding, list):
            raise ShapeProblem(
                f"needs 1 value or a list of {self.sides}"
                + (" or 2" if self.sides == 4 else "")
                + f", got a list of {len(self.padding)}",
                "padding",
            )
        else:
            pads = (self.padding,) * self.sides
        # torch's order: (left, right) of the last dimension, then (top, bottom) of the one before
        out = list(shape)
        for i in range(len(pads) // 2):
            out[-1 - i] += pads[2 * i] + pads[2 * i + 1]
        return tuple(out)

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (exprs[0], *(None,) * (len(out) - 1))


class ZeroPad1d(_ZeroPad):
    """nn.ZeroPad1d: zeros at both ends of (C, L); `padding` is one size or [left, right]."""

    type: Literal["zeropad1d"] = "zeropad1d"
    torch_class: ClassVar[str] = "ZeroPad1d"
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(C, L)"
    sides: ClassVar[int] = 2


class ZeroPad2d(_ZeroPad):
    """nn.ZeroPad2d: zeros around (C, H, W); `padding` is one size or [left, right, top, bottom]."""

    type: Literal["zeropad2d"] = "zeropad2d"
    torch_class: ClassVar[str] = "ZeroPad2d"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"
    sides: ClassVar[int] = 4


class PixelShuffle(LayerSpec):
    """nn.PixelShuffle: [C*r*r, H, W] -> [C, H*r, W*r]."""

    group: ClassVar[str] = "reshaping"
    feature_map: ClassVar[bool] = True

    type: Literal["pixelshuffle"] = "pixelshuffle"
    torch_class: ClassVar[str] = "PixelShuffle"
    primary: ClassVar[str | None] = "upscale_factor"
    prefix: ClassVar[str] = "shuffle"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    rank_hint: ClassVar[str] = "(C, H, W)"

    upscale_factor: PosInt

    def output_shape(self, shape: Shape) -> Shape:
        r = self.upscale_factor
        if shape[0] % (r * r):
            raise ShapeProblem(
                f"the {shape[0]} channels{{origin}} must be a multiple of upscale_factor^2 = {r * r}",
                "upscale_factor",
            )
        return (shape[0] // (r * r), shape[1] * r, shape[2] * r)
