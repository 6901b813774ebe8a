"""`train_spec`: train a spec's model and leave the run in an output folder.

The folder gets `last.pt` (every epoch), `best.pt` (whenever the monitor improves), `metrics.csv`
(every epoch), and at the end `summary.json` and `curves.png`. `resume=True` continues from
`last.pt` exactly where the run left it.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compiler import Spec, build_sequential, count_params, spec_data, spec_digest
from compiler.build import check_fits_in_memory
from compiler.spec import stored_spec_data
from compiler.training import TrainingConfig
from compiler.version import __version__
from runtime.data.load import load_spec_data
from runtime.errors import UserError
from runtime.parallel.device import cpu_threads_for, describe_device, resolve_device
from runtime.parallel.distributed import Group, env_group, process_device, process_group
from runtime.storage.atomic import write_bytes_atomically, write_text_atomically
from runtime.storage.checkpoint import read_checkpoint
from runtime.training.generated_form import load_generated_model
from runtime.training.interrupt import InterruptFlag, catch_sigint
from runtime.training.loop import FitResult, fit
from runtime.training.metrics import write_metrics_csv
from runtime.training.rng import seed_everything
from runtime.training.run_writer import RunWriter
from runtime.training.spec_diff import spec_differences

RUN_FILES = ("last.pt", "best.pt", "metrics.csv", "summary.json", "curves.png")
FORMS = ("sequential", "generated")


@dataclass(frozen=True, kw_only=True)
class TrainRun:
    """One call of train_spec, once the checks that need no data have passed."""

    spec: Spec
    spec_path: str | os.PathLike | None
    form: str  # sequential | generated
    training: TrainingConfig  # the spec's (the defaults when it has none)
    out: Path
    group: Group  # this process among the training processes
    device: torch.device  # this process's device
    start_state: dict[str, Any] | None  # last.pt's payload when resuming
    quiet: bool  # no progress bar or warnings (always so but on rank 0)
    started: float  # time.perf_counter() when train_spec was called


def train_spec(
    spec: Spec,
    *,
    out_dir: str | os.PathLike,
    form: str = "sequential",
    spec_path: str | os.PathLike | None = None,
    device: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Train `spec`'s model into `out_dir`; return the content of the summary.json it writes.

    Under torchrun every process calls this alike; only rank 0 writes files and shows progress
    (docs/training.md, "Training on several processes").

    Raises UserError for an out folder that holds another run (unless `resume` or `force`), that
    cannot be written, a checkpoint from another spec, a missing device or bad data.
    """
    started = time.perf_counter()
    run = _start_run(
        spec,
        out_dir=out_dir,
        form=form,
        spec_path=spec_path,
        device=device,
        resume=resume,
        quiet=quiet,
        force=force,
        started=started,
    )
    data = load_spec_data(spec)
    # seeded right before the model, so both forms start from the same weights
    seed_everything(run.training.seed)
    model = build_model(spec, form, spec_path, run.quiet)
    best_weights = (
        read_best_weights(run.out, run.start_state)
        if run.start_state and run.group.is_main
        else None
    )
    result, summary = _train_and_summarize(run, data, model, best_weights)
    if run.group.is_main:
        write_outputs(run.out, summary, result, run.training.task)
    return summary


def _start_run(
    spec: Spec,
    *,
    out_dir: str | os.PathLike,
    form: str,
    spec_path: str | os.PathLike | None,
    device: str | None,
    resume: bool,
    quiet: bool,
    force: bool,
    started: float,
) -> TrainRun:
    """Return the run once the checks that need no data pass; raise UserError when one fails.

    Rank 0 prepares the out folder; every process reads the checkpoint it resumes from.
    """
    if form not in FORMS:
        raise UserError(f"--form can be {' or '.join(FORMS)}; got {form!r}")
    training = spec.training_or_default
    # a model too large for this machine is refused before any folder, data or allocation
    check_fits_in_memory(spec, count_params(spec))
    out = Path(out_dir)
    group = env_group()
    if group.is_main:
        prepare_out_dir(out, resume=resume, force=force)
    start_state = read_resume_state(out, spec) if resume else None
    return TrainRun(
        spec=spec,
        spec_path=spec_path,
        form=form,
        training=training,
        out=out,
        group=group,
        device=_process_device(device or training.device, group),
        start_state=start_state,
        quiet=quiet or not group.is_main,
        started=started,
    )


def _process_device(name: str, group: Group) -> torch.device:
    """Return the device this process trains on; raise UserError when it cannot."""
    device = resolve_device(name)
    if group.active:
        check_distributed_device(device, group.local_world)
    return process_device(group, device)


def _train_and_summarize(
    run: TrainRun, data, model: nn.Module, best_weights: dict[str, torch.Tensor] | None
) -> tuple[FitResult, dict[str, Any]]:
    """Return fit's result and the summary of the run, rank 0 writing each epoch meanwhile."""
    # writes finish inside catch_sigint, so a Ctrl-C while the last one is on its way is polite
    with (
        process_group(run.group, run.device),
        cpu_threads_for(run.spec, run.training.batch_size, run.device),
        catch_sigint(run.quiet) as interrupt,
        (
            RunWriter(run.out, run.spec, run.form, data, run.training.task)
            if run.group.is_main
            else nullcontext()
        ) as writer,
    ):
        result = _fit_on_device(
            run,
            model,
            data,
            best_weights=best_weights,
            interrupt=interrupt,
            writer=writer,
        )
        seconds = time.perf_counter() - run.started
        summary = summary_data(
            run, data=data, model=model, result=result, seconds=seconds
        )
    return result, summary


def _fit_on_device(
    run: TrainRun,
    model: nn.Module,
    data,
    *,
    best_weights: dict[str, torch.Tensor] | None,
    interrupt: InterruptFlag,
    writer: RunWriter | None,
) -> FitResult:
    """Return fit's result; a device out of memory is a UserError that says what to lower."""
    try:
        return fit(
            model,
            data,
            run.training,
            device=run.device,
            on_epoch_end=writer.epoch_end if writer is not None else None,
            start_state=run.start_state,
            best_weights=best_weights,
            interrupt=interrupt,
            quiet=run.quiet,
            group=run.group,
        )
    except torch.cuda.OutOfMemoryError as exc:  # also torch.OutOfMemoryError
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(
            f"{run.device} ran out of memory while training ({first}); lower "
            "training.batch_size or make the model smaller; last.pt keeps the last "
            "finished epoch"
        ) from None


def check_before_launch(
    spec: Spec,
    out: Path,
    *,
    nproc: int,
    device: str | None,
    resume: bool,
    force: bool,
) -> None:
    """Check what every launched process would check first; raise UserError for a mistake.

    `nnspec train --nproc N` calls this before it starts the N processes, so a mistake is one
    message, not one per process. The out folder is prepared as rank 0 would (with --force the
    previous run's files are removed here).
    """
    check_fits_in_memory(spec, count_params(spec))
    check_distributed_device(
        resolve_device(device or spec.training_or_default.device), nproc
    )
    prepare_out_dir(out, resume=resume, force=force)
    if resume:
        read_resume_state(out, spec)


def check_distributed_device(device: torch.device, nproc: int) -> None:
    """Raise UserError when a distributed run with `nproc` processes on this machine cannot
    train on `device`."""
    if device.type == "cpu":
        return
    if device.type != "cuda":
        raise UserError(
            f"training in several processes runs on cpu (gloo) or cuda (NCCL), not "
            f"{device.type}; use --device cpu"
        )
    if nproc > torch.cuda.device_count():
        raise UserError(
            f"{nproc} processes need one CUDA GPU each, and this machine has "
            f"{torch.cuda.device_count()}; use --nproc {torch.cuda.device_count()} or fewer, "
            "or --device cpu"
        )


def prepare_out_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Create `out` and check it is writable and free for this run; raise UserError if not."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    previous = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not (out / "last.pt").is_file():
            raise UserError(
                f"nothing to resume: {out / 'last.pt'} does not exist "
                "(start a new run without --resume)"
            )
    elif previous and not force:
        raise UserError(
            f"{out} already holds a run ({', '.join(previous)}); continue it with "
            "--resume, choose another --out, or pass --force to replace it"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".nnspec-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write in --out {out}: {exc.strerror or exc}") from None
    if force and not resume:
        for name in previous:
            (out / name).unlink()
    for name in RUN_FILES:  # temporary files of a run that was killed while writing
        for stale in out.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def read_resume_state(out: Path, spec: Spec) -> dict[str, Any]:
    """Return `out/last.pt` when it was trained from `spec`; raise UserError naming what differs.

    Only `training.epochs` may differ, so a finished run can be given more epochs.
    """
    path = out / "last.pt"
    payload = read_checkpoint(path)
    differences = spec_differences(
        stored_spec_data(payload["spec"]), spec_data(spec), ignore={"training.epochs"}
    )
    if differences:
        shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
        raise UserError(
            f"{path} was trained from another spec, so --resume would not continue it: "
            f"{shown}. Train into a new --out, or undo the change"
        )
    return payload


def read_best_weights(
    out: Path, start: dict[str, Any]
) -> dict[str, torch.Tensor] | None:
    """Return the weights of the best epoch before the resume, from best.pt (None if unknown).

    last.pt is written before best.pt, so best.pt may lag last.pt by the epoch written last; then
    last.pt holds the best weights itself and best.pt is rewritten from it.
    """
    best_epoch, epoch = start["early_stopping"]["best_epoch"], start["epoch"]
    if best_epoch == 0:
        return None
    if best_epoch == epoch:
        path = out / "best.pt"
        current = read_checkpoint(path) if path.is_file() else None
        if (
            current is None
            or current["epoch"] != epoch
            or current["spec_sha256"] != start["spec_sha256"]
        ):
            write_bytes_atomically(path, (out / "last.pt").read_bytes())
        return None  # fit copies them from the model it resumes
    path = out / "best.pt"
    best = read_checkpoint(path) if path.is_file() else None
    if (
        best is None
        or best["epoch"] != best_epoch
        or best["spec_sha256"] != start["spec_sha256"]
    ):
        print(
            f"nnspec train: warning: {path} does not hold epoch {best_epoch}, the best one; "
            "the best weights before the resume cannot be restored",
            file=sys.stderr,
        )
        return None
    return best["model"]


def build_model(spec: Spec, form: str, spec_path, quiet: bool) -> nn.Module:
    """Return a fresh model of the spec in the asked form (generated: the class from generated/)."""
    if form == "sequential":
        return build_sequential(spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_generated_model(spec, spec_path)
    for warning in caught:
        if not quiet:
            print(f"nnspec train: warning: {warning.message}", file=sys.stderr)
    return model


def summary_data(
    run: TrainRun, *, data, model: nn.Module, result: FitResult, seconds: float
) -> dict[str, Any]:
    """Return the summary.json content: the best epoch, why the run stopped, where things are."""
    spec, start_state = run.spec, run.start_state
    rows = {row["epoch"]: row for row in result.history}
    return _finite(
        {
            "name": spec.name,
            "spec": str(run.spec_path) if run.spec_path is not None else spec.source,
            "spec_sha256": spec_digest(spec),
            "form": run.form,
            "task": run.training.task,
            "data": data.description,
            "device": describe_device(run.device),
            "params": sum(p.numel() for p in model.parameters()),
            "monitor": result.monitor,
            "mode": result.mode,
            "best_epoch": result.best_epoch,
            "best": result.best,
            "best_metrics": rows.get(result.best_epoch),
            "last_metrics": result.history[-1] if result.history else None,
            "epochs": run.training.epochs,
            "epochs_run": result.epochs_run,
            "resumed_from_epoch": (
                int(start_state["epoch"]) if start_state is not None else None
            ),
            "stopped_early": result.stopped_early,
            "stop_reason": result.stop_reason,
            "stop_message": result.stop_message,
            "restored_best": result.restored_best,
            "seconds": round(seconds, 3),
            "out": str(run.out),
            "files": _run_files(run.out, result),
            "nnspec_version": __version__,
        }
    )


def _run_files(out: Path, result: FitResult) -> dict[str, str]:
    """Return the paths of the files the run leaves, by name (no best.pt when no epoch was best)."""
    files = {name: str(out / name) for name in RUN_FILES}
    if result.best_epoch == 0:
        files.pop("best.pt")
    if (
        result.epochs_run == 0
    ):  # no epoch finished (a diverged first epoch is in history)
        files.pop("last.pt")
    return files


def _finite(value: Any) -> Any:
    """Return `value` with NaN and infinities replaced by None (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def write_outputs(
    out: Path, summary: dict[str, Any], result: FitResult, task: str
) -> None:
    """Write metrics.csv (every epoch, the non-finite one included), summary.json and curves.png."""
    # lazy: matplotlib is slow to import; the --nproc launcher and other ranks never plot
    from runtime.training.plots import write_curves

    if result.history:
        try:
            write_metrics_csv(out / "metrics.csv", result.history, task)
        except OSError as exc:
            raise UserError(
                f"cannot write {out / 'metrics.csv'}: {exc.strerror or exc}"
            ) from None
        write_curves(out / "curves.png", result, task)
    else:
        summary["files"].pop("curves.png", None)
        summary["files"].pop("metrics.csv", None)
    write_text_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
