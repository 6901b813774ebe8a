"""Samples that stay on disk until a batch asks for them: the streamed side of a data set.

A `StoredSamples` knows its length and sample shape and returns any rows asked for as one CPU
tensor (`take`), in the order asked. Three kinds: image files decoded per sample, the rows of an
uncompressed npz member through a memory map, and a tensor already in memory (so that any data
set can be streamed when `training.loading.mode` is `stream`). `subset` is a view of some rows:
the train/validation/test splits of a streamed data set are views of one store.

Stores are pickled into DataLoader workers: they hold paths and numbers, never an open memory
map (numpy would pickle a map as a full copy of its data), and open what they read lazily.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from runtime.data.images import UnreadableImage, read_image
from runtime.errors import UserError, shown

Index = Sequence[int] | torch.Tensor


class StoredSamples:
    """Rows read when asked for; see the module docstring."""

    dtype: torch.dtype = torch.float32
    sample_shape: tuple[int, ...] = ()

    def __len__(self) -> int:
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        """Return (N, *sample_shape), as a tensor's shape reads."""
        return (len(self), *self.sample_shape)

    @property
    def nbytes(self) -> int:
        """Return the bytes all rows would take as one tensor in memory."""
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        return int(np.prod(self.shape, dtype=np.int64)) * itemsize

    def take(self, index: Index) -> torch.Tensor:
        """Return the rows `index` (in that order) as one CPU tensor."""
        rows = _as_list(index)
        if not rows:
            return torch.empty((0, *self.sample_shape), dtype=self.dtype)
        return self._read(rows)

    def _read(self, rows: list[int]) -> torch.Tensor:
        raise NotImplementedError

    def subset(self, index: Index) -> StoredSamples:
        """Return a view of the rows `index` of this store."""
        return RowSubset(self, _as_list(index))

    def first(self, count: int) -> torch.Tensor:
        """Return the first `count` rows (fewer when there are fewer)."""
        return self.take(range(min(count, len(self))))


@dataclass(eq=False)
class RowSubset(StoredSamples):
    """Some rows of another store, in the order given."""

    base: StoredSamples
    rows: list[int]

    def __post_init__(self) -> None:
        self.dtype, self.sample_shape = self.base.dtype, self.base.sample_shape

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, rows: list[int]) -> torch.Tensor:
        return self.base.take([self.rows[row] for row in rows])

    def subset(self, index: Index) -> StoredSamples:
        return RowSubset(self.base, [self.rows[row] for row in _as_list(index)])


@dataclass(eq=False)
class TensorRows(StoredSamples):
    """Rows of a tensor in memory, read as if from disk (a streamed run of any data set)."""

    tensor: torch.Tensor

    def __post_init__(self) -> None:
        self.dtype, self.sample_shape = self.tensor.dtype, tuple(self.tensor.shape[1:])

    def __len__(self) -> int:
        return len(self.tensor)

    def _read(self, rows: list[int]) -> torch.Tensor:
        return self.tensor.index_select(0, torch.tensor(rows, dtype=torch.long))


@dataclass(eq=False)
class ImageFiles(StoredSamples):
    """Image files, each decoded, converted and resized to the input when its row is read."""

    paths: list[Path]
    input_shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        self.sample_shape = tuple(self.input_shape)

    def __len__(self) -> int:
        return len(self.paths)

    def _read(self, rows: list[int]) -> torch.Tensor:
        try:
            return torch.stack(
                [read_image(self.paths[r], self.input_shape) for r in rows]
            )
        except UnreadableImage as exc:
            # checked when the folder was listed; a file changed since is still one line
            raise UserError(f"unreadable image {shown(str(exc))}") from None


@dataclass(eq=False)
class MappedArray(StoredSamples):
    """Rows of an array stored uncompressed at `offset` in a file, read through a memory map
    and converted to float32 (or int64 ids) row by row, as the in-memory reader converts all.
    """

    path: str
    offset: int
    array_dtype: str  # numpy's dtype string of the stored array ("<f4")
    array_shape: tuple[int, ...]
    fortran_order: bool
    dtype: torch.dtype = torch.float32
    _map: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.sample_shape = tuple(self.array_shape[1:])

    def __len__(self) -> int:
        return self.array_shape[0]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_map": None}  # each process maps the file itself

    def array(self) -> np.ndarray:
        """Return the whole stored array as a read-only memory map (nothing read yet)."""
        if self._map is None:
            self._map = np.memmap(
                self.path,
                dtype=np.dtype(self.array_dtype),
                mode="r",
                offset=self.offset,
                shape=self.array_shape,
                order="F" if self.fortran_order else "C",
            )
        return self._map

    def _read(self, rows: list[int]) -> torch.Tensor:
        # numpy reads the rows asked for (in that order) from the map
        block = self.array()[np.asarray(rows, dtype=np.int64)]
        numpy_dtype = np.float32 if self.dtype == torch.float32 else np.int64
        return torch.from_numpy(np.ascontiguousarray(block, dtype=numpy_dtype))


def take(samples: torch.Tensor | StoredSamples, index: Index) -> torch.Tensor:
    """Return rows `index` of a tensor or a store as a CPU tensor."""
    if isinstance(samples, StoredSamples):
        return samples.take(index)
    if not isinstance(index, torch.Tensor):
        index = torch.tensor(_as_list(index), dtype=torch.long)
    return samples.index_select(0, index.to(samples.device))


def subset(
    samples: torch.Tensor | StoredSamples, index: torch.Tensor
) -> torch.Tensor | StoredSamples:
    """Return rows `index` of a tensor (a new tensor) or a store (a view)."""
    if isinstance(samples, StoredSamples):
        return samples.subset(index)
    return samples[index]


def _as_list(index: Index) -> list[int]:
    if isinstance(index, torch.Tensor):
        return index.tolist()
    return [int(row) for row in index]
