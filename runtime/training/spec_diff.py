"""What differs between two normalized specs (plain data), as short readable lines."""

from __future__ import annotations

import copy
from typing import Any

from compiler.training import inferred_mode

# What a spec meant before each of these keys existed, so that a run started by an older nnspec
# resumes when the key's value now means the same (a key left out and null now is the same spec
# too). `standardize` is false: csv features were read as they are before it; true now is a
# real difference, reported, and `--set training.data.standardize=false` resumes the run.
BEFORE_THE_KEY: dict[str, Any] = {
    "training.label_smoothing": 0.0,
    "training.data.standardize": False,
}


def with_inferred_values(data: Any) -> Any:
    """Return a copy of normalized spec data with each value nnspec infers when it is not written
    filled in (early_stopping.mode from its monitor), so that writing a value out, or leaving
    it out, is the same spec."""
    training = data.get("training") if isinstance(data, dict) else None
    stopping = training.get("early_stopping") if isinstance(training, dict) else None
    if not isinstance(stopping, dict) or stopping.get("mode") is not None:
        return data
    monitor = stopping.get("monitor", "val_loss")
    if not isinstance(monitor, str):
        return data  # a damaged checkpoint's spec: reported as it is
    data = copy.deepcopy(data)
    data["training"]["early_stopping"]["mode"] = inferred_mode(monitor)
    return data


def spec_differences(
    before: Any, after: Any, ignore: set[str] = frozenset()
) -> list[str]:
    """Return `PATH: X in the checkpoint, Y now` for each leaf that differs (paths in `ignore` skipped)."""
    found: list[str] = []
    _walk(before, after, "", ignore, found)
    return found


def _walk(
    before: Any, after: Any, path: str, ignore: set[str], found: list[str]
) -> None:
    if path in ignore:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            child = f"{path}.{key}" if path else str(key)
            if child in ignore:
                continue
            if key not in after:
                found.append(
                    f"{child}: {_short(before[key])} in the checkpoint, absent now"
                )
            elif key not in before and after[key] is None:
                continue  # a section newer than the checkpoint, left out: the same spec
            elif key not in before and child in BEFORE_THE_KEY:
                former = BEFORE_THE_KEY[child]
                if after[key] == former and type(after[key]) is type(former):
                    continue
                found.append(
                    f"{child}: absent in the checkpoint (so {_short(former)}), "
                    f"{_short(after[key])} now"
                )
            elif key not in before:
                found.append(
                    f"{child}: absent in the checkpoint, {_short(after[key])} now"
                )
            else:
                _walk(before[key], after[key], child, ignore, found)
        return
    if (
        isinstance(before, list)
        and isinstance(after, list)
        and len(before) == len(after)
    ):
        for index, (old, new) in enumerate(zip(before, after)):
            _walk(old, new, f"{path}[{index}]", ignore, found)
        return
    if isinstance(before, list) and isinstance(after, list):
        found.append(f"{path}: {len(before)} items in the checkpoint, {len(after)} now")
        return
    if before != after or type(before) is not type(after):
        found.append(f"{path}: {_short(before)} in the checkpoint, {_short(after)} now")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
