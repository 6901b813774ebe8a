"""Data larger than memory streams: same batches, metrics and resume as the in-memory path."""

from __future__ import annotations

import csv
import zipfile

import numpy as np
import pytest
import torch

from compiler import SpecError, load_spec
from compiler.training import TrainingConfig
from runtime.data.load import load_data
from runtime.data.loading import LoadingPolicy, loading_policy, worker_count
from runtime.data.npz_map import map_npz_member
from runtime.data.stored import ImageFiles, MappedArray, RowSubset, TensorRows
from runtime.errors import UserError
from runtime.parallel.distributed import Group
from runtime.training import batches as batches_module
from runtime.training.batches import MemoryBatches, StreamedBatches, split_batches
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec
from tests.test_image_folder import write_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rows(path):
    """Return metrics.csv without its seconds column (the one that differs run to run)."""
    with open(path) as file:
        return [
            {k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(file)
        ]


# crops, flips and normalization statistics: the same on both paths, and after a resume
AUGMENT = {"random_crop": {"padding": 1}, "horizontal_flip": True, "normalize": "auto"}


def tiny_spec(folder, mode, epochs=2, workers=0):
    """Return a small MLP's spec with dropout, input noise and augmentation on a 200-sample
    npz in `folder`."""
    path = folder / "tiny.npz"
    if not path.exists():
        rng = np.random.default_rng(0)
        np.savez(
            path, x=rng.random((200, 1, 8, 8), dtype=np.float32), y=np.arange(200) % 4
        )
    return load_spec(
        {
            "name": "Tiny",
            "input": [1, 8, 8],
            "layers": [
                "flatten",
                {"linear": 16},
                "relu",
                {"dropout": 0.2},
                {"linear": 4},
            ],
            "training": {
                "epochs": epochs,
                "batch_size": 32,
                "data": {"dataset": "npz", "path": str(path), "noise": 0.1},
                "loading": {"mode": mode, "workers": workers},
                "augment": AUGMENT,
            },
        }
    )


def test_streamed_and_in_memory_runs_give_the_same_metrics(tmp_path):
    # dropout and noise draw random numbers: streaming must leave those streams alone
    memory = train_spec(
        tiny_spec(tmp_path, "memory"), out_dir=tmp_path / "m", quiet=True
    )
    stream = train_spec(
        tiny_spec(tmp_path, "stream"), out_dir=tmp_path / "s", quiet=True
    )
    assert stream["data"].endswith("streamed batch by batch")
    assert not memory["data"].endswith("streamed batch by batch")
    assert rows(tmp_path / "s" / "metrics.csv") == rows(tmp_path / "m" / "metrics.csv")


def test_resume_is_exact_when_streaming(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_spec(tiny_spec(tmp_path, "memory", epochs=4), out_dir=whole, quiet=True)
    train_spec(tiny_spec(tmp_path, "stream", epochs=2), out_dir=split, quiet=True)
    train_spec(
        tiny_spec(tmp_path, "stream", epochs=3), out_dir=split, resume=True, quiet=True
    )
    # resumed in the other mode: `loading` changes how batches are read, not which
    train_spec(
        tiny_spec(tmp_path, "memory", epochs=4), out_dir=split, resume=True, quiet=True
    )
    assert rows(split / "metrics.csv") == rows(whole / "metrics.csv")
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_streamed_image_folder_with_a_worker_matches_memory(tmp_path):
    write_folder(tmp_path / "images", classes=("a", "b", "c"), per_class=7)

    def spec(mode):
        return load_spec(
            {
                "name": "Pics",
                "input": [3, 4, 4],
                "layers": ["flatten", {"linear": 8}, "relu", {"linear": 3}],
                "training": {
                    "epochs": 2,
                    "batch_size": 5,
                    "data": {
                        "dataset": "image_folder",
                        "path": str(tmp_path / "images"),
                    },
                    "loading": {"mode": mode, "workers": 1},
                    "augment": AUGMENT,
                },
            }
        )

    train_spec(spec("memory"), out_dir=tmp_path / "m", quiet=True)
    train_spec(spec("stream"), out_dir=tmp_path / "s", quiet=True)
    assert rows(tmp_path / "s" / "metrics.csv") == rows(tmp_path / "m" / "metrics.csv")
    streamed = evaluate_checkpoint(tmp_path / "s" / "last.pt")
    memory = evaluate_checkpoint(tmp_path / "m" / "last.pt")
    assert streamed["confusion"] == memory["confusion"]
    assert streamed["loss"] == memory["loss"] and streamed["samples"] == 5


@pytest.mark.parametrize("rank", [0, 1])
def test_each_process_gets_its_part_of_every_batch_on_both_paths(rank):
    training = TrainingConfig.model_validate({"batch_size": 4, "seed": 3})
    group = Group(rank=rank, world=2)
    x, y = torch.arange(34.0).reshape(17, 2), torch.arange(17)
    memory_data = _splits(x, y)
    streamed_data = _splits(TensorRows(x), y, streamed=True)
    cpu = torch.device("cpu")
    memory = MemoryBatches(
        memory_data, reconstructs=False, device=cpu, group=group, training=training
    )
    streamed = StreamedBatches(
        streamed_data, reconstructs=False, device=cpu, group=group, training=training
    )
    for epoch in (1, 2):
        a, b = list(memory.train_batches(epoch)), list(streamed.train_batches(epoch))
        assert [(x.tolist(), y.tolist(), n) for x, y, n in map(_fields, a)] == [
            (x.tolist(), y.tolist(), n) for x, y, n in map(_fields, b)
        ]
        assert [n for *_, n in map(_fields, a)] == [
            4,
            7,
        ]  # the last batch of 3 is joined
    order = torch.randperm(11, generator=_epoch(3, 1)) + 6  # the training rows' labels
    assert list(memory.train_batches(1))[0].y.tolist() == order[:4][rank::2].tolist()
    val = [y.tolist() for _, y in streamed.val_batches()]
    assert val == [[0, 1, 2] if rank == 0 else [3, 4, 5]]
    assert val == [y.tolist() for _, y in memory.val_batches()]


def test_a_data_set_too_large_for_the_device_stays_on_the_host(monkeypatch):
    # cuda's free memory read: the data set is moved there only when it takes at most half
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 4000))
    assert batches_module.fits_on_device(500, "cuda:0")
    assert not batches_module.fits_on_device(501, "cuda:0")
    assert batches_module.fits_on_device(10**15, "cpu")  # the CPU holds it where it is

    def unreadable(device=None):
        raise RuntimeError("no CUDA GPUs are available")

    monkeypatch.setattr(torch.cuda, "mem_get_info", unreadable)
    assert batches_module.fits_on_device(10**15, "cuda:0")
    # held in host memory, each batch copied over: the same batches as held on the device
    training = TrainingConfig.model_validate({"batch_size": 4, "seed": 3})
    x, y = torch.arange(34.0).reshape(17, 2), torch.arange(17)
    cpu = torch.device("cpu")
    for reconstructs in (False, True):
        made = {}
        for resident in (True, False):
            monkeypatch.setattr(
                batches_module, "fits_on_device", lambda *_, r=resident: r
            )
            made[resident] = MemoryBatches(
                _splits(x, y), reconstructs=reconstructs, device=cpu, training=training
            )
            assert made[resident].resident == resident
        on_device, on_host = made[True], made[False]

        def listed(pairs):
            return [tuple(t.tolist() for t in pair) for pair in pairs]

        for epoch in (1, 2):
            device_batches = [_fields(b) for b in on_device.train_batches(epoch)]
            host_batches = [_fields(b) for b in on_host.train_batches(epoch)]
            assert [n for *_, n in host_batches] == [4, 4, 3]
            assert listed(b[:2] for b in device_batches) == listed(
                b[:2] for b in host_batches
            )
        assert listed(on_device.val_batches()) == listed(on_host.val_batches())
        assert listed([on_device.head(3)]) == listed([on_host.head(3)])
        # a reconstruction's targets are its inputs: one copy of them in host memory
        assert (on_host.y_val is on_host.x_val) == reconstructs
    # the batches (not the data set) reach the device: torch's meta device stands for cuda
    monkeypatch.setattr(batches_module, "fits_on_device", lambda *_: False)
    meta = MemoryBatches(
        _splits(x, y),
        reconstructs=False,
        device=torch.device("meta"),
        training=training,
    )
    assert meta.x_train.device.type == meta.y_val.device.type == "cpu"
    first = next(iter(meta.train_batches(1)))
    assert first.x.device.type == first.y.device.type == "meta"
    assert all(t.device.type == "meta" for pair in meta.val_batches() for t in pair)
    assert all(t.device.type == "meta" for t in meta.head(2))
    # a reconstruction's inputs are copied over once: its targets are them (a training
    # batch's a tensor of their own, cloned on the device)
    ae = MemoryBatches(
        _splits(x, y), reconstructs=True, device=torch.device("meta"), training=training
    )
    first = next(iter(ae.train_batches(1)))
    assert first.x.device.type == "meta" and first.y is not first.x
    assert first.y.shape == first.x.shape
    assert all(xb is yb for xb, yb in ae.val_batches())


def test_a_reconstructions_targets_are_not_the_tensor_its_model_is_given():
    # a model that changes its input in place must not change what it is scored against
    training = TrainingConfig.model_validate({"batch_size": 4, "seed": 3})
    x = torch.arange(34.0).reshape(17, 2)
    streamed = StreamedBatches(
        _splits(TensorRows(x), x, streamed=True),
        reconstructs=True,
        device=torch.device("cpu"),
        training=training,
    )
    batch = next(iter(streamed.train_batches(1)))
    assert batch.x is not batch.y and torch.equal(batch.x, batch.y)
    streamed.copies_inputs = True  # as the loop sets it for such a model
    for xb, yb in streamed.val_batches():
        assert xb is not yb and torch.equal(xb, yb)
    for source in (x, TensorRows(x)):  # evaluate: in memory and streamed
        for xb, yb in split_batches(
            source, None, reconstructs=True, batch_size=4, device="cpu"
        ):
            xb.mul_(0.5)  # what an in-place layer would do
            assert not torch.equal(xb, yb) or not xb.any()
    assert torch.equal(
        x, torch.arange(34.0).reshape(17, 2)
    )  # the loaded split as it was


def test_train_says_when_the_data_set_stays_on_the_host(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(batches_module, "fits_on_device", lambda *_: False)
    spec = load_spec(
        {
            "name": "Host",
            "input": [1, 8, 8],
            "layers": ["flatten", {"linear": 10}],
            "training": {"epochs": 1, "checkpoint_seconds": 0, "threads": 1},
        }
    )
    train_spec(spec, out_dir=tmp_path / "run", device="cpu", quiet=False)
    assert "stays in host memory and each batch is copied" in capsys.readouterr().err


def test_npz_is_memory_mapped_when_over_the_budget(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float64)
    np.savez(tmp_path / "plain.npz", x=x, y=np.arange(40) % 2)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=np.arange(40) % 2)
    mapped = map_npz_member(str(tmp_path / "plain.npz"), "x", torch.float32)
    assert isinstance(mapped, MappedArray) and mapped.shape == (40, 3)
    assert torch.equal(
        mapped.take([7, 1]), torch.from_numpy(x[[7, 1]].astype(np.float32))
    )
    assert map_npz_member(str(tmp_path / "packed.npz"), "x", torch.float32) is None

    def load(name, **loading):
        training = TrainingConfig.model_validate(
            {
                "data": {"dataset": "npz", "path": str(tmp_path / name)},
                "loading": loading,
            }
        )
        return load_data(training, [3])

    small = load("plain.npz", memory_budget="1KiB")  # 40 x 3 float32 = 480 bytes: fits
    assert not small.streamed
    over = load("plain.npz", memory_budget=100)
    assert over.streamed and isinstance(over.x_train, RowSubset)
    assert isinstance(over.x_train.base, MappedArray)
    assert torch.equal(over.x_val.take(range(len(over.x_val))), small.x_val)
    assert torch.equal(over.y_train, small.y_train)
    with pytest.raises(UserError) as caught:
        load("packed.npz", memory_budget=100)
    assert "compressed" in str(caught.value) and "numpy.savez" in str(caught.value)
    forced = load("packed.npz", mode="stream")  # read whole, then streamed from memory
    assert isinstance(forced.x_train.base, TensorRows)


def test_a_mapped_npz_is_checked_for_values_that_are_not_finite(tmp_path):
    x = np.zeros((10, 2), dtype=np.float32)
    x[6, 1] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(10) % 2)
    training = TrainingConfig.model_validate(
        {
            "data": {"dataset": "npz", "path": str(tmp_path / "bad.npz")},
            "loading": {"mode": "stream"},
        }
    )
    with pytest.raises(UserError, match="sample 6: holds a value that is not finite"):
        load_data(training, [2])


def test_an_image_gone_since_the_check_is_one_line_from_a_worker(tmp_path):
    root = write_folder(tmp_path / "images", per_class=2)
    files = ImageFiles(sorted(root.rglob("*.png")), (3, 4, 4))
    (root / "cat" / "1.png").unlink()
    batches = split_batches(
        files,
        torch.zeros(4, dtype=torch.long),
        reconstructs=False,
        batch_size=2,
        device=torch.device("cpu"),
        workers=1,
    )
    with pytest.raises(UserError) as caught:
        list(batches)
    assert "\n" not in str(caught.value) and "1.png" in str(caught.value)


def test_memory_budget_and_policy():
    def config(**loading):
        return TrainingConfig.model_validate({"loading": loading}).loading

    assert config(memory_budget="2GiB").memory_budget == 2 * 1024**3
    assert config(memory_budget="1.5 GB").memory_budget == 1_500_000_000
    assert config(memory_budget="512k").memory_budget == 512_000
    assert (
        loading_policy(config()).budget is None or loading_policy(config()).budget > 0
    )
    auto = LoadingPolicy("auto", 1000, "auto")
    assert not auto.streams(1000) and auto.streams(1001)
    assert LoadingPolicy("stream", 10**12, 0).streams(1)
    assert not LoadingPolicy("memory", 0, 0).streams(10**12)
    assert (
        worker_count("auto", decodes=False) == 0 and worker_count(3, decodes=True) == 3
    )
    assert 0 <= worker_count("auto", decodes=True) <= 4


@pytest.mark.parametrize(
    "loading,message",
    [
        (
            {"memory_budget": "lots"},
            "memory_budget is auto, a number of bytes, or a size",
        ),
        ({"mode": "disk"}, "training.loading.mode"),
        ({"workers": -1}, "training.loading.workers"),
    ],
)
def test_loading_mistakes_are_located_spec_errors(loading, message):
    spec = {
        "name": "T",
        "input": [4],
        "layers": [{"linear": 2}],
        "training": {"loading": loading},
    }
    with pytest.raises(SpecError) as caught:
        load_spec(spec)
    assert message in str(caught.value)


def test_uncompressed_npz_members_are_stored(tmp_path):
    # what map_npz_member relies on: numpy.savez writes members without compression
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        assert archive.getinfo("x.npy").compress_type == zipfile.ZIP_STORED


def _fields(batch):
    return batch.x, batch.y, batch.size


def _epoch(seed, epoch):
    from runtime.training.rng import epoch_generator  # the loop's own order

    return epoch_generator(seed, epoch)


def _splits(x, y, streamed=False):
    from runtime.data.load import DataSplits  # the loader's own container

    n_val = 6
    return DataSplits(
        x_train=x.subset(range(n_val, len(x))) if streamed else x[n_val:],
        y_train=y[n_val:],
        x_val=x.subset(range(n_val)) if streamed else x[:n_val],
        y_val=y[:n_val],
        x_test=None,
        y_test=None,
        num_classes=None,
        class_names=None,
        description="test",
    )
