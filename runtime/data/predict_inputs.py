"""The samples `nnspec predict` reads: a csv file, an npz file, one image, or a folder of images.

Each comes back as `(x, names)`: a tensor of the model's input shape (before the stored
preprocessing, which the caller applies) and one name per sample for the output's first column
(`line 7` of a csv file, `3` for an npz sample, the image's path below the folder given).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from compiler.formatting import plural
from runtime.data import npz_file
from runtime.data.csv_encoding import FeatureEncoding
from runtime.data.csv_file import read_csv_features
from runtime.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    image_input_problem,
    is_image_file,
    read_image,
)
from runtime.errors import UserError, shown

KINDS = f".csv, .npz, an image ({', '.join(IMAGE_EXTENSIONS)}) or a folder of images"


def read_inputs(
    path: str, spec, encoding: dict | None
) -> tuple[torch.Tensor, list[str]]:
    """Return the samples in `path` for a model of `spec` and a name for each; raise UserError
    for an input of another kind, shape or columns than the model was trained on."""
    source = Path(path)
    if source.is_dir():
        return _read_images(_images_in(source), source, spec)
    if not source.exists():
        raise UserError(f"input '{shown(path)}' not found")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, spec, encoding)
    if suffix == ".npz":
        return _read_npz(path, spec)
    if is_image_file(source):
        return _read_images([source], source.parent, spec)
    raise UserError(f"predict reads {KINDS}; '{shown(path)}' is none of them")


def check_input_shape(x: torch.Tensor, spec, what: str) -> None:
    """Raise UserError unless the samples `x` have the spec's input shape and dtype."""
    shape = list(x.shape[1:])
    if shape != list(spec.input):
        raise UserError(
            f"{what} gives samples of shape {shape}, but the model takes {list(spec.input)}"
        )


def _images_in(folder: Path) -> list[Path]:
    """Return every image file below `folder`, sorted by path; raise UserError for none."""
    found = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p))
    if not found:
        raise UserError(
            f"folder '{shown(folder)}' holds no image files ({', '.join(IMAGE_EXTENSIONS)})"
        )
    return found


def _read_images(paths: list[Path], root: Path, spec) -> tuple[torch.Tensor, list[str]]:
    problem = image_input_problem(spec.input)
    if problem is not None or spec.input_dtype != "float32":
        raise UserError(
            f"the model does not take images: {problem or 'its input holds int64 ids'}"
        )
    images, bad = [], []
    for path in paths:
        try:
            images.append(read_image(path, spec.input))
        except UnreadableImage as exc:
            bad.append(f"{shown(exc.path)} ({exc.reason})")
    if bad:
        raise UserError(
            f"{plural(len(bad), 'image')} cannot be read: {'; '.join(bad[:10])}"
            + (f"; ... ({len(bad)} in all)" if len(bad) > 10 else "")
        )
    names = [str(p.relative_to(root)) if p != root else p.name for p in paths]
    return torch.stack(images), names


def _read_csv(path: str, spec, encoding: dict | None) -> tuple[torch.Tensor, list[str]]:
    data = spec.training_or_default.data
    if data.dataset != "csv":
        raise UserError(
            f"the model was trained on {data.dataset} data, not csv columns; give it "
            f"{'images' if image_input_problem(spec.input) is None else 'an npz file'}"
        )
    if (
        encoding is None
    ):  # a checkpoint of an nnspec before encodings: the spec's columns
        encoding = {"features": list(data.features or []), "categories": {}}
        if not encoding["features"]:
            raise UserError(
                "this checkpoint does not record its feature columns (an older nnspec); "
                "list them in the spec's training.data.features and train again"
            )
    x, lines, unseen = read_csv_features(
        path, FeatureEncoding.from_data(encoding), list(spec.input), spec.input_dtype
    )
    for column, names in unseen.items():
        print(
            f"nnspec predict: warning: {shown(path)}: column '{shown(column)}' holds "
            f"{plural(len(names), 'name')} not seen in training "
            f"({', '.join(shown(n) for n in names[:5])}); encoded as all zeros",
            file=sys.stderr,
        )
    return x, [f"line {line}" for line in lines]


def _read_npz(path: str, spec) -> tuple[torch.Tensor, list[str]]:
    data = spec.training_or_default.data
    x_key = data.x_key if data.dataset == "npz" else "x"
    # reconstruction reads no labels: any y in the file is ignored
    samples = npz_file.read_npz(path, x_key, "y", "reconstruction", spec.input_dtype)
    check_input_shape(samples.x, spec, f"{shown(path)}, array '{shown(x_key)}'")
    return samples.x, [str(i) for i in range(len(samples.x))]
