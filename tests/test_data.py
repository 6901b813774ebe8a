"""The data layer: each data set read from its real on-disk format, split, shape-checked."""

from __future__ import annotations

import pickle
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets
import torchvision.datasets.cifar

from compiler.training import TrainingConfig
from runtime.data.load import DataSplits, load_data, load_spec_data
from runtime.errors import UserError
from tests.data_files import CIFAR_CLASSES, write_cifar10, write_csv, write_mnist


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
    assert digits.x_train.shape == (1437, 1, 8, 8) and digits.x_val.shape == (
        360,
        1,
        8,
        8,
    )
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
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(
        again.y_val, digits.y_val
    )
    other = load_data(training(seed=1, dataset="digits", val_fraction=0.2), [1, 8, 8])
    assert not torch.equal(other.y_val, digits.y_val)
    assert len(other.x_val) == len(digits.x_val)
    # train and val together are every digit exactly once
    from sklearn.datasets import load_digits

    everything = load_digits()
    pool = torch.from_numpy(everything.images).float().div(16).unsqueeze(1)
    assert sample_multiset(
        pool, torch.from_numpy(everything.target)
    ) == sample_multiset(
        torch.cat([digits.x_train, digits.x_val]),
        torch.cat([digits.y_train, digits.y_val]),
    )


def test_digits_test_fraction_is_carved_out_first() -> None:
    splits = load_data(
        training(dataset="digits", val_fraction=0.25, test_fraction=0.1), [1, 8, 8]
    )
    assert (len(splits.x_train), len(splits.x_val), len(splits.x_test)) == (
        1212,
        405,
        180,
    )
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


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_mnist_family_from_idx_files(tmp_path: Path, dataset: str) -> None:
    arrays = write_mnist(tmp_path, dataset, train=20, test=10)
    config = training(
        dataset=dataset, data_dir=str(tmp_path), download=False, val_fraction=0.25
    )
    splits = load_data(config, [1, 28, 28])
    assert splits.x_train.shape == (15, 1, 28, 28) and splits.x_val.shape == (
        5,
        1,
        28,
        28,
    )
    assert (
        splits.x_test.shape == (10, 1, 28, 28) and splits.x_train.dtype == torch.float32
    )
    assert splits.y_train.dtype == torch.int64 and splits.num_classes == 10
    assert splits.description == f"{dataset}: 15 train, 5 val, 10 test"
    expected_test = (
        torch.from_numpy(arrays["t10k_images"]).float().div(255).unsqueeze(1)
    )
    assert torch.equal(splits.x_test, expected_test)  # test split in file order, scaled
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["t10k_labels"]).long())
    pool = torch.from_numpy(arrays["train_images"]).float().div(255).unsqueeze(1)
    assert sample_multiset(
        pool, torch.from_numpy(arrays["train_labels"]).long()
    ) == sample_multiset(
        torch.cat([splits.x_train, splits.x_val]),
        torch.cat([splits.y_train, splits.y_val]),
    )
    assert splits.x_train.min() >= 0 and splits.x_train.max() <= 1
    assert len(splits.class_names) == 10
    assert splits.class_names[0] == (
        "0 - zero" if dataset == "mnist" else "T-shirt/top"
    )


@pytest.fixture
def cifar_without_md5s(monkeypatch: pytest.MonkeyPatch) -> None:
    # torchvision checks the md5 of every CIFAR-10 file against the real archive's; files written
    # here cannot match, so in tests only, integrity means "the file exists". Everything else
    # (unpickling, stacking, the HWC layout) is torchvision's real code.
    monkeypatch.setattr(
        torchvision.datasets.cifar,
        "check_integrity",
        lambda path, md5=None: Path(path).is_file(),
    )


def test_cifar10_from_python_batches(tmp_path: Path, cifar_without_md5s: None) -> None:
    arrays = write_cifar10(tmp_path, per_batch=4, test=10)
    config = training(
        dataset="cifar10", data_dir=str(tmp_path), download=False, val_fraction=0.2
    )
    splits = load_data(config, [3, 32, 32])
    assert splits.x_train.shape == (16, 3, 32, 32) and splits.x_val.shape == (
        4,
        3,
        32,
        32,
    )
    assert splits.x_test.shape == (10, 3, 32, 32)
    expected = (
        torch.from_numpy(arrays["test_images"]).permute(0, 3, 1, 2).float().div(255)
    )
    assert torch.equal(splits.x_test, expected)  # channels first, red plane first
    assert torch.equal(splits.y_test, torch.from_numpy(arrays["test_labels"]).long())
    pool = torch.from_numpy(arrays["train_images"]).permute(0, 3, 1, 2).float().div(255)
    assert sample_multiset(
        pool, torch.from_numpy(arrays["train_labels"]).long()
    ) == sample_multiset(
        torch.cat([splits.x_train, splits.x_val]),
        torch.cat([splits.y_train, splits.y_val]),
    )
    assert splits.class_names == CIFAR_CLASSES and splits.num_classes == 10


def test_cifar10_files_that_fail_the_md5_check_are_reported(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    config = training(dataset="cifar10", data_dir=str(tmp_path), download=False)
    with pytest.raises(
        UserError, match=r"files in .*cifar-10-batches-py could not be read"
    ):
        load_data(config, [3, 32, 32])


def test_missing_files_without_download_say_where_they_were_expected(
    tmp_path: Path,
) -> None:
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


def test_test_fraction_is_refused_for_a_data_set_with_its_own_test_split(
    tmp_path: Path,
) -> None:
    write_mnist(tmp_path, "fashion_mnist")
    config = training(
        dataset="fashion_mnist",
        data_dir=str(tmp_path),
        download=False,
        test_fraction=0.1,
    )
    with pytest.raises(
        UserError, match=r"'fashion_mnist' has its own test split; test_frac"
    ):
        load_data(config, [1, 28, 28])


def test_mnist_shape_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path, "mnist")
    config = training(dataset="mnist", data_dir=str(tmp_path), download=False)
    with pytest.raises(
        UserError,
        match=r"gives samples of shape \[1, 28, 28\], but the spec's "
        r"input is \[784\]; set input: \[1, 28, 28\] and start",
    ):
        load_data(config, [784])


# --- csv ---


FRUIT_CSV = """\
weight,colour,sweetness,kind
150,0.2,7.5,apple
120,0.9,6.0,pear
130,0.3,8.0,apple
 90,0.7,5.5,banana

160,0.1,7.0,apple
110,0.8,6.5,pear
95,0.6,5.0,banana
140,0.4,7.8,apple
"""


def csv_training(
    path: Path, target="kind", task="classification", **data
) -> TrainingConfig:
    return training(task=task, dataset="csv", path=str(path), target=target, **data)


def test_csv_string_labels_are_mapped_in_sorted_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fruit.csv", FRUIT_CSV)
    splits = load_data(csv_training(path, val_fraction=0.25), [3])
    assert splits.class_names == ["apple", "banana", "pear"] and splits.num_classes == 3
    assert splits.description == f"{path}: 6 train, 2 val, no test split"
    x = torch.cat([splits.x_train, splits.x_val])
    y = torch.cat([splits.y_train, splits.y_val])
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    expected = {
        (150.0, 0.2, 7.5): 0,
        (120.0, 0.9, 6.0): 2,
        (130.0, 0.3, 8.0): 0,
        (90.0, 0.7, 5.5): 1,
        (160.0, 0.1, 7.0): 0,
        (110.0, 0.8, 6.5): 2,
        (95.0, 0.6, 5.0): 1,
        (140.0, 0.4, 7.8): 0,
    }
    found = {
        tuple(round(v, 4) for v in row.tolist()): label
        for row, label in zip(x, y.tolist())
    }
    assert found == expected


def test_csv_selected_features_reshaped_to_the_input(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "fruit.csv", FRUIT_CSV)
    splits = load_data(
        csv_training(path, features=["sweetness", "weight"], val_fraction=0.25), [1, 2]
    )
    assert splits.x_train.shape == (6, 1, 2)
    rows = {
        tuple(row.flatten().tolist())
        for row in torch.cat([splits.x_train, splits.x_val])
    }
    assert (7.5, 150.0) in rows and (5.0, 95.0) in rows


def test_csv_numeric_labels_by_task(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "n.csv",
        "a,b,label\n" + "".join(f"{i},{i * 2},{i % 3}\n" for i in range(12)),
    )
    classes = load_data(csv_training(path, target="label"), [2])
    assert classes.num_classes == 3 and classes.class_names is None
    assert classes.y_train.dtype == torch.int64
    by_column_number = load_data(csv_training(path, target=2), [2])
    assert torch.equal(by_column_number.y_val, classes.y_val)
    regression = load_data(csv_training(path, target="b", task="regression"), [2])
    assert regression.y_train.dtype == torch.float32 and regression.num_classes is None
    # the target is never also a feature: a = b / 2 in every row
    assert torch.equal(regression.y_train, regression.x_train[:, 0] * 2)
    binary_path = write_csv(
        tmp_path / "b.csv", "a,yes\n" + "".join(f"{i},{i % 2}\n" for i in range(10))
    )
    binary = load_data(csv_training(binary_path, target="yes", task="binary"), [1])
    assert binary.y_train.dtype == torch.float32 and binary.num_classes == 2
    assert set(torch.cat([binary.y_train, binary.y_val]).tolist()) == {0.0, 1.0}


def test_csv_test_fraction_and_determinism(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "n.csv", "id,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40))
    )
    first = load_data(csv_training(path, target="label", test_fraction=0.25), [1])
    again = load_data(csv_training(path, target="label", test_fraction=0.25), [1])
    assert (len(first.x_train), len(first.x_val), len(first.x_test)) == (24, 6, 10)
    ids = torch.cat([first.x_train, first.x_val, first.x_test]).flatten().tolist()
    assert sorted(ids) == list(range(40))
    assert torch.equal(first.x_test, again.x_test) and torch.equal(
        first.x_val, again.x_val
    )


@pytest.mark.parametrize(
    ("text", "target", "task", "features", "expected"),
    [
        (
            "",
            "kind",
            "classification",
            None,
            r"csv file '.*e\.csv' is empty: expected a header",
        ),
        ("a,kind\n", "kind", "classification", None, r"has a header but no data rows"),
        (
            "1,2\n3,4\n",
            "kind",
            "classification",
            None,
            r"e\.csv:1: the first row must be a header",
        ),
        (
            "a,b,Kind\n1,2,x\n",
            "kind",
            "classification",
            None,
            r"no target column 'kind' \(did you mean 'Kind'\?\); the columns are 'a', 'b', 'Kind'",
        ),
        (
            "a,b,c\n1,2,x\n",
            5,
            "classification",
            None,
            r"target column 5 does not exist: .* 3 columns",
        ),
        (
            "a,b,kind\n1,2,x\n3,4,5,y\n",
            "kind",
            "classification",
            None,
            r"e\.csv:3: this row has 4 fields, but the header has 3",
        ),
        (
            "a,b,kind\n1,2,x\n\n3,oops,y\n",
            "kind",
            "classification",
            None,
            r"e\.csv:4: column 'b' holds 'oops', which is not a number",
        ),
        (
            "a,b,kind\n1,,x\n",
            "kind",
            "classification",
            None,
            r"e\.csv:2: column 'b' is empty",
        ),
        (
            "a,b,kind\n1,nan,x\n",
            "kind",
            "classification",
            None,
            r"e\.csv:2: column 'b' holds 'nan'.*finite",
        ),
        (
            "a,b,kind\n1,2,x\n",
            "kind",
            "classification",
            ["a", "bb"],
            r"no feature column 'bb' \(did you mean 'b'\?\)",
        ),
        (
            "a,b,kind\n1,2,x\n",
            "kind",
            "classification",
            ["a", "kind"],
            r"'kind' is the target",
        ),
        (
            "a,a,kind\n1,2,x\n",
            "kind",
            "classification",
            ["a", "a"],
            r"2 columns named 'a'",
        ),
        (
            "a,b,kind\n1,2,0\n3,4,-1\n",
            "kind",
            "classification",
            None,
            r"column 'kind': line 3: classification labels must be class indices.*got -1",
        ),
        ("a,b,kind\n1,2,0\n3,4,1.5\n", "kind", "classification", None, r"got 1\.5"),
        (
            "a,b,kind\n1,2,0\n3,4,2\n",
            "kind",
            "binary",
            None,
            r"line 3: binary labels must be 0 or 1 \(or two names\), got 2",
        ),
        (
            "a,b,kind\n1,2,x\n3,4,y\n5,6,z\n",
            "kind",
            "binary",
            None,
            r"binary needs exactly two label names, found 3: 'x', 'y', 'z'",
        ),
        (
            "a,b,kind\n1,2,x\n3,4,\n",
            "kind",
            "classification",
            None,
            r"line 3: the label is empty",
        ),
        (
            "a,b,kind\n1,2,0.5\n3,4,high\n",
            "kind",
            "regression",
            None,
            r"line 3: regression needs numeric targets, got 'high'",
        ),
        (
            "a,b,c,kind\n1,2,3,x\n",
            "kind",
            "classification",
            None,
            r"has 3 feature columns \(all but the target 'kind'\), but the spec's input \[2\] holds 2 "
            r"values per sample; set input: \[3\] or list the columns",
        ),
    ],
)
def test_csv_errors_are_one_line_naming_file_and_place(
    tmp_path: Path, text: str, target, task: str, features, expected: str
) -> None:
    path = write_csv(tmp_path / "e.csv", text)
    extra = {"features": features} if features else {}
    with pytest.raises(UserError, match=expected) as error:
        load_data(csv_training(path, target=target, task=task, **extra), [2])
    assert "\n" not in str(error.value) and "e.csv" in str(error.value)


def test_csv_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"csv file '.*nope\.csv' not found"):
        load_data(csv_training(tmp_path / "nope.csv"), [2])
    with pytest.raises(UserError, match=r"relative paths are read from"):
        load_data(csv_training(Path("no_such_folder_here/x.csv")), [2])
    with pytest.raises(UserError, match=r"is a folder, not a file"):
        load_data(csv_training(tmp_path), [2])


def test_csv_too_few_rows_to_split(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "one.csv", "a,kind\n1,x\n")
    with pytest.raises(UserError, match=r"has 1 sample: too few to split"):
        load_data(csv_training(path), [1])


def test_shipped_wine_csv_reads_with_its_spec() -> None:
    from compiler import load_spec

    spec = load_spec("specs/wine_mlp.json")
    splits = load_spec_data(spec)  # its path is relative to specs/
    assert splits.x_train.shape[1:] == (13,) and splits.class_names == [
        "class_a",
        "class_b",
        "class_c",
    ]
    assert len(splits.x_train) + len(splits.x_val) == 178


# --- npz ---


def test_npz_happy_path_with_own_keys_and_string_labels(tmp_path: Path) -> None:
    x = np.arange(20 * 6, dtype=np.float64).reshape(20, 2, 3)
    names = np.array(["cat", "dog"] * 10)
    np.savez(tmp_path / "d.npz", samples=x, kinds=names)
    config = training(
        dataset="npz", path=str(tmp_path / "d.npz"), x_key="samples", y_key="kinds"
    )
    splits = load_data(config, [2, 3])
    assert splits.x_train.shape == (16, 2, 3) and splits.x_train.dtype == torch.float32
    assert splits.class_names == ["cat", "dog"] and splits.y_train.dtype == torch.int64
    first_values = torch.cat([splits.x_train, splits.x_val])[:, 0, 0].long()
    labels = torch.cat([splits.y_train, splits.y_val])
    assert torch.equal(
        labels, (first_values // 6) % 2
    )  # each sample kept its own label


def test_npz_regression_with_several_targets(tmp_path: Path) -> None:
    np.savez(tmp_path / "r.npz", x=np.ones((10, 4), np.float32), y=np.zeros((10, 2)))
    splits = load_data(
        training(task="regression", dataset="npz", path=str(tmp_path / "r.npz")), [4]
    )
    assert splits.y_train.shape == (8, 2) and splits.y_train.dtype == torch.float32


@pytest.mark.parametrize(
    ("arrays", "expected"),
    [
        (
            {"x": np.ones((4, 2)), "label": np.zeros(4)},
            r"no array 'y'; the archive holds 'x', 'label' \(choose with training.data.y_key\)",
        ),
        (
            {"X": np.ones((4, 2)), "y": np.zeros(4)},
            r"no array 'x' \(did you mean 'X'\?\)",
        ),
        (
            {"x": np.array([{"a": 1}] * 4, dtype=object), "y": np.zeros(4)},
            r"array 'x' holds pickled Python objects, which nnspec never loads",
        ),
        (
            {"x": np.ones((4, 2)), "y": np.zeros(3)},
            r"'x' has 4 samples but 'y' has 3 labels",
        ),
        (
            {"x": np.ones(4), "y": np.zeros(4)},
            r"array 'x' has shape \[4\]; it must be \(samples",
        ),
        (
            {"x": np.full((4, 2), np.inf), "y": np.zeros(4)},
            r"sample 0: holds a value that is not finite",
        ),
        (
            {"x": np.ones((4, 3)), "y": np.zeros(4)},
            r"gives samples of shape \[3\], but the spec's input is \[2\]; set input: \[3\]",
        ),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict, expected: str) -> None:
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(UserError, match=expected) as error:
        load_data(training(dataset="npz", path=str(tmp_path / "d.npz")), [2])
    assert "\n" not in str(error.value)


def test_npz_file_errors(tmp_path: Path) -> None:
    config = training(dataset="npz", path=str(tmp_path / "none.npz"))
    with pytest.raises(UserError, match=r"npz file '.*none\.npz' not found"):
        load_data(config, [2])
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(UserError, match=r"is not a NumPy \.npz archive"):
        load_data(training(dataset="npz", path=str(tmp_path / "text.npz")), [2])
    np.save(tmp_path / "single.npy", np.ones((4, 2)))
    with pytest.raises(UserError, match=r"holds a single array, not an archive"):
        load_data(training(dataset="npz", path=str(tmp_path / "single.npy")), [2])
    np.save(
        tmp_path / "objects.npy", np.array([None, 1], dtype=object), allow_pickle=True
    )
    with pytest.raises(UserError, match=r"the file holds pickled Python objects"):
        load_data(training(dataset="npz", path=str(tmp_path / "objects.npy")), [2])
    (tmp_path / "data.pkl").write_bytes(pickle.dumps({"x": [1.0, 2.0]}))
    with pytest.raises(UserError, match=r"the file holds pickled Python objects"):
        load_data(training(dataset="npz", path=str(tmp_path / "data.pkl")), [2])
