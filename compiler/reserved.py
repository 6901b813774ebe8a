"""Names a layer cannot take: attributes that torch.nn.Module and nn.Sequential already have.

Read from `dir(nn.Module())` and `dir(nn.Sequential())` of torch 2.14 and written out here, because
the compiler must not import torch; tests/ checks this list against the installed torch. Names
starting with `_` are refused by rule (torch keeps its internals there).
"""

import builtins

RESERVED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "T_destination",
        "add_module",
        "append",
        "apply",
        "bfloat16",
        "buffers",
        "call_super_init",
        "children",
        "compile",
        "cpu",
        "cuda",
        "double",
        "dump_patches",
        "eval",
        "extend",
        "extra_repr",
        "float",
        "forward",
        "get_buffer",
        "get_extra_state",
        "get_parameter",
        "get_submodule",
        "half",
        "insert",
        "ipu",
        "load_state_dict",
        "modules",
        "mtia",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "pop",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_full_backward_hook",
        "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook",
        "register_load_state_dict_pre_hook",
        "register_module",
        "register_parameter",
        "register_state_dict_post_hook",
        "register_state_dict_pre_hook",
        "requires_grad_",
        "set_extra_state",
        "set_submodule",
        "share_memory",
        "state_dict",
        "to",
        "to_empty",
        "train",
        "training",
        "type",
        "xpu",
        "zero_grad",
    }
)

# Names the generated module binds at top level (its imports, and the torch names a reader expects
# to mean torch's): a class there (the model's or a block's) may not take them.
MODULE_NAMES: frozenset[str] = frozenset(
    {"annotations", "OrderedDict", "torch", "nn", "Module", "Sequential", "Tensor"}
)


def is_reserved_class_name(name: str) -> bool:
    """Return whether `name` would shadow a name the generated module uses (the one rule that
    validation and the code generator both apply to class names)."""
    return name in MODULE_NAMES or hasattr(builtins, name) or name.startswith("__")
