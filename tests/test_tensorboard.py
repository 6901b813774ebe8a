"""`nnspec train --tensorboard`: event files read back with tensorboard's own reader, resume
appends without a step twice, an untraceable model only warns, and a missing package is one line.
"""

import csv
import sys

import pytest
import torch
from torch import nn

from compiler import load_spec
from runtime.cli.main import main
from runtime.errors import UserError
from runtime.training.tensorboard import TensorBoardLog
from runtime.training.train import train_spec
from tests.test_train import tiny_mlp

pytestmark = pytest.mark.usefixtures("one_torch_thread")

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator"
)


def read_events(folder):
    events = event_accumulator.EventAccumulator(str(folder))
    events.Reload()
    return events


def test_events_hold_each_epochs_scalars_and_the_graph_and_a_resume_appends(tmp_path):
    out = tmp_path / "run"
    train_spec(
        load_spec(tiny_mlp(64, 10, epochs=2)), out_dir=out, quiet=True, tensorboard=True
    )
    summary = train_spec(
        load_spec(tiny_mlp(64, 10, epochs=3)),
        out_dir=out,
        resume=True,
        quiet=True,
        tensorboard=True,
    )
    assert summary["files"]["tensorboard"] == str(out / "tensorboard")
    events = read_events(out / "tensorboard")
    tags = events.Tags()["scalars"]
    assert sorted(tags) == sorted(
        [
            "loss/train",
            "loss/val",
            "accuracy/train",
            "accuracy/val",
            "lr",
            "epoch_seconds",
        ]
    )
    for tag in tags:
        assert [e.step for e in events.Scalars(tag)] == [1, 2, 3], tag
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    logged = [e.value for e in events.Scalars("loss/val")]
    assert logged == pytest.approx([float(r["val_loss"]) for r in rows], rel=1e-6)
    assert events.Graph() is not None  # written once, by the first run
    # tracing the graph took nothing from the run: it trains as without --tensorboard
    train_spec(
        load_spec(tiny_mlp(64, 10, epochs=2)), out_dir=tmp_path / "plain", quiet=True
    )
    with open(tmp_path / "plain" / "metrics.csv") as f:
        plain = list(csv.DictReader(f))
    assert [r["val_loss"] for r in plain] == [r["val_loss"] for r in rows[:2]]


def test_a_resume_hides_epochs_logged_after_the_last_checkpoint(tmp_path):
    out = tmp_path / "run"
    log = TensorBoardLog(out, "regression", first_epoch=1)
    model = nn.Linear(2, 1)
    for epoch in (1, 2, 3):  # epoch 3 logged, then the run was killed before last.pt
        log.epoch_end(model, {"epoch": epoch, "train_loss": 1.0, "val_loss": 9.0})
    log.close()
    again = TensorBoardLog(out, "regression", first_epoch=3)
    again.epoch_end(model, {"epoch": 3, "train_loss": 1.0, "val_loss": 0.5})
    again.close()
    scalars = read_events(out / "tensorboard").Scalars("loss/val")
    assert [(e.step, e.value) for e in scalars] == [(1, 9.0), (2, 9.0), (3, 0.5)]


class Untraceable(nn.Module):
    def forward(self, x):
        raise RuntimeError("no tracing here")


def test_a_model_that_cannot_be_traced_warns_and_the_scalars_are_written(
    tmp_path, capsys
):
    log = TensorBoardLog(
        tmp_path, "regression", first_epoch=1, graph_sample=torch.zeros(2, 2)
    )
    log.epoch_end(Untraceable(), {"epoch": 1, "train_loss": 1.0, "val_loss": 2.0})
    log.close()
    err = capsys.readouterr().err
    assert "warning: the model's graph is not in TensorBoard" in err
    assert "no tracing here" in err
    assert [e.step for e in read_events(tmp_path / "tensorboard").Scalars("loss/val")]


def test_without_the_package_the_command_says_what_to_install_before_training(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    spec_file = tmp_path / "m.yaml"
    spec_file.write_text(
        "name: M\ninput: [2]\nlayers: [{linear: 3}]\n", encoding="utf-8"
    )
    out = tmp_path / "run"
    code = main(["train", str(spec_file), "--out", str(out), "--tensorboard"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "nnspec train: error: --tensorboard needs the tensorboard package, which is not "
        "installed: pip install 'nnspec[tensorboard]'"
    )
    assert not out.exists()
    with pytest.raises(UserError, match="pip install 'nnspec\\[tensorboard\\]'"):
        train_spec(load_spec(spec_file), out_dir=out, tensorboard=True)
    assert not out.exists()
