"""Ctrl-C and SIGTERM during training: a flag the loop checks between batches, so no write is cut
short.

The first SIGINT (Ctrl-C) or SIGTERM sets the flag: the loop drops the epoch in progress, last.pt
keeps the last finished one, the outputs are written and the command ends with 128 + the signal's
number (130 for Ctrl-C, 143 for SIGTERM). From then until the process ends, a second one stops at
once: it raises `StopNow` in the main thread, so what is on its way out finishes on the way up
(the write in flight is waited for; the atomic writer removes a temporary file it was filling),
and `second_interrupt_ends_here` ends the process with one line, skipping the interpreter's
teardown (atexit handlers, threads such as tqdm's monitor, gloo's), where a signal would print a
traceback or abort. Every signal after the second is ignored.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptFlag:
    """Set when the user asked to stop; the loop reads `requested` between batches."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None  # the signal that set it (None: set by code)
        # the epoch last.pt holds once the writes queued so far are done (the loop keeps it)
        self.saved_epoch = 0

    def request(self, signum: int) -> None:
        """Set the flag for `signum` (another process's signal, under DDP), keeping the first."""
        if not self.requested:
            self.requested = True
            self.signum = signum

    @property
    def signal_number(self) -> int:
        """Return the signal that set the flag (SIGINT when code set it), 0 while it is not set."""
        return int(self.signum or signal.SIGINT) if self.requested else 0

    @property
    def exit_code(self) -> int:
        """Return the exit code of a run this flag stopped: 128 + the signal (130 for Ctrl-C)."""
        return exit_code(self.signum or signal.SIGINT)


class StopNow(KeyboardInterrupt):
    """Raised by the second interrupt: stop at once (what was on its way out finishes first)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_word(signum))
        self.signum = signum


def exit_code(signum: int) -> int:
    """Return the exit code of a command stopped by `signum`: 128 + its number."""
    return 128 + int(signum)


def signal_word(signum: int | None) -> str:
    """Return how a report names a stop by `signum`: "interrupted" (Ctrl-C), "terminated (SIGTERM)"."""
    if signum in (None, signal.SIGINT):
        return "interrupted"
    if signum == signal.SIGTERM:
        return "terminated (SIGTERM)"
    return f"stopped by {signal.Signals(signum).name}"


# the flag of the latest run in this process; the CLI reads its signal and saved epoch
_latest: InterruptFlag | None = None
# how many `second_interrupt_ends_here` are active: where a StopNow is caught
_catchers = 0
# the second interrupt's signal, once one was received
_stopping: int | None = None


def latest_flag() -> InterruptFlag | None:
    """Return the flag of the latest `catch_sigint` of this process (None before the first)."""
    return _latest


@contextmanager
def catch_sigint(quiet: bool = False) -> Iterator[InterruptFlag]:
    """Yield a flag that the first Ctrl-C or SIGTERM sets; a second one stops at once.

    Outside the main thread (where signals cannot be caught) the flag is never set and the
    signals keep their usual effect. Once a signal has set the flag, and a command runs this
    under `second_interrupt_ends_here`, the second-signal handler stays installed after this
    block, until the process ends: a second Ctrl-C while the outputs are written or the
    interpreter ends must not print a traceback. Without one (the Python API), the previous
    handlers come back.
    """
    global _latest
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    _latest = flag

    def handle(signum, frame) -> None:
        if flag.requested:
            _stop_now(signum, frame)
        flag.request(signum)
        if not quiet:
            again = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            print(
                f"\n{signal_word(signum)}: stopping after this batch ({again} again to "
                "stop at once)",
                file=sys.stderr,
                flush=True,
            )

    previous = {signum: signal.signal(signum, handle) for signum in STOP_SIGNALS}
    try:
        yield flag
    finally:
        # the second-signal handler stays only where a command will end the process on it
        # (second_interrupt_ends_here): a library caller gets its own handlers back
        keep = flag.requested and _catchers > 0
        for signum, handler in previous.items():
            signal.signal(signum, _stop_now if keep else handler)


def _stop_now(signum, frame) -> None:
    """The second interrupt: ignore any later one, then stop at once."""
    global _stopping
    _stopping = signum
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    if _catchers:
        raise StopNow(signum)
    # nothing is on its way out any more (the command has returned): end here
    _end_now(signum, "")


@contextmanager
def second_interrupt_ends_here(resume_hint=None) -> Iterator[None]:
    """Around a command: a second interrupt (`StopNow`) ends the process at once with one line.

    `resume_hint()` returns what to add to that line ("; continue with: CMD"). Once a
    StopNow was raised, any exception that follows it (another training process that has
    already stopped makes a collective fail) ends the process the same way.
    """
    global _catchers
    _catchers += 1
    try:
        yield
    except BaseException as exc:
        signum = exc.signum if isinstance(exc, StopNow) else _stopping
        if signum is None:
            raise
        try:
            hint = resume_hint() if resume_hint is not None else ""
        except Exception:  # the hint is a courtesy; the stop is what was asked
            hint = ""
        _end_now(signum, hint)
    finally:
        _catchers -= 1


def _end_now(signum: int, hint: str) -> None:
    """Print the one line of a second interrupt and end the process (no teardown)."""
    flag = _latest
    if os.environ.get("RANK", "0") == "0":  # one line, from rank 0 (--quiet or not)
        saved = (
            f"last.pt holds epoch {flag.saved_epoch}"
            if flag is not None and flag.saved_epoch
            else "no epoch finished, so nothing was saved"
        )
        word = signal_word(signum).split(" (")[0]
        print(
            f"\n{word} again: stopping now; {saved}{hint}", file=sys.stderr, flush=True
        )
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    os._exit(exit_code(signum))
