"""Fixtures shared by the tests.

Every test gets its own nnspec cache folder, so no test reads what another (or the user's own
runs) left in ~/.cache/nnspec, and none writes there. A module that trains or runs tiny models
says `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.
"""

import pytest


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("nnspec-cache")))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread: on tiny tensors its thread pool costs far more than it gains,
    above all with two xdist workers sharing two cores (a conv1d grid: 15 s on two threads, 0.6 s
    on one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
