"""A NumPy .npz archive with an array of samples (`x_key`) and one of labels (`y_key`)."""

from __future__ import annotations

import zipfile

import numpy as np
import torch

from compiler.formatting import plural
from runtime.data.files import did_you_mean, file_error, listing, open_data_file
from runtime.data.labels import encode_labels
from runtime.data.samples import Samples, float_tensor, id_tensor
from runtime.errors import UserError, shown

INT64_MAX = 2**63 - 1


def read_npz(
    path: str, x_key: str, y_key: str, task: str, dtype: str = "float32"
) -> Samples:
    """Return the archive's `x_key` array as samples and `y_key` as labels.

    Samples are float32, or int64 ids when `dtype` (the spec's input dtype) is int64: then `x_key`
    must hold integers. For reconstruction `y_key` is not read (it need not exist). Arrays are
    loaded with `allow_pickle=False`: a pickled array could run code, so it is refused.
    """
    with open_data_file(path, "npz file") as file:
        return _read_archive(file, path, x_key, y_key, task, dtype)


def _read_archive(
    file, path: str, x_key: str, y_key: str, task: str, dtype: str
) -> Samples:
    """Return the samples of the open npz `file` (see `read_npz`)."""
    try:
        archive = np.load(file, allow_pickle=False)
    except OSError as exc:
        raise file_error(path, "npz file", exc) from None
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        # numpy takes any file that is neither a zip nor a .npy for a pickle; only a .npy of
        # objects or a file that starts like a pickle (protocol 2 and later) is called one.
        if "pickle" in str(exc) and _starts_with(path, (b"\x93NUMPY", b"\x80")):
            raise _pickled(path, "the file") from None
        raise UserError(
            f"npz file '{shown(path)}' is not a NumPy .npz archive; save one with "
            f"numpy.savez('{shown(path)}', {x_key}=samples, {y_key}=labels)"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UserError(
            f"npz file '{shown(path)}' holds a single array, not an archive of named arrays; save one "
            f"with numpy.savez('{shown(path)}', {x_key}=samples, {y_key}=labels)"
        )
    with archive:
        x = _array(archive, path, x_key, "x_key")
        y = None if task == "reconstruction" else _array(archive, path, y_key, "y_key")
    if x.dtype.kind not in "biuf":
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}' has dtype {x.dtype}; samples must be numbers"
        )
    if x.ndim < 2:
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}' has shape {list(x.shape)}; it must be (samples, ...), "
            f"e.g. (N, 1) for one number per sample"
        )
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        count = "a single value" if y.ndim == 0 else f"{len(y)} labels"
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}' has {plural(len(x), 'sample')} but '{shown(y_key)}' has {count}"
        )
    samples = _ids(path, x_key, y_key, x) if dtype == "int64" else float_tensor(x)
    if samples.dtype.is_floating_point and not torch.isfinite(samples).all():
        index = int((~torch.isfinite(samples)).flatten(1).any(dim=1).nonzero()[0])
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}', sample {index}: holds a value that is not finite"
        )
    if y is None:
        return Samples(name=path, x=samples, y=None)
    labels, class_names, num_classes = encode_labels(
        y,
        task,
        f"{shown(path)}, array '{shown(y_key)}'",
        lambda index: f"sample {index}",
    )
    return Samples(
        name=path, x=samples, y=labels, class_names=class_names, num_classes=num_classes
    )


def _ids(path: str, x_key: str, y_key: str, x: np.ndarray) -> torch.Tensor:
    """Return an integer array of ids as int64; raise UserError for any other dtype."""
    if x.dtype.kind not in "iu":
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}' has dtype {x.dtype}, but the spec's input holds int64 "
            f"ids (input.dtype); save the ids as integers, e.g. numpy.savez('{shown(path)}', "
            f"{x_key}=ids.astype('int64'), {y_key}=labels)"
        )
    if x.dtype.kind == "u" and x.size and int(x.max()) > INT64_MAX:
        index = int(np.flatnonzero((x > INT64_MAX).reshape(len(x), -1).any(axis=1))[0])
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}', sample {index}: id {int(x[index].max())} does not fit "
            f"in int64"
        )
    return id_tensor(x)


def _array(
    archive: np.lib.npyio.NpzFile, path: str, key: str, setting: str
) -> np.ndarray:
    """Return the array `key` of the archive, with a clear error when it is missing or pickled."""
    if key not in archive.files:
        raise UserError(
            f"{shown(path)}: no array '{shown(key)}'{did_you_mean(key, archive.files)}; the archive holds "
            f"{listing(archive.files) or 'no arrays'} (choose with training.data.{setting})"
        )
    try:
        return archive[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise _pickled(path, f"array '{shown(key)}'") from None
        raise UserError(
            f"{shown(path)}: array '{shown(key)}' cannot be read ({exc})"
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(
            f"{shown(path)}: array '{shown(key)}' cannot be read ({exc})"
        ) from None


def _starts_with(path: str, prefixes: tuple[bytes, ...]) -> bool:
    with open(path, "rb") as file:
        return file.read(8).startswith(prefixes)


def _pickled(path: str, what: str) -> UserError:
    return UserError(
        f"{shown(path)}: {what} holds pickled Python objects, which nnspec never loads (unpickling can "
        f"run code); save plain numeric arrays, e.g. numpy.savez(path, x=x.astype('float32'), "
        f"y=y)"
    )
