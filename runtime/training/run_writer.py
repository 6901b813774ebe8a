"""`RunWriter`: what `nnspec train` writes while it trains, off the training thread, at most
every `training.checkpoint_seconds`.

An epoch's state is written (`last.pt`, then `best.pt` when the epoch improved, then
`metrics.csv`) when it is the run's first, when `checkpoint_seconds` have passed since the last
write was queued, and when training stops after it. Any other epoch costs nothing: its state is
not even copied, except an epoch that improved the monitor, whose whole state is kept in memory
(copied, not serialized) until a later write carries it to `best.pt`. So every way out leaves the
best epoch on disk: a stop between epochs writes its epoch, and one in the middle of an epoch (a
signal, a non-finite loss, out of memory, an error) writes the best epoch kept in memory when it
is newer than `last.pt`. A `kill -9` loses at most the epochs of the last `checkpoint_seconds`,
the epoch in progress and the write in flight.

A write copies the state (tensors cloned to the CPU, a few milliseconds) and a background thread
serializes it once and writes the files while training goes on; the next write waits for it, so
writes stay in order and at most one is in flight. Each file is replaced atomically, so a kill at
any moment leaves whole files; `close()` waits for the last write and raises its error, if any.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compiler import Spec, spec_data, spec_digest
from compiler.version import __version__
from runtime.errors import UserError
from runtime.parallel.device import AUTOCAST_DTYPE
from runtime.storage.atomic import write_bytes_atomically
from runtime.storage.checkpoint import FORMAT, FORMAT_VERSION, checkpoint_bytes
from runtime.training.loop import TrainingState
from runtime.training.metrics import write_metrics_csv
from runtime.training.rng import rng_state


def unwrapped(model: nn.Module) -> nn.Module:
    """Return the model inside a DistributedDataParallel wrapper (or the model itself)."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        return model.module
    return model


def snapshot(value: Any, contiguous: bool = False) -> Any:
    """Return `value` with every tensor copied to the CPU, so later training cannot change it;
    with `contiguous`, in torch's default layout (a channels-last weight is reordered).
    """
    if isinstance(value, torch.Tensor):
        layout = torch.contiguous_format if contiguous else torch.preserve_format
        return value.detach().to("cpu", copy=True, memory_format=layout)
    if isinstance(value, dict):
        return type(value)(
            (key, snapshot(item, contiguous)) for key, item in value.items()
        )
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(item, contiguous) for item in value)
    return value


# how often last.pt is written when epochs are shorter than this (training.checkpoint_seconds)
DEFAULT_CHECKPOINT_SECONDS = 5.0


class RunWriter:
    """Writes last.pt, best.pt and metrics.csv as the checkpoint policy says (module docstring):
    `epoch_end` is fit's `on_epoch_end`, `stop` its `on_stop`, `close` ends every way out.
    """

    def __init__(
        self,
        out: Path,
        spec: Spec,
        form: str,
        data,
        task: str,
        *,
        before_first_write: Callable[[], None] | None = None,
        every_seconds: float | None = None,
        interrupt=None,
        clock: Callable[[], float] = time.monotonic,
        threads: int | None = None,
        channels_last: bool | None = None,
        autocast: bool = False,
        saved_epoch: int = 0,
    ) -> None:
        self.out = Path(out)
        # the run folder's changes (the previous run removed), once there is something to write
        self._before_first_write = before_first_write
        self.task = task
        training = spec.training_or_default
        self.every_seconds = (
            training.checkpoint_seconds if every_seconds is None else every_seconds
        )
        self.epochs = training.epochs
        # an InterruptFlag: told which epoch last.pt holds, and read to write before a stop
        self.interrupt = interrupt
        self.clock = clock
        self.fixed = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "nnspec_version": __version__,
            "torch_version": str(torch.__version__),
            "spec": spec_data(spec),
            "spec_sha256": spec_digest(spec),
            "form": form,
            "task": task,
            "input": list(spec.input),
            "num_classes": data.num_classes,
            "class_names": data.class_names,
            "preprocessing": getattr(data, "preprocessing", None),
            # trained under bf16 autocast ("bfloat16") or not (None): a resume trains alike
            "autocast": AUTOCAST_DTYPE if autocast else None,
        }
        if (
            threads is not None
        ):  # the CPU threads it trained on: a resume takes the same
            self.fixed["threads"] = threads
        if (
            channels_last is not None
        ):  # the layout it trained in: a resume takes the same
            self.fixed["channels_last"] = channels_last
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None
        # the epoch last.pt holds once the queued writes are done (a resumed run: its epoch)
        self.queued_epoch = saved_epoch
        self.writes = 0  # writes queued (last.pt each time)
        self._queued_at: float | None = None  # clock() when the last write was queued
        # the payload of the best epoch when it is newer than queued_epoch (not yet on disk)
        self._best: dict[str, Any] | None = None

    def payload(self, state: TrainingState, kept: bool = False) -> dict[str, Any]:
        """Return the checkpoint of the state after an epoch: plain containers and CPU tensors.

        `kept`: the payload is kept in memory rather than written now; it takes python's and
        numpy's generator states as the last write read them (training draws from neither).
        """
        return {
            **self.fixed,
            "epoch": state.epoch,
            # in torch's default layout, whatever the layout it trains in (safetensors
            # and other readers take contiguous tensors only)
            "model": snapshot(unwrapped(state.model).state_dict(), contiguous=True),
            "optimizer": snapshot(state.optimizer.state_dict()),
            "scheduler": (
                snapshot(state.scheduler.state_dict())
                if state.scheduler is not None
                else None
            ),
            "early_stopping": state.stopper.state_dict(),
            "rng": rng_state(host=not kept),
            "metrics": [dict(row) for row in state.history],
        }

    def due(self, state: TrainingState) -> bool:
        """Return whether the epoch just finished is written: the first of this run, one
        `every_seconds` after the last write, and the one training stops after."""
        return (
            self._queued_at is None
            or self.clock() - self._queued_at >= self.every_seconds
            or state.epoch >= self.epochs
            or bool(state.stopper.stop_reason())
            or (self.interrupt is not None and self.interrupt.requested)
        )

    def epoch_end(self, state: TrainingState) -> None:
        """Queue this epoch's writes when they are due (after the previous ones have finished);
        otherwise keep its state in memory when it is the best so far, or do nothing at all.
        """
        if self.due(state):
            self._queue(self.payload(state), best=state.stopper.improved)
        elif state.stopper.improved:
            self._best = self.payload(state, kept=True)  # copied, not serialized

    def stop(self, state: TrainingState) -> None:
        """Write the epoch that training stopped after, unless it is written already (fit's
        `on_stop`: called between epochs, before the best weights are loaded back)."""
        if state.epoch > self.queued_epoch:
            self._queue(self.payload(state), best=state.stopper.improved)

    def _queue(self, payload: dict[str, Any], *, best: bool) -> None:
        """Queue the writes of `payload` (last.pt, best.pt when `best`, metrics.csv) and of the
        best epoch kept in memory, when it is not `payload` itself."""
        kept, self._best = self._best, None
        self.wait()
        if self._before_first_write is not None:
            begin, self._before_first_write = self._before_first_write, None
            begin()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="nnspec-writer"
            )
        self._queued_at = self.clock()
        self.queued_epoch = payload["epoch"]
        self.writes += 1
        if self.interrupt is not None:
            self.interrupt.saved_epoch = self.queued_epoch
        self._pending = self._pool.submit(
            self._write, payload, best, None if best else kept
        )

    def _write(
        self, payload: dict[str, Any], improved: bool, best: dict[str, Any] | None
    ) -> None:
        path = self.out / "last.pt"
        try:
            if best is not None:
                # an earlier epoch kept in memory goes first, as last.pt and best.pt, so that
                # at every moment best.pt is never ahead of last.pt (a resume relies on it)
                # and a kill between the two writes leaves last.pt at the best epoch
                write_bytes_atomically(
                    path, checkpoint_bytes(best), also=[self.out / "best.pt"]
                )
            data = checkpoint_bytes(payload)  # one serialization for both files
            # best.pt after last.pt, as a hard link to the same bytes: one write and one
            # fsync for both
            write_bytes_atomically(
                path, data, also=[self.out / "best.pt"] if improved else []
            )
            path = self.out / "metrics.csv"
            write_metrics_csv(path, payload["metrics"], self.task)
        except OSError as exc:
            raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None

    def wait(self) -> None:
        """Block until the queued writes are on disk; raise the error of a failed one."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Write the best epoch kept in memory (a stop in the middle of an epoch: newer than
        last.pt, it becomes last.pt and best.pt), wait for the last writes and stop the writer
        thread (it can be used again after)."""
        try:
            if self._best is not None:
                self._queue(self._best, best=True)
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
