"""Early stopping: decide, epoch by epoch, whether a monitored metric still improves.

Pure and model-free, like Lightning's callback: arguments are checked at construction,
`evaluate(value)` returns `(should_stop, reason)`, and the state round-trips through
`state_dict()` / `load_state_dict()` so that a resumed run decides exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
from typing import Any

from compiler.formatting import plural
from compiler.training import inferred_mode

MONITORS = ("val_loss", "val_accuracy", "train_loss")
MODES = ("min", "max")
DELTA_MODES = ("abs", "rel")


class EarlyStopping:
    """Stop `patience` epochs after the best epoch of `monitor`.

    An epoch improves only when its value beats the best so far by MORE than `min_delta`
    (`abs`: an absolute amount; `rel`: a fraction of |best|), so ties never improve. After
    `patience` epochs in a row without improvement, `evaluate` says stop; `patience=None` never
    stops (the best epoch is still tracked, for best.pt). `patience=0` stops at the first epoch
    that does not improve, like `patience=1` (as in Lightning).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str | None = None,
        patience: int | None = 10,
        min_delta: float = 0.0,
        min_delta_mode: str = "abs",
    ) -> None:
        if monitor not in MONITORS:
            raise ValueError(f"`monitor` can be {', '.join(MONITORS)}; got {monitor!r}")
        mode = inferred_mode(monitor) if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"`mode` can be min or max; got {mode!r}")
        if patience is not None and (
            isinstance(patience, bool) or not isinstance(patience, int) or patience < 0
        ):
            raise ValueError(
                f"`patience` must be an integer >= 0 or None; got {patience!r}"
            )
        if (
            isinstance(min_delta, bool)
            or not isinstance(min_delta, (int, float))
            or not min_delta >= 0
        ):
            raise ValueError(f"`min_delta` must be a number >= 0; got {min_delta!r}")
        if not math.isfinite(min_delta):
            raise ValueError(f"`min_delta` must be finite; got {min_delta!r}")
        if min_delta_mode not in DELTA_MODES:
            raise ValueError(
                f"`min_delta_mode` can be abs or rel; got {min_delta_mode!r}"
            )
        self.monitor = monitor
        self.mode = mode
        self.patience = patience
        self.min_delta = float(min_delta)
        self.min_delta_mode = min_delta_mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_epoch = 0  # 0: no epoch has improved yet
        self.epoch = 0  # epochs evaluated so far
        self.wait = 0  # epochs in a row without improvement
        self.improved = False  # whether the last evaluated epoch improved

    @classmethod
    def from_config(cls, config) -> "EarlyStopping":
        """Return the EarlyStopping of a spec's `early_stopping` section (None: never stop)."""
        if config is None:
            return cls("val_loss", "min", patience=None)
        return cls(
            config.monitor,
            config.resolved_mode,
            config.patience,
            config.min_delta,
            config.min_delta_mode,
        )

    def is_improvement(self, value: float) -> bool:
        """Return whether `value` beats the best so far by more than `min_delta`."""
        if not math.isfinite(value):
            return False
        if math.isinf(self.best):
            return True
        delta = (
            self.min_delta
            if self.min_delta_mode == "abs"
            else self.min_delta * abs(self.best)
        )
        if self.mode == "min":
            return value < self.best - delta
        return value > self.best + delta

    def evaluate(self, value: float) -> tuple[bool, str | None]:
        """Record one epoch's value; return (should_stop, reason), reason None when going on."""
        self.epoch += 1
        self.improved = self.is_improvement(value)
        if self.improved:
            self.best, self.best_epoch, self.wait = float(value), self.epoch, 0
            return False, None
        self.wait += 1
        reason = self.stop_reason()
        return reason is not None, reason

    def stop_reason(self) -> str | None:
        """Return why training should stop now (patience used up), or None."""
        if self.patience is None or self.wait < max(self.patience, 1):
            return None
        if self.best_epoch == 0:
            return f"{self.monitor} was never finite in {plural(self.wait, 'epoch')}"
        return (
            f"{self.monitor} did not improve for {plural(self.wait, 'epoch')} "
            f"(best {self.best:.6g} at epoch {self.best_epoch})"
        )

    def state_dict(self) -> dict[str, Any]:
        """Return the state as plain data (for checkpoints)."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "min_delta_mode": self.min_delta_mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "epoch": self.epoch,
            "wait": self.wait,
            "improved": self.improved,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the progress (best, epochs, wait) saved by `state_dict`; keep the settings."""
        if state.get("monitor") != self.monitor or state.get("mode") != self.mode:
            raise ValueError(
                f"the saved state monitors {state.get('monitor')} ({state.get('mode')}), "
                f"this one {self.monitor} ({self.mode})"
            )
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.epoch = int(state["epoch"])
        self.wait = int(state["wait"])
        self.improved = bool(state["improved"])
