"""Turn a data set's labels into the target tensor a task trains on (and class names)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from compiler.layers.base import MAX_SIZE
from runtime.errors import UserError, shown

FLOAT32_MAX = float(np.finfo(np.float32).max)
# the largest class index a spec can give scores for (out_features is at most MAX_SIZE)
MAX_CLASS_INDEX = MAX_SIZE - 1

Locate = Callable[[int], str]  # index of a sample -> where it is ("line 7", "sample 7")


def encode_labels(
    labels: np.ndarray, task: str, source: str, locate: Locate
) -> tuple[torch.Tensor, list[str] | None, int | None]:
    """Return (y, class_names, num_classes) for `task` from numeric or string `labels`.

    classification: int64 class indices, shape (N,), or (N, *positions) for one class per
    position (segmentation, tagging); names are mapped to indices in sorted order.
    binary: float32 0/1; two names are mapped to 0/1 in sorted order.
    regression: float32 values, shape (N,) or (N, k).
    """
    if labels.dtype.kind in "US":
        return _encode_names(labels.astype(str), task, source, locate)
    if labels.dtype.kind not in "biuf":
        raise UserError(
            f"{source}: labels must be numbers or names, got dtype {labels.dtype}"
        )
    values = labels.astype(np.float64)
    if task == "binary" and values.ndim != 1:
        raise UserError(
            f"{source}: {task} needs one label per sample, got labels of shape "
            f"{list(labels.shape)}"
        )
    bad = ~np.isfinite(values)
    if bad.any():
        raise UserError(
            f"{source}: {locate(_first(bad))}: label {values[bad][0]} is not finite"
        )
    if task == "regression":
        bad = np.abs(values) > FLOAT32_MAX
        if bad.any():
            raise UserError(
                f"{source}: {locate(_first(bad))}: target {_number(values[bad][0])} is beyond "
                f"float32 (at most {FLOAT32_MAX:.8g} in size) and would train as infinity; "
                f"scale the targets"
            )
        return torch.from_numpy(values.astype(np.float32)), None, None
    if task == "binary":
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise UserError(
                f"{source}: {locate(_first(bad))}: binary labels must be 0 or 1 (or two names), "
                f"got {_number(values[bad][0])}"
            )
        return torch.from_numpy(values.astype(np.float32)), None, 2
    bad = (values < 0) | (values != np.round(values))
    if bad.any():
        raise UserError(
            f"{source}: {locate(_first(bad))}: classification labels must be class indices "
            f"0, 1, 2, ... (or names), got {_number(values[bad][0])}"
        )
    bad = values > MAX_CLASS_INDEX
    if bad.any():
        raise UserError(
            f"{source}: {locate(_first(bad))}: class index {_number(values[bad][0])} is too "
            f"large: a model's last layer gives at most {MAX_SIZE:,} classes, so class indices "
            f"run from 0 to {MAX_CLASS_INDEX:,}; number the classes 0, 1, 2, ... (or use names)"
        )
    y = torch.from_numpy(values.astype(np.int64))
    return y, None, int(y.max()) + 1 if len(y) else 0


def parse_numbers(texts: list[str]) -> np.ndarray | None:
    """Return `texts` as float64 numbers, or None when any of them is not a number."""
    try:
        return np.array([float(text) for text in texts], dtype=np.float64)
    except ValueError:
        return None


def _encode_names(
    names: np.ndarray, task: str, source: str, locate: Locate
) -> tuple[torch.Tensor, list[str] | None, int | None]:
    if names.ndim != 1:
        raise UserError(
            f"{source}: label names must be one per sample, got shape {list(names.shape)}"
        )
    empty = np.char.str_len(np.char.strip(names)) == 0
    if empty.any():
        raise UserError(f"{source}: {locate(_first(empty))}: the label is empty")
    if task == "regression":
        numbers = parse_numbers(list(names))
        if numbers is None:
            index = next(
                i for i, name in enumerate(names) if parse_numbers([name]) is None
            )
            raise UserError(
                f"{source}: {locate(index)}: regression needs numeric targets, got '{shown(names[index])}'"
            )
        return torch.from_numpy(numbers.astype(np.float32)), None, None
    # np.unique sorts: the documented order of names -> indices
    class_names, indices = np.unique(names, return_inverse=True)
    if task == "binary":
        if len(class_names) != 2:
            raise UserError(
                f"{source}: binary needs exactly two label names, found {len(class_names)}: "
                f"{_listing(class_names)}"
            )
        y = torch.from_numpy(indices.astype(np.float32))
    else:
        y = torch.from_numpy(indices.astype(np.int64))
    return y, [str(name) for name in class_names], len(class_names)


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask.reshape(mask.shape[0], -1).any(axis=1))[0])


def _number(value: float) -> str:
    """Return a label as written: whole numbers without `.0`, huge ones as `1e+300`."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def _listing(names: np.ndarray, limit: int = 8) -> str:
    text = ", ".join(f"'{shown(name)}'" for name in names[:limit])
    return text + (", ..." if len(names) > limit else "")
