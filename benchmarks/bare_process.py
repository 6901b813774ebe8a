"""The fused bare loop in a process of its own: as written, or with denormals flushed to zero as
`nnspec train` runs (runtime/parallel/denormals.py: the mode has to be set before torch starts
its threads, so the benchmark's own process, whose threads have long been running, cannot time
it).

    python benchmarks/bare_process.py SPEC EPOCHS THREADS [--channels-last] [--flush]

prints the JSON list of the epochs' wall times. Like `nnspec train`, the model is built with the
spec's seed and the data loaded as `nnspec train` loads them; under benchmarks/lockstep.py the
process stops after each epoch until it is let go (lockstep.EpochClock).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import child_env
from lockstep import EpochClock

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def command(
    spec_path, epochs: int, threads: int, *, channels_last: bool, flush: bool
) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment of this script for one bare loop."""
    argv = [sys.executable, str(Path(__file__)), str(spec_path), str(epochs)]
    argv += [str(threads)] + (["--channels-last"] if channels_last else [])
    argv += ["--flush"] if flush else []
    return argv, child_env(ROOT, HERE)


def main() -> None:
    spec_path, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = sys.argv[4:]
    import torch

    torch.set_num_threads(threads)
    from runtime.parallel.denormals import flush_denormals, flushing

    if "--flush" in options:
        flush_denormals()  # first, before any torch work starts its threads
    from loops import bare_loop

    from compiler import build_sequential, load_spec
    from runtime.data.load import load_spec_data

    spec = load_spec(spec_path)
    data = load_spec_data(spec)
    training = spec.training_or_default
    torch.manual_seed(training.seed)
    model = build_sequential(spec)
    result = bare_loop(
        model,
        data,
        training,
        epochs,
        fused=True,
        channels_last="--channels-last" in options,
        on_epoch_end=EpochClock().epoch_ended,
    )
    if "--flush" in options and not flushing():
        raise SystemExit("denormals were not flushed in every thread")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
