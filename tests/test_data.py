"""The data layer: each data set read from its real on-disk format, split, shape-checked."""

from __future__ import annotations

import pytest
import torch

from compiler.training import TrainingConfig
from runtime.data import DataSplits, load_data
from runtime.errors import UserError


def training(seed: int = 0, task: str = "classification", **data) -> TrainingConfig:
    """Return a TrainingConfig validated like a spec's, with `data` as its data section."""
    return TrainingConfig.model_validate({"data": data, "task": task, "seed": seed})


def sample_multiset(x: torch.Tensor, y: torch.Tensor) -> list[tuple[bytes, float]]:
    """Return the (sample bytes, label) pairs, sorted: equal when the same samples are there."""
    return sorted(zip((row.numpy().tobytes() for row in x.float()), y.tolist()))


@pytest.fixture(scope="module")
def digits() -> DataSplits:
    return load_data(training(dataset="digits", val_fraction=0.2), [1, 8, 8])


def test_digits_shapes_types_and_range(digits: DataSplits) -> None:
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_val.shape == (360, 1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    assert digits.y_train.shape == (1437,) and digits.y_val.shape == (360,)
    assert digits.x_test is None and digits.y_test is None
    everything = torch.cat([digits.x_train, digits.x_val])
    assert everything.min() == 0.0 and everything.max() == 1.0
    assert digits.num_classes == 10
    assert digits.class_names == [str(d) for d in range(10)]
    assert set(torch.cat([digits.y_train, digits.y_val]).tolist()) == set(range(10))
    assert digits.description == "digits: 1437 train, 360 val, no test split"
    assert not digits.x_train.is_cuda


def test_digits_split_is_a_partition_decided_by_the_seed(digits: DataSplits) -> None:
    again = load_data(training(dataset="digits", val_fraction=0.2), [1, 8, 8])
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_val, digits.y_val)
    other = load_data(training(seed=1, dataset="digits", val_fraction=0.2), [1, 8, 8])
    assert not torch.equal(other.y_val, digits.y_val)
    assert len(other.x_val) == len(digits.x_val)
    # train and val together are every digit exactly once
    from sklearn.datasets import load_digits

    everything = load_digits()
    pool = torch.from_numpy(everything.images).float().div(16).unsqueeze(1)
    assert sample_multiset(pool, torch.from_numpy(everything.target)) == sample_multiset(
        torch.cat([digits.x_train, digits.x_val]), torch.cat([digits.y_train, digits.y_val])
    )


def test_digits_test_fraction_is_carved_out_first() -> None:
    splits = load_data(
        training(dataset="digits", val_fraction=0.25, test_fraction=0.1), [1, 8, 8]
    )
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (1212, 405, 180)
    assert splits.y_test.dtype == torch.int64
    assert splits.description == "digits: 1212 train, 405 val, 180 test"


def test_digits_into_a_flat_input_says_how_to_fix_the_spec() -> None:
    with pytest.raises(UserError) as error:
        load_data(training(dataset="digits"), [64])
    message = str(error.value)
    assert message == (
        "data set 'digits' gives samples of shape [1, 8, 8], but the spec's input is [64]; "
        "set input: [1, 8, 8] and start the layers with flatten"
    )


def test_digits_for_binary_task_needs_zero_one_labels() -> None:
    with pytest.raises(UserError, match="binary labels must be 0 or 1"):
        load_data(training(task="binary", dataset="digits"), [1, 8, 8])


def test_task_argument_overrides_the_training_task() -> None:
    splits = load_data(training(dataset="digits"), [1, 8, 8], task="regression")
    assert splits.y_train.dtype == torch.float32 and splits.num_classes is None
