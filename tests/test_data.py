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


# --- torchvision data sets, read by the real torchvision classes from files written here ---

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torchvision.datasets.cifar  # noqa: E402

from tests.data_files import CIFAR_CLASSES, CIFAR_FOLDER, write_cifar10, write_mnist  # noqa: E402


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_mnist_family_from_idx_files(tmp_path: Path, dataset: str) -> None:
    arrays = write_mnist(tmp_path, dataset, train=20, test=10)
    config = training(dataset=dataset, data_dir=str(tmp_path), download=False, val_fraction=0.25)
    splits = load_data(config, [1, 28, 28])
    assert splits.x_train.shape == (15, 1, 28, 28) and splits.x_val.shape == (5, 1, 28, 28)
    assert splits.x_test.shape == (10, 1, 28, 28) and splits.x_train.dtype == torch.float32
    assert splits.y_train.dtype == torch.int64 and splits.num_classes == 10
    assert splits.description == f"{dataset}: 15 train, 5 val, 10 test"
    expected_test = torch.from_numpy(arrays["t10k_images"]).float().div(255).unsqueeze(1)
    assert torch.equal(splits.x_test, expected_test)  # test split in file order, scaled
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["t10k_labels"]).long())
    pool = torch.from_numpy(arrays["train_images"]).float().div(255).unsqueeze(1)
    assert sample_multiset(pool, torch.from_numpy(arrays["train_labels"]).long()) == sample_multiset(
        torch.cat([splits.x_train, splits.x_val]), torch.cat([splits.y_train, splits.y_val])
    )
    assert splits.x_train.min() >= 0 and splits.x_train.max() <= 1
    assert len(splits.class_names) == 10
    assert splits.class_names[0] == ("0 - zero" if dataset == "mnist" else "T-shirt/top")


@pytest.fixture
def cifar_without_md5s(monkeypatch: pytest.MonkeyPatch) -> None:
    # torchvision checks the md5 of every CIFAR-10 file against the real archive's; files written
    # here cannot match, so in tests only, integrity means "the file exists". Everything else
    # (unpickling, stacking, the HWC layout) is torchvision's real code.
    monkeypatch.setattr(
        torchvision.datasets.cifar, "check_integrity",
        lambda path, md5=None: Path(path).is_file(),
    )


def test_cifar10_from_python_batches(tmp_path: Path, cifar_without_md5s: None) -> None:
    arrays = write_cifar10(tmp_path, per_batch=4, test=10)
    config = training(dataset="cifar10", data_dir=str(tmp_path), download=False, val_fraction=0.2)
    splits = load_data(config, [3, 32, 32])
    assert splits.x_train.shape == (16, 3, 32, 32) and splits.x_val.shape == (4, 3, 32, 32)
    assert splits.x_test.shape == (10, 3, 32, 32)
    expected = torch.from_numpy(arrays["test_images"]).permute(0, 3, 1, 2).float().div(255)
    assert torch.equal(splits.x_test, expected)  # channels first, red plane first
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["test_labels"]).long())
    pool = torch.from_numpy(arrays["train_images"]).permute(0, 3, 1, 2).float().div(255)
    assert sample_multiset(pool, torch.from_numpy(arrays["train_labels"]).long()) == sample_multiset(
        torch.cat([splits.x_train, splits.x_val]), torch.cat([splits.y_train, splits.y_val])
    )
    assert splits.class_names == CIFAR_CLASSES and splits.num_classes == 10


def test_cifar10_files_that_fail_the_md5_check_are_reported(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    config = training(dataset="cifar10", data_dir=str(tmp_path), download=False)
    with pytest.raises(UserError, match=r"files in .*cifar-10-batches-py could not be read"):
        load_data(config, [3, 32, 32])


def test_missing_files_without_download_say_where_they_were_expected(tmp_path: Path) -> None:
    config = training(dataset="mnist", data_dir=str(tmp_path / "data"), download=False)
    with pytest.raises(UserError) as error:
        load_data(config, [1, 28, 28])
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "data" / "MNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "download: true" in message


@pytest.mark.parametrize("dataset", ["fashion_mnist", "cifar10"])
def test_failed_download_becomes_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dataset: str
) -> None:
    from urllib.error import URLError

    import torchvision.datasets

    attempts = []

    def no_network(self) -> None:  # what urlopen does on a machine without a network
        attempts.append(type(self).__name__)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    for name in ("FashionMNIST", "CIFAR10"):
        monkeypatch.setattr(getattr(torchvision.datasets, name), "download", no_network)
    config = training(dataset=dataset, data_dir=str(tmp_path), download=True)
    with pytest.raises(UserError) as error:
        load_data(config, [1, 28, 28] if dataset != "cifar10" else [3, 32, 32])
    message = str(error.value)
    assert attempts  # download was really tried
    assert "\n" not in message and "the download failed" in message
    assert "name resolution" in message and str(tmp_path) in message


def test_mnist_shape_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path, "mnist")
    config = training(dataset="mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(UserError, match=r"gives samples of shape \[1, 28, 28\], but the spec's "
                                        r"input is \[784\]; set input: \[1, 28, 28\] and start"):
        load_data(config, [784])
