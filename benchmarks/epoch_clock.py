"""Run `nnspec train ARGS...` in this process exactly as the `nnspec` command runs it, and write
the moment each epoch ended to the JSON file named by $NNSPEC_BENCH_CLOCK.

    NNSPEC_BENCH_CLOCK=clock.json python benchmarks/epoch_clock.py specs/digits_mlp.yaml --out runs/x

The one thing added is a clock: the progress bar's once-per-epoch `update` (the last step of an
epoch in `runtime.training.loop.fit`, called with or without --quiet) first notes
`time.perf_counter()`. The time between two notes is everything an epoch costs a user: training,
validation, early stopping, the checkpoint policy's copies and writes, and the progress bar.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time


def main() -> None:
    target = os.environ.pop("NNSPEC_BENCH_CLOCK")
    stamps: list[float] = []
    # imported before the CLI, so that fit's EpochProgress is the class patched here
    from runtime.training import progress

    update = progress.EpochProgress.update

    def clocked(self, row):
        stamps.append(time.perf_counter())
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
            json.dump({"epoch_ends": stamps}, file)
    sys.exit(code)


if __name__ == "__main__":
    main()
