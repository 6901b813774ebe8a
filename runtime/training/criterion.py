"""The training criterion of a run: its task's loss with label smoothing and class weights.

Class weights follow Keras's `class_weight`: each sample's loss is multiplied by its class's
weight and the batch's loss is the mean over its samples (torch's `weight=` divides by the sum of
the weights instead). So batch sums add up exactly, across batches and across DDP processes, and
`balanced` weights, which average 1 over the training split, keep the loss on its usual scale.
"""

from __future__ import annotations

import torch

from runtime.errors import UserError
from runtime.training.metrics import TaskMetrics


def training_criterion(training, data, device: torch.device) -> TaskMetrics:
    """Return the loss and metric of a run: its task's, with the training section's label
    smoothing and class weights (on `device`); raise UserError for weights that do not fit
    the data's classes."""
    weights = class_weights(training, data)
    return TaskMetrics(
        training.task,
        label_smoothing=training.label_smoothing,
        class_weights=(
            torch.tensor(weights, dtype=torch.float32, device=device)
            if weights is not None
            else None
        ),
    )


def class_weights(training, data) -> list[float] | None:
    """Return the weight of each class that the loss uses (None: unweighted).

    `balanced` gives class c the weight n / (k * n_c), n the training split's labels (every
    position counts for per-position labels), k the classes and n_c the labels of class c,
    as scikit-learn's compute_class_weight("balanced"). A list is checked against the classes.
    """
    setting = training.class_weights
    if setting is None:
        return None
    name = data.description.split(":")[0]
    classes = _class_count(training.task, data)
    if setting != "balanced":
        if len(setting) != classes:
            names = f" ({', '.join(data.class_names)})" if data.class_names else ""
            raise UserError(
                f"training.class_weights gives {len(setting)} weights, but {name} has "
                f"{classes} classes{names}; give one weight per class, in class order"
            )
        return [float(w) for w in setting]
    labels = data.y_train.long().flatten()
    counts = torch.bincount(labels, minlength=classes)[:classes].tolist()
    missing = [c for c, count in enumerate(counts) if count == 0]
    if missing:
        shown = data.class_names[missing[0]] if data.class_names else missing[0]
        raise UserError(
            f"training.class_weights: balanced: class {shown} has no sample in the training "
            f"split of {name}, so it cannot be weighted by its share; give the weights as a "
            f"list, one per class"
        )
    total = sum(counts)
    return [total / (classes * count) for count in counts]


def _class_count(task: str, data) -> int:
    """Return the number of classes the labels of `data` can hold (2 for binary)."""
    if task == "binary":
        return 2
    if data.num_classes is not None:
        return int(data.num_classes)
    return int(data.y_train.max()) + 1 if data.y_train.numel() else 0
