"""`nnspec sweep`: the grid, the results, best.yaml, resuming; one real sweep of 2 variants x 2 epochs."""

from __future__ import annotations

import argparse
import csv
import json
import shlex
from pathlib import Path

import pytest

from compiler import count_params, load_spec, spec_digest
from runtime.cli import sweep
from runtime.cli.main import main
from runtime.errors import UserError
from runtime.sweep.complexity_plot import Point, write_complexity_plot
from runtime.sweep.overrides import load_spec_with_overrides
from runtime.sweep.results import best_index, format_table, results_csv
from runtime.sweep.run import (
    expand_grid,
    parse_vary,
    planned_action,
    run_sweep,
    split_values,
    variant_specs,
)

TINY = """\
name: Tiny
input: [1, 8, 8]
layers:
  - flatten
  - linear: 8
  - relu
  - dropout: 0.2
  - {type: linear, out_features: 10, name: head}
training:
  data: {dataset: digits, val_fraction: 0.2}
  epochs: 2
  batch_size: 128
  early_stopping: {monitor: val_loss, patience: 3}
  device: cpu
"""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


# -- the grid ---------------------------------------------------------------------------------


def test_split_values_keeps_lists_and_quotes_whole():
    assert split_values("8, 32,128") == ["8", "32", "128"]
    assert split_values("[3, 3],[5, 5]") == ["[3, 3]", "[5, 5]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_parse_vary_reads_values_like_set():
    axis = parse_vary("training.optimizer.lr=1e-3,0.01")
    assert axis.path == "training.optimizer.lr" and axis.values == (0.001, 0.01)
    assert parse_vary("layers.fc1.out_features=8,32").values == (8, 32)


@pytest.mark.parametrize(
    "text,message",
    [
        ("layers.fc1.out_features", "expected PATH=V1,V2,..."),
        ("=1,2", "expected PATH=V1,V2,..."),
        ("layers.fc1.out_features=8,,32", "an empty value"),
        ("layers..out_features=8", "empty step"),
        ("training.optimizer.lr=0.1,1e-1", "1e-1 is the same value as 0.1"),
    ],
)
def test_parse_vary_rejects_bad_syntax(text, message):
    with pytest.raises(UserError, match=message):
        parse_vary(text)


def test_grid_is_every_combination_first_axis_slowest():
    variants = expand_grid(
        [
            parse_vary("layers.fc1.out_features=8,32"),
            parse_vary("layers.drop1.p=0.2,0.5"),
        ]
    )
    assert [v.id for v in variants] == [
        "fc1.out_features=8,drop1.p=0.2",
        "fc1.out_features=8,drop1.p=0.5",
        "fc1.out_features=32,drop1.p=0.2",
        "fc1.out_features=32,drop1.p=0.5",
    ]
    assert variants[3].assignments == (
        "layers.fc1.out_features=32",
        "layers.drop1.p=0.5",
    )
    assert variants[3].values == {"layers.fc1.out_features": 32, "layers.drop1.p": 0.5}
    assert variants[1].label == "fc1.out_features=8, drop1.p=0.5"


def test_grid_ids_are_safe_folder_names():
    (variant,) = expand_grid([parse_vary("layers.pool1.kernel_size=[2, 2]")])
    assert variant.id == "pool1.kernel_size=2x2"
    long = expand_grid([parse_vary("description=" + "x" * 300)])[0].id
    assert len(long) <= 100 and "/" not in long


def test_the_same_path_twice_is_an_error():
    with pytest.raises(UserError, match="given twice"):
        expand_grid(
            [
                parse_vary("layers.fc1.out_features=8"),
                parse_vary("layers.fc1.out_features=16"),
            ]
        )


def test_variant_specs_apply_set_then_vary_and_name_invalid_variants(tiny):
    variants = expand_grid([parse_vary("layers.fc1.out_features=8,64")])
    specs = variant_specs(str(tiny), ["training.epochs=5"], variants)
    assert [count_params(s) for s in specs] == [64 * 8 + 8 + 90, 64 * 64 + 64 + 650]
    assert all(s.training.epochs == 5 for s in specs)
    with pytest.raises(
        UserError, match=r"variant fc1.out_features=0 makes an invalid spec"
    ) as caught:
        variant_specs(
            str(tiny), [], expand_grid([parse_vary("layers.fc1.out_features=8,0")])
        )
    assert "layers[1].linear.out_features" in str(caught.value)
    assert "(set by --vary layers.fc1.out_features=0)" in str(caught.value)
    with pytest.raises(
        UserError,
        match=r"variant fc9.out_features=8: --vary layers.fc9.out_features=8: no layer is named 'fc9'",
    ):
        variant_specs(
            str(tiny), [], expand_grid([parse_vary("layers.fc9.out_features=8")])
        )
    with pytest.raises(
        UserError, match=r"variant optimizer.lrr=0.1 makes an invalid spec"
    ):
        variant_specs(
            str(tiny), [], expand_grid([parse_vary("training.optimizer.lrr=0.1")])
        )


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--vary", "layers.fc1.out_features"], "expected PATH=V1,V2"),
        (
            ["--vary", "layers.fc1.out_features=8,-1"],
            "variant fc1.out_features=-1 makes an invalid spec",
        ),
        ([], "nothing to vary"),
    ],
)
def test_cli_errors_exit_2_without_training(tiny, tmp_path, capsys, argv, message):
    assert main(["sweep", str(tiny), "--out", str(tmp_path / "sw"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "sw").exists()


# -- resuming, with a stand-in for train_spec ------------------------------------------------


class FakeTrain:
    """Writes what train_spec leaves in a run folder; errors fall with the width (fc1)."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls: list[tuple[str, bool]] = []
        self.interrupt_at = interrupt_at

    def __call__(self, spec, *, out_dir, resume, force, **_):
        out_dir = Path(out_dir)
        self.calls.append((out_dir.name, resume))
        if not resume and not force:
            assert not (
                out_dir / "summary.json"
            ).exists(), "would refuse: the folder holds a run"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "last.pt").write_bytes(b"checkpoint")
        width = spec.layers[1].out_features
        interrupted = (
            self.interrupt_at is not None and len(self.calls) == self.interrupt_at
        )
        row = {
            "epoch": 2,
            "train_loss": 1 / width,
            "val_loss": 1 / width + 0.1,
            "train_accuracy": 1 - 1 / width,
            "val_accuracy": 1 - 2 / width,
            "seconds": 0.5,
        }
        (out_dir / "metrics.csv").write_text("epoch,seconds\n1,0.25\n2,0.5\n")
        summary = {
            "spec_sha256": spec_digest(spec),
            "best_epoch": 2,
            "epochs_run": 2,
            "stop_reason": "interrupted" if interrupted else "max_epochs",
            "best_metrics": row,
            "seconds": 9.0,
            "files": {"metrics.csv": str(out_dir / "metrics.csv")},
        }
        (out_dir / "summary.json").write_text(json.dumps(summary))
        return summary


def fake_sweep(tiny, out, train, values="8,16,32", **options):
    return run_sweep(
        str(tiny),
        [f"layers.fc1.out_features={values}"],
        [],
        out,
        quiet=True,
        train=train,
        **options,
    )


def test_rerun_skips_finished_variants_and_resumes_a_half_finished_one(tiny, tmp_path):
    out = tmp_path / "sw"
    train = FakeTrain()
    fake_sweep(tiny, out, train)
    assert train.calls == [
        ("fc1.out_features=8", False),
        ("fc1.out_features=16", False),
        ("fc1.out_features=32", False),
    ]
    (
        out / "runs" / "fc1.out_features=16" / "summary.json"
    ).unlink()  # killed after last.pt
    (out / "runs" / "fc1.out_features=32" / "last.pt").unlink()
    (
        out / "runs" / "fc1.out_features=32" / "summary.json"
    ).unlink()  # killed in epoch 1
    again = FakeTrain()
    outcome = fake_sweep(tiny, out, again)
    assert again.calls == [
        ("fc1.out_features=16", True),
        ("fc1.out_features=32", False),
    ]
    assert [run.action for run in outcome.runs] == ["skipped", "resumed", "trained"]
    assert [row["seconds"] for row in outcome.rows] == [
        0.75,
        0.75,
        0.75,
    ]  # from metrics.csv


def test_interrupted_sweep_keeps_finished_rows_and_resumes(tiny, tmp_path):
    out = tmp_path / "sw"
    outcome = fake_sweep(tiny, out, FakeTrain(interrupt_at=2))
    assert not outcome.finished
    assert [row["variant"] for row in outcome.rows] == ["fc1.out_features=8"]
    assert (out / "results.csv").is_file() and not (out / "best.yaml").exists()
    again = FakeTrain()
    outcome = fake_sweep(tiny, out, again)
    assert outcome.finished
    assert again.calls == [
        ("fc1.out_features=16", True),
        ("fc1.out_features=32", False),
    ]
    assert outcome.rows[outcome.best]["variant"] == "fc1.out_features=32"


def test_a_run_of_another_spec_is_not_replaced_without_force(tiny, tmp_path, capsys):
    out = tmp_path / "sw"
    fake_sweep(tiny, out, FakeTrain(), values="8")
    run_dir = out / "runs" / "fc1.out_features=8"
    changed = load_spec_with_lr(tiny, 0.5)
    with pytest.raises(UserError, match="holds a run of another spec"):
        planned_action(run_dir, changed, force=False)
    assert planned_action(run_dir, changed, force=True) == "train"
    assert planned_action(run_dir, load_spec_with_lr(tiny, 0.001), force=True) == "skip"
    with pytest.raises(UserError, match="another spec"):
        run_sweep(
            str(tiny),
            ["layers.fc1.out_features=8"],
            ["training.optimizer.lr=0.5"],
            out,
            quiet=True,
            train=FakeTrain(),
        )
    forced = FakeTrain()
    run_sweep(
        str(tiny),
        ["layers.fc1.out_features=8"],
        ["training.optimizer.lr=0.5"],
        out,
        quiet=True,
        train=forced,
        force=True,
    )
    assert forced.calls == [("fc1.out_features=8", False)]


def load_spec_with_lr(tiny, lr):
    return load_spec_with_overrides(
        tiny, [f"training.optimizer.lr={lr}", "layers.fc1.out_features=8"]
    )


# -- results ----------------------------------------------------------------------------------


def rows_of(*errors, task_key="val_accuracy"):
    return [
        {
            "variant": f"v{i}",
            "params": 10 * (i + 1),
            "val_loss": 1.0,
            task_key: 1 - e,
            "train_accuracy": 1.0,
            "train_loss": 0.1,
            "best_epoch": 1,
            "epochs_run": 2,
            "seconds": 1.0,
            "x": i,
        }
        for i, e in enumerate(errors)
    ]


def test_best_is_the_lowest_validation_error_then_fewer_parameters():
    assert best_index(rows_of(0.3, 0.1, 0.2), "classification") == 1
    assert (
        best_index(rows_of(0.1, 0.1), "classification") == 0
    )  # tie: the smaller model
    regression = [dict(r, val_loss=v) for r, v in zip(rows_of(0, 0), [0.5, 0.25])]
    assert best_index(regression, "regression") == 1
    assert (
        best_index([dict(r, val_accuracy=None) for r in rows_of(0.1)], "classification")
        is None
    )


def test_results_csv_and_table():
    rows = rows_of(0.3, 0.1)
    text = results_csv(rows, ["x"])
    assert text.splitlines()[0] == (
        "variant,x,params,best_epoch,epochs_run,stop_reason,train_loss,val_loss,"
        "train_accuracy,val_accuracy,seconds"
    )
    table = format_table(rows, ["x"], "classification", 1).splitlines()
    assert table[0].split() == [
        "x",
        "params",
        "best_epoch",
        "epochs",
        "train_err",
        "val_err",
        "seconds",
    ]
    assert (
        table[2].startswith("*")
        and "0.1000" in table[2]
        and not table[1].startswith("*")
    )


@pytest.mark.parametrize(
    "params", [[100, 1000, 10000], [500, 500, 500]], ids=["by-size", "same-size"]
)
def test_complexity_plot_is_a_png(tmp_path, params):
    points = [
        Point(f"v{i}", p, 0.3 / (i + 1), 0.2 + 0.05 * (i - 1) ** 2)
        for i, p in enumerate(params)
    ]
    write_complexity_plot(tmp_path / "c.png", points, 1, title="t", error_label="error")
    assert (tmp_path / "c.png").read_bytes().startswith(PNG)


# -- one real sweep: 2 variants x 2 epochs on digits ------------------------------------------


def test_real_sweep_results_best_yaml_and_resume(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        str(tiny),
        "--vary",
        "layers.fc1.out_features=4,32",
        "--out",
        str(out),
        "--quiet",
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "fc1.out_features" in table and "* lowest validation error" in table

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "variant",
        "layers.fc1.out_features",
        "params",
        "best_epoch",
        "epochs_run",
        "stop_reason",
        "train_loss",
        "val_loss",
        "train_accuracy",
        "val_accuracy",
        "seconds",
    ]
    assert [r["layers.fc1.out_features"] for r in rows] == ["4", "32"]
    variants = {int(r["layers.fc1.out_features"]): r for r in rows}
    for width, row in variants.items():
        spec = load_spec_with_overrides(tiny, [f"layers.fc1.out_features={width}"])
        assert int(row["params"]) == count_params(spec)
        summary = json.loads(
            (out / "runs" / row["variant"] / "summary.json").read_text()
        )
        assert summary["params"] == count_params(spec)
        assert int(row["epochs_run"]) == 2 and 1 <= int(row["best_epoch"]) <= 2
        metrics = list(
            csv.DictReader(open(out / "runs" / row["variant"] / "metrics.csv"))
        )
        best = metrics[int(row["best_epoch"]) - 1]
        assert float(row["val_accuracy"]) == pytest.approx(float(best["val_accuracy"]))
        assert float(row["train_loss"]) == pytest.approx(float(best["train_loss"]))
    assert (out / "complexity.png").read_bytes().startswith(PNG)

    winner = min(
        rows, key=lambda r: (1 - float(r["val_accuracy"]), float(r["val_loss"]))
    )
    best = load_spec(out / "best.yaml")
    expected = load_spec_with_overrides(
        tiny, [f"layers.fc1.out_features={winner['layers.fc1.out_features']}"]
    )
    assert spec_digest(best) == spec_digest(expected)

    # interrupted after variant 32 wrote last.pt, before summary.json: only that one runs again
    import runtime.training.train

    calls = []
    real = runtime.training.train.train_spec

    def counting(spec, **kwargs):
        calls.append((Path(kwargs["out_dir"]).name, kwargs["resume"]))
        return real(spec, **kwargs)

    monkeypatch.setattr(runtime.training.train, "train_spec", counting)
    kept = out / "runs" / "fc1.out_features=4" / "summary.json"
    kept_mtime = kept.stat().st_mtime_ns
    (out / "runs" / "fc1.out_features=32" / "summary.json").unlink()
    assert main(argv) == 0
    assert calls == [("fc1.out_features=32", True)]
    assert kept.stat().st_mtime_ns == kept_mtime
    resumed = json.loads(
        (out / "runs" / "fc1.out_features=32" / "summary.json").read_text()
    )
    assert resumed["resumed_from_epoch"] == 2
    with open(out / "results.csv", newline="") as f:
        assert list(csv.DictReader(f)) == rows


def test_cli_interrupted_sweep_exits_130_and_says_how_to_continue(
    tiny, tmp_path, capsys, monkeypatch
):
    import runtime.training.train

    monkeypatch.setattr(runtime.training.train, "train_spec", FakeTrain(interrupt_at=2))
    out = tmp_path / "sw"
    argv = [
        "sweep",
        str(tiny),
        "--vary",
        "layers.fc1.out_features=8,16,32",
        "--set",
        "training.epochs=3",
        "--out",
        str(out),
    ]
    assert main(argv) == 130
    captured = capsys.readouterr()
    assert (
        f"continue with: nnspec sweep {tiny} --vary layers.fc1.out_features=8,16,32 --set "
        f"training.epochs=3 --out {out}" in captured.err
    )
    assert "[2/3] fc1.out_features=16: training in" in captured.err
    table = (
        captured.out.strip().splitlines()
    )  # the finished variants only: header, one row
    assert (
        len(table) == 3
        and table[1].startswith("*  8")
        and table[2] == "* lowest validation error"
    )
    monkeypatch.setattr(runtime.training.train, "train_spec", FakeTrain())
    assert main(argv) == 0
    assert (
        "[1/3] fc1.out_features=8: finished before, skipped" in capsys.readouterr().err
    )


def test_cli_bad_spec_file_or_set_is_not_blamed_on_a_variant(tiny, tmp_path, capsys):
    vary = ["--vary", "layers.fc1.out_features=8,16", "--out", str(tmp_path / "sw")]
    assert main(["sweep", str(tmp_path / "missing.yaml"), *vary]) == 2
    assert f"{tmp_path / 'missing.yaml'}: no such file" in capsys.readouterr().err
    assert main(["sweep", str(tiny), "--set", "training.epochs=0", *vary]) == 2
    err = capsys.readouterr().err
    assert (
        "training.epochs" in err
        and "(set by --set training.epochs=0)" in err
        and "variant" not in err
    )


def test_docs_examples_are_valid_sweeps_and_the_errors_are_real():
    """Every `nnspec sweep` command in docs/sweep.md parses and makes valid variants, unless the
    doc shows it failing, and then it fails with the message shown."""
    import shlex

    from runtime.cli.main import build_parser

    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "sweep.md").read_text().replace("\\\n", " ")
    assert (root / "docs" / "sweep_digits_mlp.png").read_bytes().startswith(PNG)
    assert "](sweep_digits_mlp.png)" in text
    lines = text.splitlines()
    checked = 0
    for number, line in enumerate(lines):
        command = line.removeprefix("$ ").strip()
        if not command.startswith("nnspec sweep "):
            continue
        args = build_parser().parse_args(shlex.split(command)[1:])
        following = lines[number + 1] if number + 1 < len(lines) else ""
        try:
            variants = expand_grid([parse_vary(v) for v in args.vary])
            variant_specs(str(root / args.spec), args.assignments, variants)
        except UserError as exc:
            assert following.startswith("nnspec sweep: error: "), f"{command}: {exc}"
            assert str(exc).splitlines()[0] == following.removeprefix(
                "nnspec sweep: error: "
            )
        else:
            assert not following.startswith("nnspec sweep: error"), command
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("name", ["mlp.yaml", "-mlp.yaml"])
def test_the_command_that_continues_a_sweep_parses_back(name):
    # a folder or a spec named with a leading "-" stays a value in "continue with: ..."
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    args = parser.parse_args(
        ["--vary", "layers[0].linear=16,32", "--out=-grid", "--", name]
    )
    words = shlex.split(sweep.again(args, Path("-grid")))
    assert words[:2] == ["nnspec", "sweep"]
    assert vars(parser.parse_args(words[2:])) == vars(args)
