"""The preprocessing a run fixes from its training split, and applies to every split and to
`nnspec predict`'s inputs: csv standardization, image normalization, the one-hot vocabulary.

It is one mapping of plain data, the checkpoint's `preprocessing` entry:

    {"normalize": {"mean": [...], "std": [...]} | None,    # per channel (dim 1): images
     "standardize": {"mean": [...], "std": [...]} | None,  # per value of a flattened sample: csv
     "encoding": {"features": [...], "categories": {column: [names]}} | None,  # csv columns
     "data_folder": "/abs/folder" | None}                  # relative data paths were read here

Statistics are computed by `channel_stats` from an iterable of CPU chunks `(n, C, ...)`, so a data
set streamed from disk in batches gives the same numbers as one in memory (float64 sums). A
constant channel or column gets std 1, so it becomes 0 instead of a division by zero.

A streamed split (a `StoredSamples`, read batch by batch) is wrapped in `PreprocessedRows`, which
applies the same operation to the rows as they are read: the same values in, the same numbers
out as the in-memory split, whose tensors are preprocessed once here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compiler.data_paths import NO_FILE, resolve_data_path, spec_folder
from compiler.training import DATA_PATH_KEYS
from runtime.data.stored import StoredSamples, take
from runtime.errors import UserError, shown

KEYS = ("normalize", "standardize", "encoding", "data_folder")
# what a checkpoint of an nnspec before preprocessing stands for: its data as read
NO_PREPROCESSING = dict.fromkeys(KEYS)


def channel_stats(chunks: Iterable[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Return the mean and (population) std of every channel (dim 1) over all samples of all
    `chunks`; a channel whose std is 0 gets std 1."""
    total = squares = shift = None
    count = 0
    for chunk in chunks:
        values = chunk.detach().to("cpu", torch.float64)
        values = values.transpose(0, 1).reshape(values.shape[1], -1)
        if shift is None:
            # sums of x - (the first chunk's mean): no cancellation, a constant channel's
            # variance is exactly 0
            shift = values.mean(dim=1, keepdim=True)
            total = torch.zeros(values.shape[0], dtype=torch.float64)
            squares = torch.zeros_like(total)
        values = values - shift
        total += values.sum(dim=1)
        squares += values.square().sum(dim=1)
        count += values.shape[1]
    if total is None or count == 0:
        raise UserError("no training samples to compute the normalization from")
    centred = total / count
    std = (squares / count - centred.square()).clamp_min(0).sqrt()
    mean = centred + shift.squeeze(1)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return mean.tolist(), std.tolist()


def chunks_of(
    x: torch.Tensor | StoredSamples, size: int = 4096
) -> Iterable[torch.Tensor]:
    """Return the samples of `x` (a tensor or a streamed store) in CPU chunks of `size`
    (bounds the float64 copy channel_stats makes; a store is read one chunk at a time).
    """
    return (
        take(x, range(start, min(start + size, len(x))))
        for start in range(0, len(x), size)
    )


def training_preprocessing(
    training, x_train: torch.Tensor, encoding: dict | None, data_folder: Path | None
) -> dict[str, Any]:
    """Return the preprocessing a new run fixes: statistics of `x_train` for what the spec's
    training section asks (normalize, standardize), and the csv encoding and data folder.
    """
    normalize = None
    augment = training.augment
    if augment is not None and augment.normalize == "auto":
        mean, std = channel_stats(chunks_of(x_train))
        normalize = {"mean": mean, "std": std}
    elif augment is not None and augment.normalize is not None:
        normalize = {
            "mean": list(augment.normalize.mean),
            "std": list(augment.normalize.std),
        }
    standardize = None
    data = training.data
    if getattr(data, "standardize", False) and x_train.dtype.is_floating_point:
        mean, std = channel_stats(
            chunk.reshape(len(chunk), -1) for chunk in chunks_of(x_train)
        )
        if encoding is not None:  # one-hot values stay 0 and 1
            for i, one_hot in enumerate(_one_hot_flags(encoding)):
                if one_hot:
                    mean[i], std[i] = 0.0, 1.0
        standardize = {"mean": mean, "std": std}
    return {
        "normalize": normalize,
        "standardize": standardize,
        "encoding": encoding,
        "data_folder": str(data_folder) if data_folder is not None else None,
    }


def apply_preprocessing(x: torch.Tensor, preprocessing: dict | None) -> torch.Tensor:
    """Return `x` (N, ...) standardized and normalized as `preprocessing` says (a new tensor;
    `x` itself when there is nothing to do or it holds ids)."""
    if not preprocessing or not x.dtype.is_floating_point:
        return x
    standardize = preprocessing.get("standardize")
    if standardize is not None:
        x = _scaled(x.reshape(len(x), -1), standardize).reshape(x.shape)
    normalize = preprocessing.get("normalize")
    if normalize is not None:
        x = _scaled(x, normalize)
    return x


def preprocess_splits(data, preprocessing: dict) -> None:
    """Apply `preprocessing` to every split of `data` (a DataSplits), in place, and keep it in
    `data.preprocessing`; reconstruction targets (the inputs themselves) follow their inputs.
    """
    data.preprocessing = preprocessing
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x is None:
            continue
        new = (
            PreprocessedRows(x, preprocessing)
            if isinstance(x, StoredSamples) and _changes(x, preprocessing)
            else apply_preprocessing(x, preprocessing)
        )
        setattr(data, f"x_{split}", new)
        if y is x:
            setattr(data, f"y_{split}", new)


def _changes(x: torch.Tensor | StoredSamples, preprocessing: dict | None) -> bool:
    """Return whether `preprocessing` changes float samples like those of `x`."""
    return bool(
        preprocessing
        and x.dtype.is_floating_point
        and (preprocessing.get("standardize") or preprocessing.get("normalize"))
    )


@dataclass(eq=False)
class PreprocessedRows(StoredSamples):
    """The rows of a streamed store with the run's preprocessing applied as they are read."""

    base: StoredSamples
    preprocessing: dict

    def __post_init__(self) -> None:
        self.dtype, self.sample_shape = self.base.dtype, self.base.sample_shape

    def __len__(self) -> int:
        return len(self.base)

    def _read(self, rows: list[int]) -> torch.Tensor:
        return apply_preprocessing(self.base.take(rows), self.preprocessing)


def data_folder(spec, stored: dict | None) -> Path | None:
    """Return the folder relative data paths are read from: the one a checkpoint recorded,
    else the spec file's (None: the working directory, for a spec without a file)."""
    if stored is not None:
        folder = stored.get("data_folder")
        return Path(folder) if folder else None
    return spec_folder(spec.source)


def located_data(config, folder: Path | None, spec=None):
    """Return the data section `config` with the paths it names (`path`, and an image folder's
    `val_path` and `test_path`) resolved from `folder`; raise UserError, naming the folder,
    when a relative path finds nothing there (and the spec file's line, given the `spec` it
    was read from)."""
    update = {}
    for key in DATA_PATH_KEYS:
        path = getattr(config, key, None)
        if path is None:
            continue
        resolved = resolve_data_path(path, folder)
        if resolved != path and not os.path.lexists(resolved):
            what = "" if config.dataset == "image_folder" else f"{config.dataset} "
            what += "image folder" if config.dataset == "image_folder" else "file"
            named = "" if key == "path" else f" ({key})"
            where = ""
            if spec is not None and spec.source != NO_FILE:
                line = spec.data_line(key)
                at = f":{line}" if line is not None else ""
                where = f"{shown(spec.source)}{at}: training.data.{key}: "
            raise UserError(
                f"{where}{what} '{shown(path)}'{named} not found in "
                f"{shown(str(folder))} (relative data paths are read from the spec file's "
                f"folder)"
            )
        update[key] = _as_shown(resolved)
    return config.model_copy(update=update) if update else config


def _as_shown(path: str) -> str:
    """Return `path` relative to the working directory when it lies below it (messages then
    show `datasets/wine.csv`, not a long absolute path), else absolute."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute)
    return absolute if relative.startswith("..") else relative


def check_preprocessing(value: Any, source: Path) -> None:
    """Raise UserError unless a checkpoint's `preprocessing` entry is None or the mapping
    this module writes (lists of finite numbers, std > 0)."""
    if value is None:
        return
    damaged = UserError(f"{source} is damaged: its preprocessing entry is malformed")
    if not isinstance(value, dict) or set(value) - set(KEYS):
        raise damaged
    for key in ("normalize", "standardize"):
        stats = value.get(key)
        if stats is None:
            continue
        if not isinstance(stats, dict) or set(stats) != {"mean", "std"}:
            raise damaged
        mean, std = stats["mean"], stats["std"]
        if not (_numbers(mean) and _numbers(std) and len(mean) == len(std)):
            raise damaged
        if not all(s > 0 for s in std):
            raise damaged
    encoding = value.get("encoding")
    if encoding is not None:
        if not isinstance(encoding, dict) or set(encoding) != {
            "features",
            "categories",
        }:
            raise damaged
        features, categories = encoding["features"], encoding["categories"]
        if not (
            isinstance(features, list) and all(isinstance(f, str) for f in features)
        ):
            raise damaged
        if not isinstance(categories, dict) or not all(
            isinstance(k, str)
            and isinstance(v, list)
            and all(isinstance(n, str) for n in v)
            for k, v in categories.items()
        ):
            raise damaged
    if not isinstance(value.get("data_folder"), (str, type(None))):
        raise damaged


def _scaled(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """Return (x - mean) / std with one statistic per entry of dim 1."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    mean = torch.tensor(stats["mean"], dtype=x.dtype, device=x.device).reshape(shape)
    std = torch.tensor(stats["std"], dtype=x.dtype, device=x.device).reshape(shape)
    if mean.numel() != x.shape[1]:
        raise UserError(
            f"the stored preprocessing has {mean.numel()} values per sample, but the inputs "
            f"have {x.shape[1]}"
        )
    return (x - mean) / std


def _one_hot_flags(encoding: dict) -> list[bool]:
    flags: list[bool] = []
    for name in encoding["features"]:
        vocabulary = encoding["categories"].get(name)
        flags += [True] * len(vocabulary) if vocabulary else [False]
    return flags


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in values
    )
