"""A JSON spec may name its JSON Schema with a `"$schema"` key, as editors expect; nnspec ignores it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from compiler import load_spec, spec_digest
from compiler.schema import json_schema
from runtime.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"name": "M", "input": [4], "layers": [{"linear": 3}, "relu", {"linear": 2}]}


def test_a_schema_key_is_accepted_and_changes_nothing(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"$schema": "../docs/nnspec.schema.json", **SPEC}))
    assert spec_digest(load_spec(path)) == spec_digest(load_spec(dict(SPEC)))
    yaml_path = tmp_path / "m.yaml"
    yaml_path.write_text(
        "$schema: https://nnspec.dev/schema/spec-v1.json\nname: M\ninput: [4]\n"
        "layers: [linear: 3, relu, linear: 2]\n"
    )
    assert spec_digest(load_spec(yaml_path)) == spec_digest(load_spec(dict(SPEC)))


def test_a_schema_key_that_is_not_a_string_is_a_located_error(tmp_path, capsys):
    path = tmp_path / "m.json"
    path.write_text(
        '{\n  "name": "M",\n  "$schema": 3,\n  "input": [4],\n  "layers": ["relu"]\n}\n'
    )
    assert main(["validate", "--no-cache", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"{path}:3: ['$schema']: names the JSON Schema for editors: a URL or a path as a string, got 3"
    )


def test_the_json_schema_allows_the_key_for_every_spec_in_the_folder():
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    assert schema["properties"]["$schema"]["type"] == "string"
    assert validator.is_valid({"$schema": "../docs/nnspec.schema.json", **SPEC})
    assert not validator.is_valid({"$schema": 3, **SPEC})
    spec = json.loads((ROOT / "specs" / "wine_mlp.json").read_text())
    assert validator.is_valid({"$schema": "../docs/nnspec.schema.json", **spec})
