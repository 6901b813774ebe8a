"""The layer types of sequences, generation and modern nets against torch itself.

For a grid of arguments and sample shapes, the compiler's static verdict (accepted with an output
shape and a parameter count, or refused) must match what torch does with the same arguments on a
batch. torch is run here directly, the way the generated forward runs each layer (an LSTM's
`x, _ = lstm(x)` or its final state, self-attention as `attn(x, x, x)`, a tensor operation as the
tensor method), not through compiler/modules.py, so the built form is checked against torch too
(tests/test_equivalence.py and tests/test_nested_properties.py check the two forms agree).
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from test_layers_vs_torch import grid  # noqa: E402 - the same argument grids
from torch import nn

from compiler import SpecError, build_module, load_spec, resolved_layers
from compiler.layers import REGISTRY

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BATCHES = (2, 3)


def spec_of(layer_type: str, args: dict, shape: tuple[int, ...]) -> dict:
    cls = REGISTRY[layer_type]
    layers = [{"type": layer_type, **args}]
    if cls.takes_ids:
        return {
            "name": "M",
            "input": {"shape": list(shape), "dtype": "int64"},
            "layers": layers,
        }
    return {"name": "M", "input": list(shape), "layers": layers}


def static_verdict(layer_type: str, args: dict, shape: tuple[int, ...]):
    try:
        (layer,) = resolved_layers(load_spec(spec_of(layer_type, args, shape)))
    except SpecError as exc:
        return None, exc
    return layer, None


INFERRED = {
    "in_channels": lambda s: s[0],
    "num_channels": lambda s: s[0],
    "num_features": lambda s: s[0],
    "input_size": lambda s: s[-1],
    "embed_dim": lambda s: s[-1],
    "d_model": lambda s: s[-1],
    "embedding_dim": lambda s: s[-1],
    "num_embeddings": lambda s: s[0],
}


def torch_run(layer_type: str, args: dict, shape: tuple[int, ...]):
    """Return (output sample shape, parameter count) of torch on batches of `shape`, or None
    when torch refuses."""
    cls = REGISTRY[layer_type]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
    for arg in cls.inferred:
        kwargs.setdefault(arg, INFERRED[arg](shape))
    forward = {k: kwargs.pop(k) for k in cls.forward_args if k in kwargs}
    if layer_type == "unflatten":
        kwargs.setdefault("dim", 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = None
            if not cls.tensor_op:
                module = getattr(nn, cls.torch_class)(**kwargs, **cls.fixed)
            outputs = set()
            for batch in BATCHES:
                if cls.takes_ids:
                    x = torch.randint(0, kwargs["num_embeddings"], (batch, *shape))
                else:
                    x = torch.randn(batch, *shape)
                with torch.no_grad():
                    out = run_like_generated(layer_type, module, kwargs, forward, x)
                if out.shape[0] != batch or 0 in out.shape:
                    return None  # an empty output is never what a spec means
                outputs.add(tuple(out.shape[1:]))
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError):
        return None
    if len(outputs) != 1:
        return None
    params = sum(p.numel() for p in module.parameters()) if module is not None else 0
    return outputs.pop(), params


def run_like_generated(layer_type, module, kwargs, forward, x):
    if layer_type in ("lstm", "gru", "rnn"):
        if layer_type == "lstm" and kwargs.get("proj_size", 0) >= kwargs["hidden_size"]:
            raise ValueError(
                "proj_size"
            )  # torch refuses this at construction on newer versions
        out, state = module(x)
        if forward.get("output", "sequence") == "sequence":
            return out
        h = state[0] if layer_type == "lstm" else state
        return (
            torch.cat([h[-2], h[-1]], dim=1) if kwargs.get("bidirectional") else h[-1]
        )
    if layer_type == "multiheadattention":
        return module(x, x, x, need_weights=False)[0]
    if layer_type == "positional":
        if module.weight.shape[0] < x.shape[1]:
            raise IndexError("table too short")
        return x + module.weight[: x.shape[1]]
    if layer_type == "clstoken":
        return torch.cat([module.weight.expand(x.shape[0], -1, -1), x], dim=1)
    if layer_type in ("transpose", "permute"):
        dims = kwargs["dims"]
        if layer_type == "permute" and dims[0] != 0:
            raise ValueError("batch moved")
        if 0 in dims and layer_type == "transpose":
            raise ValueError("batch")
        return getattr(x, layer_type)(*dims)
    if layer_type in ("mean", "amax"):
        dim = kwargs["dim"]
        dims = dim if isinstance(dim, tuple) else (dim,)
        if any(d % x.dim() == 0 for d in dims):
            raise ValueError("batch")
        return getattr(x, layer_type)(dim=dim, keepdim=kwargs.get("keepdim", False))
    if layer_type == "select":
        if kwargs["dim"] % x.dim() == 0:
            raise ValueError("batch")
        return x.select(kwargs["dim"], kwargs["index"])
    return module(x)


def assert_agrees(layer_type, args_grid, shapes, minimum, refusals=True, deliberate=()):
    """Assert the compiler and torch agree on every case (`deliberate`: fragments of refusals
    the spec language makes on purpose, on cases torch runs)."""
    cases = refused = 0
    mismatches = []
    for shape, args in itertools.product(shapes, args_grid):
        cases += 1
        layer, error = static_verdict(layer_type, args, shape)
        theirs = torch_run(layer_type, args, shape)
        where = f"{layer_type} {args} on {list(shape)}"
        if layer is None:
            refused += 1
            if theirs is not None and not any(f in str(error) for f in deliberate):
                mismatches.append(
                    f"{where}: compiler refuses ({error}), torch gives {theirs}"
                )
        elif theirs is None:
            mismatches.append(
                f"{where}: compiler accepts {layer.output_shape}, torch refuses"
            )
        elif (layer.output_shape, layer.params) != theirs:
            mismatches.append(
                f"{where}: compiler {(layer.output_shape, layer.params)}, torch {theirs}"
            )
    assert cases >= minimum
    if refusals:
        assert 0 < refused < cases, f"{refused} of {cases} refused: one direction only"
    assert not mismatches, f"{len(mismatches)} of {cases} disagree:\n" + "\n".join(
        mismatches[:20]
    )


def test_embedding_matches_torch():
    args = grid(
        num_embeddings=[5, 30], embedding_dim=[3], padding_idx=[None, 0, -5, 4, 29, 40]
    )
    assert_agrees("embedding", args, [(7,), (4, 6)], minimum=20)


@pytest.mark.parametrize("layer_type", ["lstm", "gru", "rnn"])
def test_recurrent_layers_match_torch(layer_type):
    extra = {"proj_size": [None, 2, 6]} if layer_type == "lstm" else {}
    args = grid(
        hidden_size=[4],
        num_layers=[None, 2],
        bias=[None, False],
        bidirectional=[None, True],
        output=[None, "final"],
        dropout=[None, 0.2],
        **extra,
    )
    assert_agrees(
        layer_type,
        args,
        [(5, 3), (1, 2)],
        minimum=60,
        deliberate=("with num_layers 1 it does nothing",),
    )


def test_attention_and_transformer_layers_match_torch():
    args = grid(
        num_heads=[1, 2, 3],
        bias=[None, False],
        add_bias_kv=[None, True],
        dropout=[None, 0.1],
    )
    assert_agrees("multiheadattention", args, [(5, 6), (3, 4)], minimum=40)
    args = grid(
        nhead=[2, 3],
        dim_feedforward=[8],
        bias=[None, False],
        norm_first=[None, True],
        activation=[None, "gelu"],
    )
    assert_agrees("transformerencoderlayer", args, [(5, 6), (2, 4)], minimum=30)


def test_positions_and_class_tokens_match_torch():
    assert_agrees(
        "positional", grid(num_embeddings=[None, 3, 5, 9]), [(5, 4), (1, 2)], minimum=8
    )
    assert_agrees("clstoken", [{}], [(5, 4), (1, 2)], minimum=2, refusals=False)


@pytest.mark.parametrize(
    "layer_type,shapes",
    [
        ("convtranspose1d", [(4, 5), (2, 1)]),
        ("convtranspose2d", [(4, 5, 3), (2, 1, 1)]),
    ],
)
def test_transposed_convolutions_match_torch(layer_type, shapes):
    args = grid(
        out_channels=[2, 4],
        kernel_size=[1, 3, 4],
        stride=[None, 2],
        padding=[None, 1, 3],
        output_padding=[None, 1],
        dilation=[None, 2],
        groups=[None, 2],
    )
    assert_agrees(layer_type, args, shapes, minimum=200)


def test_three_d_layers_match_torch():
    shapes = [(2, 4, 5, 3), (2, 1, 2, 2)]
    conv = grid(
        out_channels=[2],
        kernel_size=[1, 2, [1, 2, 3]],
        stride=[None, 2],
        padding=[None, 1, "same"],
    )
    assert_agrees("conv3d", conv, shapes, minimum=30)
    pools = grid(
        kernel_size=[1, 2, [1, 2, 3]],
        stride=[None, 1],
        padding=[None, 1],
        ceil_mode=[None, True],
    )
    assert_agrees("maxpool3d", pools, shapes, minimum=40)
    assert_agrees("avgpool3d", pools, shapes, minimum=40)
    assert_agrees(
        "adaptiveavgpool3d", grid(output_size=[1, [2, 1, 3], [2, 2]]), shapes, minimum=6
    )
    assert_agrees(
        "batchnorm3d", grid(affine=[None, False]), shapes + [(2, 3)], minimum=6
    )


@pytest.mark.parametrize(
    "layer_type,shapes,sizes",
    [
        ("adaptivemaxpool1d", [(4, 7), (4, 1)], [1, 3, [2], [2, 2], 10]),
        ("adaptivemaxpool2d", [(4, 6, 7), (4, 1, 1)], [1, 3, [2, 4], [2], 10]),
    ],
)
def test_adaptive_max_pools_match_torch(layer_type, shapes, sizes):
    assert_agrees(layer_type, grid(output_size=sizes), shapes, minimum=8)


def test_upsample_matches_torch():
    args = grid(
        scale_factor=[None, 2, 1.5, [2, 3]],
        size=[None, 4, [3, 5]],
        mode=[None, "bilinear", "linear", "bicubic", "trilinear"],
    )
    assert_agrees(
        "upsample",
        args,
        [(2, 3), (2, 3, 4), (2, 2, 3, 4)],
        minimum=150,
        deliberate=(
            "give exactly one of scale_factor and size",
            "does not take the sample",
        ),
    )


def test_reshaping_layers_match_torch():
    assert_agrees(
        "unflatten",
        grid(unflattened_size=[[2, 6], [3, 4], [12], [5, 2]], dim=[None, -1, 2]),
        [(12,), (12, 3), (3, 12)],
        minimum=30,
    )
    assert_agrees(
        "zeropad1d", grid(padding=[0, 2, [1, 3], [1, 2, 3]]), [(3, 4)], minimum=4
    )
    assert_agrees(
        "zeropad2d",
        grid(padding=[1, [1, 2, 3, 4], [1, 2], [1, 2, 3]]),
        [(3, 4, 5)],
        minimum=4,
    )
    assert_agrees(
        "pixelshuffle",
        grid(upscale_factor=[1, 2, 3]),
        [(8, 2, 3), (9, 1, 1)],
        minimum=6,
    )


def test_normalizations_match_torch():
    assert_agrees(
        "groupnorm",
        grid(num_groups=[1, 2, 3, 4], affine=[None, False]),
        [(4, 5), (6, 2, 3), (4,)],
        minimum=20,
    )
    for layer_type, shapes in (
        ("instancenorm1d", [(4, 5), (3, 1)]),
        ("instancenorm2d", [(4, 2, 3), (3, 1, 1)]),
    ):
        assert_agrees(
            layer_type,
            grid(affine=[None, True], track_running_stats=[None, True]),
            shapes,
            minimum=8,
            deliberate=("one position per channel",),
        )


@pytest.mark.parametrize(
    "layer_type,args",
    [
        ("relu6", grid(inplace=[None])),
        ("prelu", grid(num_parameters=[1, 4, 3], init=[None, 0.1])),
        ("hardswish", [{}]),
        ("hardsigmoid", [{}]),
        ("hardtanh", grid(min_val=[None, -2.0, 3.0], max_val=[None, 2.0])),
        ("mish", [{}]),
        ("softplus", grid(beta=[None, 2.0], threshold=[None, 5.0])),
        ("selu", [{}]),
        ("celu", grid(alpha=[None, 0.5, 1e-40, 3e-39])),
    ],
)
def test_activations_match_torch(layer_type, args):
    refusals = layer_type in ("prelu", "hardtanh", "celu")
    assert_agrees(
        layer_type, args, [(4, 5), (4,)], minimum=len(args), refusals=refusals
    )


def test_tensor_ops_match_torch():
    shapes = [(4, 5), (2, 3, 4)]
    assert_agrees(
        "transpose",
        grid(dims=[[1, 2], [-1, -2], [0, 1], [1, 3], [2, 3]]),
        shapes,
        minimum=10,
    )
    assert_agrees(
        "permute",
        grid(dims=[[0, 2, 1], [0, 1, 2, 3], [0, 3, 1, 2], [1, 0, 2], [0, 1, 1]]),
        shapes,
        minimum=10,
    )
    assert_agrees(
        "mean",
        grid(dim=[1, -1, [1, 2], 0, 3], keepdim=[None, True]),
        shapes,
        minimum=20,
        deliberate=("reduces every dimension",),
    )
    assert_agrees(
        "amax",
        grid(dim=[1, [1, -1]], keepdim=[None, True]),
        shapes,
        minimum=8,
        deliberate=("reduces every dimension",),
    )
    assert_agrees(
        "select",
        grid(dim=[1, 2, -1, 0], index=[0, -1, 4, -6]),
        shapes,
        minimum=30,
        deliberate=("nothing would be left",),
    )


def test_batch_first_and_tensor_ops_in_both_forms():
    """The built module returns what the generated forward computes (state_dict keys are torch's)."""
    spec = load_spec(
        {
            "name": "Seq",
            "input": [6, 5],
            "layers": [
                {"transpose": [1, 2]},
                {"lstm": {"hidden_size": 4, "bidirectional": True, "name": "rnn"}},
                {"select": {"dim": 1, "index": -1}},
            ],
        }
    )
    model = build_module(spec)
    assert list(model.state_dict())[:2] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    lstm = model.rnn
    assert lstm.batch_first and isinstance(lstm, nn.LSTM)
    x = torch.randn(3, 6, 5)
    with torch.no_grad():
        expected = nn.LSTM.forward(lstm, x.transpose(1, 2))[0][:, -1]
        assert torch.equal(model(x), expected)


@pytest.mark.parametrize(
    "layer_type,args,shape,fragment",
    [
        (
            "lstm",
            {"hidden_size": 4, "dropout": 0.5},
            (5, 3),
            "with num_layers 1 it does nothing",
        ),
        ("transpose", {"dims": [0, 1]}, (4, 5), "dimension 0 is the batch"),
        ("mean", {"dim": [1, 2]}, (4, 5), "reduces every dimension of the sample"),
        (
            "upsample",
            {"scale_factor": 2, "mode": "bilinear"},
            (3, 4),
            "for it use 'nearest' or 'linear'",
        ),
        (
            "embedding",
            {"num_embeddings": 5, "embedding_dim": 2, "padding_idx": 5},
            (4,),
            "padding_idx 5 must be an id of the table: from -5 to 4",
        ),
        (
            "positional",
            {"num_embeddings": 3},
            (5, 4),
            "the table has 3 positions, but the sequence",
        ),
    ],
)
def test_deliberate_restrictions_and_messages(layer_type, args, shape, fragment):
    layer, error = static_verdict(layer_type, args, shape)
    assert layer is None and fragment in str(error)
    assert error.problems[0].path.startswith("layers[0]")


def test_only_embedding_takes_ids_and_it_takes_only_ids():
    with pytest.raises(SpecError) as caught:
        load_spec(
            {
                "name": "M",
                "input": {"shape": [5], "dtype": "int64"},
                "layers": [{"linear": 3}],
            }
        )
    assert "linear takes float values, but the input holds int64 ids" in str(
        caught.value
    )
    assert "start with `embedding`" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        load_spec(
            {
                "name": "M",
                "input": [5],
                "layers": [{"embedding": {"num_embeddings": 9, "embedding_dim": 2}}],
            }
        )
    assert "write `input: {shape: [5], dtype: int64}`" in str(caught.value)
    with pytest.raises(SpecError) as caught:
        load_spec(
            {
                "name": "M",
                "input": [5],
                "layers": [
                    "relu",
                    {"embedding": {"num_embeddings": 9, "embedding_dim": 2}},
                ],
            }
        )
    assert "layers[1]: embedding takes int64 ids, but float values reach it" in str(
        caught.value
    )


EMBED = {"embedding": {"num_embeddings": 10, "embedding_dim": 4}}


@pytest.mark.parametrize(
    "layers,error",
    [
        # every path of branches and both sides of a residual receive the ids
        (
            [{"branches": {"paths": [[EMBED, "flatten"], [{"linear": 20}]]}}],
            "layers[0].branches.paths[1][0]: linear takes float values, but the input holds int64 ids",
        ),
        (
            [
                {"branches": {"merge": "add", "paths": [[EMBED], [EMBED]]}},
                "flatten",
                {"linear": 2},
            ],
            None,
        ),
        (
            [
                {"residual": {"layers": [EMBED], "shortcut": [EMBED]}},
                "flatten",
                {"linear": 2},
            ],
            None,
        ),
    ],
)
def test_ids_reach_every_path_of_the_wiring(layers, error):
    data = {"name": "M", "input": {"shape": [5], "dtype": "int64"}, "layers": layers}
    if error is not None:
        with pytest.raises(SpecError) as caught:
            load_spec(data)
        assert error in str(caught.value)
        return
    model = build_module(load_spec(data))
    assert model(torch.randint(0, 10, (3, 5))).shape == (3, 2)


@pytest.mark.parametrize(
    "layer,message",
    [
        (
            {"upsample": "2"},
            "layers[0].upsample.scale_factor: must be a number or a list, got '2'",
        ),
        (
            {"upsample": True},
            "layers[0].upsample.scale_factor: must be a number or a list, got True",
        ),
        ({"mean": "1"}, "layers[0].mean.dim: must be an integer or a list, got '1'"),
    ],
)
def test_union_arguments_are_strict_and_named_by_their_written_path(layer, message):
    with pytest.raises(SpecError) as caught:
        load_spec({"name": "M", "input": [2, 3, 4], "layers": [layer]})
    assert str(caught.value).splitlines()[0].endswith(
        message + " (str)"
    ) or message in str(caught.value)
    assert "[" not in caught.value.problems[0].path.split(".", 1)[1]
