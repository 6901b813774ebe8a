"""Data for training: read a spec's data set, check its shape, split it into train/val/test.

`load_data(training, input_shape)` returns whole data sets as CPU tensors (`DataSplits`); the
training loop moves them to the device and batches them by index. Images are scaled to [0, 1] and
not normalized further (a `batchnorm2d` first layer does that job inside the model).

Splits are deterministic: one permutation of the samples from `torch.Generator().manual_seed(seed)`;
its first `test_fraction` becomes the test split (digits, csv, npz only: torchvision data sets have
their own test split, and a `test_fraction` for one is an error), the next `val_fraction` of the remaining samples the validation split, the
rest the training split. Nothing is cached on disk except what torchvision itself downloads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .datasets import Samples
from .errors import UserError

if TYPE_CHECKING:
    from compiler.training import TrainingConfig


@dataclass
class DataSplits:
    """Train, validation and (when there is one) test tensors of one data set, on the CPU."""

    x_train: torch.Tensor  # (N, *input_shape) float32
    # (N,) int64 for classification; float32 for binary (0/1) and regression ((N,) or (N, k))
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int | None  # classification: number of classes; binary: 2; else None
    class_names: list[str] | None  # index -> name, where the data set names its classes
    description: str  # "digits: 1437 train, 360 val, no test split"


def load_data(
    training: TrainingConfig, input_shape: Sequence[int], task: str | None = None
) -> DataSplits:
    """Return the spec's data set split into train/val(/test), with samples of `input_shape`.

    Raises UserError (one line) for a missing or malformed file, or samples whose shape is not
    `input_shape`.
    """
    config = training.data
    task = task or training.task
    input_shape = [int(size) for size in input_shape]
    samples = read_samples(config, input_shape, task)
    check_sample_shape(samples, input_shape)
    return split_samples(
        samples, config.val_fraction, config.test_fraction, training.seed
    )


def read_samples(config, input_shape: list[int], task: str) -> Samples:
    """Return every sample of the data set that `config` (a DataConfig) names."""
    if config.dataset == "digits":
        from .datasets.digits import read_digits

        return read_digits(task)
    if config.dataset in ("mnist", "fashion_mnist", "cifar10"):
        from .datasets.vision import read_torchvision

        return read_torchvision(config.dataset, config.data_dir, config.download, task)
    if config.dataset == "csv":
        from .datasets.csv_file import read_csv

        return read_csv(config.path, config.target, config.features, input_shape, task)
    if config.dataset == "npz":
        from .datasets.npz_file import read_npz

        return read_npz(config.path, config.x_key, config.y_key, task)
    raise UserError(
        f"unknown data set '{config.dataset}'"
    )  # the spec model forbids this


def check_sample_shape(samples: Samples, input_shape: list[int]) -> None:
    """Raise UserError unless the samples have exactly the spec's `input` shape."""
    shape = list(samples.x.shape[1:])
    if shape == input_shape:
        return
    hint = f"set input: {shape}"
    if len(shape) > 1 and len(input_shape) == 1 and _product(shape) == input_shape[0]:
        hint += " and start the layers with flatten"
    raise UserError(
        f"data set '{samples.name}' gives samples of shape {shape}, but the spec's input is "
        f"{input_shape}; {hint}"
    )


def split_samples(
    samples: Samples, val_fraction: float, test_fraction: float, seed: int
) -> DataSplits:
    """Return `samples` split by one seeded permutation: test first, then validation, train."""
    count = len(samples.x)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    x_test, y_test = samples.x_test, samples.y_test
    n_test = 0
    if samples.x_test is not None and test_fraction > 0:
        raise UserError(
            f"data set '{samples.name}' has its own test split; test_fraction is for digits, "
            f"csv and npz: remove it from training.data"
        )
    if test_fraction > 0:
        n_test = _share(count, test_fraction)
        x_test, y_test = samples.x[order[:n_test]], samples.y[order[:n_test]]
    n_val = _share(count - n_test, val_fraction)
    n_train = count - n_test - n_val
    # (n_test is at least 1 whenever test_fraction > 0 and there are samples left to train)
    if n_train < 1 or n_val < 1:
        raise UserError(
            f"data set '{samples.name}' has {count} samples: too few to split with val_fraction "
            f"{val_fraction} and test_fraction {test_fraction} (each split needs one sample)"
        )
    val = order[n_test : n_test + n_val]
    train = order[n_test + n_val :]
    test_text = f"{len(x_test)} test" if x_test is not None else "no test split"
    return DataSplits(
        x_train=samples.x[train],
        y_train=samples.y[train],
        x_val=samples.x[val],
        y_val=samples.y[val],
        x_test=x_test,
        y_test=y_test,
        num_classes=samples.num_classes,
        class_names=samples.class_names,
        description=f"{samples.name}: {n_train} train, {n_val} val, {test_text}",
    )


def _share(count: int, fraction: float) -> int:
    # Rounded up, as scikit-learn's train_test_split does (1797 digits, 0.2 -> 360 val); the
    # epsilon keeps 100 * 0.07 = 7.000000000000001 from becoming 8.
    return math.ceil(count * fraction - 1e-9)


def _product(shape: Sequence[int]) -> int:
    result = 1
    for size in shape:
        result *= size
    return result
