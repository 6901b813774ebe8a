"""The training batches: every sample once per epoch, and no process ever trains on a batch of a
single sample (BatchNorm cannot), in one process or split over N."""

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime.parallel.distributed
from runtime.cli.main import main
from runtime.parallel.distributed import Group
from runtime.training import batches
from runtime.training.loop import batch_starts
from runtime.training.rng import epoch_generator


def test_a_short_last_batch_joins_the_one_before():
    assert batch_starts(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_starts(9, 4) == [(0, 4), (4, 9)]  # one sample: joined
    assert batch_starts(10, 4, world=2) == [
        (0, 4),
        (4, 10),
    ]  # 2 samples for 2 processes
    assert batch_starts(12, 4, world=2) == [(0, 4), (4, 8), (8, 12)]


@settings(max_examples=300, derandomize=True, deadline=None)
@given(n=st.integers(1, 500), batch_size=st.integers(1, 64), world=st.integers(1, 8))
def test_every_sample_once_and_no_process_with_a_batch_of_one(n, batch_size, world):
    bounds = batch_starts(n, batch_size, world)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert all(stop - start == batch_size for start, stop in bounds[:-1])
    if batch_size >= 2 * world and n >= 2 * world:
        # the processes split a batch as index[rank::world]: none gets a single sample
        for start, stop in bounds:
            parts = [len(range(start + r, stop, world)) for r in range(world)]
            assert min(parts) >= 2, (start, stop, parts)


def test_nproc_with_batch_norm_and_a_batch_too_small_to_share_is_refused_before_launch(
    tmp_path, capsys, monkeypatch
):
    # in-process: the refusal comes before any process is started, which the patched
    # launcher proves more directly than a subprocess would
    monkeypatch.setattr(
        runtime.parallel.distributed,
        "launch",
        lambda *a: pytest.fail("processes were launched despite the mistake"),
    )
    spec = tmp_path / "bn.yaml"
    spec.write_text(
        "name: BN\ninput: [1, 8, 8]\nlayers:\n  - flatten\n  - linear: 16\n"
        "  - batchnorm1d\n  - relu\n  - linear: 10\n"
        "training:\n  epochs: 1\n  batch_size: 3\n"
    )
    out = tmp_path / "run"
    code = main(["train", str(spec), "--nproc", "2", "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 2
    assert "batch_size 3 gives some of the 2 processes a batch of one sample" in stderr
    assert "set batch_size to 4 or more" in stderr
    assert "Traceback" not in stderr and not any(out.glob("*.pt"))


def _batches_by_one_gather_each(source, epoch):
    """The training batches as a gather per batch would cut them (the rows the epoch's
    permutation puts in each batch, this process's part of it)."""
    training, group = source.training, source.group
    order = torch.randperm(
        source.n_train, generator=epoch_generator(training.seed, epoch)
    )
    for start, stop in batch_starts(source.n_train, training.batch_size, group.world):
        index = order[start:stop][group.rank :: group.world]
        x = source.x_train.index_select(0, index)
        y = x if source.reconstructs else source.y_train.index_select(0, index)
        yield x, y, stop - start


@pytest.mark.parametrize("reconstructs", [False, True])
@pytest.mark.parametrize("rank, world", [(0, 1), (1, 2), (2, 3)])
def test_batches_gathered_several_at_a_time_are_the_rows_of_a_gather_per_batch(
    monkeypatch, reconstructs, rank, world
):
    # rows of 4 x 4 floats (+ an int64 label), a gather of 3.5 batches' bytes: 3 batches of
    # 8 a gather, 13 batches in all (the last of 5 joined to the one before)
    row = 4 * 4 * 4 + (0 if reconstructs else 8)
    monkeypatch.setattr(batches, "GATHER_BYTES", row * 8 * 3 + row * 4)
    x = torch.randn(101, 4, 4)
    data = SimpleNamespace(
        x_train=x, x_val=x[:10], y_train=torch.arange(101) % 10, y_val=torch.zeros(10)
    )
    training = SimpleNamespace(seed=3, batch_size=8)
    source = batches.MemoryBatches(
        data,
        reconstructs=reconstructs,
        device=torch.device("cpu"),
        group=Group(rank=rank, world=world),
        training=training,
    )
    groups = list(batches._gathered(batch_starts(101, 8, world), row))
    assert [len(g) for g in groups][:2] == [
        3,
        3,
    ]  # more than one gather, several batches each
    for epoch in (1, 2):
        got = list(source.train_batches(epoch))
        expected = list(_batches_by_one_gather_each(source, epoch))
        assert len(got) == len(expected) == len(batch_starts(101, 8, world))
        for batch, (x_b, y_b, size) in zip(got, expected):
            assert batch.size == size
            assert torch.equal(batch.x, x_b) and torch.equal(batch.y, y_b)
            assert batch.x.is_contiguous()
            if (
                reconstructs
            ):  # a target of its own, which a model writing x cannot change
                assert batch.y.data_ptr() != batch.x.data_ptr()


def test_a_batch_larger_than_a_gather_is_gathered_alone():
    assert list(batches._gathered([(0, 4), (4, 8), (8, 10)], 1 << 30)) == [
        [(0, 4)],
        [(4, 8)],
        [(8, 10)],
    ]
    assert list(batches._gathered([(0, 4), (4, 8), (8, 10)], 1)) == [
        [(0, 4), (4, 8), (8, 10)]
    ]
