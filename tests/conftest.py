"""Fixtures shared by the tests.

Every test gets its own nnspec cache folder, so no test reads what another (or the user's own
runs) left in ~/.cache/nnspec, and none writes there. In-process thread probes take the machine
as quiet (`quiet_machine`; the tests of the busy rule take `busy_rule`). A module that trains or runs tiny models
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


# The modules whose tests run real processes or big models, slowest first (measured with
# `pytest -n 2 --durations=0`). They run before the rest, so that the two xdist workers share
# them from the start and the run ends on tests of a fraction of a second: started last, one
# of them keeps a worker busy for half a minute while the other has nothing left to do. Whole
# modules move, in their own order, so module-scoped fixtures are still made once per worker.
SLOW_MODULES_FIRST = (
    "test_faults.py",
    "test_signals.py",
    "test_run_folder.py",
    "test_ddp.py",
    "test_export.py",
    "test_equivalence.py",
    "test_hostile_inputs.py",
    "test_generated_trust.py",
    "test_properties.py",
    "test_sequence_specs.py",
    "test_nested_properties.py",
    "test_pre_commit.py",
    "test_benchmarks.py",
    "test_containers.py",
    "test_codegen.py",
    "test_streaming.py",
    "test_training_options.py",
    "test_predict.py",
    "test_style.py",
)


def pytest_collection_modifyitems(items):
    """Run the tests of SLOW_MODULES_FIRST first, in that order; the others keep theirs."""
    rank = {name: index for index, name in enumerate(SLOW_MODULES_FIRST)}
    # a stable sort: the same order on every xdist worker, which xdist requires
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture
def example_specs() -> list[Path]:
    """Return every spec file of specs/, sorted by name."""
    return list(SPEC_FILES)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("NNSPEC_CACHE_DIR", str(tmp_path_factory.mktemp("nnspec-cache")))


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch) -> float:
    """Take every thread probe in this process as timed on a quiet machine, and return the
    busy rule's own threshold: two xdist workers share two cores, so a probe's threads wait for
    a CPU whenever the other worker computes, and the busy rule (runtime/parallel/threads.py,
    BUSY_WAIT) would make any choice unremembered. Its own tests take `busy_rule`. A module- or
    session-scoped fixture runs before this one, under the real rule (which can only leave a
    choice of its own runs unremembered)."""
    from runtime.parallel import threads

    threshold = threads.BUSY_WAIT
    monkeypatch.setattr(threads, "BUSY_WAIT", float("inf"))
    return threshold


@pytest.fixture(autouse=True)
def no_cpu_quota(monkeypatch):
    """Take the machine as having no cgroup CPU quota, so that a CI runner in a container with
    CPU limits times the counts the tests expect (the quota's own tests set one)."""
    from runtime.parallel import threads

    monkeypatch.setattr(threads, "cpu_quota", lambda *args, **kwargs: None)


@pytest.fixture
def busy_rule(quiet_machine, monkeypatch):
    """The busy rule as users get it (BUSY_WAIT at its own threshold)."""
    from runtime.parallel import threads

    monkeypatch.setattr(threads, "BUSY_WAIT", quiet_machine)


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
