"""A folder of images, one sub-folder per class: torchvision's `ImageFolder` layout.

The rules are torchvision's: every sub-folder of `path` is a class, classes sorted by name, a
class's index its position; inside a class folder, files with one of torchvision's image
extensions (any case) are found recursively (symbolic links followed), in sorted order; a class
folder without an image is an error. One difference: names that start with "." (`.DS_Store`,
`.ipynb_checkpoints`, macOS `._` files) are skipped, where torchvision counts such a folder as a
class and such a file as an image it then cannot read.

Images are read by `runtime.data.images` (grayscale or RGB by the input's channels, resized to
its height and width, [0, 1]). Held in memory, every image is decoded here; streamed
(`LoadingPolicy`), each is checked here and decoded when its batch is read. Either way every
unreadable file is reported at once, with its path.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from compiler.formatting import plural
from runtime.data.images import (
    IMAGE_EXTENSIONS,
    UnreadableImage,
    check_image,
    is_image_file,
    read_image,
)
from runtime.data.loading import LoadingPolicy
from runtime.data.samples import Samples
from runtime.data.stored import ImageFiles
from runtime.errors import UserError, shown

UNREADABLE_SHOWN = 10  # unreadable files named in the error; the rest are counted
DECODE_THREADS = 8  # Pillow decodes outside the GIL


def read_image_folder(
    path: str,
    *,
    val_path: str | None,
    test_path: str | None,
    input_shape: list[int],
    task: str,
    policy: LoadingPolicy | None = None,
) -> Samples:
    """Return the images of the class folders under `path` (and, when given, the validation and
    test splits of `val_path` / `test_path`, which must hold the same classes).

    Labels are class indices (classification), 0/1 floats (binary: two classes), or none
    (reconstruction). Raises UserError for a missing folder, no class folder, a class folder
    without images, other classes in val_path/test_path, or unreadable images (all listed).
    """
    # (relative paths were resolved from the spec's folder: runtime.data.preprocess.located_data)
    folder = Path(path)
    classes, files = list_image_folder(folder, "path")
    extra = {}
    for key, other in (("val", val_path), ("test", test_path)):
        if other is None:
            continue
        other_folder = Path(other)
        other_classes, other_files = list_image_folder(other_folder, f"{key}_path")
        _check_same_classes(folder, classes, other_folder, other_classes, f"{key}_path")
        extra[key] = other_files
    if task == "binary" and len(classes) != 2:
        raise UserError(
            f"image folder '{shown(str(folder))}': binary needs exactly two class folders, "
            f"found {len(classes)}: {', '.join(classes[:12])}"
        )
    every = [files, *extra.values()]
    streams = policy is not None and policy.streams(
        sum(len(f) for f in every) * _sample_bytes(input_shape)
    )
    xs = _images([f for part in every for f in part], input_shape, streams)
    parts, start = [], 0
    for part in every:
        x = (
            xs.subset(range(start, start + len(part)))
            if streams
            else xs[start : start + len(part)]
        )
        parts.append((x, _labels([label for _, label in part], task)))
        start += len(part)
    (x, y), rest = parts[0], dict(zip(extra, parts[1:]))
    paths = [p for p, _ in files]
    return Samples(
        name=shown(str(folder)),
        x=x,
        y=y,
        class_names=classes if task in ("classification", "binary") else None,
        num_classes=len(classes) if task == "classification" else None,
        x_val=rest["val"][0] if "val" in rest else None,
        y_val=rest["val"][1] if "val" in rest else None,
        x_test=rest["test"][0] if "test" in rest else None,
        y_test=rest["test"][1] if "test" in rest else None,
        locate=lambda index: shown(str(paths[index])),
    )


def list_image_folder(
    folder: Path, setting: str
) -> tuple[list[str], list[tuple[Path, int]]]:
    """Return (class names, [(image path, class index)]) of an image folder, in torchvision's
    order; raise UserError when it is missing, has no class folder, or a class has no image.
    """
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "not found"
        raise UserError(
            f"image folder '{shown(str(folder))}' (training.data.{setting}) {what}"
        )
    classes = sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not classes:
        raise UserError(
            f"image folder '{shown(str(folder))}' holds no class folder; put each class's "
            f"images in a sub-folder named after it ({shown(str(folder / 'cat'))}/1.png, ...)"
        )
    files, empty = [], []
    for index, name in enumerate(classes):
        found = _class_images(folder / name)
        if not found:
            empty.append(name)
        files.extend((path, index) for path in found)
    if empty:
        raise UserError(
            f"image folder '{shown(str(folder))}': no image in class "
            f"{'folder' if len(empty) == 1 else 'folders'} {', '.join(map(shown, empty[:12]))}; "
            f"images "
            f"end in {', '.join(IMAGE_EXTENSIONS)} (any case)"
        )
    return classes, files


def _class_images(folder: Path) -> list[Path]:
    """Return the image files under a class folder, sorted as torchvision sorts them (by
    folder, then by name), skipping hidden names and folders reached twice through links.
    """
    seen: set[str] = set()
    found = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link back up the tree: torchvision would walk forever
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        images = sorted(n for n in names if not n.startswith("."))
        found.append((root, [n for n in images if is_image_file(Path(n))]))
    return [Path(root) / name for root, names in sorted(found) for name in names]


def _check_same_classes(
    folder: Path,
    classes: list[str],
    other: Path,
    other_classes: list[str],
    setting: str,
) -> None:
    if other_classes == classes:
        return
    missing = [c for c in classes if c not in other_classes]
    extra = [c for c in other_classes if c not in classes]
    said = []
    if missing:
        said.append(f"lacks {', '.join(map(shown, missing[:8]))}")
    if extra:
        said.append(f"has {', '.join(map(shown, extra[:8]))} besides")
    raise UserError(
        f"image folder '{shown(str(other))}' (training.data.{setting}) {' and '.join(said)}: "
        f"it must hold the same class folders as '{shown(str(folder))}' "
        f"({', '.join(map(shown, classes[:12]))}), so that class indices mean the same"
    )


def _sample_bytes(input_shape: list[int]) -> int:
    channels, height, width = input_shape
    return channels * height * width * 4  # float32


def _images(files: list[tuple[Path, int]], input_shape: list[int], streams: bool):
    """Return the images as one tensor (decoded now) or an ImageFiles store (checked now);
    raise one UserError naming every unreadable file."""
    paths = [path for path, _ in files]
    work = check_image if streams else (lambda p: read_image(p, input_shape))
    with ThreadPoolExecutor(
        max_workers=min(DECODE_THREADS, os.cpu_count() or 1)
    ) as pool:
        results = list(pool.map(_attempt(work), paths))
    bad = [r for r in results if isinstance(r, UnreadableImage)]
    if bad:
        listed = "; ".join(
            f"{shown(str(e.path))} ({e.reason})" for e in bad[:UNREADABLE_SHOWN]
        )
        more = (
            f"; and {len(bad) - UNREADABLE_SHOWN} more"
            if len(bad) > UNREADABLE_SHOWN
            else ""
        )
        raise UserError(
            f"{plural(len(bad), 'image')} cannot be read: {listed}{more}; remove or replace "
            f"{'it' if len(bad) == 1 else 'them'}"
        )
    if streams:
        return ImageFiles(paths, tuple(input_shape))
    return torch.stack(results) if results else torch.empty((0, *input_shape))


def _attempt(work):
    def run(path: Path):
        try:
            return work(path)
        except UnreadableImage as exc:
            return exc

    return run


def _labels(labels: list[int], task: str) -> torch.Tensor | None:
    if task == "reconstruction":
        return None
    y = torch.tensor(labels, dtype=torch.long)
    return y.to(torch.float32) if task == "binary" else y
