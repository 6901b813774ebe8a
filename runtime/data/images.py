"""One image file as a tensor of the spec's input: the reader that image folders and `predict` share.

`read_image(path, input_shape)` opens the file with Pillow (torchvision's own dependency), converts it
to grayscale (`L`) or RGB by the input's channel count, resizes it to the input's height and width
(bilinear, as torchvision's `Resize` does by default; nothing is cropped) and returns float32
`[C, H, W]` in [0, 1], the scale of the built-in image data sets. A file that is not an image, or is
cut short, raises `UnreadableImage` with its path and Pillow's reason; callers collect them and
report every one at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

# torchvision.datasets.folder.IMG_EXTENSIONS, spelled out so that listing a folder needs no
# torchvision import (both are checked equal in tests)
IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".ppm",
    ".bmp",
    ".pgm",
    ".tif",
    ".tiff",
    ".webp",
)

# channels of the input -> the Pillow mode images are converted to
MODES = {1: "L", 3: "RGB"}


class UnreadableImage(Exception):
    """An image file Pillow cannot decode: `path` and `reason` (one line)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def is_image_file(path: Path) -> bool:
    """Return whether `path` has one of the extensions torchvision's ImageFolder reads."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def image_input_problem(input_shape: Sequence[int]) -> str | None:
    """Return why an input of `input_shape` cannot hold images (None when it can: `[1|3, H, W]`)."""
    shape = list(input_shape)
    if len(shape) != 3 or shape[0] not in MODES:
        return (
            f"images are read as [channels, height, width] with 1 channel (grayscale) or 3 "
            f"(RGB), but the spec's input is {shape}"
        )
    return None


def check_image(path: Path) -> None:
    """Raise UnreadableImage unless Pillow reads the header of `path` and `verify()` passes.

    Cheaper than decoding: a streamed folder is checked so at load and decoded batch by batch
    (verify finds a cut-short PNG; a cut-short JPEG is found when it is decoded).
    """
    from PIL import Image, UnidentifiedImageError  # Pillow: only image data needs it

    try:
        with Image.open(path) as image:
            image.verify()
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UnreadableImage(path, reason) from None


def read_image(path: Path, input_shape: Sequence[int]) -> torch.Tensor:
    """Return the image at `path` as float32 `[C, H, W]` in [0, 1], converted and resized to
    `input_shape` (`[1 or 3, H, W]`); raise UnreadableImage when Pillow cannot decode it.
    """
    from PIL import Image, UnidentifiedImageError  # Pillow: only image data needs it

    channels, height, width = (int(size) for size in input_shape)
    try:
        with Image.open(path) as image:
            image = image.convert(MODES[channels])
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError:
        raise UnreadableImage(path, "not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # a truncated file is an OSError; a corrupt header can be a ValueError or SyntaxError
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UnreadableImage(path, reason) from None
    tensor = torch.from_numpy(pixels.copy())
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    else:
        tensor = tensor.permute(2, 0, 1)
    return tensor.to(torch.float32).div_(255.0).contiguous()
