"""The schema of a checkpoint's payload, checked whole before any of it is used.

A checkpoint that loads (its zip checksums hold, its pickle has only plain data and tensors) can
still be damaged or crafted: a key missing, a string where a number goes, a spec nested 20,000
deep. Each check here raises UserError naming the file and the entry, so no KeyError, TypeError
or RecursionError ever reaches the user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from compiler.document import MAX_DEPTH
from compiler.spec import data_digest
from runtime.errors import UserError
from runtime.parallel.device import AUTOCAST_DTYPE

# a payload nests a few levels around the spec (optimizer state: 4); deeper is hostile or broken
_PAYLOAD_DEPTH = MAX_DEPTH + 8
_JSON_SCALARS = (str, int, float, bool, type(None))


def _damaged(source: Path, what: str) -> UserError:
    return UserError(f"{source} is damaged: {what}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_depth(value: Any, source: Path) -> None:
    """Raise UserError when containers in `value` nest deeper than a payload ever does
    (walked without recursion, so a hostile depth is no RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values()) + list(item.keys())
        elif isinstance(item, (list, tuple)):
            children = list(item)
        else:
            continue
        if depth > _PAYLOAD_DEPTH:
            raise _damaged(source, f"it nests more than {_PAYLOAD_DEPTH} levels deep")
        stack.extend((child, depth + 1) for child in children)


def _is_json(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, _JSON_SCALARS):
            return False
    return True


def check_common_entries(payload: dict[str, Any], source: Path) -> None:
    """Raise UserError unless the entries every reader uses (spec, spec_sha256, epoch, model and
    the optional run facts) have their types; the depth is checked first."""
    check_depth(payload, source)
    missing = [
        key for key in ("spec", "spec_sha256", "model", "epoch") if key not in payload
    ]
    if missing:
        raise _damaged(source, f"it lacks {', '.join(missing)}")
    if not isinstance(payload["spec"], dict) or not _is_json(payload["spec"]):
        raise _damaged(source, "its spec is not a mapping of plain data")
    if not isinstance(payload["spec_sha256"], str):
        raise _damaged(source, "its spec_sha256 is not text")
    if not _is_int(payload["epoch"]) or payload["epoch"] < 0:
        raise _damaged(source, f"its epoch is {payload['epoch']!r}, not a count")
    model = payload["model"]
    if not isinstance(model, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor)
        for key, value in model.items()
    ):
        raise _damaged(source, "its model is not a mapping of names to tensors")
    optional = {
        "nnspec_version": (str,),
        "torch_version": (str,),
        "form": (str,),
        "task": (str,),
        "num_classes": (int, type(None)),
        "input": (list,),
        "class_names": (list, type(None)),
        "preprocessing": (dict, type(None)),  # absent in older checkpoints
    }
    for key, types in optional.items():
        if key in payload and not isinstance(payload[key], types):
            raise _damaged(
                source, f"its {key} is of type {type(payload[key]).__name__}"
            )
    # absent in checkpoints from before CPU autocast (runtime/parallel/device.py)
    if payload.get("autocast", None) not in (None, AUTOCAST_DTYPE):
        raise _damaged(
            source,
            f"its autocast is {payload['autocast']!r}, not {AUTOCAST_DTYPE!r} or None",
        )


def check_spec_digest(payload: dict[str, Any], source: Path) -> None:
    """Raise UserError when the spec stored in a checkpoint is not the one its sha256 records."""
    try:
        matches = data_digest(payload["spec"]) == payload["spec_sha256"]
    except (TypeError, ValueError, KeyError, AttributeError):
        matches = False
    if not matches:
        raise _damaged(source, "its spec does not match the spec_sha256 it records")


def check_resume_entries(payload: dict[str, Any], source: Path) -> None:
    """Raise UserError unless the entries a resume uses (optimizer, scheduler, early stopping,
    rng, metrics) are present and of their types."""
    missing = [
        key
        for key in ("optimizer", "scheduler", "early_stopping", "rng", "metrics")
        if key not in payload
    ]
    if missing:
        raise _damaged(source, f"it lacks {', '.join(missing)}, needed to resume")
    _check_optimizer(payload["optimizer"], source)
    if payload["scheduler"] is not None and not isinstance(payload["scheduler"], dict):
        raise _damaged(source, "its scheduler state is not a mapping")
    _check_early_stopping(payload["early_stopping"], payload["epoch"], source)
    _check_rng(payload["rng"], source)
    _check_metrics(payload["metrics"], payload["epoch"], source)


def _check_optimizer(state: Any, source: Path) -> None:
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("state"), dict)
        or not isinstance(state.get("param_groups"), list)
        or not all(
            isinstance(group, dict)
            and isinstance(group.get("params"), list)
            and all(_is_int(index) for index in group["params"])
            for group in state["param_groups"]
        )
        or not all(
            _is_int(index) and isinstance(entry, dict)
            for index, entry in state["state"].items()
        )
    ):
        raise _damaged(source, "its optimizer state is not what torch saves")


_EARLY_STOPPING_TYPES = {
    "monitor": str,
    "mode": str,
    "best": "number",
    "best_epoch": "count",
    "epoch": "count",
    "wait": "count",
    "improved": bool,
}


def _check_early_stopping(state: Any, epoch: int, source: Path) -> None:
    if not isinstance(state, dict):
        raise _damaged(source, "its early_stopping state is not a mapping")
    for key, kind in _EARLY_STOPPING_TYPES.items():
        value = state.get(key)
        fits = (
            _is_number(value)
            if kind == "number"
            else (
                _is_int(value) and value >= 0
                if kind == "count"
                else isinstance(value, kind)
            )
        )
        if not fits:
            raise _damaged(source, f"its early_stopping.{key} is {value!r}")
    if state["best_epoch"] > epoch:
        raise _damaged(
            source, f"its best epoch {state['best_epoch']} is after its epoch {epoch}"
        )


def _check_rng(state: Any, source: Path) -> None:
    def bad(what: str) -> UserError:
        return _damaged(source, f"its rng state is not what nnspec saves ({what})")

    if not isinstance(state, dict):
        raise bad("not a mapping")
    generator = state.get("torch")
    if not isinstance(generator, torch.Tensor) or generator.dtype != torch.uint8:
        raise bad("torch")
    numpy = state.get("numpy")
    if (
        not isinstance(numpy, dict)
        or numpy.get("kind") != "MT19937"
        or not isinstance(numpy.get("keys"), torch.Tensor)
        or tuple(numpy["keys"].shape) != (624,)
        or not _is_int(numpy.get("pos"))
        or not 0 <= numpy["pos"] <= 624
        or not _is_int(numpy.get("has_gauss"))
        or not _is_number(numpy.get("gauss"))
    ):
        raise bad("numpy")
    python = state.get("python")
    internal = python.get("internal") if isinstance(python, dict) else None
    if isinstance(internal, torch.Tensor):
        internal_fits = tuple(internal.shape) == (625,)
    else:
        internal_fits = (
            isinstance(internal, (list, tuple))
            and len(internal) == 625
            and all(_is_int(word) for word in internal)
        )
    if (
        not isinstance(python, dict)
        or not _is_int(python.get("version"))
        or not internal_fits
        or not (python.get("gauss_next") is None or _is_number(python["gauss_next"]))
    ):
        raise bad("python")
    cuda = state.get("cuda")
    if cuda is not None and not (
        isinstance(cuda, list) and all(isinstance(t, torch.Tensor) for t in cuda)
    ):
        raise bad("cuda")


def _check_metrics(rows: Any, epoch: int, source: Path) -> None:
    if not isinstance(rows, list) or len(rows) != epoch:
        raise _damaged(source, f"its metrics do not list its {epoch} epochs")
    for number, row in enumerate(rows, 1):
        if (
            not isinstance(row, dict)
            or row.get("epoch") != number
            or not all(
                isinstance(key, str) and (value is None or _is_number(value))
                for key, value in row.items()
            )
        ):
            raise _damaged(source, f"its metrics row of epoch {number} is not numbers")


def check_weights_fit(
    weights: dict[str, torch.Tensor], model: torch.nn.Module, source: Path
) -> None:
    """Raise UserError unless `weights` has exactly the model's names, shapes and dtypes."""
    expected = model.state_dict()
    if set(weights) != set(expected):
        odd = sorted(set(weights) ^ set(expected))
        raise _damaged(
            source, f"its weights do not fit its spec ({', '.join(odd[:3])})"
        )
    for name, tensor in expected.items():
        found = weights[name]
        if found.shape != tensor.shape or found.dtype != tensor.dtype:
            raise _damaged(
                source,
                f"its weights do not fit its spec ({name} is {list(found.shape)} "
                f"{found.dtype}, the model's {list(tensor.shape)} {tensor.dtype})",
            )


def check_optimizer_fits(
    state: dict[str, Any], optimizer: torch.optim.Optimizer, source: Path
) -> None:
    """Raise UserError unless `state` loads into `optimizer` (a throwaway one of the model) with
    every per-parameter tensor the shape of its parameter."""
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError, RuntimeError, AttributeError) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise _damaged(source, f"its optimizer state does not fit the model ({text})")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, entry in state["state"].items():
        if not 0 <= index < len(params):
            raise _damaged(source, f"its optimizer state names parameter {index}")
        for key, value in entry.items():
            if (
                isinstance(value, torch.Tensor)
                and value.numel() > 1
                and value.shape != params[index].shape
            ):
                raise _damaged(
                    source,
                    f"its optimizer state {key} of parameter {index} is "
                    f"{list(value.shape)}, the parameter {list(params[index].shape)}",
                )
