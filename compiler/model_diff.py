"""What changed between two specs' models, per module and layer, as plain data (no torch).

Layers and modules are matched by their qualified name, which is their state_dict prefix
(`layer4.0.conv1`). A layer is changed when its type, a torch argument (inferred ones included),
its output shape, its parameters or its MACs differ; a module when its type, its block's
arguments, its `times` or its wiring (residual, branches) differ. An added or removed module is
one entry, not one per layer inside it. The state_dict is compared key by key, statically.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from .api import model_tree
from .costs import leaf_macs, node_macs, state_entries, walk
from .tree import Branches, Leaf, Module, Repeat, Residual, Slot, Where


@dataclass
class Node:
    """One layer or module of a model, as the diff compares it."""

    path: str
    kind: str  # "layer" | "module"
    type: str  # layer type, block name, "sequential" or "repeat"
    args: dict[
        str, Any
    ]  # torch arguments of a layer; a block use's arguments; a repeat's times
    written: dict[
        str, Any
    ]  # the arguments as written (a layer's non-defaults), for display
    inferred: tuple[str, ...]  # arguments computed from the input shape
    output_shape: list[int]
    params: int
    macs: int
    layers: int  # layers inside (1 for a layer)
    wiring: str  # how a module's children are wired ("" for a plain chain or a layer)
    structure: str = ""  # the children in order, with the wiring (a chain too)

    def data(self) -> dict[str, Any]:
        """Return the node as JSON data."""
        out = {
            "kind": self.kind,
            "type": self.type,
            "args": self.args,
            "output_shape": self.output_shape,
            "params": self.params,
            "macs": self.macs,
        }
        if self.kind == "module":
            out["layers"] = self.layers
            if self.wiring:
                out["wiring"] = self.wiring
        return out


def _plain(value: Any) -> Any:
    """Return a value as JSON data (tuples as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _leaf_node(path: str, leaf: Leaf) -> Node:
    layer = leaf.layer
    written = layer.model_dump(
        mode="json", exclude_defaults=True, exclude={"name", "type"}
    )
    inferred = tuple(
        arg for arg in type(layer).inferred if getattr(layer, arg, None) is None
    )
    return Node(
        path,
        "layer",
        layer.type_name,
        _plain(leaf.kwargs),
        written,
        inferred,
        list(leaf.info.output_shape),
        leaf.info.params,
        leaf_macs(leaf),
        1,
        "",
    )


def _count_layers(node: Any) -> int:
    return sum(
        1
        for _, n in walk(node.body if isinstance(node, Module) else [node])
        if isinstance(n, Leaf)
    )


def _module_node(path: str, node: Module | Repeat) -> Node:
    if isinstance(node, Repeat):
        args = {"times": node.times}
        kind, wiring = "repeat", ""
        layers = sum(_count_layers(copy) for copy in node.copies)
    else:
        args = {name: _bound_value(bound) for name, bound in node.args.items()}
        kind = node.block if node.kind == "block" and node.block else "sequential"
        wiring = "" if node.is_chain else describe_wiring(node.body)
        layers = _count_layers(node)
    structure = describe_wiring(node.body) if isinstance(node, Module) else ""
    return Node(
        path,
        "module",
        kind,
        args,
        args,
        (),
        list(node.info.output_shape),
        node.info.params,
        node_macs(node),
        layers,
        wiring,
        structure,
    )


def _bound_value(bound: Any) -> Any:
    if bound.is_list:
        value = bound.value or []
        return f"[{len(value)} layers]" if value else "[]"
    return _plain(bound.value)


def describe_wiring(body: list) -> str:
    """Return a body's wiring over its children's names: `residual(conv1 -> bn1 + downsample) -> relu2`."""
    parts = []
    for op in body:
        if isinstance(op, Residual):
            shortcut = describe_wiring(op.shortcut) or "x"
            parts.append(f"residual({describe_wiring(op.layers) or 'x'} + {shortcut})")
        elif isinstance(op, Branches):
            paths = ", ".join(describe_wiring(p) or "x" for p in op.paths)
            merge = f"concat[dim={op.dim}]" if op.merge == "concat" else op.merge
            parts.append(f"{merge}({paths})")
        elif isinstance(op, Slot):
            if op.module is not None:
                parts.append(op.name)
        else:
            parts.append(op.name)
    return " -> ".join(parts)


def model_nodes(tree: Module) -> dict[str, Node]:
    """Return every layer and module of a resolved model by qualified name, in registration order."""
    out = {}
    for path, node in walk(tree.body):
        out[path] = (
            _leaf_node(path, node)
            if isinstance(node, Leaf)
            else _module_node(path, node)
        )
    return out


# -- comparing ------------------------------------------------------------------------------------


def _differences(old: Node, new: Node) -> list[dict[str, Any]]:
    """Return what differs between two matched nodes: [{field, old, new}], arguments first."""
    found: list[dict[str, Any]] = []
    if old.type != new.type:
        found.append({"field": "type", "old": old.type, "new": new.type})
    else:
        for key in list(old.args) + [k for k in new.args if k not in old.args]:
            before, after = old.args.get(key), new.args.get(key)
            if before != after:
                item = {"field": key, "old": before, "new": after}
                if key in new.inferred or key in old.inferred:
                    item["inferred"] = True
                found.append(item)
    if old.wiring != new.wiring:
        found.append({"field": "wiring", "old": old.structure, "new": new.structure})
    own = bool(found)
    for field in ("output_shape", "params", "macs"):
        before, after = getattr(old, field), getattr(new, field)
        if before != after:
            found.append({"field": field, "old": before, "new": after})
    if new.kind == "module" and not own and old.kind == new.kind:
        return (
            []
        )  # a module whose only changes come from its layers: the layers say them
    return found


def _aligned(old: list[str], new: list[str]) -> list[tuple[str | None, str | None]]:
    """Return (old path, new path) pairs in one order: matched names, removed and added ones."""
    old_set, new_set = set(old), set(new)
    pairs: list[tuple[str | None, str | None]] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs += [(name, name) for name in old[i1:i2]]
            continue
        pairs += [(name, None) for name in old[i1:i2] if name not in new_set]
        pairs += [(name if name in old_set else None, name) for name in new[j1:j2]]
    return pairs


def _inside(path: str, folded: list[str]) -> bool:
    return any(path.startswith(f"{outer}.") for outer in folded)


def model_changes(old_tree: Module, new_tree: Module) -> list[dict[str, Any]]:
    """Return the changed, added and removed layers and modules, in model order."""
    old_nodes, new_nodes = model_nodes(old_tree), model_nodes(new_tree)
    changes: list[dict[str, Any]] = []
    old_wiring = "" if old_tree.is_chain else describe_wiring(old_tree.body)
    new_wiring = "" if new_tree.is_chain else describe_wiring(new_tree.body)
    if old_wiring != new_wiring and old_tree.body and new_tree.body:
        changes.append(
            {
                "path": "",
                "status": "changed",
                "kind": "module",
                "type": "model",
                "differences": [
                    {
                        "field": "wiring",
                        "old": describe_wiring(old_tree.body),
                        "new": describe_wiring(new_tree.body),
                    }
                ],
            }
        )
    folded: list[str] = (
        []
    )  # added or removed modules: what is inside them is not listed
    for old_path, new_path in _aligned(list(old_nodes), list(new_nodes)):
        path = new_path if new_path is not None else old_path
        if _inside(path, folded):
            continue
        old, new = old_nodes.get(old_path) if old_path else None, (
            new_nodes.get(new_path) if new_path else None
        )
        if old is not None and new is not None:
            differences = _differences(old, new)
            if (
                old.kind != new.kind
            ):  # a layer became a module or back: the whole thing changed
                folded.append(path)
            if differences:
                changes.append(
                    {
                        "path": path,
                        "status": "changed",
                        "kind": new.kind,
                        "type": new.type,
                        "old": old.data(),
                        "new": new.data(),
                        "written_old": old.written,
                        "written_new": new.written,
                        "differences": differences,
                    }
                )
            continue
        node = new if new is not None else old
        if node.kind == "module":
            folded.append(path)
        changes.append(
            {
                "path": path,
                "status": "added" if new is not None else "removed",
                "kind": node.kind,
                "type": node.type,
                "old": old.data() if old else None,
                "new": new.data() if new else None,
                "written": node.written,
            }
        )
    return changes


def state_dict_changes(old_tree: Module, new_tree: Module) -> dict[str, Any]:
    """Return how the state_dict keys differ, and whether a checkpoint of OLD loads into NEW.

    Loading is strict `load_state_dict`: every key present on both sides, with the same shape.
    """
    old, new = state_entries(old_tree), state_entries(new_tree)
    vanish = [
        {"key": k, "shape": list(e.shape)} for k, e in old.items() if k not in new
    ]
    appear = [
        {"key": k, "shape": list(e.shape)} for k, e in new.items() if k not in old
    ]
    reshaped = [
        {"key": k, "old": list(e.shape), "new": list(new[k].shape)}
        for k, e in old.items()
        if k in new and e.shape != new[k].shape
    ]
    return {
        "loads": not (vanish or appear or reshaped),
        "old_keys": len(old),
        "new_keys": len(new),
        "reshaped": reshaped,
        "vanish": vanish,
        "appear": appear,
    }


def _walk_data(before: Any, after: Any, path: str, found: list[dict[str, Any]]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in list(before) + [k for k in after if k not in before]:
            child = f"{path}.{key}" if path else str(key)
            _walk_data(before.get(key), after.get(key), child, found)
    elif before != after:
        found.append({"path": path, "old": before, "new": after})


def side(spec: Any, source: str) -> dict[str, Any]:
    """Return the totals of one side of a diff."""

    tree = model_tree(spec)
    return {
        "source": source,
        "name": spec.name,
        "input_shape": list(tree.info.input_shape),
        "output_shape": list(tree.info.output_shape),
        "params": tree.info.params,
        "macs": node_macs(tree),
        "layers": sum(1 for _, n in walk(tree.body) if isinstance(n, Leaf)),
    }


def spec_diff(
    old_spec: Any, new_spec: Any, old_source: str, new_source: str
) -> dict[str, Any]:
    """Return the whole diff of two validated specs as JSON data (what `nnspec diff --json` prints).

    `old_spec` may be None for a spec that did not exist (everything is added); `new_spec` too.
    """

    empty = Module("model", "", [], Where(()))
    old_tree = model_tree(old_spec) if old_spec is not None else empty
    new_tree = model_tree(new_spec) if new_spec is not None else empty
    training: list[dict[str, Any]] = []
    if old_spec is not None and new_spec is not None:
        _walk_data(
            old_spec.training_or_default.model_dump(mode="json"),
            new_spec.training_or_default.model_dump(mode="json"),
            "training",
            training,
        )
    return {
        "old": side(old_spec, old_source) if old_spec is not None else None,
        "new": side(new_spec, new_source) if new_spec is not None else None,
        "changes": model_changes(old_tree, new_tree),
        "state_dict": state_dict_changes(old_tree, new_tree),
        "training": training,
    }
