"""`nnspec codegen [SPEC...]`: write each spec's generated nn.Module class; `--check` finds stale ones.

With no SPEC, every spec in `specs/` goes into `generated/` (one module per spec file, named
after it) together with `generated/__init__.py`, which exports every class. Never imports torch.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from dataclasses import dataclass
from pathlib import Path

from compiler import SpecError, load_spec
from compiler.codegen import (
    display_source,
    generate_package_index,
    generate_source,
    is_generated,
)
from compiler.files import FileRefused, read_regular_file
from compiler.naming import CodegenError, module_name
from runtime.errors import UserError
from runtime.storage.atomic import write_text_atomically
from runtime.storage.codegen_cache import (
    OutputCache,
    input_fingerprint,
    toolchain_fingerprint,
)

SPECS_FOLDER = "specs"
DEFAULT_OUT = "generated"
SPEC_SUFFIXES = (".yaml", ".yml", ".json")
INDEX = "__init__.py"


@dataclass(frozen=True)
class Output:
    """A file that codegen produces: where it goes and what it holds."""

    path: Path
    text: str


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs",
        nargs="*",
        metavar="SPEC",
        help=f"spec files (default: every spec in {SPECS_FOLDER}/, plus {DEFAULT_OUT}/{INDEX})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"folder for the generated modules (default: {DEFAULT_OUT})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="write nothing; show a diff of every stale or missing file and exit 1 if any",
    )
    mode.add_argument(
        "--stdout",
        action="store_true",
        help="print the generated source instead of writing it",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="regenerate everything, ignoring what the last run recorded in the user's cache",
    )


def run(args: argparse.Namespace) -> int:
    every_spec = not args.specs
    paths = spec_files() if every_spec else [Path(p) for p in args.specs]
    out = Path(args.out)
    check_file_names(paths, out)
    if args.stdout:
        specs = load_specs(paths)
        if specs is None:
            return 2
        sys.stdout.write(
            "\n\n".join(o.text for o in planned_outputs(specs, out, with_index=False))
        )
        return 0
    cache = OutputCache.open(enabled=not args.no_cache)
    fingerprints = output_fingerprints(paths, out, with_index=every_spec)
    extras = stray_modules(out, set(fingerprints)) if every_spec else []
    current = {path: read_bytes(path) for path in fingerprints}
    if not extras and all(
        cache.holds(fingerprints[p], current[p]) for p in fingerprints
    ):
        print(f"{out}/: {len(fingerprints)} file(s) up to date")
        return 0
    specs = load_specs(paths)
    if specs is None:
        return 2
    outputs = planned_outputs(specs, out, with_index=every_spec)
    for output in outputs:
        cache.record(fingerprints[output.path], output.text.encode("utf-8"))
    cache.save()
    if args.check:
        return check(outputs, extras, current, out)
    return write(outputs, extras, current)


def spec_files() -> list[Path]:
    """Return every spec file in specs/, sorted by name; raise UserError when there are none."""
    folder = Path(SPECS_FOLDER)
    if not folder.is_dir():
        raise UserError(
            f"no {SPECS_FOLDER}/ folder here; run it from the project's root or name the spec files"
        )
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in SPEC_SUFFIXES and p.is_file()
    )
    if not files:
        raise UserError(f"{SPECS_FOLDER}/ holds no spec files (*.yaml, *.yml, *.json)")
    return files


def check_file_names(paths: list[Path], out: Path) -> None:
    """Raise UserError unless every spec file's stem names a distinct Python module."""

    by_module: dict[str, Path] = {}
    for path in paths:
        try:
            module_name(path.stem)
        except CodegenError:
            raise UserError(
                f"{path}: the file name {path.stem!r} cannot name a Python module; "
                f"rename the file, e.g. to {_suggest_module(path.stem)}{path.suffix}"
            ) from None
        if path.stem in by_module:
            raise UserError(
                f"{by_module[path.stem]} and {path} would both become {out / (path.stem + '.py')}; "
                "rename one of them"
            )
        by_module[path.stem] = path


def load_specs(paths: list[Path]) -> list | None:
    """Return (path, Spec) for each file; print every invalid spec's problems and return None."""

    specs, errors = [], []
    for path in paths:
        try:
            specs.append((path, load_spec(path)))
        except SpecError as exc:
            errors.append(str(exc))
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return None
    return specs


def output_fingerprints(
    paths: list[Path], out: Path, with_index: bool
) -> dict[Path, str]:
    """Return the cache fingerprint of every file codegen would write, computed without rendering."""

    toolchain = toolchain_fingerprint((Path(__file__),))
    fingerprints = {}
    for path in paths:
        data = read_bytes(path)
        if data is None:  # loading will report it
            data = b"\0missing"
        fingerprints[out / f"{path.stem}.py"] = input_fingerprint(
            toolchain, "module", display_source(str(path)), data
        )
    if with_index:
        fingerprints[out / INDEX] = input_fingerprint(
            toolchain,
            "index",
            SPECS_FOLDER,
            *(f"{p.stem}\0{fingerprints[out / f'{p.stem}.py']}" for p in paths),
        )
    return fingerprints


def planned_outputs(specs: list, out: Path, with_index: bool) -> list[Output]:
    """Return the generated file of each (path, spec), plus the package index when asked."""

    by_class: dict[str, Path] = {}
    for path, spec in specs:
        if with_index and spec.name in by_class:
            raise UserError(
                f"{by_class[spec.name]} and {path} both name their class {spec.name!r}; "
                f"{out}/{INDEX} exports every class by name, so rename one of them"
            )
        by_class[spec.name] = path
    try:
        outputs = [
            Output(
                out / f"{path.stem}.py",
                generate_source(spec, display_source(str(path))),
            )
            for path, spec in specs
        ]
    except (
        CodegenError
    ) as exc:  # validation let through what the generator refuses: a bug
        raise UserError(
            f"cannot generate code: {exc} (nnspec's validation should have refused it; "
            "please report this)"
        ) from None
    if with_index:
        index = generate_package_index(
            [(path.stem, spec.name) for path, spec in specs], SPECS_FOLDER
        )
        outputs.append(Output(out / INDEX, index))
    return outputs


def stray_modules(out: Path, wanted: set[Path]) -> list[Path]:
    """Return the .py files in `out` that codegen does not produce (sorted)."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.glob("*.py") if p not in wanted)


def check(
    outputs: list[Output],
    extras: list[Path],
    current: dict[Path, bytes | None],
    out: Path,
) -> int:
    """Print a diff of every stale, missing or stray file; return 1 if there is any, else 0."""
    stale = 0
    for output in outputs:
        if current[output.path] != output.text.encode("utf-8"):
            stale += 1
            sys.stdout.writelines(
                unified_diff(as_text(current[output.path]), output.text, output.path)
            )
    for path in extras:
        stale += 1
        sys.stdout.writelines(unified_diff(as_text(read_bytes(path)), None, path))
    if stale:
        print(
            f"{stale} generated file(s) out of date; run `nnspec codegen` to update them",
            file=sys.stderr,
        )
        return 1
    print(f"{out}/: {len(outputs)} file(s) up to date")
    return 0


def write(
    outputs: list[Output], extras: list[Path], current: dict[Path, bytes | None]
) -> int:
    """Write every changed file atomically, remove stray generated modules; return 0."""

    changed = 0
    for output in outputs:
        if current[output.path] != output.text.encode("utf-8"):
            write_text_atomically(output.path, output.text)
            print(f"wrote {output.path}")
            changed += 1
    for path in extras:
        if is_generated(as_text(read_bytes(path)) or ""):
            path.unlink()
            print(f"removed {path} (no spec produces it any more)")
            changed += 1
        else:
            print(
                f"warning: {path} was not generated by nnspec; left it alone",
                file=sys.stderr,
            )
    if not changed:
        print(f"{len(outputs)} file(s) already up to date")
    return 0


# specs are limited to 5 MiB when loaded; generated modules are far below this
MAX_READ_BYTES = 64 * 1024 * 1024


def read_bytes(path: Path) -> bytes | None:
    """Return a file's bytes, or None when it does not exist (or is no regular file: loading
    or writing it then says why)."""
    try:
        return read_regular_file(path, MAX_READ_BYTES)
    except (FileNotFoundError, IsADirectoryError, FileRefused):
        return None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None


def as_text(data: bytes | None) -> str | None:
    """Return a file's bytes as text for a diff (None stays None)."""
    return None if data is None else data.decode("utf-8", errors="replace")


def unified_diff(old: str | None, new: str | None, path: Path) -> list[str]:
    """Return the unified diff lines that turn `old` into `new` (None: the file is absent)."""
    name = path.as_posix()
    lines = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        (new or "").splitlines(keepends=True),
        fromfile=f"a/{name}" if old is not None else "/dev/null",
        tofile=f"b/{name}" if new is not None else "/dev/null",
    )
    return [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
        for line in lines
    ]


def _suggest_module(stem: str) -> str:
    cleaned = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch == "_") else "_" for ch in stem
    )
    return cleaned if cleaned[:1].isalpha() else f"spec_{cleaned}"
