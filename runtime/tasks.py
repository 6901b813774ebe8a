"""What each task is measured by beside its loss; no torch here, so reports and sweeps read it.

| task           | metric   | a variant is ranked by |
| -------------- | -------- | ---------------------- |
| classification | accuracy | 1 - val accuracy       |
| binary         | accuracy | 1 - val accuracy       |
| regression     | mae      | val loss               |
| reconstruction | mae      | val loss               |
"""

from __future__ import annotations

ACCURACY_TASKS = ("classification", "binary")


def metric_name(task: str) -> str:
    """Return the metric column of `task`: `accuracy`, or `mae` for regression and reconstruction."""
    return "accuracy" if task in ACCURACY_TASKS else "mae"


def has_accuracy(task: str) -> bool:
    """Return whether `task` is measured by accuracy (else by its loss and MAE)."""
    return task in ACCURACY_TASKS
