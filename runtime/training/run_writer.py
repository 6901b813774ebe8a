"""`RunWriter`: what `nnspec train` writes after every epoch, off the training thread.

After each epoch the state is copied (tensors cloned to the CPU, a few milliseconds) and a
background thread serializes it once, writes `last.pt`, then `best.pt` when the epoch improved,
then `metrics.csv`. Training goes on meanwhile; the next epoch's write waits for this one, so
writes stay in order and at most one is in flight. Each file is replaced atomically, so a kill at
any moment leaves whole files; `close()` waits for the last write and raises its error, if any.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from compiler import Spec, spec_data, spec_digest
from compiler.version import __version__
from runtime.errors import UserError
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


def snapshot(value: Any) -> Any:
    """Return `value` with every tensor copied to the CPU, so later training cannot change it."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return type(value)((key, snapshot(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(item) for item in value)
    return value


class RunWriter:
    """Writes last.pt, best.pt and metrics.csv after every epoch (the `on_epoch_end` of fit)."""

    def __init__(
        self,
        out: Path,
        spec: Spec,
        form: str,
        data,
        task: str,
        *,
        before_first_write: Callable[[], None] | None = None,
    ) -> None:
        self.out = Path(out)
        # the run folder's changes (the previous run removed), once there is something to write
        self._before_first_write = before_first_write
        self.task = task
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
        }
        self._pool: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def payload(self, state: TrainingState) -> dict[str, Any]:
        """Return the checkpoint of the state after an epoch: plain containers and CPU tensors."""
        return {
            **self.fixed,
            "epoch": state.epoch,
            "model": snapshot(unwrapped(state.model).state_dict()),
            "optimizer": snapshot(state.optimizer.state_dict()),
            "scheduler": (
                snapshot(state.scheduler.state_dict())
                if state.scheduler is not None
                else None
            ),
            "early_stopping": state.stopper.state_dict(),
            "rng": rng_state(),
            "metrics": [dict(row) for row in state.history],
        }

    def epoch_end(self, state: TrainingState) -> None:
        """Queue the writes of this epoch, after the previous epoch's writes have finished."""
        payload = self.payload(state)
        improved = state.stopper.improved
        self.wait()
        if self._before_first_write is not None:
            begin, self._before_first_write = self._before_first_write, None
            begin()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="nnspec-writer"
            )
        self._pending = self._pool.submit(self._write, payload, improved)

    def _write(self, payload: dict[str, Any], improved: bool) -> None:
        data = checkpoint_bytes(payload)  # one serialization for both files
        path = self.out / "last.pt"
        try:
            # best.pt after last.pt (a resume relies on best.pt never being ahead of it), as
            # a hard link to the same bytes: one write and one fsync for both
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
        """Wait for the last writes and stop the writer thread (it can be used again after)."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
