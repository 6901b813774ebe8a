"""What a data-set reader returns: all samples as tensors, before the train/validation split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def _sample(index: int) -> str:
    return f"sample {index}"


@dataclass
class Samples:
    """All samples of one data set, as read from disk (x float32 or int64 ids, y for the task)."""

    name: str  # the data set in messages: "digits", "mnist", a csv/npz file's path
    # (N, *sample_shape) float32, or int64 ids for an int64 input; a StoredSamples when the
    # data set is streamed from disk (runtime.data.stored)
    x: torch.Tensor
    # (N,) or (N, *positions) int64 for classification, float32 otherwise; None for
    # reconstruction, whose target is x itself
    y: torch.Tensor | None
    class_names: list[str] | None = None
    # a test split the data set itself keeps apart (torchvision, an image folder's test_path);
    # None for the others
    x_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    # a validation split kept apart (an image folder's val_path); None: cut by val_fraction
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    num_classes: int | None = None  # None: counted from the labels (classification)
    locate: Callable[[int], str] = (
        _sample  # index of a sample -> where it is ("line 7")
    )
    # a csv file's feature columns and one-hot vocabularies (csv_encoding.FeatureEncoding data)
    encoding: dict | None = None


def float_tensor(array: np.ndarray) -> torch.Tensor:
    """Return `array` as a contiguous float32 CPU tensor (copied, so the file's buffer can go)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32).copy())


def id_tensor(array: np.ndarray) -> torch.Tensor:
    """Return an integer `array` as a contiguous int64 CPU tensor of ids (copied)."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.int64).copy())
