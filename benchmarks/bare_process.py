"""The fused bare loop in a process of its own, with denormals flushed to zero as `nnspec train`
runs (runtime/parallel/denormals.py): the mode has to be set before torch starts its threads, so
the benchmark's own process, whose threads have long been running, cannot time it.

    python benchmarks/bare_process.py SPEC EPOCHS THREADS [--channels-last]

prints the JSON list of the epochs' wall times. Like the in-process loops, the model is built
with the spec's seed and the data loaded as `nnspec train` loads them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from common import child_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def times(spec_path, epochs: int, threads: int, channels_last: bool = False):
    """Return the epoch times of the flushed bare loop run by this script in a new process,
    or a str saying why it failed."""
    command = [sys.executable, str(Path(__file__)), str(spec_path), str(epochs)]
    command += [str(threads)] + (["--channels-last"] if channels_last else [])
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=child_env(ROOT, HERE),
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return f"failed: {lines[-1] if lines else done.returncode}"
    return json.loads(done.stdout)


def main() -> None:
    spec_path, epochs, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import torch

    torch.set_num_threads(threads)
    from runtime.parallel.denormals import flush_denormals, flushing

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
        channels_last="--channels-last" in sys.argv[4:],
    )
    if not flushing():
        raise SystemExit("denormals were not flushed in every thread")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
