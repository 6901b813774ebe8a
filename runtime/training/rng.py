"""Seeding and saving the random number generators that training uses."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

_MIX = (
    0x9E3779B97F4A7C15  # golden-ratio constant: epochs of nearby seeds do not coincide
)
_NOISE_STREAM = (
    0x5DEECE66D  # keeps the noise's seeds apart from the sample orders' seeds
)


def seed_everything(seed: int) -> None:
    """Seed python's random, numpy and torch (CPU and every CUDA device) from one integer."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Return the CPU generator that draws epoch `epoch`'s sample order.

    It depends on (seed, epoch) alone, so a resumed run, or every rank of a distributed run,
    draws the same permutation without sharing any state.
    """
    generator = torch.Generator(device="cpu")
    generator.manual_seed((seed * _MIX + epoch) % 2**64)
    return generator


def noise_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Return the generator, on `device`, that draws epoch `epoch`'s input noise.

    Like `epoch_generator` it depends on (seed, epoch) alone, but its stream is another one, so
    the noise does not repeat the draws of the sample order.
    """
    generator = torch.Generator(device=device)
    generator.manual_seed(((seed * _MIX + epoch) % 2**64) ^ _NOISE_STREAM)
    return generator


def rng_state(host: bool = True) -> dict[str, Any]:
    """Return the state of every generator as plain data and tensors (weights_only-loadable).

    With `host=False`, python's and numpy's states are the ones the last call with `host=True`
    read, and only torch's (and cuda's) are read now: training draws from neither of the
    first two, and reading them after an epoch took about 0.2 ms, more than the rest of a
    digits MLP's checkpoint copy (run_writer keeps the state of every improved epoch that way).
    """
    global _host_state
    if host or _host_state is None:
        kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
        version, internal, gauss_next = random.getstate()
        _host_state = {
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "gauss": float(gauss),
            },
            "python": {
                "version": version,
                # 625 words as one tensor: a list would be 625 objects for torch.save to
                # pickle (np.asarray makes it 3x faster than torch.tensor does)
                "internal": torch.from_numpy(np.asarray(internal, dtype=np.int64)),
                "gauss_next": gauss_next,
            },
        }
    state: dict[str, Any] = {"torch": torch.get_rng_state(), **_host_state}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


# python's and numpy's states as rng_state last read them (shared, never written into)
_host_state: dict[str, Any] | None = None


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the generators saved by `rng_state` (cuda only where this machine has it)."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["gauss"],
        )
    )
    python = state["python"]
    internal = python["internal"]  # a tensor (a list in older checkpoints)
    if isinstance(internal, torch.Tensor):
        internal = internal.tolist()
    random.setstate((python["version"], tuple(internal), python["gauss_next"]))
    cuda = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
