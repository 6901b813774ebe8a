"""`nnspec train SPEC`: train the spec's model, with early stopping, checkpoints and curves."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from compiler import load_spec
from runtime.errors import UserError
from runtime.parallel import distributed
from runtime.parallel.denormals import with_denormals_flushed
from runtime.parallel.distributed import (
    end_as_stopped_by_torchrun,
    end_with_the_parent,
    env_group,
    lost_another_process,
)
from runtime.storage.checkpoint import read_checkpoint
from runtime.storage.run_folder import RUN_FILES
from runtime.sweep.overrides import load_spec_with_overrides
from runtime.training.interrupt import (
    exit_code,
    latest_flag,
    second_interrupt_ends_here,
    signal_word,
)
from runtime.training.report import command_line, format_report, option_words
from runtime.training.tensorboard import summary_writer_class
from runtime.training.train import check_before_launch, train_spec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="spec file (.yaml, .yml, .json)")
    parser.add_argument(
        "--out", metavar="DIR", help="output folder (default: runs/SPEC_STEM)"
    )
    parser.add_argument(
        "--form",
        choices=("sequential", "generated"),
        default="sequential",
        help="train the nn.Sequential (default) or the class in generated/",
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change the spec, e.g. training.optimizer.lr=0.01, "
        "layers.fc1.out_features=128, layers.3.p=0.2 (repeatable)",
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="shortcut for --set training.epochs=N"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last.pt",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a previous run in --out instead of refusing",
    )
    parser.add_argument(
        "--device",
        metavar="D",
        help="auto, cpu, mps, cuda or cuda:N (default: the spec's training.device)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files to OUT/tensorboard/ "
        "(needs: pip install 'nnspec[tensorboard]')",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train in N processes on this machine with torch.distributed (DDP), "
        "launched through torch.distributed.run (default: 1)",
    )


# denormals flushed before torch's first parallel work (runtime/parallel/denormals.py)
@with_denormals_flushed
def run(args: argparse.Namespace) -> int:
    if args.nproc is not None and args.nproc < 1:
        raise UserError(f"--nproc must be a positive integer, got {args.nproc}")

    if args.tensorboard:
        summary_writer_class()  # a missing package is one line before anything runs
    group = env_group()
    if group.active:  # one of the launcher's processes: it ends should the launcher die
        end_with_the_parent()
    assignments = list(args.assignments)
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError(f"--epochs must be a positive integer, got {args.epochs}")
        assignments.append(f"training.epochs={args.epochs}")
    spec = (
        load_spec_with_overrides(args.spec, assignments)
        if assignments
        else load_spec(args.spec)
    )
    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    if args.nproc is not None and args.nproc > 1 and not group.active:
        # checked once here, so a mistake is one message and no process is started
        with check_before_launch(
            spec,
            out,
            nproc=args.nproc,
            device=args.device,
            resume=args.resume,
            force=args.force,
            form=args.form,
            spec_path=args.spec,
        ):  # the folder stays held while the processes run
            return launch(args, out)
    # a second Ctrl-C or SIGTERM ends the command at once, with one line
    with second_interrupt_ends_here(lambda: _second_interrupt_hint(args, out)):
        return _train_here(args, spec, out, group)


def _train_here(args: argparse.Namespace, spec, out: Path, group) -> int:
    """Train in this process (alone, or as one of torchrun's); return its exit code."""
    try:
        summary = train_spec(
            spec,
            out_dir=out,
            form=args.form,
            spec_path=args.spec,
            device=args.device,
            resume=args.resume,
            quiet=args.quiet,
            force=args.force,
            tensorboard=args.tensorboard,
        )
    except Exception as exc:
        if group.active and lost_another_process(exc):
            end_as_stopped_by_torchrun()
        raise
    code = _report(summary, args, out, group)
    if group.active:
        # A torchrun worker ends here, its files written and closed, without the interpreter's
        # teardown: gloo's threads can abort it ("terminate called without an active
        # exception"), and torchrun would take that abort for the run's failure.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _second_interrupt_hint(args: argparse.Namespace, out: Path) -> str:
    """Return what the line of a second interrupt adds: the command that goes on from here."""
    flag = latest_flag()
    if flag is not None and flag.saved_epoch:
        return f"; continue with: {resume_command(args, out)}"
    return f"; start again with: {start_command(args, out)}"


def _report(summary: dict, args: argparse.Namespace, out: Path, group) -> int:
    """Print the run's report (rank 0 only); return the exit code of this process."""

    if not group.is_main:
        # rank 0 reports the run and ends with its exit code; another rank ending first with
        # a failure would make torchrun stop rank 0 before it has written and printed
        return 0
    print(format_report(summary, resume_command(args, out)))
    if summary["stop_reason"] == "not_finite":
        best = (
            "; best.pt keeps epoch %d" % summary["best_epoch"]
            if summary["best_epoch"]
            else ""
        )
        print(
            f"nnspec train: error: {summary['stop_message']}{best}; lower the learning rate "
            "or check the data",
            file=sys.stderr,
        )
        return 1
    if summary["stop_reason"] == "interrupted":
        flag = latest_flag()
        word = signal_word(flag.signum if flag is not None else None)
        if "last.pt" in summary["files"]:
            print(
                f"{word}; continue with: {resume_command(args, out)}", file=sys.stderr
            )
        elif summary.get("kept_previous_run"):
            print(
                f"{word} before the first epoch finished, so nothing was saved and the "
                f"previous run in {out} is kept as it was; start again with: "
                f"{start_command(args, out)}",
                file=sys.stderr,
            )
        else:
            print(
                f"{word} before the first epoch finished, so nothing was saved; start "
                f"again with: {start_command(args, out)}",
                file=sys.stderr,
            )
        return flag.exit_code if flag is not None else 130
    return 0


def launch(args: argparse.Namespace, out: Path) -> int:
    """Run this `nnspec train` in `args.nproc` processes (runtime/parallel/distributed.py);
    return the run's exit code. When a process was killed (the launcher has named it), say
    what the run folder keeps and how to go on, which nothing else could print.

    A launcher that ended by itself has waited for every process, and this command holds the
    run folder all along, so a temporary file that appeared in it meanwhile is what a killed
    process left half written (rank 0 killed with -9 during a write): it goes, leaving what
    the last whole write left. Temporaries that were there before stay (a user's, or checked
    by the run); after the launcher was killed nothing is removed, as its processes may
    still be writing (they get SIGTERM and this waits for them, on Linux).
    """
    before = set(_temporaries(out))
    code = distributed.launch(forwarded_argv(args), args.nproc)
    if code >= 0:
        for path in _temporaries(out):
            if path not in before:
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # the outcome and how to go on matter more
                    pass
    if code > 128 and code not in STOPPED_CODES:
        print(f"nnspec train: {after_a_killed_process(args, out)}", file=sys.stderr)
    if code < 0:  # rank 0, stopped by SIGTERM, has said how to go on
        print(
            f"nnspec train: error: the launcher (torch.distributed.run) was killed by "
            f"{_signal_name(-code)}; its processes were stopped with SIGTERM",
            file=sys.stderr,
        )
        return 128 - code
    return code


def _signal_name(signum: int) -> str:
    """Return a signal's name (SIGKILL), or "signal N" for a number without one."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _temporaries(out: Path) -> list[Path]:
    """Return the regular files in `out` named as the atomic writer names the temporaries of
    a run's files (`.last.pt.k1ll3d.tmp`)."""
    found = []
    for name in RUN_FILES:
        try:
            found += [
                path
                for path in out.glob(f".{name}.*.tmp")
                if path.is_file() and not path.is_symlink()
            ]
        except OSError:
            pass
    return found


# what the processes end with after a Ctrl-C or a SIGTERM, having printed how to go on
STOPPED_CODES = (exit_code(signal.SIGINT), exit_code(signal.SIGTERM))


def after_a_killed_process(args: argparse.Namespace, out: Path) -> str:
    """Return what a run whose process was killed left, and the command that goes on."""
    path = out / "last.pt"
    if not path.is_file():
        return (
            f"no epoch finished, so nothing was saved; start again with: "
            f"{start_command(args, out)}"
        )
    try:
        kept = f"{path} keeps epoch {int(read_checkpoint(path)['epoch'])}"
    except (UserError, KeyError, TypeError, ValueError):
        kept = f"{path} keeps the last finished epoch"
    return f"{kept}; continue with: {resume_command(args, out)}"


def forwarded_argv(args: argparse.Namespace) -> list[str]:
    """Return the `nnspec train ...` arguments each launched process gets (all but --nproc);
    a value is joined to its option (`--out=DIR`), so one starting with "-" stays a value, and
    the spec comes last, after `--` (a spec file named `-net.yaml` stays the spec).
    """
    words = ["train"]
    if args.out:
        words.append(f"--out={args.out}")
    if args.form != "sequential":
        words.append(f"--form={args.form}")
    words += [f"--set={text}" for text in args.assignments]
    if args.epochs is not None:
        words.append(f"--epochs={args.epochs}")
    words += [
        flag
        for flag in ("--resume", "--force", "--quiet", "--tensorboard")
        if getattr(args, flag[2:], False)
    ]
    if args.device:
        words.append(f"--device={args.device}")
    return words + ["--", args.spec]


def resume_command(args: argparse.Namespace, out: Path) -> str:
    """Return the command line that continues this run (same spec, --set and --form)."""
    return _rerun_command(args, out, "--resume")


def start_command(args: argparse.Namespace, out: Path) -> str:
    """Return the command line that starts this run again from the first epoch, replacing
    what it left (summary.json)."""
    return _rerun_command(args, out, "--force")


def _rerun_command(args: argparse.Namespace, out: Path, flag: str) -> str:
    """Return `nnspec train` with this run's spec, folder and settings, then `flag`
    (report.command_line: a folder or a spec named with a leading "-" stays a value)."""
    words = option_words("--out", str(out))
    for text in args.assignments:
        words += ["--set", text]
    if args.epochs is not None:
        words += ["--epochs", str(args.epochs)]
    if args.form != "sequential":
        words += ["--form", args.form]
    if getattr(args, "tensorboard", False):
        words += ["--tensorboard"]

    group = env_group()  # under torchrun (or --nproc) the world size the run had
    nproc = group.world if group.active else (args.nproc or 1)
    if nproc > 1:
        words += ["--nproc", str(nproc)]
    return command_line(["nnspec", "train"], args.spec, words + [flag])
