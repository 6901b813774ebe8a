"""A static, layer-by-layer summary of a spec, computed without torch."""

from __future__ import annotations

from typing import Any

from .shapes import ResolvedLayer

BYTES_PER_PARAM = 4  # float32


def summary_data(spec: Any, layers: tuple[ResolvedLayer, ...]) -> dict[str, Any]:
    """Return the summary as plain data: totals and one entry per layer."""
    total = sum(layer.params for layer in layers)
    return {
        "name": spec.name,
        "input_shape": list(spec.input),
        "total_params": total,
        "trainable_params": total,
        "param_bytes": total * BYTES_PER_PARAM,
        "layers": [
            {
                "name": layer.name,
                "type": layer.type,
                "output_shape": list(layer.output_shape),
                "params": layer.params,
            }
            for layer in layers
        ],
    }


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def summary_table(data: dict[str, Any]) -> str:
    """Return the summary as a fixed-width text table."""
    rows = [("#", "name", "type", "output shape", "params")]
    rows.append(("", "(input)", "", _shape(data["input_shape"]), ""))
    for i, layer in enumerate(data["layers"]):
        rows.append((str(i), layer["name"], layer["type"], _shape(layer["output_shape"]), f"{layer['params']:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    rule = "-" * (sum(widths) + 2 * 4)

    def fmt(row: tuple) -> str:
        cells = [row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                 row[3].ljust(widths[3]), row[4].rjust(widths[4])]
        return "  ".join(cells).rstrip()

    lines = [f"{data['name']}", rule, fmt(rows[0]), rule, *(fmt(r) for r in rows[1:]), rule]
    lines.append(f"Total params:         {data['total_params']:,}")
    lines.append(f"Trainable params:     {data['trainable_params']:,}")
    lines.append(f"Parameter memory:     {_human_bytes(data['param_bytes'])} (float32)")
    return "\n".join(lines)


def _shape(shape: list[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
