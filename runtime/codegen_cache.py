"""What `nnspec codegen` last produced, so that it answers without rendering when nothing changed.

Rendering and black take most of a second; a pre-commit hook wants an answer in a fraction of one.
The cache maps a fingerprint of everything a generated file depends on (the spec file's bytes and
the name its header shows, the source of the compiler, its templates and this command, and the
versions of Python, black, jinja2, pydantic and PyYAML) to the sha256 of the file produced from it.

It never supplies content: a hit only says "the file on disk already holds what these inputs
produce", when the file's own sha256 equals the recorded one. Anything else (a miss, a changed or
hand-edited file) regenerates everything as if there were no cache. Like black's cache, it lives in
the user's cache folder ($NNSPEC_CACHE_DIR, else $XDG_CACHE_HOME/nnspec, else ~/.cache/nnspec).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path

CACHE_FILE = "codegen.json"
MAX_ENTRIES = 1000  # the oldest entries go first; a project needs a handful
_DEPENDENCIES = ("black", "jinja2", "pydantic", "pydantic_core", "PyYAML")


def cache_folder() -> Path:
    """Return the folder that holds the cache."""
    if os.environ.get("NNSPEC_CACHE_DIR"):
        return Path(os.environ["NNSPEC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "nnspec"


def toolchain_fingerprint(extra_sources: tuple[Path, ...] = ()) -> str:
    """Return the sha256 of the compiler's source and templates, `extra_sources` and versions."""
    import compiler

    digest = hashlib.sha256()
    root = Path(compiler.__file__).parent
    files = sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".py", ".j2") and "__pycache__" not in p.parts
    )
    for path in [*files, Path(__file__), *extra_sources]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"python {sys.version_info[:2]}\0".encode())
    for name in _DEPENDENCIES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "missing"
        digest.update(f"{name} {version}\0".encode())
    return digest.hexdigest()


def input_fingerprint(toolchain: str, *parts: str | bytes) -> str:
    """Return the sha256 of the toolchain fingerprint and the parts (names, file contents)."""
    digest = hashlib.sha256(toolchain.encode())
    for part in parts:
        data = (
            part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part
        )
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def content_digest(data: bytes | None) -> str | None:
    """Return the sha256 of a file's bytes (None for an absent file)."""
    return None if data is None else hashlib.sha256(data).hexdigest()


class OutputCache:
    """fingerprint -> sha256 of the generated file, read once and saved atomically."""

    def __init__(self, folder: Path | None, entries: dict[str, str]):
        self.folder = folder
        self.entries = entries
        self.changed = False

    @classmethod
    def open(cls, enabled: bool = True) -> "OutputCache":
        """Return the cache from the user's cache folder (empty when off, absent or unreadable)."""
        if not enabled:
            return cls(None, {})
        folder = cache_folder()
        try:
            data = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        entries = data.get("entries") if isinstance(data, dict) else None
        if not isinstance(entries, dict):
            entries = {}
        return cls(
            folder,
            {
                k: v
                for k, v in entries.items()
                if isinstance(k, str) and isinstance(v, str)
            },
        )

    def holds(self, fingerprint: str, current: bytes | None) -> bool:
        """Return whether `current` (a file's bytes) is what the inputs of `fingerprint` produce."""
        return current is not None and self.entries.get(fingerprint) == content_digest(
            current
        )

    def record(self, fingerprint: str, produced: bytes) -> None:
        """Remember that the inputs of `fingerprint` produce `produced`."""
        digest = content_digest(produced)
        if self.entries.get(fingerprint) != digest:
            self.entries.pop(fingerprint, None)
            self.entries[fingerprint] = digest
            self.changed = True

    def save(self) -> None:
        """Write the cache atomically; a cache that cannot be written is simply not kept."""
        if self.folder is None or not self.changed:
            return
        entries = dict(list(self.entries.items())[-MAX_ENTRIES:])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(
                dir=self.folder, prefix=f".{CACHE_FILE}.", suffix=".tmp"
            )
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"entries": entries}, f)
                os.replace(tmp, self.folder / CACHE_FILE)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError:
            pass
        self.changed = False
