"""Layers of sequences: embeddings, recurrent and attention layers, positions and class tokens.

A sequence sample is `[L, E]` (recurrent and attention layers always run batch_first).
"""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from .base import (
    Bool,
    Float,
    LayerSpec,
    NonNegInt,
    PosInt,
    PositiveFloat,
    Probability,
    Shape,
    ShapeProblem,
)

Eps = PositiveFloat


class Embedding(LayerSpec):
    """nn.Embedding: int64 ids of any shape -> that shape + [embedding_dim]."""

    group: ClassVar[str] = "embeddings"

    type: Literal["embedding"] = "embedding"
    torch_class: ClassVar[str] = "Embedding"
    prefix: ClassVar[str] = "embedding"
    takes_ids: ClassVar[bool] = True

    num_embeddings: PosInt
    embedding_dim: PosInt
    padding_idx: Annotated[int, Field(strict=True)] | None = None
    max_norm: PositiveFloat | None = None
    norm_type: Float = 2.0
    scale_grad_by_freq: Bool = False

    def output_shape(self, shape: Shape) -> Shape:
        if (
            self.padding_idx is not None
            and not -self.num_embeddings <= self.padding_idx < self.num_embeddings
        ):
            raise ShapeProblem(
                f"padding_idx {self.padding_idx} must be an id of the table: from "
                f"{-self.num_embeddings} to {self.num_embeddings - 1}",
                "padding_idx",
            )
        return (*shape, self.embedding_dim)

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (*exprs, args.get("embedding_dim"))

    def count_params(self, shape: Shape) -> int:
        return self.num_embeddings * self.embedding_dim


_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class _Recurrent(LayerSpec):
    group: ClassVar[str] = "recurrent"
    torchsummary_sees: ClassVar[bool] = False
    primary: ClassVar[str | None] = "hidden_size"
    inferred: ClassVar[tuple[str, ...]] = ("input_size",)
    inferred_dims: ClassVar[dict[str, int]] = {"input_size": -1}
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(L, E)"
    fixed: ClassVar[dict[str, Any]] = {"batch_first": True}
    forward_args: ClassVar[tuple[str, ...]] = ("output",)

    input_size: PosInt | None = None
    hidden_size: PosInt
    num_layers: PosInt = 1
    bias: Bool = True
    dropout: Probability = 0.0
    bidirectional: Bool = False
    output: Literal["sequence", "final"] = "sequence"

    def _width(self) -> int:
        """Return the size of one direction's output (and hidden state)."""
        return self.hidden_size

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"input_size": shape[-1]}

    def output_shape(self, shape: Shape) -> Shape:
        if self.dropout > 0 and self.num_layers == 1:
            raise ShapeProblem(
                "dropout acts between stacked layers, so with num_layers 1 it does nothing "
                "(torch warns); set num_layers above 1 or remove dropout",
                "dropout",
            )
        size = self._width() * (2 if self.bidirectional else 1)
        return (shape[0], size) if self.output == "sequence" else (size,)

    def count_params(self, shape: Shape) -> int:
        gates = _GATES[self.type_name]
        hidden, out = self.hidden_size, self._width()
        directions = 2 if self.bidirectional else 1
        total = 0
        for layer in range(self.num_layers):
            inputs = shape[-1] if layer == 0 else out * directions
            one = gates * hidden * (inputs + out) + (
                2 * gates * hidden if self.bias else 0
            )
            if out != hidden:
                one += out * hidden  # an LSTM's projection weight_hr
            total += one * directions
        return total

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        if kwargs.get("output", "sequence") == "sequence":
            return [f"{target}, _ = {call}({source})"]
        state = "(h, _)" if self.type_name == "lstm" else "h"
        final = (
            "torch.cat([h[-2], h[-1]], dim=1)"
            if kwargs.get("bidirectional")
            else "h[-1]"
        )
        return [f"_, {state} = {call}({source})", f"{target} = {final}"]


class LSTM(_Recurrent):
    """nn.LSTM (batch_first) on (L, E); `output: final` gives the last layer's final hidden state."""

    type: Literal["lstm"] = "lstm"
    torch_class: ClassVar[str] = "LSTM"
    prefix: ClassVar[str] = "lstm"
    build_class: ClassVar[str | None] = "LSTM"

    proj_size: NonNegInt = 0

    def _width(self) -> int:
        if self.proj_size >= self.hidden_size:
            raise ShapeProblem(
                f"proj_size {self.proj_size} must be smaller than hidden_size {self.hidden_size}",
                "proj_size",
            )
        return self.proj_size or self.hidden_size


class GRU(_Recurrent):
    """nn.GRU (batch_first) on (L, E); `output: final` gives the last layer's final hidden state."""

    type: Literal["gru"] = "gru"
    torch_class: ClassVar[str] = "GRU"
    prefix: ClassVar[str] = "gru"
    build_class: ClassVar[str | None] = "GRU"


class RNN(_Recurrent):
    """nn.RNN (batch_first) on (L, E); `output: final` gives the last layer's final hidden state."""

    type: Literal["rnn"] = "rnn"
    torch_class: ClassVar[str] = "RNN"
    prefix: ClassVar[str] = "rnn"
    build_class: ClassVar[str | None] = "RNN"

    nonlinearity: Literal["tanh", "relu"] = "tanh"


def _heads_divide(embed: int, heads: int, arg: str) -> None:
    if embed % heads:
        raise ShapeProblem(
            f"{arg} {heads} must divide the embedding size {embed} (each head gets "
            f"{embed}/{heads} of it)",
            arg,
        )


class MultiheadAttention(LayerSpec):
    """nn.MultiheadAttention (batch_first) as self-attention on (L, E)."""

    group: ClassVar[str] = "attention"

    type: Literal["multiheadattention"] = "multiheadattention"
    torch_class: ClassVar[str] = "MultiheadAttention"
    torchsummary_sees: ClassVar[bool] = False
    primary: ClassVar[str | None] = "num_heads"
    prefix: ClassVar[str] = "attn"
    inferred: ClassVar[tuple[str, ...]] = ("embed_dim",)
    inferred_dims: ClassVar[dict[str, int]] = {"embed_dim": -1}
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(L, E)"
    fixed: ClassVar[dict[str, Any]] = {"batch_first": True}
    build_class: ClassVar[str | None] = "SelfAttention"

    embed_dim: PosInt | None = None
    num_heads: PosInt
    dropout: Probability = 0.0
    bias: Bool = True
    add_bias_kv: Bool = False
    add_zero_attn: Bool = False

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"embed_dim": shape[-1]}

    def output_shape(self, shape: Shape) -> Shape:
        _heads_divide(shape[-1], self.num_heads, "num_heads")
        return shape

    def count_params(self, shape: Shape) -> int:
        e = shape[-1]
        total = 4 * e * e + (
            4 * e if self.bias else 0
        )  # in_proj (q, k, v) and out_proj
        return total + (2 * e if self.add_bias_kv else 0)

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        return [
            f"{target}, _ = {call}({source}, {source}, {source}, need_weights=False)"
        ]


class TransformerEncoderLayer(LayerSpec):
    """nn.TransformerEncoderLayer (batch_first) on (L, E)."""

    group: ClassVar[str] = "attention"

    type: Literal["transformerencoderlayer"] = "transformerencoderlayer"
    torch_class: ClassVar[str] = "TransformerEncoderLayer"
    torchsummary_sees: ClassVar[bool] = False
    primary: ClassVar[str | None] = "nhead"
    prefix: ClassVar[str] = "encoder"
    inferred: ClassVar[tuple[str, ...]] = ("d_model",)
    inferred_dims: ClassVar[dict[str, int]] = {"d_model": -1}
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(L, E)"
    fixed: ClassVar[dict[str, Any]] = {"batch_first": True}

    d_model: PosInt | None = None
    nhead: PosInt
    dim_feedforward: PosInt = 2048
    dropout: Probability = 0.1
    # torch's default is the function relu; a spec names it
    activation: Literal["relu", "gelu"] = "relu"
    layer_norm_eps: Eps = 1e-5
    norm_first: Bool = False
    bias: Bool = True
    always_written: ClassVar[tuple[str, ...]] = ()

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"d_model": shape[-1]}

    def output_shape(self, shape: Shape) -> Shape:
        _heads_divide(shape[-1], self.nhead, "nhead")
        return shape

    def count_params(self, shape: Shape) -> int:
        e, f = shape[-1], self.dim_feedforward
        attention = 4 * e * e + (4 * e if self.bias else 0)
        feedforward = 2 * e * f + ((f + e) if self.bias else 0)
        norms = 2 * (2 * e if self.bias else e)
        return attention + feedforward + norms


class Positional(LayerSpec):
    """A learned position table (nn.Embedding) added to (L, E): its first L rows."""

    group: ClassVar[str] = "embeddings"

    type: Literal["positional"] = "positional"
    torch_class: ClassVar[str] = "Embedding"
    primary: ClassVar[str | None] = "num_embeddings"
    prefix: ClassVar[str] = "pos"
    inferred: ClassVar[tuple[str, ...]] = ("num_embeddings", "embedding_dim")
    inferred_dims: ClassVar[dict[str, int]] = {"num_embeddings": 0, "embedding_dim": -1}
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(L, E)"
    build_class: ClassVar[str | None] = "Positional"

    num_embeddings: PosInt | None = None
    embedding_dim: PosInt | None = None

    def infer(self, shape: Shape) -> dict[str, Any]:
        if self.num_embeddings is not None and self.num_embeddings < shape[0]:
            raise ShapeProblem(
                f"the table has {self.num_embeddings} positions, but the sequence reaching it "
                f"has {shape[0]}{{origin}}; write at least {shape[0]} or leave it out",
                "num_embeddings",
            )
        return {
            "num_embeddings": self.num_embeddings or shape[0],
            "embedding_dim": shape[-1],
        }

    def count_params(self, shape: Shape) -> int:
        return (self.num_embeddings or shape[0]) * shape[-1]

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        return [f"{target} = {source} + {call}.weight[: {source}.shape[1]]"]


class ClsToken(LayerSpec):
    """A learned [E] vector (nn.Embedding of one row) prepended to (L, E), giving (L+1, E)."""

    group: ClassVar[str] = "embeddings"

    type: Literal["clstoken"] = "clstoken"
    torch_class: ClassVar[str] = "Embedding"
    prefix: ClassVar[str] = "cls"
    inferred: ClassVar[tuple[str, ...]] = ("embedding_dim",)
    inferred_dims: ClassVar[dict[str, int]] = {"embedding_dim": -1}
    ranks: ClassVar[tuple[int, ...]] = (2,)
    rank_hint: ClassVar[str] = "(L, E)"
    fixed: ClassVar[dict[str, Any]] = {"num_embeddings": 1}
    build_class: ClassVar[str | None] = "ClsToken"

    embedding_dim: PosInt | None = None

    def infer(self, shape: Shape) -> dict[str, Any]:
        return {"embedding_dim": shape[-1]}

    def constructor_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        return {
            "num_embeddings": 1,
            "embedding_dim": kwargs["embedding_dim"],
        }  # torch's order

    def output_shape(self, shape: Shape) -> Shape:
        return (shape[0] + 1, shape[-1])

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        return (None, exprs[-1])

    def count_params(self, shape: Shape) -> int:
        return shape[-1]

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        return [
            f"{target} = torch.cat([{call}.weight.expand({source}.shape[0], -1, -1), {source}], dim=1)"
        ]
