"""`fit`: the training loop that trains any nn.Module (both forms of a spec share it).

Batches come from a batch source (`runtime.training.batches`): the whole data set on the device,
batched by index, or, for a data set larger than the memory budget, streamed from disk by a
DataLoader; either way in an order drawn from (seed, epoch) alone. Loss and metric sums stay on the device and are read once per epoch, so the
hot path never waits for the device. Early stopping, checkpoints and the progress bar act between
epochs; Ctrl-C is a flag read between batches.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from runtime.errors import UserError
from runtime.parallel.device import autocast_for, uses_autocast
from runtime.parallel.distributed import SINGLE, Group, wrap_model
from runtime.training.augment import BatchAugmenter, augment_generator
from runtime.training.batches import (  # noqa: F401 (EVAL_BATCH, batch_starts: kept here too)
    DEVICE_DATA_SHARE,
    EVAL_BATCH,
    batch_source,
    batch_starts,
)
from runtime.training.compiled import compiled_module
from runtime.training.criterion import training_criterion
from runtime.training.early_stopping import EarlyStopping
from runtime.training.interrupt import InterruptFlag, signal_word
from runtime.training.metrics import TaskMetrics, device_zero, epoch_row
from runtime.training.optim import (
    build_optimizer,
    build_schedule,
    gradient_clipper,
    penalized_weights,
    step_after_batch,
    step_after_epoch,
    steps_per_batch,
    weight_penalty,
)
from runtime.training.progress import EpochProgress
from runtime.training.rng import noise_generator, set_rng_state
from runtime.training.stepper import OptimizerStep


@dataclass
class TrainingState:
    """Everything that changes while training; what a checkpoint saves."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    stopper: EarlyStopping
    history: list[dict] = field(default_factory=list)
    epoch: int = 0  # epochs completed


@dataclass
class FitResult:
    """How training went: the metrics of every epoch, the best epoch and why it stopped."""

    history: list[dict]
    monitor: str
    mode: str
    best_epoch: int  # 0 when no epoch improved
    best: float | None
    epochs_run: int  # epochs completed, counting those before a resume
    stop_reason: str  # early_stopping | max_epochs | interrupted | not_finite
    stop_message: str
    restored_best: bool  # the model holds the best epoch's weights

    @property
    def stopped_early(self) -> bool:
        """Return whether early stopping ended the run."""
        return self.stop_reason == "early_stopping"


EpochHook = Callable[[TrainingState], None]


@dataclass(kw_only=True)
class _Epochs:
    """What every epoch uses and nothing changes: the batch source, task, settings."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    # the optimizer's zero_grad and step, its fused kernel called directly (stepper.py)
    steps: OptimizerStep
    task: TaskMetrics
    training: object  # TrainingConfig
    device: torch.device
    batches: object  # MemoryBatches | StreamedBatches (runtime.training.batches)
    autocast: object
    penalty: Callable[[], Tensor] | None
    interrupt: InterruptFlag | None
    group: Group = SINGLE
    # `model` in DistributedDataParallel when distributed
    train_model: nn.Module | None = None
    # std of the Gaussian noise added to training inputs (not to targets)
    noise: float = 0.0
    # clips the gradients to training.clip_grad_norm after backward (None: no clipping)
    clip: Callable[[], Tensor] | None = None
    # the schedule when it steps after every batch (one_cycle, a warmup), else None
    batch_schedule: object | None = None
    augment: BatchAugmenter | None = None  # crops and flips of training batches


@dataclass(frozen=True)
class _Stop:
    """Why training stopped: a FitResult's stop_reason and stop_message."""

    reason: str
    message: str
    # the model holds the state of the last finished epoch (not one part-trained or diverged)
    between_epochs: bool = True


@dataclass
class _BestWeights:
    """The best epoch's weights, kept when `restore_best` is on, for the model at the end."""

    enabled: bool
    weights: dict[str, Tensor] | None = None

    def keep(self, model: nn.Module) -> None:
        """Copy `model`'s weights as the best ones (nothing when restore_best is off)."""
        if self.enabled:
            self.weights = _copy_weights(model)

    def load_into(self, model: nn.Module) -> bool:
        """Load the kept weights into `model`; return whether there were any to load."""
        restored = self.enabled and self.weights is not None
        if restored:
            model.load_state_dict(self.weights)
        return restored


def fit(
    model: nn.Module,
    data,
    training,
    *,
    device: torch.device,
    on_epoch_end: EpochHook | None = None,
    on_stop: EpochHook | None = None,
    start_state: dict | None = None,
    best_weights: dict[str, Tensor] | None = None,
    interrupt: InterruptFlag | None = None,
    quiet: bool = False,
    group: Group = SINGLE,
    autocast: bool | None = None,
) -> FitResult:
    """Return how training `model` on `data` (a DataSplits) under a TrainingConfig went.

    `on_epoch_end(state)` runs after every finished epoch with finite losses (checkpoints go
    there; `state.stopper.improved` says whether it is the best so far). `on_stop(state)` runs
    once when training stops between epochs, before the best weights are loaded back (the
    last checkpoint goes there). `start_state` is a
    checkpoint payload to continue from, and `best_weights` the best epoch's weights before it.
    The model is left with the best epoch's weights when `restore_best` is on.

    With a distributed `group` every process calls fit alike: each trains on its part of every
    global batch, metrics are summed over the processes, and stopping is decided by rank 0.

    `autocast`: whether the steps and validation run under bf16 autocast; None: as
    `start_state` ran, else as training.amp asks on `device` (device.uses_autocast).
    """
    if autocast is None:
        autocast = uses_autocast(device, training.amp, start_state)
    stopper = EarlyStopping.from_config(training.early_stopping)
    run = _prepare(
        model,
        data,
        training,
        device=device,
        interrupt=interrupt,
        group=group,
        autocast=autocast,
    )
    state = _initial_state(run, stopper, start_state)
    run.batch_schedule = state.scheduler if steps_per_batch(state.scheduler) else None
    best = _best_weights_at_start(training, state, best_weights)
    if start_state is not None:
        # restored last, so that nothing above draws from these streams
        set_rng_state(start_state["rng"])
    # wrapped after the weights are loaded (every process loads the same checkpoint)
    run.train_model = wrap_model(model, group, device)
    if training.compile:  # the training steps only (runtime/training/compiled.py)
        run.train_model = compiled_module(run.train_model)
    if not quiet and not getattr(run.batches, "resident", True):
        print(
            f"nnspec train: the data set takes over {DEVICE_DATA_SHARE:.0%} of {device}'s "
            "free memory: it stays in host memory and each batch is copied to the device",
            file=sys.stderr,
        )
    progress = EpochProgress(training.epochs, state.epoch, run.task.metric, quiet)
    try:
        stop = _train_epochs(run, state, best, on_epoch_end, progress)
    finally:
        progress.close()
        run.batches.close()
    if on_stop is not None and stop.between_epochs:
        on_stop(state)
    # loaded even when the best epoch is the last one finished: after an interruption or
    # a non-finite epoch, the model holds a half-trained epoch
    restored = best.load_into(model)
    return _fit_result(state, stop, restored)


def _prepare(
    model: nn.Module,
    data,
    training,
    *,
    device: torch.device,
    interrupt: InterruptFlag | None,
    group: Group,
    autocast: bool,
) -> _Epochs:
    """Return what the epochs need: the model and data on the device, checked, and the
    optimizer; `autocast`: under bf16 autocast."""
    # (a monitor the task cannot fill, val_accuracy for regression, is refused by the spec)
    task = training_criterion(training, data, device)
    model.to(device)
    batches = batch_source(
        data,
        reconstructs=task.reconstructs,
        device=device,
        group=group,
        training=training,
    )
    in_autocast = autocast_for(device, autocast)
    # a model that changes its input in place (an `inplace: true` layer reading it) is given
    # copies of the validation batches, which are views of the data set kept for every epoch
    batches.copies_inputs = _check_output(
        model,
        *batches.head(2),
        task=task,
        num_classes=data.num_classes,
        autocast=in_autocast,
    )
    penalty = _weight_penalty(model, training.regularization)
    optimizer = build_optimizer(model, training.optimizer)
    return _Epochs(
        model=model,
        optimizer=optimizer,
        steps=OptimizerStep(optimizer),
        task=task,
        training=training,
        device=device,
        batches=batches,
        autocast=in_autocast,
        penalty=penalty,
        interrupt=interrupt,
        group=group,
        noise=training.data.noise,
        clip=gradient_clipper(model, training.clip_grad_norm),
        augment=BatchAugmenter.from_config(getattr(training, "augment", None)),
    )


def _weight_penalty(model: nn.Module, regularization) -> Callable[[], Tensor] | None:
    """Return the L1/L2 penalty that each batch adds to its loss, None when there is none."""
    weights = penalized_weights(model)
    l1, l2 = regularization.l1, regularization.l2
    if weights and (l1 or l2):
        return lambda: weight_penalty(weights, l1, l2)
    return None


def _initial_state(
    run: _Epochs, stopper: EarlyStopping, start_state: dict | None
) -> TrainingState:
    """Return the state training starts from: fresh, or continued from a checkpoint payload."""
    training = run.training
    # every process steps through every global batch, so the count is the same in each
    steps = len(batch_starts(run.batches.n_train, training.batch_size, run.group.world))
    scheduler = build_schedule(run.optimizer, training, stopper.mode, steps)
    state = TrainingState(run.model, run.optimizer, scheduler, stopper)
    if start_state is not None:
        _load_state(state, start_state)
    return state


def _best_weights_at_start(
    training, state: TrainingState, best_weights: dict[str, Tensor] | None
) -> _BestWeights:
    """Return the best weights known before the first epoch (those of a resumed run)."""
    config = training.early_stopping
    best = _BestWeights(config is not None and config.restore_best, best_weights)
    if best.weights is None and 0 < state.stopper.best_epoch == state.epoch:
        best.keep(state.model)  # resumed right after the best epoch
    return best


def _train_epochs(
    run: _Epochs,
    state: TrainingState,
    best: _BestWeights,
    on_epoch_end: EpochHook | None,
    progress: EpochProgress,
) -> _Stop:
    """Return why training stopped, after running the epochs that are left."""
    if state.stopper.stop_reason():  # resumed from a run that had already stopped early
        return _Stop("early_stopping", state.stopper.stop_reason())
    _note_saved_epoch(run, state.epoch)
    for epoch in range(state.epoch + 1, run.training.epochs + 1):
        row = _run_epoch(run, epoch)
        if row is None:
            return _Stop(
                "interrupted", f"{_stop_word(run)} during epoch {epoch}", False
            )
        state.history.append(row)
        diverged = _not_finite_stop(run, row, epoch)
        if diverged is not None:
            return diverged
        early = _track_monitor(run, state, best, row)
        state.epoch = epoch
        if on_epoch_end is not None:
            on_epoch_end(state)  # it tells the interrupt flag what it saved
        progress.update(row)
        if early is not None:
            return early
        if _interrupted(run, run.device):
            return _Stop("interrupted", f"{_stop_word(run)} after epoch {epoch}")
    return _Stop("max_epochs", f"reached epochs: {run.training.epochs}")


def _interrupted(run: _Epochs, device: torch.device) -> bool:
    """Return whether this process or another was asked to stop (Ctrl-C, SIGTERM); each
    process's flag then holds the signal, so every one ends with the same exit code."""
    flag = run.interrupt
    if not run.group.active:
        return flag is not None and flag.requested
    signum = run.group.max_(flag.signal_number if flag is not None else 0, device)
    if signum and flag is not None:
        flag.request(signum)
    return bool(signum)


def _stop_word(run: _Epochs) -> str:
    """Return how the stop message names the interruption: "interrupted", "terminated (SIGTERM)"."""
    return signal_word(run.interrupt.signum if run.interrupt is not None else None)


def _note_saved_epoch(run: _Epochs, epoch: int) -> None:
    """Tell the interrupt flag which epoch last.pt holds (at the start: the one resumed; then
    the writer tells it what it queued)."""
    if run.interrupt is not None:
        run.interrupt.saved_epoch = epoch


def _not_finite_stop(run: _Epochs, row: dict, epoch: int) -> _Stop | None:
    """Return the stop of an epoch whose loss is not finite (as rank 0 saw it), else None."""
    bad = [k for k in ("train_loss", "val_loss") if not math.isfinite(row[k])]
    if not run.group.from_main(bool(bad), run.device):
        return None
    bad = bad or ["train_loss"]  # rank 0 saw it; the sums are the same everywhere
    return _Stop(
        "not_finite",
        f"loss is not finite ({row[bad[0]]}) at epoch {epoch} ({bad[0]})",
        False,
    )


def _track_monitor(
    run: _Epochs, state: TrainingState, best: _BestWeights, row: dict
) -> _Stop | None:
    """Give the epoch's monitored value to early stopping (rank 0 decides), the best weights
    and the scheduler; return the early stop it calls for, None to go on."""
    stopper = state.stopper
    should_stop, reason = stopper.evaluate(row[stopper.monitor])
    should_stop = run.group.from_main(should_stop, run.device)
    if stopper.improved:
        best.keep(state.model)
    _step_scheduler(state.scheduler, row[stopper.monitor])
    return _Stop("early_stopping", reason) if should_stop else None


def _fit_result(state: TrainingState, stop: _Stop, restored: bool) -> FitResult:
    """Return the FitResult of a finished training state."""
    stopper = state.stopper
    return FitResult(
        history=state.history,
        monitor=stopper.monitor,
        mode=stopper.mode,
        best_epoch=stopper.best_epoch,
        best=stopper.best if stopper.best_epoch else None,
        epochs_run=state.epoch,
        stop_reason=stop.reason,
        stop_message=stop.message,
        restored_best=restored,
    )


def _run_epoch(run: _Epochs, epoch: int) -> dict | None:
    """Return the metrics row of one epoch (training, then validation), None if interrupted."""
    started = time.perf_counter()
    sums = _train_epoch(run, epoch)
    if sums is None:
        return None
    run.group.copy_buffers_from_main(run.model)
    val_sums = evaluate_sums(
        run.model,
        run.batches.val_batches(),
        task=run.task,
        autocast=run.autocast,
        device=run.device,
    )
    # the one device sync of the epoch (and its one collective when distributed)
    train_loss, train_metric, val_loss, val_metric = run.group.sum_(
        torch.stack([*sums, *val_sums])
    ).tolist()
    batches = run.batches
    # samples (x outputs)
    n_train, n_val = (
        batches.n_train * batches.per_sample,
        batches.n_val * batches.per_sample,
    )
    return epoch_row(
        epoch=epoch,
        task=run.task.task,
        train=(train_loss / n_train, train_metric / n_train),
        val=(val_loss / n_val, val_metric / n_val),
        lr=run.optimizer.param_groups[0]["lr"],
        seconds=time.perf_counter() - started,
    )


def _train_epoch(run: _Epochs, epoch: int) -> tuple[Tensor, Tensor] | None:
    """Return the device sums (loss, metric) of one training epoch, or None if interrupted."""
    model, steps, task, penalty = (
        run.train_model or run.model,
        run.steps,
        run.task,
        run.penalty,
    )
    device = run.device
    model.train()
    noise = noise_generator(run.training.seed, epoch, device) if run.noise > 0 else None
    loss_sum, metric_sum = device_zero(device), device_zero(device)
    augmenting = (
        augment_generator(run.training.seed, epoch, device) if run.augment else None
    )
    group = run.group
    per_sample = run.batches.per_sample  # targets per sample
    # one label per sample: predictions are scored a few MiB of outputs at a time (_Correct)
    correct = _Correct() if task.task == "classification" and per_sample == 1 else None
    for batch in run.batches.train_batches(epoch):
        if _interrupted(run, device):
            return None
        xb, yb, size = batch.x, batch.y, batch.size
        if augmenting is not None:
            xb = run.augment(xb, augmenting, size, group)
            # an autoencoder rebuilds what it saw: a copy, which a model that changes its
            # input in place cannot change
            yb = xb.clone() if task.reconstructs else yb
        if noise is not None:
            xb = xb + _batch_noise(noise, run.noise, size, xb, group)
        with run.autocast:
            output = model(xb)
            loss = task.loss(output, yb) if len(xb) else output.sum() * 0.0
        # DDP averages gradients over processes: scaled so the sum over processes is the
        # gradient of the global batch's mean loss, whatever the size of each part
        data_loss = (
            loss * (yb.numel() * group.world / (size * per_sample))
            if group.active
            else loss
        )
        objective = data_loss + penalty() if penalty is not None else data_loss
        steps.zero_grad()
        objective.backward()
        if run.clip is not None:
            run.clip()
        steps.step()
        if run.batch_schedule is not None:
            step_after_batch(run.batch_schedule)
        loss_sum.add_(loss.detach(), alpha=yb.numel())  # one kernel, in float64
        if correct is not None:
            correct.add(output, yb)
        else:
            metric_sum += task.metric_sum(output, yb)
    if correct is not None:
        correct.score_into(metric_sum)
    return loss_sum, metric_sum


# bytes of training outputs (and their labels) kept before they are scored together
SCORED_BYTES = 4 << 20


class _Correct:
    """The correct predictions of a training epoch with one label per sample, counted without
    a kernel per batch.

    Each batch's outputs and labels are kept as they are (references: no copy, no kernel) and
    scored together (cat, argmax, ==, sum) once SCORED_BYTES of them are kept, and at the end
    of the epoch. On 2 CPU cores the argmax and == of every batch cost 1.5-2% of a digits MLP
    epoch, on top of the step itself; the count is the same. Memory is bounded by what the
    outputs' storages hold (an output that is a view keeps its whole base alive, so that is
    what counts).
    """

    def __init__(self) -> None:
        self.outputs: list[Tensor] = []
        self.labels: list[Tensor] = []
        self.kept = 0  # bytes the kept tensors hold
        self.count: Tensor | None = None  # correct predictions scored so far

    def add(self, output: Tensor, labels: Tensor) -> None:
        """Keep one batch's outputs (N, C) and labels (N,) for scoring."""
        self.outputs.append(output.detach())
        self.labels.append(labels)
        self.kept += (
            output.untyped_storage().nbytes() + labels.untyped_storage().nbytes()
        )
        if self.kept >= SCORED_BYTES:
            self._score()

    def score_into(self, total: Tensor) -> None:
        """Add the count of correct predictions of every batch kept to `total` (in place)."""
        self._score()
        if self.count is not None:
            total += self.count

    def _score(self) -> None:
        if not self.outputs:
            return
        outputs, labels = torch.cat(self.outputs), torch.cat(self.labels)
        right = (outputs.argmax(dim=1) == labels).sum()
        self.count = right if self.count is None else self.count + right
        self.outputs, self.labels, self.kept = [], [], 0


def _batch_noise(
    generator: torch.Generator, std: float, size: int, xb: Tensor, group: Group
) -> Tensor:
    """Return Gaussian noise of `std` for this process's part of a global batch of `size`.

    The noise of the whole global batch is drawn, and each process takes the rows of its
    samples: so the noise a sample gets depends on (seed, epoch, its place in the batch) alone,
    the same with one process or several, and in a resumed run.
    """
    noise = torch.randn(
        (size, *xb.shape[1:]), generator=generator, device=xb.device, dtype=xb.dtype
    )
    if group.active:
        noise = noise[group.rank :: group.world]
    return noise.mul_(std)


def evaluate_sums(
    model, batches, *, task: TaskMetrics, autocast, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Return the device sums (loss x targets, metric) of `model` over `batches` (pairs of x, y
    on `device`, as a batch source's `val_batches` yields them), in eval mode."""
    model.eval()
    loss_sum, metric_sum = device_zero(device), device_zero(device)
    with torch.inference_mode():
        for xb, yb in batches:
            with autocast:
                output = model(xb)
                loss = task.loss(output, yb)
            loss_sum += loss * yb.numel()
            metric_sum += task.metric_sum(output, yb)
    return loss_sum, metric_sum


def _check_output(
    model, x, y, *, task: TaskMetrics, num_classes: int | None, autocast
) -> bool:
    """Raise UserError when the model's output does not fit the task (checked on two samples);
    return whether the model changed its input (evaluated on a copy of `x`)."""
    model.eval()
    seen = x.clone()
    version = seen._version  # torch's count of in-place writes to the tensor
    with torch.inference_mode(), autocast:
        output = model(seen)
    problem = task.check_output(output, y, num_classes)
    if problem:
        raise UserError(problem)
    # written to, whatever the values (a ReLU in place on rows with no negative value)
    return seen._version != version or not torch.equal(seen, x)


def _step_scheduler(scheduler, monitored: float) -> None:
    step_after_epoch(scheduler, monitored)


def _copy_weights(model: nn.Module) -> dict[str, Tensor]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def _load_state(state: TrainingState, payload: dict) -> None:
    """Continue from a checkpoint payload: weights, optimizer, scheduler, stopper, metrics."""
    state.model.load_state_dict(payload["model"])
    state.optimizer.load_state_dict(payload["optimizer"])
    if state.scheduler is not None and payload.get("scheduler") is not None:
        state.scheduler.load_state_dict(payload["scheduler"])
    state.stopper.load_state_dict(payload["early_stopping"])
    state.history = [dict(row) for row in payload["metrics"]]
    state.epoch = int(payload["epoch"])
