"""`nnspec evaluate`: a model rebuilt from a checkpoint alone, measured on the same split."""

import json
import shutil

import pytest
import torch

from compiler import load_spec
from runtime.cli.main import main
from runtime.errors import UserError
from runtime.storage.checkpoint import write_checkpoint_atomically
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def spec(**data):
    return load_spec(
        {
            "name": "Tiny",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 16}, "relu", {"linear": 10}],
            "training": {
                "epochs": 2,
                "optimizer": {"lr": 0.01},
                "data": {"dataset": "digits", **data},
            },
        }
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("evaluate") / "run"
    summary = train_spec(spec(test_fraction=0.1), out_dir=out, quiet=True)
    return out, summary


def test_evaluate_from_the_checkpoint_alone(run_dir, tmp_path):
    out, summary = run_dir
    alone = tmp_path / "moved.pt"
    shutil.copy(out / "best.pt", alone)  # no spec file, no run folder next to it
    result = evaluate_checkpoint(alone, "val", "cpu")
    best = summary["best_metrics"]
    assert result["epoch"] == summary["best_epoch"]
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert result["accuracy"] == pytest.approx(best["val_accuracy"])
    matrix = torch.tensor(result["confusion"])
    assert matrix.shape == (10, 10) and int(matrix.sum()) == result["samples"]
    assert int(matrix.trace()) / result["samples"] == pytest.approx(result["accuracy"])
    assert result["class_names"] == [str(d) for d in range(10)]


def test_test_split_when_the_spec_has_one(run_dir):
    out, _ = run_dir
    result = evaluate_checkpoint(out / "best.pt", "test", "cpu")
    assert result["split"] == "test" and result["samples"] == 180


def test_no_test_split_says_how_to_get_one(tmp_path):
    train_spec(spec(), out_dir=tmp_path / "run", quiet=True)
    with pytest.raises(
        UserError,
        match="digits has no test split; use --split val, or set training.data.test_fraction",
    ):
        evaluate_checkpoint(tmp_path / "run" / "best.pt", "test", "cpu")


def test_a_checkpoint_whose_spec_was_edited_is_refused(run_dir, tmp_path):
    out, _ = run_dir
    payload = torch.load(out / "best.pt", weights_only=True)
    payload["spec"]["layers"][1]["out_features"] = 17
    write_checkpoint_atomically(tmp_path / "edited.pt", payload)
    with pytest.raises(
        UserError, match="its spec does not match the spec_sha256 it records"
    ):
        evaluate_checkpoint(tmp_path / "edited.pt")


def test_cli_prints_the_confusion_matrix_and_json(run_dir, capsys):
    out, summary = run_dir
    assert main(["evaluate", str(out / "best.pt"), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "confusion matrix (rows: true class, columns: predicted):" in text
    assert f"accuracy {summary['best_metrics']['val_accuracy']:.4f}" in text
    assert main(["evaluate", str(out / "last.pt"), "--json", "--split", "test"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["epoch"] == 2 and data["split"] == "test"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "missing"])
def test_cli_on_a_damaged_checkpoint_exits_2_with_one_line(
    run_dir, tmp_path, capsys, damage
):
    out, _ = run_dir
    path = tmp_path / "bad.pt"
    if damage == "truncate":
        path.write_bytes((out / "best.pt").read_bytes()[:1000])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnspec evaluate: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
