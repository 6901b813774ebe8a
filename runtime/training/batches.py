"""Batch sources: where the training loop's batches come from, in memory or streamed from disk.

Both sources give the same batches. For epoch `e`, training batches follow
`torch.randperm(n, generator=epoch_generator(seed, e))` cut by `batch_starts`; with several
processes each takes `index[rank::world]` of every global batch. Validation (and any split
evaluated) goes in order, in chunks of `max(batch_size, EVAL_BATCH)`, each process taking a
contiguous part. So a streamed run and an in-memory run of one data set see the same samples in
the same batches and give the same metrics.

- `MemoryBatches`: the whole split in memory, batches cut by `index_select` (several batches
  at a time, GATHER_BYTES of them): on the device when it takes at most DEVICE_DATA_SHARE of a
  cuda device's free memory, else in host memory, each batch cut there and copied to the device
  (`resident` says which).
- `StreamedBatches`: the split stays on disk (`runtime.data.stored`); a DataLoader reads each
  batch (in worker processes when `training.loading.workers` gives some), pinned on cuda, and
  the batch is copied to the device as it arrives.

Nothing random happens in either: noise (and any augmentation or normalization) is applied by
the loop to the batch once it is on the device, identically on both paths. The DataLoader draws
its workers' seeds from a generator of its own, never from torch's global one that dropout uses,
so streaming leaves the random streams (and a resume) as the in-memory path does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from runtime.data.stored import StoredSamples, take
from runtime.errors import UserError
from runtime.parallel.distributed import SINGLE, Group
from runtime.training.rng import epoch_generator

# validation runs in batches at least this large (no gradients to keep)
EVAL_BATCH = 1024
# a data set in memory is moved to a cuda device only when it takes at most this share of the
# device's free memory: the model, its activations and the optimizer need the rest
DEVICE_DATA_SHARE = 0.5
# training batches are gathered from the data set this many bytes of them at a time (at least
# one batch), each batch a slice of the gather
GATHER_BYTES = 4 << 20


@dataclass
class Batch:
    """This process's part of one training batch, on the device."""

    x: Tensor
    y: Tensor
    size: int  # samples in the whole (global) batch this part belongs to


def batch_starts(n: int, batch_size: int, world: int = 1) -> list[tuple[int, int]]:
    """Return (start, stop) of each batch; a last batch that would give a process a single
    sample (fewer than 2 per process: one sample in one process) joins the one before it, since
    BatchNorm cannot train on a single sample."""
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < 2 * world:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _gathered(
    bounds: list[tuple[int, int]], row_bytes: int
) -> Iterator[list[tuple[int, int]]]:
    """Yield the batches of `bounds` in groups of consecutive ones that take GATHER_BYTES
    together (at least one a group)."""
    group: list[tuple[int, int]] = []
    taken = 0
    for start, stop in bounds:
        size = (stop - start) * row_bytes
        if group and taken + size > GATHER_BYTES:
            yield group
            group, taken = [], 0
        group.append((start, stop))
        taken += size
    if group:
        yield group


def eval_chunks(n: int, batch_size: int) -> list[range]:
    """Return the rows of each evaluation batch of `n` samples, in order."""
    size = max(batch_size, EVAL_BATCH)
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def contiguous_part(n: int, group: Group) -> range:
    """Return the rows of `n` that this process evaluates: all alone, a contiguous share of
    several."""
    if not group.active:
        return range(n)
    bounds = [n * r // group.world for r in range(group.world + 1)]
    return range(bounds[group.rank], bounds[group.rank + 1])


def batch_source(data, *, reconstructs: bool, device, group: Group, training):
    """Return the batch source of a DataSplits: streamed when its samples are on disk."""
    source = StreamedBatches if data.streamed else MemoryBatches
    return source(
        data, reconstructs=reconstructs, device=device, group=group, training=training
    )


def fits_on_device(nbytes: int, device) -> bool:
    """Return whether a data set taking `nbytes` is held on `device`: always off cuda (the CPU
    holds it where it is), on cuda when it takes at most DEVICE_DATA_SHARE of the free memory
    (or when the free memory cannot be read)."""
    device = torch.device(device)
    if device.type != "cuda":
        return True
    try:
        free, _total = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError, ValueError):  # no such device, no driver
        return True
    return nbytes <= free * DEVICE_DATA_SHARE


class MemoryBatches:
    """Batches of a data set held whole in memory (the default for what fits in memory): on the
    device when it fits there (fits_on_device), else in host memory, each batch copied over.
    """

    def __init__(
        self, data, *, reconstructs: bool, device, group: Group = SINGLE, training
    ) -> None:
        _check_not_empty(data)
        splits = [data.x_train, data.x_val]
        if not reconstructs:
            splits += [data.y_train, data.y_val]
        self.resident = fits_on_device(sum(t.nbytes for t in splits), device)
        home = device if self.resident else torch.device("cpu")
        # .to keeps the dtype: int64 ids stay int64 (autocast never casts integer tensors)
        self.x_train, self.x_val = data.x_train.to(home), data.x_val.to(home)
        if reconstructs:  # the targets are the inputs: one copy
            self.y_train, self.y_val = self.x_train, self.x_val
        else:
            self.y_train, self.y_val = data.y_train.to(home), data.y_val.to(home)
        self.group, self.training, self.device = group, training, device
        self.reconstructs = reconstructs
        # set by the loop for a model that changes its input in place: validation batches,
        # views of the data set, are then handed over as copies
        self.copies_inputs = False
        self.n_train, self.n_val = len(self.x_train), len(self.x_val)
        self.per_sample = self.y_train[:1].numel()  # targets per sample

    def head(self, count: int) -> tuple[Tensor, Tensor]:
        """Return the first `count` validation samples and targets, on the device."""
        return self._on_device(self.x_val[:count], self._targets(self.y_val[:count]))

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this process's part of each training batch of `epoch`, in the epoch's order.

        Consecutive batches are cut by one `index_select` (GATHER_BYTES of them at a time) and
        handed over as slices of it: the same rows as a gather per batch, with two kernels
        fewer per batch (about 1.5% of a digits MLP epoch on 2 CPU cores).
        """
        generator = epoch_generator(self.training.seed, epoch)
        order = torch.randperm(self.n_train, generator=generator).to(
            self.x_train.device
        )
        group = self.group
        bounds = batch_starts(self.n_train, self.training.batch_size, group.world)
        for together in _gathered(bounds, self._row_bytes()):
            if (
                group.active
            ):  # this process's part of each global batch: index[rank::world]
                parts = [order[a:b][group.rank :: group.world] for a, b in together]
                index, sizes = torch.cat(parts), [len(part) for part in parts]
            else:  # consecutive batches: one slice of the order
                index = order[together[0][0] : together[-1][1]]
                sizes = [stop - start for start, stop in together]
            xs = self.x_train.index_select(0, index)
            ys = None if self.reconstructs else self.y_train.index_select(0, index)
            offset = 0
            for (start, stop), size in zip(together, sizes):
                rows = slice(offset, offset + size)
                offset = rows.stop
                x, y = self._on_device(
                    xs[rows], None if ys is None else ys[rows], distinct=True
                )
                yield Batch(x, y, stop - start)

    def _row_bytes(self) -> int:
        """Return the bytes of one training sample and its targets."""
        row = self.x_train[:1].nbytes
        return row if self.reconstructs else row + self.y_train[:1].nbytes

    def val_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield this process's part of the validation split, in evaluation batches."""
        part = contiguous_part(self.n_val, self.group)
        x = self.x_val[part.start : part.stop]
        y = self.y_val[part.start : part.stop]
        for rows in eval_chunks(len(x), self.training.batch_size):
            xb, yb = self._on_device(
                x[rows.start : rows.stop], self._targets(y[rows.start : rows.stop])
            )
            yield (xb.clone(), yb) if self.copies_inputs else (xb, yb)

    def _targets(self, y: Tensor) -> Tensor | None:
        """Return `y`, or None for a reconstruction (its targets are its inputs)."""
        return None if self.reconstructs else y

    def _on_device(
        self, x: Tensor, y: Tensor | None, *, distinct: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Return a batch on the device: as it is when the data set is held there, else copied
        from host memory. `y` None: a reconstruction's targets, its inputs, copied over once
        (`distinct`: a tensor of their own, as a training batch's targets have always been).
        """
        if not self.resident:
            x = x.to(self.device)
            y = None if y is None else y.to(self.device)
        if y is None:
            y = x.clone() if distinct else x
        return x, y

    def close(self) -> None:
        """Nothing to release (the tensors go with the source)."""


class StreamedBatches:
    """Batches read from disk by a DataLoader (a data set larger than the memory budget)."""

    def __init__(
        self, data, *, reconstructs: bool, device, group: Group = SINGLE, training
    ) -> None:
        _check_not_empty(data)
        self.group, self.training, self.device = group, training, device
        self.n_train, self.n_val = len(data.x_train), len(data.x_val)
        self.reconstructs = reconstructs
        self._head = data.head
        self.per_sample = (
            _sample_size(data.x_train) if reconstructs else data.y_train[:1].numel()
        )
        self._order = _EpochOrder(
            self.n_train, training.batch_size, training.seed, group
        )
        part = contiguous_part(self.n_val, group)
        val_rows = [
            [part.start + row for row in rows]
            for rows in eval_chunks(len(part), training.batch_size)
        ]
        y_train, y_val = (None, None) if reconstructs else (data.y_train, data.y_val)
        self._train = _loader(data.x_train, y_train, self._order, data.workers, device)
        self._val = _loader(data.x_val, y_val, val_rows, data.workers, device)

    def head(self, count: int) -> tuple[Tensor, Tensor]:
        """Return the first `count` validation samples and targets, on the device."""
        x, y = self._head(count)
        x = x.to(self.device)
        return x, (x if self.reconstructs else y.to(self.device))

    # set by the loop for a model that changes its input in place (MemoryBatches)
    copies_inputs = False

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        """Yield this process's part of each training batch of `epoch`, in the epoch's order."""
        self._order.epoch = epoch
        for (start, stop), part in zip(self._order.bounds, self._train):
            # a reconstruction's targets a tensor of their own, as in memory
            x, y = self._on_device(part, distinct=True)
            yield Batch(x, y, stop - start)

    def val_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Yield this process's part of the validation split, in evaluation batches."""
        for part in self._val:
            x, y = self._on_device(part)
            # a reconstruction's target is its input: the model gets a copy it may change
            yield (x.clone(), y) if self.copies_inputs and y is x else (x, y)

    def _on_device(self, part, *, distinct: bool = False) -> tuple[Tensor, Tensor]:
        if isinstance(part, _Failure):
            raise UserError(part.message)
        x, y = part
        x = x.to(self.device, non_blocking=True)
        if y is None:
            return x, (x.clone() if distinct else x)
        return x, y.to(self.device, non_blocking=True)

    def close(self) -> None:
        """Stop the DataLoaders' worker processes."""
        self._train = self._val = None


def split_batches(
    x, y, *, reconstructs: bool, batch_size: int, device, workers: int = 0
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield a whole split (tensors or StoredSamples) in evaluation batches on the device, in
    order: what `nnspec evaluate` measures, as the loop's validation does."""
    chunks = eval_chunks(len(x), batch_size)
    if not isinstance(x, StoredSamples):
        for rows in chunks:
            xb = x[rows.start : rows.stop].to(device)
            # a reconstruction's target is its input as loaded: a model that changes its
            # input in place changes a copy (and on the CPU, not the loaded split's rows)
            yield (
                (xb.clone(), xb)
                if reconstructs
                else (xb, y[rows.start : rows.stop].to(device))
            )
        return
    loader = _loader(
        x, None if reconstructs else y, [list(r) for r in chunks], workers, device
    )
    for part in loader:
        if isinstance(part, _Failure):
            raise UserError(part.message)
        xb, yb = part
        xb = xb.to(device, non_blocking=True)
        if yb is None:  # a reconstruction: the model gets a copy of the target
            yield xb.clone(), xb
        else:
            yield xb, yb.to(device, non_blocking=True)


class _EpochOrder:
    """The DataLoader's batch sampler: this process's rows of each batch of `epoch` (set before
    each epoch; the DataLoader reads it again at every new iteration, workers or not).
    """

    def __init__(self, n: int, batch_size: int, seed: int, group: Group) -> None:
        self.n, self.seed, self.group = n, seed, group
        self.bounds = batch_starts(n, batch_size, group.world)
        self.epoch = 1

    def __len__(self) -> int:
        return len(self.bounds)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.n, generator=epoch_generator(self.seed, self.epoch))
        group = self.group
        for start, stop in self.bounds:
            index = order[start:stop]
            if group.active:
                index = index[group.rank :: group.world]
            yield index.tolist()


@dataclass
class _Failure:
    """A batch that could not be read (an image file changed since the folder was checked):
    returned by a worker as data, so that the error reaches the user as one line."""

    message: str


class _Rows(torch.utils.data.Dataset):
    """Rows of a split for a DataLoader: `__getitems__` reads a whole batch at once."""

    def __init__(self, x, y: Tensor | None) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, row: int):
        return self.__getitems__([row])

    def __getitems__(self, rows: list[int]):
        try:
            x = take(self.x, rows)
        except UserError as exc:
            return _Failure(str(exc))
        return x, (None if self.y is None else take(self.y, rows))


def _as_is(batch):
    return batch  # `__getitems__` gives the batch whole


def _loader(x, y, batch_sampler, workers: int, device) -> torch.utils.data.DataLoader:
    """Return a DataLoader of the rows `batch_sampler` yields (lists of rows of x and y)."""
    return torch.utils.data.DataLoader(
        _Rows(x, y),
        batch_sampler=batch_sampler,
        collate_fn=_as_is,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=torch.device(device).type == "cuda",
        # the workers' seeds come from here, not from torch's global generator
        generator=torch.Generator().manual_seed(0),
    )


def _sample_size(x) -> int:
    size = 1
    for dim in x.shape[1:]:
        size *= dim
    return size


def _check_not_empty(data) -> None:
    if len(data.x_train) == 0 or len(data.x_val) == 0:
        raise UserError(
            f"{data.description}: {len(data.x_train)} training and {len(data.x_val)} "
            "validation samples; both need at least one (check val_fraction and the data)"
        )
