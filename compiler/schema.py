"""The JSON Schema of the spec language, from pydantic, widened to accept the short layer forms."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import TypeAdapter

from .containers import CONTAINERS, MERGES
from .layers import REGISTRY, Layer
from .spec import Spec

SCHEMA_ID = "https://nnspec.dev/schema/spec-v1.json"
# A JSON spec may name its schema for editors (`"$schema": "../docs/nnspec.schema.json"`); the
# loader checks that it is a string and drops it.
SCHEMA_KEY = {
    "type": "string",
    "description": "the JSON Schema of this file, for editors; ignored by nnspec",
}


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
    return [
        {"type": "string", "enum": bare, "title": "layer type (bare name)"},
        *single_key,
    ]


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a spec file, every layer form included."""

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
    defs["LayerEntry"] = {
        "anyOf": [
            *_short_forms(defs),
            canonical_union,
            *_container_forms(),
            *_block_use_forms(),
        ]
    }
    defs["LayerList"] = {"type": "array", "items": {"$ref": "#/$defs/LayerEntry"}}
    schema["properties"]["layers"]["items"] = {"$ref": "#/$defs/LayerEntry"}
    schema["properties"]["blocks"] = _blocks_schema()
    schema["properties"] = {"$schema": SCHEMA_KEY, **schema["properties"]}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


BLOCK_NAME = "^[A-Z][A-Za-z0-9_]*$"
_LIST = {"$ref": "#/$defs/LayerList"}
_PARAM = {"type": "string", "pattern": "^\\$[A-Za-z_]"}  # `$param` (inside a block)


def _container_forms() -> list[dict[str, Any]]:
    """Return the schemas of the containers in their single-key and canonical forms."""

    arguments: dict[str, dict[str, Any]] = {
        "sequential": {"name": {"type": "string"}, "layers": _LIST},
        "residual": {
            "layers": {"anyOf": [_LIST, _PARAM]},
            "shortcut": {"anyOf": [_LIST, _PARAM]},
        },
        "branches": {
            "merge": {"enum": list(MERGES)},
            "dim": {"type": "integer"},
            "paths": {"type": "array", "items": {"anyOf": [_LIST, _PARAM]}},
        },
        "repeat": {
            "name": {"type": "string"},
            "times": {"anyOf": [{"type": "integer", "minimum": 0}, _PARAM]},
            "layers": _LIST,
        },
    }
    required = {
        "sequential": ["layers"],
        "residual": ["layers"],
        "branches": ["paths"],
        "repeat": ["times", "layers"],
    }
    forms = []
    for name, kind in CONTAINERS.items():
        body = {
            "type": "object",
            "description": kind.summary,
            "properties": arguments[name],
            "required": required[name],
            "additionalProperties": False,
        }
        choices = [body] + ([arguments[name][kind.primary]] if kind.primary else [])
        forms.append(
            {
                "type": "object",
                "title": f"{name} (container)",
                "properties": {name: {"anyOf": choices}},
                "required": [name],
                "additionalProperties": False,
            }
        )
        canonical = copy.deepcopy(body)
        canonical["properties"] = {"type": {"const": name}, **canonical["properties"]}
        canonical["required"] = ["type", *canonical["required"]]
        forms.append(canonical)
    return forms


def _block_use_forms() -> list[dict[str, Any]]:
    """Return the schemas of a block use: its name, `- Block: VALUE`, or canonical."""
    return [
        {"type": "string", "pattern": BLOCK_NAME, "title": "block use (bare name)"},
        {
            "type": "object",
            "title": "block use",
            "minProperties": 1,
            "maxProperties": 1,
            "patternProperties": {BLOCK_NAME: {}},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "title": "block use (canonical)",
            "required": ["type"],
            "properties": {"type": {"type": "string", "pattern": BLOCK_NAME}},
        },
    ]


def _blocks_schema() -> dict[str, Any]:
    """Return the schema of the top-level `blocks` section."""
    definition = {
        "type": "object",
        "properties": {
            "description": {"type": "string"},
            "params": {
                "type": "object",
                "description": "each parameter's default; `required` "
                "for none; [] for a layer-list parameter",
            },
            "layers": {
                "type": "array",
                "minItems": 1,
                "description": "layers as anywhere else; "
                '`$param` and integer expressions such as "$width * 4" stand for values',
            },
        },
        "required": ["layers"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "description": "reusable, parameterized layer lists, used like a " "layer type",
        "patternProperties": {BLOCK_NAME: definition},
        "additionalProperties": False,
    }
