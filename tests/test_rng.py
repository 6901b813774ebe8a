"""The generators' state saved in a checkpoint restores every generator exactly."""

import random

import numpy as np
import torch

from runtime.training.rng import rng_state, seed_everything, set_rng_state


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_a_saved_state_replays_the_same_draws_after_a_round_trip_through_torch_save(
    tmp_path,
):
    seed_everything(7)
    draws()
    path = tmp_path / "rng.pt"
    torch.save(rng_state(), path)
    expected = draws()
    seed_everything(8)
    set_rng_state(torch.load(path, weights_only=True))
    assert draws() == expected


def test_pythons_state_is_one_tensor_and_the_older_list_form_still_restores():
    seed_everything(3)
    state = rng_state()
    assert isinstance(state["python"]["internal"], torch.Tensor)
    expected = draws()
    seed_everything(4)
    older = dict(
        state,
        python=dict(state["python"], internal=state["python"]["internal"].tolist()),
    )
    set_rng_state(older)
    assert draws() == expected


def test_a_kept_state_reads_torch_now_and_python_and_numpy_as_the_last_full_read():
    seed_everything(5)
    full = rng_state()
    torch.rand(3)  # training draws from torch alone
    kept = rng_state(host=False)
    assert not torch.equal(kept["torch"], full["torch"])
    assert kept["torch"].equal(torch.get_rng_state())
    assert kept["python"] == full["python"] and kept["numpy"] is full["numpy"]
    expected = draws()
    seed_everything(6)
    set_rng_state(kept)
    assert draws() == expected  # exact while nothing drew from python or numpy
    random.random(), np.random.rand()  # a full read sees draws from them again
    assert rng_state()["numpy"]["pos"] != full["numpy"]["pos"]
