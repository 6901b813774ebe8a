"""Static MACs, state_dict entries and activation memory, checked against torch running the model.

For every spec in specs/ and a few small specs that use every layer type: the MACs of each layer
equal a counter's that runs the model with forward hooks on its convolutions and linear layers
(every other layer must then count 0), the static state_dict equals the built model's key for
key and shape for shape, and the bytes that autograd keeps for backward in training mode equal
what `saved_tensors_hooks` sees (each storage once, parameters and buffers left out).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from compiler import build_module, count_params, load_spec, model_tree
from compiler.compute import COSTS
from compiler.costs import activation_memory, leaf_macs, node_macs, state_entries, walk
from compiler.layers import REGISTRY
from compiler.tree import Leaf
from tests.layer_examples import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "specs").glob("*") if p.suffix in (".yaml", ".yml", ".json"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")

def _load(case):
    return load_spec(case) if isinstance(case, dict) else load_spec(case)


CASES = [*SPECS, *EXAMPLES.values()]
IDS = [*(p.stem for p in SPECS), *EXAMPLES]


def test_every_registered_layer_type_has_cost_rules():
    missing = sorted(set(REGISTRY) - set(COSTS))
    assert not missing, f"add these layer types to COSTS in compiler/compute.py: {missing}"
    assert not set(COSTS) - set(REGISTRY), "COSTS names types that are not registered"


def test_the_examples_use_every_registered_layer_type():
    used = {
        leaf.layer.type_name
        for case in EXAMPLES.values()
        for _, leaf in walk(model_tree(load_spec(case)).body)
        if isinstance(leaf, Leaf)
    }
    missing = sorted(set(REGISTRY) - used)
    assert not missing, f"add these layer types to EXAMPLES in tests/layer_examples.py: {missing}"


# -- running the model --------------------------------------------------------------------------


def counted_macs(model: nn.Module, x: torch.Tensor) -> dict[str, int]:
    """Return {module name: MACs per sample} from forward hooks on every leaf module."""
    found: dict[str, int] = {}

    def hook(name):
        def record(module, inputs, output):
            batch = inputs[0].shape[0]
            if isinstance(module, nn.modules.conv._ConvNd):
                per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
                macs = output.numel() * per_output
            elif isinstance(module, nn.Linear):
                macs = output.numel() * module.in_features
            else:
                macs = 0
            found[name] = found.get(name, 0) + macs // batch

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    with torch.no_grad():
        model(x)
    for handle in handles:
        handle.remove()
    return found


def kept_for_backward(model: nn.Module, x: torch.Tensor) -> int:
    """Return the bytes autograd saves in a training forward: each storage once, weights left out."""
    own = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers()]}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x)
    return sum(seen.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_macs_of_every_layer_equal_a_counter_running_the_model(case):
    spec = _load(case)
    tree = model_tree(spec)
    torch.manual_seed(0)
    counted = counted_macs(build_module(spec).eval(), torch.randn(2, *spec.input))
    static = {name: leaf_macs(node) for name, node in walk(tree.body) if isinstance(node, Leaf)}
    assert static == counted
    assert node_macs(tree) == sum(counted.values())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_static_state_dict_equals_the_built_models(case):
    spec = _load(case)
    static = state_entries(model_tree(spec))
    built = build_module(spec).state_dict()
    assert list(static) == list(built)
    assert {k: e.shape for k, e in static.items()} == {k: tuple(v.shape) for k, v in built.items()}
    assert {k: e.dtype for k, e in static.items()} == {k: str(v.dtype).removeprefix("torch.") for k, v in built.items()}
    params = sum(math.prod(e.shape) for e in static.values() if e.kind == "parameter")
    assert params == count_params(spec)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_activations_kept_for_backward_equal_what_autograd_saves(case):
    spec = _load(case)
    torch.manual_seed(0)
    model = build_module(spec).train()
    batch = 2
    measured = kept_for_backward(model, torch.randn(batch, *spec.input))
    # torch on the CPU keeps a float32 dropout mask; the summary's estimate is CUDA's bool mask
    assert activation_memory(model_tree(spec), dropout_mask_bytes=4).kept(batch) == measured


# -- against published numbers ------------------------------------------------------------------

# torchvision's weights' meta["_ops"]: GFLOPS as torchvision counts them (multiply-adds of convs
# and linear layers), rounded to three decimals
PUBLISHED_GMACS = {"resnet18": 1.814, "resnet50": 4.089, "densenet121": 2.834, "squeezenet1_1": 0.349}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_total_macs_equal_torchvisions_published_numbers(name):
    total = node_macs(model_tree(load_spec(ROOT / "specs" / f"{name}.yaml")))
    assert round(total / 1e9, 3) == PUBLISHED_GMACS[name]


def test_elementwise_layers_count_zero_and_a_linear_on_rows_counts_every_row():
    spec = load_spec({"name": "M", "input": [5, 6], "layers": [{"linear": 4}, "relu", "layernorm"]})
    tree = model_tree(spec)
    assert [leaf_macs(n) for _, n in walk(tree.body)] == [5 * 6 * 4, 0, 0]
