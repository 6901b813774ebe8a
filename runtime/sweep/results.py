"""A sweep's results: one row per variant, the best one by validation error, results.csv,
the terminal table and best.yaml."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import yaml

from compiler import count_params, spec_data
from compiler.data_paths import resolve_data_path, spec_folder
from runtime.storage.atomic import write_text_atomically
from runtime.tasks import has_accuracy

METRIC_COLUMNS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy"]
RUN_COLUMNS = [
    "params",
    "best_epoch",
    "epochs_run",
    "stop_reason",
    *METRIC_COLUMNS,
    "seconds",
]


def short_path(path: str) -> str:
    """Return a path without its `layers.`/`training.` start: `fc1.out_features`, `optimizer.lr`."""
    for start in ("layers.", "training."):
        if path.startswith(start):
            return path[len(start) :]
    return path


def result_row(run, paths: list[str]) -> dict[str, Any]:
    """Return the results.csv row of a VariantRun: its values, size and metrics at the best epoch."""
    summary = run.summary or {}
    best = summary.get("best_metrics") or {}
    row: dict[str, Any] = {"variant": run.variant.id}
    row.update({path: run.variant.values[path] for path in paths})
    row.update(
        {
            "params": count_params(run.spec),
            "best_epoch": summary.get("best_epoch"),
            "epochs_run": summary.get("epochs_run"),
            "stop_reason": summary.get("stop_reason"),
            **{name: best.get(name) for name in METRIC_COLUMNS},
            "seconds": run_seconds(summary),
        }
    )
    return row


def run_seconds(summary: dict[str, Any]) -> float | None:
    """Return a run's training time: the epochs' seconds in its metrics.csv (resumes included)."""
    path = (summary.get("files") or {}).get("metrics.csv")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return round(
                sum(float(r["seconds"]) for r in csv.DictReader(f) if r.get("seconds")),
                3,
            )
    except (OSError, TypeError, ValueError, KeyError):
        return summary.get("seconds")


def validation_error(row: dict[str, Any], task: str) -> float | None:
    """Return what decides between variants: 1 - val accuracy, or val loss for regression and
    reconstruction."""
    if not has_accuracy(task):
        value = row.get("val_loss")
    else:
        accuracy = row.get("val_accuracy")
        value = None if accuracy is None else 1.0 - accuracy
    return value if value is not None and math.isfinite(value) else None


def training_error(row: dict[str, Any], task: str) -> float | None:
    """Return the training counterpart of `validation_error`."""
    if not has_accuracy(task):
        return row.get("train_loss")
    accuracy = row.get("train_accuracy")
    return None if accuracy is None else 1.0 - accuracy


def best_index(rows: list[dict[str, Any]], task: str) -> int | None:
    """Return the index of the row with the lowest validation error (then val loss, then fewer
    parameters), or None when no variant has one."""
    scored = []
    for index, row in enumerate(rows):
        error = validation_error(row, task)
        if error is not None:
            loss = row.get("val_loss")
            scored.append(
                (error, loss if loss is not None else math.inf, row["params"], index)
            )
    return min(scored)[-1] if scored else None


def results_csv(rows: list[dict[str, Any]], paths: list[str]) -> str:
    """Return results.csv: variant, the varied paths, then RUN_COLUMNS; lists as YAML flow text."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=["variant", *paths, *RUN_COLUMNS], lineterminator="\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return value


def best_yaml(
    spec, *, label: str, source: str, error: float | None, task: str, path: str
) -> str:
    """Return the winning variant's spec as canonical YAML, with a comment saying where it won."""
    what = "validation error" if has_accuracy(task) else "validation loss"
    shown = "unknown" if error is None else f"{error:.4f}"
    header = (
        f"# The best variant of `nnspec sweep {source}`: {label}\n"
        f"# ({what} {shown}). Train it with: nnspec train {path}\n"
    )
    data = spec_data(spec)
    section = (data.get("training") or {}).get("data") or {}
    if isinstance(section.get("path"), str):
        # best.yaml lives in the sweep's folder: a path relative to the swept spec's folder
        # is written absolute, so the spec trains from there too
        section["path"] = os.path.abspath(
            resolve_data_path(section["path"], spec_folder(spec.source))
        )
    body = yaml.safe_dump(
        data,
        sort_keys=False,
        default_flow_style=None,
        width=100,
        allow_unicode=True,
    )
    return header + body


def format_table(
    rows: list[dict[str, Any]], paths: list[str], task: str, best: int | None
) -> str:
    """Return the terminal table: one line per variant, the best marked with `*`."""

    error = "val_err" if has_accuracy(task) else "val_loss"
    train = "train_err" if has_accuracy(task) else "train_loss"
    header = [
        " ",
        *(short_path(p) for p in paths),
        "params",
        "best_epoch",
        "epochs",
        train,
        error,
        "seconds",
    ]
    lines = [header]
    for index, row in enumerate(rows):
        lines.append(
            [
                "*" if index == best else " ",
                *(_text(row[p]) for p in paths),
                f"{row['params']:,}",
                _text(row["best_epoch"]),
                _text(row["epochs_run"]),
                _number(training_error(row, task)),
                _number(validation_error(row, task)),
                _number(row["seconds"], 1),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    numeric = set(range(len(paths) + 1, len(header)))
    text = [
        "  ".join(
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(line, widths))
        ).rstrip()
        for line in lines
    ]
    if best is not None:
        text.append(
            f"* lowest {'validation error' if has_accuracy(task) else 'validation loss'}"
        )
    return "\n".join(text)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def write_results(out: Path, rows: list[dict[str, Any]], paths: list[str]) -> None:
    """Write results.csv atomically."""
    write_text_atomically(out / "results.csv", results_csv(rows, paths))
