"""A NumPy .npz archive with an array of samples (`x_key`) and one of labels (`y_key`)."""

from __future__ import annotations

import zipfile

import numpy as np
import torch

from compiler.formatting import plural
from runtime.data.files import (
    MAX_DATA_BYTES,
    did_you_mean,
    file_error,
    listing,
    open_data_file,
)
from runtime.data.labels import encode_labels
from runtime.data.loading import LoadingPolicy, describe_bytes
from runtime.data.npz_map import map_npz_member
from runtime.data.samples import Samples, float_tensor, id_tensor
from runtime.data.stored import MappedArray
from runtime.errors import UserError, shown

INT64_MAX = 2**63 - 1


def read_npz(
    path: str,
    x_key: str,
    y_key: str,
    task: str,
    dtype: str = "float32",
    policy: LoadingPolicy | None = None,
) -> Samples:
    """Return the archive's `x_key` array as samples and `y_key` as labels.

    Samples are float32, or int64 ids when `dtype` (the spec's input dtype) is int64: then `x_key`
    must hold integers. For reconstruction `y_key` is not read (it need not exist). Arrays are
    loaded with `allow_pickle=False`: a pickled array could run code, so it is refused.

    When `policy` streams samples of their size, `x_key` is memory-mapped (a MappedArray: rows
    read as batches ask for them); labels are always read into memory.
    """
    # a streamed archive may be larger than a file read whole may be
    limit = MAX_DATA_BYTES if policy is None or policy.mode == "memory" else 2**62
    with open_data_file(path, "npz file", limit) as file:
        return _read_archive(file, path, x_key, y_key, task, dtype, policy)


def _read_archive(
    file,
    path: str,
    x_key: str,
    y_key: str,
    task: str,
    dtype: str,
    policy: LoadingPolicy | None = None,
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
        stored = _mapped_samples(archive, path, x_key, dtype, policy)
        x = (
            stored.array()
            if stored is not None
            else _array(archive, path, x_key, "x_key")
        )
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
    if stored is not None:
        _check_mapped(stored, path, x_key, y_key)
        samples = stored
    else:
        samples = _ids(path, x_key, y_key, x) if dtype == "int64" else float_tensor(x)
    if stored is None and samples.dtype.is_floating_point:
        _check_finite(samples, 0, path, x_key)
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


def _check_finite(samples: torch.Tensor, start: int, path: str, x_key: str) -> None:
    """Raise UserError naming the first sample (counted from `start`) that is not finite."""
    if torch.isfinite(samples).all():
        return
    index = start + int((~torch.isfinite(samples)).flatten(1).any(dim=1).nonzero()[0])
    raise UserError(
        f"{shown(path)}: array '{shown(x_key)}', sample {index}: holds a value that is not finite"
    )


# rows of a memory-mapped array checked at a time (a pass over the file at load)
CHECK_ROWS = 4096


def _mapped_samples(
    archive, path: str, x_key: str, dtype: str, policy: LoadingPolicy | None
) -> MappedArray | None:
    """Return `x_key` memory-mapped when the policy streams it, None to read it into memory;
    raise UserError for a compressed array too large for the memory budget."""
    if policy is None or x_key not in archive.files:
        return None
    torch_dtype = torch.int64 if dtype == "int64" else torch.float32
    mapped = map_npz_member(path, x_key, torch_dtype)
    if mapped is None:
        if policy.mode != "auto":
            return None  # memory, or stream: read whole and streamed from memory
        info = archive.zip.getinfo(f"{x_key}.npy")
        if not policy.streams(info.file_size):
            return None
        raise UserError(
            f"{shown(path)}: array '{shown(x_key)}' needs about {describe_bytes(info.file_size)} "
            f"in memory, more than training.loading.memory_budget "
            f"({describe_bytes(policy.budget or 0)}), and is compressed, so it cannot be read "
            f"from disk batch by batch; save it with numpy.savez (not savez_compressed), or "
            f"raise memory_budget"
        )
    return mapped if policy.streams(mapped.nbytes) else None


def _check_mapped(stored: MappedArray, path: str, x_key: str, y_key: str) -> None:
    """Check a memory-mapped array as the in-memory reader checks a loaded one, a block of rows
    at a time: ids must be integers that fit int64, float samples finite."""
    x = stored.array()
    if stored.dtype == torch.int64:
        _ids(path, x_key, y_key, x[:0])  # the dtype check alone
    for start in range(0, len(x), CHECK_ROWS):
        block = x[start : start + CHECK_ROWS]
        if stored.dtype == torch.int64:
            if block.dtype.kind == "u" and block.size and int(block.max()) > INT64_MAX:
                _ids(path, x_key, y_key, block)  # raises, naming the id
        else:
            _check_finite(float_tensor(block), start, path, x_key)


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
