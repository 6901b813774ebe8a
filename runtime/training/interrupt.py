"""Ctrl-C during training: a flag the loop checks between batches, so no write is cut short."""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator


class InterruptFlag:
    """Set when the user asked to stop; the loop reads `requested` between batches."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def catch_sigint(quiet: bool = False) -> Iterator[InterruptFlag]:
    """Yield a flag that the first Ctrl-C sets; a second Ctrl-C raises KeyboardInterrupt at once.

    Outside the main thread (where signals cannot be caught) the flag is never set and Ctrl-C
    keeps its usual effect.
    """
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handle(signum, frame) -> None:
        flag.requested = True
        signal.signal(
            signal.SIGINT, signal.default_int_handler
        )  # the next Ctrl-C is not polite
        if not quiet:
            print(
                "\nstopping after this batch (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
