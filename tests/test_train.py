"""The training loop and train_spec: tasks, penalties, restore_best, exact resume, both forms."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from compiler import SpecError, build_sequential, load_spec
from compiler.training import TrainingConfig
from runtime.data.load import DataSplits
from runtime.errors import UserError
from runtime.training.interrupt import InterruptFlag
from runtime.training.loop import batch_starts, fit
from runtime.training.optim import penalized_weights, weight_penalty
from runtime.training.train import train_spec

CPU = torch.device("cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_mlp(inputs=2, outputs=3, **training) -> dict:
    """Return a small spec (as a mapping) on the digits data set unless `training` says otherwise."""
    return {
        "name": "Tiny",
        "input": [inputs] if inputs != 64 else [1, 8, 8],
        "layers": ([{"flatten": None}] if inputs == 64 else [])
        + [
            {"linear": 16},
            "relu",
            {"dropout": 0.2},
            {"linear": {"out_features": outputs, "name": "head"}},
        ],
        "training": {
            "epochs": 3,
            "batch_size": 64,
            "optimizer": {"type": "adam", "lr": 0.01},
            **training,
        },
    }


def digits_spec(**training):
    return load_spec(tiny_mlp(64, 10, **training))


def synthetic(task: str, n=96, features=2, seed=0) -> DataSplits:
    """Return a learnable synthetic data set for `task`, already split."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    if task == "classification":
        y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    elif task == "binary":
        y = (x[:, 0] + x[:, 1] > 0).float()
    else:
        y = 2 * x[:, 0] - x[:, 1]
    cut = n * 3 // 4
    classes = {"classification": 3, "binary": 2, "regression": None}[task]
    return DataSplits(
        x[:cut],
        y[:cut],
        x[cut:],
        y[cut:],
        None,
        None,
        classes,
        None,
        f"synthetic {task}",
    )


def rows_without_seconds(path):
    with open(path) as f:
        return [
            {k: v for k, v in row.items() if k != "seconds"}
            for row in csv.DictReader(f)
        ]


@pytest.mark.parametrize(
    "task, outputs, metric",
    [
        ("classification", 3, "accuracy"),
        ("binary", 1, "accuracy"),
        ("regression", 1, "mae"),
    ],
)
def test_each_task_trains_with_its_loss_and_metric(task, outputs, metric):
    torch.manual_seed(0)
    model = build_sequential(load_spec(tiny_mlp(2, outputs)))
    training = TrainingConfig.model_validate(
        {
            "task": task,
            "epochs": 15,
            "batch_size": 16,
            "optimizer": {"lr": 0.02},
            "early_stopping": None,
        }
    )
    result = fit(model, synthetic(task), training, device=CPU, quiet=True)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last[f"val_{metric}"] is not None
    if metric == "accuracy":
        assert last["val_accuracy"] > 0.8 and "val_mae" not in last
    else:
        assert last["val_accuracy"] is None and last["val_mae"] < first["val_mae"]
    assert result.stop_reason == "max_epochs" and result.epochs_run == 15


def test_validation_metrics_are_those_of_the_model_in_eval_mode():
    torch.manual_seed(0)
    model = build_sequential(load_spec(tiny_mlp(2, 3)))
    data = synthetic("classification")
    training = TrainingConfig.model_validate({"epochs": 2, "early_stopping": None})
    result = fit(model, data, training, device=CPU, quiet=True)
    model.eval()
    with torch.no_grad():
        out = model(data.x_val)
    loss = nn.functional.cross_entropy(out, data.y_val).item()
    accuracy = (out.argmax(1) == data.y_val).float().mean().item()
    assert result.history[-1]["val_loss"] == pytest.approx(loss, rel=1e-6)
    assert result.history[-1]["val_accuracy"] == pytest.approx(accuracy)
    assert not model.training


@pytest.mark.parametrize(
    "task, first_rows_positive",
    [("classification", False), ("reconstruction", False), ("classification", True)],
)
def test_a_model_that_changes_its_input_in_place_leaves_the_data_set_as_it_was(
    task, first_rows_positive
):
    # a leaky ReLU in place as the first layer halves the negative inputs it is given: given the
    # validation split's own rows, every epoch's validation would halve them again
    torch.manual_seed(0)
    layers = [{"leakyrelu": {"negative_slope": 0.5, "inplace": True}}, {"linear": 3}]
    if task == "reconstruction":
        layers[-1] = {"linear": 2}
    spec = load_spec({"name": "InPlace", "input": [2], "layers": layers})
    data = synthetic("classification")
    if first_rows_positive:  # the check's two rows do not change: the write still shows
        data.x_val[:2] = data.x_val[:2].abs()
    if task == "reconstruction":
        data.y_train, data.y_val, data.num_classes = data.x_train, data.x_val, None
    kept = data.x_val.clone(), data.x_train.clone()
    training = TrainingConfig.model_validate(
        {"task": task, "epochs": 3, "early_stopping": None}
    )
    model = build_sequential(spec)
    result = fit(model, data, training, device=CPU, quiet=True)
    assert torch.equal(data.x_val, kept[0]) and torch.equal(data.x_train, kept[1])
    # the last epoch's validation loss is that of its weights on the data as it is
    assert (
        not result.restored_best
    )  # (no early stopping: the model is the last epoch's)
    model.eval()
    with torch.no_grad():
        out = model(kept[0].clone())
    loss = (
        nn.functional.mse_loss(out, kept[0])
        if task == "reconstruction"
        else nn.functional.cross_entropy(out, data.y_val)
    )
    assert result.history[-1]["val_loss"] == pytest.approx(loss.item(), rel=1e-6)


def test_an_augmented_autoencoder_is_scored_against_what_it_saw_not_what_it_changed(
    monkeypatch,
):
    # flipped images are its targets; a leaky ReLU in place first must not halve their
    # negative values before the loss reads them
    from runtime.training.metrics import TaskMetrics

    spec = load_spec(
        {
            "name": "InPlaceAE",
            "input": [1, 4, 4],
            "layers": [
                {"leakyrelu": {"negative_slope": 0.5, "inplace": True}},
                "flatten",
                {"linear": 16},
                {"unflatten": {"dim": 1, "unflattened_size": [1, 4, 4]}},
            ],
        }
    )
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 1, 4, 4, generator=g)
    data = DataSplits(x[:32], x[:32], x[32:], x[32:], None, None, None, None, "images")
    samples = {tuple(sorted(row.flatten().tolist())) for row in x[:32]}
    targets = []
    loss = TaskMetrics.loss

    def recording(self, output, target):
        if torch.is_grad_enabled():  # training batches only
            targets.append(target.detach().clone())
        return loss(self, output, target)

    monkeypatch.setattr(TaskMetrics, "loss", recording)
    training = TrainingConfig.model_validate(
        {
            "task": "reconstruction",
            "epochs": 2,
            "batch_size": 8,
            "early_stopping": None,
            "augment": {"horizontal_flip": True},
        }
    )
    fit(build_sequential(spec), data, training, device=CPU, quiet=True)
    assert len(targets) == 8
    # a flip keeps each image's values: every target is one of the training images, flipped
    for batch in targets:
        for image in batch:
            assert tuple(sorted(image.flatten().tolist())) in samples


def test_a_model_whose_output_does_not_fit_the_task_is_a_user_error():
    model = build_sequential(load_spec(tiny_mlp(2, 2)))
    with pytest.raises(
        UserError, match="the data has 3 classes but the model gives 2 scores"
    ):
        fit(
            model, synthetic("classification"), TrainingConfig(), device=CPU, quiet=True
        )
    with pytest.raises(
        UserError, match=r"binary needs an output of shape \(N, 1\) or \(N,\)"
    ):
        fit(
            model,
            synthetic("binary"),
            TrainingConfig(task="binary"),
            device=CPU,
            quiet=True,
        )


def test_penalty_covers_linear_and_conv_weights_only():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Flatten(),
        nn.LayerNorm(8),
        nn.Linear(8, 3),
    )
    weights = penalized_weights(model)
    assert [w.shape for w in weights] == [torch.Size([2, 1, 3, 3]), torch.Size([3, 8])]
    expected = sum(0.1 * w.abs().sum() + 0.01 * (w**2).sum() for w in weights)
    assert torch.allclose(weight_penalty(weights, 0.1, 0.01), expected)


@pytest.mark.parametrize("l1, l2", [(0.5, 0.0), (0.0, 0.5), (0.3, 0.2)])
def test_one_sgd_step_with_l1_l2_moves_weights_by_the_penalty_gradient_and_biases_not(
    l1, l2
):
    def one_step(l1, l2):
        torch.manual_seed(0)
        model = build_sequential(load_spec(tiny_mlp(2, 3)))
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        training = TrainingConfig.model_validate(
            {
                "epochs": 1,
                "batch_size": 1000,
                "early_stopping": None,
                "optimizer": {"type": "sgd", "lr": 0.1},
                "regularization": {"l1": l1, "l2": l2},
            }
        )
        result = fit(
            model, synthetic("classification"), training, device=CPU, quiet=True
        )
        return model.state_dict(), initial, result

    plain, initial, plain_result = one_step(0.0, 0.0)
    penalized, _, result = one_step(l1, l2)
    for name in ("fc1.weight", "head.weight"):
        w = initial[name]
        step = 0.1 * (l1 * torch.sign(w) + l2 * 2 * w)
        assert torch.allclose(plain[name] - penalized[name], step, atol=1e-6), name
    for name in ("fc1.bias", "head.bias"):
        assert torch.equal(plain[name], penalized[name]), name
    # the reported train_loss is the data loss alone, without the penalty
    assert result.history[0]["train_loss"] == plain_result.history[0]["train_loss"]


def test_batches_never_end_with_a_single_sample():
    assert batch_starts(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_starts(9, 4) == [(0, 4), (4, 9)]
    assert batch_starts(1, 4) == [(0, 1)]


def overfitting_data(seed=0) -> DataSplits:
    """Random labels: validation loss gets worse once the model memorizes the training set."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(160, 10, generator=g)
    y = torch.randint(0, 3, (160,), generator=g)
    return DataSplits(
        x[:120], y[:120], x[120:], y[120:], None, None, 3, None, "random labels"
    )


def record_weights(store):
    def hook(state):
        store[state.epoch] = {k: v.clone() for k, v in state.model.state_dict().items()}

    return hook


@pytest.mark.parametrize("way_out", ["patience", "epochs", "interrupt", "not_finite"])
def test_restore_best_leaves_the_best_weights_on_every_way_out(way_out):
    torch.manual_seed(0)
    model = build_sequential(load_spec(tiny_mlp(10, 3)))
    patience = 3 if way_out == "patience" else 100
    training = TrainingConfig.model_validate(
        {
            "epochs": 12,
            "batch_size": 16,
            "optimizer": {"lr": 0.05},
            "early_stopping": {"patience": patience, "restore_best": True},
        }
    )
    seen = {}
    flag = InterruptFlag()
    hook = record_weights(seen)

    def on_epoch_end(state):
        hook(state)
        if way_out == "interrupt" and state.epoch == 8:
            flag.requested = True
        if way_out == "not_finite" and state.epoch == 8:
            with torch.no_grad():
                state.model.head.weight.fill_(math.inf)

    result = fit(
        model,
        overfitting_data(),
        training,
        device=CPU,
        on_epoch_end=on_epoch_end,
        interrupt=flag,
        quiet=True,
    )
    expected = {
        "patience": "early_stopping",
        "epochs": "max_epochs",
        "interrupt": "interrupted",
        "not_finite": "not_finite",
    }[way_out]
    assert result.stop_reason == expected
    assert (
        1 <= result.best_epoch < max(seen)
    )  # a real test: the last epoch is not the best
    assert result.restored_best
    for key, value in model.state_dict().items():
        assert torch.equal(value, seen[result.best_epoch][key]), key
    if way_out == "not_finite":
        assert (
            result.stop_message == "loss is not finite (nan) at epoch 9 (train_loss)"
            or result.stop_message.startswith("loss is not finite (")
        )
        assert "at epoch 9" in result.stop_message
    if way_out == "interrupt":
        assert result.epochs_run == 8 and len(result.history) == 8


def test_without_restore_best_the_model_keeps_the_last_epoch():
    torch.manual_seed(0)
    model = build_sequential(load_spec(tiny_mlp(10, 3)))
    training = TrainingConfig.model_validate(
        {
            "epochs": 6,
            "batch_size": 16,
            "optimizer": {"lr": 0.05},
            "early_stopping": {"patience": 100, "restore_best": False},
        }
    )
    seen = {}
    result = fit(
        model,
        overfitting_data(),
        training,
        device=CPU,
        on_epoch_end=record_weights(seen),
        quiet=True,
    )
    assert result.best_epoch < 6 and not result.restored_best
    assert torch.equal(model.head.weight, seen[6]["head.weight"])


def test_scheduler_changes_lr_per_epoch_and_plateau_watches_the_monitor():
    torch.manual_seed(0)
    model = build_sequential(load_spec(tiny_mlp(2, 3)))
    training = TrainingConfig.model_validate(
        {
            "epochs": 4,
            "optimizer": {"lr": 0.1},
            "early_stopping": None,
            "scheduler": {"type": "step", "step_size": 2, "gamma": 0.5},
        }
    )
    result = fit(model, synthetic("classification"), training, device=CPU, quiet=True)
    assert [row["lr"] for row in result.history] == [0.1, 0.1, 0.05, 0.05]
    training = TrainingConfig.model_validate(
        {
            "epochs": 3,
            "optimizer": {"lr": 0.1},
            "early_stopping": None,
            "scheduler": {"type": "cosine"},
        }
    )
    result = fit(model, synthetic("classification"), training, device=CPU, quiet=True)
    assert [round(row["lr"], 6) for row in result.history] == [
        0.1,
        0.075,
        0.025,
    ]  # T_max = epochs
    training = TrainingConfig.model_validate(
        {
            "epochs": 5,
            "batch_size": 16,
            "optimizer": {"lr": 0.05},
            "early_stopping": {"patience": 100},
            "scheduler": {"type": "plateau", "patience": 0, "factor": 0.5},
        }
    )
    model = build_sequential(load_spec(tiny_mlp(10, 3)))
    result = fit(model, overfitting_data(), training, device=CPU, quiet=True)
    lrs = [row["lr"] for row in result.history]
    assert lrs[0] == 0.05 and min(lrs) < 0.05


@pytest.mark.parametrize("task", ["regression", "reconstruction"])
def test_a_task_without_accuracy_cannot_monitor_it_a_located_spec_error(tmp_path, task):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: Tiny\ninput: [2]\nlayers: [linear: 2]\ntraining:\n"
        f"  task: {task}\n  early_stopping:\n    monitor: val_accuracy\n"
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    (problem,) = caught.value.problems
    assert (problem.path, problem.line) == ("training.early_stopping.monitor", 7)
    assert (
        f"task {task} has no accuracy to monitor; monitor val_loss" in problem.message
    )


# --- train_spec: the run folder ---------------------------------------------------------


def test_run_folder_outputs(tmp_path):
    summary = train_spec(digits_spec(), out_dir=tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == sorted(
        ["best.pt", "last.pt", "metrics.csv", "summary.json", "curves.png"]
    )
    with open(run / "metrics.csv") as f:
        header = f.readline().strip()
    assert header == "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds"
    assert len(rows_without_seconds(run / "metrics.csv")) == 3
    assert json.loads((run / "summary.json").read_text()) == summary
    for key in (
        "best_epoch",
        "epochs_run",
        "stopped_early",
        "stop_reason",
        "monitor",
        "best",
        "params",
        "device",
    ):
        assert key in summary
    assert (
        summary["epochs_run"] == 3 and summary["params"] == 64 * 16 + 16 + 16 * 10 + 10
    )
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    last = torch.load(run / "last.pt", weights_only=True)  # plain torch, weights only
    for key in (
        "model",
        "optimizer",
        "scheduler",
        "epoch",
        "early_stopping",
        "rng",
        "metrics",
        "spec",
        "spec_sha256",
        "nnspec_version",
        "form",
        "task",
        "class_names",
    ):
        assert key in last
    assert last["epoch"] == 3 and len(last["metrics"]) == 3


def test_regression_metrics_csv_has_mae_columns(tmp_path):
    x = np.random.default_rng(0).normal(size=(80, 2)).astype(np.float32)
    np.savez(tmp_path / "reg.npz", x=x, y=x[:, 0] - x[:, 1])
    spec = load_spec(
        tiny_mlp(
            2,
            1,
            task="regression",
            data={"dataset": "npz", "path": str(tmp_path / "reg.npz")},
        )
    )
    train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    rows = rows_without_seconds(tmp_path / "run" / "metrics.csv")
    assert list(rows[0]) == [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "train_mae",
        "val_mae",
    ]
    assert rows[0]["val_accuracy"] == "" and float(rows[0]["val_mae"]) > 0


def test_resume_gives_exactly_the_metrics_of_an_uninterrupted_run(tmp_path):
    spec = digits_spec(
        epochs=4, scheduler={"type": "step", "step_size": 1, "gamma": 0.7}
    )
    train_spec(spec, out_dir=tmp_path / "whole", quiet=True)
    train_spec(
        digits_spec(epochs=2, scheduler={"type": "step", "step_size": 1, "gamma": 0.7}),
        out_dir=tmp_path / "split",
        quiet=True,
    )
    summary = train_spec(spec, out_dir=tmp_path / "split", resume=True, quiet=True)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 4
    whole = rows_without_seconds(tmp_path / "whole" / "metrics.csv")
    assert rows_without_seconds(tmp_path / "split" / "metrics.csv") == whole
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_both_forms_give_identical_metrics(tmp_path):
    train_spec(digits_spec(), out_dir=tmp_path / "seq", quiet=True)
    summary = train_spec(
        digits_spec(), out_dir=tmp_path / "gen", form="generated", quiet=True
    )
    assert summary["form"] == "generated"
    assert rows_without_seconds(
        tmp_path / "gen" / "metrics.csv"
    ) == rows_without_seconds(tmp_path / "seq" / "metrics.csv")


def test_resume_refuses_another_spec_and_says_what_differs(tmp_path):
    train_spec(digits_spec(epochs=1), out_dir=tmp_path / "run", quiet=True)
    changed = digits_spec(epochs=1, optimizer={"type": "adam", "lr": 0.02})
    with pytest.raises(UserError) as info:
        train_spec(changed, out_dir=tmp_path / "run", resume=True, quiet=True)
    assert "was trained from another spec" in str(info.value)
    assert "training.optimizer.lr: 0.01 in the checkpoint, 0.02 now" in str(info.value)


def test_a_mode_written_out_or_left_to_its_monitor_is_the_same_spec_to_resume(tmp_path):
    def spec(epochs, **stopping):
        return digits_spec(epochs=epochs, early_stopping={"patience": 5, **stopping})

    train_spec(spec(1, mode="min"), out_dir=tmp_path / "a", quiet=True)
    resumed = train_spec(spec(2), out_dir=tmp_path / "a", resume=True, quiet=True)
    assert resumed["epochs_run"] == 2 and resumed["resumed_from_epoch"] == 1
    train_spec(spec(1), out_dir=tmp_path / "b", quiet=True)
    resumed = train_spec(
        spec(2, mode="min"), out_dir=tmp_path / "b", resume=True, quiet=True
    )
    assert resumed["epochs_run"] == 2
    # a mode other than its monitor's is another spec
    with pytest.raises(UserError) as info:
        train_spec(spec(3, mode="max"), out_dir=tmp_path / "b", resume=True, quiet=True)
    assert "training.early_stopping.mode: 'min' in the checkpoint, 'max' now" in str(
        info.value
    )


def test_after_a_resume_best_pt_is_never_replaced_by_a_worse_model(tmp_path):
    g = np.random.default_rng(0)
    np.savez(
        tmp_path / "noise.npz",
        x=g.normal(size=(160, 10)).astype(np.float32),
        y=g.integers(0, 3, 160),
    )

    def spec(epochs):
        return load_spec(
            tiny_mlp(
                10,
                3,
                epochs=epochs,
                batch_size=16,
                optimizer={"lr": 0.05},
                early_stopping={"patience": 100},
                data={"dataset": "npz", "path": str(tmp_path / "noise.npz")},
            )
        )

    first = train_spec(spec(3), out_dir=tmp_path / "run", quiet=True)
    before = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    summary = train_spec(spec(10), out_dir=tmp_path / "run", resume=True, quiet=True)
    after = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    val = [
        row["val_loss"]
        for row in torch.load(tmp_path / "run" / "last.pt", weights_only=True)[
            "metrics"
        ]
    ]
    assert len(val) == summary["epochs_run"] == 10
    assert after["epoch"] == summary["best_epoch"]
    assert val[after["epoch"] - 1] == min(val[: summary["epochs_run"]])
    assert val[after["epoch"] - 1] <= before["early_stopping"]["best"] == first["best"]
    assert (
        max(val[3:]) > first["best"]
    )  # later epochs were worse: resetting on resume would show


def test_resume_rewrites_a_best_pt_that_lags_last_pt(tmp_path):
    train_spec(digits_spec(epochs=2), out_dir=tmp_path / "a", quiet=True)
    train_spec(digits_spec(epochs=3), out_dir=tmp_path / "b", quiet=True)
    # a kill between writing last.pt and best.pt of epoch 3: best.pt still holds epoch 2
    (tmp_path / "b" / "best.pt").write_bytes((tmp_path / "a" / "best.pt").read_bytes())
    summary = train_spec(
        digits_spec(epochs=3), out_dir=tmp_path / "b", resume=True, quiet=True
    )
    assert summary["best_epoch"] == 3
    assert torch.load(tmp_path / "b" / "best.pt", weights_only=True)["epoch"] == 3


def test_an_existing_run_is_never_overwritten_silently(tmp_path):
    run = tmp_path / "run"
    train_spec(digits_spec(epochs=1), out_dir=run, quiet=True)
    before = (run / "best.pt").read_bytes()
    with pytest.raises(
        UserError,
        match="already holds a run .* --resume, choose another --out, or pass --force",
    ):
        train_spec(digits_spec(epochs=1), out_dir=run, quiet=True)
    assert (run / "best.pt").read_bytes() == before
    summary = train_spec(digits_spec(epochs=2), out_dir=run, force=True, quiet=True)
    assert summary["epochs_run"] == 2


def test_unwritable_out_and_nothing_to_resume(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot write in --out"):
        train_spec(digits_spec(epochs=1), out_dir=tmp_path / "file" / "run", quiet=True)
    with pytest.raises(UserError, match="is a file, not a folder"):
        train_spec(digits_spec(epochs=1), out_dir=tmp_path / "file", quiet=True)
    with pytest.raises(UserError, match="nothing to resume"):
        train_spec(
            digits_spec(epochs=1), out_dir=tmp_path / "empty", resume=True, quiet=True
        )


def test_cuda_asked_for_without_cuda_is_a_user_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error cannot happen")
    with pytest.raises(
        UserError, match="device 'cuda' was asked for, but torch sees no CUDA GPU"
    ):
        train_spec(
            digits_spec(epochs=1), out_dir=tmp_path / "run", device="cuda", quiet=True
        )
    assert not (tmp_path / "run" / "last.pt").exists()
