"""The training accuracy that fit reports counts each batch's correct predictions exactly,
however many batches its scorer keeps before scoring them together."""

import pytest
import torch

from runtime.training import loop
from runtime.training.loop import _Correct


def direct_count(batches) -> int:
    return sum(int((out.argmax(dim=1) == y).sum()) for out, y in batches)


def random_batches(count: int, classes: int = 7):
    generator = torch.Generator().manual_seed(count)
    batches = []
    for index in range(count):
        size = (0, 1, 5, 64)[index % 4]  # an empty part of a DDP batch too
        out = torch.randn(size, classes, generator=generator)
        batches.append((out, torch.randint(0, classes, (size,), generator=generator)))
    return batches


@pytest.mark.parametrize(
    "budget", [1, 600, 1 << 30]
)  # every batch, some, all at the end
def test_the_count_is_the_same_whatever_is_kept_before_scoring(monkeypatch, budget):
    monkeypatch.setattr(loop, "SCORED_BYTES", budget)
    batches = random_batches(13)
    correct, total = _Correct(), torch.zeros((), dtype=torch.float64)
    for out, y in batches:
        correct.add(out, y)
        assert correct.kept < budget or budget == 1 << 30
    correct.score_into(total)
    assert int(total) == direct_count(batches) > 0


def test_kept_outputs_are_counted_by_their_storage_and_left_as_they_were():
    base = torch.randn(32, 10, 6)  # a sequence model's last step: a view of all steps
    output = base[:, :, -1]
    labels = torch.randint(0, 10, (32,))
    correct = _Correct()
    correct.add(output, labels)
    assert correct.kept == base.untyped_storage().nbytes() + labels.numel() * 8
    total = torch.zeros((), dtype=torch.float64)
    correct.score_into(total)
    assert int(total) == direct_count([(output, labels)])
    assert not output.requires_grad and correct.outputs == []


def test_fits_training_accuracy_is_the_fraction_of_right_predictions(monkeypatch):
    # a model that predicts class 0 whatever its input: the accuracy is the share of zeros
    from types import SimpleNamespace

    from compiler.training import TrainingConfig

    class AlwaysZero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.tensor([5.0, 0.0, 0.0]))

        def forward(self, x):
            return self.bias.expand(len(x), 3) + 0 * x[:, :1]

    monkeypatch.setattr(loop, "SCORED_BYTES", 200)  # scored in several groups
    y = torch.tensor([0, 1, 2, 0, 0, 1, 0, 2, 0, 0] * 7)
    x = torch.randn(len(y), 4)
    data = SimpleNamespace(
        x_train=x,
        y_train=y,
        x_val=x[:10],
        y_val=y[:10],
        num_classes=3,
        class_names=None,
        streamed=False,
        description="toy: 70 samples",
    )
    training = TrainingConfig.model_validate(
        {
            "task": "classification",
            "epochs": 1,
            "batch_size": 8,
            "optimizer": {"type": "sgd", "lr": 1e-9},
            "data": {"dataset": "digits"},
        }
    )
    result = loop.fit(
        AlwaysZero(), data, training, device=torch.device("cpu"), quiet=True
    )
    assert result.history[0]["train_accuracy"] == pytest.approx(
        float((y == 0).float().mean())
    )
