"""The benchmarks' own logic (never their timings): loops that train, specs that load, sane
statistics and verdicts, the torch-import probe, and a GPU script that is safe without a GPU.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import common  # noqa: E402
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
def tiny_workload():
    from compiler import load_spec
    from runtime.data.load import DataSplits

    spec = load_spec(
        {
            **training.SYNTHETIC_SPEC,
            "input": [12],
            "layers": [{"linear": 16}, "relu", {"linear": 3}],
        }
    )
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(200, 12, generator=generator)
    y = (x[:, 0] * 3).long().clamp(max=2)
    data = DataSplits(x[:150], y[:150], x[150:], y[150:], None, None, 3, None, "tiny")
    return spec, data


@pytest.mark.parametrize("name", ["bare", "DataLoader", "nnspec", "fit only"])
def test_every_loop_trains_and_times_each_epoch(tiny_workload, name):
    spec, data = tiny_workload
    chosen = training.loops(spec, include_variants=True)
    torch.manual_seed(0)
    from compiler import build_sequential

    model = build_sequential(spec)
    before = [p.detach().clone() for p in model.parameters()]
    times = chosen[name](model, data, spec.training_or_default, 3)
    assert len(times) == 3
    assert all(t > 0 for t in times)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_table_reports_ratios_to_the_bare_loop(tiny_workload):
    spec, data = tiny_workload
    row = training.Row(
        training.Workload("specs/digits_tiny", spec, data, 1, 2),
        {
            "bare": [
                [0.010, 0.010],
                [0.020, 0.020],
            ],  # the machine slowed down in round 2
            "nnspec": [[0.0105, 0.0105], [0.021, 0.021]],
            "DataLoader": [[0.020, 0.020], [0.040, 0.040]],
        },
    )
    text = training.table([row])
    assert (
        "15.8 (1.05x)" in text and "30.0 (2.00x)" in text
    )  # overall median, per-round ratio
    verdicts = {t.name: t.passed for t in training.targets([row])}
    assert verdicts == {
        "digits_tiny: nnspec / bare": True,
        "digits_tiny: nnspec / DataLoader": True,
    }


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
def test_gpu_script_without_cuda_says_so_and_exits_0():
    done = subprocess.run(
        [sys.executable, "benchmarks/gpu.py"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("no CUDA device:")
