"""`python -m runtime.parallel.launcher TORCHRUN_ARGS...`: torchrun for `nnspec train --nproc N`.

It is `torch.distributed.run` itself, with three differences that matter to a person at a
terminal: it ends with the run's exit code, rank 0's unless another process failed first
(torchrun ends with 1 whatever went wrong, so a diverging run, exit 1, and a Ctrl-C'd one, exit
130, could not be told apart); a Ctrl-C ends it
with 130 and no traceback (torchrun raises one after passing the Ctrl-C on to the processes);
and its own warnings about what it did (forwarding signals, a process that failed) stay out of
the way of the processes' messages, which already say what happened.
"""

from __future__ import annotations

import logging
import signal
import sys

from torch.distributed.elastic.multiprocessing.api import SignalException
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run


def main(argv: list[str]) -> int:
    """Run torch.distributed.run with `argv`; return the run's exit code (130 after a Ctrl-C)."""

    _quiet_torchrun_logs()
    try:
        run(parse_args(argv))
    except ChildFailedError as exc:
        return failed_exit_code({rank: f.exitcode for rank, f in exc.failures.items()})
    except SignalException as exc:
        # torchrun has passed the signal on and waited for the processes (30 s, then SIGKILL)
        return 128 + int(exc.sigval)
    return 0


def failed_exit_code(exit_codes: dict[int, int]) -> int:
    """Return the exit code of a failed run from each failed rank's code (negative: killed by
    that signal).

    Rank 0 carries the run's outcome when it ended by itself. Otherwise the cause is the first
    rank that did not die of SIGTERM, which is how torchrun stops the others once one fails. A
    process killed by a signal said nothing, so it is named on stderr, and gives 128 + the signal.
    """
    if exit_codes.get(0, 0) > 0:
        return exit_codes[0]
    causes = {
        rank: code for rank, code in exit_codes.items() if code != -signal.SIGTERM
    } or exit_codes
    rank = min(causes)
    code = causes[rank]
    if code >= 0:
        return code or 1
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    print(f"nnspec train: error: process {rank} was killed by {name}", file=sys.stderr)
    return 128 - code


def _quiet_torchrun_logs() -> None:
    """Keep torchrun's warnings off stderr (each module's logger has its own level)."""
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("torch.distributed.run").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
