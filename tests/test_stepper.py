"""OptimizerStep calls the fused Adam kernels directly and steps exactly as the optimizer does."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from compiler.training import OptimizerConfig
from runtime.training.optim import build_optimizer
from runtime.training.stepper import OptimizerStep
from tests.test_optim_fused import cpu_has_fused_adam

needs_fused = pytest.mark.skipif(
    not cpu_has_fused_adam(), reason="this torch has no fused optimizers on CPU"
)

ADAMS = {
    "adam": OptimizerConfig(type="adam", lr=0.01),
    "adam-l2": OptimizerConfig(type="adam", lr=0.01, weight_decay=0.01),
    "adamw": OptimizerConfig(type="adamw", lr=0.01, weight_decay=0.05),
}


class TwoHeads(nn.Module):
    """A model whose second head is used on some steps only (its gradients are None on the
    others), with a conv weight for a 4-d parameter."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.a = nn.Linear(3 * 4 * 4, 5)
        self.b = nn.Linear(3 * 4 * 4, 5)

    def forward(self, x, both: bool = True):
        h = self.conv(x).relu().flatten(1)
        return self.a(h) + self.b(h) if both else self.a(h)


def train(model, optimizer, stepper, steps, *, start=0, skip_b=(), schedule=None):
    """Take `steps` steps on fixed batches; `stepper` None: optimizer.zero_grad and step."""
    for i in range(start, start + steps):
        generator = torch.Generator().manual_seed(i)
        x = torch.randn(8, 1, 4, 4, generator=generator)
        loss = model(x, both=i not in skip_b).pow(2).mean()
        if stepper is None:
            optimizer.zero_grad(set_to_none=True)
        else:
            stepper.zero_grad()
        loss.backward()
        (optimizer if stepper is None else stepper).step()
        if schedule is not None:
            schedule.step()


def assert_same(model_a, optimizer_a, model_b, optimizer_b):
    for (key, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), key
    state_a, state_b = optimizer_a.state_dict(), optimizer_b.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    assert state_a["state"].keys() == state_b["state"].keys()
    for index, entries in state_a["state"].items():
        assert entries.keys() == state_b["state"][index].keys()
        for name, value in entries.items():
            assert torch.equal(value, state_b["state"][index][name]), (index, name)


def twins(config):
    torch.manual_seed(0)
    model = TwoHeads()
    other = copy.deepcopy(model)
    return (
        (model, build_optimizer(model, config)),
        (other, build_optimizer(other, config)),
    )


@needs_fused
@pytest.mark.parametrize("name", ADAMS)
def test_direct_steps_are_the_optimizers_steps_to_the_bit(name):
    (model, optimizer), (other, reference) = twins(ADAMS[name])
    stepper = OptimizerStep(optimizer)
    assert stepper.kind == ("adamw" if name == "adamw" else "adam")
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, 4, gamma=0.5)
    other_schedule = torch.optim.lr_scheduler.StepLR(reference, 4, gamma=0.5)
    with warnings.catch_warnings():
        # no "lr_scheduler.step() before optimizer.step()": the first step is the optimizer's
        warnings.simplefilter("error")
        train(model, optimizer, stepper, 12, schedule=schedule)
    train(other, reference, None, 12, schedule=other_schedule)
    assert stepper.direct_steps == 11  # all but the first, which creates the state
    assert_same(model, optimizer, other, reference)
    assert optimizer.param_groups[0]["lr"] == 0.01 * 0.5**3


@needs_fused
def test_amsgrad_steps_alike():
    torch.manual_seed(0)
    model = TwoHeads()
    other = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, amsgrad=True, fused=True)
    reference = torch.optim.Adam(other.parameters(), lr=0.01, amsgrad=True, fused=True)
    stepper = OptimizerStep(optimizer)
    train(model, optimizer, stepper, 6)
    train(other, reference, None, 6)
    assert stepper.direct_steps == 5
    assert_same(model, optimizer, other, reference)


@needs_fused
def test_a_parameter_without_a_gradient_takes_the_optimizers_step():
    (model, optimizer), (other, reference) = twins(ADAMS["adam"])
    stepper = OptimizerStep(optimizer)
    # head b has no gradient on steps 0-2 and 6 (the optimizer skips it), and no state
    # before step 3 (the optimizer's step creates it)
    skip = {0, 1, 2, 6}
    train(model, optimizer, stepper, 10, skip_b=skip)
    train(other, reference, None, 10, skip_b=skip)
    assert stepper.direct_steps == 10 - len(skip) - 1
    assert_same(model, optimizer, other, reference)


@needs_fused
def test_a_loaded_state_is_the_one_stepped():
    """A resume replaces the optimizer's state (load_state_dict): the stepper must update the
    new tensors, not the ones it read before."""
    (model, optimizer), (other, reference) = twins(ADAMS["adam"])
    saved_model, saved_optimizer = None, None
    stepper = OptimizerStep(optimizer)
    train(model, optimizer, stepper, 3)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    train(model, optimizer, stepper, 4, start=3)  # steps a resume forgets
    model.load_state_dict(saved_model)
    optimizer.load_state_dict(saved_optimizer)
    before = stepper.direct_steps
    train(model, optimizer, stepper, 3, start=3)
    assert stepper.direct_steps == before + 3
    train(other, reference, None, 6)
    assert_same(model, optimizer, other, reference)


SGDS = {
    "sgd-nesterov": OptimizerConfig(
        type="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001
    ),
    "sgd-plain": OptimizerConfig(type="sgd", lr=0.05, momentum=0.0),
}


@needs_fused
@pytest.mark.parametrize("name", SGDS)
def test_sgd_direct_steps_are_the_optimizers_steps(name):
    (model, optimizer), (other, reference) = twins(SGDS[name])
    stepper = OptimizerStep(optimizer)
    assert stepper.kind == "sgd"
    skip = {4}  # head b without a gradient: the optimizer's step (it skips b)
    train(model, optimizer, stepper, 8, skip_b=skip)
    train(other, reference, None, 8, skip_b=skip)
    assert stepper.direct_steps == 6
    assert_same(model, optimizer, other, reference)


def steps_through_the_optimizer(make_optimizer) -> None:
    """Train twins with `make_optimizer(parameters)`: the stepper takes no direct step and the
    weights and state are those of optimizer.step()."""
    torch.manual_seed(0)
    model = TwoHeads()
    other = copy.deepcopy(model)
    optimizer = make_optimizer(model.parameters())
    reference = make_optimizer(other.parameters())
    stepper = OptimizerStep(optimizer)
    assert stepper.kind is None
    train(model, optimizer, stepper, 4)
    train(other, reference, None, 4)
    assert stepper.direct_steps == 0
    assert_same(model, optimizer, other, reference)


def test_other_and_unfused_optimizers_step_through_the_optimizer():
    steps_through_the_optimizer(lambda params: torch.optim.RMSprop(params, lr=0.01))
    unfused = OptimizerStep(torch.optim.Adam(nn.Linear(2, 2).parameters(), fused=False))
    assert unfused.kind is None


@needs_fused
def test_a_tensor_learning_rate_steps_through_the_optimizer():
    steps_through_the_optimizer(
        lambda params: torch.optim.Adam(params, lr=torch.tensor(0.01), fused=True)
    )


@needs_fused
def test_step_hooks_still_run():
    (model, optimizer), _ = twins(ADAMS["adam"])
    stepper = OptimizerStep(optimizer)
    train(model, optimizer, stepper, 2)
    seen = []
    handle = optimizer.register_step_post_hook(lambda *_: seen.append(1))
    try:
        train(model, optimizer, stepper, 3, start=2)
    finally:
        handle.remove()
    assert seen == [1, 1, 1]
    assert stepper.direct_steps == 1  # the second step only, before the hook


def test_zero_grad_sets_every_gradient_to_none():
    model = TwoHeads()
    stepper = OptimizerStep(torch.optim.Adam(model.parameters()))
    model(torch.randn(2, 1, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    stepper.zero_grad()
    assert all(p.grad is None for p in model.parameters())


@needs_fused
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_fit_trains_through_direct_steps_to_the_same_weights(monkeypatch, optimizer):
    """fit steps through OptimizerStep, and its weights are those of fit stepping through
    `optimizer.step()` (the stepper's direct call patched out)."""
    from compiler import build_sequential, load_spec
    from compiler.training import TrainingConfig
    from runtime.training import loop
    from tests.test_train import synthetic, tiny_mlp

    training = TrainingConfig.model_validate(
        {
            "epochs": 3,
            "batch_size": 16,
            "optimizer": {"type": optimizer, "lr": 0.02},
            "early_stopping": None,
        }
    )
    made = []

    class Recorded(OptimizerStep):
        def __init__(self, optimizer):
            super().__init__(optimizer)
            made.append(self)

    def trained(direct: bool):
        torch.manual_seed(0)
        model = build_sequential(load_spec(tiny_mlp(2, 3)))
        with monkeypatch.context() as patch:
            patch.setattr(loop, "OptimizerStep", Recorded)
            if not direct:
                patch.setattr(Recorded, "_direct_step", lambda self: False)
            loop.fit(
                model,
                synthetic("classification"),
                training,
                device=torch.device("cpu"),
                quiet=True,
            )
        return model.state_dict(), made[-1].direct_steps

    direct, steps = trained(True)
    through_optimizer, none = trained(False)
    assert steps == 3 * 5 - 1 and none == 0  # 72 samples: 5 batches of 16 an epoch
    for key, value in direct.items():
        assert torch.equal(value, through_optimizer[key]), key
