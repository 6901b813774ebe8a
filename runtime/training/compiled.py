"""`training.compile: true`: the module that training steps run through `torch.compile`.

Only the training steps use the compiled module; validation, checkpoints and the best weights use
the model itself, so a checkpoint keeps the plain state_dict keys (a compiled module's carry an
`_orig_mod.` prefix) and evaluates, exports and resumes with compile on or off. torch.compile
compiles lazily, at the first batch: a platform without what it needs (inductor on the CPU needs
a C++ compiler; dynamo does not run on every Python) is one message then, never a traceback.
"""

from __future__ import annotations

import torch
from torch import nn

from runtime.errors import UserError

# torch.compile's backend; tests use "aot_eager", which traces alike but needs no C++ compiler
BACKEND = "inductor"


def compiled_module(module: nn.Module) -> nn.Module:
    """Return `module` through torch.compile; raise UserError where torch cannot compile here."""
    try:
        return torch.compile(module, backend=BACKEND)
    except RuntimeError as exc:  # e.g. "Dynamo is not supported on Python 3.13+"
        raise _cannot_compile(exc) from None


def compile_failure(exc: BaseException) -> UserError | None:
    """Return the UserError of torch.compile failing to compile the model (a missing C++
    compiler above all), None for any other error."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"BackendCompilerFailed", "InvalidCxxCompiler", "CppCompileError"}:
        return _cannot_compile(exc)
    return None


def _cannot_compile(exc: BaseException) -> UserError:
    text = " ".join(str(exc).split())
    # dynamo's own advice ("Set TORCHDYNAMO_VERBOSE=1 ...") is for torch's developers
    text = text.split(" Set TORCHDYNAMO_VERBOSE")[0][:300] or type(exc).__name__
    hint = (
        "install a C++ compiler (g++ or clang++; or set CXX to one) or set "
        "training.compile: false"
        if "C++ compiler" in text or "Cxx" in text or "cpp" in text.lower()
        else "set training.compile: false"
    )
    return UserError(
        f"training.compile: torch.compile cannot compile the model here ({text}); {hint}"
    )
