"""A static summary of a spec: the module tree with each node's output shape, parameters and MACs,
and the model's memory (parameters, activations, an estimate of training), without torch.
"""

from __future__ import annotations

from typing import Any

from .api import model_tree
from .costs import activation_memory, node_macs, training_memory
from .formatting import format_bytes, format_shape, human_count
from .tree import Branches, Leaf, Module, Repeat, Residual, Slot

BYTES_PER_PARAM = 4  # float32


def summary_data(spec: Any, layers: tuple | None = None) -> dict[str, Any]:
    """Return the summary as plain data: totals, memory, and one entry per top-level layer or module.

    An entry is `{name, type, output_shape, params, macs}`; a module or wiring adds `children`,
    its own entries, so the JSON nests as the model does (a repeat's children are its copies `0`,
    `1`, ...). MACs are per sample (compiler/compute.py says what counts).
    """

    tree = model_tree(spec)
    total = tree.info.params
    activations = activation_memory(tree)
    training = spec.training_or_default
    estimate = training_memory(tree, training)
    return {
        "name": spec.name,
        "input_shape": list(tree.info.input_shape),
        "output_shape": list(tree.info.output_shape),
        "total_params": total,
        "trainable_params": total,
        "total_macs": node_macs(tree),
        "param_bytes": total * BYTES_PER_PARAM,
        "memory": {
            "parameters": estimate["parameters"],
            "buffers": estimate["buffers"],
            "activations_per_sample": activations.forward_per_sample,
            "kept_for_backward_per_sample": activations.kept_per_sample,
            "training": {"optimizer": training.optimizer.type, **estimate},
        },
        "layers": [_entry(op) for op in tree.body],
    }


def _entry(op: Any, name: str | None = None) -> dict[str, Any]:
    if isinstance(op, Leaf):
        return {
            "name": name or op.name,
            "type": op.layer.type_name,
            "output_shape": list(op.info.output_shape),
            "params": op.info.params,
            "macs": node_macs(op),
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
        "macs": node_macs(op),
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


def _rows(entries: list[dict], depth: int, counter: list[int]) -> list[tuple]:
    rows = []
    for entry in entries:
        indent = "  " * depth
        leaf = "children" not in entry
        number = ""
        if leaf:
            number = str(counter[0])
            counter[0] += 1
        shape = format_shape(entry["output_shape"]) if "output_shape" in entry else ""
        params = f"{entry['params']:,}" if "params" in entry else ""
        macs = human_count(entry["macs"]) if "macs" in entry else ""
        rows.append(
            (number, indent + (entry["name"] or ""), entry["type"], shape, params, macs)
        )
        if not leaf:
            rows += _rows(entry["children"], depth + 1, counter)
    return rows


def summary_table(data: dict[str, Any]) -> str:
    """Return the summary as a fixed-width text table: the module tree, indented."""
    rows = [("#", "name", "type", "output shape", "params", "MACs")]
    rows.append(("", "(input)", "", format_shape(data["input_shape"]), "", ""))
    rows += _rows(data["layers"], 0, [0])
    widths = [max(len(r[c]) for r in rows) for c in range(6)]
    rule = "-" * (sum(widths) + 2 * 5)

    def fmt(row: tuple) -> str:
        cells = [
            row[0].rjust(widths[0]),
            row[1].ljust(widths[1]),
            row[2].ljust(widths[2]),
            row[3].ljust(widths[3]),
            row[4].rjust(widths[4]),
            row[5].rjust(widths[5]),
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
    memory = data["memory"]
    train = memory["training"]
    lines.append(f"Total params:         {data['total_params']:,}")
    lines.append(f"Trainable params:     {data['trainable_params']:,}")
    lines.append(
        f"Total MACs:           {human_count(data['total_macs'])} per sample "
        f"({data['total_macs']:,})"
    )
    lines.append(
        f"Parameter memory:     {format_bytes(data['param_bytes'], 2)} (float32)"
    )
    lines.append(
        f"Activations:          {format_bytes(memory['activations_per_sample'], 2)} per sample "
        f"(every layer's output), {format_bytes(memory['kept_for_backward_per_sample'], 2)} "
        "kept for backward"
    )
    lines.append(
        f"Training memory:      ~{format_bytes(train['total'], 2)} at batch {train['batch_size']} with "
        f"{train['optimizer']} (estimate): parameters {format_bytes(train['parameters'], 2)}, gradients "
        f"{format_bytes(train['gradients'], 2)},"
    )
    lines.append(
        f"                      optimizer state {format_bytes(train['optimizer_state'], 2)}, buffers "
        f"{format_bytes(train['buffers'], 2)}, activations kept for backward "
        f"{format_bytes(train['activations'], 2)}"
    )
    return "\n".join(lines)
