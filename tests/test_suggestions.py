"""'did you mean' never changes the model a user meant: it proposes only a type that is spelled
alike and computes the same thing, maps torch's own class names to nnspec's, and lists the types
once per file."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

from compiler import SpecError, load_spec
from compiler.normalize import layer_kinds, suggest_type, unknown_type_message
from compiler.torch_names import TORCH_NN_CLASSES

DIFFERENT_OPERATIONS = [
    ("adaptivemaxpool2d", "adaptiveavgpool2d"),
    ("adaptivemaxpool1d", "adaptiveavgpool1d"),
    ("instancenorm2d", "batchnorm2d"),
    ("instancenorm1d", "batchnorm1d"),
    ("hardtanh", "tanh"),
    ("relu6", "relu"),
    ("hardsigmoid", "sigmoid"),
    ("maxpool3d", "maxpool2d"),
    ("conv3d", "conv2d"),
    ("celu", "elu"),
    ("selu", "elu"),
    ("logsoftmax", "softmax"),
    ("groupnorm", "layernorm"),
    ("convtranspose2d", "conv2d"),
]


@pytest.mark.parametrize(
    "one,other", DIFFERENT_OPERATIONS + [(b, a) for a, b in DIFFERENT_OPERATIONS]
)
def test_near_misses_that_are_different_operations_are_never_proposed(one, other):
    kinds = layer_kinds()
    assert one in kinds and other in kinds
    # with both registered, each is itself; with one missing, the other is not offered for it
    assert suggest_type(one, kinds) == one
    missing = {k: v for k, v in kinds.items() if k != one}
    assert suggest_type(one, missing) != other
    message = unknown_type_message(one, missing)
    assert f"did you mean '{other}'" not in message
    assert "the layer types are:" in message


@pytest.mark.parametrize(
    "written,meant",
    [
        ("ReLU", "relu"),
        ("nn.Conv2d", "conv2d"),
        ("torch.nn.Linear", "linear"),
        ("Conv2D", "conv2d"),
        ("BatchNorm2d", "batchnorm2d"),
        ("batch_norm2d", "batchnorm2d"),
        ("LSTM", "lstm"),
        ("nn.MultiheadAttention", "multiheadattention"),
        ("ConvTranspose2d", "convtranspose2d"),
        ("ReLU6", "relu6"),
        ("LeakyReLU", "leakyrelu"),
        ("PixelShuffle", "pixelshuffle"),
    ],
)
def test_torch_names_in_any_case_map_to_the_nnspec_type(written, meant):
    assert suggest_type(written, layer_kinds()) == meant


@pytest.mark.parametrize(
    "typo,meant",
    [
        ("lienar", "linear"),
        ("maxpol2d", "maxpool2d"),
        ("dropuot", "dropout"),
        ("hardtanhh", "hardtanh"),
        ("batchnrom2d", "batchnorm2d"),
    ],
)
def test_typos_still_get_their_type(typo, meant):
    assert suggest_type(typo, layer_kinds()) == meant


@pytest.mark.parametrize(
    "other",
    [
        "relu7",
        "conv9",
        "softmax2d",
        "transformerencoder",
        "rmsnorm",
        "lppool2d",
        "maxunpool2d",
        "zeropad3d",
    ],
)
def test_names_of_other_operations_get_no_guess(other):
    message = unknown_type_message(other, layer_kinds())
    assert "did you mean" not in message and "the layer types are:" in message


def test_a_torch_class_not_in_the_vocabulary_is_named():
    message = unknown_type_message("RMSNorm", layer_kinds())
    assert "torch's nn.RMSNorm is not one of them yet" in message


def test_the_list_of_types_is_printed_once_per_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(
        "name: M\ninput: [4]\nlayers:\n  - foo\n  - relu\n  - bar\n  - baz\n",
        encoding="utf-8",
    )
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert "the layer types are: " in lines[0] and "linear" in lines[0]
    assert lines[1].endswith(
        "unknown layer type 'bar'; the layer types are listed at line 4"
    )
    assert lines[2].endswith(
        "unknown layer type 'baz'; the layer types are listed at line 4"
    )


def test_every_module_class_of_the_installed_torch_is_known():
    installed = {
        name
        for name in dir(nn)
        if inspect.isclass(getattr(nn, name))
        and issubclass(getattr(nn, name), nn.Module)
        and not name.startswith("_")
    }
    missing = installed - set(TORCH_NN_CLASSES)
    assert (
        not missing
    ), f"add to compiler/torch_names.py (torch {torch.__version__}): {sorted(missing)}"
