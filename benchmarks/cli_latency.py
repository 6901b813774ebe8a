"""CLI latency: wall time of `nnspec validate specs/*` and `nnspec codegen --check`, of both
commands on the largest spec (ResNet-50: blocks inside repeats), and proof that none of them
imports torch (they run in pre-commit hooks and editors).

Each command runs as a fresh process, as a hook would run it; the median of several runs is
reported, after one untimed run of each that lets Python write its .pyc files (a user's second
run). The caches live in a temporary folder (NNSPEC_CACHE_DIR): codegen's first timed run fills
its cache (cold), the later ones hit it (warm, what a hook sees on every commit but the first);
validate is timed with its cache of valid specs (warm) and with `--no-cache` (every spec checked
in full: pydantic, the layer registry, shape inference).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import below, markdown_table, median

# Runs the CLI in-process, then says whether torch (or anything under it) was ever imported.
PROBE = (
    "import sys\n"
    "from runtime.cli.main import main\n"
    "code = main(sys.argv[1:])\n"
    "heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
    "print('TORCH-MODULES', len(heavy), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def nnspec_command() -> list[str]:
    """Return the command that starts the CLI: the `nnspec` script next to this Python."""
    script = Path(sys.executable).with_name("nnspec")
    return [str(script)] if script.exists() else [sys.executable, "-m", "runtime"]


def wall_times(
    argv: list[str], runs: int, env: dict[str, str]
) -> tuple[list[float], int]:
    """Return the wall time of each of `runs` runs of `argv` and the exit code of the last."""
    times, code = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - started)
        code = done.returncode
        if code not in (0,):
            raise RuntimeError(
                f"{' '.join(argv)} exited {code}: {done.stderr.strip()[:500]}"
            )
    return times, code


def torch_modules_imported(args: list[str], env: dict[str, str]) -> int:
    """Return how many torch modules the CLI imported running `args` (0 is what we want)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in done.stderr.splitlines():
        if line.startswith("TORCH-MODULES"):
            return int(line.split()[1])
    raise RuntimeError(
        f"probe of nnspec {' '.join(args)} failed: {done.stderr.strip()[:500]}"
    )


def slowest_imports(
    args: list[str], env: dict[str, str], count: int = 5
) -> list[tuple[str, float]]:
    """Return the top-level packages whose import took longest (from `python -X importtime`)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    totals: dict[str, float] = {}
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        # one space before the name: imported by the program itself, not by another module
        if cumulative.strip().isdigit() and len(name) - len(name.lstrip()) == 1:
            totals[name.strip()] = totals.get(name.strip(), 0.0) + int(cumulative) / 1e6
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def user_environment(cache: str) -> dict[str, str]:
    """Return the environment of the timed commands: ours, with the codegen cache in `cache`
    and Python free to write bytecode (.pyc), as it is on a user's machine by default.
    """
    env = {**os.environ, "NNSPEC_CACHE_DIR": cache}
    # Without .pyc files every run compiles nnspec's modules again (some sandboxes set this).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def warm_bytecode(command: list[str], specs: list[str], env: dict[str, str]) -> None:
    """Run each command once (codegen with a throwaway cache), so .pyc files exist, as they do
    from a user's second run on."""
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-warmup-") as throwaway:
        for args, cache in (
            (["validate", *specs], env["NNSPEC_CACHE_DIR"]),
            (["codegen", "--check"], throwaway),
        ):
            subprocess.run(
                [*command, *args],
                env={**env, "NNSPEC_CACHE_DIR": cache},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )


def run(quick: bool, progress) -> tuple[str, list]:
    """Time the two commands; return the markdown table and the targets it checks."""
    runs = 3 if quick else 7
    specs = sorted(
        glob.glob("specs/*.yaml") + glob.glob("specs/*.yml") + glob.glob("specs/*.json")
    )
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-cache-") as cache:
        env = user_environment(cache)
        command = nnspec_command()
        warm_bytecode(command, specs, env)
        progress(
            f"cli: validate {len(specs)} specs, codegen --check ({runs} runs each)"
        )
        cases = [
            ("validate specs/* (warm cache)", ["validate", *specs], None),
            ("validate --no-cache specs/*", ["validate", "--no-cache", *specs], None),
            ("codegen --check (cold cache)", ["codegen", "--check"], 1),
            ("codegen --check (warm cache)", ["codegen", "--check"], None),
            (
                "validate --no-cache specs/resnet50.yaml",
                ["validate", "--no-cache", "specs/resnet50.yaml"],
                None,
            ),
            (
                "codegen --stdout --no-cache specs/resnet50.yaml",
                ["codegen", "--stdout", "--no-cache", "specs/resnet50.yaml"],
                None,
            ),
            ("python -c pass (interpreter start)", None, None),
        ]
        results = []
        for label, args, count in cases:
            argv = [sys.executable, "-c", "pass"] if args is None else [*command, *args]
            times, _ = wall_times(argv, count or runs, env)
            torch_count = torch_modules_imported(args, env) if args is not None else 0
            imports = slowest_imports(args, env) if args is not None else []
            results.append((label, median(times), min(times), torch_count, imports))
    rows = [
        [
            label,
            f"{mid * 1000:.0f}",
            f"{best * 1000:.0f}",
            (
                "-"
                if label.startswith("python")
                else ("no" if count == 0 else f"YES ({count})")
            ),
            ", ".join(f"{name} {seconds * 1000:.0f}" for name, seconds in imports),
        ]
        for label, mid, best, count, imports in results
    ]
    table = markdown_table(
        ["command", "median ms", "min ms", "imports torch", "slowest imports (ms)"],
        rows,
    )
    by_label = {label: (mid, count) for label, mid, _, count, _ in results}
    targets = [
        below(
            "nnspec validate specs/* (s, warm cache)",
            by_label["validate specs/* (warm cache)"][0],
            0.3,
        ),
        below(
            "nnspec validate --no-cache specs/* (s)",
            by_label["validate --no-cache specs/*"][0],
            0.3,
        ),
        below(
            "nnspec codegen --check (s, warm cache)",
            by_label["codegen --check (warm cache)"][0],
            0.5,
        ),
        below(
            "validate ResNet-50 spec, --no-cache (s)",
            by_label["validate --no-cache specs/resnet50.yaml"][0],
            1.0,
            "blocks in repeats, 159 layers expanded",
        ),
        below(
            "codegen ResNet-50 spec to stdout, --no-cache (s)",
            by_label["codegen --stdout --no-cache specs/resnet50.yaml"][0],
            1.5,
            "validation + classes per block + black",
        ),
        below(
            "torch modules imported by validate + codegen",
            sum(count for _, count in by_label.values()),
            1,
        ),
    ]
    return table, targets
