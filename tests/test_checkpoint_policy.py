"""The checkpoint policy of RunWriter: which epochs reach last.pt and best.pt, and which cost
nothing (a clock the test moves, tiny models; no subprocess: the kill -9 bound is proved in
tests/test_faults.py)."""

import csv

import pytest
import torch
from torch import nn

from compiler import build_sequential, load_spec
from runtime.data.load import load_spec_data
from runtime.training.early_stopping import EarlyStopping
from runtime.training.interrupt import InterruptFlag
from runtime.training.loop import TrainingState, fit
from runtime.training.run_writer import RunWriter
from runtime.training.train import train_spec
from tests.test_train import digits_spec, synthetic, tiny_mlp

CPU = torch.device("cpu")
BATCHES = 23  # of 64 in the digits training split (1,437 samples)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Clock:
    """A clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def loaded(path):
    return torch.load(path, weights_only=True)


def csv_rows(path) -> int:
    with open(path, newline="") as f:
        return len(list(csv.DictReader(f)))


def writer_and_state(tmp_path, *, every_seconds, epochs=20, clock=None, interrupt=None):
    """Return (writer, state, copies): a RunWriter over a tiny linear model, its training state,
    and the list of epochs whose state the writer copied."""
    spec = load_spec(tiny_mlp(2, 3, epochs=epochs))
    data = synthetic("classification")
    writer = RunWriter(
        tmp_path,
        spec,
        "sequential",
        data,
        "classification",
        every_seconds=every_seconds,
        clock=clock or Clock(),
        interrupt=interrupt,
    )
    copies: list[int] = []
    payload = writer.payload

    def counted(state, kept=False):
        copies.append(state.epoch)
        return payload(state, kept)

    writer.payload = counted
    model = nn.Linear(2, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    stopper = EarlyStopping(monitor="val_loss", patience=100)
    state = TrainingState(model, optimizer, None, stopper)
    return writer, state, copies


def finish_epoch(writer, state, val_loss: float) -> None:
    """Change the weights as training would, then end an epoch with `val_loss`."""
    with torch.no_grad():
        for p in state.model.parameters():
            p.add_(0.01)
    state.epoch += 1
    state.history.append({"epoch": state.epoch, "val_loss": val_loss})
    state.stopper.evaluate(val_loss)
    writer.epoch_end(state)


def epochs_on_disk(tmp_path) -> tuple[int, int]:
    writer_files = loaded(tmp_path / "last.pt"), loaded(tmp_path / "best.pt")
    return writer_files[0]["epoch"], writer_files[1]["epoch"]


def test_every_seconds_0_writes_every_epoch_as_before(tmp_path):
    writer, state, copies = writer_and_state(tmp_path, every_seconds=0)
    with writer:
        for epoch, loss in enumerate([1.0, 0.9, 0.95, 0.8], start=1):
            finish_epoch(writer, state, loss)
            writer.wait()
            last, best = epochs_on_disk(tmp_path)
            assert last == epoch and best == state.stopper.best_epoch
    assert copies == [1, 2, 3, 4] and writer.writes == 4


def test_epochs_between_writes_are_not_copied_and_the_best_is_kept_in_memory(tmp_path):
    clock = Clock()
    writer, state, copies = writer_and_state(tmp_path, every_seconds=10, clock=clock)
    with writer:
        finish_epoch(writer, state, 1.0)  # the first epoch is always written
        finish_epoch(writer, state, 1.1)  # not better, not due: nothing at all
        finish_epoch(writer, state, 0.9)  # better: kept in memory, not written
        finish_epoch(writer, state, 0.95)
        writer.wait()
        assert copies == [1, 3] and writer.writes == 1
        assert epochs_on_disk(tmp_path) == (1, 1)
        clock.now += 10  # due: last.pt gets epoch 5, best.pt the kept epoch 3, after it
        finish_epoch(writer, state, 0.97)
        writer.wait()
        assert copies == [1, 3, 5] and epochs_on_disk(tmp_path) == (5, 3)
        assert csv_rows(tmp_path / "metrics.csv") == 5  # metrics.csv follows last.pt
        best = loaded(tmp_path / "best.pt")
        assert best["early_stopping"]["best_epoch"] == 3 and len(best["metrics"]) == 3
        finish_epoch(writer, state, 0.5)  # better, not due: kept
    # the way out of a stop in the middle of an epoch: the kept best epoch becomes last.pt
    # and best.pt (whole, resumable), never best.pt ahead of last.pt
    assert epochs_on_disk(tmp_path) == (6, 6)
    assert (tmp_path / "last.pt").samefile(tmp_path / "best.pt")
    assert set(loaded(tmp_path / "last.pt")) >= {"optimizer", "rng", "early_stopping"}


def test_the_epoch_training_stops_after_is_written(tmp_path):
    # the last epoch, an early stop decided, an interrupt seen between epochs, and fit's
    # on_stop for any other stop between epochs: each writes its epoch though not due
    writer, state, copies = writer_and_state(tmp_path, every_seconds=1e6, epochs=3)
    with writer:
        for loss in (1.0, 1.1, 1.2):
            finish_epoch(writer, state, loss)
    assert copies == [1, 3] and epochs_on_disk(tmp_path) == (3, 1)

    flag = InterruptFlag()
    writer, state, copies = writer_and_state(
        tmp_path / "b", every_seconds=1e6, interrupt=flag
    )
    (tmp_path / "b").mkdir()
    with writer:
        finish_epoch(writer, state, 1.0)
        finish_epoch(writer, state, 1.1)
        flag.request(2)
        finish_epoch(writer, state, 1.2)
        assert flag.saved_epoch == 3  # what the second-interrupt line reports
        state.epoch += 1  # a stop fit reports between epochs (another process's signal)
        writer.stop(state)
        writer.stop(state)  # written once
    assert copies == [1, 3, 4] and writer.writes == 3
    assert loaded(tmp_path / "b" / "last.pt")["epoch"] == 4


def test_fit_and_the_writer_leave_the_best_epoch_on_every_way_out(tmp_path):
    spec = digits_spec(epochs=40, checkpoint_seconds=86400.0, early_stopping=None)
    data = load_spec_data(spec)
    training = spec.training_or_default

    class Breaks(nn.Module):
        """The spec's model, raising an error in the middle of its 7th epoch."""

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = build_sequential(spec)
            self.calls = 0

        def forward(self, x):
            if self.training:
                self.calls += 1
                if self.calls == 6 * BATCHES + 5:
                    raise RuntimeError("a bug in the middle of an epoch")
            return self.net(x)

    model = Breaks()
    with pytest.raises(RuntimeError, match="a bug"):
        with RunWriter(tmp_path, spec, "sequential", data, "classification") as writer:
            fit(
                model,
                data,
                training,
                device=CPU,
                on_epoch_end=writer.epoch_end,
                on_stop=writer.stop,
                quiet=True,
            )
    last, best = loaded(tmp_path / "last.pt"), loaded(tmp_path / "best.pt")
    # written: epoch 1 and, on the way out, the best epoch before the error, kept in memory
    assert writer.writes == 2 and last["epoch"] == best["epoch"] >= 2
    val = [row["val_loss"] for row in last["metrics"]]
    assert best["epoch"] == val.index(min(val)) + 1
    assert best["early_stopping"]["best_epoch"] == best["epoch"]


def test_a_resume_with_nothing_left_to_train_rewrites_nothing(tmp_path):
    out = tmp_path / "run"
    train_spec(digits_spec(epochs=1), out_dir=out, device="cpu", quiet=True)
    before = (out / "last.pt").stat().st_mtime_ns, (out / "last.pt").read_bytes()
    again = train_spec(
        digits_spec(epochs=1), out_dir=out, device="cpu", quiet=True, resume=True
    )
    assert again["epochs_run"] == 1
    assert (
        (out / "last.pt").stat().st_mtime_ns,
        (out / "last.pt").read_bytes(),
    ) == before
