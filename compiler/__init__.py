"""nnspec's compiler: spec files in, validated Specs, static shapes and counts, PyTorch out.

Names are loaded on first use (PEP 562), so `import compiler.errors` or a CLI command that never
loads a spec does not pay for pydantic and the layer models; nothing here imports torch until
`build_sequential` is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import Problem, SpecError
from .version import __version__

_LAZY = {
    "load_spec": "load",
    "Spec": "spec",
    "spec_data": "spec",
    "spec_digest": "spec",
    "ResolvedLayer": "shapes",
    "resolved_layers": "api",
    "count_params": "api",
    "output_shape": "api",
    "generate_source": "api",
    "build_sequential": "api",
    "build_module": "api",
    "model_tree": "api",
    "model_digest": "spec",
}

if TYPE_CHECKING:
    from .api import (
        build_module,
        build_sequential,
        count_params,
        generate_source,
        model_tree,
        output_shape,
        resolved_layers,
    )
    from .load import load_spec
    from .shapes import ResolvedLayer
    from .spec import Spec, model_digest, spec_data, spec_digest


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'compiler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = ["Problem", "SpecError", "__version__", *_LAZY]
