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
attention or recurrence counts the products it computes, weights or not (QK^T and AV included):
a recurrent layer its gate products (input and hidden, and an LSTM's projection) at every time
step of every layer and direction; self-attention its q/k/v and output projections and the
L x S x E of QK^T and of AV per head summed (S: the keys, L plus add_bias_kv and add_zero_attn);
a transformer encoder layer that attention and its two feed-forward linears. A transposed
convolution counts as fvcore, thop and torch.utils.flop_counter do: input elements x
out_channels/groups x kernel elements (every product it scatters, cropped or not). Lookups and
adds (embedding, positional table, class token), interpolation (upsample), padding and tensor
operations (transpose, permute, select, mean, amax) count 0.

`tensors` are the layer's entries in `state_dict()`, each a name after the layer's prefix, a
shape and a kind: a parameter (trainable, float32) or a buffer. `keeps` says what autograd saves
for backward in training mode (the activation memory that grows with the batch).

What backward keeps is exact (each storage once) for torch's own kernels of element layers,
convolutions, pools and norms. For layers that torch runs as a composite it follows what the
composite saves, and where a backend fuses it, the estimate stays the unfused one:

- recurrent layers: torch's cell-by-cell path (what GRU and RNN run on the CPU, and LSTM with
  oneDNN off): the gates and states of every step, a copy of the batch_first input per
  direction, the output of each layer below the top one (and its dropout mask). cuDNN keeps a
  reserve space of its own layout instead, about as large; oneDNN's fused CPU LSTM keeps a
  workspace about 2.2 times as large (and a floor of ~28 KiB for tiny ones).
- attention: what the fused scaled-dot-product kernels keep (flash on the CPU, flash or
  memory-efficient on a GPU): a copy of the input, the packed q/k/v projection, k and v again
  when bias_kv or zero_attn rows extend them, the attention output and a log-sum-exp per head
  and query (CUDA's memory-efficient kernel pads the queries to a multiple of 32 there).
  Attention dropout is drawn inside those kernels on a GPU; on the CPU a dropout > 0 falls back
  to the math path, which keeps three L x S matrices per head more (not counted).
- the input copies of both: torch transposes a batch_first input to (L, N, E) and copies it for
  the input projection. The output of a recurrent or attention layer (and of element-wise
  layers after one) is laid out (L, N, E) already, and a recurrent or attention layer reading it
  keeps that storage once instead of copies: the estimate is then over by up to L x E floats
  per direction (a `Site` has shapes, not memory layouts).
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
    out = [
        TensorEntry("weight", (args["out_features"], args["in_features"]), "parameter")
    ]
    if args["bias"]:
        out.append(TensorEntry("bias", (args["out_features"],), "parameter"))
    return out


CONV = LayerCost(_conv_macs, _conv_tensors, INPUT)
LINEAR = LayerCost(_linear_macs, _linear_tensors, INPUT)

# -- pooling -------------------------------------------------------------------------------------

# max pooling keeps its input and the int64 index of each output's maximum
MAX_POOL = LayerCost(
    _zero,
    _none,
    _const(Keeps(input=True, per_sample=lambda s: _size(s.output) * INDEX_BYTES)),
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
        out += [
            TensorEntry("weight", channels, "parameter"),
            TensorEntry("bias", channels, "parameter"),
        ]
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
        return Keeps(
            per_sample=lambda s: _size(s.input) * mask_bytes,
            view=bool(site.args["inplace"]),
        )

    return keeps


def _channel_dropout_keeps(site: Site) -> Keeps:
    if site.args["p"] == 0:
        return Keeps(view=True)
    # one float32 factor per channel of each sample
    return Keeps(
        per_sample=lambda s: s.input[0] * FLOAT_BYTES, view=bool(site.args["inplace"])
    )


# the estimate is for training on a GPU, where memory runs out first; the dropouts inside
# recurrent and encoder layers read this when called (tests set it to the CPU's 4)
DROPOUT_MASK_BYTES = 1
DROPOUT = LayerCost(_zero, _none, dropout_keeps(DROPOUT_MASK_BYTES))
CHANNEL_DROPOUT = LayerCost(_zero, _none, _channel_dropout_keeps)

# -- the rest ------------------------------------------------------------------------------------

SHAPE_ONLY = LayerCost(_zero, _none, VIEW)  # flatten, identity: the same storage
KEEPS_INPUT = LayerCost(_zero, _none, _in_place(Keeps(input=True)))  # backward reads x
# backward reads f(x)
KEEPS_OUTPUT = LayerCost(_zero, _none, _in_place(Keeps(output=True)))

# in place, where torch derives backward from the out-of-place formula of the input: it keeps a
# copy of the input made before it is overwritten (relu6, hardtanh, hardswish, hardsigmoid, mish)
_CLONE = Keeps(per_sample=lambda s: _size(s.input) * FLOAT_BYTES, view=True)
KEEPS_INPUT_CLONED_IN_PLACE = LayerCost(
    _zero, _none, lambda site: _CLONE if site.args.get("inplace") else Keeps(input=True)
)
# backward needs sizes only: padding, upsample, pixel shuffle, mean
KEEPS_NOTHING = LayerCost(_zero, _none, NOTHING)

# -- transposed convolution, group and instance norm, prelu ----------------------------------


def _conv_transpose_macs(site: Site) -> int:
    # every input element meets out_channels/groups x kernel weights (fvcore, thop, flop_counter)
    kernel = _tuple(site.args["kernel_size"], len(site.input) - 1)
    per_input = site.args["out_channels"] // site.args["groups"] * _size(kernel)
    return _size(site.input) * per_input


def _conv_transpose_tensors(site: Site) -> list[TensorEntry]:
    args = site.args
    kernel = _tuple(args["kernel_size"], len(site.input) - 1)
    weight = (args["in_channels"], args["out_channels"] // args["groups"], *kernel)
    out = [TensorEntry("weight", weight, "parameter")]
    if args["bias"]:
        out.append(TensorEntry("bias", (args["out_channels"],), "parameter"))
    return out


CONV_TRANSPOSE = LayerCost(_conv_transpose_macs, _conv_transpose_tensors, INPUT)


def _groupnorm_tensors(site: Site) -> list[TensorEntry]:
    if not site.args["affine"]:
        return []
    channels = (site.args["num_channels"],)
    return [
        TensorEntry("weight", channels, "parameter"),
        TensorEntry("bias", channels, "parameter"),
    ]


def _groupnorm_keeps(site: Site) -> Keeps:
    # the input, and a mean and an inverse standard deviation per group of each sample
    groups = site.args["num_groups"]
    return Keeps(input=True, per_sample=lambda s: 2 * groups * FLOAT_BYTES)


GROUP_NORM = LayerCost(_zero, _groupnorm_tensors, _groupnorm_keeps)


def _instancenorm_keeps(site: Site) -> Keeps:
    # torch runs a batch norm of one sample with N x C channels: it keeps the input (a view), a
    # mean and an inverse standard deviation per channel of each sample, and the per-sample
    # copies it makes of the weight (affine) and of the running statistics (track_running_stats)
    copies = (
        2
        + (1 if site.args["affine"] else 0)
        + (2 if site.args["track_running_stats"] else 0)
    )
    channels = site.args["num_features"]
    return Keeps(input=True, per_sample=lambda s: copies * channels * FLOAT_BYTES)


# the same state_dict as a batch norm: weight/bias when affine, running stats when tracked
INSTANCE_NORM = LayerCost(_zero, _batchnorm_tensors, _instancenorm_keeps)


def _prelu_tensors(site: Site) -> list[TensorEntry]:
    return [TensorEntry("weight", (site.args["num_parameters"],), "parameter")]


PRELU = LayerCost(_zero, _prelu_tensors, INPUT)

# -- embeddings ----------------------------------------------------------------------------------


def _table_tensors(site: Site) -> list[TensorEntry]:
    shape = (site.args["num_embeddings"], site.args["embedding_dim"])
    return [TensorEntry("weight", shape, "parameter")]


def _embedding_keeps(site: Site) -> Keeps:
    # the int64 ids (backward adds rows of the gradient into the table's gradient)
    return Keeps(per_sample=lambda s: _size(s.input) * INDEX_BYTES)


EMBEDDING = LayerCost(_zero, _table_tensors, _embedding_keeps)
# x + table[:L], and cat(token, x): lookups and adds, whose backward needs no tensor
TABLE_ADDED = LayerCost(_zero, _table_tensors, NOTHING)

# -- recurrent layers ----------------------------------------------------------------------------

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class _RecurrentShape(NamedTuple):
    steps: int
    inputs: int  # the input size of layer 0
    hidden: int
    width: int  # one direction's output: proj_size, or hidden
    layers: int
    directions: int

    def layer_inputs(self, layer: int) -> int:
        return self.inputs if layer == 0 else self.width * self.directions


def _recurrent_shape(site: Site) -> _RecurrentShape:
    args = site.args
    hidden = args["hidden_size"]
    return _RecurrentShape(
        steps=site.input[0],
        inputs=args["input_size"],
        hidden=hidden,
        width=args.get("proj_size", 0) or hidden,
        layers=args["num_layers"],
        directions=2 if args["bidirectional"] else 1,
    )


def recurrent_cost(kind: str) -> LayerCost:
    """Return the rules of an LSTM, GRU or RNN (`kind`: its type name), batch_first on (L, E)."""
    gates = _GATES[kind]

    def macs(site: Site) -> int:
        r = _recurrent_shape(site)
        total = 0
        for layer in range(r.layers):
            per_step = gates * r.hidden * (r.layer_inputs(layer) + r.width)
            if r.width != r.hidden:
                per_step += r.width * r.hidden  # an LSTM's projection weight_hr
            total += r.steps * per_step * r.directions
        return total

    def tensors(site: Site) -> list[TensorEntry]:
        r = _recurrent_shape(site)
        rows = gates * r.hidden
        out = []
        for layer in range(r.layers):
            for suffix in ("", "_reverse")[: r.directions]:
                name = f"l{layer}{suffix}"
                out.append(
                    TensorEntry(
                        f"weight_ih_{name}", (rows, r.layer_inputs(layer)), "parameter"
                    )
                )
                out.append(
                    TensorEntry(f"weight_hh_{name}", (rows, r.width), "parameter")
                )
                if site.args["bias"]:
                    out.append(TensorEntry(f"bias_ih_{name}", (rows,), "parameter"))
                    out.append(TensorEntry(f"bias_hh_{name}", (rows,), "parameter"))
                if r.width != r.hidden:
                    out.append(
                        TensorEntry(
                            f"weight_hr_{name}", (r.width, r.hidden), "parameter"
                        )
                    )
        return out

    def kept_per_sample(site: Site) -> int:
        r = _recurrent_shape(site)
        projected = r.hidden if r.width != r.hidden else 0
        if kind == "lstm":
            # each step: the gates, the previous h and c, tanh(c), and h before a projection
            per_direction = r.steps * (
                4 * r.hidden + r.width + 2 * r.hidden + projected
            )
        elif kind == "gru":
            # each step: the hidden side's gates, the previous h, the new gate, two more of h's size
            per_direction = r.steps * 7 * r.hidden
        else:
            # h0 and each step's output (tanh or relu), which the next step reads
            per_direction = (r.steps + 1) * r.hidden
        # batch_first: each direction of layer 0 projects the (L, N, E) transpose, copying it
        floats = r.directions * r.steps * r.inputs
        floats += r.layers * r.directions * per_direction
        # the output of each layer below the top one, which the next reads (and its dropout mask)
        below = (r.layers - 1) * r.steps * r.width * r.directions
        mask = DROPOUT_MASK_BYTES if site.args["dropout"] > 0 else 0
        return (floats + below) * FLOAT_BYTES + below * mask

    return LayerCost(macs, tensors, lambda site: Keeps(per_sample=kept_per_sample))


# -- attention -----------------------------------------------------------------------------------


def _attention_macs(steps: int, embed: int, keys: int) -> int:
    # q, k, v and output projections, then QK^T and AV: L x S x (E / heads), for every head
    return 4 * steps * embed * embed + 2 * steps * keys * embed


def _attention_floats(steps: int, embed: int, heads: int, keys: int) -> int:
    """Return the floats the fused self-attention keeps per sample (see the module's docstring)."""
    # the input, copied as batch_first is transposed to (L, N, E), and the packed q/k/v
    floats = steps * embed + 3 * steps * embed
    if keys != steps:
        floats += 2 * keys * embed  # k and v with the bias_kv / zero_attn rows
    # the attention output, and a log-sum-exp per head and query
    return floats + steps * embed + heads * steps


def _keys(site: Site) -> int:
    args = site.args
    return site.input[0] + int(args["add_bias_kv"]) + int(args["add_zero_attn"])


def _mha_macs(site: Site) -> int:
    return _attention_macs(site.input[0], site.args["embed_dim"], _keys(site))


def _mha_tensors(site: Site, prefix: str = "") -> list[TensorEntry]:
    """Return nn.MultiheadAttention's entries (prefix `self_attn.` inside an encoder layer)."""
    args = site.args
    e = args["embed_dim"] if "embed_dim" in args else args["d_model"]
    out = [TensorEntry(f"{prefix}in_proj_weight", (3 * e, e), "parameter")]
    if args["bias"]:
        out.append(TensorEntry(f"{prefix}in_proj_bias", (3 * e,), "parameter"))
    if args.get("add_bias_kv", False):  # an encoder layer's attention has none
        out += [
            TensorEntry(f"{prefix}bias_k", (1, 1, e), "parameter"),
            TensorEntry(f"{prefix}bias_v", (1, 1, e), "parameter"),
        ]
    out.append(TensorEntry(f"{prefix}out_proj.weight", (e, e), "parameter"))
    if args["bias"]:
        out.append(TensorEntry(f"{prefix}out_proj.bias", (e,), "parameter"))
    return out


def _mha_keeps(site: Site) -> Keeps:
    floats = _attention_floats(
        site.input[0], site.args["embed_dim"], site.args["num_heads"], _keys(site)
    )
    return Keeps(per_sample=lambda s: floats * FLOAT_BYTES)


MULTIHEAD_ATTENTION = LayerCost(_mha_macs, _mha_tensors, _mha_keeps)


def _encoder_macs(site: Site) -> int:
    steps, e, f = site.input[0], site.args["d_model"], site.args["dim_feedforward"]
    return _attention_macs(steps, e, steps) + 2 * steps * e * f


def _encoder_tensors(site: Site) -> list[TensorEntry]:
    e, f, bias = site.args["d_model"], site.args["dim_feedforward"], site.args["bias"]
    out = _mha_tensors(site, "self_attn.")
    for name, shape in (("linear1", (f, e)), ("linear2", (e, f))):
        out.append(TensorEntry(f"{name}.weight", shape, "parameter"))
        if bias:
            out.append(TensorEntry(f"{name}.bias", (shape[0],), "parameter"))
    for name in ("norm1", "norm2"):
        out.append(TensorEntry(f"{name}.weight", (e,), "parameter"))
        if bias:
            out.append(TensorEntry(f"{name}.bias", (e,), "parameter"))
    return out


def _encoder_keeps(site: Site) -> Keeps:
    """What nn.TransformerEncoderLayer's composite keeps in training (batch_first).

    Post-norm, x2 = norm2(x1 + ff(x1)) with x1 = norm1(x + sa(x)): the attention's share, the
    inputs of norm1 and norm2 (each with a mean and a 1/std per position), x1 for linear1, and
    the feed-forward's middle. Pre-norm, x1 = x + sa(norm1(x)), out = x1 + ff(norm2(x1)): x
    itself for norm1 instead of the first sum, x1 and norm2(x1). The middle, L x F: relu keeps
    its output, which linear2 reads; gelu its input, and linear2 its output; with dropout, the
    activation's tensor, the mask and the dropped values linear2 reads. Dropout > 0 also keeps
    a mask after the attention and one after linear2.
    """
    args = site.args
    steps, e, f = site.input[0], args["d_model"], args["dim_feedforward"]
    dropout = args["dropout"] > 0
    floats = _attention_floats(steps, e, args["nhead"], steps)
    sums_and_normed = 2 if args["norm_first"] else 3
    floats += sums_and_normed * steps * e + 4 * steps  # and the norms' statistics
    if dropout:
        floats += 2 * steps * f
    else:
        floats += (1 if args["activation"] == "relu" else 2) * steps * f

    def per_sample(s: Site) -> int:
        masks = (2 * steps * e + steps * f) * DROPOUT_MASK_BYTES if dropout else 0
        return floats * FLOAT_BYTES + masks

    return Keeps(input=bool(args["norm_first"]), per_sample=per_sample)


TRANSFORMER_ENCODER_LAYER = LayerCost(_encoder_macs, _encoder_tensors, _encoder_keeps)

# -- tensor operations ---------------------------------------------------------------------------

# amax's backward spreads the gradient over the positions equal to the maximum: input and output
AMAX = LayerCost(_zero, _none, _const(Keeps(input=True, output=True)))

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
    # -- added with the sequence, generation and 3-D layers
    "conv3d": CONV,
    "convtranspose1d": CONV_TRANSPOSE,
    "convtranspose2d": CONV_TRANSPOSE,
    "maxpool3d": MAX_POOL,
    "avgpool3d": AVG_POOL,
    "adaptiveavgpool3d": ADAPTIVE_AVG_POOL,
    "adaptivemaxpool1d": MAX_POOL,  # the input and the int64 index of each output
    "adaptivemaxpool2d": MAX_POOL,
    "batchnorm3d": BATCH_NORM,
    "groupnorm": GROUP_NORM,
    "instancenorm1d": INSTANCE_NORM,
    "instancenorm2d": INSTANCE_NORM,
    "relu6": KEEPS_INPUT_CLONED_IN_PLACE,
    "prelu": PRELU,
    "hardswish": KEEPS_INPUT_CLONED_IN_PLACE,
    "hardsigmoid": KEEPS_INPUT_CLONED_IN_PLACE,
    "hardtanh": KEEPS_INPUT_CLONED_IN_PLACE,
    "mish": KEEPS_INPUT_CLONED_IN_PLACE,
    "softplus": KEEPS_INPUT,
    "selu": KEEPS_INPUT,  # an elu: in place it keeps its result, as elu does
    "celu": KEEPS_INPUT,
    "upsample": KEEPS_NOTHING,
    "unflatten": SHAPE_ONLY,
    "zeropad1d": KEEPS_NOTHING,
    "zeropad2d": KEEPS_NOTHING,
    "pixelshuffle": KEEPS_NOTHING,
    "embedding": EMBEDDING,
    "positional": TABLE_ADDED,
    "clstoken": TABLE_ADDED,
    "lstm": recurrent_cost("lstm"),
    "gru": recurrent_cost("gru"),
    "rnn": recurrent_cost("rnn"),
    "multiheadattention": MULTIHEAD_ATTENTION,
    "transformerencoderlayer": TRANSFORMER_ENCODER_LAYER,
    "transpose": SHAPE_ONLY,
    "permute": SHAPE_ONLY,
    "select": SHAPE_ONLY,
    "mean": KEEPS_NOTHING,
    "amax": AMAX,
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
