"""Nothing in a spec becomes code: hostile specs are refused, free text is rendered inertly,
and every generated module is made only of torch imports, the class, and nn constructor calls.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler import SpecError, build_sequential, load_spec, model_tree
from compiler.codegen import generate_package_index, generate_source, read_header
from compiler.layers import REGISTRY
from compiler.naming import CodegenError, attribute_name, class_name, module_name
from compiler.pyliteral import keyword_arguments, python_literal
from compiler.reserved import RESERVED_ATTRIBUTES
from compiler.tree import children
from runtime.training.generated_form import compile_generated_class

ROOT = Path(__file__).resolve().parent.parent
TORCH_CLASSES = {cls.torch_class for cls in REGISTRY.values()}
WORDS = {
    "same",
    "valid",
    "zeros",
    "reflect",
    "replicate",
    "circular",
    "none",
    "tanh",
}  # every string arg


# --- the allowlist of what a generated module may contain --------------------------------------


def is_name(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def is_attribute(node: ast.AST, owner: str, attr: str | None = None) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and is_name(node.value, owner)
        and attr in (None, node.attr)
    )


def is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and type(node.value.value) is str
    )


def is_literal(node: ast.AST) -> bool:
    """Return whether a keyword argument's value is a number, bool, None, allowed word or tuple of numbers."""
    if isinstance(node, ast.Constant):
        value = node.value
        return (
            value is None
            or type(value) in (int, float, bool)
            or (type(value) is str and value in WORDS)
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant) and type(node.operand.value) in (
            int,
            float,
        )
    if isinstance(node, ast.Tuple):
        return all(
            isinstance(e, ast.Constant) and type(e.value) is int for e in node.elts
        )
    return False


def plain_arguments(fn: ast.FunctionDef, names: list[str]) -> bool:
    a = fn.args
    return (
        not a.posonlyargs
        and not a.kwonlyargs
        and a.vararg is None
        and a.kwarg is None
        and not a.defaults
        and not a.kw_defaults
        and [arg.arg for arg in a.args] == names
    )


def assert_inert_module(source: str, class_name: str) -> list[str]:
    """Assert the module holds only its imports and plain nn.Module classes; return the last
    class's (the model's) child names.

    Every statement is one of a few fixed shapes: `self.name = <constructor>`, the loop that
    builds a repeat whose `times` is a block parameter, and in `forward` assignments of child
    calls, `x if self.p is None else self.p(x)`, sums, products and `torch.cat`. Constructors are
    `nn.<torch class>`, `nn.Sequential`, `OrderedDict` or a class of this very module, with
    literals, argument names and integer arithmetic over them as arguments.
    """
    tree = ast.parse(source)
    classes = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            assert [(a.name, a.asname) for a in node.names] == [
                ("torch", None)
            ], ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            names = [(a.name, a.asname) for a in node.names]
            allowed = [
                ("torch", 0, [("nn", None)]),
                ("__future__", 0, [("annotations", None)]),
                ("collections", 0, [("OrderedDict", None)]),
            ]
            assert (node.module, node.level, names) in allowed, ast.dump(node)
        elif isinstance(node, ast.ClassDef):
            classes.append(node)
        else:
            assert is_docstring(node), ast.dump(node)
    assert classes and classes[-1].name == class_name
    defined: set[str] = set()
    children = []
    for cls in classes:
        children = _assert_inert_class(cls, defined)
        defined.add(cls.name)
    return children


def _assert_inert_class(cls: ast.ClassDef, defined: set[str]) -> list[str]:
    assert not cls.decorator_list and not cls.keywords
    assert len(cls.bases) == 1 and is_attribute(cls.bases[0], "nn", "Module")
    body = cls.body[1:] if is_docstring(cls.body[0]) else cls.body
    assert [type(n) for n in body] == [ast.FunctionDef, ast.FunctionDef]
    init, forward = body
    assert init.name == "__init__" and forward.name == "forward"
    assert not init.decorator_list and not forward.decorator_list
    a = init.args
    assert (
        not a.vararg and not a.kwarg and not a.posonlyargs and a.args[0].arg == "self"
    )
    arguments = {arg.arg for arg in [*a.args[1:], *a.kwonlyargs]}
    for default in [*a.defaults, *(d for d in a.kw_defaults if d is not None)]:
        assert is_literal(default), ast.dump(default)
    assert plain_arguments(forward, ["self", "x"])
    assert isinstance(init.returns, ast.Constant) and init.returns.value is None
    assert is_attribute(forward.returns, "torch", "Tensor")

    statements = init.body[1:] if is_docstring(init.body[0]) else init.body
    first = statements[0]
    assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
    call = first.value
    assert not call.args and not call.keywords and isinstance(call.func, ast.Attribute)
    assert call.func.attr == "__init__" and is_name(call.func.value.func, "super")
    names = set(arguments)
    children = []
    for node in statements[1:]:
        if isinstance(node, ast.For):
            assert (
                isinstance(node.target, ast.Name)
                and node.target.id == "_"
                and not node.orelse
            )
            assert isinstance(node.iter, ast.Call) and is_name(node.iter.func, "range")
            _assert_value(node.iter.args[0], names, defined)
            for inner in node.body:
                if isinstance(inner, ast.Expr):  # copies.append(Block(...))
                    call = inner.value
                    assert (
                        isinstance(call, ast.Call) and call.func.attr == "append"
                    ), ast.dump(inner)
                    assert (
                        isinstance(call.func.value, ast.Name)
                        and call.func.value.id in names
                    )
                    _assert_value(call.args[0], names, defined)
                else:
                    assert isinstance(inner, ast.Assign) and isinstance(
                        inner.targets[0], ast.Name
                    )
                    assert inner.targets[0].id in names
                    _assert_value(inner.value, names, defined)
            continue
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target, value = node.targets[0], node.value
        if isinstance(target, ast.Name):  # a local: the loop's list or running size
            names.add(target.id)
            if isinstance(value, ast.List):
                assert not value.elts
            else:
                _assert_value(value, names, defined)
            continue
        assert is_attribute(target, "self"), ast.dump(node)
        _assert_value(value, names, defined)
        children.append(target.attr)

    statements = forward.body[1:] if is_docstring(forward.body[0]) else forward.body
    *steps, last = statements
    assert isinstance(last, ast.Return) and is_name(last.value, "x")
    variables = {"x"}
    for node in steps:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        _assert_wiring(node.value, variables, set(children))
        variables |= _target_names(node.targets[0])
    return children


def _target_names(target: ast.AST) -> set[str]:
    """Return the names an assignment binds: `x`, or the unpacked `x, _` / `_, (h, _)` of a
    recurrent or attention layer's tuple."""
    if isinstance(target, ast.Name):
        return {target.id}
    assert isinstance(target, ast.Tuple), ast.dump(target)
    return set().union(*(_target_names(item) for item in target.elts))


TENSOR_METHODS = {"transpose", "permute", "mean", "amax", "select"}


def _assert_index(node: ast.AST, variables: set[str]) -> None:
    """Assert an index: an integer, `:`, `: x.shape[1]`, or a tuple of them."""
    if isinstance(node, ast.Tuple):
        for item in node.elts:
            _assert_index(item, variables)
    elif isinstance(node, ast.Slice):
        assert node.lower is None and node.step is None
        if node.upper is not None:
            _assert_shape_of(node.upper, variables)
    else:
        assert is_literal(node) and isinstance(ast.literal_eval(node), int), ast.dump(
            node
        )


def _assert_shape_of(node: ast.AST, variables: set[str]) -> None:
    """Assert `x.shape[i]` of a forward variable."""
    assert isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
    assert node.value.attr == "shape" and isinstance(node.value.value, ast.Name)
    assert node.value.value.id in variables and is_literal(node.slice)


def _is_child_weight(node: ast.AST, children: set[str]) -> bool:
    """Return whether the node is `self.<child>.weight` (a positional table or class token)."""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "weight"
        and is_attribute(node.value, "self")
        and node.value.attr in children
    )


def _assert_value(node: ast.AST, names: set[str], defined: set[str]) -> None:
    """Assert a constructor-side expression: literals, names, integer arithmetic, constructors."""
    if is_literal(node) or (isinstance(node, ast.Name) and node.id in names | {"None"}):
        return
    if isinstance(node, ast.Constant) and node.value is None:
        return
    if isinstance(node, ast.BinOp):
        assert isinstance(
            node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
        ), ast.dump(node)
        _assert_value(node.left, names, defined)
        _assert_value(node.right, names, defined)
        return
    if isinstance(node, (ast.Tuple, ast.List)):
        for item in node.elts:
            _assert_value(item, names, defined)
        return
    if isinstance(node, ast.Starred):
        assert isinstance(node.value, ast.Name) and node.value.id in names
        return
    assert isinstance(node, ast.Call), ast.dump(node)
    func = node.func
    if isinstance(func, ast.Attribute):
        assert is_name(func.value, "nn") and func.attr in TORCH_CLASSES | {
            "Sequential"
        }, ast.dump(func)
    else:
        assert isinstance(func, ast.Name) and func.id in defined | {
            "OrderedDict"
        }, ast.dump(func)
    for arg in node.args:
        if isinstance(arg, ast.List) and is_name(func, "OrderedDict"):
            for pair in arg.elts:
                assert isinstance(pair, ast.Tuple) and isinstance(
                    pair.elts[0], ast.Constant
                )
                assert (
                    isinstance(pair.elts[0].value, str)
                    and pair.elts[0].value.isidentifier()
                )
                _assert_value(pair.elts[1], names, defined)
        else:
            _assert_value(arg, names, defined)
    for kw in node.keywords:
        assert kw.arg is not None and kw.arg.isidentifier(), ast.dump(kw)
        _assert_value(kw.value, names, defined)


def _assert_wiring(node: ast.AST, variables: set[str], children: set[str]) -> None:
    """Assert a forward-side expression: child calls, `x if self.p is None else ...`, merges."""
    if isinstance(node, ast.Name):
        assert node.id in variables, node.id
        return
    if isinstance(node, ast.Call) and is_attribute(node.func, "self"):
        assert node.func.attr in children
        if len(node.args) == 3:  # self-attention: attn(x, x, x, need_weights=False)
            assert [kw.arg for kw in node.keywords] == ["need_weights"]
            assert ast.literal_eval(node.keywords[0].value) is False
        else:
            assert len(node.args) == 1 and not node.keywords
        for arg in node.args:
            assert isinstance(arg, ast.Name) and arg.id in variables
        return
    if isinstance(
        node, ast.Subscript
    ):  # h[-1], x[:, 0], self.pos1.weight[: x.shape[1]]
        assert (
            isinstance(node.value, ast.Name) and node.value.id in variables
        ) or _is_child_weight(node.value, children), ast.dump(node)
        _assert_index(node.slice, variables)
        return
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and _is_child_weight(node.func.value, children)
    ):  # self.cls1.weight.expand(x.shape[0], -1, -1)
        assert node.func.attr == "expand" and not node.keywords and len(node.args) == 3
        _assert_shape_of(node.args[0], variables)
        assert [ast.literal_eval(a) for a in node.args[1:]] == [-1, -1]
        return
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id != "torch"
    ):  # x.transpose(1, 2)
        assert (
            node.func.value.id in variables and node.func.attr in TENSOR_METHODS
        ), ast.dump(node)
        for value in [*node.args, *(kw.value for kw in node.keywords)]:
            assert is_literal(value), ast.dump(value)
        assert {kw.arg for kw in node.keywords} <= {"dim", "keepdim"}
        return
    if isinstance(node, ast.IfExp):
        test = node.test
        assert isinstance(test, ast.Compare) and is_attribute(test.left, "self")
        assert isinstance(test.ops[0], ast.Is) and test.comparators[0].value is None
        _assert_wiring(node.body, variables, children)
        _assert_wiring(node.orelse, variables, children)
        return
    if isinstance(node, ast.BinOp):
        assert isinstance(node.op, (ast.Add, ast.Mult)), ast.dump(node)
        _assert_wiring(node.left, variables, children)
        _assert_wiring(node.right, variables, children)
        return
    assert isinstance(node, ast.Call) and is_attribute(
        node.func, "torch", "cat"
    ), ast.dump(node)
    (items,) = node.args
    assert isinstance(items, ast.List)
    for item in items.elts:
        _assert_wiring(item, variables, children)
    assert [kw.arg for kw in node.keywords] == ["dim"] and is_literal(
        node.keywords[0].value
    )


def test_every_generated_module_is_inert(example_spec):
    spec = load_spec(example_spec)
    committed = (ROOT / "generated" / f"{example_spec.stem}.py").read_text(
        encoding="utf-8"
    )
    assert assert_inert_module(committed, spec.name) == [
        child.name
        for child in children(model_tree(spec).body)
        if not getattr(
            getattr(child, "layer", None), "tensor_op", False
        )  # a line of forward
    ]


def test_the_package_index_only_imports_and_lists(example_specs):
    tree = ast.parse((ROOT / "generated" / "__init__.py").read_text(encoding="utf-8"))
    exported = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert (
                node.level == 1 and node.module.isidentifier() and len(node.names) == 1
            )
            exported.append(node.names[0].name)
        elif isinstance(node, ast.Assign):
            assert [t.id for t in node.targets] == ["__all__"] and isinstance(
                node.value, ast.List
            )
            assert [e.value for e in node.value.elts] == exported
        else:
            assert is_docstring(node)
    assert sorted(exported) == sorted(load_spec(p).name for p in example_specs)


# --- hostile specs are refused when they are validated -----------------------------------------

HOSTILE_NAMES = [
    "Net; import os",
    "Net\nimport os",
    "Net()",
    "__import__('os')",
    "Net'",
    'Net"',
    "Net#",
    "os.system",
    "Ｎet",
    "Nеt",
    "Net\u200b",
    "ﬁlter",
    "a" * 65,
    "A" * 100_000,
    "",
    " Net",
    "1Net",
    "class",
    "None",
    "lambda",
    "match",
    42,
    None,
    ["Net"],
]


def base_spec(**changes):
    spec = {
        "name": "Net",
        "input": [3, 8, 8],
        "layers": [{"conv2d": {"out_channels": 4, "kernel_size": 3}}],
    }
    spec.update(changes)
    return spec


@pytest.mark.parametrize(
    "name",
    HOSTILE_NAMES + ["print", "torch", "nn", "annotations", "super", "exec"],
    ids=lambda n: repr(n)[:24],
)
def test_hostile_class_names_are_refused(name):
    with pytest.raises(SpecError) as info:
        load_spec(base_spec(name=name))
    assert any(p.path == "name" for p in info.value.problems), str(info.value)


@pytest.mark.parametrize(
    "name",
    [n for n in HOSTILE_NAMES if n is not None]  # None: the automatic name
    + ["forward", "training", "_hidden", "__class__", "state_dict"],
    ids=lambda n: repr(n)[:24],
)
def test_hostile_layer_names_are_refused(name):
    with pytest.raises(SpecError) as info:
        load_spec(base_spec(layers=[{"type": "relu", "name": name}]))
    assert any(p.path.startswith("layers[0]") for p in info.value.problems), str(
        info.value
    )


@pytest.mark.parametrize(
    "layer",
    [
        {
            "conv2d": {
                "out_channels": 4,
                "kernel_size": 3,
                "padding": "same'); import os; ('",
            }
        },
        {
            "conv2d": {
                "out_channels": 4,
                "kernel_size": 3,
                "padding_mode": "zeros\" + __import__('os').system('id') + \"",
            }
        },
        {"conv2d": {"out_channels": 4, "kernel_size": "3); import os; (3"}},
        {"conv2d": {"out_channels": "__import__('os')", "kernel_size": 3}},
        {
            "conv2d": {
                "out_channels": 4,
                "kernel_size": 3,
                "bias": "True or __import__('os')",
            }
        },
        {"conv2d": {"out_channels": 4, "kernel_size": 3, "dilation": [1, "exec('x')"]}},
        {"gelu": {"approximate": "tanh\nimport os"}},
        {"gelu": {"approximate": "TANH"}},
        {"dropout": "0.5 if __import__('os') else 0.5"},
        {"leakyrelu": {"negative_slope": float("nan")}},
        {"leakyrelu": {"negative_slope": math.inf}},
        {"type": "linear", "out_features": 3, "__init__": "import os"},
        {"type": "relu(); import os"},
    ],
)
def test_hostile_arguments_are_refused(layer):
    spec = (
        base_spec(input=[4, 8, 8], layers=[layer])
        if "conv2d" in layer
        else base_spec(input=[4], layers=[layer])
    )
    with pytest.raises(SpecError):
        load_spec(spec)


@pytest.mark.parametrize(
    "text",
    ["nul\x00", "carriage\rreturn", "escape\x1b[2J", "line\u2028separator", "del\x7f"],
)
def test_control_characters_in_descriptions_are_refused(text):
    with pytest.raises(SpecError) as info:
        load_spec(base_spec(description=text))
    assert any(p.path == "description" for p in info.value.problems)


# --- free text is rendered inertly -------------------------------------------------------------

DESCRIPTIONS = [
    '"""\nimport os\nos.system("echo owned")\n"""',
    'ends with a quote"',
    '"starts with a quote',
    "a backslash at the end \\",
    "escapes stay text: \\n \\x00 \\N{BULLET} \\u202e \\\\",
    "jinja stays text: {{ 7 * 7 }} {% raw %} {# c #}",
    "tabs\tand unicode: caf\u00e9 \u00d7 \u2713 \U0001f600",
    "bidi override \u202e and zero width \u200b",
    "''' single quotes ''' and \"\"\"\" four doubles",
]


@pytest.mark.parametrize("text", DESCRIPTIONS, ids=range(len(DESCRIPTIONS)))
def test_descriptions_become_docstrings_and_nothing_else(text):
    spec = load_spec(base_spec(description=text))
    source = generate_source(spec)
    source.encode("utf-8")  # every unprintable character is written as an escape
    assert all(ch.isprintable() or ch == "\n" for ch in source)
    assert_inert_module(source, "Net")
    cls = compile_generated_class(spec)
    assert (
        inspect.getdoc(cls).split("\n\nInput:")[0] == text.expandtabs(8)
        or inspect.getdoc(cls).split("\n\nInput:")[0] == text
    )
    assert "os" not in vars(inspect.getmodule(cls))


@pytest.mark.parametrize(
    "source_name",
    [
        "specs/evil\nimport os\n#.yaml",
        "specs/evil\u2028import os.yaml",
        "specs/evil\rimport os.yaml",
        'specs/"""quotes""".yaml',
        "specs/\u202eevil.yaml",
    ],
)
def test_hostile_file_names_stay_in_comments(source_name):
    spec = load_spec(base_spec())
    source = generate_source(spec, source_name)
    assert_inert_module(source, "Net")
    assert len(read_header(source)) == 3
    assert all(ch.isprintable() or ch == "\n" for ch in source)


def test_names_that_look_like_the_generated_code_still_work():
    import torch

    layers = [
        {"type": "linear", "out_features": 5, "name": "self"},
        {"type": "relu", "name": "x"},
        {"type": "linear", "out_features": 4, "name": "nn"},
        {"type": "tanh", "name": "torch"},
        {"type": "identity", "name": "super"},
        {"type": "linear", "out_features": 2, "name": "print"},
        {"type": "sigmoid", "name": "L" * 64},
    ]
    spec = load_spec({"name": "x", "input": [3], "layers": layers})
    assert assert_inert_module(generate_source(spec), "x") == [
        layer["name"] for layer in layers
    ]
    torch.manual_seed(0)
    sequential = build_sequential(spec).eval()
    torch.manual_seed(0)
    generated = compile_generated_class(spec)().eval()
    batch = torch.randn(2, 3)
    assert torch.equal(sequential(batch), generated(batch))


# --- the generator's own checks (defence in depth) ---------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "same",
        "zeros; import os",
        [1, 2],
        {"a": 1},
        float("nan"),
        float("inf"),
        object(),
        b"bytes",
        (1, "same"),
        (1,) * 9,
        type("MyInt", (int,), {})(3),
        1j,
    ],
)
def test_python_literal_refuses_unchecked_values(value):
    with pytest.raises(CodegenError):
        python_literal(value)


def test_python_literal_writes_checked_values():
    assert (
        python_literal(3) == "3"
        and python_literal(-1) == "-1"
        and python_literal(1e-05) == "1e-05"
    )
    assert python_literal(True) == "True" and python_literal(None) == "None"
    assert python_literal((2,)) == "(2,)" and python_literal((2, 3)) == "(2, 3)"
    assert python_literal("same", frozenset({"same"})) == "'same'"
    with pytest.raises(CodegenError):
        python_literal(
            "same'", frozenset({"same'"})
        )  # even a listed word must be a plain word
    with pytest.raises(CodegenError):
        keyword_arguments(
            REGISTRY["conv2d"], {"padding_mode": "zeros'); import os; ('"}
        )
    with pytest.raises(CodegenError):
        keyword_arguments(REGISTRY["linear"], {"bias=True); import os; f(x": True})
    assert (
        keyword_arguments(REGISTRY["conv2d"], {"padding": "same"}) == "padding='same'"
    )


@pytest.mark.parametrize(
    "check, value",
    [
        (class_name, "print"),
        (class_name, "torch"),
        (class_name, "Net;"),
        (class_name, "if"),
        (class_name, "Ｎet"),
        (attribute_name, "forward"),
        (attribute_name, "_x"),
        (attribute_name, "a b"),
        (attribute_name, "x" * 65),
        (module_name, "__init__"),
        (module_name, "my-net"),
        (module_name, "class"),
    ],
)
def test_naming_refuses(check, value):
    with pytest.raises(CodegenError):
        check(value)


def test_generator_refuses_a_name_that_slipped_past_validation():
    spec = load_spec(base_spec())
    object.__setattr__(spec.layers[0], "name", "conv1 = None; import os; x")
    spec._resolved = ()
    with pytest.raises(CodegenError):
        generate_source(spec)
    with pytest.raises(CodegenError):
        generate_package_index([("digits", "Net); import os; (")])


# --- random valid specs -------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(
    lambda n: not keyword.iskeyword(n)
    and not keyword.issoftkeyword(n)
    and n not in RESERVED_ATTRIBUTES
)
descriptions = st.text(
    st.characters(
        blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029"
    )
    | st.sampled_from(['"', "\\", "\n", "\t"]),
    max_size=120,
)


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    names=st.lists(identifiers, min_size=1, max_size=4, unique=True),
    description=descriptions,
)
def test_random_specs_generate_inert_modules(names, description):
    layers = [{"type": "linear", "out_features": 3, "name": name} for name in names]
    spec = load_spec(
        {"name": "Random", "description": description, "input": [3], "layers": layers}
    )
    source = generate_source(spec)
    assert assert_inert_module(source, "Random") == names
    compile(source, "<random>", "exec")
