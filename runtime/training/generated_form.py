"""The generated form of a spec's model: its class from generated/, or compiled from fresh source.

`nnspec train --form generated` runs the committed class in `generated/<spec stem>.py` only when
the whole file is exactly what `nnspec codegen` writes for the spec now: the file is read once,
compared with source generated in memory, and the text compared is the text compiled (never
imported from disk afterwards), so a line added to the file cannot run. Otherwise it warns (the
file is missing, of another version of the model, or edited) and compiles the class from the
source generated in memory, registered in `linecache` so that tracebacks show the generated lines.
"""

from __future__ import annotations

import hashlib
import itertools
import linecache
import os
import sys
import types
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from compiler import model_digest, spec_digest
from compiler.codegen import generate_source, read_header

if TYPE_CHECKING:
    from torch import nn

    from compiler import Spec

GENERATED_FOLDER = "generated"


class StaleGeneratedCodeWarning(UserWarning):
    """generated/ holds no class for a spec, or one made from another version of it."""


def load_generated_model(
    spec: Spec,
    spec_path: str | os.PathLike | None = None,
    folder: str | os.PathLike = GENERATED_FOLDER,
) -> nn.Module:
    """Return a new instance of the spec's generated class (see `load_generated_class`)."""
    return load_generated_class(spec, spec_path, folder)()


def load_generated_class(
    spec: Spec,
    spec_path: str | os.PathLike | None = None,
    folder: str | os.PathLike = GENERATED_FOLDER,
) -> type[nn.Module]:
    """Return the spec's class from `folder/<spec stem>.py` when it is fresh, else compiled in memory.

    Without `spec_path` (a spec from a mapping or a checkpoint) the class is compiled in memory
    without a warning; with one, a missing or stale file is reported as a
    StaleGeneratedCodeWarning that says how to update it.
    """

    if spec_path is None:
        return compile_generated_class(spec)
    path = generated_file(spec_path, folder)
    if path is None:
        shown = Path(folder) / f"{Path(spec_path).stem}.py"
        _warn(
            f"{shown} does not exist; using the class generated in memory from {spec_path} instead"
        )
        return compile_generated_class(spec)
    text = path.read_text(encoding="utf-8", errors="replace")
    header = read_header(text)
    written = header.get("model sha256")
    if written != model_digest(spec):
        _warn(
            f"{path} was generated from another version of {spec_path} (model sha256 "
            f"{(written or 'missing')[:12]}, now {model_digest(spec)[:12]}); using the class "
            "generated in memory instead"
        )
        return compile_generated_class(spec)
    expected = generate_source(spec, header.get("source") or str(spec_path))
    if text != expected:
        _warn(
            f"{path} differs from what `nnspec codegen` writes for {spec_path} (first at line "
            f"{_first_difference(text, expected)}): it was edited, so it is not run; using the "
            "class generated in memory instead"
        )
        return compile_generated_class(spec)
    return compile_generated_class(spec, text, filename=str(path.resolve()))


def _first_difference(text: str, expected: str) -> int:
    """Return the 1-based number of the first line where two texts differ."""
    pairs = zip(text.splitlines(), expected.splitlines())
    same = sum(1 for _ in itertools.takewhile(lambda pair: pair[0] == pair[1], pairs))
    return same + 1


def generated_file(
    spec_path: str | os.PathLike, folder: str | os.PathLike = GENERATED_FOLDER
) -> Path | None:
    """Return the generated module of a spec file, if there is one.

    It is looked for in `folder` (relative to the working directory, where `nnspec codegen`
    writes it), then in the `folder` next to the spec's own folder (`specs/` and `generated/`
    side by side in the spec's project).
    """
    name = f"{Path(spec_path).stem}.py"
    candidates = [Path(folder) / name]
    if not Path(folder).is_absolute():
        candidates.append(Path(spec_path).resolve().parent.parent / folder / name)
    return next((p for p in candidates if p.is_file()), None)


def compile_generated_class(
    spec: Spec, source: str | None = None, filename: str | None = None
) -> type[nn.Module]:
    """Return the spec's class compiled from `source` (default: generated now) under a registered name.

    The source goes into `linecache` (under `filename`, default a name of its own) and its module
    into `sys.modules`, so tracebacks and `inspect.getsource` show the lines that were compiled.
    """
    source = generate_source(spec) if source is None else source
    tag = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    filename = filename or f"<nnspec-generated {spec.name} {tag}>"
    where = hashlib.sha256(filename.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    name = f"nnspec_generated_{tag}_{where}"
    module = sys.modules.get(name)
    if module is None:
        code = compile(source, filename, "exec", dont_inherit=True)
        # mtime None: linecache.checkcache keeps the entry.
        linecache.cache[filename] = (
            len(source),
            None,
            source.splitlines(keepends=True),
            filename,
        )
        module = types.ModuleType(
            name, f"{spec.name}, generated in memory (spec sha256 {spec_digest(spec)})"
        )
        module.__file__ = filename
        exec(
            code, module.__dict__
        )  # noqa: S102 - source from generate_source: checked values only
        sys.modules[name] = module
    return getattr(module, spec.name)


def _warn(message: str) -> None:
    warnings.warn(
        f"{message}; run `nnspec codegen` to update {GENERATED_FOLDER}/",
        StaleGeneratedCodeWarning,
        stacklevel=3,
    )
