"""Random crop and horizontal flip of training batches of images, on their device.

Each epoch draws from a generator seeded by (seed, epoch) alone (a stream apart from the sample
order's and the noise's), and every batch draws for the whole global batch, each process taking
the rows of its own samples: so a sample's crop and flip depend on (seed, epoch, its place in the
batch) only, the same in one process or several, and in a resumed run. Validation, evaluate and
predict never augment.
"""

from __future__ import annotations

import torch
from torch import Tensor

from runtime.parallel.distributed import SINGLE, Group

_MIX = 0x9E3779B97F4A7C15  # as runtime.training.rng: epochs of nearby seeds do not coincide
_AUGMENT_STREAM = (
    0x2545F4914F6CDD1D  # keeps these seeds apart from the order's and noise's
)


def augment_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """Return the generator, on `device`, that draws epoch `epoch`'s crops and flips."""
    generator = torch.Generator(device=device)
    generator.manual_seed(((seed * _MIX + epoch) % 2**64) ^ _AUGMENT_STREAM)
    return generator


class BatchAugmenter:
    """Crops and flips batches `[N, C, H, W]` as a spec's `training.augment` says."""

    def __init__(self, padding: int | None, flip: bool) -> None:
        self.padding = padding  # None: no crop
        self.flip = flip

    @classmethod
    def from_config(cls, augment) -> "BatchAugmenter | None":
        """Return the augmenter of an AugmentConfig, None when it neither crops nor flips."""
        if augment is None:
            return None
        padding = augment.random_crop.padding if augment.random_crop else None
        if not padding and not augment.horizontal_flip:
            return None  # (a crop with padding 0 is the image itself)
        return cls(padding or None, augment.horizontal_flip)

    def __call__(
        self,
        xb: Tensor,
        generator: torch.Generator,
        size: int,
        group: Group = SINGLE,
    ) -> Tensor:
        """Return this process's part `xb` of a global batch of `size` samples, augmented."""
        device = xb.device
        # drawn for the whole global batch, in a fixed order, whatever this process keeps
        if self.padding:
            offsets = torch.randint(
                0, 2 * self.padding + 1, (2, size), generator=generator, device=device
            )
        if self.flip:
            flips = torch.rand(size, generator=generator, device=device) < 0.5
        if group.active:
            mine = slice(group.rank, None, group.world)
            offsets = offsets[:, mine] if self.padding else None
            flips = flips[mine] if self.flip else None
        if self.padding:
            xb = random_crop(xb, self.padding, offsets[0], offsets[1])
        if self.flip:
            xb = torch.where(flips.view(-1, 1, 1, 1), xb.flip(-1), xb)
        return xb


def random_crop(x: Tensor, padding: int, top: Tensor, left: Tensor) -> Tensor:
    """Return each image of `x` [N, C, H, W] padded by `padding` zeros on every side, then cut
    to H x W from row `top[i]`, column `left[i]` (0 to 2 * padding): one gather, no loop.
    """
    n, channels, height, width = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
    rows = (top.view(n, 1) + torch.arange(height, device=x.device)).view(
        n, 1, height, 1
    )
    cols = (left.view(n, 1) + torch.arange(width, device=x.device)).view(n, 1, 1, width)
    samples = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    planes = torch.arange(channels, device=x.device).view(1, channels, 1, 1)
    return padded[samples, planes, rows, cols]
