"""`nnspec export`: ONNX, torch.export and safetensors, checked against torch; users' files are kept.

Every spec in specs/ and an example of every layer type is exported to torch.export and to ONNX
(one trace serves both) from the model built from the spec: export is of the architecture, and
the weights a training run would give change nothing in it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

from compiler import build_module, load_spec, model_tree, spec_data, spec_digest
from compiler.costs import walk
from compiler.tree import Leaf
from runtime.cli.main import main
from runtime.storage.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    write_checkpoint_atomically,
)
from runtime.storage.export import (
    CHECK_BATCH,
    export_program,
    graph_module_clashes,
    write_onnx,
    write_torch_export,
)
from runtime.training.evaluation import evaluate_checkpoint
from tests.layer_examples import EXAMPLES
from tests.spec_folder import SPEC_FILES

onnx = pytest.importorskip(
    "onnx", reason="the export extra: pip install 'nnspec[export]'"
)
onnxruntime = pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def checkpoint(
    path: Path, spec_path: Path = ROOT / "specs" / "digits_cnn.yaml", epoch: int = 3
) -> Path:
    """Write an nnspec checkpoint of a spec's freshly built model (seed 0) to `path`."""
    spec = load_spec(spec_path)
    torch.manual_seed(0)
    model = build_module(spec)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": spec_data(spec),
        "spec_sha256": spec_digest(spec),
        "model": model.state_dict(),
        "epoch": epoch,
        "task": "classification",
    }
    write_checkpoint_atomically(path, payload)
    return path


def nnspec(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# Exporting costs about a second per 50 layers on two cores (tracing, torch's decompositions and
# onnxscript's translation; the tensors' sizes hardly matter): densenet121 (369 layers) alone takes
# 20-25 s, resnet50 and mobilenet_v2 about 10. Specs of more than SLOW_LAYERS layers export with
# NNSPEC_SLOW_TESTS=1; the others and the examples of every layer type (tests/layer_examples.py),
# whose layer types and wiring the big ones use, always.
SLOW_LAYERS = 100
RUN_SLOW = bool(os.environ.get("NNSPEC_SLOW_TESTS"))


def layer_count(path: Path) -> int:
    return sum(
        isinstance(node, Leaf) for _, node in walk(model_tree(load_spec(path)).body)
    )


CASES = [
    *(
        pytest.param(
            p,
            id=p.stem,
            marks=pytest.mark.skipif(
                not RUN_SLOW and layer_count(p) > SLOW_LAYERS,
                reason=f"over {SLOW_LAYERS} layers: NNSPEC_SLOW_TESTS=1 exports it",
            ),
        )
        for p in SPEC_FILES
    ),
    *(pytest.param(spec, id=f"example-{name}") for name, spec in EXAMPLES.items()),
]


@pytest.mark.parametrize("case", CASES)
def test_exports_to_torch_export_and_onnx(case, tmp_path):
    spec = load_spec(case)
    torch.manual_seed(0)
    model = build_module(spec).eval()
    traced = export_program(model, spec)  # one trace for both, as the CLI makes one
    # each writer runs its file on a batch of CHECK_BATCH, not the traced size: the batch is dynamic
    pt2 = write_torch_export(traced, model, spec, tmp_path / "model.pt2")
    assert not pt2.mismatch, pt2.lines
    assert pt2.lines[-1].startswith(
        f"torch.export.load on a batch of {CHECK_BATCH}: max abs difference"
    )
    report = write_onnx(traced, model, spec, tmp_path / "model.onnx")
    assert not report.mismatch, report.lines
    assert report.lines[-2] == "onnx.checker: ok"
    assert report.lines[-1].startswith(
        f"onnxruntime {onnxruntime.__version__} on a batch of {CHECK_BATCH}: max abs"
    )
    graph = onnx.load(str(tmp_path / "model.onnx"), load_external_data=False).graph
    assert graph.input[0].name == "input" and graph.output[0].name == "output"
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.onnx",
        "model.pt2",
    ]  # no temporary left


def test_a_layer_named_like_a_graph_module_attribute_exports_under_model(tmp_path):
    spec = load_spec(
        {
            "name": "M",
            "input": [4],
            "layers": [
                {"linear": {"out_features": 3, "name": "code"}},
                {"linear": {"out_features": 2, "name": "graph"}},
            ],
        }
    )
    model = build_module(spec).eval()
    assert graph_module_clashes(model) == ["code", "graph"]
    traced = export_program(model, spec)
    report = write_torch_export(traced, model, spec, tmp_path / "m.pt2")
    assert not report.mismatch
    assert (
        "the exported model holds the model as `model`: its weights are named model.code.weight"
        in report.lines[1]
    )
    assert set(torch.export.load(tmp_path / "m.pt2").state_dict) == {
        "model.code.weight",
        "model.code.bias",
        "model.graph.weight",
        "model.graph.bias",
    }


def test_a_layer_onnx_cannot_translate_is_one_clear_message_and_no_file(
    tmp_path, capsys
):
    spec_path = tmp_path / "pool.yaml"
    spec_path.write_text(
        "name: Pool\ninput: [2, 8, 8]\nlayers: [adaptivemaxpool2d: [2, 3], flatten, linear: 2]\n"
    )
    best = checkpoint(tmp_path / "best.pt", spec_path)
    code, out, err = nnspec(["export", best, "--format", "onnx"], capsys)
    assert (code, out) == (2, "")
    assert err.strip() == (
        "nnspec export: error: torch.onnx.export cannot convert Pool: torch.onnx has no ONNX "
        "translation of aten.adaptive_max_pool2d; --format torch-export or safetensors keeps the model whole"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "pool.yaml"]
    assert nnspec(["export", best, "--format", "torch-export"], capsys)[0] == 0


def test_cli_writes_each_format_beside_the_checkpoint(tmp_path, capsys):
    best = checkpoint(tmp_path / "best.pt")
    code, out, err = nnspec(["export", best, "--format", "onnx"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"wrote {tmp_path / 'best.onnx'} (ONNX opset ")
    assert lines[1] == "onnx.checker: ok"
    assert lines[2].startswith(
        f"onnxruntime {onnxruntime.__version__} on a batch of 3: max abs difference from torch "
    )
    code, out, _ = nnspec(["export", best, "--format", "torch-export"], capsys)
    assert code == 0 and out.startswith(
        f"wrote {tmp_path / 'best.pt2'} (torch.export, "
    )
    loaded = torch.export.load(tmp_path / "best.pt2").module()
    model = build_module(load_spec(ROOT / "specs" / "digits_cnn.yaml"))
    model.load_state_dict(torch.load(best, weights_only=True)["model"])
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x), atol=1e-6)
    code, out, _ = nnspec(["export", best, "--format", "safetensors"], capsys)
    size = (tmp_path / "best.safetensors").stat().st_size / 1024
    assert code == 0 and out.splitlines() == [
        f"wrote {tmp_path / 'best.safetensors'} (safetensors, {size:.1f} KiB: 11 tensors, the spec in its metadata)",
        "read back: the same tensors and spec",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "best.onnx",
        "best.pt",
        "best.pt2",
        "best.safetensors",
    ]


def test_an_existing_file_is_never_replaced_without_force_and_never_the_checkpoint(
    tmp_path, capsys
):
    best = checkpoint(tmp_path / "best.pt")
    mine = tmp_path / "best.pt2"
    mine.write_bytes(b"the user's own file")
    code, out, err = nnspec(["export", best, "--format", "torch-export"], capsys)
    assert (code, out) == (2, "")
    assert (
        err.strip()
        == f"nnspec export: error: {mine} exists; pass --force to replace it, or --out another file"
    )
    assert mine.read_bytes() == b"the user's own file"
    code, _, err = nnspec(
        ["export", best, "--format", "torch-export", "--force"], capsys
    )
    assert code == 0 and mine.read_bytes() != b"the user's own file"
    before = best.read_bytes()
    code, _, err = nnspec(
        ["export", best, "--format", "safetensors", "--out", best, "--force"], capsys
    )
    assert code == 2 and "is the checkpoint itself; give another file" in err
    assert best.read_bytes() == before
    code, _, err = nnspec(
        ["export", best, "--format", "onnx", "--out", tmp_path / "no" / "m.onnx"],
        capsys,
    )
    assert code == 2 and f"the folder {tmp_path / 'no'} does not exist" in err


def test_evaluate_reads_the_safetensors_file_alone(tmp_path, capsys):
    best = checkpoint(tmp_path / "best.pt")
    assert (
        nnspec(
            [
                "export",
                best,
                "--format",
                "safetensors",
                "--out",
                tmp_path / "w.safetensors",
            ],
            capsys,
        )[0]
        == 0
    )
    alone = tmp_path / "moved"
    alone.mkdir()
    (tmp_path / "w.safetensors").rename(alone / "w.safetensors")
    best.unlink()  # nothing left but the safetensors file
    result = evaluate_checkpoint(alone / "w.safetensors", "val", "cpu")
    reference = evaluate_checkpoint(checkpoint(tmp_path / "again.pt"), "val", "cpu")
    assert result["epoch"] == 3
    assert result["loss"] == pytest.approx(reference["loss"], rel=1e-6)
    assert result["confusion"] == reference["confusion"]
    # and it exports on, to ONNX, as a checkpoint would
    code, out, err = nnspec(
        ["export", alone / "w.safetensors", "--format", "torch-export"], capsys
    )
    assert code == 0, err
    assert (alone / "w.pt2").is_file()


def test_files_that_are_not_nnspec_weights_are_refused_with_one_line(tmp_path, capsys):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    code, out, err = nnspec(
        ["export", foreign, "--format", "onnx", "--out", tmp_path / "f.onnx"], capsys
    )
    assert code == 2 and out == ""
    assert (
        "is a safetensors file, but not one nnspec wrote (no spec in its metadata)"
        in err
    )
    truncated = tmp_path / "cut.safetensors"
    good = checkpoint(tmp_path / "best.pt")
    nnspec(
        [
            "export",
            good,
            "--format",
            "safetensors",
            "--out",
            tmp_path / "whole.safetensors",
        ],
        capsys,
    )
    truncated.write_bytes((tmp_path / "whole.safetensors").read_bytes()[:5000])
    code, _, err = nnspec(["evaluate", truncated], capsys)
    assert (
        code == 2
        and "is not a loadable safetensors file" in err
        and "Traceback" not in err
    )


class Boom:
    def __reduce__(self):
        return (print, ("CODE RAN",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    hostile = tmp_path / "hostile.pt"
    torch.save(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "model": Boom()}, hostile
    )
    code, out, err = nnspec(["export", hostile, "--format", "torch-export"], capsys)
    assert code == 2 and "CODE RAN" not in out
    assert "refused for safety" in err


def test_without_the_export_extra_onnx_says_what_to_install(
    tmp_path, capsys, monkeypatch
):
    best = checkpoint(tmp_path / "best.pt")
    # in-process, as onnxruntime's absence below: a None in sys.modules fails every import
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = nnspec(["export", best, "--format", "onnx"], capsys)
    assert code == 2
    assert err.strip() == (
        "nnspec export: error: --format onnx needs the packages onnx and onnxscript (onnx is not "
        "installed): pip install 'nnspec[export]'"
    )
    assert not (tmp_path / "best.onnx").exists()


def test_without_onnxruntime_the_file_is_checked_but_not_run(
    tmp_path, capsys, monkeypatch
):
    best = checkpoint(tmp_path / "best.pt")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    code, out, _ = nnspec(["export", best, "--format", "onnx"], capsys)
    assert code == 0
    assert out.splitlines()[1:] == [
        "onnx.checker: ok",
        "onnxruntime is not installed: the model was not run (pip install 'nnspec[export]')",
    ]


def test_outputs_that_differ_from_torch_exit_1_and_say_so(
    tmp_path, capsys, monkeypatch
):
    import runtime.storage.export as export

    best = checkpoint(tmp_path / "best.pt")
    real = export._reference

    def off_by_one(model, spec):
        x, expected = real(model, spec)
        return x, expected + 1.0

    monkeypatch.setattr(export, "_reference", off_by_one)
    code, out, _ = nnspec(["export", best, "--format", "torch-export"], capsys)
    assert code == 1
    assert "max abs difference from torch 1.0e+00, more than the tolerance" in out
    assert out.splitlines()[-1].endswith(
        "best.pt2 is kept for a look, do not deploy it"
    )
