"""The benchmarks' own logic (never their timings): loops that train, `nnspec train` clocked as a
command, specs that load, sane statistics and verdicts, the torch-import probe, and a GPU script
that is safe without a GPU and runs on the CPU in smoke mode.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
import framework_process  # noqa: E402
import lockstep  # noqa: E402
import loops  # noqa: E402
import nnspec_train  # noqa: E402
import run as bench_run  # noqa: E402
import scale  # noqa: E402
import training  # noqa: E402


def test_fit_line_recovers_an_exact_line():
    intercept, slope, r2 = common.fit_line([1, 2, 3, 4], [5.0, 7.0, 9.0, 11.0])
    assert intercept == pytest.approx(3.0)
    assert slope == pytest.approx(2.0)
    assert r2 == pytest.approx(1.0)


def test_fit_line_r_squared_drops_for_a_curve():
    _, _, r2 = common.fit_line([1, 2, 3, 4, 5], [1.0, 4.0, 9.0, 16.0, 100.0])
    assert r2 < 0.9


@pytest.mark.parametrize(
    ("target", "passed"),
    [
        (common.at_most("a", 1.05, 1.05), True),
        (common.at_most("a", 1.06, 1.05), False),
        (common.below("b", 0.3, 0.3), False),
        (common.within("c", 0.97, 1.0, 0.03), True),
        (common.within("c", 1.031, 1.0, 0.03), False),
    ],
)
def test_targets_say_pass_or_fail(target, passed):
    assert target.passed is passed
    assert target.verdict == ("PASS" if passed else "FAIL")
    assert target.verdict in common.targets_table([target])


def test_markdown_table_lines_up():
    text = common.markdown_table(["a", "long header"], [["value", "1"], ["x", "22"]])
    lengths = {len(line) for line in text.splitlines()}
    assert len(lengths) == 1
    assert text.splitlines()[1].startswith("| ----- |")


def test_long_spec_loads_with_every_shape_inferred(tmp_path):
    from compiler import count_params, load_spec

    path = tmp_path / "long.yaml"
    path.write_text(scale.long_spec_text(10), encoding="utf-8")
    spec = load_spec(path)
    assert len(spec.layers) == 10
    assert scale.infer_shapes(spec) == 10
    assert count_params(spec) == 5 * (16 * 16 + 16)


@pytest.fixture(scope="module")
def tiny_workload(tmp_path_factory):
    """A workload like the benchmark's synthetic ones, small enough to train in a blink."""
    folder = tmp_path_factory.mktemp("bench")
    path, spec, data = training.write_synthetic(
        folder, "tiny", [12], [{"linear": 16}, "relu", {"linear": 10}], 150, 50, 0
    )
    return training.Workload("tiny", path, spec, data, 1, 4, 1)


@pytest.mark.parametrize(
    "name", list(framework_process.LOOPS), ids=lambda name: name.split()[0]
)
def test_each_framework_loop_ends_every_epoch_once_after_timing_it(tiny_workload, name):
    function, module = framework_process.LOOPS[name]
    if module is not None and getattr(loops, module)() is None:
        pytest.skip(f"{name} is not installed")
    from compiler import build_sequential

    torch.manual_seed(0)
    model = build_sequential(tiny_workload.spec)
    ends = []
    times = getattr(loops, function)(
        model,
        tiny_workload.data,
        tiny_workload.spec.training_or_default,
        3,
        on_epoch_end=lambda: ends.append(time.perf_counter()),
    )
    # once at the end of each epoch, the three at least an epoch apart
    assert len(ends) == 3 and len(times) == 3
    assert all(t > 0 for t in times)
    assert all(b - a >= min(times) * 0.5 for a, b in zip(ends, ends[1:]))


def test_a_child_process_reports_its_last_line_or_why_it_failed():
    assert common.epoch_times(0, "a banner\n[0.5, 0.25]\n", "") == [0.5, 0.25]
    assert common.epoch_times(1, "", "Traceback\nValueError: bad") == (
        "failed: ValueError: bad"
    )
    assert common.epoch_times(0, "", "") == "failed: 0"
    assert common.epoch_times(None, "", "") == "failed: timed out"


def test_nnspec_train_and_the_bare_loops_time_the_same_epochs_in_lockstep(
    tiny_workload,
):
    seen: dict = {}
    [group] = [
        loop for loop in training.loops(2, seen) if loop.name == training.LOCKSTEP
    ]
    timed = group.time(tiny_workload, 1)
    frameworks = framework_process.available()
    assert "DataLoader" in frameworks  # needs torch only
    assert set(timed) == {
        training.NNSPEC,
        training.bare_name(1),
        training.bare_name(2),
        training.AS_NNSPEC,  # no convolution: no channels-last line
        *frameworks,
    }
    for name, times in timed.items():
        assert not isinstance(times, str), (name, times)
        # epochs 3 and 4 of 4 in every process: the same epochs of each
        assert len(times) == tiny_workload.epochs - training.NNSPEC_WARMUP
        assert all(t > 0 for t in times), name
    assert seen[tiny_workload.name] and seen[("csv", tiny_workload.name)]


CHILD = """
import json, sys, time
sys.path.insert(0, {benchmarks!r})
from lockstep import EpochClock
if sys.argv[1] == "fail":
    raise SystemExit("no such spec")
if sys.argv[1] == "hang":
    time.sleep(60)
clock = EpochClock()
epochs = []
for _ in range(4):
    started = time.perf_counter()
    while time.perf_counter() - started < 0.02:
        pass
    epochs.append((started, time.perf_counter()))
    clock.epoch_ended()
print(json.dumps({{"epochs": epochs, "clocked": clock.epoch_times()}}))
"""


def _children(tmp_path, names):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(benchmarks=str(ROOT / "benchmarks")))
    return [
        lockstep.Child(
            name,
            [sys.executable, str(script), name],
            {},
            tmp_path,
            tmp_path / f"{name}.out",
            tmp_path / f"{name}.err",
        )
        for name in names
    ]


def test_lockstep_runs_one_child_at_a_time_and_clocks_only_its_epochs(tmp_path):
    codes = lockstep.run(_children(tmp_path, ("a", "fail", "b", "c")))
    assert codes == {"a": 0, "fail": 1, "b": 0, "c": 0}
    assert "no such spec" in (tmp_path / "fail.err").read_text()
    runs = {
        name: json.loads((tmp_path / f"{name}.out").read_text())
        for name in ("a", "b", "c")
    }
    epochs = sorted(
        (start, end, name) for name, run in runs.items() for start, end in run["epochs"]
    )
    # no two epochs overlap; the first epochs ran one child after another, each alone,
    # then an epoch of each in turn
    assert all(a[1] <= b[0] for a, b in zip(epochs, epochs[1:]))
    assert [name for _, _, name in epochs] == ["a", "b", "c"] * 4
    for run in runs.values():
        # epochs 2-4, each from the moment the child was let go: its own 20 ms, not the
        # others' two epochs (40 ms or more) while it was stopped
        assert len(run["clocked"]) == 3
        assert all(0.02 <= t < 0.05 for t in run["clocked"]), run["clocked"]


def test_the_bare_loop_can_use_fused_adam_and_changes_the_weights(tiny_workload):
    from compiler import build_sequential

    torch.manual_seed(0)
    model = build_sequential(tiny_workload.spec)
    before = [p.detach().clone() for p in model.parameters()]
    training_section = tiny_workload.spec.training_or_default
    loops.bare_loop(model, tiny_workload.data, training_section, 2, fused=True)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    optimizer = loops.make_optimizer(model, training_section, fused=True)
    assert optimizer.defaults.get("fused") is loops.fused_supported()


def test_ratios_are_to_the_faster_bare_loop_round_by_round(tiny_workload):
    row = training.Row(tiny_workload)
    # the machine slowed down in round 1; the 2-thread loop is the faster
    for loop, first, second in (
        ("bare, fused Adam, 1 thread", 0.012, 0.024),
        ("bare, fused Adam, 2 threads", 0.010, 0.020),
        (training.NNSPEC, 0.0105, 0.021),
        ("DataLoader", 0.020, 0.040),
    ):
        row.add(loop, 0, [first, first])
        row.add(loop, 1, [second, second])
    row.reference = min(
        ["bare, fused Adam, 1 thread", "bare, fused Adam, 2 threads"], key=row.median
    )
    assert row.reference == "bare, fused Adam, 2 threads"
    text = training.table([row])
    assert "15.8 (1.050x)" in text and "30.0 (2.000x)" in text
    assert "(1.000x, ref)" in text
    verdicts = {t.name: t.passed for t in training.targets([row])}
    assert verdicts == {
        "tiny: nnspec train / fused bare (ref)": False,  # 1.05 > 1.02
        "tiny: nnspec train / DataLoader": True,  # 0.525 <= 0.75
    }


def test_a_loop_that_is_not_accepted_is_skipped_with_its_reason(tiny_workload):
    why = training.compile_accepted(tiny_workload.spec)
    fields = type(tiny_workload.spec.training_or_default).model_fields
    assert (why == "") == ("compile" in fields)


def test_the_amp_loop_runs_nnspec_train_with_amp_where_the_cpu_has_bf16(
    tiny_workload, monkeypatch
):
    import runtime.parallel.device

    asked = []
    monkeypatch.setattr(
        training, "nnspec_loop", lambda sets: lambda w, r: asked.append(sets) or [0.1]
    )
    monkeypatch.setattr(runtime.parallel.device, "cpu_has_bf16", lambda: False)
    assert "no bf16 instructions" in training._amp_loop(tiny_workload, 0)
    monkeypatch.setattr(runtime.parallel.device, "cpu_has_bf16", lambda: True)
    assert training._amp_loop(tiny_workload, 0) == [0.1]
    assert asked == [("training.amp=true",)]


def test_cli_probe_finds_no_torch_in_validate():
    from cli_latency import torch_modules_imported

    assert torch_modules_imported(["validate", "specs/digits_mlp.yaml"], env=None) == 0


def test_cli_probe_sees_torch_when_a_command_imports_it():
    from cli_latency import torch_modules_imported

    args = ["summary", "--torchsummary", "specs/digits_mlp.yaml"]
    assert torch_modules_imported(args, env=None) > 0


def test_run_rejects_an_unknown_section(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_run.parse_args(["--only", "training,speed"])
    assert exc.value.code == 2
    assert (
        "--only takes sections from training, overhead, cli, forms, scale"
        in capsys.readouterr().err
    )


def test_run_writes_results_only_for_a_full_run():
    assert bench_run.parse_args([]).output == bench_run.DEFAULT_OUTPUT
    assert bench_run.parse_args(["--quick"]).output is None
    assert bench_run.parse_args(["--only", "cli"]).output is None
    assert bench_run.parse_args(["--only", "scale,cli"]).sections == ["cli", "scale"]


def test_overhead_finds_every_piece_of_the_runtime():
    import overhead

    found = {name: ms for name, _, ms in overhead.pieces("specs/digits_mlp.yaml", 2)}
    for piece in (
        "bare epoch",
        "checkpoint payload",
        "torch.save",
        "last.pt written",
        "metrics.csv",
        "progress bar",
    ):
        assert any(name.startswith(piece) for name in found), piece
    assert found["bare epoch (the reference)"] > 0


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="this machine has CUDA: gpu.py would time it"
)
def test_gpu_script_without_cuda_says_so_and_exits_0(capsys):
    import gpu

    assert gpu.main([]) == 0
    assert capsys.readouterr().out.startswith("no CUDA device:")


def test_gpu_script_smoke_mode_runs_every_table_on_the_cpu(
    capsys, tmp_path, monkeypatch
):
    """Also the one real `nnspec train` process of these tests: clocked epoch by epoch."""
    import gpu

    runs = []
    train = nnspec_train.train

    def recorded(*args, **kwargs):
        runs.append(train(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(nnspec_train, "train", recorded)
    assert gpu.main(["--smoke", "--output", str(tmp_path / "gpu.md")]) == 0
    out = capsys.readouterr().out
    for case in (
        "bare fp32",
        "bare bf16 autocast",
        "torch.compile (eager)",
        "DataLoader",
        "nnspec train fp32",
        "bf16 autocast",
    ):
        assert case in out, case
    assert "generated / torchvision" in (tmp_path / "gpu.md").read_text()
    [run] = runs
    assert run.ok, run.error
    # smoke runs 3 epochs a case; `nnspec train` one more, as its clock starts after epoch 1
    assert len(run.epoch_times) == 3 and all(t > 0 for t in run.epoch_times)
    assert len(run.csv_seconds) == 4 and all(t > 0 for t in run.csv_seconds)
    assert run.device.startswith("cpu")


def test_a_failed_nnspec_train_is_reported_by_its_last_line(tmp_path):
    log = tmp_path / "stderr.txt"
    log.write_text(
        " 10%|#         | 1/10 [00:00<?, ?epoch/s]\r\n"
        "nnspec train: error: spec.yaml:3: training.batch_size: must be at least 1\n\n",
        encoding="utf-8",
    )
    assert nnspec_train._last_line(log).endswith("must be at least 1")
    log.write_text("", encoding="utf-8")
    assert nnspec_train._last_line(log) == "failed without a message"


def test_a_lockstep_child_that_hangs_is_killed_at_the_timeout(tmp_path):
    started = time.perf_counter()
    # at 3 s: "a", stopped after its first epoch, and "hang" killed, "b" never started
    codes = lockstep.run(_children(tmp_path, ("a", "hang", "b")), timeout=3)
    assert codes == {"a": None, "hang": None, "b": None}  # None: timed out
    assert not (tmp_path / "b.out").exists()
    assert time.perf_counter() - started < 30
    assert common.epoch_times(codes["hang"], "", "") == "failed: timed out"


def test_the_cnn_limit_script_times_every_configuration_against_the_frameworks_step(
    capsys,
):
    import cnn_limit

    from runtime.parallel.device import cpu_has_bf16

    assert cnn_limit.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split("|")[1].strip(): line.split("|")[2:4]
        for line in out.splitlines()
        if line.startswith("| ")
        and re.fullmatch(r"\d+\.\d{3}x", line.split("|")[3].strip())
    }
    expected = {
        name
        for name, c in cnn_limit.CONFIGURATIONS.items()
        if not c.autocast or cpu_has_bf16()
    }
    assert set(rows) == expected
    for name, (ms, ratio) in rows.items():
        assert float(ms) > 0 and float(ratio.strip().rstrip("x")) > 0, name
    assert rows[next(iter(cnn_limit.CONFIGURATIONS))][1].strip() == "1.000x"
    assert "best float32 step / the frameworks' step: " in out


def test_max_pool_before_relu_is_the_same_function():
    from cnn_limit import layers

    from compiler import build_sequential, load_spec

    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    outputs, grads = [], []
    for pool_first in (False, True):
        spec = load_spec(
            {"name": "Cnn", "input": [3, 32, 32], "layers": layers(pool_first)}
        )
        torch.manual_seed(0)
        model = build_sequential(spec)
        out = model(x)
        (grad,) = torch.autograd.grad(out.square().sum(), x)
        outputs.append(out)
        grads.append(grad)
    assert layers(True) != layers(False)
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(grads[0], grads[1])
