"""The built form's modules for layers whose forward is not `x = layer(x)`.

Each is a subclass of the torch.nn class the generated code constructs (so the state_dict keys,
the initialization and the parameters are the same) whose forward does what the generated
forward's line does, or, for a tensor operation, a parameter-free module. Only compiler/build.py
imports this (it imports torch).
"""

from __future__ import annotations

import torch
from torch import nn


class _Recurrent:
    """Mixin of the recurrent layers: batch_first, and `output` sequence or final."""

    def _setup(self, kwargs: dict) -> dict:
        self.output = kwargs.pop("output", "sequence")
        return kwargs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, state = super().forward(x)  # type: ignore[misc]
        if self.output == "sequence":
            return out
        h = state[0] if isinstance(state, tuple) else state  # an LSTM's state is (h, c)
        if self.bidirectional:
            return torch.cat([h[-2], h[-1]], dim=1)
        return h[-1]

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, output={self.output!r}"  # type: ignore[misc]


class LSTM(_Recurrent, nn.LSTM):
    """nn.LSTM returning the output sequence or the final hidden state."""

    def __init__(self, **kwargs) -> None:
        nn.LSTM.__init__(self, **self._setup(kwargs))


class GRU(_Recurrent, nn.GRU):
    """nn.GRU returning the output sequence or the final hidden state."""

    def __init__(self, **kwargs) -> None:
        nn.GRU.__init__(self, **self._setup(kwargs))


class RNN(_Recurrent, nn.RNN):
    """nn.RNN returning the output sequence or the final hidden state."""

    def __init__(self, **kwargs) -> None:
        nn.RNN.__init__(self, **self._setup(kwargs))


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention as self-attention: query, key and value are the input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, _ = super().forward(x, x, x, need_weights=False)
        return out


class Positional(nn.Embedding):
    """A learned position table: adds its first L rows to an [N, L, E] input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x + self.weight[: x.shape[1]]


class ClsToken(nn.Embedding):
    """A learned [E] vector prepended to an [N, L, E] input, giving [N, L+1, E]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)


class Transpose(nn.Module):
    """x.transpose(dim0, dim1)."""

    def __init__(self, dims: tuple[int, int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class Permute(nn.Module):
    """x.permute(*dims)."""

    def __init__(self, dims: tuple[int, ...]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class _Reduction(nn.Module):
    method = ""

    def __init__(self, dim, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = tuple(dim) if isinstance(dim, (list, tuple)) else dim
        self.keepdim = keepdim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(x, self.method)(dim=self.dim, keepdim=self.keepdim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, keepdim={self.keepdim}"


class Mean(_Reduction):
    """x.mean(dim, keepdim)."""

    method = "mean"


class Amax(_Reduction):
    """x.amax(dim, keepdim)."""

    method = "amax"


class Select(nn.Module):
    """x.select(dim, index): one position (the last time step, a class token)."""

    def __init__(self, dim: int, index: int) -> None:
        super().__init__()
        self.dim, self.index = dim, index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.select(self.dim, self.index)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, index={self.index}"
