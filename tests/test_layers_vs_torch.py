"""Every layer type's static shape and parameter rule, checked against torch itself, both ways.

For each configuration of a grid, the compiler's verdict (a resolved layer, or a SpecError) is
compared with torch's: the layer is built from the same arguments and run on random batches. Where
the compiler accepts, torch must produce `(batch, *static_output_shape)` and `sum(numel)` must equal
the static count; where the compiler refuses, torch must refuse too (raise, or treat the batched
input as something else), so the rules are exact, not approximate.

Torch "accepts" a configuration only when construction and a forward pass on two different batch
sizes both work and keep the batch dimension: a sample shape that torch reads as an unbatched input
of another rank does not count as accepted.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any, Callable

import pytest
import torch
from torch import nn

from compiler import SpecError, load_spec, resolved_layers
from compiler.layers import REGISTRY

BATCHES = (2, 3)  # sample shapes below avoid leading sizes 2 and 3 where rank matters


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def static_verdict(layer_type: str, args: dict[str, Any], shape: tuple[int, ...]):
    """Return (ResolvedLayer, None) when the compiler accepts the layer on `shape`, else (None, error)."""
    spec = {"name": "M", "input": list(shape), "layers": [{"type": layer_type, **args}]}
    try:
        (layer,) = resolved_layers(load_spec(spec))
    except SpecError as exc:
        return None, exc
    return layer, None


def torch_kwargs(
    layer_type: str, args: dict[str, Any], shape: tuple[int, ...]
) -> dict[str, Any]:
    """Return torch constructor arguments: the written ones, with inferred ones from `shape`."""
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    cls = REGISTRY[layer_type]
    inferred = {
        "in_channels": shape[0],
        "in_features": shape[-1],
        "num_features": shape[0],
        "normalized_shape": shape[-1],
    }
    for arg in cls.inferred:
        kwargs.setdefault(arg, inferred[arg])
    if layer_type in ("softmax", "logsoftmax"):
        kwargs.setdefault(
            "dim", -1
        )  # the spec's documented default (torch's None is legacy)
    return kwargs


def torch_verdict(layer_type: str, kwargs: dict[str, Any], shape: tuple[int, ...]):
    """Return (output sample shape, numel) when torch accepts the layer on batched `shape`, else None."""
    torch_class = REGISTRY[layer_type].torch_class
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = getattr(nn, torch_class)(**kwargs)
            outputs = set()
            for batch in BATCHES:
                with torch.no_grad():
                    out = module(torch.randn(batch, *shape))
                if tuple(out.shape[:1]) != (batch,):
                    return None  # torch read the batch as a channel: not this shape's meaning
                outputs.add(tuple(out.shape[1:]))
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        assert "Traceback" not in str(exc)
        return None
    if len(outputs) != 1:
        return None
    numel = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return outputs.pop(), numel


def compare(
    layer_type: str,
    grid: list[dict[str, Any]],
    shapes: list[tuple[int, ...]],
    deliberate: Callable[[dict, tuple], str | None] | None = None,
) -> tuple[int, list[str]]:
    """Return (cases, cases the compiler refused, disagreements) of the compiler and torch.

    `deliberate(args, shape)` names the message fragment of a refusal the spec language makes on
    purpose (see test_deliberate_restrictions); such cases must be refused with that message.
    """
    mismatches: list[str] = []
    cases = refused = 0
    for shape in shapes:
        for args in grid:
            cases += 1
            layer, error = static_verdict(layer_type, args, shape)
            where = f"{layer_type} {args} on {list(shape)}"
            fragment = deliberate(args, shape) if deliberate else None
            if fragment is not None:
                if layer is not None or fragment not in str(error):
                    mismatches.append(
                        f"{where}: expected the deliberate refusal {fragment!r}, got {error}"
                    )
                continue
            if layer is None:
                refused += 1
                theirs = torch_verdict(
                    layer_type, torch_kwargs(layer_type, args, shape), shape
                )
                if theirs is not None:
                    mismatches.append(
                        f"{where}: compiler refuses ({error}), torch gives {theirs}"
                    )
                continue
            # accepted: torch gets exactly the resolved kwargs, which keep what the user wrote
            expected_kwargs = torch_kwargs(layer_type, args, shape)
            if any(layer.kwargs.get(k) != v for k, v in expected_kwargs.items()):
                mismatches.append(
                    f"{where}: resolved kwargs {layer.kwargs} lose written {expected_kwargs}"
                )
            theirs = torch_verdict(layer_type, layer.kwargs, shape)
            if theirs is None:
                mismatches.append(
                    f"{where}: compiler accepts ({layer.output_shape}), torch refuses"
                )
            elif (layer.output_shape, layer.params) != theirs:
                mismatches.append(
                    f"{where}: compiler says {(layer.output_shape, layer.params)}, torch {theirs}"
                )
    return cases, refused, mismatches


def grid(**axes: list[Any]) -> list[dict[str, Any]]:
    """Return every combination of the axes as argument mappings (None leaves an argument out)."""
    keys = list(axes)
    out = []
    for values in itertools.product(*(axes[k] for k in keys)):
        out.append({k: v for k, v in zip(keys, values) if v is not None})
    return out


def assert_agrees(
    layer_type: str,
    args_grid: list[dict[str, Any]],
    shapes: list[tuple[int, ...]],
    minimum: int,
    deliberate: Callable[[dict, tuple], str | None] | None = None,
    refusals: bool = True,
) -> None:
    """Assert that the compiler and torch agree on every case.

    `minimum` guards against a grid that silently shrank; with `refusals`, the grid must hold both
    accepted and refused cases, so both directions of the comparison are exercised.
    """
    cases, refused, mismatches = compare(layer_type, args_grid, shapes, deliberate)
    assert cases >= minimum
    if refusals:
        assert (
            0 < refused < cases
        ), f"{refused} of {cases} refused: the grid tests only one direction"
    assert (
        not mismatches
    ), f"{len(mismatches)} of {cases} cases disagree:\n" + "\n".join(mismatches[:20])


# -- convolutions ------------------------------------------------------------------------------

CONV_SHAPES_2D = [(4, 6, 7), (4, 2, 2), (6, 1, 5)]
CONV_SHAPES_1D = [(4, 7), (4, 2), (6, 1)]


@pytest.mark.parametrize("shape", CONV_SHAPES_2D)
@pytest.mark.parametrize("bias,groups", [(True, 1), (False, 2)])
def test_conv2d_matches_torch(shape, bias, groups):
    args = grid(
        out_channels=[4],
        kernel_size=[1, 3, [2, 3], 5],
        stride=[None, 2, [1, 3]],
        padding=[None, 1, [0, 2], "same", "valid"],
        dilation=[None, 2],
        groups=[groups],
        bias=[bias],
    )
    assert_agrees("conv2d", args, [shape], minimum=100)


@pytest.mark.parametrize("shape", CONV_SHAPES_1D)
def test_conv1d_matches_torch(shape):
    args = grid(
        out_channels=[2, 6],
        kernel_size=[1, 3, [2], 8],
        stride=[None, 2],
        padding=[None, 1, "same", "valid"],
        dilation=[None, 3],
        groups=[None, 2],
        bias=[None, False],
    )
    assert_agrees("conv1d", args, [shape], minimum=100)


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes_match_torch(padding_mode):
    limited = (
        padding_mode != "replicate"
    )  # replicate pads any amount; the others have limits
    args = grid(
        out_channels=[4],
        kernel_size=[1, 3],
        padding=[1, 2, [1, 3], "same"],
        padding_mode=[padding_mode],
    )
    assert_agrees("conv2d", args, [(4, 2, 3), (4, 1, 6)], minimum=10, refusals=limited)
    args = grid(
        out_channels=[4],
        kernel_size=[1, 3, 4],
        padding=[1, 2, 3, "same"],
        padding_mode=[padding_mode],
    )
    assert_agrees("conv1d", args, [(4, 2), (4, 3)], minimum=10, refusals=limited)


def test_conv_written_in_channels_must_match():
    args = grid(out_channels=[4], kernel_size=[1], in_channels=[4, 5])
    assert_agrees("conv2d", args, [(4, 3, 3)], minimum=2)
    layer, error = static_verdict(
        "conv2d", {"out_channels": 4, "kernel_size": 1, "in_channels": 5}, (4, 3, 3)
    )
    assert layer is None and "layers[0].conv2d.in_channels: written as 5" in str(error)


# -- pooling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer_type", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("shape", [(4, 6, 7), (4, 2, 3), (4, 1, 1), (5, 5, 5)])
def test_pool2d_matches_torch(layer_type, shape):
    extra = (
        {"dilation": [None, 2]}
        if layer_type == "maxpool2d"
        else {"count_include_pad": [None, False]}
    )
    args = grid(
        kernel_size=[1, 2, 3, [2, 3]],
        stride=[None, 1, 2, [2, 1]],
        padding=[None, 1, 2],
        ceil_mode=[None, True],
        **extra,
    )
    assert_agrees(layer_type, args, [shape], minimum=150)


@pytest.mark.parametrize("layer_type", ["maxpool1d", "avgpool1d"])
@pytest.mark.parametrize("shape", [(4, 7), (4, 2), (4, 1), (5, 5)])
def test_pool1d_matches_torch(layer_type, shape):
    extra = (
        {"dilation": [None, 2]}
        if layer_type == "maxpool1d"
        else {"count_include_pad": [None, False]}
    )
    args = grid(
        kernel_size=[1, 2, 3, [4]],
        stride=[None, 1, 2, 3],
        padding=[None, 1, 2],
        ceil_mode=[None, True],
        **extra,
    )
    assert_agrees(layer_type, args, [shape], minimum=150)


def test_avgpool2d_divisor_override_matches_torch():
    args = grid(kernel_size=[2, 3], divisor_override=[None, 1, 5])
    assert_agrees("avgpool2d", args, [(4, 5, 5), (4, 2, 2)], minimum=12)


@pytest.mark.parametrize(
    "layer_type,shapes,sizes",
    [
        ("adaptiveavgpool1d", [(4, 7), (4, 1)], [1, 3, [2], [2, 2], 10]),
        ("adaptiveavgpool2d", [(4, 6, 7), (4, 1, 1)], [1, 3, [2, 4], [1, 9], [2], 10]),
    ],
)
def test_adaptive_pools_match_torch(layer_type, shapes, sizes):
    # a list of the wrong length is refused by both; any output size >= 1 is fine for torch
    assert_agrees(layer_type, grid(output_size=sizes), shapes, minimum=8)


# -- normalization -----------------------------------------------------------------------------

RANKS = [(7,), (6, 5), (4, 5, 6), (4, 5, 6, 7)]


@pytest.mark.parametrize("layer_type", ["batchnorm1d", "batchnorm2d"])
def test_batchnorm_matches_torch(layer_type):
    args = grid(
        affine=[None, False],
        track_running_stats=[None, False],
        momentum=[None, 0.5],
        num_features=[None, 4],
    )

    def written_num_features_must_match(args: dict, shape: tuple) -> str | None:
        # torch only checks num_features through its weights and running stats; without them it
        # ignores a wrong value, but SPEC.md says a written in_* argument must equal the inferred one
        ranks = REGISTRY[layer_type].ranks
        if len(shape) in ranks and args.get("num_features", shape[0]) != shape[0]:
            return "num_features: written as 4"
        return None

    assert_agrees(
        layer_type, args, RANKS, minimum=60, deliberate=written_num_features_must_match
    )


def test_layernorm_matches_torch():
    args = grid(
        normalized_shape=[
            None,
            5,
            6,
            7,
            [7],
            [6, 7],
            [5, 6, 7],
            [4, 5, 6, 7],
            [5, 5],
            [1, 4, 5, 6, 7],
        ],
        elementwise_affine=[None, False],
        bias=[None, False],
    )
    assert_agrees("layernorm", args, RANKS, minimum=100)


# -- flatten, softmax, linear -------------------------------------------------------------------


def test_flatten_matches_torch():
    dims = [-4, -3, -2, -1, 1, 2, 3, 4]
    args = grid(start_dim=[None, *dims], end_dim=[None, *dims])

    def batch_dimension(args: dict, shape: tuple) -> str | None:
        start = args.get("start_dim", 1)
        if start + len(shape) + 1 == 0 and args.get("end_dim", -1) in (
            0,
            -len(shape) - 1,
        ):
            return "start_dim 0 would flatten the batch dimension"
        return None

    assert_agrees("flatten", args, RANKS[:3], minimum=200, deliberate=batch_dimension)


@pytest.mark.parametrize("layer_type", ["softmax", "logsoftmax"])
def test_softmax_dims_match_torch(layer_type):
    args = grid(dim=[None, -4, -3, -2, -1, 1, 2, 3, 4])

    def batch_dimension(args: dict, shape: tuple) -> str | None:
        return (
            "dim 0 is the batch dimension"
            if args.get("dim") == -len(shape) - 1
            else None
        )

    assert_agrees(layer_type, args, RANKS[:3], minimum=27, deliberate=batch_dimension)


def test_linear_matches_torch():
    args = grid(out_features=[1, 9], bias=[None, False], in_features=[None, 7, 6])
    assert_agrees("linear", args, [(7,), (4, 7), (4, 5, 7), (4, 5, 6, 7)], minimum=40)


# -- layers without shape rules of their own -----------------------------------------------------


@pytest.mark.parametrize(
    "layer_type,args",
    [
        ("relu", {}),
        ("leakyrelu", {"negative_slope": 0.2}),
        ("gelu", {"approximate": "tanh"}),
        ("silu", {}),
        ("elu", {"alpha": 0.5}),
        ("tanh", {}),
        ("sigmoid", {}),
        ("identity", {}),
        ("dropout", {"p": 0.3}),
    ],
)
def test_shape_preserving_layers_match_torch(layer_type, args):
    assert_agrees(layer_type, [args], RANKS, minimum=4, refusals=False)


def test_channel_dropouts_match_torch_on_their_ranks():
    assert_agrees("dropout1d", [{"p": 0.5}], [(4, 7)], minimum=1, refusals=False)
    assert_agrees("dropout2d", [{"p": 0.5}], [(4, 5, 6)], minimum=1, refusals=False)


# -- deliberate restrictions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer_type,args,shape,fragment",
    [
        # torch would flatten or normalize over the batch dimension: never what a spec means
        (
            "flatten",
            {"start_dim": 0},
            (4, 5),
            "start_dim 0 would flatten the batch dimension",
        ),
        (
            "flatten",
            {"start_dim": -3, "end_dim": -3},
            (4, 5),
            "start_dim 0 would flatten the batch",
        ),
        ("softmax", {"dim": 0}, (4,), "dim 0 is the batch dimension"),
        ("logsoftmax", {"dim": -2}, (4,), "dim 0 is the batch dimension"),
        # a written in_* argument must equal the inferred one, even where torch would not notice
        (
            "batchnorm1d",
            {"num_features": 5, "affine": False, "track_running_stats": False},
            (4,),
            "num_features: written as 5, but the shape reaching it is [4]",
        ),
        # torch reads a batch of the wrong rank as one unbatched sample and drops other elements
        ("dropout1d", {}, (7,), "dropout1d needs a 2-D input (C, L)"),
        ("dropout1d", {}, (4, 5, 6), "dropout1d needs a 2-D input (C, L)"),
        ("dropout2d", {}, (4, 5), "dropout2d needs a 3-D input (C, H, W)"),
        ("dropout2d", {}, (4, 5, 6, 7), "dropout2d needs a 3-D input (C, H, W)"),
        # pools on a sample without channels: torch would take the batch for the channels
        (
            "maxpool2d",
            {"kernel_size": 2},
            (6, 6),
            "maxpool2d needs a 3-D input (C, H, W)",
        ),
        ("avgpool1d", {"kernel_size": 2}, (6,), "avgpool1d needs a 2-D input (C, L)"),
        (
            "adaptiveavgpool2d",
            {"output_size": 2},
            (6, 6),
            "adaptiveavgpool2d needs a 3-D input",
        ),
    ],
)
def test_deliberate_restrictions(layer_type, args, shape, fragment):
    """Configurations torch runs but the spec language refuses, each for a stated reason."""
    layer, error = static_verdict(layer_type, args, shape)
    assert layer is None
    assert fragment in str(error)
    assert error.problems[0].path.startswith("layers[0]")
