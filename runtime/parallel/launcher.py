"""`python -m runtime.parallel.launcher TORCHRUN_ARGS...`: torchrun for `nnspec train --nproc N`.

It is `torch.distributed.run` itself, with three differences that matter to a person at a
terminal: it ends with the run's exit code, rank 0's unless another process failed first
(torchrun ends with 1 whatever went wrong, so a diverging run, exit 1, and a Ctrl-C'd one, exit
130, could not be told apart); a Ctrl-C ends it
with 130 and no traceback (torchrun raises one after passing the Ctrl-C on to the processes);
and its own warnings about what it did (forwarding signals, a process that failed) stay out of
the way of the processes' messages, which already say what happened.

Signals: the first SIGINT or SIGTERM is torchrun's own way out (it passes the signal on to every
process and waits for them, 30 s, then SIGKILL), so the processes stop after the same batch and
rank 0 writes the run; a second one is passed on to every process too, which then stops at once
(runtime/training/interrupt.py), and torchrun still waits for them: nothing goes on writing
after the command ended. Started by `nnspec train --nproc N`, the launcher gets SIGTERM should
that command die unannounced (Linux), so it never outlives it; each training process gets SIGTERM
should the launcher die so (killed with -9), and stops after its batch.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run

from runtime.parallel.distributed import (
    PARENT_VARIABLE,
    end_with_the_parent,
    running_pids,
)

# torchrun handles these itself (raising SignalException); SIGINT and SIGTERM are ours
TORCHRUN_SIGNALS = "SIGHUP,SIGQUIT"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def main(argv: list[str]) -> int:
    """Run torch.distributed.run with `argv`; return the run's exit code (130 after a Ctrl-C,
    143 after SIGTERM)."""

    _quiet_torchrun_logs()
    end_with_the_parent()  # `nnspec train --nproc N`
    os.environ[PARENT_VARIABLE] = str(os.getpid())  # each process ends with this one
    os.environ["TORCHELASTIC_SIGNALS_TO_HANDLE"] = TORCHRUN_SIGNALS
    received: list[int] = []

    def handle(signum, frame) -> None:
        received.append(signum)
        if len(received) == 1:  # torchrun passes it on and waits for every process
            raise SignalException(
                f"Process {os.getpid()} got signal: {signum}",
                sigval=signal.Signals(signum),
            )
        for pid in _child_pids():  # torchrun is already waiting for them
            try:
                os.kill(pid, signum)
            except OSError:
                pass

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        return failed_exit_code(
            {rank: f.exitcode for rank, f in exc.failures.items()},
            found_at={rank: f.timestamp for rank, f in exc.failures.items()},
        )
    except SignalException as exc:
        # torchrun has passed the signal on and waited for the processes (30 s, then SIGKILL)
        return 128 + int(exc.sigval)
    return 0


def failed_exit_code(
    exit_codes: dict[int, int], found_at: dict[int, int] | None = None
) -> int:
    """Return the exit code of a failed run from each failed rank's code (negative: killed by
    that signal) and, where known, when torchrun found each failure (`found_at`, seconds).

    Rank 0 carries the run's outcome when it ended by itself. Otherwise the cause is the rank
    that failed first and did not die of SIGTERM, which is how torchrun stops the others once
    one fails. Its SIGKILL, should one of them not stop within its 30 s, is found that much
    later, so such a rank is not named as the cause (the earliest found, then the lowest rank).
    A process killed by a signal said nothing, so it is named on stderr, and gives 128 + the
    signal.
    """
    if exit_codes.get(0, 0) > 0:
        return exit_codes[0]
    causes = {
        rank: code for rank, code in exit_codes.items() if code != -signal.SIGTERM
    } or exit_codes
    found_at = found_at or {}
    rank = min(causes, key=lambda each: (found_at.get(each, 0), each))
    code = causes[rank]
    if code >= 0:
        return code or 1
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    print(f"nnspec train: error: process {rank} was killed by {name}", file=sys.stderr)
    return 128 - code


def _child_pids() -> list[int]:
    """Return the ids of this process's children (the training processes), from /proc."""
    me, children = str(os.getpid()), []
    # [] where there is no /proc (not Linux): the processes, already stopping, finish their batch
    for pid in running_pids():
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 1 and fields[1] == me:
            children.append(pid)
    return children


def _quiet_torchrun_logs() -> None:
    """Keep torchrun's warnings off stderr (each module's logger has its own level)."""
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("torch.distributed.run").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
