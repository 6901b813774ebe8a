"""A checkpoint written before the training sections were tagged unions still evaluates.

Those checkpoints carry the flat sections' every argument (`momentum` beside adam, `path` beside
digits), written with their defaults and ignored by that nnspec; reading one drops them, checks
the sha256 on the data as stored, and gives the same results.
"""

import pytest
import torch

from compiler import load_spec
from compiler.spec import data_digest, spec_data
from runtime.errors import UserError
from runtime.storage.checkpoint import read_checkpoint, write_checkpoint_atomically
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# what the flat sections of the previous nnspec wrote beside each variant's own arguments
FLAT_EXTRAS = {
    "optimizer": {"momentum": 0.0, "nesterov": False},
    "data": {"path": None, "target": None, "x_key": "x", "y_key": "y"},
    "scheduler": {"gamma": 0.1, "step_size": 30, "factor": 0.1, "patience": 5},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    spec = load_spec(
        {
            "name": "Tiny",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 16}, "relu", {"linear": 10}],
            "training": {
                "epochs": 2,
                "optimizer": {"type": "adam", "lr": 0.01},
                "scheduler": {"type": "cosine"},
            },
        }
    )
    out = tmp_path_factory.mktemp("old") / "run"
    train_spec(spec, out_dir=out, quiet=True)
    return out / "best.pt"


def _as_older_nnspec_wrote_it(payload: dict) -> dict:
    spec = payload["spec"]
    training = {
        **spec["training"],
        **{
            key: {**spec["training"][key], **extra}
            for key, extra in FLAT_EXTRAS.items()
        },
    }
    old = {**spec, "training": training}
    return {**payload, "spec": old, "spec_sha256": data_digest(old)}


def test_an_older_checkpoint_evaluates_like_the_same_weights_today(trained, tmp_path):
    old = tmp_path / "old.pt"
    write_checkpoint_atomically(
        old, _as_older_nnspec_wrote_it(read_checkpoint(trained))
    )
    with pytest.raises(Exception):  # the stored spec itself no longer validates as is
        load_spec(read_checkpoint(old)["spec"])
    then, now = evaluate_checkpoint(old, "val", "cpu"), evaluate_checkpoint(
        trained, "val", "cpu"
    )
    assert then["loss"] == now["loss"] and then["accuracy"] == now["accuracy"]


def test_an_older_checkpoint_whose_spec_was_changed_is_still_called_damaged(
    trained, tmp_path
):
    payload = _as_older_nnspec_wrote_it(read_checkpoint(trained))
    payload["spec"]["training"]["optimizer"][
        "momentum"
    ] = 0.5  # not what its sha256 says
    bad = tmp_path / "bad.pt"
    write_checkpoint_atomically(bad, payload)
    with pytest.raises(UserError, match="damaged"):
        evaluate_checkpoint(bad, "val", "cpu")


def test_a_run_of_an_older_nnspec_resumes(tmp_path):
    spec = load_spec(
        {
            "name": "Tiny",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 8}, "relu", {"linear": 10}],
            "training": {
                "epochs": 2,
                "optimizer": {"type": "adam", "lr": 0.01},
                "scheduler": {"type": "cosine"},
                "early_stopping": None,
            },
        }
    )
    out = tmp_path / "run"
    train_spec(spec, out_dir=out, quiet=True)
    for name in ("last.pt", "best.pt"):
        path = out / name
        write_checkpoint_atomically(
            path, _as_older_nnspec_wrote_it(read_checkpoint(path))
        )
    longer = load_spec(
        {**spec_data(spec), "training": {**spec_data(spec)["training"], "epochs": 3}}
    )
    summary = train_spec(longer, out_dir=out, resume=True, quiet=True)
    assert summary["resumed_from_epoch"] == 2 and summary["epochs_run"] == 3
