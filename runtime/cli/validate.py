"""`nnspec validate SPEC...`: check specs without importing torch.

A spec found valid is remembered in the user's cache (`validate.json` beside codegen's, keyed by
the sha256 of the file's bytes, the compiler's source and the versions it runs on, as in
`runtime.storage.codegen_cache`), so checking unchanged specs again, as a pre-commit hook does, needs
neither pydantic nor the layer registry. Problems are never cached: a spec with a problem is
checked in full every time.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compiler.files import FileRefused, read_regular_file
from runtime.storage.codegen_cache import (
    OutputCache,
    input_fingerprint,
    toolchain_fingerprint,
)

CACHE_FILE = "validate.json"
# compiler.readers.MAX_FILE_BYTES (not imported: that module loads PyYAML); a larger file is
# read by the full check, which refuses it
MAX_SPEC_BYTES = 5 * 1024 * 1024


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs", nargs="+", metavar="SPEC", help="spec files (.yaml, .yml, .json)"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print problems only"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="check every spec in full, ignoring the specs the last runs found valid",
    )


def run(args: argparse.Namespace) -> int:
    cache = OutputCache.open(enabled=not args.no_cache, file=CACHE_FILE)
    toolchain = toolchain_fingerprint((Path(__file__),)) if cache.folder else ""
    failed = 0
    for path in args.specs:
        raw = _read(path)
        fingerprint = (
            input_fingerprint(toolchain, Path(path).suffix.lower(), raw)
            if cache.folder and raw is not None
            else None
        )
        known = _summary(cache.lookup(fingerprint)) if fingerprint else None
        if known is None:
            known = _check(path, raw)
            if known is None:
                failed += 1
                continue
            if fingerprint:
                cache.remember(fingerprint, json.dumps(known))
        if not args.quiet:
            name, layers, params = known
            print(f"{path}: ok ({name}, {layers} layers, {params:,} parameters)")
    cache.save()
    return 2 if failed else 0


def _read(path: str) -> bytes | None:
    """Return the bytes of a spec file (None when unreadable: the full check says why)."""
    try:
        return read_regular_file(path, MAX_SPEC_BYTES)
    except (OSError, FileRefused):
        return None


def _check(path: str, raw: bytes | None) -> tuple[str, int, int] | None:
    """Validate one spec in full; print its problems and return None, or return its summary."""
    # imported here, not at the top: the spec model (pydantic) costs more than the whole run
    # when every spec is known valid from the cache
    from compiler import SpecError, count_params, load_spec
    from compiler.load import parse_document, validate_document

    try:
        # the bytes fingerprinted are the bytes validated, even if the file changes meanwhile
        spec = (
            load_spec(path)
            if raw is None
            else validate_document(parse_document(raw, path), path)
        )
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return None
    return spec.name, len(spec.layers), count_params(spec)


def _summary(value: str | None) -> tuple[str, int, int] | None:
    """Return the (name, layers, parameters) a cache entry holds, or None for a missing or odd one."""
    try:
        name, layers, params = json.loads(value) if value else ()
    except (ValueError, TypeError):
        return None
    if isinstance(name, str) and type(layers) is int and type(params) is int:
        return name, layers, params
    return None
