"""The run folder: one run at a time, the old run kept until the new one writes, nothing of the
user's removed, and every failure to write one located message (issue 15, items 1, 2, 5, 7, 9,
13, 14, 20)."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from runtime.cli.main import main
from runtime.storage import atomic
from runtime.storage.run_folder import hold_run_folder
from runtime.training import plots
from runtime.training import train as train_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = """\
name: Tiny
input: [1, 8, 8]
layers:
  - flatten
  - linear: 8
  - relu
  - linear: 10
training:
  epochs: 2
  optimizer: {type: adam, lr: 0.01}
  data: {dataset: digits}
"""
ROOT = Path(__file__).resolve().parents[1]


def write_spec(folder: Path, text: str = SPEC, name: str = "tiny.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.name: (p.read_bytes() if p.is_file() else b"<dir>") for p in folder.iterdir()
    }


def train(capsys, *args) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["train", *map(str, args), "--quiet", "--device", "cpu"])
    return code, capsys.readouterr().err


def one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def finished(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    code, err = train(capsys, spec, "--out", out)
    assert code == 0, err
    return spec, out


# --- item 1: one run at a time ------------------------------------------------------------


def test_a_second_run_into_a_held_folder_is_refused_and_a_dead_holder_is_no_obstacle(
    tmp_path, capsys
):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    # another process holds the folder as a run does (flock on the folder itself)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from runtime.storage.run_folder import hold_run_folder\n"
            "with hold_run_folder(Path(sys.argv[1])):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
            str(out),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        # the runs are in this process: the holder is the other process that matters
        code, err = train(capsys, spec, "--out", out)
        assert code == 2, err
        line = one_line_error(err)
        assert f"{out} is in use by another nnspec run" in line
        assert list(out.iterdir()) == []
    finally:
        holder.send_signal(
            signal.SIGKILL
        )  # a holder killed with -9 leaves no stale lock
        holder.wait()
    code, err = train(capsys, spec, "--out", out)
    assert code == 0, err
    assert (out / "last.pt").is_file()


def test_the_lock_is_released_on_every_way_out(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(train_module, "fit", fail)
    with pytest.raises(RuntimeError, match="boom"):
        train(capsys, spec, "--out", out)
    monkeypatch.undo()
    with hold_run_folder(out):  # free again: the exception released it
        pass
    assert train(capsys, spec, "--out", out)[0] == 0
    with hold_run_folder(out):
        pass


def test_two_runs_started_together_one_is_refused(tmp_path):
    spec = write_spec(tmp_path, SPEC.replace("epochs: 2", "epochs: 4"))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "runtime", "train", str(spec), "--out", str(out)]
    runs = [
        subprocess.Popen(
            command + ["--quiet"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _ in results)
    # one run trains; the other is refused, by the lock or (once the first has written) the
    # "already holds a run" check, never a mix of the two runs' files
    assert codes == [0, 2], results
    err = next(err for code, err in results if code == 2)
    assert "in use by another nnspec run" in err or "already holds a run" in err
    payload = torch.load(out / "last.pt", weights_only=True)
    best = torch.load(out / "best.pt", weights_only=True)
    assert payload["epoch"] == 4 and best["spec_sha256"] == payload["spec_sha256"]


# --- item 2: --force keeps the old run until the new one writes ----------------------------


@pytest.mark.parametrize(
    "mistake, expected",
    [
        (
            ("data: {dataset: digits}", "data: {dataset: npz, path: nope.npz}"),
            "nope.npz",
        ),
        (("  - linear: 10\n", "  - linear: 7\n"), "10"),
    ],
    ids=["data path typo", "wrong last layer"],
)
def test_force_keeps_the_old_run_when_the_new_one_fails_its_checks(
    finished, tmp_path, capsys, mistake, expected
):
    spec, out = finished
    before = snapshot(out)
    bad = write_spec(tmp_path, SPEC.replace(*mistake), "bad.yaml")
    code, err = train(capsys, bad, "--out", out, "--force")
    assert code == 2
    assert expected in one_line_error(err)
    assert snapshot(out) == before


def test_force_replaces_the_old_run_once_the_new_one_writes(finished, capsys):
    spec, out = finished
    old = (out / "last.pt").read_bytes()
    code, err = train(capsys, spec, "--out", out, "--force", "--epochs", "1")
    assert code == 0, err
    assert (out / "last.pt").read_bytes() != old
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1


# --- item 5: only nnspec's own files are removed -------------------------------------------


def test_a_new_run_leaves_the_users_files_named_like_temporaries(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    mine = {
        ".last.pt.mine.tmp": b"my notes",
        ".best.pt.abc.tmp": b"PK\x03\x04 not a checkpoint of nnspec",
        "metrics.csv.tmp": b"a,b\n1,2\n",
        ".metrics.csv.x.tmp": b"epoch,mine\n",
    }
    for name, data in mine.items():
        (out / name).write_bytes(data)
    (out / ".summary.json.d.tmp").mkdir()  # a folder named like a temporary
    assert train(capsys, spec, "--out", out)[0] == 0
    for name, data in mine.items():
        assert (out / name).read_bytes() == data
    assert (out / ".summary.json.d.tmp").is_dir()


def test_a_killed_runs_temporary_checkpoint_is_removed(finished, capsys):
    spec, out = finished
    stale = out / ".last.pt.k1ll3d.tmp"
    stale.write_bytes((out / "last.pt").read_bytes()[:3000])  # a write cut by kill -9
    assert train(capsys, spec, "--out", out, "--force", "--epochs", "1")[0] == 0
    assert not stale.exists()


def test_force_in_a_folder_without_a_run_leaves_the_users_files(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "metrics.csv").write_text("my,own\n1,2\n")
    (out / "summary.json").write_text('{"mine": true}\n')
    before = snapshot(out)
    code, err = train(capsys, spec, "--out", out, "--force")
    assert code == 2
    line = one_line_error(err)
    assert "were not written by an nnspec run, so --force does not replace them" in line
    assert str(out / "metrics.csv") in line and str(out / "summary.json") in line
    assert snapshot(out) == before


# --- item 14: folders where nnspec writes files ---------------------------------------------


@pytest.mark.parametrize("name", ["best.pt", "last.pt", "metrics.csv", "summary.json"])
def test_a_folder_named_like_a_run_file_is_one_message_and_nothing_is_deleted(
    finished, capsys, name
):
    spec, out = finished
    if (out / name).exists():
        (out / name).unlink()
    (out / name).mkdir()
    (out / name / "inside.txt").write_text("keep me")
    before = snapshot(out)
    for flags in (["--force"], []):
        code, err = train(capsys, spec, "--out", out, *flags)
        assert code == 2
        line = one_line_error(err)
        assert f"{out / name} is a folder; nnspec writes a file of that name" in line
        assert snapshot(out) == before
        assert (out / name / "inside.txt").read_text() == "keep me"


# --- items 7 and 13: a full disk at the end of a run ----------------------------------------


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("target", ["curves.png", "summary.json", "metrics.csv"])
def test_a_full_disk_at_the_end_of_a_run_names_the_file_and_keeps_the_checkpoints(
    tmp_path, capsys, monkeypatch, target
):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    if target == "curves.png":
        monkeypatch.setattr(plots, "write_bytes_atomically", _no_space)
    elif target == "summary.json":  # write_text_atomically's own call of the writer
        monkeypatch.setattr(atomic, "write_bytes_atomically", _no_space)
    else:
        monkeypatch.setattr(train_module, "write_metrics_csv", _no_space)
    code, err = train(capsys, spec, "--out", out)
    assert code == 2
    line = one_line_error(err)
    assert line.endswith(f"cannot write {out / target}: No space left on device")
    for name in ("last.pt", "best.pt"):
        assert torch.load(out / name, weights_only=True)["epoch"] >= 1


# --- item 17: the CPU's allocator out of memory --------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
            "allocate memory: you tried to allocate 1024000000000 bytes. Error code 12"
        ),
        RuntimeError("not enough memory: you tried to allocate 1024000000000 bytes."),
        MemoryError(),
    ],
    ids=["linux", "windows", "python"],
)
def test_cpu_out_of_memory_while_training_is_one_message(
    tmp_path, capsys, monkeypatch, error
):
    spec = write_spec(tmp_path)

    def allocate(*args, **kwargs):
        raise error

    monkeypatch.setattr(train_module, "fit", allocate)
    code, err = train(capsys, spec, "--out", tmp_path / "run")
    assert code == 2
    line = one_line_error(err)
    assert "cpu ran out of memory while training" in line
    assert "lower training.batch_size or make the model smaller" in line


def test_other_runtime_errors_are_not_taken_for_memory(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train_module, "fit", broken)
    spec = write_spec(tmp_path)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["train", str(spec), "--out", str(tmp_path / "run"), "--quiet"])


# --- item 20: data and model checked once before --nproc launches ---------------------------


@pytest.mark.parametrize(
    "mistake, expected",
    [
        (
            ("data: {dataset: digits}", "data: {dataset: npz, path: nope.npz}"),
            "nope.npz",
        ),
        (("  - linear: 10\n", "  - linear: 7\n"), "10"),
    ],
    ids=["missing data file", "wrong last layer"],
)
def test_under_nproc_data_and_model_are_checked_once_before_launch(
    tmp_path, capsys, monkeypatch, mistake, expected
):
    started = []
    monkeypatch.setattr(
        "runtime.cli.train.launch", lambda *args: started.append(args) or 0
    )
    bad = write_spec(tmp_path, SPEC.replace(*mistake), "bad.yaml")
    out = tmp_path / "run"
    code, err = train(capsys, bad, "--out", out, "--nproc", "2")
    assert code == 2 and started == []
    assert expected in one_line_error(err)


def test_the_launcher_holds_the_folder_while_its_processes_run(tmp_path, monkeypatch):
    spec = write_spec(tmp_path)
    out = tmp_path / "run"
    seen = []

    def launch(argv, nproc):
        # the launched processes are told the launcher holds it; any other process is refused
        seen.append(os.environ.get("NNSPEC_RUN_FOLDER_HELD"))
        check = textwrap.dedent("""
            import os, sys
            from pathlib import Path
            os.environ.pop("NNSPEC_RUN_FOLDER_HELD")
            from runtime.storage.run_folder import hold_run_folder
            from runtime.errors import UserError
            try:
                with hold_run_folder(Path(sys.argv[1])):
                    print("free")
            except UserError as exc:
                print(exc)
            """)
        done = subprocess.run(
            [sys.executable, "-c", check, str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        seen.append(done.stdout.strip())
        return 0

    monkeypatch.setattr("runtime.cli.train.launch", launch)
    assert main(["train", str(spec), "--out", str(out), "--nproc", "2"]) == 0
    assert seen[0] == os.path.realpath(out)
    assert "is in use by another nnspec run" in seen[1]
    assert "NNSPEC_RUN_FOLDER_HELD" not in os.environ
    with hold_run_folder(out):  # released when the launch returns
        pass


def test_a_forced_run_that_saved_nothing_keeps_the_previous_run_whole(tmp_path):
    # --force replaces the old run only once the new one has something to write: stopped
    # before its first epoch ended, it writes nothing, not even summary.json
    from types import SimpleNamespace

    from runtime.training.train import RunFolder, write_outputs

    out = tmp_path / "run"
    out.mkdir()
    before = {}
    for name, data in {
        "last.pt": b"old last",
        "best.pt": b"old best",
        "metrics.csv": b"epoch\n1\n",
        "summary.json": b"{}\n",
    }.items():
        (out / name).write_bytes(data)
        before[name] = data
    folder = RunFolder(out=out, replaced=sorted(before), stale=[])
    summary = {"files": {"summary.json": "summary.json"}, "stop_reason": "interrupted"}
    write_outputs(out, summary, SimpleNamespace(history=[]), "classification", folder)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert summary["kept_previous_run"] and not folder.begun
