"""What `nnspec codegen` last produced, so that it answers without rendering when nothing changed
(`nnspec validate` keeps the specs it found valid the same way, in `validate.json`).

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
import json
import os
import sys
from pathlib import Path

import compiler
from runtime.storage.atomic import write_bytes_atomically

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
    versions = installed_versions(_DEPENDENCIES)
    for name in _DEPENDENCIES:
        digest.update(f"{name} {versions.get(name, 'missing')}\0".encode())
    return digest.hexdigest()


def installed_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Return the installed version of each distribution in `names` that sys.path holds.

    Read from the names of the `*.dist-info` folders (the first on sys.path wins, as for an
    import), which is what importlib.metadata does, without its 25-50 ms of imports.
    """
    wanted = {_normalized(name): name for name in names}
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith(".dist-info"):
                continue
            distribution, _, version = item[: -len(".dist-info")].partition("-")
            name = wanted.get(_normalized(distribution))
            if name is not None and name not in found:
                found[name] = version
    return found


def _normalized(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


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
    """fingerprint -> sha256 of the generated file (or, for `validate`, the summary of a valid
    spec), read once and saved atomically."""

    def __init__(
        self, folder: Path | None, entries: dict[str, str], file: str = CACHE_FILE
    ):
        self.folder = folder
        self.entries = entries
        self.file = file
        self.changed = False

    @classmethod
    def open(cls, enabled: bool = True, file: str = CACHE_FILE) -> "OutputCache":
        """Return the cache from the user's cache folder (empty when off, absent or unreadable)."""
        if not enabled:
            return cls(None, {}, file)
        folder = cache_folder()
        try:
            data = json.loads((folder / file).read_text(encoding="utf-8"))
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
            file,
        )

    def holds(self, fingerprint: str, current: bytes | None) -> bool:
        """Return whether `current` (a file's bytes) is what the inputs of `fingerprint` produce."""
        return current is not None and self.entries.get(fingerprint) == content_digest(
            current
        )

    def record(self, fingerprint: str, produced: bytes) -> None:
        """Remember that the inputs of `fingerprint` produce `produced`."""
        self.remember(fingerprint, content_digest(produced))

    def lookup(self, fingerprint: str) -> str | None:
        """Return the value recorded for `fingerprint` (None when there is none)."""
        return self.entries.get(fingerprint)

    def remember(self, fingerprint: str, value: str) -> None:
        """Record `value` for `fingerprint`, as the newest entry."""
        if self.entries.get(fingerprint) != value:
            self.entries.pop(fingerprint, None)
            self.entries[fingerprint] = value
            self.changed = True

    def save(self) -> None:
        """Write the cache atomically; a cache that cannot be written is simply not kept."""
        if self.folder is None or not self.changed:
            return
        entries = dict(list(self.entries.items())[-MAX_ENTRIES:])
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_bytes_atomically(  # a cache: losing it to a crash costs one slow run
                self.folder / self.file,
                json.dumps({"entries": entries}).encode("utf-8"),
                durable=False,
            )
        except OSError:
            pass
        self.changed = False
