"""The layer reference (docs/layers.md), written from the registry so it never drifts."""

from __future__ import annotations

from pydantic_core import PydanticUndefined

from .containers import CONTAINERS
from .layers import REGISTRY
from .layers.base import GROUPS


def _default(field) -> str:
    if field.default is PydanticUndefined:
        return "required"
    return (
        "`null`" if field.default is None else f"`{field.default!r}`".replace("'", "")
    )


def layer_reference() -> str:
    """Return the Markdown reference of every layer type: arguments, defaults, shapes."""
    out = [
        "# Layer reference",
        "",
        "Generated from the layer registry (`python -m compiler.reference > docs/layers.md`); "
        "a test keeps it fresh.",
        "Argument names and defaults are those of the `torch.nn` class. Inferred arguments are "
        "computed from the shape reaching the layer; when written they must equal it. Shapes are "
        "per sample, without the batch dimension.",
        "",
        "Recurrent and attention layers always run `batch_first`: a sequence sample is `[L, E]`.",
        "Tensor operations have no torch.nn class: generated code writes them in `forward`.",
        "Only `embedding` takes an int64 input (`input: {shape: [L], dtype: int64}`).",
    ]
    for group in GROUPS:
        out += [
            "",
            f"### {group.capitalize()}",
            "",
            "| type | torch.nn | primary argument | inferred | input |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, cls in REGISTRY.items():
            if cls.group != group:
                continue
            rank = cls.rank_hint or ("any rank" if cls.ranks is None else "")
            if cls.takes_ids:
                rank = "int64 ids, any rank"
            torch_name = f"`{cls.torch_class}`" if cls.torch_class else "— (tensor op)"
            out.append(
                f"| `{name}` | {torch_name} | {cls.primary or '—'} | "
                f"{', '.join(cls.inferred) or '—'} | {rank} |"
            )
    out += [
        "",
        "## Containers",
        "",
        "Written like a layer, in any of the four forms (see docs/containers.md for a walk-through).",
        "`sequential` and `repeat` are modules (a child with a name: `group1`, `repeat1`);",
        "`residual` and `branches` are wiring: their layers belong to the module around them.",
        "",
        "| container | primary argument | arguments | means |",
        "| --- | --- | --- | --- |",
    ]
    for name, kind in CONTAINERS.items():
        args = ", ".join(
            f"`{a}`" for a in kind.arguments + (("name",) if kind.is_module else ())
        )
        out.append(f"| `{name}` | {kind.primary or '—'} | {args} | {kind.summary} |")
    out += [
        "",
        "A block defined under `blocks:` is used like a layer type; its first parameter is its",
        "primary argument, and each use is a child module named after the block in snake case",
        "(`basic_block1`).",
    ]
    for name, cls in REGISTRY.items():
        out += [
            "",
            f"## `{name}`",
            "",
            (cls.__doc__ or "").strip(),
            "",
            "| argument | default |",
            "| --- | --- |",
        ]
        for arg, field in cls.model_fields.items():
            if arg in ("type",):
                continue
            note = " (inferred)" if arg in cls.inferred else ""
            note += " (primary)" if arg == cls.primary else ""
            out.append(
                f"| `{arg}`{note} | {_default(field) if arg != 'name' else 'automatic: ' + cls.prefix + 'N'} |"
            )
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(layer_reference(), end="")
