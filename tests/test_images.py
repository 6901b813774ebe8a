"""The one image reader (`runtime.data.images`) that image folders and `nnspec predict` share."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from runtime.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    image_input_problem,
    is_image_file,
    read_image,
)


def test_extensions_are_torchvisions():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    assert set(IMAGE_EXTENSIONS) == set(IMG_EXTENSIONS)


def test_is_image_file_ignores_case(tmp_path):
    assert is_image_file(tmp_path / "a.PNG")
    assert not is_image_file(tmp_path / "notes.txt")


def test_reads_rgb_as_channels_first_in_unit_range(tmp_path):
    pixels = np.zeros((4, 6, 3), dtype=np.uint8)
    pixels[1, 2] = (255, 0, 51)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png", [3, 4, 6])
    assert image.shape == (3, 4, 6) and image.dtype == torch.float32
    assert image[:, 1, 2].tolist() == pytest.approx([1.0, 0.0, 0.2])
    assert float(image.sum()) == pytest.approx(1.2)


def test_converts_to_grayscale_and_resizes(tmp_path):
    Image.fromarray(np.full((10, 20, 3), 200, dtype=np.uint8)).save(tmp_path / "a.jpg")
    image = read_image(tmp_path / "a.jpg", [1, 5, 7])
    assert image.shape == (1, 5, 7)
    assert torch.allclose(image, torch.full_like(image, 200 / 255), atol=2 / 255)


@pytest.mark.parametrize(
    "content", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 30]
)
def test_unreadable_files_name_their_path(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(UnreadableImage) as caught:
        read_image(path, [3, 8, 8])
    assert caught.value.path == path and str(path) in str(caught.value)


def test_truncated_file_is_unreadable(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    ).save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(UnreadableImage):
        read_image(path, [3, 32, 32])


@pytest.mark.parametrize("shape", [[64], [2, 8, 8], [3, 8], [4, 8, 8]])
def test_inputs_that_cannot_hold_images(shape):
    assert "1 channel (grayscale) or 3" in image_input_problem(shape)


def test_image_inputs():
    assert image_input_problem([1, 28, 28]) is None
    assert image_input_problem([3, 32, 32]) is None
