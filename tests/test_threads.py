"""CPU threads chosen by timing a few steps (runtime/parallel/threads.py): timed on a copy, so the
run trains as it would have; remembered, so a spec trains alike on one machine; never timed where
the user, a resume or the device decides."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from compiler import build_sequential, load_spec
from runtime.parallel import threads
from runtime.parallel.threads import choose_threads, cpu_threads
from runtime.parallel.threads import cpu_quota as read_cpu_quota  # conftest patches it
from runtime.training.train import train_spec
from tests.test_train import digits_spec, synthetic, tiny_mlp

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def two_threads(monkeypatch):
    """torch on two threads (a choice to make), with no thread count set by the environment."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def model_and_data():
    spec = load_spec(
        tiny_mlp(2, 3)
    )  # with dropout: the timed steps draw random numbers
    torch.manual_seed(0)
    return spec, build_sequential(spec), synthetic("classification")


def test_the_count_is_timed_on_a_copy_and_remembered(two_threads):
    spec, model, data = model_and_data()
    training = spec.training_or_default
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.get_rng_state()
    choice = choose_threads(model, data, training, CPU, key="tiny")
    assert choice.by == "measured" and set(choice.measured) == {1, 2}
    # one thread only where it wins by FASTER_BY
    wins = choice.measured[1] <= choice.measured[2] * (1 - threads.FASTER_BY)
    assert choice.chosen == (1 if wins else 2)
    # nothing of the run changed: its weights, torch's generator, the thread count
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), generator)
    assert torch.get_num_threads() == 2
    again = choose_threads(model, data, training, CPU, key="tiny")
    assert (again.by, again.chosen, again.measured) == (
        "remembered",
        choice.chosen,
        {n: round(ms, 3) for n, ms in choice.measured.items()},
    )
    assert choose_threads(model, data, training, CPU, key="other").by == "measured"
    summary = choice.summary()
    assert summary["chosen"] == choice.chosen and set(summary["measured"]) == {"1", "2"}
    with cpu_threads(choice):
        assert torch.get_num_threads() == choice.chosen
    assert torch.get_num_threads() == 2


def test_a_step_longer_than_the_budget_keeps_torchs_count_untimed_at_one(
    two_threads, monkeypatch
):
    monkeypatch.setattr(threads, "LONG_STEP_SECONDS", 0.0)
    spec, model, data = model_and_data()
    choice = choose_threads(model, data, spec.training_or_default, CPU, key="long")
    assert (choice.chosen, list(choice.measured)) == (2, [2])
    # its run-queue wait is read too (where the kernel says it), so a busy one is known
    assert (choice.waited is not None) == (threads.run_queue_delays() is not None)


def test_nothing_is_timed_where_the_user_a_resume_or_the_device_decides(
    two_threads, monkeypatch
):
    monkeypatch.setattr(threads, "time_counts", None)  # calling it would raise
    spec, model, data = model_and_data()
    training = spec.training_or_default
    pinned = training.model_copy(update={"threads": 3})
    assert choose_threads(model, data, pinned, CPU, key="k").chosen == 3
    assert (
        choose_threads(model, data, training, CPU, key="k", resumed=1).by == "resumed"
    )
    gpu = choose_threads(model, data, training, torch.device("cuda"), key="k")
    assert (gpu.by, gpu.chosen) == ("device", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads(model, data, training, CPU, key="k").by == "environment"
    torch.set_num_threads(1)
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert choose_threads(model, data, training, CPU, key="k").by == "single"


def test_the_choice_is_in_summary_json_and_a_resume_takes_the_checkpoints(
    two_threads, tmp_path
):
    spec = digits_spec(epochs=1)
    out = tmp_path / "run"
    first = train_spec(spec, out_dir=out, device="cpu", quiet=True)
    assert first["threads"]["by"] == "measured"
    chosen = first["threads"]["chosen"]
    assert f"cpu ({chosen} thread" in first["device"] and "ms/epoch" in first["device"]
    assert torch.load(out / "last.pt", weights_only=True)["threads"] == chosen
    resumed = train_spec(
        digits_spec(epochs=2), out_dir=out, device="cpu", quiet=True, resume=True
    )
    assert resumed["threads"] == {"chosen": chosen, "by": "resumed", "measured": {}}


def test_one_thread_must_win_clearly_to_be_chosen(two_threads, monkeypatch):
    spec, model, data = model_and_data()
    training = spec.training_or_default
    for measured, chosen in (
        ({1: 53.9, 2: 52.5}, 2),
        ({1: 52.5, 2: 53.9}, 2),  # one thread 3% faster: not enough to leave torch's
        ({1: 40.0, 2: 50.0}, 1),  # 20% faster on one thread
    ):
        monkeypatch.setattr(threads, "time_counts", lambda *_, m=measured: dict(m))
        key = f"rule {measured}"
        assert choose_threads(model, data, training, CPU, key=key).chosen == chosen


@pytest.mark.usefixtures("busy_rule")
def test_a_probe_timed_beside_busy_programs_is_used_but_not_remembered(
    two_threads, monkeypatch
):
    spec, model, data = model_and_data()
    training = spec.training_or_default
    # one thread 3x faster, as beside a busy loop on 2 cores
    probes = []

    def time_counts(*_args, waited):
        probes.append(waited)
        return threads.Estimates({1: 10.0, 2: 30.0}, waited=waited)

    for waited, remembered in ((0.5, False), (threads.BUSY_WAIT, True), (None, True)):
        key = f"busy {waited}"
        monkeypatch.setattr(
            threads, "time_counts", lambda *a, w=waited: time_counts(*a, waited=w)
        )
        choice = choose_threads(model, data, training, CPU, key=key)
        assert (choice.chosen, choice.by, choice.waited) == (1, "measured", waited)
        assert ("busy" in choice.describe()) == (not remembered)
        again = choose_threads(model, data, training, CPU, key=key)
        assert again.by == ("remembered" if remembered else "measured")
        assert (
            again.waited == waited
        )  # a remembered choice keeps the wait it was timed at
    assert probes == [0.5, 0.5, threads.BUSY_WAIT, None]
    monkeypatch.setattr(threads, "time_counts", lambda *a: time_counts(*a, waited=0.5))
    busy = choose_threads(model, data, training, CPU, key="busy 0.5")
    assert busy.summary()["waited_for_cpu"] == 0.5
    assert busy.describe() == (
        "measured while the machine was busy (each of its threads waited for a CPU 50% of "
        "the time; timed again next run): 10.0 ms/epoch at 1, 30.0 at 2"
    )
    # the layout's timings, handed on, carry their wait too: not remembered either
    handed = threads.Estimates({1: 10.0, 2: 30.0}, waited=0.5)
    for _ in range(2):
        choice = choose_threads(model, data, training, CPU, key="h", timed=handed)
        assert (choice.chosen, choice.by) == (1, "measured")


# a probe at two threads, in a process given two CPUs (tests/test_threads.py's tiny MLP)
PROBE = """\
import torch
from runtime.parallel import threads
from tests.test_threads import model_and_data
torch.set_num_threads(2)
spec, model, data = model_and_data()
print(threads.time_counts(model, data, spec.training_or_default, (1, 2)).waited)
"""


def probe_waits(cpus: set[int], loops: int) -> float:
    """Return the wait a probe pinned to `cpus` reads beside `loops` busy loops pinned there."""
    pinned = sorted(cpus)

    def pin(cpu_set):
        return lambda: os.sched_setaffinity(0, cpu_set)

    busy = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            preexec_fn=pin({pinned[i % len(pinned)]}),
        )
        for i in range(loops)
    ]
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
        done = subprocess.run(
            [sys.executable, "-c", PROBE],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            preexec_fn=pin(set(pinned)),
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        for loop in busy:
            loop.kill()
            loop.wait()
    assert done.returncode == 0, done.stderr[-2000:]
    return float(done.stdout.split()[-1])


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity")
    or len(os.sched_getaffinity(0)) < 2
    or threads.run_queue_delays() is None,
    reason="needs Linux's schedstat and two CPUs to pin to",
)
@pytest.mark.usefixtures("busy_rule")
def test_the_wait_of_a_probe_beside_busy_programs_is_read():
    # the probe's two threads on two CPUs beside a busy loop on each: each waits for a CPU
    # about half the time, whatever the machine's size (0.26-0.42 seen on 2 cores)
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    assert probe_waits(cpus, loops=2) > threads.BUSY_WAIT
    # the readings: a thread that ends between two is left out, one that starts counts whole
    before = {"1": 5_000_000_000, "2": 1_000_000_000}
    after = {"1": 5_500_000_000, "3": 250_000_000}
    assert threads.waited_between(before, after) == pytest.approx(0.75)
    delays = threads.run_queue_delays()
    assert str(threading.get_native_id()) in delays and min(delays.values()) >= 0


def test_the_cgroup_cpu_quota_is_read_along_the_cgroup_path(tmp_path):
    root, cgroups = tmp_path / "cgroup", tmp_path / "self-cgroup"

    def write(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def quota(lines):
        cgroups.write_text(lines)
        return read_cpu_quota(str(root), str(cgroups))

    assert read_cpu_quota(str(root), str(tmp_path / "none")) is None  # no such file
    # v2: cpu.max at each level of the path, the least taken; `max` is no limit
    write(root / "cpu.max", "max 100000\n")
    assert quota("0::/\n") is None
    write(root / "pod" / "cpu.max", "250000 100000\n")
    write(root / "pod" / "app" / "cpu.max", "max 100000\n")
    assert quota("0::/pod/app\n") == 2.5
    # a path not under the root (a container without its own cgroup namespace): the root's
    write(root / "cpu.max", "150000 100000\n")
    assert quota("0::/docker/0123abcd\n") == 1.5
    # v1: the cpu controller's folder, cfs_quota_us -1 is no limit
    (root / "cpu.max").unlink()
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    lines = "4:memory:/job\n3:cpu,cpuacct:/job\n"
    assert quota(lines) is None
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_quota_us", "100000\n")
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "100000\n")
    assert quota(lines) == 1.0
    write(root / "cpu,cpuacct" / "job" / "cpu.cfs_period_us", "garbage\n")
    assert quota(lines) is None  # unreadable: no limit known
    cgroups.write_bytes(b"0::/\xff\xfe\n")  # a cgroup name that is no UTF-8
    assert read_cpu_quota(str(root), str(cgroups)) is None


def test_a_cpu_quota_caps_the_counts_timed(two_threads, monkeypatch):
    spec, model, data = model_and_data()
    training = spec.training_or_default
    monkeypatch.setattr(threads, "cpu_quota", lambda: 1.5)  # fewer than two whole CPUs
    assert threads.usable_threads() == 1
    assert threads.counts_to_time(training, CPU) == (1,)
    choice = choose_threads(model, data, training, CPU, key="quota")
    assert (choice.chosen, choice.by, choice.describe()) == (
        1,
        "quota",
        "the CPU quota allows one",
    )
    # the user's own count is theirs
    pinned = training.model_copy(update={"threads": 2})
    assert choose_threads(model, data, pinned, CPU, key="quota").chosen == 2
    monkeypatch.setattr(threads, "cpu_quota", lambda: 8.0)  # more than torch's 2
    assert threads.usable_threads() == 2
    assert threads.counts_to_time(training, CPU) == (1, 2)


def test_an_epoch_is_estimated_from_its_steps_and_validation_passes(
    two_threads, monkeypatch
):
    # steps and passes that take what the thread count says: the estimate is their sum over
    # the epoch's 3 batches of 32 (72 samples; the last one 8) and its 1 validation chunk
    monkeypatch.setattr(
        threads, "step_seconds", lambda *_: 0.001 * torch.get_num_threads()
    )
    monkeypatch.setattr(
        threads, "validation_seconds", lambda *_: 0.010 / torch.get_num_threads()
    )
    spec, model, data = model_and_data()
    training = spec.training_or_default.model_copy(update={"batch_size": 32})
    timed = threads.time_counts(model, data, training, (1, 2))
    assert timed == pytest.approx({1: 3 * 1 + 10.0, 2: 3 * 2 + 5.0})
    # validation is what makes two threads the faster here, as on the digits CNN
    assert choose_threads(model, data, training, CPU, key="estimate").chosen == 2
    # a validation split larger than the rows timed: the passes scale to the whole split
    data.x_val = torch.randn(640, *data.x_val.shape[1:])
    data.y_val = torch.randint(0, 3, (640,))
    passes = 640 / threads.VALIDATION_ROWS
    assert threads.time_counts(model, data, training, (1, 2)) == pytest.approx(
        {1: 3 * 1 + passes * 10.0, 2: 3 * 2 + passes * 5.0}
    )


def test_a_count_timed_by_the_layout_choice_is_not_timed_again(
    two_threads, monkeypatch
):
    monkeypatch.setattr(threads, "time_counts", None)  # calling it would raise
    spec, model, data = model_and_data()
    training = spec.training_or_default
    choice = choose_threads(
        model, data, training, CPU, key="timed", timed={1: 30.0, 2: 40.0}
    )
    assert (choice.chosen, choice.by, choice.measured) == (
        1,
        "measured",
        {1: 30.0, 2: 40.0},
    )
    assert threads.counts_to_time(training, CPU) == (1, 2)
    assert threads.counts_to_time(training, CPU, resumed=2) == (2,)
    pinned = training.model_copy(update={"threads": 3})
    assert threads.counts_to_time(pinned, CPU) == (3,)


@pytest.mark.parametrize("step", [0.001, 0.05])
def test_a_short_step_is_timed_after_one_at_its_own_count(
    two_threads, monkeypatch, step
):
    # the thread counts the steps ran at, in order: a short step is timed only after an
    # untimed one at its count (no switch in it), a long one right after the other count's
    counts = []

    def step_seconds(*_):
        counts.append(torch.get_num_threads())
        return step

    monkeypatch.setattr(threads, "step_seconds", step_seconds)
    monkeypatch.setattr(threads, "validation_seconds", lambda *_: 0.001)
    monkeypatch.setattr(threads, "MEASURE_SECONDS", 0.0)  # the fewest rounds
    spec, model, data = model_and_data()
    threads.time_counts(model, data, spec.training_or_default, (1, 2))
    # a warm-up and a timed step at torch's count, a warm-up of each count, then the rounds
    rounds = counts[4:]
    per_round = 2 if step < threads.SHORT_STEP_SECONDS else 1
    assert counts[:4] == [2, 2, 2, 1]
    assert rounds == ([2] * per_round + [1] * per_round) * threads.MIN_ROUNDS
