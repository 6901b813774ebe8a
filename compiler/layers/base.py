"""What every layer definition shares: argument types, the base model, and shape helpers.

A layer type is one pydantic model that declares everything about itself: its arguments (fields,
named and defaulted as in `torch.nn`), and as class attributes the `torch.nn` class it becomes, its
primary argument, its name prefix and its inferred arguments; its methods give the output shape and
the parameter count from the input shape. Shapes here are the shape of ONE sample (no batch).
"""

import keyword
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
)

from ..formatting import format_shape

Shape = tuple[int, ...]

# Sizes beyond torch's 32-bit index range are never meant; refusing them keeps absurd numbers
# (a typo of a few extra digits) out of shape arithmetic and the summary.
MAX_SIZE = 2**31 - 1

PosInt = Annotated[int, Strict(), Field(gt=0, le=MAX_SIZE)]
NonNegInt = Annotated[int, Strict(), Field(ge=0, le=MAX_SIZE)]
# torch keeps a layer's float arguments (slopes, eps, momentum, alpha, scale factors) as float32
# or converts them to it in the forward pass: a larger value would validate here, then fail or
# turn into infinity in training, so every float argument of a layer is one of the types below.
FLOAT32_MAX = 3.4028234663852886e38


def _within_float32(value: float) -> float:
    if abs(value) > FLOAT32_MAX:
        raise ValueError(
            f"must be within float32's range, at most {FLOAT32_MAX:.8g} in size (torch "
            f"stores it as float32); got {value!r}"
        )
    return value


Float = Annotated[float, Strict(), AfterValidator(_within_float32)]
PositiveFloat = Annotated[
    float, Strict(), Field(gt=0.0), AfterValidator(_within_float32)
]
Bool = Annotated[bool, Strict()]
Probability = Annotated[float, Strict(), Field(ge=0.0, le=1.0)]

MAX_NAME_LENGTH = 64
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_identifier(value: Any, what: str = "name") -> str:
    """Return `value` if it is a plain ASCII Python identifier, not a keyword; raise ValueError."""
    if not isinstance(value, str):
        raise ValueError(f"a {what} must be a string, got {type(value).__name__}")
    shown = value if len(value) <= 40 else value[:40] + "..."
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"a {what} is at most {MAX_NAME_LENGTH} characters, got {len(value)}"
        )
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"a {what} must be an ASCII Python identifier (letters, digits, _; not starting "
            f"with a digit), got {shown!r}"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise ValueError(f"a {what} cannot be the Python keyword {value!r}")
    return value


def _ints(minimum: int, allow: tuple[str, ...] = ()):
    """Return a before-validator for `int | list[int]` arguments with one clear message."""

    def validate(value: Any) -> Any:
        if isinstance(value, str) and value in allow:
            return value
        items = value if isinstance(value, list) else [value]
        ints = bool(items) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in items
        )
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        if ints and any(v > MAX_SIZE for v in items):
            raise ValueError(f"must be at most {MAX_SIZE:,}, got {shown}")
        if not ints or any(v < minimum for v in items):
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            extra = "".join(f" or '{a}'" for a in allow)
            forms = f", a list of them{extra}" if allow else " or a list of them"
            raise ValueError(f"must be {what}{forms}, got {shown}")
        return value

    return BeforeValidator(validate)


# The before-validator gives the message; the bounds inside show in the JSON Schema too.
_SizeInt = Annotated[int, Field(ge=1, le=MAX_SIZE)]
_PadInt = Annotated[int, Field(ge=0, le=MAX_SIZE)]
Size = Annotated[_SizeInt | list[_SizeInt], _ints(1)]
Padding = Annotated[
    _PadInt | list[_PadInt] | Literal["same", "valid"], _ints(0, ("same", "valid"))
]
NonNegSize = Annotated[_PadInt | list[_PadInt], _ints(0)]


class ShapeProblem(Exception):
    """A layer cannot accept the shape that reaches it; `arg` names the argument at fault."""

    def __init__(self, message: str, arg: str | None = None):
        self.arg = arg
        super().__init__(message)


REGISTRY: dict[str, type["LayerSpec"]] = {}
# The sections of docs/layers.md, in order; every layer type names its own.
GROUPS = (
    "dense",
    "convolution",
    "pooling",
    "normalization",
    "dropout",
    "activations",
    "reshaping",
    "embeddings",
    "recurrent",
    "attention",
    "tensor ops",
)  # filled as each concrete layer class is defined


class LayerSpec(BaseModel):
    """Base of every layer type: the `name` argument, strictness and the shape protocol."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        field = cls.model_fields.get("type")
        if field is not None and isinstance(field.default, str):
            REGISTRY[field.default] = cls

    model_config = ConfigDict(
        extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True
    )

    name: Annotated[str, BeforeValidator(check_identifier)] | None = None

    torch_class: ClassVar[str]  # attribute of torch.nn
    primary: ClassVar[str | None] = None  # argument set by `- type: VALUE`
    prefix: ClassVar[str]  # automatic names are prefix + counter
    inferred: ClassVar[tuple[str, ...]] = ()  # arguments computed from the input shape
    ranks: ClassVar[tuple[int, ...] | None] = (
        None  # accepted sample ranks; None = any >= 1
    )
    rank_hint: ClassVar[str] = ""  # how the accepted shape reads, e.g. "(C, H, W)"
    # inferred argument -> the input dimension it reads (for symbolic sizes in generated blocks)
    inferred_dims: ClassVar[dict[str, int]] = {}
    # arguments generated code always writes, even at their default (a deliberate default)
    always_written: ClassVar[tuple[str, ...]] = ()
    group: ClassVar[str] = ""  # where docs/layers.md lists it: one of GROUPS
    feature_map: ClassVar[bool] = (
        False  # its output is a map of channels over positions (lint)
    )
    takes_ids: ClassVar[bool] = (
        False  # its input is int64 ids (embedding), not float values
    )
    # constructor arguments the spec language fixes (recurrent and attention layers always run
    # batch_first); they are not written in a spec and generated code always writes them
    fixed: ClassVar[dict[str, Any]] = {}
    # arguments of the call in `forward`, not of the constructor (an LSTM's `output`)
    forward_args: ClassVar[tuple[str, ...]] = ()
    # a tensor operation: no module in the generated class, one line in its forward; the built
    # form runs `build_class` of compiler/modules.py (parameter-free)
    tensor_op: ClassVar[bool] = False
    # a class of compiler/modules.py that the built form uses instead of `torch.nn.<torch_class>`:
    # a subclass whose forward does what the generated forward line does (same state_dict keys)
    build_class: ClassVar[str | None] = None
    # torchsummary 1.5.1 counts only `.weight` and `.bias` and fails on inner modules that
    # return tuples: False for layers it cannot summarize (recurrent and attention layers)
    torchsummary_sees: ClassVar[bool] = True

    @classmethod
    def plain_call(cls) -> bool:
        """Return whether generated code calls the module as `x = self.name(x)` (so it can sit
        in an nn.Sequential of the generated class)."""
        return not cls.tensor_op and cls.build_class is None

    def forward_lines(
        self, call: str, source: str, target: str, kwargs: dict[str, Any]
    ) -> list[str]:
        """Return the generated forward's lines for this layer: `call` is `self.<name>`, `source`
        the variable in, `target` the variable out; the shape comment goes on the last line.
        """
        return [f"{target} = {call}({source})"]

    def constructor_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Return the torch constructor's arguments of the resolved `kwargs`."""
        return {k: v for k, v in kwargs.items() if k not in self.forward_args}

    @property
    def type_name(self) -> str:
        """Return the spec's name of this layer type (the discriminator)."""
        return self.type  # type: ignore[attr-defined]

    def arguments(self) -> dict[str, Any]:
        """Return the written arguments in torch's order (no `type`, no `name`)."""
        return {
            k: getattr(self, k)
            for k in type(self).model_fields
            if k not in ("type", "name")
        }

    def check_rank(self, shape: Shape) -> None:
        """Raise ShapeProblem when this layer cannot take a sample of `shape`'s rank."""
        if self.ranks is not None and len(shape) not in self.ranks:
            want = " or ".join(f"{r}-D" for r in self.ranks)
            raise ShapeProblem(
                f"{self.type_name} needs a {want} input {self.rank_hint}".rstrip()
                + f", but the shape reaching it is {format_shape(shape)}{{origin}}"
                + _sibling_hint(self.type_name, len(shape))
            )

    def infer(self, shape: Shape) -> dict[str, Any]:
        """Return the values of the inferred arguments for input `shape`."""
        return {}

    def output_shape(self, shape: Shape) -> Shape:
        """Return the output shape for input `shape` (default: unchanged)."""
        return shape

    def count_params(self, shape: Shape) -> int:
        """Return the number of trainable parameters for input `shape` (default: none)."""
        return 0

    def infer_exprs(self, exprs: tuple) -> dict[str, Any]:
        """Return the inferred arguments as expressions of the input's size expressions.

        `exprs` holds one expression (compiler.expressions) or None per input dimension; a block's
        generated class writes these over its constructor arguments (`nn.BatchNorm2d(channels)`).
        """
        return {arg: exprs[dim] for arg, dim in self.inferred_dims.items()}

    def output_exprs(self, exprs: tuple, args: dict[str, Any], out: Shape) -> tuple:
        """Return the output's size expressions from the input's and the arguments' (None: unknown).

        The default suits layers that keep the shape; a layer that changes it says how.
        """
        if type(self).output_shape is LayerSpec.output_shape:
            return tuple(exprs)
        return (None,) * len(out)

    def resolve(self, shape: Shape) -> tuple[dict[str, Any], Shape, int]:
        """Return (torch keyword arguments, output shape, parameter count) for input `shape`."""
        self.check_rank(shape)
        inferred = self.infer(shape)
        for arg, value in inferred.items():
            written = getattr(self, arg)
            if written is not None and normalize_value(written) != normalize_value(
                value
            ):
                raise ShapeProblem(
                    f"written as {written!r}, but the shape reaching it is {format_shape(shape)}"
                    f"{{origin}}; remove it or write {value!r}",
                    arg,
                )
        out = self.output_shape(shape)
        if any(d < 1 for d in out):
            raise ShapeProblem(
                f"the output shape would be {format_shape(out)}; every size must be positive"
            )
        if any(d > MAX_SIZE for d in out):
            raise ShapeProblem(
                f"the output shape would be {format_shape(out)}; sizes above {MAX_SIZE:,} are "
                "beyond any model that fits in memory"
            )
        kwargs = {**self.arguments(), **inferred, **self.fixed}
        return (
            {k: normalize_value(v) for k, v in kwargs.items()},
            out,
            self.count_params(shape),
        )


def _sibling_hint(type_name: str, rank: int) -> str:
    """Return `; for this shape use batchnorm1d` when a sibling type (same stem) takes the rank."""
    stem = re.sub(r"[123]d$", "", type_name)
    fits = [
        other
        for other, cls in REGISTRY.items()
        if other != type_name
        and re.sub(r"[123]d$", "", other) == stem
        and (cls.ranks is None or rank in cls.ranks)
    ]
    return f"; for this shape use {' or '.join(fits)}" if fits else ""


def normalize_value(value: Any) -> Any:
    """Return lists as tuples (torch's own form for sizes), other values unchanged."""
    return tuple(value) if isinstance(value, list) else value


def expand(
    value: int | list[int] | tuple[int, ...], n: int, arg: str
) -> tuple[int, ...]:
    """Return `value` as an n-tuple (an int repeats); raise ShapeProblem on a wrong length."""
    if isinstance(value, int):
        return (value,) * n
    if len(value) == 1 and n == 1:
        return tuple(value)
    if len(value) != n:
        raise ShapeProblem(
            f"needs 1 value or a list of {n}, got a list of {len(value)}", arg
        )
    return tuple(value)
