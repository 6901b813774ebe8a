"""Identifiers the code generator writes: checked again here so no spec text becomes code.

The compiler validates every name when it loads a spec; the generator checks each one once more
before rendering it (as torch.fx's namespace does), so a bug elsewhere cannot turn into code.
"""

from __future__ import annotations

import keyword
import re

from .reserved import RESERVED_ATTRIBUTES, is_reserved_class_name

_ASCII_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENTIFIER_LENGTH = 64


class CodegenError(ValueError):
    """A value reached the code generator that it refuses to write into source code."""


def checked_identifier(name: object, what: str) -> str:
    """Return `name` if it is a short ASCII identifier and not a keyword; raise CodegenError."""
    if type(name) is not str:
        raise CodegenError(f"{what} must be a str, got {type(name).__name__}")
    if len(name) > MAX_IDENTIFIER_LENGTH or not _ASCII_IDENTIFIER.match(name):
        raise CodegenError(
            f"{what} {name[:80]!r} is not a short ASCII Python identifier"
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise CodegenError(f"{what} {name!r} is a Python keyword")
    return name


def class_name(name: object) -> str:
    """Return `name` if it can name a top-level class without shadowing a builtin or an import."""
    name = checked_identifier(name, "class name")
    if is_reserved_class_name(name):
        raise CodegenError(
            f"class name {name!r} would shadow a name the generated module uses"
        )
    return name


def attribute_name(name: object) -> str:
    """Return `name` if it can be a layer attribute of an nn.Module without hiding torch's own."""
    name = checked_identifier(name, "layer name")
    if name.startswith("_") or name in RESERVED_ATTRIBUTES:
        raise CodegenError(
            f"layer name {name!r} would hide an attribute of torch.nn.Module"
        )
    return name


def module_name(stem: object) -> str:
    """Return a spec file stem if it can name a module of the generated package."""
    name = checked_identifier(stem, "spec file name")
    if name.startswith("__"):
        raise CodegenError(
            f"spec file name {name!r} is kept for the package's own modules"
        )
    return name
