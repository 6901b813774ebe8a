"""Fixtures shared by the tests.

Every test gets its own nnspec cache folder, so no test reads what another (or the user's own
runs) left in ~/.cache/nnspec, and none writes there. A module that trains or runs tiny models
says `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.

A test that takes `example_spec` runs once for every spec file in specs/ (its id is the file
name); `example_specs` is the whole list. What counts as a spec file is decided in
tests/spec_folder.py, and nowhere else.
"""

from pathlib import Path

import pytest

from tests.spec_folder import SPEC_FILES, spec_id


@pytest.hookimpl(trylast=True)
def pytest_generate_tests(metafunc):
    """Run a test that takes `example_spec` once per spec file, its id the file name.

    Last, after the test's own parametrize marks, so the spec stays the last part of an id
    (`[generated->sequential-resnet18.yaml]`), as when each module parametrized by hand.
    """
    if "example_spec" in metafunc.fixturenames:
        metafunc.parametrize("example_spec", SPEC_FILES, ids=spec_id)


@pytest.fixture
def example_specs() -> list[Path]:
    """Return every spec file of specs/, sorted by name."""
    return list(SPEC_FILES)


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
