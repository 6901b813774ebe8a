"""csv data: standardization from the training split, one-hot columns of names, several target
columns, relative paths from the spec's folder, and the statistics a checkpoint keeps.
"""

import json

import numpy as np
import pytest
import torch

from compiler import SpecError, load_spec
from runtime.data.load import load_spec_data
from runtime.data.preprocess import channel_stats, chunks_of
from runtime.errors import UserError
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_table(path, n=120, scale=1.0, seed=0, colour=False):
    """Write a learnable regression table: y = a - 2 b (+ 3 for red), b scaled by `scale`."""
    g = np.random.default_rng(seed)
    a, b = g.normal(size=n), g.normal(size=n)
    colours = g.choice(["red", "green", "blue"], size=n)
    lines = ["a,b" + (",colour" if colour else "") + ",y,z"]
    for i in range(n):
        y = a[i] - 2 * b[i] + (3.0 if colour and colours[i] == "red" else 0.0)
        cells = [f"{a[i]:.6f}", f"{b[i] * scale:.6f}"] + (
            [colours[i]] if colour else []
        )
        lines.append(",".join(cells + [f"{y:.6f}", f"{a[i] + b[i]:.6f}"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def regression_spec(path, width=3, target="y", **training) -> dict:
    outputs = len(target) if isinstance(target, list) else 1
    return {
        "name": "Table",
        "input": [width],
        "layers": [{"linear": 16}, "relu", {"linear": outputs}],
        "training": {
            "task": "regression",
            "epochs": 3,
            "batch_size": 32,
            "early_stopping": None,
            "optimizer": {"type": "adam", "lr": 0.01},
            "data": {
                "dataset": "csv",
                "path": str(path),
                "target": target,
                "features": ["a", "b"] if width == 2 else None,
                **training.pop("data", {}),
            },
            **training,
        },
    }


def test_channel_stats_of_chunks_equal_those_of_the_whole():
    x = torch.randn(1000, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 5 + 2
    mean, std = channel_stats(chunks_of(x, 128))
    whole_mean = x.transpose(0, 1).reshape(3, -1).mean(dim=1)
    whole_std = x.transpose(0, 1).reshape(3, -1).std(dim=1, unbiased=False)
    assert mean == pytest.approx(whole_mean.tolist(), rel=1e-6)
    assert std == pytest.approx(whole_std.tolist(), rel=1e-6)


def test_a_constant_column_gets_std_one_not_a_division_by_zero():
    x = torch.tensor([[5.0, 1.0], [5.0, 2.0], [5.0, 3.0]])
    mean, std = channel_stats([x[:2], x[2:]])
    assert mean[0] == 5.0 and std[0] == 1.0


def test_features_are_standardized_with_the_training_split_statistics(tmp_path):
    path = write_table(tmp_path / "t.csv")
    data = load_spec_data(load_spec(regression_spec(path, width=2)))
    stats = data.preprocessing["standardize"]
    assert data.x_train.mean(dim=0).abs().max() < 1e-5
    assert data.x_train.std(dim=0, unbiased=False) == pytest.approx([1, 1], rel=1e-4)
    assert data.x_val.mean(dim=0).abs().max() > 1e-4  # not its own statistics
    raw = load_spec_data(
        load_spec(regression_spec(path, width=2, data={"standardize": False}))
    )
    assert raw.preprocessing["standardize"] is None
    expected = (raw.x_val - torch.tensor(stats["mean"])) / torch.tensor(stats["std"])
    assert torch.allclose(data.x_val, expected, atol=1e-5)


def test_a_column_times_1000_leaves_the_metrics_about_unchanged(tmp_path):
    plain = write_table(tmp_path / "plain.csv")
    scaled = write_table(tmp_path / "scaled.csv", scale=1000.0)
    a = train_spec(
        load_spec(regression_spec(plain, 2)), out_dir=tmp_path / "a", quiet=True
    )
    b = train_spec(
        load_spec(regression_spec(scaled, 2)), out_dir=tmp_path / "b", quiet=True
    )
    loss_a, loss_b = a["last_metrics"]["val_loss"], b["last_metrics"]["val_loss"]
    assert loss_b == pytest.approx(loss_a, rel=0.02)
    raw = regression_spec(scaled, 2, data={"standardize": False})
    c = train_spec(load_spec(raw), out_dir=tmp_path / "c", quiet=True)
    assert c["last_metrics"]["val_loss"] > 10 * loss_a  # what standardizing prevents


def test_a_column_of_names_is_one_hot_encoded_in_place(tmp_path):
    path = write_table(tmp_path / "c.csv", colour=True)
    spec = regression_spec(path, width=5, data={"features": ["a", "colour", "b"]})
    data = load_spec_data(load_spec(spec))
    assert data.encoding == {
        "features": ["a", "colour", "b"],
        "categories": {"colour": ["blue", "green", "red"]},
    }
    one_hot = data.x_train[:, 1:4]
    assert torch.equal(one_hot.sum(dim=1), torch.ones(len(one_hot)))  # not standardized
    stats = data.preprocessing["standardize"]
    assert stats["mean"][1:4] == [0.0, 0.0, 0.0] and stats["std"][1:4] == [1.0] * 3


def test_a_wrong_input_width_says_the_encoded_width_and_the_expanded_columns(tmp_path):
    path = write_table(tmp_path / "c.csv", colour=True)
    spec = regression_spec(path, width=4, data={"features": ["a", "b", "colour"]})
    with pytest.raises(UserError) as info:
        load_spec_data(load_spec(spec))
    message = str(info.value)
    assert "has 3 feature columns (listed in features), 5 values" in message
    assert "'colour' into 3 (blue, green, red)" in message
    assert "set input: [5]" in message


def test_a_numeric_column_with_a_typo_is_an_error_not_a_category(tmp_path):
    path = tmp_path / "typo.csv"
    path.write_text("a,b,y\n1,2,3\n4,x5,6\n7,8,9\n1,1,1\n")
    with pytest.raises(UserError, match=r"typo\.csv:3: column 'b' holds 'x5'"):
        load_spec_data(load_spec(regression_spec(path, width=2)))


def test_several_target_columns_give_y_of_shape_n_k(tmp_path):
    path = write_table(tmp_path / "t.csv")
    spec = regression_spec(path, width=2, target=["y", "z"])
    data = load_spec_data(load_spec(spec))
    assert data.y_train.shape == (len(data.x_train), 2)
    summary = train_spec(load_spec(spec), out_dir=tmp_path / "run", quiet=True)
    assert summary["last_metrics"]["val_mae"] > 0


def test_a_target_list_is_for_regression_only():
    spec = regression_spec("t.csv", width=2, target=["y", "z"], task="classification")
    with pytest.raises(SpecError, match=r"training\.data\.target: a list of target"):
        load_spec(spec)


def test_a_relative_path_is_read_from_the_spec_folder(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    write_table(folder / "t.csv")
    spec = folder / "spec.json"
    spec.write_text(json.dumps(regression_spec("t.csv", width=2)))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    data = load_spec_data(load_spec(spec))
    assert data.preprocessing["data_folder"] == str(folder)
    # the checkpoint records the folder: evaluate finds the file from anywhere
    train_spec(load_spec(spec), out_dir=tmp_path / "run", quiet=True)
    assert evaluate_checkpoint(tmp_path / "run" / "last.pt")["samples"] == 24
    (folder / "t.csv").unlink()
    with pytest.raises(UserError, match=rf"file 't\.csv' not found in {folder}"):
        load_spec_data(load_spec(spec))


def test_standardization_survives_a_checkpoint_round_trip(tmp_path):
    path = write_table(tmp_path / "t.csv", scale=1000.0)
    spec = load_spec(regression_spec(path, width=2))
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    stats = payload["preprocessing"]["standardize"]
    assert stats == load_spec_data(spec).preprocessing["standardize"]
    assert stats["std"][1] > 100  # the scaled column's own spread
    result = evaluate_checkpoint(tmp_path / "run" / "last.pt")
    assert result["loss"] == pytest.approx(
        summary["last_metrics"]["val_loss"], rel=1e-5
    )


def test_lint_reads_a_relative_csv_from_the_spec_folder(tmp_path, monkeypatch):
    from compiler.lint import training_sample_count

    write_table(tmp_path / "t.csv", n=50)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(regression_spec("t.csv", width=2)))
    monkeypatch.chdir(tmp_path.parent)
    training = load_spec(spec).training
    assert training_sample_count(training) is None  # not in the working directory
    assert training_sample_count(training, tmp_path) == 40
