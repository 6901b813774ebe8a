"""Checkpoint files: written atomically, read back with `weights_only=True` and nothing else.

A checkpoint is a dict of plain containers and tensors (see `runtime.training.train` for its keys), so the
restricted unpickler of `torch.load(weights_only=True)` reads it and no code in a file can run.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from runtime.errors import UserError
from runtime.storage.atomic import write_bytes_atomically
from runtime.storage.payload import check_common_entries

FORMAT = "nnspec-checkpoint"
FORMAT_VERSION = 1
# torch.load obeys this variable only when weights_only is not passed; we always pass it, and
# also hide the variable during our loads in case a future torch lets it win.
_UNSAFE_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """Return `payload` serialized by torch.save, so one serialization can go to several files."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_checkpoint_atomically(
    path: str | os.PathLike, payload: dict[str, Any]
) -> None:
    """Save `payload` to `path` atomically; on any failure the previous file stays as it was."""
    try:
        write_bytes_atomically(path, checkpoint_bytes(payload))
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def _without_unsafe_override() -> Iterator[None]:
    saved = os.environ.pop(_UNSAFE_ENV, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[_UNSAFE_ENV] = saved


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Return the payload of an nnspec checkpoint, loaded on the CPU with weights_only=True.

    Raises UserError (exit 2) for a missing, truncated, corrupted or foreign file, for a file
    whose bytes do not match the zip checksums torch wrote (torch itself does not check them),
    for a payload whose entries are missing or of the wrong type, and for a file that holds
    anything but plain data and tensors (a pickle that would run code is refused).
    """
    source = Path(path)
    data = _read_regular_file(source)
    if not data.startswith(_ZIP_MAGIC):
        raise UserError(
            f"{source} is not a loadable nnspec checkpoint: {describe_bytes(data)}"
        )
    _check_zip_checksums(data, source)
    try:
        with _without_unsafe_override():
            payload = torch.load(
                io.BytesIO(data), map_location="cpu", weights_only=True
            )
    except OSError as exc:  # torch's zip reader says EINVAL for a file cut short
        raise UserError(
            f"{source} is not a loadable nnspec checkpoint: "
            f"the file is truncated or corrupted ({exc.strerror or exc})"
        ) from None
    except Exception as exc:  # torch raises many kinds for damaged or unsafe files
        raise UserError(
            f"{source} is not a loadable nnspec checkpoint: {_reason(exc)}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(
            f"{source} is not an nnspec checkpoint (a torch file, but not one nnspec wrote)"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"{source} has checkpoint format {payload.get('format_version')!r}; "
            f"this nnspec reads format {FORMAT_VERSION}"
        )
    check_common_entries(payload, source)
    return payload


_ZIP_MAGIC = b"PK\x03\x04"
_FILE_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}
_MAGIC_KINDS = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x93NUMPY", "a NumPy array file"),
    (b"\x80", "a pickle or a torch file of the legacy format"),
)


def _read_regular_file(source: Path) -> bytes:
    """Return the bytes of a regular file; raise UserError saying what `source` is otherwise."""
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        raise UserError(f"checkpoint {source} does not exist") from None
    except OSError as exc:
        raise UserError(
            f"cannot read checkpoint {source}: {exc.strerror or exc}"
        ) from None
    if stat.S_ISDIR(mode):
        raise UserError(f"checkpoint {source} is a folder")
    if not stat.S_ISREG(mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise UserError(
            f"checkpoint {source} is not a regular file ({kind}), not a torch checkpoint"
        )
    try:
        return source.read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot read checkpoint {source}: {exc.strerror or exc}"
        ) from None


def describe_bytes(data: bytes) -> str:
    """Return what a file that is no zip archive holds, in words, for a message."""
    if not data:
        return "the file is empty"
    for magic, kind in _MAGIC_KINDS:
        if data.startswith(magic):
            return f"it is {kind}, not a torch checkpoint"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\t\r\n" for c in text):
        return "it is a text file, not a torch checkpoint"
    return "its bytes are not a torch checkpoint (no zip archive)"


def _check_zip_checksums(data: bytes, source: Path) -> None:
    """Raise UserError unless `data` is a whole zip archive whose members match their CRCs."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
    except (
        Exception
    ) as exc:  # zipfile raises BadZipFile, zlib, EOF, struct... for damage
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(
            f"{source} is not a loadable nnspec checkpoint: the file is truncated or "
            f"corrupted ({reason or type(exc).__name__})"
        ) from None
    if bad is not None:
        raise UserError(
            f"{source} is not a loadable nnspec checkpoint: the file is corrupted "
            f"(the bytes of {bad} do not match their checksum)"
        )


def is_nnspec_checkpoint_file(path: str | os.PathLike) -> bool:
    """Return whether a regular file starts like a checkpoint nnspec wrote (also a part of
    one): a zip archive whose first member, the pickle, names nnspec's format near its start.
    """
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return head.startswith(_ZIP_MAGIC) and FORMAT.encode() in head


def _reason(exc: Exception) -> str:
    """Return the first line of torch's complaint, with a plain word for the usual cases."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "weights_only" in str(exc) or "Unsupported global" in str(exc):
        return "it holds Python objects other than tensors and plain data, refused for safety"
    if "zip" in text.lower() or "eof" in text.lower() or "magic" in text.lower():
        return f"the file is truncated or corrupted ({text[:200]})"
    return text[:200]


# -- safetensors: the weights alone, with the spec in the metadata ---------------------------------

SAFETENSORS_FORMAT = "nnspec-safetensors"
# what `nnspec export --format safetensors` copies from the checkpoint into the metadata (as text)
SAFETENSORS_FIELDS = (
    "spec",
    "spec_sha256",
    "epoch",
    "nnspec_version",
    "torch_version",
    "task",
    "input",
    "num_classes",
    "class_names",
    "preprocessing",  # predict and evaluate apply it (absent from older files)
    "autocast",  # bf16 autocast or not: predict and evaluate run as it trained (absent: older)
)


def safetensors_bytes(payload: dict[str, Any]) -> bytes:
    """Return a checkpoint's weights as a safetensors file, its spec and run facts in the metadata."""

    metadata = {"format": SAFETENSORS_FORMAT, "format_version": str(FORMAT_VERSION)}
    for field in SAFETENSORS_FIELDS:
        if field in payload:
            metadata[field] = json.dumps(payload[field], ensure_ascii=False)
    # safetensors refuses tensors that share memory or are not contiguous: give it plain copies
    tensors = {
        key: value.detach().contiguous().clone()
        for key, value in payload["model"].items()
    }
    # the tensor bytes do not depend on the header, so their digest can go into it: safetensors
    # checks the header's structure, not the bytes (a flipped bit in a weight would load)
    metadata["weights_sha256"] = hashlib.sha256(
        _tensor_bytes(save(tensors, metadata=metadata))
    ).hexdigest()
    return save(tensors, metadata=metadata)


def _tensor_bytes(data: bytes) -> bytes:
    """Return the data section of a safetensors file (after the 8-byte length and the header)."""
    return data[8 + int.from_bytes(data[:8], "little") :]


def _tensor_digest(source: Path) -> str:
    """Return the sha256 of a safetensors file's data section, read in chunks."""
    digest = hashlib.sha256()
    with open(source, "rb") as f:
        f.seek(8 + int.from_bytes(f.read(8), "little"))
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_safetensors(path: str | os.PathLike) -> bool:
    """Return whether a file starts like a safetensors file: an 8-byte header length, then `{`."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return (
        len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") > 1
    )


def read_weights(path: str | os.PathLike) -> dict[str, Any]:
    """Return the payload of an nnspec checkpoint or of a safetensors file `nnspec export` wrote.

    A safetensors file gives the keys `evaluate` and `export` need: spec, spec_sha256, epoch and
    model (the state_dict); it holds no code by design. Raises UserError like read_checkpoint.
    """
    source = Path(path)
    if source.is_file() and is_safetensors(source):
        return _read_safetensors(source)
    return read_checkpoint(source)


def _read_safetensors(source: Path) -> dict[str, Any]:
    try:
        with safe_open(str(source), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            model = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(
            f"{source} is not a loadable safetensors file: {str(exc)[:200]}"
        ) from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise UserError(
            f"{source} is a safetensors file, but not one nnspec wrote (no spec in its metadata); "
            "nnspec needs the spec beside the weights: export it with `nnspec export --format safetensors`"
        )
    recorded = metadata.get(
        "weights_sha256"
    )  # exports before it was recorded have none
    try:
        if recorded is not None and _tensor_digest(source) != recorded:
            raise UserError(
                f"{source} is damaged: its tensor data does not match the weights_sha256 "
                "it records"
            )
    except OSError as exc:
        raise UserError(f"cannot read {source}: {exc.strerror or exc}") from None
    payload: dict[str, Any] = {"format": SAFETENSORS_FORMAT, "model": model}
    for field in SAFETENSORS_FIELDS:
        if field in metadata:
            try:
                payload[field] = json.loads(metadata[field])
            except ValueError:
                raise UserError(
                    f"{source} is damaged: its metadata field {field!r} is not JSON"
                ) from None
            # json nests by recursion: 50,000 brackets exhaust it
            except RecursionError:
                raise UserError(
                    f"{source} is damaged: its metadata field {field!r} nests too deep"
                ) from None
    missing = [key for key in ("spec", "spec_sha256", "epoch") if key not in payload]
    if missing:
        raise UserError(f"{source} is damaged: its metadata lacks {', '.join(missing)}")
    return payload
