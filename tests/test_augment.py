"""training.augment: random crop and flip of training batches (seeded by (seed, epoch), the
same for every process), normalization of every split, and their checks in the spec."""

import pytest
import torch

from compiler import SpecError, load_spec
from runtime.data.load import load_spec_data
from runtime.parallel.distributed import Group
from runtime.training.augment import BatchAugmenter, augment_generator, random_crop
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
AUGMENT = {
    "random_crop": {"padding": 2},
    "horizontal_flip": True,
    "normalize": "auto",
}


def digits_cnn(**training) -> dict:
    return {
        "name": "TinyCnn",
        "input": [1, 8, 8],
        "layers": [
            {"conv2d": {"out_channels": 4, "kernel_size": 3, "padding": 1}},
            "relu",
            "flatten",
            {"linear": 10},
        ],
        "training": {
            "epochs": 2,
            "batch_size": 128,
            "optimizer": {"type": "adam", "lr": 0.01},
            "augment": AUGMENT,
            **training,
        },
    }


def images(n=6, size=5) -> torch.Tensor:
    return torch.arange(n * 2 * size * size, dtype=torch.float32).reshape(
        n, 2, size, size
    )


def test_random_crop_is_a_shifted_window_of_the_zero_padded_image():
    x = images()
    top = torch.tensor([0, 4, 2, 1, 3, 2])
    left = torch.tensor([4, 0, 2, 3, 1, 0])
    out = random_crop(x, 2, top, left)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(len(x)):  # the reference: one sample at a time
        window = padded[i, :, top[i] : top[i] + 5, left[i] : left[i] + 5]
        assert torch.equal(out[i], window)
    assert torch.equal(out[2], x[2])  # offset (padding, padding) is the image itself


def test_augmentation_is_deterministic_under_a_seed_and_differs_across_epochs():
    augmenter = BatchAugmenter(padding=2, flip=True)
    x = images(n=32)
    first = augmenter(x, augment_generator(0, 1, CPU), len(x))
    again = augmenter(x, augment_generator(0, 1, CPU), len(x))
    next_epoch = augmenter(x, augment_generator(0, 2, CPU), len(x))
    other_seed = augmenter(x, augment_generator(1, 1, CPU), len(x))
    assert torch.equal(first, again)
    assert not torch.equal(first, next_epoch)
    assert not torch.equal(first, other_seed)
    assert not torch.equal(first, x)
    mirrored = BatchAugmenter(padding=None, flip=True)(
        x, augment_generator(0, 1, CPU), len(x)
    )
    flipped = sum(torch.equal(a, b.flip(-1)) for a, b in zip(mirrored, x))
    assert 0 < flipped < len(x)  # p = 0.5, per sample
    kept = sum(torch.equal(a, b) for a, b in zip(mirrored, x))
    assert flipped + kept == len(x)


def test_each_process_gets_the_rows_of_its_samples_in_the_global_batch():
    augmenter = BatchAugmenter(padding=2, flip=True)
    x = images(n=7)
    whole = augmenter(x, augment_generator(3, 5, CPU), len(x))
    for rank in range(2):
        group = Group(rank=rank, world=2, local_rank=rank, local_world=2)
        part = augmenter(x[rank::2], augment_generator(3, 5, CPU), len(x), group=group)
        assert torch.equal(part, whole[rank::2])


def test_no_crop_and_no_flip_is_no_augmenter():
    assert BatchAugmenter.from_config(None) is None
    spec = load_spec(digits_cnn(augment={"normalize": "auto"}))
    assert BatchAugmenter.from_config(spec.training.augment) is None


def test_normalize_auto_uses_the_training_split_and_applies_it_to_every_split():
    spec = load_spec(
        digits_cnn(augment={"normalize": "auto"}, data={"test_fraction": 0.1})
    )
    data = load_spec_data(spec)
    plain = load_spec_data(
        load_spec(digits_cnn(augment=None, data={"test_fraction": 0.1}))
    )
    stats = data.preprocessing["normalize"]
    mean, std = plain.x_train.mean().item(), plain.x_train.std(unbiased=False).item()
    assert stats["mean"] == pytest.approx([mean], rel=1e-5)
    assert stats["std"] == pytest.approx([std], rel=1e-5)
    assert data.x_train.mean().item() == pytest.approx(0.0, abs=1e-5)
    for split in ("val", "test"):
        expected = (getattr(plain, f"x_{split}") - mean) / std
        assert torch.allclose(getattr(data, f"x_{split}"), expected, atol=1e-5)


def test_fixed_statistics_are_used_as_written():
    spec = load_spec(digits_cnn(augment={"normalize": {"mean": [0.5], "std": [0.25]}}))
    data = load_spec_data(spec)
    plain = load_spec_data(load_spec(digits_cnn(augment=None)))
    assert torch.allclose(data.x_val, (plain.x_val - 0.5) / 0.25)


def test_augmentation_is_off_at_validation_and_evaluate_gives_the_val_metrics(tmp_path):
    summary = train_spec(load_spec(digits_cnn()), out_dir=tmp_path / "run", quiet=True)
    payload = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert payload["preprocessing"]["normalize"]["std"][0] > 0
    result = evaluate_checkpoint(tmp_path / "run" / "best.pt")
    best = summary["best_metrics"]
    # validation saw the normalized, never augmented, samples: evaluate measures the same
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    assert result["accuracy"] == pytest.approx(best["val_accuracy"])


def test_evaluate_uses_the_statistics_stored_in_the_checkpoint(tmp_path):
    train_spec(load_spec(digits_cnn(epochs=1)), out_dir=tmp_path / "run", quiet=True)
    path = tmp_path / "run" / "best.pt"
    before = evaluate_checkpoint(path)["loss"]
    payload = torch.load(path, weights_only=True)
    payload["preprocessing"]["normalize"] = {"mean": [0.9], "std": [0.1]}
    torch.save(payload, tmp_path / "changed.pt")
    assert evaluate_checkpoint(tmp_path / "changed.pt")["loss"] != pytest.approx(before)


def without_seconds(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_resume_is_exact_with_augmentation(tmp_path):
    train_spec(load_spec(digits_cnn(epochs=3)), out_dir=tmp_path / "whole", quiet=True)
    train_spec(load_spec(digits_cnn(epochs=1)), out_dir=tmp_path / "split", quiet=True)
    train_spec(
        load_spec(digits_cnn(epochs=3)),
        out_dir=tmp_path / "split",
        resume=True,
        quiet=True,
    )
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert without_seconds(a["metrics"]) == without_seconds(b["metrics"])
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_augmented_training_differs_from_plain_training(tmp_path):
    plain = digits_cnn(epochs=1, augment={"normalize": "auto"})
    a = train_spec(load_spec(plain), out_dir=tmp_path / "a", quiet=True)
    b = train_spec(load_spec(digits_cnn(epochs=1)), out_dir=tmp_path / "b", quiet=True)
    assert a["best_metrics"]["train_loss"] != b["best_metrics"]["train_loss"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"input": [64], "layers": [{"linear": 10}]},
            r"training\.augment: augment is for images \[channels, height, width\].*"
            r"input is of shape \[64\]",
        ),
        (
            {
                "training": {
                    "augment": {"normalize": {"mean": [0.1, 0.2], "std": [1, 1]}}
                }
            },
            r"training\.augment\.normalize\.mean: the input has 1 channel",
        ),
        (
            {"training": {"augment": {"normalize": {"mean": [0.1], "std": [0.0]}}}},
            r"training\.augment\.normalize\.std\[0\]: must be a positive number, got 0",
        ),
        (
            {"training": {"augment": {"random_crop": {"padding": -1}}}},
            r"training\.augment\.random_crop\.padding",
        ),
        (
            {"training": {"augment": {"random_crop": {"padding": 9}}}},
            r"padding 9 is larger than the image \(8 x 8\)",
        ),
        (
            {"training": {"augment": {"normalize": "automatic"}}},
            r"training\.augment\.normalize: must be one of 'auto'",
        ),
    ],
)
def test_augment_mistakes_are_located_spec_errors(change, expected):
    spec = digits_cnn()
    spec.update({k: v for k, v in change.items() if k != "training"})
    spec["training"].update(change.get("training", {}))
    with pytest.raises(SpecError, match=expected):
        load_spec(spec)


def test_lint_counts_crops_and_flips_as_regularization():
    from compiler.lint import lint_spec

    def ns108(augment) -> bool:
        spec = {
            "name": "Wide",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 4096}, "relu", {"linear": 10}],
            "training": {"augment": augment},
        }
        return any(w.code == "NS108" for w in lint_spec(load_spec(spec)))

    assert ns108(None) and ns108({"normalize": "auto"})
    assert not ns108({"horizontal_flip": True})
    assert not ns108({"random_crop": {"padding": 1}})


def test_a_run_from_before_augment_existed_still_resumes(tmp_path):
    from compiler.spec import data_digest

    spec = digits_cnn(epochs=1, augment=None)
    train_spec(load_spec(spec), out_dir=tmp_path / "run", quiet=True)
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    del payload["spec"]["training"]["augment"], payload["preprocessing"]
    payload["spec_sha256"] = data_digest(payload["spec"])
    for name in ("last.pt", "best.pt"):  # (best.pt may be a hard link to last.pt)
        (tmp_path / "run" / name).unlink()
        torch.save(payload, tmp_path / "run" / name)
    summary = train_spec(
        load_spec({**spec, "training": {**spec["training"], "epochs": 2}}),
        out_dir=tmp_path / "run",
        resume=True,
        quiet=True,
    )
    assert summary["resumed_from_epoch"] == 1 and summary["epochs_run"] == 2
