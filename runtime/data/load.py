"""Data for training: read a spec's data set, check its shape, split it into train/val/test.

`load_data(training, input_shape)` returns whole data sets as CPU tensors (`DataSplits`); the
training loop moves them to the device and batches them by index. Images are scaled to [0, 1] and
not normalized further (a `batchnorm2d` first layer does that job inside the model).

Samples keep the spec's input dtype: float32 values, or int64 ids (`input: {shape, dtype: int64}`)
read from an npz array of integers or csv cells of whole numbers, each checked to be a row of the
embedding that reads them. For reconstruction the targets are the samples themselves (`y_*` is
`x_*`, the same tensors), and no labels are read. Classification labels may hold one class per
position (`(N, *positions)`, segmentation and tagging).

Splits are deterministic: one permutation of the samples from `torch.Generator().manual_seed(seed)`;
its first `test_fraction` becomes the test split (digits, csv, npz only: torchvision data sets have
their own test split, and a `test_fraction` for one is an error), the next `val_fraction` of the remaining samples the validation split, the
rest the training split. Nothing is cached on disk except what torchvision itself downloads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from compiler import resolved_layers
from compiler.formatting import plural
from compiler.layers import REGISTRY
from compiler.training import one_value_batch_norms, split_sizes
from runtime.data import (
    Samples,
    csv_file,
    digits,
    image_folder,
    npz_file,
    preprocess,
    vision,
)
from runtime.data.csv_encoding import FeatureEncoding
from runtime.data.loading import LoadingPolicy, loading_policy, worker_count
from runtime.data.stored import (
    ImageFiles,
    RowSubset,
    StoredSamples,
    TensorRows,
    subset,
    take,
)
from runtime.errors import UserError

if TYPE_CHECKING:
    from compiler import Spec
    from compiler.training import TrainingConfig

IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder")
# rows of a streamed data set checked at a time
CHECK_ROWS = 4096


@dataclass(frozen=True)
class IdRange:
    """The ids an int64 input may hold: 0 to `limit - 1`, the rows of the embedding `owner`."""

    limit: int
    owner: str  # the argument that sets it, as problems name it: layers[0].embedding.num_embeddings


@dataclass
class DataSplits:
    """Train, validation and (when there is one) test tensors of one data set, on the CPU."""

    x_train: torch.Tensor  # (N, *input_shape) float32, or int64 ids
    # (N,) or (N, *positions) int64 for classification; float32 for binary (0/1) and
    # regression ((N,) or (N, k)); x_train itself for reconstruction
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    num_classes: int | None  # classification: number of classes; binary: 2; else None
    class_names: list[str] | None  # index -> name, where the data set names its classes
    description: str  # "digits: 1437 train, 360 val, no test split"
    # a csv file's feature columns and vocabularies (runtime.data.csv_encoding), else None
    encoding: dict | None = None
    # what every split got (runtime.data.preprocess); the checkpoint keeps it
    preprocessing: dict | None = None
    # DataLoader workers of a streamed data set (whose x_* are StoredSamples)
    workers: int = 0

    @property
    def streamed(self) -> bool:
        """Return whether the samples stay on disk and batches are read as they are needed."""
        return isinstance(self.x_train, StoredSamples)

    def head(self, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the first `count` validation samples and targets (training ones when there
        is no validation sample) as CPU tensors: what a model's output is checked on."""
        x, y = (
            (self.x_val, self.y_val)
            if len(self.x_val)
            else (self.x_train, self.y_train)
        )
        rows = range(min(count, len(x)))
        xb = take(x, rows)
        return xb, (xb if y is x else take(y, rows))


def load_spec_data(
    spec: Spec, task: str | None = None, *, stored: dict | None = None
) -> DataSplits:
    """Return the data set of a spec's training section, checked against its input (shape,
    dtype and, for ids, the rows of the embedding that reads them), preprocessed.

    Relative data paths are read from the spec file's folder (the working directory for a
    spec without a file). `stored` is a checkpoint's preprocessing: its data folder, csv
    encoding and statistics are used instead of new ones from the training split.
    """
    training = spec.training_or_default
    folder = preprocess.data_folder(spec, stored)
    # the line of the spec file, unless the folder is a checkpoint's (the spec is its copy)
    config = preprocess.located_data(
        training.data, folder, spec if stored is None else None
    )
    data = load_data(
        training.model_copy(update={"data": config}),
        spec.input,
        task or training.task,
        dtype=spec.input_dtype,
        ids=id_range(spec),
        encoding=(stored or {}).get("encoding"),
    )
    check_batches_of_more_than_one(spec, len(data.x_train))
    if stored is None:
        stored = preprocess.training_preprocessing(
            training, data.x_train, data.encoding, folder
        )
    preprocess.preprocess_splits(data, stored)
    return data


def check_batches_of_more_than_one(spec: Spec, n_train: int) -> None:
    """Raise UserError when a training split of one sample meets batch norm over one value per
    channel, which torch cannot train (validation refuses what it can know: batch_size 1, and
    the built-in data sets' splits; the size of the user's own file is known only here).
    """
    norms = one_value_batch_norms(resolved_layers(spec))
    if n_train != 1 or not norms:
        return
    where = norms[0].path or f"layers[{norms[0].index}]"
    raise UserError(
        f"the training split holds 1 sample, but {where}.{norms[0].type} normalizes over the "
        f"batch and needs more than one value per channel; give the data set more samples, "
        f"lower val_fraction or test_fraction, or normalize with layernorm"
    )


def id_range(spec: Spec) -> IdRange | None:
    """Return the ids an int64 input may hold (those of its embedding), None when unknown."""
    if spec.input_dtype != "int64":
        return None

    for layer in resolved_layers(spec):
        if getattr(REGISTRY.get(layer.type), "takes_ids", False):
            limit = layer.kwargs.get("num_embeddings")
            where = layer.path or f"layers[{layer.index}]"
            if isinstance(limit, int):
                return IdRange(limit, f"{where}.{layer.type}.num_embeddings")
            return None
    return None


def load_data(
    training: TrainingConfig,
    input_shape: Sequence[int],
    task: str | None = None,
    *,
    dtype: str = "float32",
    ids: IdRange | None = None,
    encoding: dict | None = None,
) -> DataSplits:
    """Return the spec's data set split into train/val(/test), with samples of `input_shape`.

    `dtype` is the spec's input dtype (int64: ids, each below `ids.limit` when given).
    Raises UserError (one line) for a missing or malformed file, or samples whose shape or
    dtype is not the input's.

    Samples that `training.loading` streams are StoredSamples (read batch by batch) in the
    splits, labels always tensors.
    """
    config = training.data
    task = task or training.task
    input_shape = [int(size) for size in input_shape]
    if dtype == "int64" and config.dataset in IMAGE_DATASETS:
        raise UserError(
            f"data set '{config.dataset}' gives float pixel values, but the spec's input holds "
            "int64 ids (input.dtype); read ids from an npz or csv file"
        )
    policy = loading_policy(training.loading)
    samples = read_samples(config, input_shape, task, dtype, encoding, policy=policy)
    check_sample_shape(samples, input_shape)
    if dtype == "int64":
        check_ids(samples, ids)
    splits = split_samples(
        _streamed(samples, policy),
        config.val_fraction,
        config.test_fraction,
        training.seed,
    )
    if splits.streamed:
        splits.workers = worker_count(policy.workers, _decodes(splits.x_train))
        splits.description += ", streamed batch by batch"
    return splits


def _streamed(samples: Samples, policy: LoadingPolicy) -> Samples:
    """Return `samples` with tensors that the policy streams wrapped as stores (a reader that
    streams, or that read them whole, decides for its own; this decides for the others).
    """
    parts = [samples.x, samples.x_val, samples.x_test]
    if isinstance(samples.x, StoredSamples):
        return samples
    if not policy.streams(sum(p.nbytes for p in parts if p is not None)):
        return samples
    wrapped = [TensorRows(p) if p is not None else None for p in parts]
    samples.x, samples.x_val, samples.x_test = wrapped
    return samples


def _decodes(x: StoredSamples) -> bool:
    """Return whether reading a row of `x` decodes a file (worth DataLoader workers)."""
    while isinstance(x, RowSubset):
        x = x.base
    return isinstance(x, ImageFiles)


def read_samples(
    config,
    input_shape: list[int],
    task: str,
    dtype: str = "float32",
    encoding: dict | None = None,
    *,
    policy: LoadingPolicy | None = None,
) -> Samples:
    """Return every sample of the data set that `config` names.

    `config` is the data set's own model (compiler.training: DigitsData, MnistData, CsvData,
    NpzData, ...), which holds only the arguments its reader below takes. Readers that can
    stream (npz, image_folder) get the loading `policy`.
    """
    if config.dataset == "digits":
        return digits.read_digits(task)
    if config.dataset in ("mnist", "fashion_mnist", "cifar10"):
        return vision.read_torchvision(
            config.dataset, config.data_dir, config.download, task
        )
    if config.dataset == "csv":
        return csv_file.read_csv(
            config.path,
            target=config.target,
            features=config.features,
            input_shape=input_shape,
            task=task,
            dtype=dtype,
            encoding=FeatureEncoding.from_data(encoding) if encoding else None,
        )
    if config.dataset == "npz":
        return npz_file.read_npz(
            config.path, config.x_key, config.y_key, task, dtype, policy
        )
    if config.dataset == "image_folder":
        return image_folder.read_image_folder(
            config.path,
            val_path=config.val_path,
            test_path=config.test_path,
            input_shape=input_shape,
            task=task,
            policy=policy,
        )
    raise UserError(
        f"unknown data set '{config.dataset}'"
    )  # the spec model forbids this


def check_ids(samples: Samples, ids: IdRange | None) -> None:
    """Raise UserError, naming the sample, for an id that is negative or not below `ids.limit`."""
    if isinstance(samples.x, StoredSamples):  # a block of rows at a time
        for start in range(0, len(samples.x), CHECK_ROWS):
            rows = range(start, min(start + CHECK_ROWS, len(samples.x)))
            _check_id_rows(samples, samples.x.take(rows), start, ids)
        return
    _check_id_rows(samples, samples.x, 0, ids)


def _check_id_rows(
    samples: Samples, rows: torch.Tensor, start: int, ids: IdRange | None
) -> None:
    x = rows.flatten(1)
    bad = x < 0
    if ids is not None:
        bad |= x >= ids.limit
    if not bool(bad.any()):
        return
    found = int(bad.any(dim=1).nonzero()[0])
    value = int(x[found][bad[found]][0])
    index = start + found
    where = f"{samples.name}: {samples.locate(index)}"
    if value < 0:
        raise UserError(
            f"{where}: id {value} is negative; ids number the embedding's rows from 0"
        )
    largest = int(x.max())
    raise UserError(
        f"{where}: id {value} is not a row of the embedding, which has {ids.limit} "
        f"(ids 0 to {ids.limit - 1}, {ids.owner}); the largest id in the data is {largest}, "
        f"so set num_embeddings to {largest + 1} or more"
    )


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
    """Return `samples` split by one seeded permutation: test first, then validation, train.

    A validation split the data set keeps apart (`samples.x_val`) is used as it is, and the
    permutation then cuts only the test split. Streamed samples are split into views.
    """
    count = len(samples.x)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    x_test, y_test = samples.x_test, samples.y_test
    if samples.x_test is not None and test_fraction > 0:
        raise UserError(
            f"data set '{samples.name}' has its own test split; test_fraction is for digits, "
            f"csv and npz: remove it from training.data"
        )
    own_val = samples.x_val is not None
    n_train, n_val, n_test = split_sizes(
        count, 0.0 if own_val else val_fraction, test_fraction
    )
    if test_fraction > 0:
        x_test = subset(samples.x, order[:n_test])
        y_test = samples.y[order[:n_test]] if samples.y is not None else None
    if own_val:
        n_val = len(samples.x_val)
    # (n_test is at least 1 whenever test_fraction > 0 and there are samples left to train)
    if n_train < 1 or n_val < 1:
        raise UserError(
            f"data set '{samples.name}' has {plural(count, 'sample')}: too few to split with val_fraction "
            f"{val_fraction} and test_fraction {test_fraction} (each split needs one sample)"
            if not own_val
            else f"data set '{samples.name}': {n_train} training and {n_val} validation "
            "samples; both need at least one"
        )
    val = order[n_test : n_test + (0 if own_val else n_val)]
    train = order[n_test + (0 if own_val else n_val) :]
    test_text = f"{len(x_test)} test" if x_test is not None else "no test split"
    x_train = subset(samples.x, train)
    x_val = samples.x_val if own_val else subset(samples.x, val)
    if samples.y is None:  # reconstruction: the targets are the samples themselves
        y_train, y_val, y_test = x_train, x_val, x_test
    else:
        y_train = samples.y[train]
        y_val = samples.y_val if own_val else samples.y[val]
    return DataSplits(
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        num_classes=samples.num_classes,
        class_names=samples.class_names,
        description=f"{samples.name}: {n_train} train, {n_val} val, {test_text}",
        encoding=samples.encoding,
    )


def _product(shape: Sequence[int]) -> int:
    result = 1
    for size in shape:
        result *= size
    return result
