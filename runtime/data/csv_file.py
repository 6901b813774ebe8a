"""A CSV file with a header row: numeric feature columns and one label column (`target`)."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import torch

from runtime.data.csv_encoding import (
    FeatureEncoding,
    detect_encoding,
    one_hot_columns,
)
from runtime.data.files import did_you_mean, file_error, listing, open_data_file
from runtime.data.labels import encode_labels, parse_numbers
from runtime.data.samples import Samples
from runtime.errors import UserError, shown

FLOAT32_MAX = float(np.finfo(np.float32).max)  # samples are float32: larger is infinity


def read_csv(
    path: str,
    *,
    target: str | int | list[str | int] | None,
    features: list[str] | None,
    input_shape: list[int],
    task: str,
    dtype: str = "float32",
    encoding: FeatureEncoding | None = None,
) -> Samples:
    """Return the file's feature columns as (N, *input_shape) samples and its target as labels.

    Labels that are all numbers are used as they are; otherwise they are names, mapped to class
    indices in sorted order and kept in `class_names`. A list of targets (regression) gives
    float32 labels (N, k). Features are float32, a column of names one-hot encoded in place
    (csv_encoding; `encoding` is a checkpoint's, used instead of the file's own), or int64 ids
    when `dtype` is int64 (then every cell must be a whole number). For reconstruction the
    target, when one is named, is left out of the features and not read. The Samples carry the
    encoding used (`encoding`), which the checkpoint keeps.
    """
    header, lines, rows = _read_rows(path)
    targets = [] if target is None else target if isinstance(target, list) else [target]
    target_indices = [_target_index(path, header, name) for name in targets]
    feature_indices = _feature_indices(path, header, features, target_indices)
    size = math.prod(input_shape)
    if not feature_indices:
        raise UserError(
            f"{shown(path)} has no feature columns: its only columns are the target "
            f"{listing([header[i] for i in target_indices])}; add the columns the model reads"
            if target_indices
            else f"{shown(path)} has no columns to read"
        )
    if encoding is not None:  # a checkpoint's: the columns it was trained on, by name
        feature_indices = [
            _column_index(path, header, name, "feature column")
            for name in encoding.features
        ]
    elif dtype == "int64":  # ids are never names
        encoding = FeatureEncoding([header[i] for i in feature_indices])
    else:
        encoding = detect_encoding(path, header, lines, rows, feature_indices)
    if encoding.width != size:
        _raise_width(path, header, features, target_indices, encoding, input_shape)
    x, _ = encode_rows(
        path,
        header=header,
        lines=lines,
        rows=rows,
        indices=feature_indices,
        encoding=encoding,
        dtype=dtype,
    )
    samples = torch.from_numpy(x).reshape(len(rows), *input_shape)

    def locate(index: int) -> str:
        return f"line {lines[index]}"

    if task == "reconstruction":
        return Samples(
            name=path, x=samples, y=None, locate=locate, encoding=encoding.as_data()
        )
    if len(target_indices) > 1:
        y = _numeric_targets(path, header, lines, rows, target_indices)
        return Samples(
            name=path, x=samples, y=y, locate=locate, encoding=encoding.as_data()
        )
    target_index = target_indices[0]
    target_name = header[target_index]
    labels = [row[target_index].strip() for row in rows]
    numbers = parse_numbers(labels)
    y, class_names, num_classes = encode_labels(
        numbers if numbers is not None else np.array(labels, dtype=str),
        task,
        f"{shown(path)}, column '{target_name}'",
        locate,
    )
    return Samples(
        name=path,
        x=samples,
        y=y,
        class_names=class_names,
        num_classes=num_classes,
        locate=locate,
        encoding=encoding.as_data(),
    )


def read_csv_features(
    path: str, encoding: FeatureEncoding, input_shape: list[int], dtype: str = "float32"
) -> tuple[torch.Tensor, list[int], dict[str, list[str]]]:
    """Return the samples of a csv file to predict on: its columns named in `encoding` (any
    other column, the target among them, is ignored), encoded as in training; also each
    sample's line and, by column, the names the vocabulary lacks (encoded as all zeros).
    """
    header, lines, rows = _read_rows(path)
    missing = [name for name in encoding.features if name not in header]
    if missing:
        raise UserError(
            f"{shown(path)} lacks the feature column{'s' * (len(missing) > 1)} "
            f"{listing(missing)} that the model was trained on; its columns are "
            f"{listing(header)}"
        )
    indices = [
        _column_index(path, header, name, "feature column")
        for name in encoding.features
    ]
    x, unseen = encode_rows(
        path,
        header=header,
        lines=lines,
        rows=rows,
        indices=indices,
        encoding=encoding,
        dtype=dtype,
    )
    return torch.from_numpy(x).reshape(len(rows), *input_shape), lines, unseen


def encode_rows(
    path: str,
    *,
    header: list[str],
    lines: list[int],
    rows: list[list[str]],
    indices: list[int],
    encoding: FeatureEncoding,
    dtype: str = "float32",
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """Return the feature columns `indices` encoded as (N, width) (float32, or int64 ids) and,
    by categorical column, the names its vocabulary lacks."""
    if not encoding.categories:
        return (
            _parse_features(
                path,
                header=header,
                lines=lines,
                rows=rows,
                indices=indices,
                dtype=dtype,
            ),
            {},
        )
    numeric = [i for i in indices if header[i] not in encoding.categories]
    values = _parse_features(
        path, header=header, lines=lines, rows=rows, indices=numeric, dtype=dtype
    )
    blocks, unseen, taken = [], {}, 0
    for index in indices:
        vocabulary = encoding.categories.get(header[index])
        if vocabulary is None:
            blocks.append(values[:, taken : taken + 1])
            taken += 1
            continue
        block, names = one_hot_columns([row[index] for row in rows], vocabulary)
        blocks.append(block)
        if names:
            unseen[header[index]] = sorted(set(names))
    return np.concatenate(blocks, axis=1), unseen


def _raise_width(
    path: str,
    header: list[str],
    features: list[str] | None,
    target_indices: list[int],
    encoding: FeatureEncoding,
    input_shape: list[int],
) -> None:
    count, width = len(encoding.features), encoding.width
    if features:
        which = "listed in features"
    elif not target_indices:
        which = "every column"
    else:
        which = f"all but the target {listing([header[i] for i in target_indices])}"
    values = (
        f", {width} values once the columns of names are one-hot encoded "
        f"({encoding.expansions()})"
        if encoding.categories
        else ""
    )
    raise UserError(
        f"{shown(path)} has {count} feature columns ({which}){values}, but the spec's input "
        f"{input_shape} holds {math.prod(input_shape)} values per sample; set input: [{width}] "
        f"or list the columns to use in training.data.features"
    )


def _numeric_targets(
    path: str,
    header: list[str],
    lines: list[int],
    rows: list[list[str]],
    indices: list[int],
) -> torch.Tensor:
    """Return the target columns `indices` as float32 (N, k); raise for a cell not a number."""
    y = np.empty((len(rows), len(indices)), dtype=np.float32)
    for column, index in enumerate(indices):
        for row_number, row in enumerate(rows):
            text = row[index].strip()
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
                raise UserError(
                    f"{shown(path)}:{lines[row_number]}: target column '{shown(header[index])}' "
                    f"holds '{shown(text)}'; regression targets must be finite numbers"
                )
            y[row_number, column] = value
    return torch.from_numpy(y)


def _read_rows(path: str) -> tuple[list[str], list[int], list[list[str]]]:
    """Return the header (names stripped), each data row's line number, and the data rows."""
    rows, lines = [], []
    try:
        # utf-8-sig: a byte-order mark written by spreadsheet programs is not part of a name
        binary = open_data_file(path, "csv file")
        with io.TextIOWrapper(binary, newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            header = None
            for row in reader:
                if not row:  # a blank line
                    continue
                if header is None:
                    header = [name.strip() for name in row]
                    continue
                if len(row) != len(header):
                    raise UserError(
                        f"{shown(path)}:{reader.line_num}: this row has {len(row)} fields, but the "
                        f"header has {len(header)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except OSError as exc:
        raise file_error(path, "csv file", exc) from None
    except UnicodeDecodeError:
        raise UserError(f"csv file '{shown(path)}' is not UTF-8 text") from None
    except csv.Error as exc:
        raise UserError(
            f"{shown(path)}:{reader.line_num}: not valid CSV: {exc}"
        ) from None
    if header is None:
        raise UserError(
            f"csv file '{shown(path)}' is empty: expected a header row naming the columns, then one "
            f"row per sample"
        )
    if parse_numbers(header) is not None:
        raise UserError(
            f"{shown(path)}:1: the first row must be a header naming the columns, but it holds only "
            f"numbers"
        )
    if not rows:
        raise UserError(f"csv file '{shown(path)}' has a header but no data rows")
    return header, lines, rows


def _target_index(path: str, header: list[str], target: str | int) -> int:
    """Return the index of the label column, named or numbered by `target`."""
    if isinstance(target, int):
        if target >= len(header):
            raise UserError(
                f"{shown(path)}: target column {target} does not exist: the file has {len(header)} "
                f"columns, numbered from 0"
            )
        return target
    return _column_index(path, header, target, "target column")


def _feature_indices(
    path: str, header: list[str], features: list[str] | None, target_indices: list[int]
) -> list[int]:
    """Return the indices of the feature columns: those named, or all but the targets."""
    if features is None:
        return [index for index in range(len(header)) if index not in target_indices]
    indices = [_column_index(path, header, name, "feature column") for name in features]
    for target_index in target_indices:
        if target_index in indices:
            raise UserError(
                f"{shown(path)}: column '{shown(header[target_index])}' is the target; it cannot also be a feature"
            )
    return indices


def _column_index(path: str, header: list[str], name: str, role: str) -> int:
    """Return the index of the column called `name`, which must occur once in the header."""
    found = [index for index, column in enumerate(header) if column == name]
    if not found:
        raise UserError(
            f"{shown(path)}: no {role} '{shown(name)}'{did_you_mean(name, header)}; the columns are "
            f"{listing(header)}"
        )
    if len(found) > 1:
        numbers = ", ".join(str(index) for index in found)
        raise UserError(
            f"{shown(path)}: the header has {len(found)} columns named '{shown(name)}' (columns {numbers}, "
            f"numbered from 0); rename them apart"
        )
    return found[0]


def _parse_features(
    path: str,
    *,
    header: list[str],
    lines: list[int],
    rows: list[list[str]],
    indices: list[int],
    dtype: str = "float32",
) -> np.ndarray:
    """Return the feature cells as float32 (N, F), or int64 ids for `dtype` int64; raise for the
    first cell that is no number (no whole number for ids)."""
    if dtype == "int64":
        return _parse_ids(path, header, lines, rows, indices)
    x = np.empty((len(rows), len(indices)), dtype=np.float32)
    for row_number, row in enumerate(rows):
        try:
            values = [float(row[index]) for index in indices]
        except ValueError:
            values = None
        if values is None or not all(abs(v) <= FLOAT32_MAX for v in values):
            _raise_bad_cell(path, header, lines[row_number], row, indices)
        x[row_number] = values
    return x


def _parse_ids(
    path: str,
    header: list[str],
    lines: list[int],
    rows: list[list[str]],
    indices: list[int],
) -> np.ndarray:
    """Return the feature cells as int64 ids (N, F); raise for the first that is not one."""
    x = np.empty((len(rows), len(indices)), dtype=np.int64)
    for row_number, row in enumerate(rows):
        for column, index in enumerate(indices):
            text = row[index].strip()
            try:
                value = int(text)
            except ValueError:
                what = (
                    "is empty"
                    if not text
                    else f"holds '{shown(text)}', which is not a whole number"
                )
                raise UserError(
                    f"{shown(path)}:{lines[row_number]}: column '{shown(header[index])}' {what}; the spec's "
                    f"input holds int64 ids (input.dtype), written as whole numbers such as 0, "
                    f"1, 2"
                ) from None
            if not -(2**63) <= value < 2**63:
                raise UserError(
                    f"{shown(path)}:{lines[row_number]}: column '{shown(header[index])}' holds id {text}, "
                    f"which does not fit in int64"
                )
            x[row_number, column] = value
    return x


def _raise_bad_cell(
    path: str, header: list[str], line: int, row: list[str], indices: list[int]
):
    for index in indices:
        text = row[index].strip()
        if not text:
            raise UserError(
                f"{shown(path)}:{line}: column '{shown(header[index])}' is empty; features must be numbers"
            )
        try:
            value = float(text)
        except ValueError:
            raise UserError(
                f"{shown(path)}:{line}: column '{shown(header[index])}' holds '{shown(text)}', which is not a "
                f"number (a column is read as names, one-hot encoded, only when none of its cells "
                f"is a number)"
            ) from None
        if not math.isfinite(value):
            raise UserError(
                f"{shown(path)}:{line}: column '{shown(header[index])}' holds '{shown(text)}'; features must be "
                f"finite numbers"
            )
        if abs(value) > FLOAT32_MAX:
            raise UserError(
                f"{shown(path)}:{line}: column '{shown(header[index])}' holds '{shown(text)}', which is beyond "
                f"float32 (at most {FLOAT32_MAX:.8g} in size) and would read as infinity; "
                f"scale the column"
            )
