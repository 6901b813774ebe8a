"""Loss and metrics by task, summed on the device; the metrics.csv file.

Per batch, the loop adds `loss * targets` and `metric_sum` into tensors that stay on the device
and reads them once per epoch, so no batch waits on a `.item()`. Epoch values are sums divided
by the number of target values (samples; samples x positions for per-position classification;
samples x outputs for multi-output regression; samples x input values for reconstruction).

| task           | loss               | metric    | model output                           |
| -------------- | ------------------ | --------- | -------------------------------------- |
| classification | cross-entropy      | accuracy  | (N, classes) or (N, classes, *P) logits |
| binary         | BCE with logits    | accuracy  | (N, 1) or (N,) logits                   |
| regression     | mean squared error | MAE       | (N, k) or (N,) values                   |
| reconstruction | mean squared error | MAE       | the input's shape, or its flattened size |

Per-position classification (segmentation, tagging) has labels (N, *P) and scores (N, C, *P);
its loss and accuracy are means over every position.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.nn import functional as F

from runtime.storage.atomic import write_bytes_atomically
from runtime.tasks import metric_name

BASE_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]
REGRESSION_COLUMNS = BASE_COLUMNS + ["train_mae", "val_mae"]


@dataclass(frozen=True)
class TaskMetrics:
    """The loss and the metric of one task; `metric` names the column it fills.

    `label_smoothing` (classification) and `class_weights` (classification and binary: one
    weight per class, each sample's loss times its class's) change the loss, the same for
    training and validation; runtime/training/criterion.py makes them from a training section.
    """

    task: str
    label_smoothing: float = 0.0
    class_weights: Tensor | None = field(default=None, compare=False)

    @property
    def metric(self) -> str:
        """Return `mae` for regression and reconstruction, `accuracy` otherwise."""
        return metric_name(self.task)

    @property
    def reconstructs(self) -> bool:
        """Return whether the target is the input itself (task reconstruction)."""
        return self.task == "reconstruction"

    def columns(self) -> list[str]:
        """Return the metrics.csv columns of this task (MAE tasks add train_mae, val_mae)."""
        return REGRESSION_COLUMNS if self.metric == "mae" else BASE_COLUMNS

    def _aligned(self, output: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """Return (output, target) shaped alike where the task allows two layouts."""
        if self.reconstructs:
            # an output of the flattened input's size meets the input flattened, as `flatten`
            # orders it (the spec's validation allows no other layout)
            if output.dim() == 2 and target.dim() > 2:
                return output, target.flatten(1)
            return output, target
        # (N, 1) outputs meet (N,) targets in binary and single-value regression
        if output.dim() == target.dim() + 1 and output.shape[-1] == 1:
            return output.squeeze(-1), target
        return output, target

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Return the mean loss of a batch (the value to backpropagate)."""
        weights = self.class_weights
        if self.task == "classification":
            # (N, C) against (N,), or (N, C, *P) against (N, *P): the mean over every position
            if weights is None:
                return F.cross_entropy(
                    output, target, label_smoothing=self.label_smoothing
                )
            losses = F.cross_entropy(
                output, target, reduction="none", label_smoothing=self.label_smoothing
            )
            return (losses * weights.to(losses.device)[target]).mean()
        output, target = self._aligned(output, target)
        if self.task == "binary":
            if weights is None:
                return F.binary_cross_entropy_with_logits(output.float(), target)
            losses = F.binary_cross_entropy_with_logits(
                output.float(), target, reduction="none"
            )
            return (losses * weights.to(losses.device)[target.long()]).mean()
        return F.mse_loss(output.float(), target.float())

    def metric_sum(self, output: Tensor, target: Tensor) -> Tensor:
        """Return the batch's summed metric as a device tensor, without syncing.

        Accuracy sums correct predictions (at every position); MAE sums absolute errors over
        every target value.
        """
        output = output.detach()
        if self.task == "classification":
            return (output.argmax(dim=1) == target).sum()
        output, target = self._aligned(output, target)
        if self.task == "binary":
            return ((output > 0) == (target > 0.5)).sum()
        return (output.float() - target.float()).abs().sum()

    def check_output(
        self, output: Tensor, target: Tensor, num_classes: int | None
    ) -> str | None:
        """Return why the model's output cannot serve this task's targets, or None when it can."""
        shape = list(output.shape[1:])
        if self.task == "classification":
            return _classification_problem(output, target, num_classes)
        output, aligned = self._aligned(output, target)
        if output.shape == aligned.shape:
            return None
        if self.reconstructs:
            size = math.prod(target.shape[1:])
            return (
                f"reconstruction needs an output of the input's shape "
                f"(N, {_dims(list(target.shape[1:]))}) or its {size} values flattened "
                f"(N, {size}); the model gives (N, {_dims(shape)})"
            )
        want = (
            "(N, 1) or (N,)"
            if target.dim() == 1
            else str(tuple(["N", *target.shape[1:]]))
        )
        return f"{self.task} needs an output of shape {want}; the model gives (N, {_dims(shape)})"


def _classification_problem(
    output: Tensor, target: Tensor, num_classes: int | None
) -> str | None:
    """Return why `output` cannot score the classes of `target`, or None when it can."""
    shape = list(output.shape[1:])
    positions = list(target.shape[1:])  # [] for one label per sample
    if not positions and output.dim() != 2:
        return (
            f"classification needs one score per class, shape (N, classes); the model gives "
            f"(N, {_dims(shape)}) (scores at each position need labels of shape "
            f"(N, {_dims(shape[1:])}), one class per position)"
        )
    if positions and (output.dim() != target.dim() + 1 or shape[1:] != positions):
        return (
            f"the labels hold one class per position, shape (N, {_dims(positions)}), so the "
            f"model must give one score per class at each position, (N, classes, "
            f"{_dims(positions)}); it gives (N, {_dims(shape)})"
        )
    if num_classes is not None and shape[0] < num_classes:
        if positions:
            return (
                f"the data has {num_classes} classes but the model gives {shape[0]} scores at "
                f"each position (dimension 1 of its output); make the layer that gives them "
                f"{num_classes} channels"
            )
        return (
            f"the data has {num_classes} classes but the model gives {shape[0]} scores; "
            f"make the last layer's out_features {num_classes}"
        )
    return None


def _dims(shape: list[int]) -> str:
    return ", ".join(str(n) for n in shape)


def epoch_row(
    *,
    epoch: int,
    task: str,
    train: tuple[float, float],
    val: tuple[float, float],
    lr: float,
    seconds: float,
) -> dict:
    """Return one metrics.csv row as a dict: losses and the task's metric for train and val."""
    row: dict = {
        "epoch": epoch,
        "train_loss": train[0],
        "train_accuracy": None,
        "val_loss": val[0],
        "val_accuracy": None,
        "lr": lr,
        "seconds": seconds,
    }
    if metric_name(task) == "mae":
        row["train_mae"], row["val_mae"] = train[1], val[1]
    else:
        row["train_accuracy"], row["val_accuracy"] = train[1], val[1]
    return row


def metrics_csv(rows: list[dict], task: str) -> str:
    """Return metrics.csv text: a header and one line per epoch, empty cells for None."""
    columns = TaskMetrics(task).columns()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(name)) for name in columns])
    return out.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def write_metrics_csv(path: str | os.PathLike, rows: list[dict], task: str) -> None:
    """Replace `path` with the metrics so far, atomically; without fsync, as the checkpoints carry
    the same rows and a resume rewrites this file from them."""
    write_bytes_atomically(path, metrics_csv(rows, task).encode("utf-8"), durable=False)


def device_zero(device: torch.device) -> Tensor:
    """Return a zero accumulator on `device`: float64 (exact enough for long sums) but on MPS."""
    dtype = torch.float32 if device.type == "mps" else torch.float64
    return torch.zeros((), dtype=dtype, device=device)
