"""Checkpoint files: written atomically, read back with `weights_only=True` and nothing else.

A checkpoint is a dict of plain containers and tensors (see `runtime.training.train` for its keys), so the
restricted unpickler of `torch.load(weights_only=True)` reads it and no code in a file can run.
"""

from __future__ import annotations

import io
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from runtime.errors import UserError
from runtime.storage.atomic import write_bytes_atomically

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

    Raises UserError (exit 2) for a missing, truncated, corrupted or foreign file, and for a file
    that holds anything but plain data and tensors (a pickle that would run code is refused).
    """
    source = Path(path)
    if not source.is_file():
        what = "is a folder" if source.is_dir() else "does not exist"
        raise UserError(f"checkpoint {source} {what}")
    try:
        with open(
            source, "rb"
        ):  # a file we cannot open is told apart from a damaged one
            pass
    except OSError as exc:
        raise UserError(
            f"cannot read checkpoint {source}: {exc.strerror or exc}"
        ) from None
    try:
        with _without_unsafe_override():
            payload = torch.load(source, map_location="cpu", weights_only=True)
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
    missing = [
        key for key in ("spec", "spec_sha256", "model", "epoch") if key not in payload
    ]
    if missing:
        raise UserError(f"{source} is damaged: it lacks {', '.join(missing)}")
    return payload


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
    return save(tensors, metadata=metadata)


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
    payload: dict[str, Any] = {"format": SAFETENSORS_FORMAT, "model": model}
    for field in SAFETENSORS_FIELDS:
        if field in metadata:
            try:
                payload[field] = json.loads(metadata[field])
            except ValueError:
                raise UserError(
                    f"{source} is damaged: its metadata field {field!r} is not JSON"
                ) from None
    missing = [key for key in ("spec", "spec_sha256", "epoch") if key not in payload]
    if missing:
        raise UserError(f"{source} is damaged: its metadata lacks {', '.join(missing)}")
    return payload
