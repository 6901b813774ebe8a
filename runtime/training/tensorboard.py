"""`TensorBoardLog`: the epochs of a run as TensorBoard event files (`nnspec train --tensorboard`).

Events go to `OUT/tensorboard/`, beside metrics.csv, through `torch.utils.tensorboard`, which needs
the optional `tensorboard` package (`pip install 'nnspec[tensorboard]'`). The step of every scalar
is the epoch, so a resumed run appends to the same folder and its steps follow on: the writer of a
resume purges from the first epoch it trains, hiding any epoch an interrupted run logged after its
last checkpoint, so no step is shown twice.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from runtime.errors import UserError
from runtime.tasks import metric_name

INSTALL_HINT = "pip install 'nnspec[tensorboard]'"


def summary_writer_class():
    """Return torch's SummaryWriter; raise UserError saying what to install when it is missing."""
    try:
        # here, not at the top: the package is an optional extra, and importing it is slow
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            f"--tensorboard needs the tensorboard package, which is not installed: "
            f"{INSTALL_HINT}"
        ) from None
    return SummaryWriter


class TensorBoardLog:
    """Writes each finished epoch's losses, metric, learning rate and time as scalars."""

    def __init__(
        self,
        out: Path,
        task: str,
        *,
        first_epoch: int,
        graph_sample: torch.Tensor | None = None,
    ) -> None:
        self.writer_class = summary_writer_class()
        self.folder = Path(out) / "tensorboard"
        self.metric = metric_name(task)
        self.first_epoch = first_epoch
        # the graph is written with the first epoch (of a new run: a resume has it already)
        self.graph_sample = graph_sample if first_epoch == 1 else None
        self.writer = (
            None  # made at the first epoch's end: a run that saves nothing logs nothing
        )

    def epoch_end(self, model: nn.Module, row: dict) -> None:
        """Log a finished epoch (and, after the first of a new run, the model's graph)."""
        if self.writer is None:
            # purged from the run's first epoch on: what a run that --force replaced, or an
            # interrupted run after its last checkpoint, logged there is hidden
            self.writer = self.writer_class(
                log_dir=str(self.folder), purge_step=self.first_epoch
            )
            if self.graph_sample is not None:
                device = next(model.parameters(), torch.empty(0)).device
                self.add_graph(model, self.graph_sample.to(device))
        self.add_epoch(row)

    def add_graph(self, model: nn.Module, sample: torch.Tensor) -> None:
        """Write the model's graph, traced on `sample`; warn (not fail) when it cannot be traced.

        Traced in eval mode with the random generators forked, so neither dropout nor batch
        norm's running statistics take anything from the run: it trains as without the log.
        """
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # the tracer's warnings are about itself
                self.writer.add_graph(model, sample)
        except (
            Exception
        ) as exc:  # tracing fails in many ways, none of them the run's end
            text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
            print(
                f"nnspec train: warning: the model's graph is not in TensorBoard: it could "
                f"not be traced ({type(exc).__name__}: {text}); the scalars are written",
                file=sys.stderr,
            )
        finally:
            model.train(was_training)

    def add_epoch(self, row: dict) -> None:
        """Write one metrics.csv row's values at its epoch, and flush them to the file."""
        epoch = row["epoch"]
        for tag, key in (
            ("loss/train", "train_loss"),
            ("loss/val", "val_loss"),
            (f"{self.metric}/train", f"train_{self.metric}"),
            (f"{self.metric}/val", f"val_{self.metric}"),
            ("lr", "lr"),
            ("epoch_seconds", "seconds"),
        ):
            value = row.get(key)
            if value is not None:
                self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (if an epoch opened one)."""
        if self.writer is not None:
            self.writer.close()
