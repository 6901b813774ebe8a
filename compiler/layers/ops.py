"""Tensor operations: transpose, permute, mean, amax and select.

They have no torch.nn class: generated code writes them inline in `forward` (`x = x.transpose(1,
2)`), the built form runs small parameter-free modules of compiler/modules.py. Dimensions count as
torch counts them: 0 is the batch (refused: these ops never mix samples), 1 the first dimension of
a sample, negative values from the end.
"""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import Bool, LayerSpec, Shape, ShapeProblem

Dim = Annotated[int, Field(strict=True)]


def _dim(dim: int, shape: Shape, arg: str) -> int:
    """Return `dim` of a batched input counted from 0, refusing the batch and out-of-range."""
    rank = len(shape) + 1
    at = dim + rank if dim < 0 else dim
    if not 0 <= at < rank:
        raise ShapeProblem(
            f"dimension {dim} is out of range for a batched input of rank {rank} "
            f"(the sample is {list(shape)}{{origin}})",
            arg,
        )
    if at == 0:
        raise ShapeProblem(
            f"dimension {dim} is the batch; a sample's dimensions start at 1", arg
        )
    return at


class _TensorOp(LayerSpec):
    group: ClassVar[str] = "tensor ops"
    torch_class: ClassVar[str] = ""
    tensor_op: ClassVar[bool] = True


class Transpose(_TensorOp):
    """x.transpose(dim0, dim1): swap two dimensions (`transpose: [1, 2]` turns [E, L] into [L, E])."""

    type: Literal["transpose"] = "transpose"
    primary: ClassVar[str | None] = "dims"
    prefix: ClassVar[str] = "transpose"
    build_class: ClassVar[str | None] = "Transpose"

    dims: Annotated[list[Dim], Field(min_length=2, max_length=2)]

    def output_shape(self, shape: Shape) -> Shape:
        a, b = (_dim(d, shape, "dims") for d in self.dims)
        batched = [1, *shape]
        batched[a], batched[b] = batched[b], batched[a]
        return tuple(batched[1:])

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        a, b = kwargs["dims"]
        return [f"{target} = {source}.transpose({a}, {b})"]


class Permute(_TensorOp):
    """x.permute(*dims): reorder every dimension; the order keeps the batch first (`[0, 2, 1]`)."""

    type: Literal["permute"] = "permute"
    primary: ClassVar[str | None] = "dims"
    prefix: ClassVar[str] = "permute"
    build_class: ClassVar[str | None] = "Permute"

    dims: Annotated[list[Dim], Field(min_length=2, max_length=5)]

    def output_shape(self, shape: Shape) -> Shape:
        rank = len(shape) + 1
        if len(self.dims) != rank:
            raise ShapeProblem(
                f"lists {len(self.dims)} dimensions, but a batched input of the sample "
                f"{list(shape)}{{origin}} has {rank}; list each once, the batch (0) first",
                "dims",
            )
        order = [d + rank if d < 0 else d for d in self.dims]
        if sorted(order) != list(range(rank)):
            raise ShapeProblem(
                f"must list each of 0 to {rank - 1} once, got {self.dims}", "dims"
            )
        if order[0] != 0:
            raise ShapeProblem("the batch (0) must stay first", "dims")
        batched = [1, *shape]
        return tuple(batched[d] for d in order[1:])

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        return [
            f"{target} = {source}.permute({', '.join(str(d) for d in kwargs['dims'])})"
        ]


class _Reduction(_TensorOp):
    primary: ClassVar[str | None] = "dim"
    method: ClassVar[str]

    dim: Dim | Annotated[list[Dim], Field(min_length=1, max_length=4)]
    keepdim: Bool = False

    def output_shape(self, shape: Shape) -> Shape:
        dims = self.dim if isinstance(self.dim, list) else [self.dim]
        at = [_dim(d, shape, "dim") for d in dims]
        if len(set(at)) != len(at):
            raise ShapeProblem(f"names a dimension twice: {self.dim}", "dim")
        batched = [1, *shape]
        if self.keepdim:
            out = [1 if i in at else n for i, n in enumerate(batched)]
        else:
            out = [n for i, n in enumerate(batched) if i not in at]
        if len(out) == 1:
            raise ShapeProblem(
                "reduces every dimension of the sample; keep at least one", "dim"
            )
        return tuple(out[1:])

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (None,) * len(out)

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        dim = kwargs["dim"]
        text = f"dim={dim if isinstance(dim, int) else tuple(dim)}"
        if kwargs.get("keepdim"):
            text += ", keepdim=True"
        return [f"{target} = {source}.{self.method}({text})"]


class Mean(_Reduction):
    """x.mean(dim): the average over one dimension or a list (pool a sequence: `mean: 1`)."""

    type: Literal["mean"] = "mean"
    prefix: ClassVar[str] = "mean"
    method: ClassVar[str] = "mean"
    build_class: ClassVar[str | None] = "Mean"


class Amax(_Reduction):
    """x.amax(dim): the maximum over one dimension or a list."""

    type: Literal["amax"] = "amax"
    prefix: ClassVar[str] = "amax"
    method: ClassVar[str] = "amax"
    build_class: ClassVar[str | None] = "Amax"


class Select(_TensorOp):
    """x.select(dim, index): one position along a dimension (`{dim: 1, index: -1}`: the last step)."""

    type: Literal["select"] = "select"
    prefix: ClassVar[str] = "select"
    build_class: ClassVar[str | None] = "Select"

    dim: Dim
    index: Annotated[int, Field(strict=True)]

    def output_shape(self, shape: Shape) -> Shape:
        at = _dim(self.dim, shape, "dim")
        size = shape[at - 1]
        if not -size <= self.index < size:
            raise ShapeProblem(
                f"index {self.index} is out of range for size {size} of dimension {self.dim}"
                "{origin}",
                "index",
            )
        if len(shape) == 1:
            raise ShapeProblem(
                "selects from the only dimension of the sample; nothing would be left",
                "dim",
            )
        return tuple(n for i, n in enumerate(shape) if i != at - 1)

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (None,) * len(out)

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        dim, index = kwargs["dim"], kwargs["index"]
        if dim == 1:
            return [f"{target} = {source}[:, {index}]"]
        return [f"{target} = {source}.select({dim}, {index})"]
