"""`predict_checkpoint`: a checkpoint's model applied to new inputs, one CSV row per sample.

The model is rebuilt from the checkpoint alone, and the inputs get the preprocessing its run
fixed (csv encoding and standardization, image normalization); never augmentation.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import torch

from runtime.data.predict_inputs import check_input_shape, read_inputs
from runtime.data.preprocess import apply_preprocessing
from runtime.errors import UserError, shown
from runtime.parallel.device import autocast_for, resolve_device, uses_autocast
from runtime.storage.checkpoint import read_weights
from runtime.training.evaluation import (
    model_from_checkpoint,
    predict,
    spec_from_checkpoint,
    stored_preprocessing,
)


def predict_checkpoint(
    checkpoint: str | os.PathLike,
    input_path: str,
    *,
    device: str | None = None,
    batch_size: int | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """Return the header and rows of the predictions of a checkpoint's model for the samples
    in `input_path` (see runtime.data.predict_inputs for the kinds it reads)."""
    payload = read_weights(checkpoint)
    spec = spec_from_checkpoint(payload, checkpoint)
    training = spec.training_or_default
    if training.task == "reconstruction":
        raise UserError(
            "predict gives classes or values; this model reconstructs its input (task "
            "reconstruction): measure it with nnspec evaluate"
        )
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be 1 or more, got {batch_size}")
    stored = stored_preprocessing(payload, checkpoint, spec)
    x, names = read_inputs(input_path, spec, stored.get("encoding"))
    check_input_shape(x, spec, f"'{shown(input_path)}'")
    torch_device = resolve_device(device or training.device)
    model = model_from_checkpoint(payload, spec, checkpoint).to(torch_device).eval()
    x = apply_preprocessing(x.to(torch_device), stored)
    autocast = autocast_for(
        torch_device, uses_autocast(torch_device, training.amp, payload)
    )
    if batch_size is None:
        outputs = predict(model, x, training.batch_size, autocast).cpu()
    else:  # exactly the size asked for (predict itself batches at least EVAL_BATCH)
        outputs = torch.cat(
            [
                predict(model, x[start : start + batch_size], 1, autocast).cpu()
                for start in range(0, len(x), batch_size)
            ]
        )
    return prediction_table(
        outputs, names, training, payload.get("class_names"), payload.get("num_classes")
    )


def prediction_table(
    outputs: torch.Tensor,
    names: list[str],
    training,
    class_names: list[str] | None,
    num_classes: int | None,
) -> tuple[list[str], list[list[Any]]]:
    """Return (header, rows): each sample's name, prediction and class probabilities
    (classification, binary) or predicted values (regression)."""
    task = training.task
    if task == "regression":
        values = outputs.reshape(len(outputs), -1)
        target = getattr(training.data, "target", None)
        if isinstance(target, list) and len(target) == values.shape[1]:
            columns = [str(name) for name in target]
        elif values.shape[1] == 1:
            columns = ["prediction"]
        else:
            columns = [f"prediction_{i}" for i in range(values.shape[1])]
        rows = [[name, *map(_number, row)] for name, row in zip(names, values.tolist())]
        return ["sample", *columns], rows
    if outputs.dim() > 2 or (
        task == "binary" and outputs.reshape(len(outputs), -1).shape[1] != 1
    ):
        raise UserError(
            f"predict gives one class per sample; this model gives scores of shape "
            f"{list(outputs.shape[1:])} (a class per position): use nnspec evaluate"
        )
    if task == "binary":
        p1 = torch.sigmoid(outputs.reshape(len(outputs)))
        probabilities = torch.stack([1 - p1, p1], dim=1)
    else:
        probabilities = torch.softmax(outputs, dim=1)
    classes = probabilities.shape[1]
    labels = list(class_names or [])[:classes]
    labels += [str(i) for i in range(len(labels), classes)]
    rows = [
        [name, labels[int(row.argmax())], *map(_number, row.tolist())]
        for name, row in zip(names, probabilities)
    ]
    return ["sample", "prediction", *(f"p_{label}" for label in labels)], rows


def table_text(header: list[str], rows: list[list[Any]]) -> str:
    """Return the table as CSV text (one header row, then one row per sample)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _number(value: float) -> str:
    return f"{value:.6g}"
