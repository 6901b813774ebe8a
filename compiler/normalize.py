"""Turn the four ways of writing a layer (SPEC.md) into the canonical `{type: ..., args}` form."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import Problem, format_path
from .layers import REGISTRY
from .torch_names import BY_KEY

Path = tuple


@dataclass
class NormalizedLayer:
    """A layer in canonical form, with the source path of each of its arguments."""

    index: int
    data: dict[str, Any] | None  # None when the layer could not be read at all
    type: str | None
    arg_paths: dict[str, Path] = field(default_factory=dict)
    path: Path = ()


def did_you_mean(word: str, choices, cutoff: float = 0.6) -> str:
    """Return ` (did you mean 'x'?)` for the closest choice, or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class EntryKind:
    """What the normalizer needs to know of a type that can stand in a layer list."""

    primary: str | None  # the argument that `- type: VALUE` sets
    arguments: tuple[str, ...]  # every argument but type and name, in order


def layer_kinds() -> dict[str, EntryKind]:
    """Return the EntryKind of every registered layer type."""
    return {
        name: EntryKind(
            cls.primary, tuple(a for a in cls.model_fields if a not in ("type", "name"))
        )
        for name, cls in REGISTRY.items()
    }


# Parts of a type's name that change what it computes: a suggestion must keep each of them
# (`adaptivemaxpool2d` is never "adaptiveavgpool2d", `hardtanh` never "tanh").
_MEANINGFUL = (
    "adaptive",
    "max",
    "avg",
    "lp",
    "fractional",
    "batch",
    "instance",
    "layer",
    "group",
    "rms",
    "local",
    "hard",
    "leaky",
    "log",
    "soft",
    "shrink",
    "sign",
    "transpose",
    "pixel",
    "zero",
    "reflection",
    "replication",
    "circular",
    "constant",
    "pad",
    "unflatten",
    "flatten",
    "un",
    "multihead",
    "encoder",
    "decoder",
    "cell",
    "bag",
    "lazy",
    "alpha",
    "feature",
    "sigmoid",
    "tanh",
    "relu",
    "elu",
    "gelu",
    "silu",
    "mish",
    "swish",
    "loss",
)
LIST_MARKER = "; the layer types are: "


def _key(word: str) -> str:
    """Return a type name as compared: lower case, no `nn.`/`torch.nn.` prefix, no `_` or `-`."""
    word = word.strip()
    for prefix in ("torch.nn.", "nn."):
        if word.startswith(prefix):
            word = word[len(prefix) :]
    return word.lower().replace("_", "").replace("-", "")


def _meaning(key: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """Return the numbers of a name (`relu6`, `conv3d`) and the meaningful parts it holds."""
    found, rest = set(), key
    for part in sorted(_MEANINGFUL, key=len, reverse=True):
        if part in rest:
            found.add(part)
            rest = rest.replace(part, " ")
    return tuple(re.findall(r"\d+", key)), frozenset(found)


def _same_operation(word: str, candidate: str) -> bool:
    """Return whether `candidate` may be what `word` misspells: the same numbers, and every
    meaningful part of the word in it (a part missing from the word may be the typo itself:
    `tahn` is tanh, but `hardtanh` is never tanh and `relu6` never relu)."""
    numbers, parts = _meaning(word)
    their_numbers, their_parts = _meaning(candidate)
    return numbers == their_numbers and parts <= their_parts


def suggest_type(value: str, choices) -> str | None:
    """Return the type `value` most likely means, or None: the same name in torch's spelling
    (`ReLU`, `nn.Conv2d`, `batch_norm2d`), or a close spelling that computes the same thing;
    never a different operation (`relu6` is not `relu`, even where relu6 is not a type).
    """

    choices = list(choices)
    key = _key(value)
    by_key = {_key(c): c for c in choices}
    if key in by_key:
        return by_key[key]
    if key in BY_KEY:
        return None  # another torch.nn operation, which this vocabulary does not have
    close = difflib.get_close_matches(key, list(by_key), n=5, cutoff=0.6)
    for candidate in close:
        if _same_operation(key, candidate):
            return by_key[candidate]
    return None


def unknown_type_message(value: Any, choices) -> str:
    """Return the message for an entry whose type is not known, with a suggestion or the list.

    The list of types ends the message after LIST_MARKER; validation keeps it on the first such
    message of a file only.
    """

    if not isinstance(value, str):
        return f"a layer type is a name such as 'linear', got {value!r}"
    shown = value if len(value) <= 40 else value[:40] + "..."
    suggestion = suggest_type(value, choices)
    if suggestion is not None:
        return f"unknown layer type {shown!r} (did you mean '{suggestion}'?)"
    other = BY_KEY.get(_key(value))
    note = f" (torch's nn.{other} is not one of them yet)" if other else ""
    # nothing close: list them (types come from the registry, never from imports)
    return f"unknown layer type {shown!r}{note}{LIST_MARKER}{', '.join(choices)}"


def normalize_layer(
    raw: Any,
    index: int,
    problems: list[Problem],
    line_of,
    path: Path | None = None,
    kinds=None,
) -> NormalizedLayer:
    """Return the canonical form of one layer; append a Problem for each form mistake.

    `kinds` maps every type that may stand here to its EntryKind (default: the layer registry);
    containers and blocks add theirs.
    """
    kinds = layer_kinds() if kinds is None else kinds
    path = ("layers", index) if path is None else tuple(path)
    here = format_path(path)

    def fail(message: str, at: Path = path) -> NormalizedLayer:
        problems.append(
            Problem(format_path(at) if at != path else here, message, line_of(at))
        )
        return NormalizedLayer(index, None, None, {}, path)

    if isinstance(raw, str):  # bare name: `- relu`
        if raw not in kinds:
            return fail(unknown_type_message(raw, kinds))
        return NormalizedLayer(index, {"type": raw}, raw, {}, path)

    if not isinstance(raw, dict) or not raw:
        return fail(
            "a layer is a type name (`- relu`), a single-key mapping (`- linear: 64` or "
            f"`- linear: {{out_features: 64}}`) or a mapping with `type`; got {_describe(raw)}"
        )

    if "type" in raw:  # canonical: `- {type: linear, out_features: 64}`
        kind = raw["type"]
        if not isinstance(kind, str) or kind not in kinds:
            return fail(unknown_type_message(kind, kinds), path + ("type",))
        arg_paths = {key: path + (key,) for key in raw}
        return NormalizedLayer(index, dict(raw), kind, arg_paths, path)

    if len(raw) != 1:
        keys = ", ".join(repr(k) for k in list(raw)[:5])
        return fail(
            f"a layer mapping without `type` must have exactly one key, the layer type; got {keys}"
            " (indent the arguments under the type, or add `type:`)"
        )

    ((kind, value),) = raw.items()
    if not isinstance(kind, str) or kind not in kinds:
        return fail(unknown_type_message(kind, kinds))
    entry = kinds[kind]
    if isinstance(value, dict):  # single-key mapping: `- linear: {out_features: 64}`
        if "type" in value:
            return fail(
                f"`type` is already given by the key '{kind}'; remove it",
                path + (kind, "type"),
            )
        arg_paths = {key: path + (kind, key) for key in value}
        return NormalizedLayer(index, {"type": kind, **value}, kind, arg_paths, path)
    if value is None:  # `- relu:` with nothing after it means the bare name
        return NormalizedLayer(index, {"type": kind}, kind, {}, path)
    if entry.primary is None:  # primary argument form, for a layer that has none
        args = entry.arguments
        how = f"`- {kind}: {{{args[0]}: ...}}`" if args else f"`- {kind}`"
        return fail(
            f"{kind} has no primary argument, so `{kind}: {value!r}` is ambiguous; write {how}",
            path + (kind,),
        )
    return NormalizedLayer(
        index,
        {"type": kind, entry.primary: value},
        kind,
        {entry.primary: path + (kind,)},
        path,
    )


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "an empty mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"{value!r} ({type(value).__name__})"
