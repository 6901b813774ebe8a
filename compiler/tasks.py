"""Checks that tie the training section to the model: the task, the data set and the input.

They need the model's output shape and the input's dtype, so they run after shape inference
(`load.validate_document`); checks inside the training section alone live in `training.py`.
Pure Python: `nnspec validate` answers without torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import Problem, format_path
from .formatting import format_shape

if TYPE_CHECKING:
    from .spec import Spec

# data sets that ship float pixel values in [0, 1], one label per image
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10", "image_folder")

LineOf = Callable[[tuple], "int | None"]


def reconstruction_target_shape(
    input_shape: tuple[int, ...], output: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Return the shape the input takes as the target of `output`, or None when it cannot.

    The target is the input itself, or the input flattened (as `flatten` orders it) when the
    model ends in a vector of as many values: an MLP autoencoder on `[1, 8, 8]` gives `[64]`.
    """
    if tuple(output) == tuple(input_shape):
        return tuple(input_shape)
    if len(output) == 1 and output[0] == math.prod(input_shape):
        return tuple(output)
    return None


def task_problems(
    spec: Spec, output: tuple[int, ...], line_of: LineOf
) -> list[Problem]:
    """Return the problems of a spec whose training cannot work with its model or input."""
    training = spec.training
    if training is None:
        return []
    problems: list[Problem] = []

    def refuse(path: tuple, message: str) -> None:
        problems.append(
            Problem(format_path(path), message, line_of(path) or line_of(path[:-1]))
        )

    ids = spec.input_dtype == "int64"
    shape = tuple(spec.input)
    data = training.data
    if ids and data.dataset in IMAGE_DATASETS:
        refuse(
            ("training", "data", "dataset"),
            f"{data.dataset} gives float pixel values, but the input holds int64 ids "
            "(`input.dtype`); read ids from an npz file of integers or a csv file, or drop "
            "`dtype: int64`",
        )
    if data.dataset == "image_folder":
        problems.extend(image_folder_problems(spec, shape, line_of))
    if ids and data.noise > 0:
        refuse(
            ("training", "data", "noise"),
            f"noise {data.noise:g} would be added to the input, which holds int64 ids; noise "
            "applies to float inputs only: remove it",
        )
    if training.task == "reconstruction":
        if ids:
            refuse(
                ("training", "task"),
                "reconstruction trains the output against the input with mean squared error, "
                "which int64 ids cannot be; use a float32 input",
            )
        elif reconstruction_target_shape(shape, output) is None:
            refuse(
                ("training", "task"),
                f"reconstruction trains the output against the input, but the model gives "
                f"{format_shape(output)} for an input of {format_shape(shape)}; end the model with the "
                f"input's shape {format_shape(shape)} (or the {math.prod(shape)} values of the "
                "flattened input)",
            )
    return problems


def image_folder_problems(
    spec: Spec, shape: tuple[int, ...], line_of: LineOf
) -> list[Problem]:
    """Return the problems of an image folder's spec: an input that cannot hold an image
    (`[1 or 3, H, W]`), or a task that class folders give no target for (regression)."""
    problems = []
    if spec.input_dtype == "float32" and (len(shape) != 3 or shape[0] not in (1, 3)):
        path = ("input",)
        problems.append(
            Problem(
                format_path(path),
                f"image_folder reads images as [channels, height, width] with 1 channel "
                f"(grayscale) or 3 (RGB), but the input is {format_shape(shape)}; write e.g. "
                f"input: [3, 32, 32] (images are resized to it)",
                line_of(path),
            )
        )
    if spec.training.task == "regression":
        path = ("training", "task")
        problems.append(
            Problem(
                format_path(path),
                "image_folder labels each image with its class folder, which is no number "
                "to regress; use task classification (or binary for two classes)",
                line_of(path),
            )
        )
    return problems
