"""Where an npz member's array lies in the file, so that it can be memory-mapped.

`numpy.load(path, mmap_mode="r")` ignores `mmap_mode` for an .npz (it reads each member whole), but
`numpy.savez` stores its members uncompressed: a member's .npy data is a plain run of bytes at an
offset of the zip file, which `numpy.memmap` can map. `numpy.savez_compressed` members cannot be
mapped (`map_npz_member` returns None for them, and the caller decides what to do).
"""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import torch

from runtime.data.stored import MappedArray

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def map_npz_member(path: str, key: str, dtype: torch.dtype) -> MappedArray | None:
    """Return the member `key` of the npz at `path` as a MappedArray read as `dtype`, or None
    when it cannot be mapped (compressed, an object array, an unknown .npy version, damaged).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo(f"{key}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as file:
            file.seek(info.header_offset)
            local = file.read(_LOCAL_HEADER)
            if local[:4] != b"PK\x03\x04":
                return None
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            file.seek(info.header_offset + _LOCAL_HEADER + name_length + extra_length)
            reader = _HEADER_READERS.get(np.lib.format.read_magic(file))
            if reader is None:
                return None
            shape, fortran_order, array_dtype = reader(file)
            offset = file.tell()
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, struct.error):
        return None
    if array_dtype.hasobject or not shape or 0 in shape:
        return None  # the in-memory reader refuses these with its own message
    return MappedArray(
        path=path,
        offset=offset,
        array_dtype=array_dtype.str,
        array_shape=tuple(int(size) for size in shape),
        fortran_order=bool(fortran_order),
        dtype=dtype,
    )
