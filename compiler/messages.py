"""Pydantic validation errors rewritten for the person who wrote the spec."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Literal, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .document import Document
from .errors import Problem, format_path
from .normalize import did_you_mean

_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
    "none_required": "null",
}


def show(value: Any) -> str:
    """Return a short, safe rendering of a value the user wrote."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}" if len(value) > 8 else repr(value)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _count(value: Any) -> str:
    """Return how many items a list has, with the list itself when it is short."""
    if not isinstance(value, (list, tuple)):
        return show(value)
    return f"{len(value)}" + (f" ({show(list(value))})" if 0 < len(value) <= 8 else "")


def misspelled_for(err: dict, hint: dict | None) -> str | None:
    """Return the known key an unknown key is probably a misspelling of, or None."""
    if err["type"] != "extra_forbidden" or not err["loc"]:
        return None
    choices = list((hint or {}).get("choices", []))
    close = difflib.get_close_matches(str(err["loc"][-1]), choices, n=1, cutoff=0.5)
    return close[0] if close else None


def _message(err: dict, hint: dict | None) -> str:
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    field = err["loc"][-1] if err["loc"] else ""
    if kind in ("missing", "missing_tag"):
        if hint and hint.get("primary") == field:
            t = err["loc"][0]
            return f"required; write `- {t}: VALUE` or `- {t}: {{{field}: VALUE}}`"
        return "required, but missing"
    if kind == "extra_forbidden":
        choices = list((hint or {}).get("choices", []))
        suggestion = did_you_mean(str(field), choices, cutoff=0.5)
        if hint and hint.get("layer"):
            return f"unknown argument '{field}' for {hint['layer']}{suggestion}; it takes: {', '.join(choices)}"
        if hint and hint.get("variant"):
            takes = (
                f"its arguments are {', '.join(choices)}"
                if choices
                else "it takes none"
            )
            shown = field if str(field).isidentifier() else repr(field)
            return f"{hint['variant']} takes no {shown}{suggestion}; {takes}"
        takes = f"; expected one of: {', '.join(choices)}" if choices else ""
        return f"unknown key '{field}'{suggestion}{takes}"
    if kind in _TYPE_WORDS:
        return (
            f"must be {_TYPE_WORDS[kind]}, got {show(value)} ({type(value).__name__})"
        )
    if kind == "greater_than":
        if ctx.get("gt") == 0:
            # the bound's type is the field's: `lr: 0` is no call for an integer
            what = "integer" if isinstance(ctx["gt"], int) else "number"
            return f"must be a positive {what}, got {show(value)}"
        return f"must be greater than {ctx.get('gt')}, got {show(value)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx.get('ge')}, got {show(value)}"
    if kind == "less_than":
        return f"must be less than {ctx.get('lt')}, got {show(value)}"
    if kind == "less_than_equal":
        most = ctx.get("le")
        return (
            f"must be at most {most:,}, got {show(value)}"
            if isinstance(most, int)
            else f"must be at most {most}, got {show(value)}"
        )
    if kind == "literal_error":
        expected = ctx.get("expected", "")
        choices = [
            c.strip().strip("'")
            for c in expected.replace(" or ", ",").split(",")
            if c.strip()
        ]
        return f"must be one of {expected}, got {show(value)}{did_you_mean(value, choices)}"
    if kind == "too_short":
        least = ctx.get("min_length")
        return f"must have at least {least} item{'s' if least != 1 else ''}, got {_count(value)}"
    if kind == "too_long":
        most = ctx.get("max_length")
        return f"must have at most {most} item{'s' if most != 1 else ''}, got {_count(value)}"
    if kind == "finite_number":
        return f"must be a finite number, got {show(value)}"
    if kind == "string_pattern_mismatch":
        if field == "device":
            return f"must be auto, cpu, cuda, cuda:N or mps, got {show(value)}"
        return f"must match {ctx.get('pattern')}, got {show(value)}"
    if kind == "string_too_long":
        return f"is at most {ctx.get('max_length')} characters, got {len(value)}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg']}, got {show(value)}"


_TYPE_TAGS = frozenset({"int", "float", "str", "bool", "none"})


def _is_union_tag(part: Any) -> bool:
    """Return whether a loc part is a branch name pydantic gives a union (`int`, `list[int]`,
    `constrained-float`, `function-after[...]`), not a key a user wrote."""
    return isinstance(part, str) and (part in _TYPE_TAGS or not part.isidentifier())


def _user_path(loc: tuple, data: Any) -> tuple:
    """Drop the union-branch names pydantic adds to a loc, keeping the keys the user wrote."""
    out: list = []
    current = data
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            out.append(part)
            current = current[part]
        elif (
            isinstance(current, list)
            and isinstance(part, int)
            and 0 <= part < len(current)
        ):
            out.append(part)
            current = current[part]
        elif i == len(loc) - 1 and isinstance(current, dict):
            out.append(part)  # a missing or unknown key
        elif not isinstance(part, int) and (
            isinstance(current, dict) or current is None
        ):
            continue  # a branch name of a union (str, int, function-after[...])
    return tuple(out)


def problems_from_validation(
    exc: ValidationError,
    prefix: tuple,
    doc: Document,
    top_level: bool = False,
    line_of: Callable[[tuple], int | None] | None = None,
    layer_hint: dict | None = None,
    tag: str | None = None,
) -> list[Problem]:
    """Return one Problem per distinct path of a ValidationError, merged and worded for people."""
    merged: dict[str, list[str]] = {}
    lines: dict[str, int | None] = {}
    data = doc.data if top_level else None
    located = []
    for err in exc.errors(include_url=False):
        err = _tag_error_at_key(err)
        loc = tuple(err["loc"])
        if tag is not None:
            loc = (tag, *loc)
        if top_level:
            if loc and loc[0] == "layers" and len(loc) > 1:
                continue  # layers were validated one by one, with better paths
            place = _walk_spec(loc)
            if err["type"] == "missing_tag":
                union = _walk_spec(loc[:-1])
                err = _missing_tag(err, union, _written(data, union.loc))
                place = _walk_spec(tuple(err["loc"]))
            loc = _user_path(place.loc, data)
            hint = (
                {"choices": place.keys, "variant": _variant_name(place, data)}
                if err["type"] == "extra_forbidden"
                else None
            )
        else:
            hint = layer_hint
            # an unknown key is kept as written, even when it reads like a branch name
            # (`1:`, `my key:`)
            last = loc[-1:] if err["type"] == "extra_forbidden" else ()
            loc = tuple(
                part for part in loc[: len(loc) - len(last)] if not _is_union_tag(part)
            )
            loc += last
        located.append(({**err, "loc": loc}, hint))
    # `out_featurs: 8` is one mistake, not two: drop "out_features: required" when an unknown key
    # beside it is a misspelling of it (the unknown key's message suggests the right name)
    misspelled = {
        (err["loc"][:-1], misspelled_for(err, hint))
        for err, hint in located
        if misspelled_for(err, hint)
    }
    for err, hint in located:
        loc = err["loc"]
        if err["type"] == "missing" and loc and (loc[:-1], loc[-1]) in misspelled:
            continue
        if top_level:
            line = doc.line_of(loc)
        else:
            line = line_of(loc) if line_of else doc.line_of(prefix + loc)
        path = format_path(prefix + loc)
        message = _message({**err, "loc": loc if loc else ("",)}, hint)
        if message not in merged.setdefault(path, []):
            merged[path].append(message)
        lines.setdefault(path, line)
    problems = []
    for path, messages in merged.items():
        if len(messages) > 1 and all(m.startswith("must be ") for m in messages):
            got = messages[0].rsplit(", got ", 1)[-1]
            wants = [m[len("must be ") :].rsplit(", got ", 1)[0] for m in messages]
            messages = [f"must be {' or '.join(wants)}, got {got}"]
        problems.extend(Problem(path, m, lines[path]) for m in messages)
    return problems


def _tag_error_at_key(err: dict) -> dict:
    """Return a tagged union's error about its tag as an error at the tag's own key.

    Pydantic reports an unknown or missing `type` of `optimizer: {type: adm}` at `optimizer`,
    with the whole mapping as the input; the person wrote `adm` at `optimizer.type`.
    """
    if err["type"] not in ("union_tag_invalid", "union_tag_not_found"):
        return err
    key = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
    if not key.isidentifier():
        return err  # a callable discriminator: no key of the user's to point at
    written = err.get("input")
    value = written.get(key) if isinstance(written, dict) else written
    loc = (*err["loc"], key)
    if err["type"] == "union_tag_not_found":
        return {**err, "type": "missing_tag", "loc": loc, "input": value}
    tags = [t.strip() for t in err["ctx"].get("expected_tags", "").split(",")]
    expected = f"{', '.join(tags[:-1])} or {tags[-1]}" if len(tags) > 1 else tags[0]
    # worded as the Literal of a flat model was: "must be one of 'sgd', 'adam' or 'adamw'"
    return {
        **err,
        "type": "literal_error",
        "loc": loc,
        "input": value,
        "ctx": {"expected": expected},
    }


def _missing_tag(err: dict, place: "_Place", written: Any) -> dict:
    """Return the error of a tagged union whose tag is left out: at a misspelling of the tag's
    key when one is written (`typ: cosine`), else `required` with the tags to choose from.
    """
    key = err["loc"][-1]
    keys = (
        [k for k in written if isinstance(k, str)] if isinstance(written, dict) else []
    )
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    if close:
        return {**err, "type": "extra_forbidden", "loc": (*err["loc"][:-1], close[0])}
    tags = ", ".join(f"'{t}'" for t in place.tags)
    message = (
        f"required, but missing; one of {tags}" if tags else "required, but missing"
    )
    return {**err, "type": "value_error", "ctx": {"error": message}}


def _variant_name(place: "_Place", data: Any) -> str | None:
    """Return how a message names the variant: `adam`, or `adam (the default type)` where the
    person left the tag out and may not know which variant they got."""
    if place.variant is None:
        return None
    written = _written(data, place.loc[:-1])  # the mapping that holds the unknown key
    if isinstance(written, dict) and place.tag_key not in written:
        return f"{place.variant} (the default {place.tag_key})"
    return place.variant


def _written(data: Any, loc: tuple) -> Any:
    """Return what the user wrote at a loc of their document (None when it is not there)."""
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif not isinstance(part, int) and isinstance(data, dict):
            continue  # a union branch name
        else:
            return None
    return data


class _Place(NamedTuple):
    """Where a pydantic loc leads in the Spec model."""

    loc: tuple  # without the tags of tagged unions (`adam` of optimizer.adam.lr)
    keys: list[str]  # the keys the model reached accepts (did-you-mean, "it takes ...")
    variant: str | None  # the tag of the tagged-union variant reached (`adam`), if any
    tag_key: str | None  # the key that holds the tag (`type`)
    tags: tuple  # the tags to choose from when the loc ends at a tagged union


def _walk_spec(loc: tuple) -> _Place:
    """Return where a raw pydantic loc leads in the Spec model.

    A tagged union (`optimizer: sgd | adam | adamw` on `type`) puts the tag of the variant it
    chose into the loc: the variant's arguments are the keys there, and the tag is dropped.
    """
    # imported here: the spec model's modules import this one (a cycle at the top)
    from .spec import Spec

    kept: list = []
    models: list = [Spec]
    variant = tag_key = None
    for part in loc:
        field = next((m.model_fields[part] for m in models if _is_field(m, part)), None)
        if field is not None:
            kept.append(part)
            models, variant, tag_key = _models_in(field.annotation), None, None
            continue
        key = _tag_key(models)
        chosen = [m for m in models if key and part in _tags(m, key)]
        if len(chosen) == 1:
            models, variant, tag_key = chosen, part, key
            continue
        kept.append(part)  # a union branch name (int, list[int], a Tag) or a list index
        if isinstance(part, int):
            models = []
    if not models:
        return _Place(tuple(kept), [], None, None, ())
    if variant is not None:
        keys = [k for k in models[0].model_fields if k != tag_key]
        return _Place(tuple(kept), keys, variant, tag_key, ())
    key = _tag_key(models)
    tags = tuple(t for m in models for t in _tags(m, key)) if key else ()
    keys = list(dict.fromkeys(k for m in models for k in m.model_fields))
    return _Place(tuple(kept), keys, None, key, tags)


def _is_field(model: Any, part: Any) -> bool:
    return isinstance(part, str) and part in model.model_fields


def _models_in(annotation: Any) -> list:
    """Return the pydantic models an annotation names, through Optional, unions and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _tag_key(models: list) -> str | None:
    """Return the key that tells several models apart (a Literal field of each), or None."""
    if len(models) < 2:
        return None
    first = models[0].model_fields
    return next(
        (
            name
            for name in first
            if all(
                name in m.model_fields
                and get_origin(m.model_fields[name].annotation) is Literal
                for m in models
            )
        ),
        None,
    )


def _tags(model: Any, key: str) -> tuple:
    return get_args(model.model_fields[key].annotation)
