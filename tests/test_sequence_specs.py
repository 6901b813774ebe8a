"""The specs of sequences and generation train as their users would run them: the convolutional
denoising autoencoder on the embedded digits, and the BiLSTM and transformer text classifiers on
a small token file written here the way docs/text.md tells a user to make one."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from runtime.sweep.overrides import load_spec_with_overrides
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_token_file(
    path: Path, count: int = 480, length: int = 40, seed: int = 0
) -> None:
    """Write docs/text.md's toy set: ids 2..999 with a label saying whether the 'word' 7 occurs
    in the sequence (five times when it does; padding id 0 ends the shorter ones)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, 1000, (count, length))
    y = rng.integers(0, 2, count)
    for row, label in zip(x, y):
        row[row == 7] = 8
        end = rng.integers(length // 2, length + 1)
        if label:
            row[rng.choice(end, 5, replace=False)] = 7
        row[end:] = 0  # variable length, padded with 0
    np.savez(path, x=x.astype(np.int64), y=y.astype(np.int64))


def test_the_conv_autoencoder_learns_to_denoise_digits(tmp_path):
    spec = load_spec_with_overrides(
        ROOT / "specs" / "digits_conv_autoencoder.yaml",
        ["training.epochs=6", "training.early_stopping.patience=6"],
    )
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(row["val_loss"]) for row in rows]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses
    assert (
        not rows[0].get("val_accuracy") and summary["task"] == "reconstruction"
    )  # no accuracy


@pytest.mark.parametrize("name", ["text_bilstm", "text_transformer"])
def test_the_text_classifiers_train_on_token_ids_and_evaluate_reproduces_them(
    tmp_path, name
):
    tokens = tmp_path / "tokens.npz"
    write_token_file(tokens)
    spec = load_spec_with_overrides(
        ROOT / "specs" / f"{name}.yaml",
        [
            f"training.data.path={tokens}",
            "training.epochs=15",
            "training.batch_size=32",
            "training.early_stopping.patience=15",
        ],
    )
    torch.manual_seed(0)
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    best = summary["best_metrics"]
    assert best["val_accuracy"] >= 0.75, best
    evaluation = evaluate_checkpoint(tmp_path / "run" / "best.pt", "val", "cpu")
    assert evaluation["accuracy"] == pytest.approx(best["val_accuracy"])
    assert evaluation["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
