"""Property tests: random valid specs drawn from the layer registry, and random mutations of them.

The valid-spec strategy knows no layer type by name: it walks REGISTRY and draws each argument from
the pydantic field's own type and bounds, so a new layer type joins the moment it is registered.
A drawn layer is kept when the compiler accepts it on the shape reaching it (the other direction,
refusals matching torch, is tests/test_layers_vs_torch.py's job).
"""

from __future__ import annotations

import json
import keyword
import math
import types
import typing
from typing import Any

import annotated_types
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from compiler import (
    SpecError,
    build_sequential,
    count_params,
    load_spec,
    output_shape,
    resolved_layers,
    spec_data,
)
from compiler.layers import REGISTRY, ShapeProblem
from compiler.load import read_document
from compiler.reserved import RESERVED_ATTRIBUTES
from runtime.data.inputs import sample_batch
from tests.spec_folder import SPEC_FILES

SMALL = 2  # how far above its lower bound a drawn integer may go: shapes stay tiny

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings(
        "ignore:Using padding=.same. with even kernel:UserWarning"
    ),
]

PROPERTY_SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


# -- drawing arguments from field types --------------------------------------------------------


def _bounds(metadata: list[Any]) -> tuple[float | None, float | None, bool, bool]:
    """Return (low, high, low excluded, high excluded) from annotated-types constraints."""
    low = high = None
    low_open = high_open = False
    for item in metadata:
        if isinstance(item, FieldInfo):
            nested = _bounds(item.metadata)
            low, high = nested[0] if nested[0] is not None else low, (
                nested[1] if nested[1] is not None else high
            )
            low_open, high_open = nested[2] or low_open, nested[3] or high_open
        elif isinstance(item, annotated_types.Gt):
            low, low_open = item.gt, True
        elif isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Lt):
            high, high_open = item.lt, True
        elif isinstance(item, annotated_types.Le):
            high = item.le
    return low, high, low_open, high_open


def values_of(annotation: Any, metadata: list[Any]) -> st.SearchStrategy:
    """Return a strategy for valid-looking values of a pydantic field type (small ones)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return values_of(base, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        return st.one_of(
            [values_of(arg, metadata) for arg in typing.get_args(annotation)]
        )
    if origin is typing.Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        return st.lists(values_of(item, metadata), min_size=1, max_size=3)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    low, high, low_open, high_open = _bounds(metadata)
    if annotation is int:
        first = -SMALL if low is None else int(low) + (1 if low_open else 0)
        last = first + 2 * SMALL if low is None else first + SMALL
        if high is not None:
            last = min(last, int(high) - (1 if high_open else 0))
        return st.integers(first, last)
    if annotation is float:
        return st.floats(
            min_value=-3.0 if low is None else low,
            max_value=3.0 if high is None else high,
            exclude_min=low_open,
            exclude_max=high_open,
            allow_nan=False,
            allow_infinity=False,
        )
    raise AssertionError(f"no strategy for {annotation!r}: teach values_of about it")


def argument_fields(cls) -> dict[str, FieldInfo]:
    """Return a layer class's arguments (fields other than type and name)."""
    return {k: f for k, f in cls.model_fields.items() if k not in ("type", "name")}


def accepts(cls, shape: tuple[int, ...]) -> bool:
    """Return True when the layer type can take a float sample of this rank at all."""
    return (cls.ranks is None or len(shape) in cls.ranks) and not cls.takes_ids


def draw_arguments(draw, cls) -> dict[str, Any]:
    """Return written arguments for a layer class: every required one, each optional one now and then."""
    args = {}
    for arg, field in argument_fields(cls).items():
        if arg in cls.inferred:
            continue  # written after resolving, from the inferred value
        if field.is_required() or draw(st.integers(0, 2)) == 0:
            args[arg] = draw(values_of(field.annotation, field.metadata))
    return args


@st.composite
def layer_at(
    draw, shape: tuple[int, ...], only: str | None = None
) -> tuple[str, dict[str, Any], tuple[int, ...]]:
    """Return (type, written arguments, output shape) of a layer the compiler accepts on `shape`."""
    candidates = (
        [only]
        if only
        else sorted(t for t, cls in REGISTRY.items() if accepts(cls, shape))
    )
    for _ in range(3):
        type_name = draw(st.sampled_from(candidates))
        cls = REGISTRY[type_name]
        for _ in range(
            6
        ):  # the same type again with other arguments: shape rules refuse many
            args = draw_arguments(draw, cls)
            try:
                kwargs, out, _ = cls.model_validate(args).resolve(shape)
            except (ValidationError, ShapeProblem):
                continue
            if math.prod(out) > 4096:
                continue  # keep samples small
            for arg in cls.inferred:
                if draw(st.booleans()):
                    value = kwargs[arg]
                    args[arg] = list(value) if isinstance(value, tuple) else value
            return type_name, args, out
    if only:
        reject()  # rare: no arguments drawn fitted this shape
    # nothing drawn fitted: a layer type without required arguments that takes any shape
    fallback = sorted(
        t
        for t, cls in REGISTRY.items()
        if cls.ranks is None
        and not any(f.is_required() for f in argument_fields(cls).values())
        and not cls.inferred
    )
    return draw(st.sampled_from(fallback)), {}, shape


def written_form(draw, type_name: str, args: dict[str, Any], name: str | None) -> Any:
    """Return the layer in one of SPEC.md's four forms, where that form can express it."""
    cls = REGISTRY[type_name]
    forms = ["canonical", "single_key"]
    if not args and name is None:
        forms += ["bare", "null"]
    if name is None and cls.primary is not None and list(args) == [cls.primary]:
        forms.append("primary")
    form = draw(st.sampled_from(forms))
    named = {**args, **({"name": name} if name else {})}
    if form == "canonical":
        return {"type": type_name, **named}
    if form == "single_key":
        return {type_name: named}
    if form == "bare":
        return type_name
    if form == "null":
        return {type_name: None}
    return {type_name: args[cls.primary]}


layer_names = st.from_regex(r"n_[a-z0-9_]{1,8}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n) and n not in RESERVED_ATTRIBUTES
)


@st.composite
def valid_specs(draw, first: str | None = None) -> dict[str, Any]:
    """Return a random valid spec mapping: a tiny input and 1-6 registry layers in random forms.

    With `first`, the spec starts with a layer of that type (so every type is drawn for sure).
    """
    ranks = REGISTRY[first].ranks if first and REGISTRY[first].ranks else (3, 2, 1)
    rank = draw(st.sampled_from(ranks))  # most layer types want (C, H, W) or (C, L)
    low = 3 if first else 1
    shape = tuple(draw(st.lists(st.integers(low, 8), min_size=rank, max_size=rank)))
    input_shape = shape
    layers, used = [], set()
    for index in range(draw(st.integers(1, 6))):
        type_name, args, shape = draw(
            layer_at(shape, only=first if index == 0 else None)
        )
        name = draw(st.none() | layer_names)
        if name in used:
            name = None
        used.add(name)
        layers.append(written_form(draw, type_name, args, name))
    written_input: Any = list(input_shape)
    if first and REGISTRY[first].takes_ids:  # ids: an int64 input
        written_input = {"shape": list(input_shape), "dtype": "int64"}
    return {
        "name": draw(st.sampled_from(["M", "Net", "Tiny_Model2"])),
        "input": written_input,
        "layers": layers,
    }


# -- the valid-spec property --------------------------------------------------------------------


def assert_keeps_its_promises(mapping: dict[str, Any]) -> None:
    """Assert that a valid spec mapping validates, builds, and runs with the predicted shapes and counts."""
    spec = load_spec(mapping)
    model = build_sequential(spec)
    assert count_params(spec) == sum(p.numel() for p in model.parameters())
    assert [n for n, _ in model.named_children()] == [
        layer.name for layer in spec.layers
    ]
    with torch.no_grad():
        out = model.train()(sample_batch(spec, 2))
    assert tuple(out.shape) == (2, *output_shape(spec))
    for layer in resolved_layers(spec):
        assert layer.params == sum(
            p.numel() for p in getattr(model, layer.name).parameters()
        )
    # the normalized form round-trips
    assert spec_data(load_spec(spec_data(spec))) == spec_data(spec)


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(valid_specs())
def test_random_valid_specs_validate_build_and_run_as_predicted(mapping):
    assert_keeps_its_promises(mapping)


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_every_layer_type_in_random_valid_specs(type_name):
    @settings(PROPERTY_SETTINGS, max_examples=8)
    @given(valid_specs(first=type_name))
    def check(mapping):
        first = mapping["layers"][0]
        assert (
            first == type_name or type_name in first or first.get("type") == type_name
        )
        assert_keeps_its_promises(mapping)

    check()


@settings(PROPERTY_SETTINGS, max_examples=40)
@given(valid_specs(), st.sampled_from(["yaml", "json"]))
def test_random_valid_specs_read_the_same_from_files(tmp_path_factory, mapping, kind):
    folder = tmp_path_factory.mktemp("spec")
    path = folder / f"spec.{kind}"
    text = (
        yaml.safe_dump(mapping, sort_keys=False)
        if kind == "yaml"
        else json.dumps(mapping, indent=1)
    )
    path.write_text(text, encoding="utf-8")
    from_file, from_data = load_spec(path), load_spec(mapping)
    assert spec_data(from_file) == spec_data(from_data)
    assert all(isinstance(line, int) and line > 0 for line in from_file.layer_lines)
    assert list(from_file.layer_lines) == sorted(from_file.layer_lines)


# -- the mutation property ----------------------------------------------------------------------

junk_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "same",
            "valid",
            "relu",
            "linear",
            "conv2d",
            "forward",
            "__class__",
            "os.system",
            "name",
            "type",
            "layers",
            "",
            "\u2028",
            '"""',
            "{x}",
            "../x",
            "1e999",
        ]
    ),
    st.binary(max_size=4),
    st.just(object()),
    st.frozensets(st.integers(0, 3), max_size=2),
    st.tuples(st.integers(0, 3)),
)
junk = st.recursive(
    junk_scalars,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)
junk_keys = st.one_of(
    st.text(max_size=8),
    st.integers(-3, 3),
    st.none(),
    st.booleans(),
    st.sampled_from(["type", "name", "out_features", "kernel_size", "p", "epochs"]),
    st.tuples(st.integers(0, 2)),
)


def containers(data: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Return every (path, mapping or list) inside `data`, the root included."""
    out = []
    stack = [(path, data)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            out.append((here, value))
            stack.extend((here + (k,), v) for k, v in value.items())
        elif isinstance(value, list):
            out.append((here, value))
            stack.extend((here + (i,), v) for i, v in enumerate(value))
    return out


@st.composite
def mutated(draw, base: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of `base` with 1-4 random mutations: junk values, keys dropped or added, items inserted, layers shuffled."""
    data = json.loads(json.dumps(base))  # a deep copy of plain data
    for _ in range(draw(st.integers(1, 4))):
        places = containers(data)
        path, container = places[draw(st.integers(0, len(places) - 1))]
        kind = draw(st.sampled_from(["replace", "drop", "add", "insert", "shuffle"]))
        if kind == "shuffle":
            if isinstance(data.get("layers"), list):
                data["layers"] = draw(st.permutations(data["layers"]))
        elif isinstance(container, dict):
            keys = list(container)
            if kind == "replace" and keys:
                container[draw(st.sampled_from(keys))] = draw(junk)
            elif kind == "drop" and keys:
                del container[draw(st.sampled_from(keys))]
            else:
                container[draw(junk_keys)] = draw(junk)
        elif isinstance(container, list):
            if kind == "replace" and container:
                container[draw(st.integers(0, len(container) - 1))] = draw(junk)
            elif kind == "drop" and container:
                del container[draw(st.integers(0, len(container) - 1))]
            else:
                container.insert(draw(st.integers(0, len(container))), draw(junk))
    return data


SPEC_DOCUMENTS = [read_document(p).data for p in SPEC_FILES]
mutation_bases = st.one_of(st.sampled_from(SPEC_DOCUMENTS), valid_specs())


def assert_only_located_spec_errors(data: Any) -> None:
    """Assert that load_spec returns a Spec or raises a SpecError whose every problem has a path."""
    try:
        spec = load_spec(data)
    except SpecError as exc:
        assert exc.problems, "a SpecError without problems"
        for problem in exc.problems:
            # a mapping has no lines: every problem names its path, or says it is the whole top level
            assert (
                problem.path
                or "top-level" in problem.message
                or "at the top" in problem.message
            ), problem
            assert (
                "function-" not in problem.path and "tagged-union" not in problem.path
            ), problem
            assert problem.message and "Traceback" not in problem.message
        text = str(exc)
        assert text.count("\n") == len(exc.problems) - 1
        return
    # still valid after the mutation: then it keeps every promise of a valid spec
    # (built and run only when small: a mutation may leave a valid but large model)
    if (
        count_params(spec) <= 20_000
        and sum(math.prod(layer.output_shape) for layer in resolved_layers(spec))
        <= 20_000
    ):
        model = build_sequential(spec)
        assert count_params(spec) == sum(p.numel() for p in model.parameters())
        with torch.no_grad():
            out = model.eval()(sample_batch(spec, 2))
        assert tuple(out.shape) == (2, *output_shape(spec))


@settings(PROPERTY_SETTINGS, max_examples=300)
@given(st.data())
def test_mutated_specs_raise_nothing_but_located_spec_errors(data):
    base = data.draw(mutation_bases)
    assert_only_located_spec_errors(data.draw(mutated(base)))


@settings(PROPERTY_SETTINGS, max_examples=50)
@given(junk)
def test_junk_in_place_of_each_top_level_section(value):
    smallest = min(SPEC_DOCUMENTS, key=lambda d: len(json.dumps(d)))
    for key in (
        "name",
        "input",
        "layers",
        "training",
        "description",
        "spec_version",
        "lint",
    ):
        base = json.loads(json.dumps(smallest))
        base[key] = value
        assert_only_located_spec_errors(base)


@pytest.mark.parametrize("depth", [65, 10_000])
def test_deeply_nested_mappings_are_refused_without_recursion(depth):
    nested: Any = 1
    for _ in range(depth):
        nested = {"a": nested}
    with pytest.raises(SpecError) as caught:
        load_spec({"name": "Deep", "input": [4], "layers": [nested]})
    assert "nested more than 64 levels deep" in str(caught.value)


# -- text-level fuzzing of the readers ------------------------------------------------------------

SYNTAX = st.sampled_from(
    list("{}[],:-'\"#&*!|>%@`\t\n ")
    + [
        "\u2028",
        "\ufeff",
        "\x00",
        "\\",
        "1e999",
        "NaN",
        "!!python/object:os.system",
        "<<: ",
        "---\n",
    ]
)


@st.composite
def damaged_text(draw) -> tuple[str, str]:
    """Return (suffix, text): a valid spec written as YAML or JSON, then damaged in a few places."""
    mapping = draw(st.sampled_from(SPEC_DOCUMENTS[:2]) | valid_specs())
    suffix = draw(st.sampled_from([".yaml", ".json"]))
    text = (
        yaml.safe_dump(mapping, sort_keys=False)
        if suffix == ".yaml"
        else json.dumps(mapping, indent=2)
    )
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(SYNTAX | st.text(max_size=3)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 8)) :]
    return suffix, text


@settings(PROPERTY_SETTINGS, max_examples=150)
@given(damaged_text())
def test_damaged_files_raise_only_spec_errors_with_lines(tmp_path_factory, case):
    suffix, text = case
    path = tmp_path_factory.mktemp("damaged") / f"spec{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_spec(path)
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line is not None and problem.line >= 1, problem
            assert problem.line <= text.count("\n") + 2, problem
        assert all(line.startswith(f"{path}:") for line in str(exc).splitlines())


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(st.binary(max_size=200), st.sampled_from([".yaml", ".json"]))
def test_random_bytes_raise_only_spec_errors(tmp_path_factory, raw, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"spec{suffix}"
    path.write_bytes(raw)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert all(problem.line is not None for problem in caught.value.problems)
