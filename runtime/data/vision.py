"""MNIST, Fashion-MNIST and CIFAR-10 through `torchvision.datasets`, read whole into tensors.

The files live under `data_dir` in torchvision's own layout (`MNIST/raw/train-images-idx3-ubyte`,
`cifar-10-batches-py/data_batch_1`, ...) and are downloaded there on first use when `download`
is true. Pixels are scaled to [0, 1]; the data set's test split is the test split.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator

import torch

from runtime.data.labels import encode_labels
from runtime.data.samples import Samples
from runtime.errors import UserError

# A download that hangs on a dead network waits this long per read before failing.
DOWNLOAD_TIMEOUT_S = 60.0

_CLASS_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def read_torchvision(dataset: str, data_dir: str, download: bool, task: str) -> Samples:
    """Return the train split (x, y) and test split (x_test, y_test) of a torchvision data set."""
    import torchvision.datasets  # heavy; only these data sets need it

    dataset_class = getattr(torchvision.datasets, _CLASS_NAMES[dataset])
    root = os.path.expanduser(data_dir)
    folder, missing = _missing_files(dataset_class, root)
    if missing and not download:
        raise UserError(
            f"data set '{dataset}': {_files(missing)} not found in {folder} and `download` is "
            f"false; set training.data.download: true (needs the network once) or copy the "
            f"files there"
        )
    try:
        with _network_timeout(DOWNLOAD_TIMEOUT_S):
            train = dataset_class(root=root, train=True, download=bool(missing))
            test = dataset_class(root=root, train=False, download=False)
    # torchvision raises anything from URLError to AssertionError for missing or bad files
    except Exception as exc:  # noqa: BLE001
        reason = _one_line(exc)
        if missing:
            raise UserError(
                f"data set '{dataset}': {_files(missing)} not found in {folder} and the download "
                f"failed ({reason}); connect to the network once or copy the files there"
            ) from None
        raise UserError(
            f"data set '{dataset}': the files in {folder} could not be read ({reason}); "
            f"delete the folder to download them again"
        ) from None
    source = f"data set '{dataset}'"
    if (
        task == "reconstruction"
    ):  # the target is the image itself: the labels are not read
        y = y_test = None
    else:
        y, _, _ = encode_labels(
            torch.as_tensor(train.targets).numpy(), task, source, _sample
        )
        y_test, _, _ = encode_labels(
            torch.as_tensor(test.targets).numpy(), task, f"{source} (test)", _sample
        )
    classes = [str(name) for name in train.classes]
    return Samples(
        name=dataset,
        x=_images(train.data),
        y=y,
        x_test=_images(test.data),
        y_test=y_test,
        class_names=classes if task == "classification" else None,
        num_classes={"classification": len(classes), "binary": 2}.get(task),
    )


def _images(data) -> torch.Tensor:
    """Return uint8 images as float32 (N, C, H, W) in [0, 1], without going through PIL."""
    pixels = torch.as_tensor(data)
    if pixels.dim() == 3:  # MNIST family: (N, H, W)
        pixels = pixels.unsqueeze(1)
    else:  # CIFAR-10: numpy (N, H, W, C)
        pixels = pixels.permute(0, 3, 1, 2)
    return pixels.to(torch.float32).div_(255.0)


def _missing_files(dataset_class, root: str) -> tuple[str, list[str]]:
    """Return the folder torchvision reads the data set from and the files missing there."""
    if hasattr(dataset_class, "base_folder"):  # CIFAR-10: python pickle batches
        folder = os.path.join(root, dataset_class.base_folder)
        names = [name for name, _ in dataset_class.train_list + dataset_class.test_list]
        names.append(dataset_class.meta["filename"])
    else:  # MNIST family: raw IDX files, unpacked from the .gz archives
        folder = os.path.join(root, dataset_class.__name__, "raw")
        names = [os.path.splitext(url)[0] for url, _ in dataset_class.resources]
        processed = os.path.join(root, dataset_class.__name__, "processed")
        legacy = [dataset_class.training_file, dataset_class.test_file]
        if all(os.path.isfile(os.path.join(processed, name)) for name in legacy):
            return (
                folder,
                [],
            )  # what torchvision before 0.9 saved; it still reads that first
    return folder, [
        name for name in names if not os.path.isfile(os.path.join(folder, name))
    ]


@contextlib.contextmanager
def _network_timeout(seconds: float) -> Iterator[None]:
    # torchvision's urlopen has no timeout: without one a silent network would hang forever.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _files(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (
        f" and {len(names) - 3} more" if len(names) > 3 else ""
    )
    return shown


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines)[:300] or "no message"
    return f"{type(exc).__name__}: {text}"


def _sample(index: int) -> str:
    return f"sample {index}"
