"""`LinearWarmup`: a schedule's learning rates scaled up linearly over the first batches.

The warmup is a factor on top of the rate the schedule (step, cosine, plateau, or none) sets, and
never part of that rate: before the schedule steps at the end of an epoch, the optimizer gets the
schedule's own rates back, so the schedule goes on from them as it would without a warmup (torch's
chained schedulers would fold the factor into cosine's recursive rate for good).
"""

from __future__ import annotations

from typing import Any

import torch


class LinearWarmup:
    """The learning-rate schedule of a run with `training.warmup`: `schedule` (a torch scheduler
    stepped per epoch, or None) with its rates times a factor that rises linearly to 1.
    """

    # stepped after every batch (`step_batch`) and after every epoch (`step_epoch`)
    steps_per_batch = True

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        schedule,
        *,
        steps: int,
        start_factor: float,
    ) -> None:
        self.optimizer = optimizer
        self.schedule = schedule
        self.steps = steps  # batches the warmup lasts
        self.start_factor = start_factor
        self.done = 0  # batches trained so far
        self.scheduled = [group["lr"] for group in optimizer.param_groups]
        self._apply()

    def factor(self) -> float:
        """Return the factor of the next batch's rate: start_factor at the first, 1 after."""
        if self.done >= self.steps:
            return 1.0
        return self.start_factor + (1.0 - self.start_factor) * self.done / self.steps

    def _apply(self) -> None:
        factor = self.factor()
        for group, lr in zip(self.optimizer.param_groups, self.scheduled):
            group["lr"] = lr * factor if factor != 1.0 else lr

    def step_batch(self) -> None:
        """Count a trained batch and set the next batch's rates."""
        self.done += 1
        if self.done <= self.steps:  # after the warmup the rates are the schedule's own
            self._apply()

    def step_epoch(self, monitored: float) -> None:
        """Step the schedule from its own rates (plateau on `monitored`), then scale them."""
        if self.schedule is not None:
            for group, lr in zip(self.optimizer.param_groups, self.scheduled):
                group["lr"] = lr
            if isinstance(self.schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.schedule.step(monitored)
            else:
                self.schedule.step()
            self.scheduled = [group["lr"] for group in self.optimizer.param_groups]
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        """Return the warmup's place and the schedule's state (plain data, for a checkpoint)."""
        return {
            "warmup_steps": self.steps,
            "warmup_done": self.done,
            "scheduled_lrs": list(self.scheduled),
            "schedule": (
                self.schedule.state_dict() if self.schedule is not None else None
            ),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state_dict()`'s data; raise KeyError or ValueError when it is not."""
        lrs = [float(lr) for lr in state["scheduled_lrs"]]
        if len(lrs) != len(self.optimizer.param_groups):
            raise ValueError("the warmup's rates do not fit the optimizer")
        self.steps, self.done = int(state["warmup_steps"]), int(state["warmup_done"])
        self.scheduled = lrs
        if self.schedule is not None:
            self.schedule.load_state_dict(state["schedule"])
        self._apply()
