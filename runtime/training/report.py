"""The one-screen report `nnspec train` prints at the end of a run."""

from __future__ import annotations

import shlex
from typing import Any

from compiler.formatting import plural
from runtime.tasks import metric_name

STOPS = {
    "early_stopping": "stopped early",
    "max_epochs": "ran all epochs",
    "interrupted": "interrupted",
    "not_finite": "diverged",
}


def format_metrics(row: dict[str, Any] | None, task: str) -> str:
    """Return `train loss 0.1 acc 0.97 | val loss 0.1 acc 0.96` for one metrics row."""
    if row is None:
        return "-"
    key = metric_name(task)
    label = "acc" if key == "accuracy" else key
    parts = []
    for split in ("train", "val"):
        loss, metric = row.get(f"{split}_loss"), row.get(f"{split}_{key}")
        parts.append(f"{split} loss {_num(loss)} {label} {_num(metric)}")
    return " | ".join(parts)


def command_line(command: list[str], positional: str, options: list[str]) -> str:
    """Return `command positional options...` as a shell line that parses back: an option's
    value that begins with "-" is joined to it (option_words), and such a positional (a spec
    named `-net.yaml`) comes last, after `--`, as the user had to write it."""
    if positional.startswith("-"):
        return shlex.join(command + options + ["--", positional])
    return shlex.join(command + [positional] + options)


def option_words(name: str, value: str) -> list[str]:
    """Return `[name, value]`, or `[name=value]` when the value begins with "-" (`--out=-run`),
    so that it stays a value."""
    return [f"{name}={value}"] if value.startswith("-") else [name, value]


def _num(value) -> str:
    return "nan" if value is None else f"{value:.4f}"


def format_report(summary: dict[str, Any], resume_command: str | None = None) -> str:
    """Return the end-of-run report: what ran, why it stopped, the best epoch, the files.

    `resume_command` is the command that continues the run (default: built from the summary).
    """
    task = summary["task"]
    lines = [
        f"{summary['name']} ({summary['form']}, {plural(summary['params'], 'parameter')}) "
        f"on {summary['data']}, {summary['device']}",
        f"{_how_it_stopped(summary)} ({summary['seconds']:.1f} s)",
    ]
    if summary["best_epoch"]:
        lines.append(
            f"best epoch {summary['best_epoch']} ({summary['monitor']} "
            f"{summary['best']:.4f}): {format_metrics(summary['best_metrics'], task)}"
        )
        if summary["restored_best"]:
            lines.append(
                f"the model was left at epoch {summary['best_epoch']}, the best one"
            )
    elif summary["epochs_run"] == 0 and summary["stop_reason"] == "interrupted":
        lines.append("no epoch finished, so nothing was saved: there is no checkpoint")
    else:
        lines.append(
            "no epoch finished with a finite monitor value: there is no best.pt"
        )
    files = summary["files"]
    lines.append(
        f"files in {summary['out']}: {', '.join(sorted(_base(p) for p in files.values()))}"
    )
    if "best.pt" in files:
        evaluate = command_line(["nnspec", "evaluate"], files["best.pt"], [])
        lines.append(f"evaluate: {evaluate}")
    if summary["stop_reason"] in ("interrupted", "max_epochs") and "last.pt" in files:
        command = resume_command or command_line(
            ["nnspec", "train"],
            summary["spec"],
            option_words("--out", summary["out"]) + ["--resume"],
        )
        more = (
            _further(command, summary["epochs_run"])
            if summary["stop_reason"] == "max_epochs"
            else ""
        )
        lines.append(f"resume:   {command}{more}")
    return "\n".join(lines)


def _further(command: str, epochs_run: int) -> str:
    """Return how `command` (a finished run's resume line) trains further: with --epochs N
    added before any `--` (after it, a word is the spec's name), or its own --epochs raised.
    """
    words = shlex.split(command)
    options = words[: words.index("--")] if "--" in words else words
    if any(w == "--epochs" or w.startswith("--epochs=") for w in options):
        return f" (with its --epochs raised above {epochs_run}, to go further)"
    where = " before the --" if "--" in words else ""
    return f" (with --epochs N{where}, N > {epochs_run}, to go further)"


def _how_it_stopped(summary: dict[str, Any]) -> str:
    """Return the report's line on why the run stopped, e.g. "stopped early after epoch 12 of
    100: ...", or, for a resumed run that had nothing left to train, that it had not."""
    reason, done, epochs = (
        summary["stop_reason"],
        summary["epochs_run"],
        summary["epochs"],
    )
    resumed = summary.get("resumed_from_epoch")
    if reason == "max_epochs" and resumed is not None and done == resumed:
        return (
            f"nothing left to train: the run already holds {plural(done, 'epoch')}, and "
            f"epochs is {epochs}"
        )
    how, message = STOPS.get(reason, reason), summary["stop_message"]
    if reason == "interrupted" and not message.startswith(how):
        how = "stopped"  # "terminated (SIGTERM) during epoch 4"
    if done == 0 and reason == "interrupted":
        return f"{message} of {epochs}, before any epoch finished"
    if done == 0:
        return f"{how} in epoch 1 of {epochs}: {message}"
    if reason == "max_epochs":  # its message ("reached epochs: 3") says it again
        return f"{how}: epoch {done} of {epochs}"
    return f"{how} after epoch {done} of {epochs}: {message}"


def _base(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]
