"""Tiny data sets written in each data set's own on-disk format, for tests of the real readers."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

MNIST_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


def tiny_images(
    count: int, shape: tuple[int, ...], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return `count` random uint8 images of `shape` and labels 0..9 (every class present)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
    images[0].flat[0], images[0].flat[1] = (
        0,
        255,
    )  # so that the [0, 1] range is reached exactly
    labels = np.arange(count, dtype=np.uint8) % 10
    return images, labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file: big-endian magic (0x08 = ubyte, rank), sizes, bytes."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: Path, dataset: str, train: int = 20, test: int = 10
) -> dict[str, np.ndarray]:
    """Write `<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`; return the arrays.

    The unpacked files are what torchvision reads (and checks for, without md5s); the .gz
    archives it downloads are not needed.
    """
    raw = root / MNIST_FOLDERS[dataset] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, count, seed in (("train", train, 1), ("t10k", test, 2)):
        images, labels = tiny_images(count, (28, 28), seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)  # magic 2051
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)  # magic 2049
        arrays[f"{prefix}_images"], arrays[f"{prefix}_labels"] = images, labels
    return arrays


def write_cifar10(
    root: Path, per_batch: int = 4, test: int = 10
) -> dict[str, np.ndarray]:
    """Write `<root>/cifar-10-batches-py/` (data_batch_1..5, test_batch, batches.meta).

    Each batch is a pickled dict as in the real archive: `data` uint8 (N, 3072) holding the red,
    then green, then blue 32x32 planes of each image, and `labels` a list of ints. Returns the
    images as (N, 32, 32, 3), the layout torchvision exposes.
    """
    folder = root / CIFAR_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = [], []
    for batch in range(1, 6):
        images, labels = tiny_images(per_batch, (32, 32, 3), seed=10 + batch)
        labels = (labels + batch) % 10
        _pickle(
            folder / f"data_batch_{batch}",
            _cifar_batch(images, labels, f"training batch {batch} of 5"),
        )
        train_images.append(images)
        train_labels.append(labels)
    test_images, test_labels = tiny_images(test, (32, 32, 3), seed=20)
    _pickle(
        folder / "test_batch",
        _cifar_batch(test_images, test_labels, "testing batch 1 of 1"),
    )
    _pickle(
        folder / "batches.meta",
        {
            "label_names": CIFAR_CLASSES,
            "num_cases_per_batch": per_batch,
            "num_vis": 3072,
        },
    )
    return {
        "train_images": np.concatenate(train_images),
        "train_labels": np.concatenate(train_labels),
        "test_images": test_images,
        "test_labels": test_labels,
    }


def _cifar_batch(images: np.ndarray, labels: np.ndarray, name: str) -> dict:
    planes = images.transpose(0, 3, 1, 2).reshape(
        len(images), 3 * 32 * 32
    )  # HWC -> CHW rows
    return {
        "batch_label": name,
        "labels": [int(label) for label in labels],
        "data": np.ascontiguousarray(planes),
        "filenames": [f"{i}.png" for i in range(len(images))],
    }


def _pickle(path: Path, value: object) -> None:
    with open(path, "wb") as file:
        pickle.dump(value, file, protocol=2)


def write_csv(path: Path, text: str) -> Path:
    """Write `text` (dedented by the caller) to `path` and return the path."""
    path.write_text(text)
    return path
