"""The progress bar of `nnspec train`: one bar over epochs, updated once per epoch."""

from __future__ import annotations

import sys

from tqdm import tqdm


class EpochProgress:
    """A tqdm bar over epochs whose postfix shows the last epoch's metrics; silent when quiet."""

    def __init__(self, total: int, initial: int, metric: str, quiet: bool) -> None:
        self.metric = metric
        self.bar = None
        if not quiet:
            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
                mininterval=0.2,
            )

    def update(self, row: dict) -> None:
        """Advance one epoch and show its train/val loss and metric."""
        if self.bar is None:
            return
        key = self.metric
        self.bar.set_postfix_str(
            f"loss {row['train_loss']:.4f}/{row['val_loss']:.4f} "
            f"{'acc' if key == 'accuracy' else key} {_short(row.get('train_' + key))}/"
            f"{_short(row.get('val_' + key))} (train/val)",
            refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar (it stays on screen)."""
        if self.bar is not None:
            self.bar.close()


def _short(value) -> str:
    return "-" if value is None else f"{value:.4f}"
