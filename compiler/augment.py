"""Checks of `training.augment` against the spec's input: it applies to images `[C, H, W]` only."""

from __future__ import annotations

from .errors import Problem, format_path


def augment_problems(
    training, input_shape: list[int], input_dtype: str, line_of
) -> list[Problem]:
    """Return the problems of a training section whose `augment` does not fit the input: not an
    image `[C, H, W]` of float values, statistics of another channel count, or a crop padding
    larger than the image itself."""
    augment = training.augment
    if augment is None:
        return []
    path = ("training", "augment")
    shape = list(input_shape)
    if len(shape) != 3 or input_dtype != "float32":
        what = (
            f"int64 ids (input.dtype {input_dtype})"
            if input_dtype != "float32"
            else f"of shape {shape}"
        )
        return [
            _problem(
                path,
                f"augment is for images [channels, height, width] of float values, but the "
                f"spec's input is {what}; remove training.augment",
                line_of,
            )
        ]
    channels, height, width = shape
    problems = []
    normalize = augment.normalize
    if normalize is not None and normalize != "auto":
        for key in ("mean", "std"):
            values = getattr(normalize, key)
            if len(values) != channels:
                problems.append(
                    _problem(
                        (*path, "normalize", key),
                        f"the input has {channels} channel{'s' * (channels != 1)} "
                        f"({shape}), but {key} has {len(values)} values; give one per "
                        f"channel, or write normalize: auto",
                        line_of,
                    )
                )
    crop = augment.random_crop
    if crop is not None and crop.padding > max(height, width):
        problems.append(
            _problem(
                (*path, "random_crop", "padding"),
                f"padding {crop.padding} is larger than the image ({height} x {width}); "
                f"a few pixels (4 for 32 x 32) shift it enough",
                line_of,
            )
        )
    return problems


def _problem(path: tuple, message: str, line_of) -> Problem:
    line = None
    for end in range(len(path), 0, -1):  # the nearest line the document knows
        line = line_of(path[:end])
        if line is not None:
            break
    return Problem(format_path(path), message, line)
