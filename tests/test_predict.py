"""`nnspec predict CHECKPOINT INPUT`: csv, npz, one image and folders of images, with the stored
preprocessing applied, and clear errors for inputs that do not fit the model."""

import csv
import io

import numpy as np
import pytest
import torch
from PIL import Image

from compiler import load_spec
from runtime.cli.main import main
from runtime.data.load import load_spec_data
from runtime.data.preprocess import NO_PREPROCESSING
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec
from tests.test_augment import digits_cnn

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def image_spec() -> dict:
    return digits_cnn(augment={"horizontal_flip": True, "normalize": "auto"})


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, one_torch_thread):
    folder = tmp_path_factory.mktemp("predict_images")
    spec = load_spec(image_spec())
    train_spec(spec, out_dir=folder / "run", quiet=True)
    raw = load_spec_data(spec, stored=dict(NO_PREPROCESSING))  # as read: [0, 1]
    return folder, folder / "run" / "best.pt", raw


def predicted(capsys, *argv) -> list[dict]:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


def failure(capsys, *argv) -> str:
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    assert code == 2 and not out and "Traceback" not in err
    return err.strip()


def test_npz_predictions_are_those_evaluate_measures(image_run, capsys):
    folder, checkpoint, raw = image_run
    np.savez(folder / "val.npz", x=raw.x_val.numpy(), y=raw.y_val.numpy())
    rows = predicted(capsys, checkpoint, folder / "val.npz")
    assert len(rows) == len(raw.x_val)
    assert list(rows[0]) == ["sample", "prediction", *(f"p_{i}" for i in range(10))]
    labels = torch.tensor([int(row["prediction"]) for row in rows])
    accuracy = (labels == raw.y_val).float().mean().item()
    # the stored normalization is applied: the accuracy evaluate measures on the same samples
    assert accuracy == pytest.approx(evaluate_checkpoint(checkpoint)["accuracy"])
    total = sum(float(row[f"p_{i}"]) for i in range(10) for row in rows[:1])
    assert total == pytest.approx(1.0, abs=1e-4)


def test_one_image_and_a_folder_of_images(image_run, capsys):
    folder, checkpoint, raw = image_run
    pixels = (raw.x_val[:3, 0] * 255).round().to(torch.uint8).numpy()
    images = folder / "images"
    (images / "nested").mkdir(parents=True)
    paths = [images / "b.png", images / "a.png", images / "nested" / "c.png"]
    for path, array in zip(paths, pixels):
        Image.fromarray(array, mode="L").save(path)
    (images / "notes.txt").write_text("not an image")
    rows = predicted(capsys, checkpoint, images)
    assert [row["sample"] for row in rows] == ["a.png", "b.png", "nested/c.png"]
    np.savez(folder / "same.npz", x=pixels[[1, 0, 2], None].astype(np.float32) / 255)
    from_npz = predicted(capsys, checkpoint, folder / "same.npz")
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in from_npz]
    one = predicted(capsys, checkpoint, paths[0])
    assert one[0]["sample"] == "b.png" and one[0]["prediction"] == rows[1]["prediction"]


def test_wrong_inputs_are_one_line_errors(image_run, capsys):
    folder, checkpoint, _ = image_run
    np.savez(folder / "wide.npz", x=np.zeros((4, 1, 8, 9), dtype=np.float32))
    assert "gives samples of shape [1, 8, 9], but the model takes [1, 8, 8]" in failure(
        capsys, checkpoint, folder / "wide.npz"
    )
    (folder / "empty").mkdir()
    assert "holds no image files" in failure(capsys, checkpoint, folder / "empty")
    broken = folder / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"not a png")
    assert "1 image cannot be read:" in failure(capsys, checkpoint, broken)
    (folder / "table.txt").write_text("a,b\n")
    assert "predict reads .csv, .npz" in failure(
        capsys, checkpoint, folder / "table.txt"
    )
    assert "is a folder; name a file" in failure(
        capsys, checkpoint, folder / "wide.npz", "--out", folder
    )


def write_rows(path, rows):
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_with_names_and_standardization_with_or_without_the_target(
    tmp_path, capsys
):
    g = np.random.default_rng(0)
    lines = ["size,colour,price"]
    for _ in range(80):
        size, colour = g.normal() * 1000, g.choice(["red", "blue"])
        lines.append(
            f"{size:.3f},{colour},{size / 1000 + (2 if colour == 'red' else 0):.4f}"
        )
    data = write_rows(tmp_path / "train.csv", lines)
    spec = {
        "name": "Prices",
        "input": [3],
        "layers": [{"linear": 8}, "relu", {"linear": 1}],
        "training": {
            "task": "regression",
            "epochs": 2,
            "batch_size": 16,
            "data": {"dataset": "csv", "path": str(data), "target": "price"},
        },
    }
    train_spec(load_spec(spec), out_dir=tmp_path / "run", quiet=True)
    checkpoint = tmp_path / "run" / "last.pt"
    with_target = predicted(capsys, checkpoint, data)
    # the columns in another order, and no target: read by name
    swapped = [f"{c},{s}" for s, c, _ in (line.split(",") for line in lines[1:])]
    new = write_rows(tmp_path / "new.csv", ["colour,size", *swapped])
    without = predicted(capsys, checkpoint, new)
    assert [r["prediction"] for r in with_target] == [r["prediction"] for r in without]
    assert list(with_target[0]) == ["sample", "prediction"]
    assert with_target[0]["sample"] == "line 2"
    # the model's own view of the training data: evaluate's loss over the same rows
    values = torch.tensor([float(r["prediction"]) for r in with_target])
    prices = torch.tensor([float(line.split(",")[2]) for line in lines[1:]])
    assert torch.isfinite(values).all() and values.std() > 0
    assert ((values - prices) ** 2).mean() < prices.var() * 4
    unseen = write_rows(tmp_path / "unseen.csv", ["size,colour", "1.0,green"])
    assert main(["predict", str(checkpoint), str(unseen)]) == 0
    assert (
        "'colour' holds 1 name not seen in training (green)" in capsys.readouterr().err
    )
    lacking = write_rows(tmp_path / "lacking.csv", ["size", "1.0"])
    assert "lacks the feature column 'colour'" in failure(capsys, checkpoint, lacking)
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(checkpoint), str(data), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[0] == "sample,prediction"


def test_a_safetensors_export_predicts_with_the_same_preprocessing(image_run, capsys):
    folder, checkpoint, raw = image_run
    np.savez(folder / "few.npz", x=raw.x_val[:20].numpy())
    out = folder / "best.safetensors"
    assert (
        main(["export", str(checkpoint), "--format", "safetensors", "--out", str(out)])
        == 0
    )
    capsys.readouterr()
    assert predicted(capsys, out, folder / "few.npz") == predicted(
        capsys, checkpoint, folder / "few.npz"
    )
