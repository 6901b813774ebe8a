"""Streaming: the same data set trained in memory and streamed from disk (`training.loading`).

Two data sets of random 3x32x32 images with 10 classes, written to a temporary folder: an npz
saved uncompressed (streamed through a memory map) and an image folder of PNGs (streamed by
decoding each file in DataLoader workers). Each is trained for a few epochs of a small CNN with
`loading.mode: memory` and with `stream`, interleaved, on the CPU; the table gives the median epoch
seconds (metrics.csv), the load time, and whether the two runs' metrics are equal (they must be:
same batches, same order). Target: a memory-mapped npz epoch within 1.5x of the in-memory one.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path

import numpy as np
from common import at_most, markdown_table, median

SHAPE = (3, 32, 32)
CLASSES = 10
NPZ_RATIO_LIMIT = 1.5


def write_npz(path: Path, count: int) -> None:
    """Write `count` random float32 images and labels, uncompressed (numpy.savez)."""
    rng = np.random.default_rng(0)
    x = rng.random((count, *SHAPE), dtype=np.float32)
    np.savez(path, x=x, y=np.arange(count) % CLASSES)


def write_image_folder(root: Path, count: int) -> None:
    """Write `count` random RGB PNGs, one class folder per label."""
    from PIL import Image  # only this data set needs Pillow

    rng = np.random.default_rng(1)
    for index in range(count):
        folder = root / f"class{index % CLASSES}"
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, size=(SHAPE[1], SHAPE[2], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{index}.png")


def spec_of(data: dict, mode: str, epochs: int):
    """Return a small CNN's spec on `data` with `loading.mode` = `mode`."""
    from compiler import load_spec

    return load_spec(
        {
            "name": "StreamBench",
            "input": list(SHAPE),
            "layers": [
                {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
                "relu",
                {"maxpool2d": 4},
                "flatten",
                {"linear": CLASSES},
            ],
            "training": {
                "epochs": epochs,
                "batch_size": 128,
                "data": data,
                "early_stopping": None,
                "device": "cpu",
                "loading": {"mode": mode},
            },
        }
    )


def train_once(spec, out: Path) -> tuple[float, list[float], list[dict]]:
    """Return (seconds to train including the data's load, epoch seconds, metrics rows)."""
    from runtime.training.train import train_spec

    started = time.perf_counter()
    train_spec(spec, out_dir=out, quiet=True, force=True)
    total = time.perf_counter() - started
    with open(out / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    seconds = [float(row.pop("seconds")) for row in rows]
    return total, seconds, rows


def run(quick: bool, progress) -> tuple[str, list]:
    npz_count, image_count = (2000, 600) if quick else (12000, 3000)
    epochs, rounds = (2, 1) if quick else (3, 2)
    table, targets = [], []
    with tempfile.TemporaryDirectory(prefix="nnspec-bench-stream-") as folder:
        root = Path(folder)
        progress(f"streaming: writing {npz_count} npz samples and {image_count} PNGs")
        write_npz(root / "images.npz", npz_count)
        write_image_folder(root / "pictures", image_count)
        sets = {
            f"npz, {npz_count} x {list(SHAPE)}": {
                "dataset": "npz",
                "path": str(root / "images.npz"),
            },
            f"image_folder, {image_count} PNGs": {
                "dataset": "image_folder",
                "path": str(root / "pictures"),
            },
        }
        progress("streaming: warm-up run (imports, first allocations; not counted)")
        train_once(spec_of(sets[next(iter(sets))], "memory", 1), root / "warm-up")
        for name, data in sets.items():
            measured = {"memory": ([], []), "stream": ([], [])}
            metrics = {}
            for round_ in range(rounds):
                for mode in ("memory", "stream"):
                    progress(f"streaming: {name}, {mode}, round {round_ + 1}")
                    total, seconds, rows = train_once(
                        spec_of(data, mode, epochs), root / f"run-{mode}"
                    )
                    measured[mode][0].append(total)
                    measured[mode][1].extend(seconds)
                    metrics[mode] = rows
            same = metrics["memory"] == metrics["stream"]
            memory_epoch = median(measured["memory"][1])
            stream_epoch = median(measured["stream"][1])
            for mode in ("memory", "stream"):
                totals, seconds = measured[mode]
                table.append(
                    [
                        name,
                        mode,
                        f"{median(seconds):.3f}",
                        f"{median(totals):.2f}",
                        "yes" if same else "NO",
                    ]
                )
            targets.append(
                at_most(f"{name}: metrics differ between the paths", float(not same), 0)
            )
            table.append(
                [name, "stream / memory", f"{stream_epoch / memory_epoch:.2f}x", "", ""]
            )
            if (
                data["dataset"] == "npz"
            ):  # a memory-mapped batch is one read from the page cache
                targets.append(
                    at_most(
                        f"{name}: streamed / in-memory epoch time",
                        stream_epoch / memory_epoch,
                        NPZ_RATIO_LIMIT,
                        "image files are decoded every epoch: no target",
                    )
                )
    header = [
        "data set",
        "path",
        "median epoch s",
        "run s (load included)",
        "same metrics",
    ]
    return markdown_table(header, table), targets
