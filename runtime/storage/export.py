"""Export a checkpoint's model: ONNX, torch.export (.pt2), or safetensors weights with the spec.

ONNX and .pt2 are made from one `torch.export` of the model in eval mode with a dynamic batch
dimension, then checked: the ONNX file with onnx.checker and, when onnxruntime is installed, run
on a batch other than the one traced and compared with torch; the .pt2 loaded back and run the
same way. Every file is written beside its final name under a temporary name and moved into place
only when whole and checked, so an existing file is never left half written.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from runtime.data.inputs import sample_batch
from runtime.errors import UserError
from runtime.storage.atomic import new_file_mode, write_bytes_atomically
from runtime.storage.checkpoint import read_weights, safetensors_bytes

FORMATS = {"onnx": ".onnx", "torch-export": ".pt2", "safetensors": ".safetensors"}
INSTALL_HINT = "pip install 'nnspec[export]'"
TRACE_BATCH = (
    2  # the batch the model is traced with (torch.export specializes sizes 0 and 1)
)
CHECK_BATCH = 3  # the batch the exported model is checked on: not the traced one


@dataclass
class ExportReport:
    """What an export wrote and how it was checked."""

    path: Path
    lines: list[str] = field(default_factory=list)
    mismatch: bool = (
        False  # the exported model's outputs differ from torch's beyond tolerance
    )


def default_output(checkpoint: Path, fmt: str) -> Path:
    """Return the file an export writes when --out is not given: beside the checkpoint."""
    return checkpoint.with_suffix(FORMATS[fmt])


def check_output(out: Path, checkpoint: Path, force: bool) -> None:
    """Raise UserError when `out` would replace the checkpoint, or an existing file without --force."""
    if out.exists() and out.resolve() == checkpoint.resolve():
        raise UserError(f"--out {out} is the checkpoint itself; give another file")
    if out.is_dir():
        raise UserError(
            f"--out {out} is a folder; give a file name, e.g. {out / checkpoint.with_suffix('').name}"
        )
    if out.exists() and not force:
        raise UserError(
            f"{out} exists; pass --force to replace it, or --out another file"
        )
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: the folder {out.parent} does not exist")


def example_input(spec: Any, batch: int, seed: int = 0) -> "torch.Tensor":
    """Return a reproducible batch the model accepts (float values, or valid ids for int64 inputs)."""

    return sample_batch(spec, batch, generator=torch.Generator().manual_seed(seed))


def _holder(model: "torch.nn.Module") -> "torch.nn.Module":
    """Return a module that holds `model` as its one child `model` (no top-level name clashes)."""

    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)

    return Holder()


def graph_module_clashes(model: torch.nn.Module) -> list[str]:
    """Return the top-level child names that torch.export cannot keep at the top.

    The module torch.export rebuilds (`ExportedProgram.module()`, and the ONNX exporter's
    decompositions) is a torch.fx.GraphModule, whose own attributes (`code`, `graph`, ...) a
    child of that name would shadow: torch then fails.
    """

    own = set(dir(torch.fx.GraphModule)) - set(dir(torch.nn.Module))
    return [name for name, _ in model.named_children() if name in own]


@dataclass
class Traced:
    """A torch.export of a model, and what a reader of the exported file should know."""

    program: "torch.export.ExportedProgram"
    notes: list[str] = field(default_factory=list)


def export_program(model: torch.nn.Module, spec: Any) -> Traced:
    """Return the torch.export of a model in eval mode, its batch dimension dynamic."""

    model.eval()
    notes = []
    clashes = graph_module_clashes(model)
    if clashes:
        names = ", ".join(clashes)
        notes.append(
            f"the layer name {names} is also an attribute of torch.fx.GraphModule, so the exported "
            f"model holds the model as `model`: its weights are named model.{clashes[0]}.weight, ..."
        )
        model = _holder(model)
    batch = torch.export.Dim("batch")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.export(
                model, (example_input(spec, TRACE_BATCH),), dynamic_shapes=({0: batch},)
            )
    except (
        Exception
    ) as exc:  # torch raises many kinds; a model nnspec built should never get here
        raise UserError(
            f"torch.export could not trace {spec.name}: {_first_line(exc)}"
        ) from None
    return Traced(program, notes)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
ONNX_ALTERNATIVE = "--format torch-export or safetensors keeps the model whole"


def _first_line(exc: BaseException) -> str:
    text = _ANSI.sub("", str(exc)).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _onnx_reason(exc: BaseException) -> str:
    """Return the innermost cause of a torch.onnx failure: `no ONNX function for aten.X`."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = _first_line(exc)
    missing = re.search(r"No ONNX function found for <OpOverload\(op='([\w.]+)'", text)
    if missing:
        return f"torch.onnx has no ONNX translation of {missing.group(1)}"
    return text


def _compare(
    expected: "torch.Tensor", got: Any, what: str, report: ExportReport
) -> None:

    got = torch.as_tensor(got, dtype=expected.dtype)
    if got.shape != expected.shape:
        report.mismatch = True
        report.lines.append(
            f"{what}: output shape {list(got.shape)}, torch gives {list(expected.shape)}"
        )
        return
    difference = float((got - expected).abs().max()) if expected.numel() else 0.0
    tolerance = 1e-4 + 1e-3 * float(expected.abs().max()) if expected.numel() else 0.0
    verdict = (
        "" if difference <= tolerance else f", more than the tolerance {tolerance:.1e}"
    )
    report.mismatch |= bool(verdict)
    report.lines.append(
        f"{what} on a batch of {CHECK_BATCH}: max abs difference from torch {difference:.1e}{verdict}"
    )


def _reference(
    model: "torch.nn.Module", spec: Any
) -> tuple["torch.Tensor", "torch.Tensor"]:

    x = example_input(spec, CHECK_BATCH, seed=1)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # torch's notes on kernels it picks (LSTM projections)
        return x, model.eval()(x)


class _Staging:
    """A temporary folder beside the target: files are written there, then moved into place."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.folder = Path(
            tempfile.mkdtemp(
                dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
            )
        )
        self.path = self.folder / target.name

    def publish(self) -> None:
        """Move every file written into the target's folder (the main file last)."""
        mode = new_file_mode()
        files = sorted(self.folder.iterdir(), key=lambda p: p.name == self.target.name)
        for file in files:
            os.chmod(file, mode)
            os.replace(file, self.target.parent / file.name)

    def __enter__(self) -> "_Staging":
        return self

    def __exit__(self, *exc_info) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def write_torch_export(
    traced: Traced, model: torch.nn.Module, spec: Any, out: Path
) -> ExportReport:
    """Save the ExportedProgram as a .pt2, load it back and compare it with torch."""

    report = ExportReport(out, list(traced.notes))
    x, expected = _reference(model, spec)
    with _Staging(out) as staging:
        try:
            torch.export.save(traced.program, staging.path)
            loaded = torch.export.load(staging.path)
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = loaded.module()(x)
        except Exception as exc:  # torch raises many kinds; nothing is written then
            raise UserError(
                f"the .pt2 does not run after torch.export.load: {_first_line(exc)}"
            ) from None
        _compare(expected, got, "torch.export.load", report)
        size = staging.path.stat().st_size
        staging.publish()
    report.lines.insert(
        0, f"wrote {out} (torch.export, {_human(size)}; batch dimension dynamic)"
    )
    return report


def onnx_modules() -> tuple[Any, Any | None]:
    """Return (onnx, onnxruntime or None); raise UserError naming the extra when onnx is missing."""
    try:
        # imported here: the export extra is optional, and its absence is a message
        import onnx
        import onnxscript  # noqa: F401  torch.onnx's exporter needs it
    except ImportError as exc:
        raise UserError(
            f"--format onnx needs the packages onnx and onnxscript ({exc.name or 'onnx'} is not "
            f"installed): {INSTALL_HINT}"
        ) from None
    try:
        import onnxruntime  # optional too: without it the file is not compared with torch
    except ImportError:
        onnxruntime = None
    return onnx, onnxruntime


def write_onnx(
    traced: Traced, model: torch.nn.Module, spec: Any, out: Path
) -> ExportReport:
    """Convert the ExportedProgram to ONNX, name its batch dimension, check it and compare it."""

    onnx, onnxruntime = onnx_modules()
    report = ExportReport(out, list(traced.notes))
    x, expected = _reference(model, spec)
    try:
        with warnings.catch_warnings(), _quiet("onnxscript", "torch.onnx"):
            warnings.simplefilter("ignore")
            converted = torch.onnx.export(
                traced.program,
                (example_input(spec, TRACE_BATCH),),
                dynamo=True,
                verbose=False,
                input_names=["input"],
                output_names=["output"],
            )
    except Exception as exc:  # the exporter raises many kinds
        raise UserError(
            f"torch.onnx.export cannot convert {spec.name}: {_onnx_reason(exc)}; {ONNX_ALTERNATIVE}"
        ) from None
    _name_batch_dimension(converted.model.graph)
    with _Staging(out) as staging:
        try:
            converted.save(str(staging.path))
        except OSError as exc:
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        try:
            onnx.checker.check_model(str(staging.path), full_check=True)
        except Exception as exc:
            raise UserError(
                f"onnx.checker refuses the model torch.onnx made ({_first_line(exc)}); {ONNX_ALTERNATIVE}"
            ) from None
        report.lines.append("onnx.checker: ok")
        if onnxruntime is None:
            report.lines.append(
                f"onnxruntime is not installed: the model was not run ({INSTALL_HINT})"
            )
        else:
            try:
                options = onnxruntime.SessionOptions()
                options.log_severity_level = (
                    4  # fatal only: its errors come back as exceptions
                )
                session = onnxruntime.InferenceSession(
                    str(staging.path), options, providers=["CPUExecutionProvider"]
                )
                got = session.run(None, {"input": x.numpy()})[0]
            except Exception as exc:  # onnxruntime's own error kinds
                raise UserError(
                    f"onnxruntime {onnxruntime.__version__} cannot run the exported model "
                    f"({_first_line(exc)}); {ONNX_ALTERNATIVE}"
                ) from None
            _compare(
                expected,
                torch.from_numpy(got),
                f"onnxruntime {onnxruntime.__version__}",
                report,
            )
        size = sum(p.stat().st_size for p in staging.folder.iterdir())
        opset = converted.model.opset_imports.get("", "?")
        staging.publish()
    report.lines.insert(
        0,
        f"wrote {out} (ONNX opset {opset}, {_human(size)}; input 'input' "
        f"[batch, {', '.join(map(str, x.shape[1:]))}], batch dynamic)",
    )
    return report


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Within the block, the loggers named show errors only (onnxscript's optimizer warns on
    stderr about every constant it cannot fold)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _name_batch_dimension(graph) -> None:
    """Rename the exporter's symbol for the batch size (`s31`) to `batch` on every value."""
    import onnx_ir as ir  # comes with onnxscript, an optional extra: see onnx_modules

    first = graph.inputs[0].shape[0] if graph.inputs and graph.inputs[0].shape else None
    if not isinstance(first, ir.SymbolicDim):
        return
    symbol = first.value

    def rename(value) -> None:
        if value.shape is None:
            return
        dims = [
            (
                ir.SymbolicDim("batch")
                if isinstance(d, ir.SymbolicDim) and d.value == symbol
                else d
            )
            for d in value.shape
        ]
        value.shape = ir.Shape(dims)

    for value in graph.inputs:
        rename(value)
    for node in graph:
        for value in node.outputs:
            rename(value)
    for value in graph.outputs:
        rename(value)


def write_safetensors(payload: dict[str, Any], out: Path) -> ExportReport:
    """Write the weights and the spec (in the metadata) as safetensors; read it back to check."""

    data = safetensors_bytes(payload)
    try:
        write_bytes_atomically(out, data)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    back = read_weights(out)
    same = (
        back["spec_sha256"] == payload["spec_sha256"]
        and set(back["model"]) == set(payload["model"])
        and all(
            torch.equal(back["model"][k], payload["model"][k]) for k in payload["model"]
        )
    )
    report = ExportReport(
        out,
        [
            f"wrote {out} (safetensors, {_human(len(data))}: {len(payload['model'])} tensors, the spec in its metadata)",
            (
                "read back: the same tensors and spec"
                if same
                else "read back: the tensors DIFFER"
            ),
        ],
        mismatch=not same,
    )
    return report


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"
