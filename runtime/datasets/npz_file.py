"""A NumPy .npz archive with an array of samples (`x_key`) and one of labels (`y_key`)."""

from __future__ import annotations

import zipfile

import numpy as np
import torch

from ..errors import UserError
from .files import did_you_mean, file_error, listing
from .labels import encode_labels
from .samples import Samples, float_tensor


def read_npz(path: str, x_key: str, y_key: str, task: str) -> Samples:
    """Return the archive's `x_key` array as float32 samples and `y_key` as labels.

    Arrays are loaded with `allow_pickle=False`: a pickled array could run code, so it is refused.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except OSError as exc:
        raise file_error(path, "npz file", exc) from None
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy takes any file that is neither a zip nor a .npy for a pickle; only a .npy of
        # objects or a file that starts like a pickle (protocol 2 and later) is called one.
        if "pickle" in str(exc) and _starts_with(path, (b"\x93NUMPY", b"\x80")):
            raise _pickled(path, "the file") from None
        raise UserError(
            f"npz file '{path}' is not a NumPy .npz archive; save one with "
            f"numpy.savez('{path}', {x_key}=samples, {y_key}=labels)"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(
            f"npz file '{path}' holds a single array, not an archive of named arrays; save one "
            f"with numpy.savez('{path}', {x_key}=samples, {y_key}=labels)"
        )
    with archive:
        x = _array(archive, path, x_key, "x_key")
        y = _array(archive, path, y_key, "y_key")
    if x.dtype.kind not in "biuf":
        raise UserError(
            f"{path}: array '{x_key}' has dtype {x.dtype}; samples must be numbers"
        )
    if x.ndim < 2:
        raise UserError(
            f"{path}: array '{x_key}' has shape {list(x.shape)}; it must be (samples, ...), "
            f"e.g. (N, 1) for one number per sample"
        )
    if len(y) != len(x):
        raise UserError(
            f"{path}: array '{x_key}' has {len(x)} samples but '{y_key}' has {len(y)} labels"
        )
    samples = float_tensor(x)
    if not torch.isfinite(samples).all():
        index = int((~torch.isfinite(samples)).flatten(1).any(dim=1).nonzero()[0])
        raise UserError(
            f"{path}: array '{x_key}', sample {index}: holds a value that is not finite"
        )
    labels, class_names, num_classes = encode_labels(
        y, task, f"{path}, array '{y_key}'", lambda index: f"sample {index}"
    )
    return Samples(
        name=path, x=samples, y=labels, class_names=class_names, num_classes=num_classes
    )


def _array(
    archive: np.lib.npyio.NpzFile, path: str, key: str, setting: str
) -> np.ndarray:
    """Return the array `key` of the archive, with a clear error when it is missing or pickled."""
    if key not in archive.files:
        raise UserError(
            f"{path}: no array '{key}'{did_you_mean(key, archive.files)}; the archive holds "
            f"{listing(archive.files) or 'no arrays'} (choose with training.data.{setting})"
        )
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _pickled(path, f"array '{key}'") from None
        raise UserError(f"{path}: array '{key}' cannot be read ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: array '{key}' cannot be read ({exc})") from None


def _starts_with(path: str, prefixes: tuple[bytes, ...]) -> bool:
    with open(path, "rb") as file:
        return file.read(8).startswith(prefixes)


def _pickled(path: str, what: str) -> UserError:
    return UserError(
        f"{path}: {what} holds pickled Python objects, which nnspec never loads (unpickling can "
        f"run code); save plain numeric arrays, e.g. numpy.savez(path, x=x.astype('float32'), "
        f"y=y)"
    )
