"""curves.png: loss and accuracy (or MAE) per epoch, train against validation."""

from __future__ import annotations

import io
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from runtime.errors import UserError
from runtime.storage.atomic import write_bytes_atomically
from runtime.tasks import metric_name


def write_curves(path: str | os.PathLike, result, task: str) -> None:
    """Write the learning curves of a FitResult as a PNG, the best epoch and the stop marked."""
    # Figure + Agg canvas directly: no pyplot, so no global backend or window is involved.

    rows = result.history
    epochs = [row["epoch"] for row in rows]
    metric = metric_name(task)
    figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    for axes, key, title in zip(
        figure.subplots(1, 2),
        ("loss", metric),
        ("loss", "MAE" if metric == "mae" else "accuracy"),
    ):
        for split, style in (("train", "-"), ("val", "-")):
            values = [row.get(f"{split}_{key}") for row in rows]
            axes.plot(
                epochs,
                [float("nan") if v is None else v for v in values],
                style,
                label="validation" if split == "val" else "train",
                marker="." if len(rows) < 30 else None,
            )
        if result.best_epoch:
            axes.axvline(
                result.best_epoch,
                color="tab:green",
                linestyle="--",
                label=f"best epoch {result.best_epoch}",
            )
        if rows and result.stop_reason != "max_epochs":
            axes.axvline(
                epochs[-1],
                color="tab:red",
                linestyle=":",
                label=f"stop ({result.stop_reason.replace('_', ' ')})",
            )
        axes.set_xlabel("epoch")
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    try:
        write_bytes_atomically(path, buffer.getvalue())
    except OSError as exc:  # a full disk: the run's checkpoints are written already
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
