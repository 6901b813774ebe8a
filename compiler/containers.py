"""Containers (`sequential`, `residual`, `branches`, `repeat`) and the entries that stand for them.

A container is written like a layer (SPEC.md, "Models that are not a chain"). What each one takes
is declared here once: its primary argument, its arguments, its name prefix, and whether it is a
module (`sequential`, `repeat`: a child with a name) or wiring (`residual`, `branches`: its layers
belong to the module around it). The expander (expand.py) reads these declarations; the entry of
a container or of a block use in `Spec.layers` is a `Composite`, which keeps its canonical data so
that `spec_data` round-trips.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from .normalize import EntryKind


@dataclass(frozen=True)
class ContainerKind:
    """One container type: how it is written and what it becomes."""

    type: str
    primary: str | None
    arguments: tuple[str, ...]  # besides `type` (and `name` for modules)
    prefix: str | None  # automatic names; None for wiring, which takes no name
    summary: str  # one line for docs/layers.md

    @property
    def is_module(self) -> bool:
        """Return whether the container is a child module (else it is wiring)."""
        return self.prefix is not None

    def entry_kind(self) -> EntryKind:
        """Return what the normalizer needs to read the four forms of this container."""
        return EntryKind(self.primary, self.arguments)


CONTAINERS: dict[str, ContainerKind] = {
    kind.type: kind
    for kind in (
        ContainerKind(
            "sequential",
            "layers",
            ("layers",),
            "group",
            "a named group of layers: one child module",
        ),
        ContainerKind(
            "residual",
            "layers",
            ("layers", "shortcut"),
            None,
            "`layers(x) + shortcut(x)`; `shortcut` left out is the identity",
        ),
        ContainerKind(
            "branches",
            "paths",
            ("merge", "dim", "paths"),
            None,
            "every path gets the same input; outputs merged by `concat` along `dim` "
            "(default 1), `add` or `mul`; a path `[]` is the identity",
        ),
        ContainerKind(
            "repeat",
            None,
            ("times", "layers"),
            "repeat",
            "`times` copies of `layers`, each with its own weights; `times: 0` is the "
            "identity",
        ),
    )
}
MERGES = ("concat", "add", "mul")


class Composite(BaseModel):
    """A container or block use in `Spec.layers`: its type, its name and its canonical arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = None
    arguments: dict[str, Any] = {}

    @property
    def type_name(self) -> str:
        """Return the entry's type: a container type or a block name."""
        return self.type

    def canonical(self) -> dict[str, Any]:
        """Return the entry as canonical spec data: `{type, name?, **arguments}`."""
        data: dict[str, Any] = {"type": self.type}
        if self.name is not None:
            data["name"] = self.name
        return {**data, **self.arguments}


def snake_case(name: str) -> str:
    """Return a CamelCase block name in snake case: `BasicBlock` -> `basic_block`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return text.lower()


def numbered(prefix: str, counter: int) -> str:
    """Return an automatic name: `conv3`, or `relu6_1` when the prefix ends in a digit."""
    return f"{prefix}_{counter}" if prefix[-1:].isdigit() else f"{prefix}{counter}"
