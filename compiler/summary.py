"""A static summary of a spec: the module tree with each node's output shape and parameters, without torch."""

from __future__ import annotations

from typing import Any

from .tree import Branches, Leaf, Module, Repeat, Residual, Slot

BYTES_PER_PARAM = 4  # float32


def summary_data(spec: Any, layers: tuple | None = None) -> dict[str, Any]:
    """Return the summary as plain data: totals, and one entry per top-level layer or module.

    An entry is `{name, type, output_shape, params}`; a module or wiring adds `children`, its own
    entries, so the JSON nests as the model does (a repeat's children are its copies `0`, `1`, ...).
    """
    from .api import model_tree

    tree = model_tree(spec)
    total = tree.info.params
    return {
        "name": spec.name,
        "input_shape": list(spec.input),
        "output_shape": list(tree.info.output_shape),
        "total_params": total,
        "trainable_params": total,
        "param_bytes": total * BYTES_PER_PARAM,
        "layers": [_entry(op) for op in tree.body],
    }


def _entry(op: Any, name: str | None = None) -> dict[str, Any]:
    if isinstance(op, Leaf):
        return {
            "name": name or op.name,
            "type": op.layer.type_name,
            "output_shape": list(op.info.output_shape),
            "params": op.info.params,
        }
    if isinstance(op, Module):
        kind = op.block if op.kind == "block" else "sequential"
        inner = [_entry(child) for child in op.body]
    elif isinstance(op, Repeat):
        kind = "repeat"
        inner = [_entry(copy, str(i)) for i, copy in enumerate(op.copies)]
    elif isinstance(op, Slot):
        kind = "sequential"
        inner = (
            [_entry(child) for child in op.module.body] if op.module is not None else []
        )
    elif isinstance(op, Residual):
        kind = "residual"
        inner = [_entry(c) for c in op.layers if not _empty(c)]
        shortcut = [_entry(c) for c in op.shortcut if not _empty(c)]
        if shortcut:
            inner.append({"name": None, "type": "shortcut", "children": shortcut})
    else:
        assert isinstance(op, Branches)
        kind = f"branches ({op.merge})"
        inner = [
            {
                "name": None,
                "type": "path" if path else "path (identity)",
                "children": [_entry(c) for c in path if not _empty(c)],
            }
            for path in op.paths
        ]
    if isinstance(op, Slot):
        params = op.module.info.params if op.module is not None else 0
    elif isinstance(op, (Residual, Branches)):
        params = _sum(inner)
    else:
        params = op.info.params
    entry = {
        "name": name or getattr(op, "name", None) or None,
        "type": kind,
        "output_shape": list(op.info.output_shape),
        "params": params,
        "children": inner,
    }
    return entry


def _empty(op: Any) -> bool:
    return isinstance(op, Slot) and op.module is None


def _sum(entries: list[dict]) -> int:
    total = 0
    for entry in entries:
        total += (
            entry["params"] if "params" in entry else _sum(entry.get("children", []))
        )
    return total


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def _rows(entries: list[dict], depth: int, counter: list[int]) -> list[tuple]:
    rows = []
    for entry in entries:
        indent = "  " * depth
        leaf = "children" not in entry
        number = ""
        if leaf:
            number = str(counter[0])
            counter[0] += 1
        shape = _shape(entry["output_shape"]) if "output_shape" in entry else ""
        params = f"{entry['params']:,}" if "params" in entry else ""
        rows.append(
            (number, indent + (entry["name"] or ""), entry["type"], shape, params)
        )
        if not leaf:
            rows += _rows(entry["children"], depth + 1, counter)
    return rows


def summary_table(data: dict[str, Any]) -> str:
    """Return the summary as a fixed-width text table: the module tree, indented."""
    rows = [("#", "name", "type", "output shape", "params")]
    rows.append(("", "(input)", "", _shape(data["input_shape"]), ""))
    rows += _rows(data["layers"], 0, [0])
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    rule = "-" * (sum(widths) + 2 * 4)

    def fmt(row: tuple) -> str:
        cells = [
            row[0].rjust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].ljust(widths[3]),
            row[4].rjust(widths[4]),
        ]
        return "  ".join(cells).rstrip()

    lines = [
        f"{data['name']}",
        rule,
        fmt(rows[0]),
        rule,
        *(fmt(r) for r in rows[1:]),
        rule,
    ]
    lines.append(f"Total params:         {data['total_params']:,}")
    lines.append(f"Trainable params:     {data['trainable_params']:,}")
    lines.append(f"Parameter memory:     {_human_bytes(data['param_bytes'])} (float32)")
    return "\n".join(lines)


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
