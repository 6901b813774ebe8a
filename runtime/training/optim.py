"""The optimizer, the learning-rate schedule, gradient clipping and the L1/L2 penalty of a
training section."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from runtime.training.warmup import LinearWarmup

# Layers whose `weight` the L1/L2 penalty covers: the affine maps, not biases or norm scales.
PENALIZED = (nn.Linear, nn.modules.conv._ConvNd)


def build_optimizer(model: nn.Module, config) -> torch.optim.Optimizer:
    """Return the torch optimizer of an `optimizer` section over the model's parameters.

    `config` is the optimizer's own model (compiler.training): only sgd has momentum and
    nesterov, only adam and adamw have betas.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if config.type == "sgd":
        return fused_if_supported(
            torch.optim.SGD,
            params,
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        )
    if config.type in ("adam", "adamw"):
        return fused_if_supported(
            torch.optim.Adam if config.type == "adam" else torch.optim.AdamW,
            params,
            lr=config.lr,
            betas=tuple(config.betas),
            weight_decay=config.weight_decay,
        )
    raise ValueError(
        f"unknown optimizer type {config.type!r}"
    )  # the spec model forbids it


def fused_if_supported(optimizer_class, params, **settings) -> torch.optim.Optimizer:
    """Return `optimizer_class(params, fused=True, ...)`, or the default implementation where
    this torch has no fused kernel for the parameters' device or dtype.

    The fused step does the same arithmetic (results agree to float rounding) in one kernel
    instead of a Python loop over the parameters: on 2 CPU cores it takes 12-15 ms off an epoch of
    the digits MLP (about 70 ms), which is what keeps the runtime level with a hand-written loop
    (benchmarks/overhead.py, docs/performance.md).
    """
    try:
        return optimizer_class(params, fused=True, **settings)
    except (RuntimeError, TypeError, ValueError):
        return optimizer_class(params, **settings)


def build_schedule(
    optimizer: torch.optim.Optimizer, training, mode: str, steps_per_epoch: int
):
    """Return the learning-rate schedule of a training section: its scheduler, wrapped in a
    LinearWarmup when it has `warmup` (None when it has neither).

    `steps_per_epoch` is the number of (global) batches of an epoch: one_cycle spans
    `epochs * steps_per_epoch` of them, and `warmup.epochs` lasts that many per epoch.
    """
    schedule = build_scheduler(
        optimizer,
        training.scheduler,
        training.epochs,
        mode,
        steps_per_epoch=steps_per_epoch,
    )
    warmup = training.warmup
    if warmup is None:
        return schedule
    steps = warmup.steps or warmup.epochs * steps_per_epoch
    return LinearWarmup(
        optimizer, schedule, steps=steps, start_factor=warmup.start_factor
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config,
    epochs: int,
    mode: str,
    *,
    steps_per_epoch: int = 1,
):
    """Return the scheduler of a `scheduler` section (None when there is none).

    `config` is the schedule's own model (compiler.training), holding only its own arguments.

    All but one_cycle step once per epoch; `plateau` watches the early-stopping monitor in its
    `mode`. one_cycle steps after every batch, over `epochs * steps_per_epoch` batches.
    """
    if config is None:
        return None
    lr_scheduler = torch.optim.lr_scheduler
    if config.type == "one_cycle":
        return lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.max_lr or optimizer.param_groups[0]["lr"],
            total_steps=epochs * steps_per_epoch,
            pct_start=config.pct_start,
            anneal_strategy=config.anneal_strategy,
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
            # the optimizer keeps the momentum and betas the spec gives it
            cycle_momentum=False,
        )
    if config.type == "step":
        return lr_scheduler.StepLR(
            optimizer, step_size=config.step_size, gamma=config.gamma
        )
    if config.type == "cosine":
        return lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.t_max or epochs, eta_min=config.eta_min
        )
    if config.type == "plateau":
        return lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=config.factor, patience=config.patience
        )
    raise ValueError(f"unknown scheduler type {config.type!r}")


def check_schedule_resumes(stored_epochs, training, path) -> str | None:
    """Return why a checkpoint trained for `stored_epochs` cannot be resumed under `training`,
    None when it can: a one_cycle schedule spans the run's batches, so its epochs are fixed.
    """
    if training.scheduler is None or training.scheduler.type != "one_cycle":
        return None
    if stored_epochs is None or stored_epochs == training.epochs:
        return None
    return (
        f"{path} was trained with a one_cycle schedule over {stored_epochs} epochs, which "
        f"cannot be stretched to {training.epochs}: resume with training.epochs "
        f"{stored_epochs}, or start a new run"
    )


def steps_per_batch(schedule) -> bool:
    """Return whether `schedule` steps after every batch (one_cycle, a warmup)."""
    return isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR) or getattr(
        schedule, "steps_per_batch", False
    )


def step_after_batch(schedule) -> None:
    """Step a schedule that steps per batch; a one_cycle at its last batch stays there."""
    if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        # torch raises past total_steps, which a resume in another number of processes can
        # reach: its epochs may have one batch more (batch_starts joins a short last batch)
        if schedule.last_epoch < schedule.total_steps:
            schedule.step()
    else:
        schedule.step_batch()


def step_after_epoch(schedule, monitored: float) -> None:
    """Step a schedule at the end of an epoch (plateau on `monitored`); one_cycle does not."""
    if schedule is None or isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        return
    if isinstance(schedule, LinearWarmup):
        schedule.step_epoch(monitored)
    elif isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
        schedule.step(monitored)
    else:
        schedule.step()


def gradient_clipper(model: nn.Module, max_norm: float | None):
    """Return a function that clips the gradients of `model`'s parameters to a total L2 norm of
    `max_norm` and returns that norm before clipping (None when there is no limit).

    Called after backward and before the optimizer step: under DDP the gradients are the
    processes' average by then, so every process clips the same gradients alike.
    """
    if max_norm is None:
        return None
    params = [p for p in model.parameters() if p.requires_grad]
    return lambda: torch.nn.utils.clip_grad_norm_(params, max_norm)


def penalized_weights(model: nn.Module) -> list[Tensor]:
    """Return the `weight` of every Linear and Conv layer: what regularization.l1/l2 covers."""
    return [
        m.weight
        for m in model.modules()
        if isinstance(m, PENALIZED) and m.weight is not None and m.weight.requires_grad
    ]


def weight_penalty(weights: list[Tensor], l1: float, l2: float) -> Tensor:
    """Return l1 * sum|w| + l2 * sum w^2 over `weights` (added to the loss, so it has gradients)."""
    total = weights[0].new_zeros(())
    for w in weights:
        if l1:
            total = total + l1 * w.abs().sum()
        if l2:
            total = total + l2 * w.pow(2).sum()
    return total
