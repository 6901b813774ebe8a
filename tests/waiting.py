"""Waiting for an event with a deadline, instead of sleeping for a guessed time."""

from __future__ import annotations

import subprocess
import time
from typing import Callable

import pytest


def wait_until(
    condition: Callable[[], object],
    what: str,
    timeout: float = 120,
    process: subprocess.Popen | None = None,
    interval: float = 0.01,
) -> None:
    """Return as soon as `condition()` is true; fail the test when `timeout` seconds pass first.

    `what` names the awaited event in the failure ("the first epoch's last.pt"). With `process`, the
    test also fails, with the end of the process's stderr, when the process ends before the
    event: it can no longer happen.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            _, stderr = process.communicate()
            if isinstance(stderr, bytes):
                stderr = stderr.decode(errors="replace")
            pytest.fail(
                f"the process ended (exit code {process.returncode}) before: {what}\n"
                f"{(stderr or '')[-3000:]}"
            )
        if time.monotonic() >= deadline:
            pytest.fail(f"waited {timeout:g} s in vain for: {what}")
        time.sleep(interval)
