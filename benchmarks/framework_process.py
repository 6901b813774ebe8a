"""The course's DataLoader loop or a framework's (skorch, Lightning, Keras on torch) in a process
of its own, so that benchmarks/lockstep.py can time it beside `nnspec train` and the bare loops:

    python benchmarks/framework_process.py LOOP SPEC EPOCHS THREADS

LOOP is a name of LOOPS ("DataLoader", "skorch", "Lightning", "Keras (torch)"). The model is
built with the spec's seed and the data loaded as `nnspec train` loads them, at THREADS torch
threads, denormals as torch leaves them (as a user runs these loops). The last line printed is
the JSON list of the epochs' wall times from the second epoch on, each from the moment the process
was let go after the epoch before (lockstep.EpochClock: under lockstep the process stops after
each epoch until it is let go, and that stopped time is in no epoch).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import child_env
from lockstep import EpochClock

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# the table's name of each loop: (its function in loops.py, the function that returns its
# package or None when it is not installed; None: needs only torch)
LOOPS = {
    "DataLoader": ("dataloader_loop", None),
    "skorch": ("skorch_loop", "skorch_module"),
    "Lightning": ("lightning_loop", "lightning_module"),
    "Keras (torch)": ("keras_loop", "keras_module"),
}


def available() -> list[str]:
    """Return the names of LOOPS that can run here (their package is importable)."""
    import loops

    return [
        name
        for name, (_, module) in LOOPS.items()
        if module is None or getattr(loops, module)() is not None
    ]


def command(
    name: str, spec_path, epochs: int, threads: int
) -> tuple[list[str], dict[str, str]]:
    """Return the command line and environment of this script for the loop `name`."""
    argv = [sys.executable, str(Path(__file__)), name, str(spec_path), str(epochs)]
    return argv + [str(threads)], child_env(ROOT, HERE)


def main() -> None:
    name, spec_path, epochs, threads = sys.argv[1:5]
    if name not in LOOPS:
        print(f"unknown loop {name!r}; one of: {', '.join(LOOPS)}", file=sys.stderr)
        raise SystemExit(2)
    import torch

    torch.set_num_threads(int(threads))
    import loops

    from compiler import build_sequential, load_spec
    from runtime.data.load import load_spec_data

    function, module = LOOPS[name]
    if module is not None and getattr(loops, module)() is None:
        raise SystemExit(f"{name} is not installed")
    spec = load_spec(spec_path)
    data = load_spec_data(spec)
    training = spec.training_or_default
    torch.manual_seed(training.seed)
    model = build_sequential(spec)
    clock = EpochClock()
    getattr(loops, function)(
        model, data, training, int(epochs), on_epoch_end=clock.epoch_ended
    )
    print(json.dumps(clock.epoch_times()))


if __name__ == "__main__":
    main()
