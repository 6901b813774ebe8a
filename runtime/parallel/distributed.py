"""Multi-process training on torch.distributed: the process group, its collectives, the launcher.

Under `torchrun` (which sets RANK, WORLD_SIZE and LOCAL_RANK) every process trains the same model
wrapped in DistributedDataParallel, on its part of every global batch. `Group` is what the loop
needs to know about the other processes; the single-process `SINGLE` makes every collective a no-op,
so one code path serves both.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1  # processes on this machine

    @property
    def active(self) -> bool:
        """Return whether other processes train alongside this one."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Return whether this process writes the run's files and prints (rank 0)."""
        return self.rank == 0

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Return `tensor` summed in place over every process (itself when not distributed)."""
        if self.active:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """Return whether `flag` is true in any process (every process gets the same answer)."""
        if not self.active:
            return flag

        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def max_(self, value: int, device: torch.device) -> int:
        """Return the largest of every process's `value` (every process gets the same answer)."""
        if not self.active:
            return value

        tensor = torch.tensor([float(value)], device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    def from_main(self, flag: bool, device: torch.device) -> bool:
        """Return rank 0's `flag` in every process: a decision made once, so ranks never split."""
        if not self.active:
            return flag

        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.broadcast(value, src=0)
        return bool(value.item() > 0)

    def copy_buffers_from_main(self, model: torch.nn.Module) -> None:
        """Give `model`'s buffers (batch norm's running statistics) rank 0's values everywhere.

        DDP copies them from rank 0 before each training forward pass, after which each process
        updates its copy with its own part of the batch; copied once more after the epoch, every
        process validates the very model that rank 0 saves.
        """
        if not self.active:
            return

        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)


SINGLE = Group()


def env_group() -> Group:
    """Return the Group that torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
    LOCAL_WORLD_SIZE) describes."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return SINGLE
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return Group(rank=rank, world=world, local_rank=local_rank, local_world=local_world)


def process_device(group: Group, device: torch.device) -> torch.device:
    """Return the device this process trains on: its own GPU (LOCAL_RANK) on CUDA."""
    if group.active and device.type == "cuda":
        return torch.device("cuda", group.local_rank)
    return device


@contextmanager
def process_group(group: Group, device: torch.device) -> Iterator[None]:
    """Join the process group for the run (gloo on CPU, NCCL on CUDA); leave it on every way out."""
    if not group.active:
        yield
        return

    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    try:
        yield
    finally:
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, group: Group, device: torch.device):
    """Return `model` in DistributedDataParallel when distributed (the model itself if not)."""
    if not group.active:
        return model

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def lost_another_process(exc: BaseException) -> bool:
    """Return whether `exc` is a collective failing because another process has gone (killed,
    or ended by a failure of its own): gloo's "Connection closed by peer", NCCL's errors.
    """
    if isinstance(exc, dist.DistError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(
        word in text
        for word in ("gloo", "nccl", "connection closed", "connection reset")
    )


def end_as_stopped_by_torchrun() -> None:
    """End this training process as torchrun ends the others once one has failed: by SIGTERM.

    So torchrun (and nnspec's launcher) names the process that failed first as the cause,
    not this one, and nothing prints a traceback of the collective that lost its peer.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pause()  # pragma: no cover - the signal ends the process


def launch(argv: Sequence[str], nproc: int) -> int:
    """Run `nnspec ARGV` in `nproc` processes through torch.distributed.run; return rank 0's
    exit code (runtime/parallel/launcher.py).

    The processes run on this machine (`--standalone`: torchrun picks a free port itself).
    The launcher runs in a session of its own, so every SIGINT (Ctrl-C at the terminal), SIGTERM
    and SIGHUP reaches it once, passed on from here: this command never ends before the launcher,
    and the launcher passes each on to every process and waits for them (the first stops them
    after the same batch, a second at once). Should this process die unannounced (kill -9), the
    launcher gets SIGTERM from the system and stops the run the same way.
    """
    command = [
        sys.executable,
        "-m",
        "runtime.parallel.launcher",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "runtime",
        *argv,
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env[PARENT_VARIABLE] = str(os.getpid())
    child = subprocess.Popen(command, env=env, start_new_session=True)
    with _passed_on(child, FORWARDED_SIGNALS):
        code = child.wait()
    if code < 0:  # the launcher was killed: its processes got SIGTERM (Linux) and stop
        wait_for_processes_of(child.pid)
    return code


def end_with_the_parent() -> None:
    """Ask Linux to tell this process when its parent dies (one SIGTERM), where the parent named
    itself in PARENT_VARIABLE: `nnspec train --nproc N` for the launcher, the launcher for each
    training process. The first SIGTERM stops training after its batch; a process whose parent
    already died before the request stops the same way.

    Linux sends the signal again each time a thread of a dying parent ends (the children pass
    from thread to thread), and a second SIGTERM stops training at once; so the signal asked
    for is SIGUSR2, which this process turns into one SIGTERM to itself, once.
    """
    parent = os.environ.pop(PARENT_VARIABLE, None)
    if parent is None or not sys.platform.startswith("linux"):
        return

    def parent_died(signum, frame) -> None:
        signal.signal(PARENT_DIED, signal.SIG_IGN)  # its repeats
        os.kill(os.getpid(), signal.SIGTERM)

    try:
        signal.signal(PARENT_DIED, parent_died)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(PARENT_DIED))
    except (OSError, AttributeError, ValueError):
        return
    if str(os.getppid()) != parent:  # it died before the request
        parent_died(PARENT_DIED, None)


# the signal Linux sends a process whose parent died (it may come several times)
PARENT_DIED = getattr(signal, "SIGUSR2", None)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def running_pids() -> list[int]:
    """Return the ids of the running processes, from /proc ([] without one: not Linux)."""
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def processes_of(launcher: int) -> list[int]:
    """Return the ids of the running processes the launcher `launcher` started (their
    environment names it in PARENT_VARIABLE), from /proc; [] where there is none."""
    mark = f"{PARENT_VARIABLE}={launcher}".encode()
    found = []
    for pid in running_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if mark in environ.read().split(b"\0"):
                    found.append(pid)
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return found


def wait_for_processes_of(launcher: int, timeout: float = 60.0) -> None:
    """Wait (at most `timeout` s) until no process the killed launcher started is running, so
    the run folder stays held until the last one has written it."""
    deadline = time.monotonic() + timeout
    while processes_of(launcher) and time.monotonic() < deadline:
        time.sleep(0.05)


# the signals `nnspec train --nproc N` passes on to the launcher (which passes them on)
FORWARDED_SIGNALS = tuple(  # SIGHUP does not exist on Windows
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP")
    if hasattr(signal, name)
)
# the launcher's parent, so it can tell whether it outlived it
PARENT_VARIABLE = "NNSPEC_LAUNCHER_PARENT"


@contextmanager
def _passed_on(child: subprocess.Popen, signals: Sequence[int]) -> Iterator[None]:
    """Within the block, each of `signals` this process gets is sent to `child` instead."""

    def pass_on(signum, frame) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {signum: signal.signal(signum, pass_on) for signum in signals}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
