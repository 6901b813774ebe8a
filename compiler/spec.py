"""The Spec model: a whole network description, validated, with every layer named."""

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    InstanceOf,
    PrivateAttr,
    SerializeAsAny,
    Tag,
    model_validator,
)

from .containers import CONTAINERS, Composite, numbered, snake_case
from .layers import REGISTRY, LayerSpec, check_identifier
from .layers.base import PosInt
from .reserved import RESERVED_ATTRIBUTES, is_reserved_class_name
from .training import LintConfig, TrainingConfig, applicable_training

MAX_LAYERS = 10_000
MAX_RANK = 4


def check_class_name(value: Any) -> str:
    """Return `value` if it can name the generated class; raise ValueError with the reason."""
    value = check_identifier(value, "class name")
    if is_reserved_class_name(value):
        raise ValueError(
            f"{value!r} would shadow a name the generated module uses; pick another"
        )
    return value


def check_description(value: Any) -> str:
    """Return `value` if it is plain text fit for a docstring; raise ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"must be text, got {type(value).__name__}")
    bad = [
        ch
        for ch in value
        if (ord(ch) < 32 and ch not in "\n\t") or ch in "\x7f\u2028\u2029"
    ]
    if bad:
        raise ValueError(f"contains the control character {bad[0]!r}; use plain text")
    return value


def _layers_from_data(value: Any) -> Any:
    """Return canonical layer mappings turned into layer objects (other values pass through).

    A Spec built directly from data takes plain layers only; load_spec reads containers and blocks.
    """
    if not isinstance(value, list):
        return value
    out = []
    for item in value:
        if (
            isinstance(item, dict)
            and isinstance(item.get("type"), str)
            and item["type"] in REGISTRY
        ):
            item = REGISTRY[item["type"]].model_validate(item)
        out.append(item)
    return out


InputShape = Annotated[list[PosInt], Field(min_length=1, max_length=MAX_RANK)]
DTYPES = ("float32", "int64")


class InputSpec(BaseModel):
    """`input: {shape: [200], dtype: int64}`: the shape of one sample and its element type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: InputShape
    dtype: Literal["float32", "int64"] = "float32"


def _input_form(value: Any) -> str:
    return (
        "mapping"
        if isinstance(value, dict) or isinstance(value, InputSpec)
        else "shape"
    )


class Spec(BaseModel):
    """A validated network description: input shape, named layers, optional training section."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    spec_version: Literal[1] = 1
    name: Annotated[str, BeforeValidator(check_class_name)]
    description: (
        Annotated[str, BeforeValidator(check_description), Field(max_length=4000)]
        | None
    ) = None
    # A shape, or {shape, dtype}; after validation `input` is always the shape and
    # `input_dtype` the element type (so `torch.randn(2, *spec.input)` reads as before).
    input: Annotated[
        Annotated[InputShape, Tag("shape")] | Annotated[InputSpec, Tag("mapping")],
        Discriminator(_input_form),
    ]
    # Layers are validated one by one through the registry (each class builds its validator only
    # when first used, which keeps `nnspec validate` fast); schema.py publishes the full union.
    # Containers and block uses are Composites, read by compiler/expand.py.
    layers: Annotated[
        list[SerializeAsAny[InstanceOf[LayerSpec]] | InstanceOf[Composite]],
        BeforeValidator(_layers_from_data),
        Field(min_length=1, max_length=MAX_LAYERS),
    ]
    # Block definitions as written (templates: `$param` values); compiler/blocks.py checks them.
    blocks: dict[str, Any] | None = None
    training: TrainingConfig | None = None
    lint: LintConfig | None = None

    _source: str = PrivateAttr(default="<spec>")
    _layer_lines: tuple[int | None, ...] = PrivateAttr(default=())
    # the source line of each data path the training section names (training.data.path, ...)
    _data_lines: dict[str, int | None] = PrivateAttr(default_factory=dict)
    _resolved: tuple = PrivateAttr(default=())
    _tree: Any = PrivateAttr(default=None)
    _input_dtype: str = PrivateAttr(default="float32")

    @model_validator(mode="after")
    def _input_shape(self) -> "Spec":
        if isinstance(self.input, InputSpec):
            self._input_dtype = self.input.dtype
            object.__setattr__(
                self, "input", list(self.input.shape)
            )  # frozen: set once, here
        return self

    @model_validator(mode="after")
    def _name_layers(self) -> "Spec":
        named, problems = assign_names(self.layers)
        if problems:
            raise ValueError(
                "; ".join(f"layers[{i}]: {message}" for i, message in problems)
            )
        object.__setattr__(self, "layers", named)  # frozen model: set once, here
        return self

    @property
    def source(self) -> str:
        """Return the file the spec was read from, or `<spec>` for a mapping."""
        return self._source

    @property
    def layer_lines(self) -> tuple[int | None, ...]:
        """Return the source line of each layer (None when unknown)."""
        return self._layer_lines or (None,) * len(self.layers)

    def data_line(self, key: str) -> int | None:
        """Return the source line of `training.data.<key>` (a data path), None when unknown."""
        return self._data_lines.get(key)

    @property
    def input_dtype(self) -> str:
        """Return the element type of a sample: `float32`, or `int64` for token or category ids."""
        return self._input_dtype

    @property
    def training_or_default(self) -> TrainingConfig:
        """Return the training section, or the defaults when the spec has none."""
        return self.training if self.training is not None else TrainingConfig()


def _prefix(entry: Any) -> str | None:
    if isinstance(entry, Composite):
        if entry.type in CONTAINERS:
            return CONTAINERS[entry.type].prefix
        return snake_case(entry.type)
    return entry.prefix


def automatic_names(layers: list) -> list[str | None]:
    """Return each entry's automatic name: its prefix and a per-prefix counter over the list.

    An automatic name never takes a name written elsewhere in the list; wiring (residual,
    branches) has none.
    """
    counters: dict[str, int] = {}
    written = {layer.name for layer in layers if layer.name is not None}
    names: list[str | None] = []
    for layer in layers:
        prefix = _prefix(layer)
        if prefix is None:
            names.append(None)
            continue
        counters[prefix] = counters.get(prefix, 0) + 1
        name = numbered(prefix, counters[prefix])
        while layer.name is None and name in written:
            counters[prefix] += 1
            name = numbered(prefix, counters[prefix])
        written.add(name)
        names.append(name)
    return names


def assign_names(layers: list) -> tuple[list, list[tuple[int, str]]]:
    """Return the entries with every name set, and (entry index, message) for each bad name."""
    auto = automatic_names(layers)
    final = [layer.name or auto[i] for i, layer in enumerate(layers)]
    problems: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for i, (layer, name) in enumerate(zip(layers, final)):
        if name is None:
            continue
        if layer.name is not None:
            if name.startswith("_"):
                problems.append(
                    (
                        i,
                        f"name {name!r} starts with '_', which torch keeps for its internals",
                    )
                )
            elif name in RESERVED_ATTRIBUTES:
                problems.append(
                    (
                        i,
                        f"name {name!r} is an attribute of torch.nn.Module; pick another, e.g. {name}_layer",
                    )
                )
        if name in seen:
            j = seen[name]
            how = "automatic name" if layers[j].name is None else "name"
            mine = "name" if layer.name is not None else "automatic name"
            problems.append(
                (
                    i,
                    f"{mine} {name!r} is already the {how} of layers[{j}]; names must be unique, "
                    "so give one of them another name",
                )
            )
        else:
            seen[name] = i
    named = [
        (
            layer
            if layer.name == name or name is None
            else layer.model_copy(update={"name": name})
        )
        for layer, name in zip(layers, final)
    ]
    return named, problems


def spec_data(spec: Spec) -> dict[str, Any]:
    """Return the normalized spec as plain JSON data: canonical layers, names and defaults filled.

    `load_spec(spec_data(spec))` gives back an equal Spec; checkpoints carry this.
    """
    data = spec.model_dump(mode="json")
    data["layers"] = [
        (
            layer.canonical()
            if isinstance(layer, Composite)
            else {
                "type": layer.type_name,
                **{k: v for k, v in dumped.items() if k != "type"},
            }
        )
        for layer, dumped in zip(spec.layers, data["layers"])
    ]
    if data.get("blocks") is None:
        data.pop(
            "blocks", None
        )  # a spec without blocks keeps the digest it had before blocks
    if spec.input_dtype != "float32":
        data["input"] = {"shape": data["input"], "dtype": spec.input_dtype}
    return data


MODEL_KEYS = ("spec_version", "name", "description", "input", "blocks", "layers")


def model_digest(spec: Spec) -> str:
    """Return the sha256 (hex) of what defines the model: not `training` or `lint`.

    The header of a generated module carries it, so changing `epochs` leaves generated/ fresh.
    """
    data = {k: v for k, v in spec_data(spec).items() if k in MODEL_KEYS}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def spec_digest(spec: Spec) -> str:
    """Return the sha256 (hex) of the normalized spec: equal for specs that mean the same."""
    return data_digest(spec_data(spec))


def stored_spec_data(data: Any) -> Any:
    """Return spec data stored by a checkpoint as this nnspec reads it: a checkpoint of an earlier
    nnspec lists, in its training sections, arguments that did not apply (see
    `applicable_training`), and they are dropped."""
    if isinstance(data, dict) and isinstance(data.get("training"), dict):
        return {**data, "training": applicable_training(data["training"])}
    return data


def data_digest(data: Any) -> str:
    """Return the sha256 (hex) of JSON data in canonical form (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
