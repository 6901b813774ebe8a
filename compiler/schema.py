"""The JSON Schema of the spec language, from pydantic, widened to accept the short layer forms."""

from __future__ import annotations

import copy
from typing import Any

from .layers import REGISTRY
from .spec import Spec

SCHEMA_ID = "https://nnspec.dev/schema/spec-v1.json"


def _short_forms(defs: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the schemas of a bare name and of each single-key form of every layer type."""
    bare = []
    single_key = []
    for type_name, cls in REGISTRY.items():
        canonical = defs[cls.__name__]
        required = [r for r in canonical.get("required", []) if r != "type"]
        if not required:
            bare.append(type_name)
        args = copy.deepcopy(canonical)
        args["properties"].pop("type", None)
        args["required"] = required
        if not required:
            args.pop("required")
        choices: list[dict[str, Any]] = [args]
        if cls.primary is not None:
            choices.append(copy.deepcopy(canonical["properties"][cls.primary]))
        if not required:
            choices.append({"type": "null"})
        single_key.append(
            {
                "type": "object",
                "title": f"{type_name} (short form)",
                "properties": {type_name: {"anyOf": choices}},
                "required": [type_name],
                "additionalProperties": False,
            }
        )
    return [{"type": "string", "enum": bare, "title": "layer type (bare name)"}, *single_key]


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a spec file, every layer form included."""
    from pydantic import TypeAdapter

    from .layers import Layer

    schema = Spec.model_json_schema()
    layer_schema = TypeAdapter(Layer).json_schema()
    defs = schema.setdefault("$defs", {})
    defs.update(layer_schema.pop("$defs"))
    schema["properties"]["layers"]["items"] = layer_schema
    for cls in REGISTRY.values():
        canonical = defs[cls.__name__]
        canonical.setdefault("required", [])
        if "type" not in canonical["required"]:
            canonical["required"].insert(0, "type")
    canonical_union = schema["properties"]["layers"]["items"]
    schema["properties"]["layers"]["items"] = {"anyOf": [*_short_forms(defs), canonical_union]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }
