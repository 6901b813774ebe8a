"""Run `nnspec train ARGS...` in this process exactly as the `nnspec` command runs it, and write
its epochs' times to the JSON file named by $NNSPEC_BENCH_CLOCK (under benchmarks/lockstep.py,
the process stops at the end of each epoch until it is let go).

    NNSPEC_BENCH_CLOCK=clock.json python benchmarks/epoch_clock.py specs/digits_mlp.yaml --out runs/x

The one thing added is a clock: the progress bar's once-per-epoch `update` (the last step of an
epoch in `runtime.training.loop.fit`, called with or without --quiet) first notes
`time.perf_counter()` (lockstep.EpochClock). The time from one note (or the moment the process
was let go after it, in lockstep) to the next is everything an epoch costs a user: training,
validation, early stopping, the checkpoint policy's copies and writes, and the progress bar.
"""

from __future__ import annotations

import json
import os
import runpy
import sys

from lockstep import EpochClock


def main() -> None:
    target = os.environ.pop("NNSPEC_BENCH_CLOCK")
    clock = EpochClock()
    # imported before the CLI, so that fit's EpochProgress is the class patched here
    from runtime.training import progress

    update = progress.EpochProgress.update

    def clocked(self, row):
        clock.epoch_ended()
        return update(self, row)

    progress.EpochProgress.update = clocked
    sys.argv = ["nnspec", *sys.argv[1:]]
    code = 0
    try:
        runpy.run_module("runtime", run_name="__main__", alter_sys=True)
    except SystemExit as exc:  # runtime/__main__.py ends with sys.exit(main())
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        with open(target, "w", encoding="utf-8") as file:
            json.dump({"epoch_times": clock.epoch_times()}, file)
    sys.exit(code)


if __name__ == "__main__":
    main()
