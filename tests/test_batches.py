"""The training batches: every sample once per epoch, and no process ever trains on a batch of a
single sample (BatchNorm cannot), in one process or split over N."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runtime.parallel.distributed
from runtime.cli.main import main
from runtime.training.loop import batch_starts


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
