"""The optimizer, the learning-rate schedule and the L1/L2 penalty of a training section."""

from __future__ import annotations

import torch
from torch import Tensor, nn

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


def build_scheduler(optimizer: torch.optim.Optimizer, config, epochs: int, mode: str):
    """Return the scheduler of a `scheduler` section (None when there is none).

    `config` is the schedule's own model (compiler.training), holding only its own arguments.

    All step once per epoch; `plateau` watches the early-stopping monitor in its `mode`.
    """
    if config is None:
        return None
    lr_scheduler = torch.optim.lr_scheduler
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
