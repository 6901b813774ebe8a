"""Tasks beside one label per sample: reconstruction (with input noise), per-position
classification (segmentation, tagging), and int64 token inputs, through data, loop and evaluate.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from compiler import SpecError, build_sequential, load_spec
from compiler.lint import lint_spec
from runtime.cli.main import main
from runtime.data.inputs import sample_batch, spec_inputs
from runtime.data.load import load_spec_data
from runtime.errors import UserError
from runtime.parallel.distributed import Group
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.loop import _batch_noise, fit
from runtime.training.metrics import TaskMetrics
from runtime.training.rng import noise_generator
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = torch.device("cpu")


def autoencoder(noise: float = 0.0, epochs: int = 4, **data) -> dict:
    """Return an MLP autoencoder on digits: [1, 8, 8] -> 16 -> the 64 flattened pixels."""
    return {
        "name": "DigitsAE",
        "input": [1, 8, 8],
        "layers": ["flatten", {"linear": 16}, "relu", {"linear": 64}],
        "training": {
            "task": "reconstruction",
            "epochs": epochs,
            "optimizer": {"lr": 0.01},
            "early_stopping": None,
            "data": {"dataset": "digits", "noise": noise, **data},
        },
    }


def val_losses(summary_or_result) -> list[float]:
    return [row["val_loss"] for row in summary_or_result.history]


def fit_spec(data: dict):
    spec = load_spec(data)
    torch.manual_seed(0)
    return fit(
        build_sequential(spec),
        load_spec_data(spec),
        spec.training,
        device=CPU,
        quiet=True,
    )


# -- reconstruction ------------------------------------------------------------------------------


def test_the_autoencoder_learns_to_reconstruct_digits_and_has_no_accuracy():
    result = fit_spec(autoencoder(epochs=5))
    losses = val_losses(result)
    assert losses[-1] < 0.7 * losses[0]
    assert all(row["val_accuracy"] is None for row in result.history)
    assert result.history[-1]["val_mae"] < result.history[0]["val_mae"]
    # better than the best constant guess, the mean image (variance of the pixels)
    data = load_spec_data(load_spec(autoencoder()))
    mean_image = data.x_train.mean(dim=0)
    assert losses[-1] < float(((data.x_val - mean_image) ** 2).mean())


def test_noise_is_added_to_training_inputs_only_and_is_reproducible():
    clean = fit_spec(autoencoder(epochs=2))
    noisy = fit_spec(autoencoder(noise=0.3, epochs=2))
    again = fit_spec(autoencoder(noise=0.3, epochs=2))
    assert (
        noisy.history[0]["train_loss"] > clean.history[0]["train_loss"]
    )  # noisy inputs
    assert [r["train_loss"] for r in noisy.history] == [
        r["train_loss"] for r in again.history
    ]
    assert val_losses(noisy) == val_losses(again)
    other_seed = autoencoder(noise=0.3, epochs=2)
    other_seed["training"]["seed"] = 1
    assert (
        fit_spec(other_seed).history[0]["train_loss"] != noisy.history[0]["train_loss"]
    )


def test_the_denoising_autoencoder_trains_and_evaluate_reproduces_it(tmp_path):
    summary = train_spec(
        load_spec(autoencoder(noise=0.3, epochs=4)),
        out_dir=tmp_path / "run",
        quiet=True,
    )
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    header, first, last = rows[0].split(","), rows[1].split(","), rows[-1].split(",")
    assert header[-2:] == ["train_mae", "val_mae"]
    val = header.index("val_loss")
    assert float(last[val]) < 0.8 * float(first[val])
    assert first[header.index("val_accuracy")] == ""  # no accuracy for reconstruction
    result = evaluate_checkpoint(tmp_path / "run" / "best.pt", "val", "cpu")
    assert result["loss"] == pytest.approx(
        summary["best_metrics"]["val_loss"], rel=1e-5
    )
    assert result["mae"] == pytest.approx(summary["best_metrics"]["val_mae"], rel=1e-5)
    assert "accuracy" not in result and "confusion" not in result


def test_reconstruction_needs_no_labels_in_an_npz_file(tmp_path):
    x = np.random.default_rng(0).random((40, 6)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x=x)  # no y at all
    spec = load_spec(
        {
            "name": "AE",
            "input": [6],
            "layers": [{"linear": 3}, "relu", {"linear": 6}],
            "training": {
                "task": "reconstruction",
                "data": {"dataset": "npz", "path": str(tmp_path / "x.npz")},
            },
        }
    )
    data = load_spec_data(spec)
    assert data.y_train is data.x_train and data.y_val is data.x_val


def test_reconstruction_whose_output_is_not_the_input_is_a_located_spec_error(tmp_path):
    path = tmp_path / "ae.yaml"
    path.write_text(
        "name: AE\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 63\n"
        "training:\n  task: reconstruction\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == ("training.task", 7)
    assert "the model gives [63] for an input of [1, 8, 8]" in problem.message
    assert "64 values of the flattened input" in problem.message


# -- per-position classification -----------------------------------------------------------------


def segmentation_spec(path) -> dict:
    """conv2d [1, 8, 8] -> scores [3, 8, 8] against labels [8, 8] (3 brightness bands)."""
    return {
        "name": "Seg",
        "input": [1, 8, 8],
        "layers": [
            {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
            "relu",
            {"conv2d": {"out_channels": 3, "kernel_size": 1}},
        ],
        "training": {
            "epochs": 6,
            "batch_size": 32,
            "optimizer": {"lr": 0.02},
            "data": {"dataset": "npz", "path": str(path)},
        },
    }


def tagging_spec(path) -> dict:
    """conv1d over [E=4, L=10] -> scores [4, 10] against labels [10] (the largest channel)."""
    return {
        "name": "Tagger",
        "input": [4, 10],
        "layers": [
            {"conv1d": {"out_channels": 16, "kernel_size": 3, "padding": 1}},
            "relu",
            {"conv1d": {"out_channels": 4, "kernel_size": 1}},
        ],
        "training": {
            "epochs": 6,
            "batch_size": 32,
            "optimizer": {"lr": 0.02},
            "data": {"dataset": "npz", "path": str(path)},
        },
    }


def write_segmentation(path) -> None:
    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    np.savez(path, x=x, y=(x[:, 0] > 0.33).astype(np.int64) + (x[:, 0] > 0.66))


def write_tagging(path) -> None:
    x = np.random.default_rng(1).standard_normal((200, 4, 10)).astype(np.float32)
    np.savez(path, x=x, y=x.argmax(axis=1))


@pytest.mark.parametrize("case", ["segmentation", "tagging"])
def test_per_position_classification_trains_and_evaluate_reproduces_it(tmp_path, case):
    path = tmp_path / f"{case}.npz"
    (write_segmentation if case == "segmentation" else write_tagging)(path)
    data = (segmentation_spec if case == "segmentation" else tagging_spec)(path)
    spec = load_spec(data)
    assert lint_spec(spec) == []  # an output [C, ...] is right for labels per position
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    best = summary["best_metrics"]
    assert best["val_accuracy"] > 0.8 and summary["best_epoch"] >= 2
    result = evaluate_checkpoint(tmp_path / "run" / "best.pt", "val", "cpu")
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert result["accuracy"] == pytest.approx(best["val_accuracy"], rel=1e-6)
    matrix = torch.tensor(result["confusion"])
    positions = 64 if case == "segmentation" else 10
    assert (
        int(matrix.sum()) == result["samples"] * positions
    )  # every position counted once
    assert int(matrix.trace()) / int(matrix.sum()) == pytest.approx(result["accuracy"])


def test_per_position_scores_that_do_not_fit_the_labels_say_what_would(tmp_path):
    path = tmp_path / "seg.npz"
    write_segmentation(path)
    data = segmentation_spec(path)
    data["layers"] = data["layers"][:2] + [
        {"conv2d": {"out_channels": 3, "kernel_size": 3}}
    ]
    spec = load_spec(data)  # scores [3, 6, 6] for labels [8, 8]
    (warning,) = [w for w in lint_spec(spec) if w.code == "NS111"]
    assert "one class per position [8, 8]" in warning.message
    with pytest.raises(
        UserError,
        match=r"model must give one score per class at each position, "
        r"\(N, classes, 8, 8\); it gives \(N, 3, 6, 6\)",
    ):
        train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    task = TaskMetrics("classification")
    problem = task.check_output(torch.zeros(2, 2, 8, 8), torch.zeros(2, 8, 8).long(), 3)
    assert "3 classes but the model gives 2 scores at each position" in problem


def test_scores_per_position_for_labels_per_sample_are_flagged():
    spec = load_spec(
        {
            "name": "Net",
            "input": [1, 8, 8],
            "layers": [{"conv2d": {"out_channels": 10, "kernel_size": 1}}],
            "training": {"data": {"dataset": "digits"}},
        }
    )
    assert "NS111" in [w.code for w in lint_spec(spec)]
    problem = TaskMetrics("classification").check_output(
        torch.zeros(2, 10, 8, 8), torch.zeros(2).long(), 10
    )
    assert "scores at each position need labels of shape (N, 8, 8)" in problem


# -- noise across processes ----------------------------------------------------------------------


def test_each_process_gets_the_noise_of_its_samples_in_the_global_batch():
    xb = torch.zeros(
        7, 3
    )  # a global batch of 7: rank 0 takes rows 0, 2, 4, 6; rank 1 1, 3, 5
    alone = _batch_noise(noise_generator(0, 1, CPU), 0.5, 7, xb, Group())
    parts = [
        _batch_noise(noise_generator(0, 1, CPU), 0.5, 7, xb[rank::2], Group(rank, 2))
        for rank in (0, 1)
    ]
    assert torch.equal(parts[0], alone[0::2]) and torch.equal(parts[1], alone[1::2])
    assert float(alone.std()) == pytest.approx(0.5, rel=0.6)
    assert not torch.equal(
        alone, _batch_noise(noise_generator(0, 2, CPU), 0.5, 7, xb, Group())
    )


# -- int64 inputs --------------------------------------------------------------------------------


def token_spec(path, **training) -> dict:
    return {
        "name": "Tokens",
        "input": {"shape": [12], "dtype": "int64"},
        "layers": [
            {"embedding": {"num_embeddings": 50, "embedding_dim": 8}},
            "flatten",
            {"linear": 2},
        ],
        "training": {
            "epochs": 10,
            "batch_size": 32,
            "optimizer": {"lr": 0.02},
            "data": {"dataset": "npz", "path": str(path)},
            **training,
        },
    }


def write_tokens(path, high: int = 50, dtype=np.int64) -> None:
    x = np.random.default_rng(2).integers(0, high, (300, 12))
    np.savez(path, x=x.astype(dtype), y=(x[:, 0] < high // 2).astype(np.int64))


def test_token_ids_stay_int64_through_training_and_evaluate(tmp_path):
    path = tmp_path / "tokens.npz"
    write_tokens(path, dtype=np.int32)
    spec = load_spec(token_spec(path))
    data = load_spec_data(spec)
    assert data.x_train.dtype == torch.int64 and data.x_val.dtype == torch.int64
    torch.manual_seed(0)
    model = build_sequential(spec)
    seen = set()
    model.register_forward_pre_hook(lambda module, args: seen.add(args[0].dtype))
    result = fit(model, data, spec.training, device=CPU, quiet=True)
    assert seen == {torch.int64}
    assert result.history[-1]["val_accuracy"] > 0.8
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    evaluation = evaluate_checkpoint(tmp_path / "run" / "best.pt", "val", "cpu")
    assert evaluation["loss"] == pytest.approx(
        summary["best_metrics"]["val_loss"], rel=1e-5
    )
    assert evaluation["accuracy"] == pytest.approx(
        summary["best_metrics"]["val_accuracy"]
    )
    batch = sample_batch(spec, 64, generator=torch.Generator().manual_seed(0))
    assert (
        batch.dtype == torch.int64 and 0 <= int(batch.min()) and int(batch.max()) < 50
    )
    with spec_inputs(model, spec):  # what `nnspec summary --torchsummary` runs under
        assert model(torch.rand(2, 12)).shape == (2, 2)


@pytest.mark.parametrize(
    "case, message",
    [
        ("floats", "array 'x' has dtype float32, but the spec's input holds int64 ids"),
        (
            "too large",
            "sample 7: id 57 is not a row of the embedding, which has 50 (ids 0 to 49, "
            "layers[0].embedding.num_embeddings); the largest id in the data is 57, so "
            "set num_embeddings to 58 or more",
        ),
        ("negative", "sample 3: id -1 is negative"),
    ],
)
def test_ids_that_are_no_rows_of_the_embedding_are_refused_with_the_sample(
    tmp_path, capsys, case, message
):
    path = tmp_path / "tokens.npz"
    x = np.random.default_rng(2).integers(0, 50, (40, 12))
    if case == "too large":
        x[7, 4] = 57
    elif case == "negative":
        x[3, 0] = -1
    np.savez(
        path,
        x=x.astype(np.float32 if case == "floats" else np.int64),
        y=np.zeros(40, int),
    )
    spec_path = tmp_path / "tokens.json"
    spec_path.write_text(json.dumps(token_spec(path)))
    assert (
        main(["train", str(spec_path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "last.pt").exists()


def test_csv_ids_are_whole_numbers(tmp_path):
    header = ",".join(f"t{i}" for i in range(12)) + ",label\n"
    rows = [
        ",".join(str((i * 7 + j) % 50) for j in range(12)) + f",{i % 2}"
        for i in range(30)
    ]
    path = tmp_path / "tokens.csv"
    path.write_text(header + "\n".join(rows) + "\n")
    data = token_spec(path)
    data["training"]["data"] = {"dataset": "csv", "path": str(path), "target": "label"}
    splits = load_spec_data(load_spec(data))
    assert splits.x_train.dtype == torch.int64
    assert sorted(
        splits.x_train.flatten().tolist() + splits.x_val.flatten().tolist()
    ) == sorted(int(v) for row in rows for v in row.split(",")[:12])
    path.write_text(
        header + "\n".join(rows[:4] + [rows[4].replace("28,", "2.5,", 1)]) + "\n"
    )
    with pytest.raises(
        UserError,
        match=r"tokens.csv:6: column 't\d+' holds '2.5', which is not a "
        r"whole number; the spec's input holds int64 ids",
    ):
        load_spec_data(load_spec(data))


def test_an_int64_input_refuses_image_data_sets_noise_and_reconstruction():
    data = token_spec("unused.npz")
    data["training"] = {
        "task": "reconstruction",
        "data": {"dataset": "digits", "noise": 0.1},
    }
    with pytest.raises(SpecError) as caught:
        load_spec(data)
    found = {problem.path: problem.message for problem in caught.value.problems}
    assert set(found) == {
        "training.data.dataset",
        "training.data.noise",
        "training.task",
    }
    assert (
        "digits gives float pixel values, but the input holds int64 ids"
        in found["training.data.dataset"]
    )


def test_a_float_input_gets_float_sample_batches():
    spec = load_spec(autoencoder())
    batch = sample_batch(spec, 3, generator=torch.Generator().manual_seed(0))
    assert batch.dtype == torch.float32 and batch.shape == (3, 1, 8, 8)
    assert torch.equal(
        batch, torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    )
