"""What each layer type costs, statically: MACs, the tensors it holds, what backward keeps.

One entry per layer type of the registry (compiler.layers.REGISTRY), keyed by its type name; a
test fails when a registered type has none. An entry's functions read a `Site`: the layer's
resolved torch arguments (inferred ones included) and the shapes of one sample in and out.

MACs are multiply-accumulates of the matrix products, per sample, the convention of thop, fvcore
and ptflops for convolutions and linear layers (a conv: output elements x in_channels/groups x
kernel elements; bias additions not counted), which is what torchvision publishes as its models'
"GFLOPS". Layers that work element by element (norms, activations, pools, dropout, reshapes)
count 0: their work is a few operations per element, bound by memory, and the usual counters
disagree on it (thop counts a batchnorm as 2 per element, fvcore as 1, ptflops adds pools and
activations), so leaving them out keeps the number comparable to published ones. A layer with
attention or recurrence counts the products it computes, weights or not (QK^T and AV included).

`tensors` are the layer's entries in `state_dict()`, each a name after the layer's prefix, a
shape and a kind: a parameter (trainable, float32) or a buffer. `keeps` says what autograd saves
for backward in training mode (the activation memory that grows with the batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

Shape = tuple[int, ...]


class Site(NamedTuple):
    """One layer where it sits: its torch arguments and one sample's shape in and out."""

    args: dict[str, Any]
    input: Shape
    output: Shape


class TensorEntry(NamedTuple):
    """One state_dict entry of a layer: `weight`, `running_mean`, ..."""

    name: str
    shape: Shape
    kind: str  # "parameter" | "buffer"
    dtype: str = "float32"


@dataclass(frozen=True)
class Keeps:
    """What autograd keeps of one layer for backward, in training mode.

    `input` / `output`: the layer's input or output tensor (a tensor kept by two layers is
    stored once). `per_sample` / `per_batch`: bytes of other tensors (pooling indices, dropout
    masks, norm statistics) for one sample, and independent of the batch. `view`: the output
    shares the input's storage (flatten, identity, an in-place activation).
    """

    input: bool = False
    output: bool = False
    per_sample: Callable[[Site], int] | None = None
    per_batch: Callable[[Site], int] | None = None
    view: bool = False


@dataclass(frozen=True)
class LayerCost:
    """Everything the static cost model knows about one layer type."""

    macs: Callable[[Site], int]
    tensors: Callable[[Site], list[TensorEntry]]
    keeps: Callable[[Site], Keeps]


FLOAT_BYTES = 4
INDEX_BYTES = 8  # int64 indices, as max pooling keeps them


def _zero(site: Site) -> int:
    return 0


def _none(site: Site) -> list[TensorEntry]:
    return []


def _const(keeps: Keeps) -> Callable[[Site], Keeps]:
    return lambda site: keeps


def _size(shape: Shape) -> int:
    return math.prod(shape)


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * n


NOTHING = _const(Keeps())
VIEW = _const(Keeps(view=True))
INPUT = _const(Keeps(input=True))
OUTPUT = _const(Keeps(output=True))


def _in_place(keeps: Keeps) -> Callable[[Site], Keeps]:
    """Return `keeps`, or for `inplace: true` the same on the input's storage (kept as output)."""
    in_place = Keeps(output=True, view=True)
    return lambda site: in_place if site.args.get("inplace") else keeps


# -- convolution and linear ----------------------------------------------------------------------


def _conv_macs(site: Site) -> int:
    kernel = _tuple(site.args["kernel_size"], len(site.input) - 1)
    per_output = site.args["in_channels"] // site.args["groups"] * _size(kernel)
    return _size(site.output) * per_output


def _conv_tensors(site: Site) -> list[TensorEntry]:
    args = site.args
    kernel = _tuple(args["kernel_size"], len(site.input) - 1)
    weight = (args["out_channels"], args["in_channels"] // args["groups"], *kernel)
    out = [TensorEntry("weight", weight, "parameter")]
    if args["bias"]:
        out.append(TensorEntry("bias", (args["out_channels"],), "parameter"))
    return out


def _linear_macs(site: Site) -> int:
    return _size(site.output) * site.args["in_features"]


def _linear_tensors(site: Site) -> list[TensorEntry]:
    args = site.args
    out = [TensorEntry("weight", (args["out_features"], args["in_features"]), "parameter")]
    if args["bias"]:
        out.append(TensorEntry("bias", (args["out_features"],), "parameter"))
    return out


CONV = LayerCost(_conv_macs, _conv_tensors, INPUT)
LINEAR = LayerCost(_linear_macs, _linear_tensors, INPUT)

# -- pooling -------------------------------------------------------------------------------------

# max pooling keeps its input and the int64 index of each output's maximum
MAX_POOL = LayerCost(
    _zero, _none, _const(Keeps(input=True, per_sample=lambda s: _size(s.output) * INDEX_BYTES))
)
AVG_POOL = LayerCost(_zero, _none, INPUT)


def _adaptive_keeps(site: Site) -> Keeps:
    # torch computes an output of size 1 as a mean, whose backward needs no tensor
    return Keeps() if all(d == 1 for d in site.output[1:]) else Keeps(input=True)


ADAPTIVE_AVG_POOL = LayerCost(_zero, _none, _adaptive_keeps)

# -- normalization -------------------------------------------------------------------------------


def _batchnorm_tensors(site: Site) -> list[TensorEntry]:
    channels = (site.args["num_features"],)
    out = []
    if site.args["affine"]:
        out += [TensorEntry("weight", channels, "parameter"), TensorEntry("bias", channels, "parameter")]
    if site.args["track_running_stats"]:
        out += [
            TensorEntry("running_mean", channels, "buffer"),
            TensorEntry("running_var", channels, "buffer"),
            TensorEntry("num_batches_tracked", (), "buffer", "int64"),
        ]
    return out


def _batchnorm_keeps(site: Site) -> Keeps:
    # the input, and the batch's mean and inverse standard deviation per channel
    return Keeps(input=True, per_batch=lambda s: 2 * s.input[0] * FLOAT_BYTES)


BATCH_NORM = LayerCost(_zero, _batchnorm_tensors, _batchnorm_keeps)


def _normalized(site: Site) -> Shape:
    value = site.args["normalized_shape"]
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _layernorm_tensors(site: Site) -> list[TensorEntry]:
    if not site.args["elementwise_affine"]:
        return []
    shape = _normalized(site)
    out = [TensorEntry("weight", shape, "parameter")]
    if site.args["bias"]:
        out.append(TensorEntry("bias", shape, "parameter"))
    return out


def _layernorm_keeps(site: Site) -> Keeps:
    # the input, and a mean and an inverse standard deviation per normalized row
    rows = _size(site.input[: len(site.input) - len(_normalized(site))])
    return Keeps(input=True, per_sample=lambda s: 2 * rows * FLOAT_BYTES)


LAYER_NORM = LayerCost(_zero, _layernorm_tensors, _layernorm_keeps)

# -- dropout -------------------------------------------------------------------------------------


def dropout_keeps(mask_bytes: int) -> Callable[[Site], Keeps]:
    """Return the rule of element dropout, whose mask takes `mask_bytes` per element.

    On CUDA torch keeps a bool mask (1 byte); on the CPU a float32 one (4 bytes).
    """

    def keeps(site: Site) -> Keeps:
        if site.args["p"] == 0:
            return Keeps(view=True)  # torch returns the input itself
        return Keeps(per_sample=lambda s: _size(s.input) * mask_bytes, view=bool(site.args["inplace"]))

    return keeps


def _channel_dropout_keeps(site: Site) -> Keeps:
    if site.args["p"] == 0:
        return Keeps(view=True)
    # one float32 factor per channel of each sample
    return Keeps(per_sample=lambda s: s.input[0] * FLOAT_BYTES, view=bool(site.args["inplace"]))


DROPOUT_MASK_BYTES = 1  # the estimate is for training on a GPU, where memory runs out first
DROPOUT = LayerCost(_zero, _none, dropout_keeps(DROPOUT_MASK_BYTES))
CHANNEL_DROPOUT = LayerCost(_zero, _none, _channel_dropout_keeps)

# -- the rest ------------------------------------------------------------------------------------

SHAPE_ONLY = LayerCost(_zero, _none, VIEW)  # flatten, identity: the same storage
KEEPS_INPUT = LayerCost(_zero, _none, _in_place(Keeps(input=True)))  # backward reads x
KEEPS_OUTPUT = LayerCost(_zero, _none, _in_place(Keeps(output=True)))  # backward reads f(x)

COSTS: dict[str, LayerCost] = {
    "linear": LINEAR,
    "conv1d": CONV,
    "conv2d": CONV,
    "maxpool1d": MAX_POOL,
    "maxpool2d": MAX_POOL,
    "avgpool1d": AVG_POOL,
    "avgpool2d": AVG_POOL,
    "adaptiveavgpool1d": ADAPTIVE_AVG_POOL,
    "adaptiveavgpool2d": ADAPTIVE_AVG_POOL,
    "batchnorm1d": BATCH_NORM,
    "batchnorm2d": BATCH_NORM,
    "layernorm": LAYER_NORM,
    "dropout": DROPOUT,
    "dropout1d": CHANNEL_DROPOUT,
    "dropout2d": CHANNEL_DROPOUT,
    "flatten": SHAPE_ONLY,
    "identity": SHAPE_ONLY,
    "relu": KEEPS_OUTPUT,
    "leakyrelu": KEEPS_INPUT,
    "gelu": KEEPS_INPUT,
    "silu": KEEPS_INPUT,
    "elu": KEEPS_INPUT,
    "tanh": KEEPS_OUTPUT,
    "sigmoid": KEEPS_OUTPUT,
    "softmax": KEEPS_OUTPUT,
    "logsoftmax": KEEPS_OUTPUT,
}


def cost_of(type_name: str) -> LayerCost:
    """Return the cost rules of a layer type; raise LookupError naming this module when missing."""
    try:
        return COSTS[type_name]
    except KeyError:
        raise LookupError(
            f"layer type {type_name!r} has no entry in compiler/compute.py COSTS "
            "(its MACs, state_dict tensors and what backward keeps)"
        ) from None
