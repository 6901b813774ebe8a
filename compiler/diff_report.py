"""`nnspec diff`'s data (compiler/model_diff.py) as text for a terminal or Markdown for a pull request."""

from __future__ import annotations

import json
from typing import Any

from .formatting import format_shape, human_count

MARKS = {"changed": "~", "added": "+", "removed": "-"}
MAX_KEYS_SHOWN = 20


def _optional_shape(shape: list[int] | None) -> str:
    return format_shape(shape) if shape is not None else "-"


def _value(field: str, value: Any) -> str:
    if field == "output_shape":
        return _optional_shape(value)
    if field == "params":
        return f"{value:,}"
    if field == "macs":
        return human_count(value)
    if field == "wiring":
        return value or "(nothing)"
    if isinstance(value, str):
        return value
    return json.dumps(value)


_LABELS = {"output_shape": "output", "params": "params", "macs": "MACs"}


def _change(difference: dict[str, Any]) -> str:
    field = difference["field"]
    label = _LABELS.get(field, field)
    if field == "wiring":  # its own arrows: old and new on lines of their own
        return f"wiring\n      old: {_value(field, difference['old'])}\n      new: {_value(field, difference['new'])}"
    text = f"{label} {_value(field, difference['old'])} -> {_value(field, difference['new'])}"
    if field in ("params", "macs"):
        text += _delta(difference["old"], difference["new"], field == "macs")
    return text + (" (inferred)" if difference.get("inferred") else "")


def _delta(old: int, new: int, compact: bool = False) -> str:
    step = new - old
    sign = "+" if step >= 0 else "-"
    amount = human_count(abs(step)) if compact else f"{abs(step):,}"
    share = f", {sign}{abs(step) / old:.1%}" if old else ""
    return f" ({sign}{amount}{share})"


def _written(written: dict[str, Any] | None) -> str:
    """Return arguments as a spec writes them: `{out_channels: 64, kernel_size: 3}`."""
    if not written:
        return ""
    return "{" + ", ".join(f"{k}: {_value('', v)}" for k, v in written.items()) + "}"


def _what(change: dict[str, Any]) -> str:
    """Return what an added or removed layer or module is: `{p: 0.1}: output [...], 0 params, 0 MACs`."""
    node = change["new"] or change["old"]
    parts = []
    if change["kind"] == "module":
        parts.append(f"{node['layers']} layer{'s' * (node['layers'] != 1)}")
    parts += [
        f"output {_optional_shape(node['output_shape'])}",
        f"{node['params']:,} params",
        f"{human_count(node['macs'])} MACs",
    ]
    written = _written(change["written"])
    return f"{written}: " * bool(written) + ", ".join(parts)


def state_dict_line(data: dict[str, Any]) -> str:
    """Return `a checkpoint of OLD loads into NEW: no, 4 keys change shape`."""
    state = data["state_dict"]
    if data["old"] is None or data["new"] is None:
        return "a checkpoint of OLD loads into NEW: no, one of the two specs does not exist"
    if state["loads"]:
        return f"a checkpoint of OLD loads into NEW: yes, the same {state['new_keys']} keys and shapes"
    parts = []
    for key, one, many in (
        ("reshaped", "key changes shape", "keys change shape"),
        ("vanish", "key vanishes", "keys vanish"),
        ("appear", "key appears", "keys appear"),
    ):
        n = len(state[key])
        if n:
            parts.append(f"{n} {one if n == 1 else many}")
    return "a checkpoint of OLD loads into NEW: no, " + ", ".join(parts)


def _key_lines(data: dict[str, Any]) -> list[str]:
    """Return a line per key that differs; the keys of an added or removed module as one line."""
    state = data["state_dict"]
    lines = [
        f"{e['key']} {_optional_shape(e['old'])} -> {_optional_shape(e['new'])}"
        for e in state["reshaped"]
    ]
    for key, status, one, many in (
        ("vanish", "removed", "vanishes (in OLD only)", "vanish (in OLD only)"),
        ("appear", "added", "appears (in NEW only)", "appear (in NEW only)"),
    ):
        modules = [
            c["path"]
            for c in data["changes"]
            if c["status"] == status and c["kind"] == "module" and c["path"]
        ]
        grouped: dict[str, int] = {}  # an added or removed module -> its number of keys
        for entry in state[key]:
            outer = next((m for m in modules if entry["key"].startswith(f"{m}.")), None)
            if outer is None:
                lines.append(f"{entry['key']} {_optional_shape(entry['shape'])} {one}")
                continue
            if outer not in grouped:
                lines.append(("module", outer))  # type: ignore[arg-type]  # counted below
            grouped[outer] = grouped.get(outer, 0) + 1
        lines = [
            (
                f"{line[1]}.* ({grouped[line[1]]} key{'s' * (grouped[line[1]] != 1)}) "
                f"{one if grouped[line[1]] == 1 else many}"
                if isinstance(line, tuple)
                else line
            )
            for line in lines
        ]
    if len(lines) > MAX_KEYS_SHOWN:
        lines = lines[:MAX_KEYS_SHOWN] + [
            f"... and {len(lines) - MAX_KEYS_SHOWN} more (see --json)"
        ]
    return lines


def _totals(data: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Return (what, OLD, NEW, change) rows."""
    old, new = data["old"] or {}, data["new"] or {}
    rows = []
    for field, label in (
        ("name", "model"),
        ("input_shape", "input"),
        ("output_shape", "output"),
        ("layers", "layers"),
        ("params", "params"),
        ("macs", "MACs"),
    ):
        before, after = old.get(field), new.get(field)
        if field in ("input_shape", "output_shape"):
            shown = (_optional_shape(before), _optional_shape(after))
        elif field == "macs":
            shown = (
                human_count(before) if before is not None else "-",
                human_count(after) if after is not None else "-",
            )
        elif field in ("params", "layers"):
            shown = (
                f"{before:,}" if before is not None else "-",
                f"{after:,}" if after is not None else "-",
            )
        else:
            shown = (before or "-", after or "-")
        change = ""
        if before != after and isinstance(before, int) and isinstance(after, int):
            change = _delta(before, after, field == "macs").strip(" ()")
        elif before != after:
            change = "changed"
        rows.append((label, *shown, change))
    return rows


def diff_text(data: dict[str, Any]) -> str:
    """Return the diff for a terminal."""
    old, new = data["old"], data["new"]
    lines = [
        f"OLD  {old['source'] if old else '(none)'}",
        f"NEW  {new['source'] if new else '(none)'}",
        "",
    ]
    rows = _totals(data)
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for row in rows:
        text = f"{row[0].ljust(widths[0])}  {row[1].rjust(widths[1])} -> {row[2].ljust(widths[2])}"
        lines.append(f"{text}  {row[3]}".rstrip() if row[3] else text.rstrip())
    lines += ["", "state_dict: " + state_dict_line(data)]
    lines += [f"  {line}" for line in _key_lines(data)]
    changes = data["changes"]
    lines.append("")
    if not changes:
        lines.append("no layer or module changed")
    for change in changes:
        path = change["path"] or "(model)"
        mark = MARKS[change["status"]]
        if change["status"] == "changed":
            lines.append(f"{mark} {path}  {change['type']}")
            lines += [f"    {_change(d)}" for d in change["differences"]]
        else:
            what = _what(change)
            lines.append(
                f"{mark} {path}  {change['type']}{' ' if what.startswith('{') else ': '}{what}"
            )
    if data["training"]:
        lines += ["", "training:"]
        lines += [
            f"  {t['path'].removeprefix('training.')} {_value('', t['old'])} -> {_value('', t['new'])}"
            for t in data["training"]
        ]
    return "\n".join(lines)


def _md(text: Any) -> str:
    """Return text safe inside a Markdown table cell."""
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("<", "&lt;")
        .replace("\n", " ")
    )


def _md_change(difference: dict[str, Any]) -> str:
    if difference["field"] == "wiring":
        old, new = (_md(_value("wiring", difference[k])) for k in ("old", "new"))
        return f"wiring `{old}` -> `{new}`"
    return _md(_change(difference))


def diff_markdown(data: dict[str, Any]) -> str:
    """Return the diff as GitHub-flavoured Markdown, for a pull-request comment."""
    old, new = data["old"], data["new"]
    name = (new or old)["name"]
    lines = [
        f"### nnspec diff: `{_md(name)}`",
        "",
        f"OLD `{_md(old['source']) if old else '(none)'}` → NEW `{_md(new['source']) if new else '(none)'}`",
        "",
        "| | OLD | NEW | change |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [
        f"| {row[0]} | {_md(row[1])} | {_md(row[2])} | {_md(row[3])} |"
        for row in _totals(data)
    ]
    verdict = (
        state_dict_line(data).replace(": yes", ": **yes**").replace(": no", ": **no**")
    )
    lines += ["", f"**state_dict**: {_md(verdict)}"]
    keys = _key_lines(data)
    if keys:
        lines += [
            "",
            "<details><summary>keys</summary>",
            "",
            "```",
            *keys,
            "```",
            "",
            "</details>",
        ]
    lines.append("")
    if not data["changes"]:
        lines.append("No layer or module changed.")
    else:
        lines += ["| | path | type | change |", "| --- | --- | --- | --- |"]
        for change in data["changes"]:
            if change["status"] == "changed":
                what = "; ".join(_md_change(d) for d in change["differences"])
            else:
                what = _md(
                    f"{change['status']}: {_what(change)}"
                )  # the type has its column
            lines.append(
                f"| {MARKS[change['status']]} | `{_md(change['path'] or '(model)')}` | "
                f"{_md(change['type'])} | {what} |"
            )
    if data["training"]:
        lines += [
            "",
            "**training**: "
            + "; ".join(
                f"`{_md(t['path'].removeprefix('training.'))}` {_md(_value('', t['old']))} -> {_md(_value('', t['new']))}"
                for t in data["training"]
            ),
        ]
    return "\n".join(lines)
