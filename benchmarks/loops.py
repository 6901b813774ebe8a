"""The training loops that nnspec's runtime is compared with, each timed epoch by epoch.

Every loop trains the model it is given on the same splits (DataSplits of CPU tensors), with the
same batch size and optimizer, validates after every epoch, and returns the wall time of each
epoch (training + validation + whatever the loop does between epochs).

- `bare_loop`: what a careful user writes by hand: tensors in memory, batches taken with
  `index_select` (on 2 busy cores `x[index]` was up to 15x slower: see docs/performance.md), the
  training loss summed on the device and read once per epoch, validation in large batches.
- `dataloader_loop`: the course's loop: TensorDataset + DataLoader(shuffle=True), per-batch
  `loss.item()` and accuracy `.item()` accumulation, validation through a DataLoader too.
- `nnspec_loop`: `runtime.training.loop.fit` with everything `nnspec train` does each epoch (metrics,
  early stopping, last.pt/best.pt/metrics.csv through the runtime's RunWriter, progress bar).
- `lightning_loop`: the same model in a LightningModule, when lightning is installed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

CPU = torch.device("cpu")
VALIDATION_CHUNK = (
    1024  # the bare loop validates in chunks this large (no gradients kept)
)


def _optimizer(model, training):
    """Return the spec's optimizer as a user writes it: torch's default implementation.

    Built here rather than by the runtime, so that a faster optimizer in the runtime (fused, say)
    shows as a gain instead of speeding up the baselines too.
    """
    config = training.optimizer
    params = model.parameters()
    if config.type == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    optimizer = torch.optim.Adam if config.type == "adam" else torch.optim.AdamW
    return optimizer(
        params,
        lr=config.lr,
        betas=tuple(config.betas),
        weight_decay=config.weight_decay,
    )


def bare_loop(
    model, data, training, epochs: int, *, device=CPU, autocast=None
) -> list[float]:
    """Return the epoch times of a hand-written in-memory loop (loss only, one sync per epoch).

    The data moves to `device` once, before the first epoch; `autocast` wraps forward and loss.
    """
    autocast = autocast or contextlib.nullcontext
    model.to(device)
    optimizer = _optimizer(model, training)
    x, y = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    n, batch = len(x), training.batch_size
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(n, device=device)
        total = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            xb, yb = x.index_select(0, index), y.index_select(0, index)
            with autocast():
                loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
        model.eval()
        val_total = torch.zeros((), dtype=torch.float64, device=device)
        with torch.inference_mode():
            for start in range(0, len(x_val), VALIDATION_CHUNK):
                xb, yb = (
                    x_val[start : start + VALIDATION_CHUNK],
                    y_val[start : start + VALIDATION_CHUNK],
                )
                with autocast():
                    val_total += F.cross_entropy(model(xb), yb, reduction="sum")
        _losses = torch.stack(
            [total / n, val_total / len(x_val)]
        ).tolist()  # the epoch's sync
        times.append(time.perf_counter() - started)
    return times


def dataloader_loop(model, data, training, epochs: int, *, device=CPU) -> list[float]:
    """Return the epoch times of the course's DataLoader loop with per-batch `.item()` reads.

    The data stays on the CPU and each batch moves to `device`, as the course does on a GPU.
    """
    model.to(device)
    optimizer = _optimizer(model, training)
    batch = training.batch_size
    train_loader = DataLoader(
        TensorDataset(data.x_train, data.y_train), batch_size=batch, shuffle=True
    )
    val_loader = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=batch)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        model.train()
        running_loss, correct, seen = 0.0, 0, 0
        for xb, yb in train_loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            output = model(xb)
            loss = F.cross_entropy(output, yb)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * xb.size(0)
            correct += (output.argmax(dim=1) == yb).sum().item()
            seen += xb.size(0)
        model.eval()
        val_loss, val_correct, val_seen = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                xb, yb = xb.to(device), yb.to(device)
                output = model(xb)
                val_loss += F.cross_entropy(output, yb).item() * xb.size(0)
                val_correct += (output.argmax(dim=1) == yb).sum().item()
                val_seen += xb.size(0)
        _summary = (
            running_loss / seen,
            correct / seen,
            val_loss / val_seen,
            val_correct / val_seen,
        )
        times.append(time.perf_counter() - started)
    return times


def nnspec_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    spec,
    checkpoints: bool = True,
    quiet: bool = True,
    device=CPU,
    amp: bool = False,
) -> list[float]:
    """Return the epoch times of `runtime.training.loop.fit`, writing checkpoints as `nnspec train` does.

    An epoch is timed from the end of one `on_epoch_end` to the end of the next, so it holds the
    training, the validation, the early-stopping step, the progress bar and the checkpoint writes.
    """
    from runtime.training.loop import fit

    training = training.model_copy(update={"epochs": epochs, "amp": amp})
    stamps: list[float] = []
    with tempfile.TemporaryDirectory(
        prefix="nnspec-bench-", ignore_cleanup_errors=True
    ) as out:
        writer = (
            run_writer(Path(out), spec, data, training.task) if checkpoints else None
        )

        def on_epoch_end(state) -> None:
            if writer is not None:
                writer.epoch_end(state)
            stamps.append(time.perf_counter())

        started = time.perf_counter()
        try:
            with _stderr_to_devnull(not quiet):
                fit(
                    model,
                    data,
                    training,
                    device=device,
                    on_epoch_end=on_epoch_end,
                    quiet=quiet,
                )
        finally:
            if writer is not None and hasattr(writer, "close"):
                writer.close()  # the last epoch's writes, as `nnspec train` waits for them
        if stamps:
            stamps[-1] = time.perf_counter()
    return [b - a for a, b in zip([started, *stamps], stamps)]


def run_writer(out: Path, spec, data, task: str):
    """Return the runtime's RunWriter (what writes last.pt, best.pt and metrics.csv each epoch)."""
    try:
        from runtime.training.run_writer import RunWriter
    except ImportError:  # before the writer had a module of its own
        from runtime.training.train import RunWriter
    return RunWriter(out, spec, "sequential", data, task)


@contextlib.contextmanager
def _stderr_to_devnull(enabled: bool):
    """Send the progress bar to /dev/null, so a run of `make bench` prints only its tables."""
    if not enabled:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        yield


def lightning_module():
    """Return the lightning package (`lightning.pytorch` or `pytorch_lightning`), or None."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            return None
    return pl


def lightning_loop(model, data, training, epochs: int) -> list[float]:
    """Return the epoch times of a plain Lightning Trainer (DataLoaders, logged loss/accuracy,
    its default end-of-epoch checkpoint, no progress bar, no logger)."""
    pl = lightning_module()
    batch = training.batch_size

    class Classifier(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = model

        def training_step(self, batch_data, _index):
            xb, yb = batch_data
            output = self.model(xb)
            loss = F.cross_entropy(output, yb)
            self.log("train_loss", loss, on_step=False, on_epoch=True)
            self.log(
                "train_acc",
                (output.argmax(1) == yb).float().mean(),
                on_step=False,
                on_epoch=True,
            )
            return loss

        def validation_step(self, batch_data, _index):
            xb, yb = batch_data
            output = self.model(xb)
            self.log("val_loss", F.cross_entropy(output, yb))
            self.log("val_acc", (output.argmax(1) == yb).float().mean())

        def configure_optimizers(self):
            return _optimizer(self.model, training)

    stamps: list[float] = []

    class EpochClock(pl.Callback):
        def on_train_epoch_start(self, *_):
            stamps.append(time.perf_counter())

        def on_fit_end(self, *_):
            stamps.append(time.perf_counter())

    train_loader = DataLoader(
        TensorDataset(data.x_train, data.y_train), batch_size=batch, shuffle=True
    )
    val_loader = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=batch)
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-pl-") as out:
        with _quiet_lightning():
            trainer = pl.Trainer(
                max_epochs=epochs,
                accelerator="cpu",
                devices=1,
                logger=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                default_root_dir=out,
                callbacks=[EpochClock()],
            )
            trainer.fit(Classifier(), train_loader, val_loader)
    return [b - a for a, b in zip(stamps, stamps[1:])]


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's banners and warnings about the number of DataLoader workers."""
    import logging
    import warnings

    names = ["lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"]
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
