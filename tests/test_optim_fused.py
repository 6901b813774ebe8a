"""The runtime's optimizers use torch's fused kernels where they exist, and fall back where not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compiler.training import OptimizerConfig
from runtime.training.optim import build_optimizer, fused_if_supported

CONFIGS = [
    OptimizerConfig(type="adam", lr=0.01),
    OptimizerConfig(type="adamw", lr=0.01, weight_decay=0.05),
    OptimizerConfig(
        type="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001
    ),
]


def cpu_has_fused_adam() -> bool:
    try:
        torch.optim.Adam([nn.Parameter(torch.zeros(2))], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def trained_weights(config: OptimizerConfig, fused: bool | None) -> list[torch.Tensor]:
    """Return the weights of a small model after 25 steps (fused: None = as the runtime builds)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    if fused is None:
        optimizer = build_optimizer(model, config)
    else:
        optimizer_class = {
            "adam": torch.optim.Adam,
            "adamw": torch.optim.AdamW,
            "sgd": torch.optim.SGD,
        }[config.type]
        settings = {"lr": config.lr, "weight_decay": config.weight_decay}
        if config.type == "sgd":
            settings.update(momentum=config.momentum, nesterov=config.nesterov)
        else:
            settings["betas"] = tuple(config.betas)
        optimizer = optimizer_class(model.parameters(), fused=fused, **settings)
    generator = torch.Generator().manual_seed(1)
    for _ in range(25):
        x = torch.randn(16, 6, generator=generator)
        y = torch.randint(0, 3, (16,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.skipif(
    not cpu_has_fused_adam(), reason="this torch has no fused optimizers on CPU"
)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.type)
def test_cpu_optimizers_are_fused(config):
    model = nn.Linear(4, 2)
    optimizer = build_optimizer(model, config)
    assert optimizer.param_groups[0]["fused"] is True
    assert optimizer.param_groups[0]["lr"] == config.lr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.type)
def test_fused_steps_follow_the_default_implementation(config):
    built = trained_weights(config, fused=None)
    default = trained_weights(config, fused=False)
    for mine, theirs in zip(built, default):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    torch.manual_seed(0)
    initial = nn.Linear(6, 8).weight.detach()
    assert not torch.allclose(built[0], initial)  # the steps did move the weights


def test_falls_back_to_the_default_where_fused_is_refused():
    calls = []

    class NoFusedAdam(torch.optim.Adam):
        def __init__(self, params, **settings):
            calls.append(settings.get("fused"))
            if settings.get("fused"):
                raise RuntimeError(
                    "`fused=True` requires all the params to be on a supported device"
                )
            super().__init__(params, **settings)

    optimizer = fused_if_supported(
        NoFusedAdam, list(nn.Linear(3, 1).parameters()), lr=0.1
    )
    assert calls == [True, None]
    assert optimizer.param_groups[0]["fused"] in (None, False)
    assert optimizer.param_groups[0]["lr"] == 0.1
