"""The training loops that `nnspec train` is compared with, each timed epoch by epoch.

Every loop trains the model it is given on the same splits (DataSplits of CPU tensors), with the
same batch size and optimizer, validates after every epoch, and returns the wall time of each
epoch (training + validation + whatever the loop does between epochs).

- `bare_loop`: what a careful user writes by hand: tensors in memory, batches taken with
  `index_select` (on 2 busy cores `x[index]` was up to 15x slower: see docs/performance.md), the
  training loss summed on the device and read once per epoch, validation in large batches;
  with `fused=True` its Adam is torch's fused kernel, the limit for such a loop.
- `dataloader_loop`: the course's loop: TensorDataset + DataLoader(shuffle=True), per-batch
  `loss.item()` and accuracy `.item()` accumulation, validation through a DataLoader too.
- `lightning_loop`, `skorch_loop`, `keras_loop`: the same model in Lightning, skorch and Keras 3
  (torch backend), each when it is importable; none is a dependency of nnspec.

`nnspec train` itself is timed as a user runs it, in a process of its own: see nnspec_train.py.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

CPU = torch.device("cpu")
VALIDATION_CHUNK = (
    1024  # the bare loop validates in chunks this large (no gradients kept)
)


def make_optimizer(model, training, fused: bool = False):
    """Return the spec's optimizer as a user writes it: torch's default implementation, or its
    fused kernel with `fused=True` (the default one where this torch has no fused kernel).

    Built here rather than by the runtime, so that what the runtime does shows as its own gain
    or loss instead of changing the baselines too.
    """
    config = training.optimizer
    params = list(model.parameters())
    if config.type == "sgd":
        kind, settings = torch.optim.SGD, {
            "lr": config.lr,
            "momentum": config.momentum,
            "nesterov": config.nesterov,
            "weight_decay": config.weight_decay,
        }
    else:
        kind = torch.optim.Adam if config.type == "adam" else torch.optim.AdamW
        settings = {
            "lr": config.lr,
            "betas": tuple(config.betas),
            "weight_decay": config.weight_decay,
        }
    if fused:
        try:
            return kind(params, fused=True, **settings)
        except (RuntimeError, TypeError, ValueError):
            pass  # no fused kernel for this device or dtype: the default is the limit then
    return kind(params, **settings)


def fused_supported(device=CPU) -> bool:
    """Return whether this torch has a fused Adam kernel for float32 parameters on `device`."""
    weight = torch.nn.Parameter(torch.zeros(2, device=device))
    try:
        torch.optim.Adam([weight], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


@contextlib.contextmanager
def torch_threads(count: int | None):
    """Run the block with `count` torch threads (None: as they are), then restore them."""
    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def bare_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    device=CPU,
    autocast=None,
    fused: bool = False,
    compile_backend: str | None = None,
    channels_last: bool = False,
    on_epoch_end: Callable[[], None] | None = None,
) -> list[float]:
    """Return the epoch times of a hand-written in-memory loop (loss only, one sync per epoch).

    The data moves to `device` once, before the first epoch; `autocast` wraps forward and loss;
    `compile_backend` (e.g. "inductor") runs the model through `torch.compile` with it;
    `channels_last` puts the model's 4-d weights in channels-last layout; `on_epoch_end` is
    called after each epoch is timed (lockstep.EpochClock's, in a process of its own).
    """
    autocast = autocast or contextlib.nullcontext
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, training, fused=fused)
    forward = (
        torch.compile(model, backend=compile_backend) if compile_backend else model
    )
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
                loss = F.cross_entropy(forward(xb), yb)
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
                    val_total += F.cross_entropy(forward(xb), yb, reduction="sum")
        _losses = torch.stack(
            [total / n, val_total / len(x_val)]
        ).tolist()  # the epoch's sync
        times.append(time.perf_counter() - started)
        if on_epoch_end is not None:
            on_epoch_end()
    return times


def dataloader_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    device=CPU,
    on_epoch_end: Callable[[], None] | None = None,
) -> list[float]:
    """Return the epoch times of the course's DataLoader loop with per-batch `.item()` reads.

    The data stays on the CPU and each batch moves to `device`, as the course does on a GPU.
    `on_epoch_end` is called after each epoch is timed.
    """
    model.to(device)
    optimizer = make_optimizer(model, training)
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
        if on_epoch_end is not None:
            on_epoch_end()
    return times


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


def lightning_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    on_epoch_end: Callable[[], None] | None = None,
) -> list[float]:
    """Return the epoch times of a plain Lightning Trainer (DataLoaders, logged loss/accuracy,
    its default end-of-epoch checkpoint, no progress bar, no logger): from the start of one
    training epoch to the start of the next (the end of fit after the last), so that each
    includes the validation and checkpoint that follow it. `on_epoch_end` is called at each
    of those ends, after the time is noted."""
    epoch_end = on_epoch_end or (lambda: None)
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
            return make_optimizer(self.model, training)

    stamps: list[float] = []

    class EpochClock(pl.Callback):
        def on_train_epoch_start(self, *_):
            stamps.append(time.perf_counter())
            if len(stamps) > 1:  # the epoch before has ended
                epoch_end()

        def on_fit_end(self, *_):
            stamps.append(time.perf_counter())
            epoch_end()

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


def skorch_module():
    """Return the skorch package, or None when it is not installed."""
    try:
        import skorch
    except ImportError:
        return None
    return skorch


def skorch_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    on_epoch_end: Callable[[], None] | None = None,
) -> list[float]:
    """Return the epoch times of a skorch NeuralNetClassifier (its default callbacks: train and
    validation loss, validation accuracy; no printing), validating on the same split;
    `on_epoch_end` is called after each epoch is timed."""
    epoch_end = on_epoch_end or (lambda: None)
    skorch = skorch_module()
    from skorch.callbacks import Callback
    from skorch.dataset import Dataset
    from skorch.helper import predefined_split

    stamps: list[float] = []

    class EpochClock(Callback):
        def on_train_begin(self, net, **_):
            stamps.append(time.perf_counter())

        def on_epoch_end(self, net, **_):
            stamps.append(time.perf_counter())
            epoch_end()

    optimizer = make_optimizer(model, training)
    settings = {
        f"optimizer__{name}": value
        for name, value in optimizer.defaults.items()
        if name in ("momentum", "nesterov", "weight_decay", "betas")
    }
    net = skorch.NeuralNetClassifier(
        model,
        criterion=torch.nn.CrossEntropyLoss,  # the model gives logits
        optimizer=type(optimizer),
        lr=training.optimizer.lr,
        batch_size=training.batch_size,
        max_epochs=epochs,
        train_split=predefined_split(Dataset(data.x_val, data.y_val)),
        iterator_train__shuffle=True,
        callbacks=[EpochClock()],
        device="cpu",
        verbose=0,
        **settings,
    )
    net.fit(data.x_train, data.y_train)
    return [b - a for a, b in zip(stamps, stamps[1:])]


def keras_module():
    """Return keras 3 running on torch (KERAS_BACKEND=torch), or None when keras is not
    installed or the environment chose another backend."""
    if os.environ.get("KERAS_BACKEND", "torch") != "torch":
        return None
    os.environ["KERAS_BACKEND"] = "torch"  # read once, when keras is first imported
    try:
        import keras
    except ImportError:
        return None
    if keras.backend.backend() != "torch":
        return None
    return keras


def keras_loop(
    model,
    data,
    training,
    epochs: int,
    *,
    on_epoch_end: Callable[[], None] | None = None,
) -> list[float]:
    """Return the epoch times of Keras 3 on torch: the same torch module in a TorchModuleWrapper,
    `compile(..., metrics=["accuracy"])` and `fit(..., validation_data=...)` on NumPy arrays;
    `on_epoch_end` is called after each epoch is timed.
    """
    keras = keras_module()
    epoch_end = on_epoch_end or (lambda: None)
    stamps: list[float] = []

    class EpochClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            stamps.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            stamps.append(time.perf_counter())
            epoch_end()

    config = training.optimizer
    if config.type == "sgd":
        optimizer = keras.optimizers.SGD(
            learning_rate=config.lr, momentum=config.momentum, nesterov=config.nesterov
        )
    else:
        beta_1, beta_2 = config.betas
        kind = (
            keras.optimizers.Adam if config.type == "adam" else keras.optimizers.AdamW
        )
        optimizer = kind(learning_rate=config.lr, beta_1=beta_1, beta_2=beta_2)
    net = keras.Sequential(
        [
            keras.Input(shape=tuple(data.x_train.shape[1:])),
            keras.layers.TorchModuleWrapper(model),
        ]
    )
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    net.fit(
        data.x_train.numpy(),
        data.y_train.numpy(),
        batch_size=training.batch_size,
        epochs=epochs,
        validation_data=(data.x_val.numpy(), data.y_val.numpy()),
        shuffle=True,
        verbose=0,
        callbacks=[EpochClock()],
    )
    return [b - a for a, b in zip(stamps, stamps[1:])]
