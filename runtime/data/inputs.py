"""Made-up inputs of a spec's shape and dtype: for summaries, warm-ups, benchmarks and tests.

A spec's input is float32 values or, with `input: {shape, dtype: int64}`, int64 ids; every
place that needs a batch it has not read from a data set takes it from `sample_batch`, so none
feeds floats to an embedding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch

from runtime.data.load import id_range

if TYPE_CHECKING:
    from compiler import Spec

DTYPES = {"float32": torch.float32, "int64": torch.int64}


def input_dtype(spec: Spec) -> torch.dtype:
    """Return the torch dtype of the spec's samples: float32, or int64 for ids."""
    return DTYPES[spec.input_dtype]


def sample_batch(
    spec: Spec,
    n: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Return a batch of `n` made-up samples of the spec's input: shape (n, *input), its dtype.

    float32: standard normal values. int64: ids drawn uniformly from the rows of the embedding
    that reads them (0 alone when the spec names no row count).
    """
    shape = (n, *spec.input)
    if spec.input_dtype == "int64":
        ids = id_range(spec)
        high = ids.limit if ids is not None else 1
        return torch.randint(0, high, shape, generator=generator, device=device)
    return torch.randn(shape, generator=generator, device=device)


@contextmanager
def spec_inputs(model: torch.nn.Module, spec: Spec) -> Iterator[torch.nn.Module]:
    """Within the block, the model replaces the float batches it is given by `sample_batch`s
    of the spec's dtype, when that is int64 (for torchsummary, which only makes floats).
    """
    if spec.input_dtype == "float32":
        yield model
        return

    def as_ids(_module, args):
        x, *rest = args
        if x.is_floating_point():
            x = sample_batch(spec, len(x), device=x.device)
        return (x, *rest)

    handle = model.register_forward_pre_hook(as_ids)
    try:
        yield model
    finally:
        handle.remove()
