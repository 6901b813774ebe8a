"""`evaluate_checkpoint`: rebuild a model from a checkpoint alone and measure it on a data split."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from compiler import SpecError, build_sequential, load_spec
from compiler.formatting import plural
from compiler.spec import stored_spec_data
from runtime.data.load import load_spec_data
from runtime.data.preprocess import NO_PREPROCESSING, check_preprocessing
from runtime.errors import UserError
from runtime.parallel.device import (
    autocast_for,
    describe_device,
    resolve_device,
    uses_autocast,
)
from runtime.storage.checkpoint import read_weights
from runtime.storage.payload import (
    check_common_entries,
    check_spec_digest,
    check_weights_fit,
)
from runtime.tasks import metric_name
from runtime.training.batches import EVAL_BATCH, split_batches
from runtime.training.criterion import training_criterion
from runtime.training.metrics import TaskMetrics

SPLITS = ("train", "val", "test")


def spec_from_checkpoint(payload: dict[str, Any], path: str | os.PathLike):
    """Return the Spec a checkpoint carries, checked against its sha256; raise UserError.

    The sha256 is checked on the data as stored, so a checkpoint of an earlier nnspec, whose
    training sections still list arguments that did not apply, is read too (they are dropped).
    """
    source = Path(path)
    # a safetensors file's metadata comes here too
    check_common_entries(payload, source)
    check_spec_digest(payload, source)
    try:
        spec = load_spec(stored_spec_data(payload["spec"]))
    except SpecError as exc:
        first = exc.problems[0] if exc.problems else None
        raise UserError(
            f"{path}: the spec inside is not valid for this nnspec "
            f"({first.path}: {first.message})"
            if first
            else f"{path}: invalid spec inside"
        ) from None
    return spec


def stored_preprocessing(payload: dict[str, Any], path, spec) -> dict[str, Any] | None:
    """Return the preprocessing a checkpoint keeps, checked; none at all for a checkpoint of
    an nnspec before it, which trained on its data as read."""
    if "preprocessing" not in payload or payload["preprocessing"] is None:
        return dict(NO_PREPROCESSING)
    stored = payload["preprocessing"]
    check_preprocessing(stored, Path(path))
    return stored


def model_from_checkpoint(payload: dict[str, Any], spec, path) -> torch.nn.Module:
    """Return the spec's model (Sequential form: same state_dict keys as the class) with the weights."""
    model = build_sequential(spec)
    check_weights_fit(payload["model"], model, Path(path))
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise UserError(
            f"{path} is damaged: its weights do not fit its spec "
            f"({str(exc).splitlines()[0][:200]})"
        ) from None
    return model


def evaluate_checkpoint(
    path: str | os.PathLike, split: str = "val", device: str | None = None
) -> dict[str, Any]:
    """Return loss, accuracy or MAE, and (classification, binary) the confusion matrix on `split`.

    Per-position classification counts every position (accuracy and confusion matrix);
    reconstruction reports its loss (mean squared error) and MAE against the input.

    The data split is rebuilt from the spec inside the checkpoint, with the same seed, so `val`
    is the very validation set the run was watched on. It is measured batch by batch, as
    training's validation is: a split streamed from disk is never held whole.
    """
    if split not in SPLITS:
        raise UserError(f"--split can be {', '.join(SPLITS)}; got {split!r}")
    payload = read_weights(path)
    spec = spec_from_checkpoint(payload, path)
    training = spec.training_or_default
    torch_device = resolve_device(device or training.device)

    data = load_spec_data(spec, stored=stored_preprocessing(payload, path, spec))
    x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    if x is None:
        raise UserError(
            f"{data.description.split(':')[0]} has no test split; use --split val, or set "
            "training.data.test_fraction in the spec (for digits, csv and npz)"
        )
    model = model_from_checkpoint(payload, spec, path).to(torch_device).eval()
    # the run's criterion (label smoothing, class weights), so `loss` on val is its val_loss
    task = training_criterion(training, data, torch_device)
    in_autocast = uses_autocast(torch_device, training.amp, payload)
    autocast = autocast_for(torch_device, in_autocast)
    batches = split_batches(
        x,
        y,
        reconstructs=task.reconstructs,
        batch_size=training.batch_size,
        device=torch_device,
        workers=data.workers,
    )
    measured = _measure(model, batches, task, autocast, data.num_classes)
    n = measured.targets
    result: dict[str, Any] = {
        "checkpoint": str(path),
        "name": spec.name,
        "epoch": int(payload["epoch"]),
        "split": split,
        "samples": len(x),
        "task": training.task,
        "device": describe_device(torch_device, autocast=in_autocast),
        "loss": measured.loss_sum / n,
        task.metric: measured.metric_sum / n,
    }
    if training.task in ("classification", "binary"):
        classes = measured.classes
        result["class_names"] = data.class_names or [str(i) for i in range(classes)]
        result["confusion"] = measured.confusion
    return result


@dataclass
class _Measured:
    """Sums over the batches of a split: loss x targets, metric, targets, confusion counts."""

    loss_sum: float = 0.0
    metric_sum: float = 0.0
    targets: int = 0
    classes: int = 0
    confusion: list[list[int]] | None = None


def _measure(model, batches, task: TaskMetrics, autocast, num_classes) -> _Measured:
    """Return the sums of `model` over `batches` (x, y on the device); raise UserError when
    the model's output does not fit the task (checked on the first batch's first two).
    """
    measured = _Measured()
    loss_sum = metric_sum = None
    with torch.inference_mode():
        for xb, yb in batches:
            with autocast:
                outputs = model(xb).float()
            if measured.targets == 0:
                problem = task.check_output(outputs[:2], yb[:2], num_classes)
                if problem:
                    raise UserError(problem)
            batch_loss = task.loss(outputs, yb) * yb.numel()
            batch_metric = task.metric_sum(outputs, yb)
            loss_sum = batch_loss if loss_sum is None else loss_sum + batch_loss
            metric_sum = (
                batch_metric if metric_sum is None else metric_sum + batch_metric
            )
            measured.targets += yb.numel()
            if task.task in ("classification", "binary"):
                _count_confusion(measured, outputs, yb, task.task, num_classes)
    if loss_sum is None:
        raise UserError("the split holds no sample to evaluate")
    measured.loss_sum, measured.metric_sum = float(loss_sum), float(metric_sum)
    return measured


def _count_confusion(measured: _Measured, outputs, y, task: str, num_classes) -> None:
    classes = num_classes or int(outputs.shape[1])
    counts = confusion_matrix(outputs, y, task, classes)
    measured.classes = len(counts)
    if measured.confusion is None:
        measured.confusion = counts
        return
    measured.confusion = [
        [a + b for a, b in zip(old, new)]
        for old, new in zip(measured.confusion, counts)
    ]


def predict(
    model: torch.nn.Module, x: torch.Tensor, batch_size: int, autocast
) -> torch.Tensor:
    """Return the model's float32 outputs for all of `x`, in eval mode, in large batches."""
    size = max(batch_size, EVAL_BATCH)
    parts = []
    with torch.inference_mode():
        for start in range(0, len(x), size):
            with autocast:
                parts.append(model(x[start : start + size]).float())
    return torch.cat(parts)


def confusion_matrix(
    outputs: torch.Tensor, y: torch.Tensor, task: str, classes: int
) -> list[list[int]]:
    """Return counts[true][predicted] as nested lists."""
    if task == "binary":
        scores = outputs.reshape(len(y))
        predicted, truth, classes = (scores > 0).long(), (y > 0.5).long(), 2
    else:  # one class per sample, or per position: every position counts once
        predicted, truth = outputs.argmax(dim=1).flatten(), y.long().flatten()
        classes = max(classes, int(outputs.shape[1]))
    counts = torch.bincount(truth * classes + predicted, minlength=classes * classes)
    return counts.reshape(classes, classes).tolist()


def format_evaluation(result: dict[str, Any]) -> str:
    """Return the evaluation as text: the numbers, then the confusion matrix (rows: true class)."""
    metric = metric_name(result["task"])
    lines = [
        f"{result['name']} from {result['checkpoint']} (epoch {result['epoch']}) on the "
        f"{result['split']} split: {plural(result['samples'], 'sample')}, {result['device']}",
        f"loss {result['loss']:.4f}   {metric} {result[metric]:.4f}",
    ]
    matrix = result.get("confusion")
    if matrix is not None and len(matrix) <= 30:
        names = [str(n)[:8] for n in result["class_names"]]
        names += [str(i) for i in range(len(names), len(matrix))]
        width = max(
            5, max(len(n) for n in names), len(str(max(max(r) for r in matrix)))
        )
        lines.append("confusion matrix (rows: true class, columns: predicted):")
        lines.append(" " * (width + 1) + " ".join(n.rjust(width) for n in names))
        for name, row in zip(names, matrix):
            lines.append(
                name.rjust(width) + " " + " ".join(str(c).rjust(width) for c in row)
            )
    elif matrix is not None:
        lines.append(
            f"confusion matrix: {plural(len(matrix), 'class', 'classes')}, see --json"
        )
    return "\n".join(lines)
