"""Static MACs, state_dict entries and activation memory, checked against torch running the model.

For every spec in specs/ and a few small specs that use every layer type: the MACs of each layer
equal what torch.utils.flop_counter counts of the products torch runs inside that layer's module
(matmuls and convolutions; every other layer must then count 0), the static state_dict equals
the built model's key for key and shape for shape, and the bytes that autograd keeps for
backward in training mode equal what `saved_tensors_hooks` sees (each storage once, parameters
and buffers left out).

Where torch's CPU kernels differ from what the estimate describes, the measurement runs the
kernel the estimate follows (see compiler/compute.py), and nothing is left out or tolerated:
oneDNN is off (its fused LSTM keeps a workspace of its own; the estimate is torch's cell-by-cell
path), attention modules run with their own dropout at 0 (on a GPU it is drawn inside the fused
kernel and keeps nothing; the CPU falls back to the math path for it), and the dropout masks
inside recurrent and encoder layers are the CPU's float32 ones, as for dropout layers.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from compiler import build_module, compute, count_params, load_spec, model_tree
from compiler.compute import COSTS
from compiler.costs import activation_memory, leaf_macs, node_macs, state_entries, walk
from compiler.layers import REGISTRY
from compiler.tree import Leaf
from tests.layer_examples import EXAMPLES
from tests.spec_folder import SPEC_FILES

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Examples of the sequence, generation and 3-D layer types (and their variants: in-place,
# no-affine, tracked statistics, grouped and dilated transposed convolutions, int64 ids, stacked,
# bidirectional and projected recurrent layers with dropout, pre-norm, gelu and bias-free
# encoders, bias_kv and zero_attn attention, views of views).
SEQUENCE_EXAMPLES = {
    "volume": {
        "name": "Vol",
        "input": [2, 6, 6, 6],
        "layers": [
            {"conv3d": {"out_channels": 4, "kernel_size": 3, "padding": 1}},
            "batchnorm3d",
            {"relu6": {"inplace": True}},
            {"maxpool3d": 2},
            {"upsample": {"scale_factor": 2, "mode": "trilinear"}},
            {"avgpool3d": {"kernel_size": 2}},
            {"adaptiveavgpool3d": 2},
            "hardswish",
            {"adaptiveavgpool3d": 1},
            "flatten",
            {"linear": 3},
        ],
    },
    "generator": {
        "name": "Gen",
        "input": [4, 3, 3],
        "layers": [
            {
                "convtranspose2d": {
                    "out_channels": 8,
                    "kernel_size": 3,
                    "stride": 2,
                    "padding": 1,
                    "output_padding": 1,
                }
            },
            {"groupnorm": 4},
            {"prelu": 8},
            {"pixelshuffle": 2},
            {"zeropad2d": [1, 2, 0, 1]},
            {"instancenorm2d": {"affine": True, "track_running_stats": True}},
            {"hardtanh": {"inplace": True}},
            {"upsample": {"size": [8, 8], "mode": "bilinear"}},
            {
                "convtranspose2d": {
                    "out_channels": 4,
                    "kernel_size": 2,
                    "groups": 2,
                    "bias": False,
                }
            },
            {"groupnorm": {"num_groups": 2, "affine": False}},
            {"hardsigmoid": {"inplace": True}},
            {"adaptivemaxpool2d": [2, 3]},
            "mish",
            {"upsample": 2},
            {"mish": {"inplace": True}},
            "flatten",
            {"linear": 2},
        ],
    },
    "signal": {
        "name": "Signal",
        "input": [3, 10],
        "layers": [
            {
                "convtranspose1d": {
                    "out_channels": 4,
                    "kernel_size": 3,
                    "stride": 2,
                    "dilation": 2,
                }
            },
            "instancenorm1d",
            {"selu": {"inplace": True}},
            {"zeropad1d": 2},
            {"upsample": {"scale_factor": 2, "mode": "linear"}},
            {"adaptivemaxpool1d": 5},
            "celu",
            {"relu6": None},
            {"adaptivemaxpool1d": 1},
            {"unflatten": {"dim": 1, "unflattened_size": [2, 2]}},
            "softplus",
            "hardtanh",
            {"celu": {"alpha": 0.5, "inplace": True}},
            "selu",
            "flatten",
            {"linear": 2},
        ],
    },
    "text": {
        "name": "Text",
        "input": {"shape": [6], "dtype": "int64"},
        "layers": [
            {"embedding": {"num_embeddings": 20, "embedding_dim": 8, "padding_idx": 0}},
            {"positional": 10},
            "clstoken",
            {"transformerencoderlayer": {"nhead": 2, "dim_feedforward": 12}},
            {
                "multiheadattention": {
                    "num_heads": 2,
                    "add_bias_kv": True,
                    "add_zero_attn": True,
                    "dropout": 0.1,
                }
            },
            "layernorm",
            {
                "lstm": {
                    "hidden_size": 5,
                    "num_layers": 2,
                    "bidirectional": True,
                    "dropout": 0.2,
                    "proj_size": 3,
                }
            },
            {"gru": {"hidden_size": 4, "num_layers": 2, "bias": False}},
            {"linear": 4},
            {
                "rnn": {
                    "hidden_size": 3,
                    "nonlinearity": "relu",
                    "bidirectional": True,
                    "output": "final",
                }
            },
            {"linear": 2},
        ],
    },
    "tokens": {
        "name": "Tokens",
        "input": [5, 8],
        "layers": [
            {"transpose": [1, 2]},
            {"permute": [0, 2, 1]},
            "positional",
            {
                "transformerencoderlayer": {
                    "nhead": 4,
                    "dim_feedforward": 6,
                    "norm_first": True,
                    "activation": "gelu",
                    "bias": False,
                    "dropout": 0.0,
                }
            },
            {
                "transformerencoderlayer": {
                    "nhead": 2,
                    "dim_feedforward": 6,
                    "activation": "gelu",
                    "dropout": 0.0,
                }
            },
            {
                "transformerencoderlayer": {
                    "nhead": 2,
                    "dim_feedforward": 6,
                    "norm_first": True,
                    "dropout": 0.2,
                }
            },
            {"multiheadattention": {"num_heads": 4, "bias": False}},
            {"layernorm": {"elementwise_affine": False}},
            "relu",
            {"lstm": {"hidden_size": 4, "output": "final"}},
            {"unflatten": {"unflattened_size": [2, 2]}},
            {"gru": {"hidden_size": 3, "bidirectional": True}},
            {"rnn": {"hidden_size": 3, "num_layers": 3, "dropout": 0.5}},
            {"linear": 3},
            {"lstm": {"hidden_size": 3, "num_layers": 2, "bidirectional": True}},
            {"amax": {"dim": -1, "keepdim": True}},
            {"select": {"dim": 1, "index": -1}},
        ],
    },
    "reductions": {
        "name": "Reductions",
        "input": [3, 4, 7],
        "layers": [
            {"amax": {"dim": [1, 3], "keepdim": True}},
            {"linear": 5},
            {"mean": 1},
            {"select": {"dim": 2, "index": 0}},
            {"linear": 2},
        ],
    },
}
EXAMPLES = {**EXAMPLES, **SEQUENCE_EXAMPLES}


def _load(case):
    return load_spec(case) if isinstance(case, dict) else load_spec(case)


def sample_batch(spec, batch: int = 2) -> torch.Tensor:
    """Return a batch of the spec's input: float32 normal values, or int64 ids of its tables."""
    if spec.input_dtype != "int64":
        return torch.randn(batch, *spec.input)
    rows = [
        leaf.kwargs["num_embeddings"]
        for _, leaf in walk(model_tree(spec).body)
        if isinstance(leaf, Leaf) and leaf.layer.takes_ids
    ]
    return torch.randint(0, min(rows), (batch, *spec.input))


CASES = [*SPEC_FILES, *EXAMPLES.values()]
IDS = [*(p.stem for p in SPEC_FILES), *EXAMPLES]


def test_every_registered_layer_type_has_cost_rules():
    missing = sorted(set(REGISTRY) - set(COSTS))
    assert (
        not missing
    ), f"add these layer types to COSTS in compiler/compute.py: {missing}"
    assert not set(COSTS) - set(REGISTRY), "COSTS names types that are not registered"


def test_the_examples_use_every_registered_layer_type():
    used = {
        leaf.layer.type_name
        for case in EXAMPLES.values()
        for _, leaf in walk(model_tree(load_spec(case)).body)
        if isinstance(leaf, Leaf)
    }
    missing = sorted(set(REGISTRY) - used)
    where = "EXAMPLES in tests/layer_examples.py or SEQUENCE_EXAMPLES here"
    assert not missing, f"add these layer types to {where}: {missing}"


# -- running the model --------------------------------------------------------------------------


def counted_macs(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, int], int]:
    """Return ({module name: MACs per sample}, total MACs per sample) of one forward.

    torch.utils.flop_counter counts 2 FLOPs per multiply-add of every matmul and convolution
    torch runs, per module. Attention runs sdpa's math kernel (bmm, which the counter reads; the
    fused CPU kernel it does not) with autograd on (off, nn.MultiheadAttention and the encoder
    layer take a fused fast path in eval mode).
    """
    batch = x.shape[0]
    root = type(model).__name__
    counter = FlopCounterMode(display=False)
    with (
        counter,
        sdpa_kernel(SDPBackend.MATH),
        torch.backends.mkldnn.flags(enabled=False),
    ):
        model(x)
    flops = {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}
    per_module = {
        name: flops.get(f"{root}.{name}", 0) // 2 // batch
        for name, module in model.named_modules()
        if name
    }
    return per_module, flops.get("Global", 0) // 2 // batch


def kept_for_backward(model: nn.Module, x: torch.Tensor) -> int:
    """Return the bytes autograd saves in a training forward: each storage once, weights left out.

    The kernels are those the estimate describes: oneDNN off (torch's cell-by-cell LSTM) and no
    dropout inside attention modules (fused on a GPU; the CPU's math fallback is not estimated).
    """
    own = {
        t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]
    }
    seen: dict[int, int] = {}
    for module in model.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.dropout = 0.0

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = max(
                seen.get(storage.data_ptr(), 0), storage.nbytes()
            )
        return tensor

    with torch.backends.mkldnn.flags(enabled=False):
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(x)
    return sum(seen.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_macs_of_every_layer_equal_a_counter_running_the_model(case):
    spec = _load(case)
    tree = model_tree(spec)
    torch.manual_seed(0)
    counted, total = counted_macs(build_module(spec).eval(), sample_batch(spec))
    leaves = {name: node for name, node in walk(tree.body) if isinstance(node, Leaf)}
    assert {name: leaf_macs(node) for name, node in leaves.items()} == {
        name: counted[name] for name in leaves
    }
    assert node_macs(tree) == sum(counted[name] for name in leaves) == total


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_static_state_dict_equals_the_built_models(case):
    spec = _load(case)
    static = state_entries(model_tree(spec))
    built = build_module(spec).state_dict()
    assert list(static) == list(built)
    assert {k: e.shape for k, e in static.items()} == {
        k: tuple(v.shape) for k, v in built.items()
    }
    assert {k: e.dtype for k, e in static.items()} == {
        k: str(v.dtype).removeprefix("torch.") for k, v in built.items()
    }
    params = sum(math.prod(e.shape) for e in static.values() if e.kind == "parameter")
    assert params == count_params(spec)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_activations_kept_for_backward_equal_what_autograd_saves(case, monkeypatch):
    spec = _load(case)
    torch.manual_seed(0)
    model = build_module(spec).train()
    batch = 2
    measured = kept_for_backward(model, sample_batch(spec, batch))
    # torch on the CPU keeps a float32 dropout mask; the summary's estimate is CUDA's bool mask
    # (dropout layers take the argument; recurrent and encoder layers read the module's constant)
    monkeypatch.setattr(compute, "DROPOUT_MASK_BYTES", 4)
    assert (
        activation_memory(model_tree(spec), dropout_mask_bytes=4).kept(batch)
        == measured
    )


def test_a_recurrent_layer_reading_another_ones_output_makes_no_copy_the_estimate_counts():
    """The one case the estimate of recurrent and attention layers does not match, by design.

    Their input projection reads the (L, N, E) transpose of a batch_first input: a copy per
    direction, which the estimate counts (the input of an embedding, a linear, a norm, an encoder
    layer). Recurrent and attention layers' outputs are (L, N, E) in memory already (and so are
    element-wise layers' outputs of them), so a layer reading one straight makes no copy and keeps
    the storage itself, once: the estimate is over by L x E floats per direction, less the one
    storage where no other layer keeps it. Here relu keeps it, so over by both directions' copies.
    """
    spec = load_spec(
        {
            "name": "Chained",
            "input": [5, 8],
            "layers": [
                {"lstm": {"hidden_size": 3, "bidirectional": True}},
                "relu",
                {"gru": {"hidden_size": 2, "bidirectional": True}},
                {
                    "multiheadattention": 2
                },  # no other layer keeps the GRU's output: exact
            ],
        }
    )
    torch.manual_seed(0)
    batch = 2
    measured = kept_for_backward(build_module(spec).train(), sample_batch(spec, batch))
    copies = (
        2 * 5 * 6 * 4 * batch
    )  # the GRU's two directions' copies of the [5, 6] input
    assert activation_memory(model_tree(spec)).kept(batch) == measured + copies


# -- against published numbers ------------------------------------------------------------------

# torchvision's weights' meta["_ops"]: GFLOPS as torchvision counts them (multiply-adds of convs
# and linear layers), rounded to three decimals
PUBLISHED_GMACS = {
    "resnet18": 1.814,
    "resnet50": 4.089,
    "densenet121": 2.834,
    "squeezenet1_1": 0.349,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_total_macs_equal_torchvisions_published_numbers(name):
    total = node_macs(model_tree(load_spec(ROOT / "specs" / f"{name}.yaml")))
    assert round(total / 1e9, 3) == PUBLISHED_GMACS[name]


def test_elementwise_layers_count_zero_and_a_linear_on_rows_counts_every_row():
    spec = load_spec(
        {"name": "M", "input": [5, 6], "layers": [{"linear": 4}, "relu", "layernorm"]}
    )
    tree = model_tree(spec)
    assert [leaf_macs(n) for _, n in walk(tree.body)] == [5 * 6 * 4, 0, 0]
