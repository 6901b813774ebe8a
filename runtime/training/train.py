"""`train_spec`: train a spec's model and leave the run in an output folder.

The folder gets `last.pt`, `best.pt` and `metrics.csv` as the checkpoint policy writes them
(runtime/training/run_writer.py: after the first epoch, at most every
`training.checkpoint_seconds`, and at every way out), and at the end `summary.json` and
`curves.png`. `resume=True` continues from
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
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from compiler import (
    Spec,
    build_sequential,
    count_params,
    resolved_layers,
    spec_data,
    spec_digest,
)
from compiler.build import check_fits_in_memory
from compiler.spec import data_digest, stored_spec_data
from compiler.training import TrainingConfig, one_value_batch_norms
from compiler.version import __version__
from runtime.data.load import load_spec_data
from runtime.errors import UserError
from runtime.parallel.denormals import flushing
from runtime.parallel.device import (
    AUTOCAST_DTYPE,
    describe_device,
    resolve_device,
    uses_autocast,
)
from runtime.parallel.distributed import Group, env_group, process_device, process_group
from runtime.parallel.layout import LayoutChoice, apply_layout, choose_layout
from runtime.parallel.threads import (
    ThreadChoice,
    choose_threads,
    counts_to_time,
    cpu_threads,
)
from runtime.storage.atomic import write_bytes_atomically, write_text_atomically
from runtime.storage.checkpoint import read_checkpoint
from runtime.storage.payload import (
    check_optimizer_fits,
    check_resume_entries,
    check_spec_digest,
    check_weights_fit,
)
from runtime.storage.run_folder import (
    RUN_FILES,
    check_run_names_are_files,
    hold_for_launched_processes,
    hold_run_folder,
    owned_run_files,
    stale_temporaries,
)
from runtime.training.compiled import compile_failure
from runtime.training.criterion import class_weights, training_criterion
from runtime.training.early_stopping import EarlyStopping
from runtime.training.generated_form import load_generated_model
from runtime.training.interrupt import InterruptFlag, catch_sigint
from runtime.training.loop import FitResult, fit
from runtime.training.metrics import write_metrics_csv
from runtime.training.optim import (
    build_optimizer,
    build_schedule,
    check_schedule_resumes,
)
from runtime.training.rng import seed_everything
from runtime.training.run_writer import RunWriter
from runtime.training.spec_diff import spec_differences, with_inferred_values
from runtime.training.tensorboard import TensorBoardLog, summary_writer_class

FORMS = ("sequential", "generated")
# what a resumed spec may change: more epochs, and settings of how (not what) it trains
RESUME_MAY_CHANGE = frozenset(
    {
        "training.epochs",
        "training.checkpoint_seconds",
        "training.threads",
        "training.compile",
        "training.channels_last",
        "training.loading",  # how batches are read, not which
    }
)


@dataclass
class RunFolder:
    """What a new run changes in its folder, done once it has something to write (`begin`).

    Everything is checked first (the folder, the checkpoint resumed from, the data, the model);
    only then, right before the first file of the new run is written, does `begin` remove the
    files of the run `--force` replaces, the temporary checkpoints a killed run left, and rewrite
    a best.pt that lags the last.pt resumed from.
    """

    out: Path
    replaced: list[str]  # files of the previous run that --force removes
    stale: list[Path]  # temporary checkpoints of a killed run
    rewrite_best: bool = False  # best.pt lags last.pt, whose epoch was the best
    begun: bool = False

    def begin(self) -> None:
        """Make the folder's changes the new run needs before its first write (once)."""
        if self.begun:
            return
        self.begun = True
        try:
            for name in self.replaced:
                (self.out / name).unlink(missing_ok=True)
            for stale in self.stale:
                stale.unlink(missing_ok=True)
            if self.rewrite_best:
                write_bytes_atomically(
                    self.out / "best.pt", (self.out / "last.pt").read_bytes()
                )
        except OSError as exc:
            raise UserError(
                f"cannot replace the previous run in {self.out}: {exc.strerror or exc}"
            ) from None


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
    best_weights: dict[str, torch.Tensor] | None  # best.pt's weights when resuming
    folder: RunFolder | None  # rank 0's changes to the folder (None on the other ranks)
    quiet: bool  # no progress bar or warnings (always so but on rank 0)
    started: float  # time.perf_counter() when train_spec was called
    tensorboard: bool = False  # rank 0 logs the epochs to OUT/tensorboard/


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
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Train `spec`'s model into `out_dir`; return the content of the summary.json it writes.

    `tensorboard=True` also writes TensorBoard event files to `out_dir/tensorboard/` (rank 0;
    UserError before anything else when the tensorboard package is missing).

    Under torchrun every process calls this alike; only rank 0 writes files and shows progress
    (docs/training.md, "Training on several processes"). Rank 0 holds the folder for the whole
    run, so a second run into it is refused.

    Raises UserError for an out folder that holds another run (unless `resume` or `force`), that
    cannot be written or is in use, a checkpoint from another spec, a missing device or bad data.
    """
    started = time.perf_counter()
    if tensorboard:
        summary_writer_class()  # missing, it is one line before any check or folder
    with ExitStack() as held:
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
            held=held,
            tensorboard=tensorboard,
        )
        data = load_spec_data(spec)
        # seeded right before the model, so both forms start from the same weights
        seed_everything(run.training.seed)
        model = build_model(spec, form, spec_path, run.quiet)
        _, summary = _train_and_summarize(run, data, model)
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
    held: ExitStack,
    tensorboard: bool = False,
) -> TrainRun:
    """Return the run once the checks that need no data pass; raise UserError when one fails.

    Rank 0 takes hold of the out folder (until `held` closes) and checks it; every process
    reads and verifies the checkpoint it resumes from. Nothing in the folder changes here.
    """
    if form not in FORMS:
        raise UserError(f"--form can be {' or '.join(FORMS)}; got {form!r}")
    training = spec.training_or_default
    group = env_group()
    on_device = _process_device(device or training.device, group)
    # a model too large for this machine is refused before any folder, data or allocation;
    # what training needs beyond the parameters is counted where it lives: in host memory,
    # unless the device is a GPU with memory of its own
    check_fits_in_memory(spec, count_params(spec), training=on_device.type != "cuda")
    out = Path(out_dir)
    folder = None
    if group.is_main:
        make_out_dir(out)
        held.enter_context(hold_run_folder(out))
        folder = prepare_out_dir(out, resume=resume, force=force)
    start_state = read_resume_state(out, spec) if resume else None
    best_weights = None
    if start_state is not None and folder is not None:
        best_weights, folder.rewrite_best = read_best_weights(out, start_state)
    return TrainRun(
        spec=spec,
        spec_path=spec_path,
        form=form,
        training=training,
        out=out,
        group=group,
        device=on_device,
        start_state=start_state,
        best_weights=best_weights,
        folder=folder,
        quiet=quiet or not group.is_main,
        started=started,
        tensorboard=tensorboard,
    )


def _process_device(name: str, group: Group) -> torch.device:
    """Return the device this process trains on; raise UserError when it cannot."""
    device = resolve_device(name)
    if group.active:
        check_distributed_device(device, group.local_world)
    return process_device(group, device)


def choice_key(spec) -> str:
    """Return the key the thread and layout choices of a spec are remembered by: the spec
    without the settings of how it trains (RESUME_MAY_CHANGE), so that the same model run
    streamed, compiled or for more epochs makes the choices of the run before and computes alike
    (the streamed and in-memory runs of a data set give the same metrics)."""
    data = spec_data(spec)
    training = data.get("training")
    if isinstance(training, dict):
        kept = {
            name: value
            for name, value in training.items()
            if f"training.{name}" not in RESUME_MAY_CHANGE
        }
        data = {**data, "training": kept}
    return data_digest(data)


def _train_and_summarize(
    run: TrainRun, data, model: nn.Module
) -> tuple[FitResult, dict[str, Any]]:
    """Return fit's result and the summary of the run, rank 0 writing each epoch meanwhile and
    its outputs (metrics.csv, summary.json, curves.png) at the end.

    The outputs are written inside catch_sigint, after the epochs' writer has finished: a first
    Ctrl-C or SIGTERM while they are written lets them finish (the run is complete), a second
    one stops at once with the files whole.
    """
    start_state = run.start_state or {}
    # under bf16 autocast as the run resumed from trained, else as training.amp asks here
    autocast = uses_autocast(run.device, run.training.amp, run.start_state)
    key = choice_key(run.spec)
    # the layout first, timed at each thread count the run may train on; the thread count is
    # then taken from the same timings in that layout
    counts = counts_to_time(run.training, run.device, start_state.get("threads"))
    layout = choose_layout(
        model,
        data,
        run.training,
        run.device,
        key=key,
        # a checkpoint from before the setting trained in torch's default layout
        resumed=(
            start_state.get("channels_last", False)
            if run.start_state is not None
            else None
        ),
        distributed=run.group.active,
        counts=counts,
    )
    apply_layout(model, layout)
    threads = choose_threads(
        model,
        data,
        run.training,
        run.device,
        # timed in the layout it trains in
        key=key + (" channels_last" if layout.channels_last else ""),
        resumed=start_state.get("threads"),
        channels_last=layout.channels_last,
        timed=layout.timed,
    )
    with (
        process_group(run.group, run.device),
        cpu_threads(threads),
        catch_sigint(run.quiet) as interrupt,
    ):
        with (
            RunWriter(
                run.out,
                run.spec,
                run.form,
                data,
                run.training.task,
                before_first_write=run.folder.begin,
                interrupt=interrupt,
                threads=threads.chosen,
                channels_last=layout.channels_last if layout.applies else None,
                autocast=autocast,
                saved_epoch=int((run.start_state or {}).get("epoch", 0)),
            )
            if run.folder is not None
            else nullcontext()
        ) as writer:
            with _tensorboard_log(run, data) as log:
                result = _fit_on_device(
                    run,
                    model,
                    data,
                    best_weights=run.best_weights,
                    interrupt=interrupt,
                    writer=writer,
                    log=log,
                    autocast=autocast,
                )
        seconds = time.perf_counter() - run.started
        summary = summary_data(
            run,
            data=data,
            model=model,
            result=result,
            seconds=seconds,
            threads=threads,
            layout=layout,
            autocast=autocast,
        )
        if run.group.is_main:
            write_outputs(run.out, summary, result, run.training.task, run.folder)
    return result, summary


# how torch's CPU allocator says it found no memory (c10's DefaultCPUAllocator, and Windows')
_CPU_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", "not enough memory")


def _fit_on_device(
    run: TrainRun,
    model: nn.Module,
    data,
    *,
    best_weights: dict[str, torch.Tensor] | None,
    interrupt: InterruptFlag,
    writer: RunWriter | None,
    log: TensorBoardLog | None = None,
    autocast: bool | None = None,
) -> FitResult:
    """Return fit's result; running out of memory (a device's or the CPU's) is a UserError that
    says what to lower."""
    on_epoch_end = writer.epoch_end if writer is not None else None
    if log is not None and writer is not None:

        def on_epoch_end(state) -> None:
            writer.epoch_end(state)
            log.epoch_end(state.model, state.history[-1])

    try:
        return fit(
            model,
            data,
            run.training,
            device=run.device,
            on_epoch_end=on_epoch_end,
            on_stop=writer.stop if writer is not None else None,
            start_state=run.start_state,
            best_weights=best_weights,
            interrupt=interrupt,
            quiet=run.quiet,
            group=run.group,
            autocast=autocast,
        )
    except torch.cuda.OutOfMemoryError as exc:  # also torch.OutOfMemoryError
        raise _out_of_memory(run.device, exc) from None
    except MemoryError as exc:
        raise _out_of_memory(torch.device("cpu"), exc) from None
    except RuntimeError as exc:
        if compile_failure(exc) is not None:  # training.compile on a platform without
            raise compile_failure(exc) from None
        if not any(text in str(exc) for text in _CPU_OUT_OF_MEMORY):
            raise
        raise _out_of_memory(torch.device("cpu"), exc) from None


@contextmanager
def _tensorboard_log(run: TrainRun, data) -> Iterator[TensorBoardLog | None]:
    """Yield the run's TensorBoard log (rank 0, with --tensorboard; else None), closed after."""
    if not (run.tensorboard and run.group.is_main):
        yield None
        return
    first = int(run.start_state["epoch"]) + 1 if run.start_state is not None else 1
    sample, _ = data.head(2)  # (read from disk when the data set is streamed)
    log = TensorBoardLog(
        run.out, run.training.task, first_epoch=first, graph_sample=sample
    )
    try:
        yield log
    finally:
        log.close()


def _out_of_memory(device: torch.device, exc: BaseException) -> UserError:
    first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return UserError(
        f"{device} ran out of memory while training ({first or 'no memory left'}); lower "
        "training.batch_size or make the model smaller; last.pt keeps the last "
        "epoch written"
    )


@contextmanager
def check_before_launch(
    spec: Spec,
    out: Path,
    *,
    nproc: int,
    device: str | None,
    resume: bool,
    force: bool,
    form: str = "sequential",
    spec_path: str | os.PathLike | None = None,
) -> Iterator[None]:
    """Check what every launched process would check first, then hold `out` for the `with`
    block (the launched processes' run); raise UserError for a mistake.

    `nnspec train --nproc N` enters this before it starts the N processes, so a mistake (the
    folder, the checkpoint resumed from, the data, the model's output) is one message, not one
    per process, and no other run can take the folder meanwhile. Nothing in it changes here.
    """
    if form not in FORMS:
        raise UserError(f"--form can be {' or '.join(FORMS)}; got {form!r}")
    resolved = resolve_device(device or spec.training_or_default.device)
    check_fits_in_memory(spec, count_params(spec), training=resolved.type != "cuda")
    check_distributed_device(resolved, nproc)
    check_batch_per_process(spec, nproc)
    make_out_dir(out)
    with hold_for_launched_processes(out):
        prepare_out_dir(out, resume=resume, force=force)
        _check_once_before_launch(
            spec, out, resume=resume, form=form, spec_path=spec_path
        )
        yield


def _check_once_before_launch(
    spec: Spec, out: Path, *, resume: bool, form: str, spec_path
) -> None:
    """Read what a resume reads, load the data and check the model's output, as every process
    will; nothing of it is kept (the processes load their own while the folder is held).
    """
    if resume:
        start = read_resume_state(out, spec)
        read_best_weights(out, start, warn=False)  # rank 0 warns
    data = load_spec_data(spec)
    seed_everything(spec.training_or_default.seed)
    check_model_output(build_model(spec, form, spec_path, quiet=True), data, spec)


def check_batch_per_process(spec: Spec, nproc: int) -> None:
    """Raise UserError when batch norm would see a batch of one sample in some process: each of
    `nproc` processes trains on its share of every batch (the last batch is joined to the one
    before when it is shorter than 2 per process), so batch_size must give each at least 2.
    """
    batch_size = spec.training_or_default.batch_size
    norms = one_value_batch_norms(resolved_layers(spec))
    if norms and batch_size < 2 * nproc:
        where = f"layer {norms[0].name} ({norms[0].type})"
        raise UserError(
            f"training.batch_size {batch_size} gives some of the {nproc} processes a batch of "
            f"one sample, but {where} normalizes over the batch and needs more than one value "
            f"per channel; set batch_size to {2 * nproc} or more, or use fewer processes"
        )


def check_model_output(model: nn.Module, data, spec: Spec) -> None:
    """Raise UserError when the model's output does not fit the task (two samples, on the CPU),
    as fit checks it first."""
    # the criterion is made here too, so class weights that do not fit the data are refused
    task = training_criterion(spec.training_or_default, data, torch.device("cpu"))
    x, y = data.head(2)  # (read from disk when the data set is streamed)
    model.eval()
    with torch.inference_mode():
        output = model(x)
    problem = task.check_output(output, x if task.reconstructs else y, data.num_classes)
    if problem:
        raise UserError(problem)


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


def make_out_dir(out: Path) -> None:
    """Create `out` (and its parents); raise UserError when it is a file or cannot be made."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write in --out {out}: {exc.strerror or exc}") from None


def prepare_out_dir(out: Path, *, resume: bool, force: bool) -> RunFolder:
    """Check that `out` is writable and free for this run; return what the run will change in
    it once it has something to write; raise UserError if not. Nothing changes here."""
    make_out_dir(out)
    check_run_names_are_files(out)
    ours, theirs = owned_run_files(out)
    if resume:
        if not (out / "last.pt").is_file():
            raise UserError(
                f"nothing to resume: {out / 'last.pt'} does not exist "
                "(start a new run without --resume)"
            )
    elif (ours or theirs) and not force:
        raise UserError(
            f"{out} already holds a run ({', '.join(ours + theirs)}); continue it with "
            "--resume, choose another --out, or pass --force to replace it"
        )
    elif theirs:  # --force replaces a run, never the user's own files of those names
        raise UserError(
            f"{', '.join(str(out / name) for name in theirs)} "
            f"{'was' if len(theirs) == 1 else 'were'} not written by an nnspec run, so "
            "--force does not replace "
            f"{'it' if len(theirs) == 1 else 'them'}; move "
            f"{'it' if len(theirs) == 1 else 'them'} away or choose another --out"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".nnspec-probe.")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"cannot write in --out {out}: {exc.strerror or exc}") from None
    return RunFolder(
        out=out,
        replaced=ours if force and not resume else [],
        stale=stale_temporaries(out),
    )


def read_resume_state(out: Path, spec: Spec) -> dict[str, Any]:
    """Return `out/last.pt` when it is whole and was trained from `spec`; raise UserError
    naming what differs or what is damaged.

    Everything a resume uses is verified before anything of it is: the zip checksums, every
    entry's type, the spec against its recorded sha256, and that the weights, optimizer,
    scheduler and early-stopping state fit the spec's model. Only `training.epochs` (and
    `training.loading`, which changes how batches are read, not which) may differ
    from the spec, so a finished run can be given more epochs.
    """
    path = out / "last.pt"
    payload = read_checkpoint(path)
    check_resume_entries(payload, path)
    check_spec_digest(payload, path)
    differences = spec_differences(
        with_inferred_values(stored_spec_data(payload["spec"])),
        with_inferred_values(spec_data(spec)),
        ignore=RESUME_MAY_CHANGE,
    )
    if differences:
        shown = "; ".join(differences[:5]) + ("; ..." if len(differences) > 5 else "")
        raise UserError(
            f"{path} was trained from another spec, so --resume would not continue it: "
            f"{shown}. Train into a new --out, or undo the change"
        )
    _check_state_fits(payload, spec, path)
    return payload


def _check_state_fits(payload: dict[str, Any], spec: Spec, path: Path) -> None:
    """Raise UserError unless the checkpoint's states load into a throwaway model of `spec`."""
    training = spec.training_or_default
    model = build_sequential(spec)  # the same state_dict names as the generated class
    check_weights_fit(payload["model"], model, path)
    optimizer = build_optimizer(model, training.optimizer)
    check_optimizer_fits(payload["optimizer"], optimizer, path)
    stopper = EarlyStopping.from_config(training.early_stopping)
    stored = (
        payload["spec"].get("training") if isinstance(payload["spec"], dict) else None
    )
    problem = check_schedule_resumes(
        stored.get("epochs") if isinstance(stored, dict) else None, training, path
    )
    if problem:
        raise UserError(problem)
    # one batch per epoch: a one_cycle's state holds its own number of steps
    scheduler = build_schedule(optimizer, training, stopper.mode, steps_per_epoch=1)
    try:
        stopper.load_state_dict(payload["early_stopping"])
        if scheduler is not None and payload["scheduler"] is not None:
            scheduler.load_state_dict(payload["scheduler"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UserError(f"{path} is damaged: its training state ({text})") from None


def read_best_weights(
    out: Path, start: dict[str, Any], *, warn: bool = True
) -> tuple[dict[str, torch.Tensor] | None, bool]:
    """Return the weights of the best epoch before the resume, from best.pt (None if unknown),
    and whether best.pt must be rewritten from last.pt; raise UserError for a damaged best.pt.

    last.pt is written before best.pt, so best.pt may lag last.pt by the epoch written last; then
    last.pt holds the best weights itself and best.pt is rewritten from it (by RunFolder.begin,
    once the new run writes: nothing in the folder changes here).
    """
    best_epoch, epoch = start["early_stopping"]["best_epoch"], start["epoch"]
    if best_epoch == 0:
        return None, False
    path = out / "best.pt"
    best = read_checkpoint(path) if path.is_file() else None
    if best is not None:
        check_spec_digest(best, path)
    if best_epoch == epoch:
        lagging = (
            best is None
            or best["epoch"] != epoch
            or best["spec_sha256"] != start["spec_sha256"]
        )
        return None, lagging  # fit copies them from the model it resumes
    if (
        best is None
        or best["epoch"] != best_epoch
        or best["spec_sha256"] != start["spec_sha256"]
    ):
        if warn:
            print(
                f"nnspec train: warning: {path} does not hold epoch {best_epoch}, the best "
                "one; the best weights before the resume cannot be restored",
                file=sys.stderr,
            )
        return None, False
    shapes = {k: (v.shape, v.dtype) for k, v in best["model"].items()}
    if shapes != {k: (v.shape, v.dtype) for k, v in start["model"].items()}:
        raise UserError(f"{path} is damaged: its weights do not fit its spec")
    return best["model"], False


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
    run: TrainRun,
    *,
    data,
    model: nn.Module,
    result: FitResult,
    seconds: float,
    threads: ThreadChoice | None = None,
    layout: LayoutChoice | None = None,
    autocast: bool = False,
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
            "device": describe_device(run.device, threads, layout, autocast),
            "autocast": AUTOCAST_DTYPE if autocast else None,
            "threads": threads.summary() if threads is not None else None,
            "channels_last": (
                layout.summary() if layout is not None and layout.applies else None
            ),
            # every CPU thread flushed denormal floats to zero (runtime/parallel/denormals.py)
            "flush_denormal": flushing() if run.device.type == "cpu" else None,
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
            "class_weights": class_weights(run.training, data),
            "seconds": round(seconds, 3),
            "out": str(run.out),
            "files": _run_files(run.out, result, run.tensorboard),
            "nnspec_version": __version__,
        }
    )


def _run_files(
    out: Path, result: FitResult, tensorboard: bool = False
) -> dict[str, str]:
    """Return the paths of the files the run leaves, by name (no best.pt when no epoch was best;
    the tensorboard folder when the run logged to it)."""
    files = {name: str(out / name) for name in RUN_FILES}
    if tensorboard and (out / "tensorboard").is_dir():
        files["tensorboard"] = str(out / "tensorboard")
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
    out: Path,
    summary: dict[str, Any],
    result: FitResult,
    task: str,
    folder: RunFolder | None = None,
) -> None:
    """Write metrics.csv (every epoch, the non-finite one included), summary.json and curves.png.

    A file that cannot be written (a full disk) is a UserError naming it; the checkpoints
    written during the run stay as they are.
    """
    # lazy: matplotlib is slow to import; the --nproc launcher and other ranks never plot
    from runtime.training.plots import write_curves

    if (
        folder is not None
        and not folder.begun
        and folder.replaced
        and not result.history
    ):
        # the new run saved nothing (stopped before its first epoch ended): the run that
        # --force was to replace stays whole, its summary.json included
        summary["files"] = {}
        summary["kept_previous_run"] = True
        return
    if folder is not None:
        folder.begin()  # a run that diverged in its first epoch writes only here
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
