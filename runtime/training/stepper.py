"""`OptimizerStep`: a training step's `zero_grad` and `step`, the fused Adam, AdamW and SGD
kernels called without torch.optim's Python around them.

`torch.optim.Adam(fused=True).step()` spends most of its time in Python on a small model: it
groups the tensors by device and dtype, reads the state of every parameter, checks for CUDA
graph capture, profiles itself, and only then calls one kernel (`torch._fused_adam_`). Alone,
on 2 CPU cores, that is 63-78 us a step on the digits models, of which the kernel and its step
counters take 30-45 us; in `nnspec train`, where each step's forward and backward pass stand
between, taking it out made a digits MLP epoch 13% shorter (docs/performance.md, "The fused
kernel called directly"). `zero_grad(set_to_none=True)` is a loop over the parameters that
`p.grad = None` does in a tenth of its time (7 us).

The arithmetic is the optimizer's own: the same kernel on the same tensors with the same
arguments, so the weights and the optimizer state (its `state_dict`, checkpoints and resumes)
are the same to the bit, and the optimizer object stays what schedules, checkpoints and the
thread probe see. The first step is the optimizer's own: it creates the state, and a schedule
stepped after it sees the step it expects. Any later step the direct call does not cover goes
through `optimizer.step()` too: a parameter without a gradient or without state, step hooks,
another optimizer or an unfused one, hyper-parameters given as tensors, a torch without the
kernel. The tensor lists are read again after `optimizer.load_state_dict` (it replaces the
state) and after any step the optimizer took itself.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.optim import optimizer as optimizer_module


class OptimizerStep:
    """`zero_grad()` and `step()` of `optimizer` (module docstring)."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        # "adam", "adamw", "sgd"; None: every step is the optimizer's
        self.kind = _direct_kind(optimizer)
        self.direct_steps = 0  # steps taken by the direct call (tests read it)
        self._lists: list[tuple] | None = None  # per param group: what the kernel takes
        self._state: object = None  # the optimizer.state the lists were read from
        self._stepped = False  # the optimizer has taken a step of its own

    def zero_grad(self) -> None:
        """Set every parameter's gradient to None (`zero_grad(set_to_none=True)`)."""
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Update the weights from their gradients, as `optimizer.step()` does."""
        if self.kind is None or not self._stepped or not self._direct_step():
            self._lists = None  # the optimizer may create or replace state
            self.optimizer.step()
            self._stepped = True

    def _direct_step(self) -> bool:
        optimizer = self.optimizer
        if (
            optimizer._optimizer_step_pre_hooks
            or optimizer._optimizer_step_post_hooks
            or optimizer_module._global_optimizer_pre_hooks
            or optimizer_module._global_optimizer_post_hooks
        ):
            return False
        if self._lists is None or optimizer.state is not self._state:
            self._lists = _state_lists(optimizer, self.kind)
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
            for lists, part in zip(self._lists, grads):
                if self.kind == "sgd":
                    _sgd_step(*lists, part)
                else:
                    _adam_step(*lists, part, decoupled=self.kind == "adamw")
        self.direct_steps += 1
        return True


def _adam_step(
    params, exp_avgs, exp_avg_sqs, max_sqs, steps, group, grads, *, decoupled
):
    """One step of torch.optim.adam._fused_adam on one device and dtype, without a scaler."""
    beta1, beta2 = group["betas"]
    torch._foreach_add_(steps, 1)
    kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
    kernel(
        params,
        grads,
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


def _sgd_step(params, buffers, group, grads):
    """One step of torch.optim.sgd._fused_sgd after the first (the buffers exist)."""
    torch._fused_sgd_(
        params,
        grads,
        buffers,
        weight_decay=group["weight_decay"],
        momentum=group["momentum"],
        lr=group["lr"],
        dampening=group["dampening"],
        nesterov=group["nesterov"],
        maximize=group["maximize"],
        is_first_step=False,
    )


def _direct_kind(optimizer: torch.optim.Optimizer) -> str | None:
    """Return which kernel a direct step calls, None when steps go through the optimizer."""
    kinds = {
        torch.optim.Adam: "adam",
        torch.optim.AdamW: "adamw",
        torch.optim.SGD: "sgd",
    }
    kind = kinds.get(type(optimizer))  # not a subclass: it may change the step
    hooks = (
        hasattr(optimizer, "_optimizer_step_pre_hooks")
        and hasattr(optimizer, "_optimizer_step_post_hooks")
        and hasattr(optimizer_module, "_global_optimizer_pre_hooks")
        and hasattr(optimizer_module, "_global_optimizer_post_hooks")
    )
    if kind is None or not hooks:  # where a torch keeps its hooks elsewhere: not seen
        return None
    for group in optimizer.param_groups:
        if not group.get("fused") or group.get("differentiable"):
            return None
        if kind == "adam" and group.get("decoupled_weight_decay", False):
            kind = "adamw"
        values = [group["lr"], group["weight_decay"]]
        if kind != "sgd":
            values += [*group["betas"], group["eps"]]
        if any(isinstance(value, Tensor) for value in values):
            return None  # torch moves tensor hyper-parameters between devices itself
        params = group["params"]
        if len({(p.device, p.dtype) for p in params}) > 1 or any(
            p.is_complex() or p.is_sparse for p in params
        ):
            return None  # torch groups these by device and dtype, or views them as real
    kernel = {"adam": "_fused_adam_", "adamw": "_fused_adamw_", "sgd": "_fused_sgd_"}
    return kind if hasattr(torch, kernel[kind]) else None


def _state_lists(optimizer: torch.optim.Optimizer, kind: str) -> list[tuple] | None:
    """Return each param group's tensors as the kernel takes them, None when a parameter has no
    state yet (the optimizer's own step creates it)."""
    lists = []
    for group in optimizer.param_groups:
        params = group["params"]
        if not params:
            continue
        states = [optimizer.state.get(p) for p in params]
        if kind == "sgd":
            if group["momentum"] == 0:  # no buffers
                lists.append((list(params), [], group))
                continue
            if any(
                not state or state.get("momentum_buffer") is None for state in states
            ):
                return None
            buffers = [state["momentum_buffer"] for state in states]
            lists.append((list(params), buffers, group))
            continue
        if any(not state or "exp_avg" not in state for state in states):
            return None
        lists.append(
            (
                list(params),
                [state["exp_avg"] for state in states],
                [state["exp_avg_sq"] for state in states],
                (
                    [state["max_exp_avg_sq"] for state in states]
                    if group["amsgrad"]
                    else []
                ),
                [state["step"] for state in states],
                group,
            )
        )
    return lists
