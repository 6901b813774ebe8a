"""`nnspec`: the command line. Each subcommand lives in `runtime/cli/<name>.py`.

A command module defines `add_arguments(parser)` and `run(args) -> int`; its one-line help is in
`COMMANDS` here. Only the module of the command being run is imported (the others are not even
loaded to build `--help`), so a command module imports what it needs at its top, and `validate`,
`summary`, `schema`, `lint` and `codegen` never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from compiler.errors import SpecError
from compiler.version import __version__
from runtime.errors import UserError, printable_message

COMMANDS = {
    "validate": "check specs: print ok, or every problem as FILE:LINE: PATH: MESSAGE (exit 2)",
    "summary": "show the model layer by layer (shapes, parameters, MACs, memory) without "
    "running torch",
    "diff": "compare two specs: layers and modules added, removed or changed, totals, and "
    "whether a checkpoint of OLD loads into NEW (exit 0; 2 on an invalid input)",
    "schema": "print the JSON Schema of the spec language (editor completion and checks)",
    "codegen": "write the generated nn.Module class of each spec into generated/ (--check: "
    "fail when stale)",
    "lint": "warn about dropout, output layers, early stopping and model size (codes NS1xx, "
    "see docs/lint.md); exit 1 on warnings, 2 on an invalid spec",
    "train": "train a spec's model (early stopping, best.pt/last.pt, metrics.csv, curves.png)",
    "evaluate": "rebuild a model from a checkpoint and report loss, accuracy and a confusion "
    "matrix",
    "predict": "apply a checkpoint's model to a csv or npz file, an image or a folder of "
    "images: one CSV row per sample (prediction, class probabilities)",
    "export": "write a checkpoint's model as ONNX, a torch.export .pt2, or safetensors weights "
    "with the spec (beside the checkpoint unless --out); exit 1 when the exported model's "
    "outputs differ from torch's",
    "sweep": "train every combination of --vary values (with the spec's early stopping); "
    "write results.csv, complexity.png and best.yaml (lowest validation error)",
}


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose errors say how to name a file that begins with "-" (argparse
    reads `-net.yaml` as an unknown option, then finds no SPEC)."""

    argv: list[str] = []

    def error(self, message: str):
        named = [w for w in self.argv if _dash_file(w)]
        if named:
            word = named[0]
            message += (
                f"; {word!r} is a file, read as an option because it begins with '-': "
                f"write ./{word}, or put it last, after -- "
                f"(nnspec {_command_in(self.argv) or 'COMMAND'} ... -- {word})"
            )
        super().error(message)


def _dash_file(word: str) -> bool:
    """Return whether `word` reads as an option but names an existing file."""
    # os.path.isfile says False, never raises, for a name it cannot stat
    return word.startswith("-") and word not in ("-", "--") and os.path.isfile(word)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Return the argument parser: every subcommand, with the arguments of the one that `argv`
    names (of all of them when `argv` is None)."""
    chosen = _command_in(argv)
    # the words its errors look at (the subparsers are _Parsers too)
    _Parser.argv = list(argv or ())
    parser = _Parser(
        prog="nnspec",
        description="Declarative neural networks: validate specs, generate PyTorch, train.",
    )
    parser.add_argument("--version", action="version", version=f"nnspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, text in COMMANDS.items():
        command = sub.add_parser(name, help=text, description=text)
        if argv is None or name == chosen:
            # the one lazy import of the CLI: only the command being run is loaded
            module = importlib.import_module(f"runtime.cli.{name}")
            module.add_arguments(command)
            command.set_defaults(run=module.run)
    return parser


def _command_in(argv: list[str] | None) -> str | None:
    """Return the subcommand `argv` names (the first word not an option), or None."""
    for word in argv or ():
        if not word.startswith("-"):
            return word
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code (0 ok, 1 findings, 2 user error, 130 Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        # inside the try: building the parser imports the command's module (torch for train),
        # and a Ctrl-C in that second is an interruption like any other
        args = build_parser(argv).parse_args(argv)
        return int(args.run(args) or 0)
    except SpecError as exc:
        print(printable_message(str(exc)), file=sys.stderr)
        return 2
    except UserError as exc:
        print(
            printable_message(f"nnspec {_command_in(argv)}: error: {exc}"),
            file=sys.stderr,
        )
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nnspec schema | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
