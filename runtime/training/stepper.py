"""`OptimizerStep`: a training step's `zero_grad` and `step`, the fused Adam and AdamW kernels
called without torch.optim's Python around them.

`torch.optim.Adam(fused=True).step()` spends most of its time in Python on a small model: it
groups the tensors by device and dtype, reads the state of every parameter, checks for CUDA
graph capture, profiles itself, and only then calls one kernel (`torch._fused_adam_`). On 2 CPU
cores that is 60-75 us a step on the digits models, of which the kernel takes 26-40 us; with
the tensor lists read once and kept, a step is the kernel and its step counters (about 3% of
a digits epoch). `zero_grad(set_to_none=True)` is a loop over the parameters that `p.grad =
None` does in a tenth of its time (7 us).

The arithmetic is the optimizer's own: the same kernel on the same tensors with the same
arguments, so the weights and the optimizer state (and its `state_dict`, checkpoints and
resumes) are the same to the bit; the optimizer object stays what schedules, checkpoints and
the thread probe see. Any step the direct call does not cover goes through `optimizer.step()`
as before: the first one (it creates the state), a parameter without a gradient, step hooks,
another optimizer (SGD) or an unfused one, hyper-parameters given as tensors, a torch without
the kernel. The kept lists are read again after `optimizer.load_state_dict` (it replaces the
state) and after any step taken by the optimizer itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim import optimizer as optimizer_module

# (params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, group) of each param group
_Lists = tuple[
    list[Tensor], list[Tensor], list[Tensor], list[Tensor], list[Tensor], dict
]


class OptimizerStep:
    """`zero_grad()` and `step()` of `optimizer` (module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.kernel = _direct_kernel(optimizer)
        self.direct_steps = 0  # steps taken by the direct call (tests read it)
        self._lists: list[_Lists] | None = None
        self._state: object = None  # the optimizer.state the lists were read from

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None (`zero_grad(set_to_none=True)`)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update the weights from their gradients, as `optimizer.step()` does."""
        if self.kernel is None or not self._direct_step(self.kernel):
            self._lists = None  # the optimizer may have created or replaced state
            self.optimizer.step()

    def _direct_step(self, kernel: Callable) -> bool:
        optimizer = self.optimizer
        if (
            optimizer._optimizer_step_pre_hooks
            or optimizer._optimizer_step_post_hooks
            or optimizer_module._global_optimizer_pre_hooks
            or optimizer_module._global_optimizer_post_hooks
        ):
            return False
        if self._lists is None or optimizer.state is not self._state:
            self._lists = _state_lists(optimizer)
            self._state = optimizer.state
            if self._lists is None:
                return False
        grads = []
        for params, *_ in self._lists:
            part = [p.grad for p in params]
            if any(g is None for g in part):
                return False
            grads.append(part)
        with torch.no_grad():
            for (params, exp_avgs, exp_avg_sqs, max_sqs, steps, group), part in zip(
                self._lists, grads
            ):
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                kernel(
                    params,
                    part,
                    exp_avgs,
                    exp_avg_sqs,
                    max_sqs,
                    steps,
                    amsgrad=group["amsgrad"],
                    lr=group["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                )
        self.direct_steps += 1
        return True


def _direct_kernel(optimizer: torch.optim.Optimizer) -> Callable | None:
    """Return the fused kernel a direct step calls, None when steps go through the optimizer."""
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return None  # a subclass may change the step
    decoupled = type(optimizer) is torch.optim.AdamW
    for group in optimizer.param_groups:
        if not group.get("fused") or group.get("differentiable"):
            return None
        decoupled = decoupled or group.get("decoupled_weight_decay", False)
    name = "_fused_adamw_" if decoupled else "_fused_adam_"
    return getattr(torch, name, None)


def _state_lists(optimizer: torch.optim.Optimizer) -> list[_Lists] | None:
    """Return each param group's tensors as the kernel takes them, None when a parameter has no
    state yet (before the first step) or the group holds what the direct call does not cover:
    tensors of several devices or dtypes, complex or sparse ones, tensor hyper-parameters.
    """
    lists = []
    for group in optimizer.param_groups:
        params = group["params"]
        if not params:
            continue
        if any(
            isinstance(group[key], Tensor)
            for key in ("lr", "weight_decay", "eps", "betas")
        ) or any(isinstance(beta, Tensor) for beta in group["betas"]):
            return None
        if len({(p.device, p.dtype) for p in params}) > 1 or any(
            p.is_complex() or p.is_sparse for p in params
        ):
            return None
        states = [optimizer.state.get(p) for p in params]
        if any(not state or "exp_avg" not in state for state in states):
            return None
        amsgrad = group["amsgrad"]
        lists.append(
            (
                list(params),
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                [state["max_exp_avg_sq"] for state in states] if amsgrad else [],
                [state["step"] for state in states],
                group,
            )
        )
    return lists
