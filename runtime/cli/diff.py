"""`nnspec diff OLD NEW`: what a spec change does to the model, per module and layer, without torch.

OLD and NEW are spec files, `git:REV:PATH` (read with `git show REV:PATH`, so CI can compare a
pull request's base with its head), or `/dev/null` for a spec that does not exist on that side.
With `--git-diff-driver`, the arguments are those git passes to a `diff.<driver>.command`
(docs/diff.md); the diff then never stops `git diff`: an invalid spec is reported and exit is 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from compiler import SpecError, load_spec
from compiler.diff_report import diff_markdown, diff_text
from compiler.load import parse_document, read_spec_bytes, validate_document
from compiler.model_diff import spec_diff
from runtime.errors import UserError

ABSENT = "/dev/null"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.usage = (
        "nnspec diff [-h] [--markdown | --json] OLD NEW\n"
        "       nnspec diff --git-diff-driver [--markdown | --json] PATH OLD-FILE OLD-HEX OLD-MODE "
        "NEW-FILE NEW-HEX NEW-MODE"
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="OLD NEW",
        help="two spec files, git:REV:PATH or /dev/null (a spec that does not exist)",
    )
    form = parser.add_mutually_exclusive_group()
    form.add_argument(
        "--markdown", action="store_true", help="print Markdown, for a pull request"
    )
    form.add_argument("--json", action="store_true", help="print JSON, for tools")
    parser.add_argument(
        "--git-diff-driver",
        action="store_true",
        help="take git's arguments of a diff driver (PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE "
        "NEW-HEX NEW-MODE); see docs/diff.md",
    )


def run(args: argparse.Namespace) -> int:
    if args.git_diff_driver:
        return _run_driver(args)
    if len(args.inputs) != 2:
        raise UserError(
            f"give two specs, OLD and NEW; got {len(args.inputs)} arguments"
        )
    old_name, new_name = args.inputs
    specs, failed = [], []
    for name in (old_name, new_name):
        try:
            specs.append(load_side(name))
        except SpecError as exc:
            failed.append(str(exc))
        except UserError as exc:
            failed.append(f"nnspec diff: error: {exc}")
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 2
    print(render(specs[0], specs[1], old_name, new_name, args))
    return 0


def render(old, new, old_name: str, new_name: str, args: argparse.Namespace) -> str:
    """Return the diff of two loaded specs (None: absent) in the form the options ask for."""

    if old is None and new is None:
        raise UserError("both sides are /dev/null: there is nothing to compare")
    data = spec_diff(old, new, old_name, new_name)
    if args.json:
        return json.dumps(data, indent=2)
    return diff_markdown(data) if args.markdown else diff_text(data)


def load_side(name: str):
    """Return the Spec named by a diff argument (None for /dev/null); raise SpecError or UserError."""

    if name == ABSENT:
        return None
    if name.startswith("git:"):
        rev, sep, path = name[4:].partition(":")
        if not sep or not rev or not path:
            raise UserError(
                f"{name}: write git:REV:PATH, e.g. git:origin/main:specs/model.yaml"
            )
        return validate_document(parse_document(git_show(rev, path), path), name)
    return load_spec(name)


def git_show(rev: str, path: str) -> bytes:
    """Return the bytes of PATH at REV (`git show REV:PATH`, PATH from the repository's root, or
    from the working directory when it starts with ./ or ../); raise UserError with git's reason.
    """
    try:
        result = subprocess.run(
            ["git", "show", f"{rev}:{path}"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        raise UserError(
            "git:REV:PATH needs git, which is not installed or not on PATH"
        ) from None
    except subprocess.TimeoutExpired:
        raise UserError(f"git show {rev}:{path} did not answer within 60 s") from None
    if result.returncode != 0:
        reason = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise UserError(
            f"git:{rev}:{path}: {reason[0] if reason else 'git show failed'}"
        )
    return result.stdout


def _run_driver(args: argparse.Namespace) -> int:
    """Run as git's diff driver: 7 arguments (9 for a rename); always exit 0 so git goes on."""

    if len(args.inputs) not in (7, 9):
        raise UserError(
            "--git-diff-driver takes the 7 arguments git passes to a diff driver (9 for a "
            f"rename); got {len(args.inputs)}. See docs/diff.md"
        )
    path, old_file, new_file = args.inputs[0], args.inputs[1], args.inputs[4]
    new_path = args.inputs[7] if len(args.inputs) == 9 else path
    names = (f"a/{path}", f"b/{new_path}")
    print(f"nnspec diff {names[0]} {names[1]}")
    specs, failed = [], []
    for file, name, shown in (
        (old_file, path, names[0]),
        (new_file, new_path, names[1]),
    ):
        if file == ABSENT:
            specs.append(None)
            continue
        try:
            specs.append(
                validate_document(parse_document(read_spec_bytes(file), shown), shown)
            )
        except SpecError as exc:
            failed.append(str(exc))
        except OSError as exc:
            failed.append(f"{shown}: cannot read {file}: {exc.strerror or exc}")
    if failed:
        print("\n".join(failed))
        print(
            "(not compared: a side is not a valid spec; `git diff --no-ext-diff` shows the text)"
        )
        return 0
    if specs[0] is None and specs[1] is None:
        return 0
    print(render(specs[0], specs[1], *names, args))
    return 0
