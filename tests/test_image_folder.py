"""Image folders (`dataset: image_folder`): torchvision's layout rules, splits, errors, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from compiler import SpecError, load_spec
from compiler.training import TrainingConfig
from runtime.data.image_folder import list_image_folder, read_image_folder
from runtime.data.load import load_data, load_spec_data
from runtime.data.loading import LoadingPolicy
from runtime.data.stored import ImageFiles, StoredSamples
from runtime.errors import UserError
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STREAM = LoadingPolicy("stream", None, 0)


def write_image(path, value: int, size=(6, 5), rgb=True):
    """Write a small PNG (or another format by the suffix) of one colour; return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0], 3) if rgb else (size[1], size[0])
    Image.fromarray(np.full(shape, value, dtype=np.uint8)).save(path)
    return path


def write_folder(root, classes=("cat", "dog"), per_class=4, seed=0):
    """Write `per_class` images of random colour per class under `root/<class>/`."""
    rng = np.random.default_rng(seed)
    for name in classes:
        for i in range(per_class):
            write_image(root / name / f"{i}.png", int(rng.integers(0, 256)))
    return root


def test_classes_and_files_follow_torchvisions_order(tmp_path):
    from torchvision.datasets import ImageFolder

    root = tmp_path / "images"
    write_image(root / "zebra" / "b.png", 10)
    write_image(root / "zebra" / "A.PNG", 20)  # extensions in any case
    write_image(root / "zebra" / "sub" / "a.jpg", 30)  # found recursively
    write_image(root / "ant" / "x.bmp", 40)
    (root / "ant" / "notes.txt").write_text(
        "not an image"
    )  # skipped: no image extension
    classes, files = list_image_folder(root, "path")
    reference = ImageFolder(str(root))
    assert classes == reference.classes == ["ant", "zebra"]
    assert [(str(p), label) for p, label in files] == reference.samples


def test_hidden_names_are_skipped(tmp_path):
    root = write_folder(tmp_path / "images")
    write_image(root / ".ipynb_checkpoints" / "a.png", 1)
    write_image(root / "cat" / "._0.png", 1)
    (root / "cat" / "._1.png").write_bytes(b"\0\5\26\7")  # a macOS resource fork
    classes, files = list_image_folder(root, "path")
    assert classes == ["cat", "dog"] and len(files) == 8
    assert not any(p.name.startswith(".") for p, _ in files)


def test_reads_grayscale_or_rgb_resized_to_the_input(tmp_path):
    root = tmp_path / "images"
    write_image(root / "a" / "0.png", 255, size=(12, 9))
    write_image(root / "b" / "0.png", 0, size=(3, 3), rgb=False)
    gray = read_image_folder(
        str(root),
        val_path=None,
        test_path=None,
        input_shape=[1, 4, 4],
        task="classification",
    )
    assert gray.x.shape == (2, 1, 4, 4) and gray.y.tolist() == [0, 1]
    assert gray.class_names == ["a", "b"] and gray.num_classes == 2
    assert torch.all(gray.x[0] == 1.0) and torch.all(gray.x[1] == 0.0)
    rgb = read_image_folder(
        str(root), val_path=None, test_path=None, input_shape=[3, 5, 5], task="binary"
    )
    assert rgb.x.shape == (2, 3, 5, 5) and rgb.y.dtype == torch.float32


@pytest.mark.parametrize("policy", [None, STREAM], ids=["memory", "stream"])
def test_every_unreadable_image_is_named_once(tmp_path, policy):
    root = write_folder(tmp_path / "images")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    good = (root / "dog" / "0.png").read_bytes()
    (root / "dog" / "cut.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError) as caught:
        read_image_folder(
            str(root),
            val_path=None,
            test_path=None,
            input_shape=[3, 4, 4],
            task="classification",
            policy=policy,
        )
    message = str(caught.value)
    assert "\n" not in message and message.startswith("2 images cannot be read")
    assert message.count("broken.png") == 1 and message.count("cut.png") == 1


def test_a_class_folder_without_images_and_a_folder_without_classes(tmp_path):
    root = write_folder(tmp_path / "images")
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("nothing")
    with pytest.raises(UserError, match="no image in class folder empty"):
        list_image_folder(root, "path")
    flat = tmp_path / "flat"
    write_image(flat / "0.png", 3).rename(flat / "0.png")
    with pytest.raises(UserError, match="holds no class folder"):
        list_image_folder(flat, "path")


def test_relative_paths_are_read_from_the_spec_folder(tmp_path, monkeypatch):
    write_folder(tmp_path / "project" / "images")
    spec_file = tmp_path / "project" / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(image_spec("images")))
    monkeypatch.chdir(tmp_path)  # not the spec's folder
    data = load_spec_data(load_spec(spec_file))
    assert len(data.x_train) + len(data.x_val) == 8
    spec_file.write_text(yaml.safe_dump(image_spec("missing")))
    with pytest.raises(UserError) as caught:
        load_spec_data(load_spec(spec_file))
    message = str(caught.value)
    # where, as a spec error says it: the file, the line of the path, and the key
    [line] = [
        number
        for number, text in enumerate(spec_file.read_text().splitlines(), start=1)
        if text.strip() == "path: missing"
    ]
    assert message.startswith(
        f"{spec_file}:{line}: training.data.path: image folder 'missing' not found in "
    )
    assert str(spec_file.parent) in message and "spec file's folder" in message
    assert str(tmp_path / "project") in str(caught.value)
    # val_path and test_path too
    write_folder(tmp_path / "project" / "held_out", per_class=2)
    spec = image_spec("images")
    spec["training"]["data"]["val_path"] = "held_out"
    spec_file.write_text(yaml.safe_dump(spec))
    assert len(load_spec_data(load_spec(spec_file)).x_val) == 4
    spec["training"]["data"]["test_path"] = "gone"
    spec_file.write_text(yaml.safe_dump(spec))
    with pytest.raises(
        UserError,
        match=r":\d+: training.data.test_path: image folder 'gone' .test_path. not found in",
    ):
        load_spec_data(load_spec(spec_file))


def test_val_and_test_folders_are_the_splits(tmp_path):
    write_folder(tmp_path / "train", per_class=5)
    write_folder(tmp_path / "val", per_class=2, seed=1)
    write_folder(tmp_path / "test", per_class=3, seed=2)
    training = TrainingConfig.model_validate(
        {
            "data": {
                "dataset": "image_folder",
                "path": str(tmp_path / "train"),
                "val_path": str(tmp_path / "val"),
                "test_path": str(tmp_path / "test"),
            }
        }
    )
    data = load_data(training, [3, 4, 4])
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (10, 4, 6)
    assert data.y_val.tolist() == [0, 0, 1, 1]
    assert "10 train, 4 val, 6 test" in data.description


def test_val_folder_with_other_classes_is_refused(tmp_path):
    write_folder(tmp_path / "train", classes=("cat", "dog"))
    write_folder(tmp_path / "val", classes=("cat", "cow"))
    with pytest.raises(UserError) as caught:
        read_image_folder(
            str(tmp_path / "train"),
            val_path=str(tmp_path / "val"),
            test_path=None,
            input_shape=[3, 4, 4],
            task="classification",
        )
    message = str(caught.value)
    assert (
        "val_path" in message
        and "lacks dog" in message
        and "has cow besides" in message
    )


def test_streamed_folder_reads_the_same_pixels(tmp_path):
    root = write_folder(tmp_path / "images", per_class=3)
    args = dict(
        val_path=None, test_path=None, input_shape=[3, 4, 4], task="classification"
    )
    whole = read_image_folder(str(root), **args)
    streamed = read_image_folder(str(root), policy=STREAM, **args)
    assert isinstance(streamed.x, StoredSamples) and not isinstance(
        whole.x, StoredSamples
    )
    assert torch.equal(streamed.x.take([5, 0, 2]), whole.x[[5, 0, 2]])
    assert isinstance(streamed.x.base, ImageFiles)


def image_spec(path, input_shape=(3, 4, 4), **training):
    return {
        "name": "Pics",
        "input": list(input_shape),
        "layers": ["flatten", {"linear": 8}, "relu", {"linear": 2}],
        "training": {
            "epochs": 2,
            "batch_size": 4,
            "data": {"dataset": "image_folder", "path": path},
            **training,
        },
    }


@pytest.mark.parametrize(
    "change,where",
    [
        (
            {"input": [4, 4, 4]},
            "input: image_folder reads images as [channels, height, width]",
        ),
        ({"input": [16]}, "input: image_folder reads images"),
        (
            {"training": {"task": "regression"}},
            "training.task: image_folder labels each image",
        ),
        (
            {"training": {"data": {"val_path": "v", "val_fraction": 0.3}}},
            "val_path is the validation split",
        ),
        (
            {"training": {"data": {"test_path": "t", "test_fraction": 0.1}}},
            "test_path is the",
        ),
    ],
)
def test_spec_problems_are_found_at_validation(change, where):
    spec = image_spec("images")
    spec.update({k: v for k, v in change.items() if k != "training"})
    training = change.get("training", {})
    spec["training"].update({k: v for k, v in training.items() if k != "data"})
    spec["training"]["data"].update(training.get("data", {}))
    if spec["input"] == [16]:
        spec["layers"] = [{"linear": 2}]
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert where in str(caught.value)


def test_trains_keeps_class_names_and_evaluates(tmp_path):
    write_folder(tmp_path / "images", classes=("ant", "bee"), per_class=6)
    spec = load_spec(image_spec(str(tmp_path / "images")))
    summary = train_spec(spec, out_dir=tmp_path / "run", quiet=True)
    assert summary["epochs_run"] == 2
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert payload["class_names"] == ["ant", "bee"] and payload["num_classes"] == 2
    result = evaluate_checkpoint(tmp_path / "run" / "last.pt")
    assert result["class_names"] == ["ant", "bee"] and result["samples"] == 3
    best = summary["last_metrics"]
    assert result["loss"] == pytest.approx(best["val_loss"], rel=1e-6)


def test_lint_counts_the_class_folders(tmp_path):
    from compiler.lint import lint_file  # lint reads the folder next to the spec

    write_folder(tmp_path / "images", classes=("a", "b", "c"))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(image_spec("images")))  # ends in linear 2
    warnings = [w for w in lint_file(spec_file)[1] if w.code == "NS111"]
    assert len(warnings) == 1 and "[3]" in warnings[0].message


def test_cli_reports_broken_images_in_one_line_with_exit_2(tmp_path, capsys):
    from runtime.cli.main import main  # the command as a user runs it, in-process

    root = write_folder(tmp_path / "images")
    (root / "dog" / "broken.jpg").write_bytes(b"not a jpeg")
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(image_spec("images")))
    code = main(["train", str(spec_file), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "1 image cannot be read" in err and "broken.jpg" in err
    assert not (tmp_path / "run" / "last.pt").exists()
