"""Generate the nn.Module source of a spec: values computed here, jinja2 templates, then black.

Every value reaches the templates as text this module has checked: identifiers through
`naming`, argument values through `pyliteral`, free text (the description, the spec's file name)
escaped into a docstring or a comment. The output is byte-for-byte deterministic.
"""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .api import count_params, model_tree
from .blocks import read_blocks
from .classes import ClassWriter, Restart
from .formatting import batched_shape
from .naming import class_name, module_name
from .spec import model_digest
from .version import __version__

if TYPE_CHECKING:
    from .spec import Spec

TEMPLATES = Path(__file__).parent / "templates"
GENERATED_MARKER = "generated, do not edit; run `nnspec codegen` to update"
LINE_LENGTH = 88
_DOC_WIDTH = LINE_LENGTH - 4  # a class docstring is indented once


def generate_source(spec: Spec, source_name: str | None = None) -> str:
    """Return the black-formatted source of the module holding the spec's nn.Module class.

    `source_name` is the spec's file as the header names it (default: `spec.source`, made
    relative to the working directory when it lies inside it).
    """
    return format_source(render_module(spec, source_name))


def render_module(spec: Spec, source_name: str | None = None) -> str:
    """Return the module source as the templates render it, before black."""

    source = display_source(spec.source if source_name is None else source_name)
    header = [
        GENERATED_MARKER,
        f"source: {comment_text(source)}",
        f"model sha256: {model_digest(spec)}",
        f"nnspec: {__version__}",
    ]
    tree = model_tree(spec)
    blocks = read_blocks(spec.blocks, spec.name, lambda path: None, [])
    input_shape = batched_shape(spec.input)
    output = batched_shape(tree.info.output_shape)
    summary = f"Input: {input_shape}; output: {output}; {count_params(spec):,} trainable parameters."
    description = spec.description or f"The {spec.name} network of its nnspec spec."
    docstring = docstring_text(description) + "\n\n    " + summary + "\n    "
    forward_doc = f"Return the output {output} of a batch of inputs {input_shape}."
    per_use: frozenset[str] = frozenset()
    while True:
        writer = ClassWriter(spec.name, blocks, per_use)
        try:
            writer.model_class(tree, docstring, forward_doc)
            break
        except Restart as restart:
            per_use = per_use | {restart.block}
    return _template("module.py.j2").render(
        header=header, classes=writer.classes, ordered_dict=writer.uses_ordered_dict
    )


def generate_package_index(
    modules: Iterable[tuple[str, str]], specs_folder: str = "specs"
) -> str:
    """Return the black-formatted `__init__.py` importing each (module, class) pair, sorted."""
    entries = sorted((module_name(m), class_name(c)) for m, c in modules)
    folder = comment_text(display_source(specs_folder))
    text = _template("package_init.py.j2").render(
        header=[GENERATED_MARKER],
        docstring=docstring_text(
            f"The generated nn.Module class of every spec in {folder}/."
        ),
        modules=[
            {"name": m, "class_name": c, "class_literal": repr(c)} for m, c in entries
        ],
    )
    return format_source(text)


def read_header(text: str) -> dict[str, str]:
    """Return the `key: value` fields of a generated module's header (empty when it has none)."""
    lines = text.splitlines()
    if not lines or lines[0] != f"# {GENERATED_MARKER}":
        return {}
    fields = {}
    for line in lines[1:]:
        if not line.startswith("# ") or ": " not in line:
            break
        key, value = line[2:].split(": ", 1)
        fields[key] = value
    return fields


def is_generated(text: str) -> bool:
    """Return whether `text` starts with the header that nnspec writes."""
    return text.startswith(f"# {GENERATED_MARKER}\n")


def format_source(text: str) -> str:
    """Return `text` formatted by black in the pinned mode (black is imported on first use)."""
    import black  # 0.25 s to import; codegen --check with nothing stale never needs it

    return black.format_str(text, mode=_black_mode())


@functools.lru_cache(maxsize=1)
def _black_mode() -> Any:
    import black  # 0.25 s to import; codegen --check with nothing stale never needs it

    return black.Mode(
        target_versions={black.TargetVersion.PY310}, line_length=LINE_LENGTH
    )


def display_source(source: str) -> str:
    """Return a spec's file name as headers show it: relative to the working directory, with /."""
    if source.startswith("<"):
        return source
    path = Path(source)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            pass
    return path.as_posix()


def comment_text(text: str) -> str:
    """Return `text` fit for a one-line comment: anything unprintable written as an escape."""
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def docstring_text(text: str) -> str:
    """Return prose as the inside of a triple-quoted docstring with the same value, long lines wrapped.

    Backslashes and unprintable characters become escapes; a quote is escaped where it could
    close the docstring (next to another quote, or at either end).
    """
    lines: list[str] = []
    for line in text.strip().split("\n"):
        line = line.rstrip()
        quotes = "" if lines else '"""'  # the opening quotes share the first line
        if len(quotes + line) > _DOC_WIDTH and not line[:1].isspace():
            wrapped = textwrap.wrap(
                line,
                _DOC_WIDTH,
                initial_indent=quotes,
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines.extend([wrapped[0][len(quotes) :], *wrapped[1:]])
        else:
            lines.append(line)
    text = "\n".join(lines)
    out = []
    for i, ch in enumerate(text):
        before, after = text[i - 1 : i], text[i + 1 : i + 2]
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' and (not before or not after or '"' in (before, after)):
            out.append('\\"')
        elif ch == "\n":
            out.append("\n    " if i + 1 < len(text) and text[i + 1] != "\n" else "\n")
        elif not ch.isprintable():
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def _escape(ch: str) -> str:
    if ch == "\t":
        return "\\t"
    code = ord(ch)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    )


@functools.lru_cache(maxsize=None)
def _template(name: str) -> Any:
    return _environment().get_template(name)


@functools.lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2  # 0.15 s to import; codegen --check with nothing stale never needs it

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


__all__ = [
    "GENERATED_MARKER",
    "generate_package_index",
    "generate_source",
    "is_generated",
    "read_header",
    "render_module",
]
