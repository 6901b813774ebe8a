"""Validation and the code generator refuse the same names: one rule, applied twice.

The spec model checks every name when a spec loads; the generator checks each again before it
writes it (compiler/naming.py). If the two ever disagreed, a spec could validate and then fail
in codegen (or the other way round), so every candidate below must get the same answer from both.
"""

from __future__ import annotations

import builtins
import keyword

import pytest

from compiler import SpecError, load_spec
from compiler.naming import CodegenError, attribute_name, class_name
from compiler.reserved import MODULE_NAMES, RESERVED_ATTRIBUTES

ORDINARY = ["Net", "DigitsCNN", "Model2", "fc1", "conv_block", "head", "x", "Stage_3"]
CANDIDATES = sorted(
    {
        *ORDINARY,
        *MODULE_NAMES,
        *RESERVED_ATTRIBUTES,
        *(
            "list",
            "print",
            "Exception",
            "object",
            "len",
            "super",
            "int",
            "__build_class__",
        ),
        *("__Foo", "__init__", "_private", "_", "match", "case", "type"),
        *keyword.kwlist[:8],
        "a" * 64,
        "a" * 65,
    }
)


def _validates(data: dict) -> bool:
    try:
        load_spec(data)
    except SpecError:
        return False
    return True


def _codegen_accepts(check, name: str) -> bool:
    try:
        check(name)
    except CodegenError:
        return False
    return True


def _model(name: str, layer_name: str = "fc") -> dict:
    return {
        "name": name,
        "input": [4],
        "layers": [{"type": "linear", "name": layer_name, "out_features": 2}],
    }


@pytest.mark.parametrize("name", CANDIDATES)
def test_a_class_name_is_refused_by_validation_exactly_when_codegen_refuses_it(name):
    assert _validates(_model(name)) == _codegen_accepts(class_name, name)


@pytest.mark.parametrize("name", CANDIDATES)
def test_a_layer_name_is_refused_by_validation_exactly_when_codegen_refuses_it(name):
    assert _validates(_model("Net", name)) == _codegen_accepts(attribute_name, name)


def _with_block(name: str) -> dict:
    return {
        "name": "Net",
        "input": [4],
        "blocks": {name: {"layers": [{"linear": 4}]}},
        "layers": [{name: {}}, {"linear": 2}],
    }


@pytest.mark.parametrize("name", sorted(n for n in CANDIDATES if n[:1].isupper()))
def test_a_block_name_that_codegen_refuses_never_validates(name):
    # a block name has rules of its own on top (CamelCase, not the model's name), so only
    # one direction holds: what codegen would refuse, validation refuses first
    data = _with_block(name)
    if not _codegen_accepts(class_name, name):
        assert not _validates(data)


def test_the_candidates_cover_both_answers():
    # the parametrization above proves nothing if every candidate gets the same answer
    answers = {_codegen_accepts(class_name, n) for n in CANDIDATES}
    assert answers == {True, False}
    assert _validates(_with_block("Stage")) and not _validates(_with_block("Tensor"))
    assert all(hasattr(builtins, n) or n in MODULE_NAMES for n in ("list", "Tensor"))
