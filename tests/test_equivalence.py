"""The generated class and nn.Sequential are one function, for every spec in specs/.

Same parameter count (static, both forms, torchsummary), same state_dict keys, same initial
weights under a seed, bit-identical outputs (eval and train mode) and gradients, and checkpoints
that load across forms with strict=True.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import re
import warnings
from pathlib import Path

import pytest
import torch
from torchsummary import summary

from compiler import (
    build_sequential,
    count_params,
    load_spec,
    model_tree,
    resolved_layers,
)
from compiler.layers import REGISTRY
from compiler.tree import Leaf, children
from runtime.data.inputs import sample_batch, spec_inputs
from runtime.training.generated_form import (
    StaleGeneratedCodeWarning,
    load_generated_class,
)

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2

# one torch thread: with the suite's two xdist workers on two cores, two threads each only
# oversubscribe the cores, even for the big models here
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def sequential_form(path: Path, seed: int = 0) -> torch.nn.Module:
    """Return the nn.Sequential of a spec, built right after seeding."""
    spec = load_spec(path)
    torch.manual_seed(seed)
    return build_sequential(spec)


def generated_form(path: Path, seed: int = 0) -> torch.nn.Module:
    """Return an instance of a spec's committed generated class, built right after seeding."""
    spec = load_spec(path)
    with warnings.catch_warnings():
        warnings.simplefilter(
            "error", StaleGeneratedCodeWarning
        )  # the committed class, not a fallback
        cls = load_generated_class(spec, path, ROOT / "generated")
    torch.manual_seed(seed)
    return cls()


def both_forms(path: Path, seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    """Return (Sequential, generated class instance) of a spec, each built right after seeding."""
    return sequential_form(path, seed), generated_form(path, seed)


def torchsummary_sees(spec) -> bool:
    """Return whether torchsummary can count the spec's model (it reads only .weight and .bias,
    and fails on inner modules that return tuples, as recurrent and attention layers do).
    """
    return all(
        REGISTRY[layer.type].torchsummary_sees for layer in resolved_layers(spec)
    )


def torchsummary_total(model: torch.nn.Module, spec) -> int:
    """Return the `Total params` that torchsummary prints for the model on CPU."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), spec_inputs(model, spec):
        summary(model, input_size=tuple(spec.input), device="cpu")
    found = re.search(r"Total params: ([\d,]+)", out.getvalue())
    assert found, out.getvalue()
    return int(found.group(1).replace(",", ""))


def random_batch(path: Path, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return sample_batch(load_spec(path), BATCH, generator=generator)


def test_specs_folder_is_not_empty(example_specs):
    assert len(example_specs) >= 6


def test_the_committed_class_is_the_one_used(example_spec):
    _, generated = both_forms(example_spec)
    assert (
        Path(inspect.getsourcefile(type(generated))).resolve()
        == ROOT / "generated" / f"{example_spec.stem}.py"
    )
    assert type(generated).__name__ == load_spec(example_spec).name


def test_parameter_counts_agree(example_spec):
    spec = load_spec(example_spec)
    sequential, generated = both_forms(example_spec)
    static = count_params(spec)
    assert sum(p.numel() for p in sequential.parameters()) == static
    assert sum(p.numel() for p in generated.parameters()) == static
    if torchsummary_sees(spec):
        assert torchsummary_total(sequential, spec) == static
        assert torchsummary_total(generated, spec) == static


def test_same_children_keys_and_initial_weights(example_spec):
    sequential, generated = both_forms(example_spec, seed=123)
    # the same children, but for tensor ops: a line of the generated forward, a small
    # parameter-free module of the built form
    spec = load_spec(example_spec)
    kids = list(children(model_tree(spec).body))
    ops = {kid.name for kid in kids if isinstance(kid, Leaf) and kid.layer.tensor_op}
    built = [n for n, _ in sequential.named_children()]
    assert [n for n in built if n not in ops] == [
        n for n, _ in generated.named_children()
    ]
    assert built == [kid.name for kid in kids]
    seq_state, gen_state = sequential.state_dict(), generated.state_dict()
    assert list(seq_state) == list(gen_state)
    for key in seq_state:
        assert torch.equal(seq_state[key], gen_state[key]), key
    # the seed matters, so equal weights are not an accident of constant initialization
    other = generated_form(example_spec, seed=124)
    if any(p.numel() for p in generated.parameters()):
        assert any(
            not torch.equal(a, b)
            for a, b in zip(generated.parameters(), other.parameters())
        )


def test_eval_outputs_are_bit_identical(example_spec):
    sequential, generated = both_forms(example_spec)
    sequential.eval()
    generated.eval()
    for seed in (1, 2):
        x = random_batch(example_spec, seed)
        with torch.no_grad():
            expected, actual = sequential(x), generated(x)
        assert actual.shape == expected.shape
        assert torch.equal(actual, expected)


def test_train_mode_outputs_and_gradients_are_identical(example_spec):
    sequential, generated = both_forms(example_spec)
    x = random_batch(example_spec)
    outputs = []
    for model in (sequential, generated):
        model.train()
        torch.manual_seed(7)  # the same dropout masks for both
        out = model(x)
        (out.square().mean() + out.sum()).backward()
        outputs.append(out.detach())
    assert torch.equal(outputs[0], outputs[1])
    seq_params, gen_params = dict(sequential.named_parameters()), dict(
        generated.named_parameters()
    )
    assert list(seq_params) == list(gen_params)
    for name, param in seq_params.items():
        assert param.grad is not None, name
        assert torch.equal(param.grad, gen_params[name].grad), name
    # running statistics (BatchNorm) moved the same way too
    for (name, a), b in zip(sequential.named_buffers(), generated.buffers()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "direction", ["sequential->generated", "generated->sequential"]
)
def test_checkpoint_loads_across_forms_strictly(example_spec, direction):
    # the target is built under another seed: other weights until the checkpoint is loaded
    # (only the two models used are built: a densenet121 takes seconds)
    if direction == "sequential->generated":
        source, target = sequential_form(example_spec, 1), generated_form(
            example_spec, 2
        )
    else:
        source, target = generated_form(example_spec, 1), sequential_form(
            example_spec, 2
        )
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    result = target.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    source.eval()
    target.eval()
    x = random_batch(example_spec)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))
