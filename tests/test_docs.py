"""Docs generated from the code stay in step with it."""

import json
from pathlib import Path

from compiler.reference import layer_reference
from compiler.schema import json_schema

ROOT = Path(__file__).resolve().parent.parent


def test_layer_reference_is_fresh():
    committed = (ROOT / "docs" / "layers.md").read_text(encoding="utf-8")
    assert (
        committed == layer_reference()
    ), "docs/layers.md is stale: run `python -m compiler.reference > docs/layers.md`"


def test_committed_schema_is_fresh():
    committed = json.loads(
        (ROOT / "docs" / "nnspec.schema.json").read_text(encoding="utf-8")
    )
    assert (
        committed == json_schema()
    ), "docs/nnspec.schema.json is stale: run `nnspec schema --out docs/nnspec.schema.json`"


def test_reference_lists_every_registered_layer():
    from compiler.layers import REGISTRY

    text = layer_reference()
    for name, cls in REGISTRY.items():
        assert f"## `{name}`" in text
        for arg in cls.model_fields:
            if arg != "type":
                assert f"`{arg}`" in text


def test_readme_opens_with_the_two_commands():
    lines = [
        line
        for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("make ")
    ]
    assert [line.split()[1] for line in lines[:2]] == ["train", "test"]
