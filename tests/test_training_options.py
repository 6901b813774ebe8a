"""Training options: gradient clipping, label smoothing, class weights, one_cycle and warmup.

Each is checked where it acts (the norm the optimizer sees, the loss, the rate of every batch),
refused at validation where it does not apply, and kept by an exact resume.
"""

import csv

import numpy as np
import pytest
import torch
import yaml
from torch.nn import functional as F

from compiler import SpecError, build_sequential, load_spec
from compiler.training import TrainingConfig
from runtime.errors import UserError
from runtime.training import loop
from runtime.training.criterion import class_weights, training_criterion
from runtime.training.loop import batch_starts, fit
from runtime.training.train import train_spec
from tests.test_train import synthetic, tiny_mlp

CPU = torch.device("cpu")
BUILD_OPTIMIZER = loop.build_optimizer

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recording_optimizer(monkeypatch) -> list[dict]:
    """Make fit's optimizer record, at every step, the gradients' total norm and the rate."""
    seen: list[dict] = []
    build = BUILD_OPTIMIZER

    def build_recording(model, config):
        optimizer = build(model, config)

        def record(optimizer, args, kwargs):
            grads = [p.grad for g in optimizer.param_groups for p in g["params"]]
            norms = [torch.linalg.vector_norm(g) for g in grads if g is not None]
            norm = torch.linalg.vector_norm(torch.stack(norms))
            seen.append({"norm": float(norm), "lr": optimizer.param_groups[0]["lr"]})

        optimizer.register_step_pre_hook(record)
        return optimizer

    monkeypatch.setattr(loop, "build_optimizer", build_recording)
    return seen


def fit_synthetic(monkeypatch, task="classification", **training) -> list[dict]:
    """Return what the optimizer saw at each step of a short fit on synthetic data."""
    seen = recording_optimizer(monkeypatch)
    torch.manual_seed(0)
    outputs = {"classification": 3, "binary": 1, "regression": 1}[task]
    model = build_sequential(load_spec(tiny_mlp(2, outputs)))
    config = TrainingConfig.model_validate(
        {"epochs": 2, "batch_size": 16, "early_stopping": None, "task": task} | training
    )
    fit(model, synthetic(task), config, device=CPU, quiet=True)
    return seen


def validation_problems(**training) -> list[tuple[str, str]]:
    spec = tiny_mlp(2, 3, **training)
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    return [(p.path, p.message) for p in caught.value.problems]


# -- gradient clipping ------------------------------------------------------------------------------


def test_clipping_bounds_the_norm_of_the_gradients_the_optimizer_steps_with(
    monkeypatch,
):
    free = fit_synthetic(monkeypatch, optimizer={"lr": 0.05})
    assert max(s["norm"] for s in free) > 0.2  # so the limit below does bind
    clipped = fit_synthetic(monkeypatch, optimizer={"lr": 0.05}, clip_grad_norm=0.2)
    assert len(clipped) == len(free)
    assert max(s["norm"] for s in clipped) <= 0.2 * (1 + 1e-5)
    assert sum(s["norm"] > 0.199 for s in clipped) > len(clipped) // 2


# -- label smoothing and class weights ------------------------------------------------------------


def test_label_smoothing_is_torchs_and_applies_to_classification_only():
    output = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])
    config = TrainingConfig.model_validate({"label_smoothing": 0.2})
    criterion = training_criterion(config, synthetic("classification"), CPU)
    expected = F.cross_entropy(output, target, label_smoothing=0.2)
    assert torch.equal(criterion.loss(output, target), expected)
    assert not torch.equal(expected, F.cross_entropy(output, target))
    assert validation_problems(task="regression", label_smoothing=0.1) == [
        (
            "training.label_smoothing",
            "label smoothing applies to task classification (its cross-entropy) only, not "
            "to task regression; remove label_smoothing",
        )
    ]


def test_balanced_class_weights_are_scikit_learns_and_weigh_each_samples_loss():
    from sklearn.utils.class_weight import compute_class_weight

    data = synthetic("classification")
    config = TrainingConfig.model_validate({"class_weights": "balanced"})
    weights = class_weights(config, data)
    labels = data.y_train.numpy()
    assert weights == pytest.approx(
        compute_class_weight("balanced", classes=np.arange(3), y=labels).tolist()
    )
    assert len(set(weights)) == 3  # the classes are unequal, so the test can fail
    output = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    target = torch.tensor([0, 1, 2, 2, 1, 0])
    loss = training_criterion(config, data, CPU).loss(output, target)
    per_sample = F.cross_entropy(output, target, reduction="none")
    expected = (
        per_sample * torch.tensor(weights)[target]
    ).mean()  # Keras's class_weight
    assert torch.allclose(loss, expected)


def test_binary_class_weights_weigh_the_two_classes():
    data = synthetic("binary")
    config = TrainingConfig.model_validate(
        {"task": "binary", "class_weights": [1.0, 3.0]}
    )
    output = torch.tensor([[0.5], [-1.0], [2.0]])
    target = torch.tensor([1.0, 0.0, 1.0])
    loss = training_criterion(config, data, CPU).loss(output, target)
    per_sample = F.binary_cross_entropy_with_logits(
        output[:, 0], target, reduction="none"
    )
    assert torch.allclose(loss, (per_sample * torch.tensor([3.0, 1.0, 3.0])).mean())


def test_class_weights_that_do_not_fit_are_refused():
    config = TrainingConfig.model_validate({"class_weights": [1.0, 2.0]})
    with pytest.raises(
        UserError, match="gives 2 weights, but synthetic classification has 3"
    ):
        class_weights(config, synthetic("classification"))
    assert validation_problems(task="regression", class_weights="balanced")[0] == (
        "training.class_weights",
        "class weights apply to tasks classification and binary; task regression has no "
        "classes, so remove class_weights",
    )
    assert validation_problems(task="binary", class_weights=[1, 2, 3])[0][1] == (
        "task binary has 2 classes (0 and 1), so class_weights takes 2 weights, got 3"
    )


# -- one_cycle and warmup -------------------------------------------------------------------------


def test_one_cycle_steps_every_batch_over_all_the_batches_of_the_run(monkeypatch):
    seen = fit_synthetic(
        monkeypatch,
        epochs=3,
        optimizer={"lr": 0.1},
        scheduler={"type": "one_cycle", "pct_start": 0.2, "div_factor": 10},
    )
    steps = 3 * len(batch_starts(72, 16))
    lrs = [s["lr"] for s in seen]
    assert len(lrs) == steps
    assert lrs[0] == pytest.approx(0.01)  # max_lr (the optimizer's lr) / div_factor
    peak = lrs.index(max(lrs))
    assert max(lrs) == pytest.approx(0.1) and peak == round(0.2 * steps) - 1
    assert lrs[-1] < 1e-5 and all(a > b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))


def test_warmup_rises_linearly_then_leaves_the_schedule_its_own_rates(monkeypatch):
    seen = fit_synthetic(
        monkeypatch,
        epochs=4,
        optimizer={"lr": 0.1},
        warmup={"steps": 4, "start_factor": 0.2},
        scheduler={"type": "step", "step_size": 2, "gamma": 0.5},
    )
    lrs = [s["lr"] for s in seen]
    per_epoch = len(batch_starts(72, 16))
    assert lrs[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert lrs[5:per_epoch] == [0.1] * (per_epoch - 5)
    assert lrs[2 * per_epoch] == pytest.approx(
        0.05
    )  # step's own halving, after 2 epochs
    alone = fit_synthetic(monkeypatch, optimizer={"lr": 0.1}, warmup={"epochs": 1})
    assert alone[0]["lr"] == 0.0 and alone[per_epoch]["lr"] == 0.1
    assert validation_problems(
        warmup={"epochs": 1}, scheduler={"type": "one_cycle"}
    ) == [
        (
            "training.warmup",
            "one_cycle warms up by itself (over its first pct_start of the batches); "
            "remove warmup, or use another scheduler type",
        )
    ]
    assert validation_problems(warmup={"start_factor": 0.1})[0][1].startswith(
        "warmup needs its length as `epochs` or as `steps`"
    )


# -- resume ---------------------------------------------------------------------------------------


def rows(path):
    with open(path) as f:
        return [
            {k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)
        ]


def digits(epochs: int, **training):
    return load_spec(tiny_mlp(64, 10, epochs=epochs, **training))


@pytest.mark.parametrize(
    "options",
    [
        {
            "scheduler": {"type": "one_cycle"},
            "clip_grad_norm": 0.5,
            "label_smoothing": 0.1,
            "class_weights": "balanced",
        },
        # the warmup spans the interruption, over the plateau schedule
        {
            "warmup": {"epochs": 2, "start_factor": 0.1},
            "scheduler": {"type": "plateau"},
        },
    ],
    ids=["one_cycle", "warmup"],
)
def test_resume_continues_exactly_with_the_options(tmp_path, options):
    whole = train_spec(digits(3, **options), out_dir=tmp_path / "whole", quiet=True)
    # one_cycle's epochs are fixed: the split run is stopped after one of its three epochs
    split = tmp_path / "split"
    first = digits(3 if "warmup" not in options else 1, **options)
    if "warmup" in options:
        train_spec(first, out_dir=split, quiet=True)
    else:
        stop_after_first_epoch(first, split)
    summary = train_spec(digits(3, **options), out_dir=split, resume=True, quiet=True)
    assert summary["resumed_from_epoch"] == 1
    assert rows(split / "metrics.csv") == rows(tmp_path / "whole" / "metrics.csv")
    assert summary["class_weights"] == whole["class_weights"]
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(split / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["scheduler"] == b["scheduler"]


def stop_after_first_epoch(spec, out) -> None:
    """Train `spec` into `out` and stop it (as a Ctrl-C would) once epoch 1 is saved."""
    from runtime.training import train as train_module

    real_fit = train_module.fit

    def fit_stopping(*args, interrupt=None, on_epoch_end=None, **kwargs):
        def end(state):
            on_epoch_end(state)
            interrupt.request(2)

        return real_fit(*args, interrupt=interrupt, on_epoch_end=end, **kwargs)

    train_module.fit = fit_stopping
    try:
        summary = train_spec(spec, out_dir=out, quiet=True)
    finally:
        train_module.fit = real_fit
    assert summary["epochs_run"] == 1 and summary["stop_reason"] == "interrupted"


def test_a_one_cycle_run_cannot_be_resumed_with_other_epochs(tmp_path):
    spec = digits(1, scheduler={"type": "one_cycle"})
    train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    with pytest.raises(
        UserError, match="one_cycle schedule over 1 epochs, which cannot"
    ):
        train_spec(
            digits(2, scheduler={"type": "one_cycle"}),
            out_dir=tmp_path / "run",
            resume=True,
            quiet=True,
        )


def test_the_options_are_in_the_schema():
    from compiler.schema import json_schema

    properties = json_schema()["$defs"]["TrainingConfig"]["properties"]
    for name in ("warmup", "clip_grad_norm", "label_smoothing", "class_weights"):
        assert name in properties
    assert yaml.safe_dump(properties["class_weights"])  # plain data
