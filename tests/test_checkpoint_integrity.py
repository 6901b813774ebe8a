"""Checkpoints are verified whole on every read: zip checksums, every payload entry, the spec
against its sha256, before `evaluate`, `export` or `--resume` uses any of it, and the run
folder stays as it was when one is refused (issue 15, items 3, 4, 6 and the unclear messages).
"""

import io
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.cli.main import main
from runtime.errors import UserError
from runtime.storage.checkpoint import read_checkpoint
from runtime.training.evaluation import evaluate_checkpoint

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


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished two-epoch run: (folder, spec file, run folder)."""
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("integrity")
    spec = folder / "tiny.yaml"
    spec.write_text(SPEC)
    run = folder / "run"
    assert main(["train", str(spec), "--out", str(run), "--quiet"]) == 0
    return folder, spec, run


def copy_run(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def cli(capsys, *args) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err.strip()


def resume(capsys, spec, run):
    return cli(
        capsys, "train", spec, "--out", run, "--quiet", "--resume", "--epochs", 3
    )


def tensor_offset(data: bytes) -> int:
    """Return where the bytes of the first weight tensor start in a checkpoint."""
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("archive/data/0")
    # local header: 30 bytes, then the name and the extra field
    name_length = int.from_bytes(
        data[info.header_offset + 26 : info.header_offset + 28], "little"
    )
    extra_length = int.from_bytes(
        data[info.header_offset + 28 : info.header_offset + 30], "little"
    )
    return info.header_offset + 30 + name_length + extra_length


# --- item 3: flipped bytes in tensor data ---------------------------------------------------


def test_a_flipped_byte_in_tensor_data_is_refused_by_evaluate_export_and_resume(
    trained, tmp_path, capsys
):
    _, spec, run = trained
    copy = copy_run(run, tmp_path / "run")
    data = bytearray((copy / "last.pt").read_bytes())
    data[tensor_offset(bytes(data)) + 5] ^= 0x40
    (copy / "last.pt").write_bytes(bytes(data))
    before = snapshot(copy)
    expected = "the file is corrupted (the bytes of archive/data/0 do not match their"
    for args in (
        ["evaluate", copy / "last.pt"],
        [
            "export",
            copy / "last.pt",
            "--format",
            "safetensors",
            "--out",
            tmp_path / "x",
        ],
    ):
        line = refused(*cli(capsys, *args)[::2])
        assert f"{copy / 'last.pt'} is not a loadable nnspec checkpoint" in line
        assert expected in line
    code, _, err = resume(capsys, spec, copy)
    assert expected in refused(code, err)
    assert snapshot(copy) == before
    assert not (tmp_path / "x").exists()


# --- item 4: everything read for a resume is verified before the folder changes -----------


def test_resume_refuses_a_last_pt_whose_spec_disagrees_with_its_digest(
    trained, tmp_path, capsys
):
    _, spec, run = trained
    copy = copy_run(run, tmp_path / "run")
    payload = read_checkpoint(copy / "last.pt")
    payload["spec"]["layers"][1]["out_features"] = 9  # the digest still says 8
    payload["early_stopping"]["best_epoch"] = payload["epoch"]
    torch.save(payload, copy / "last.pt")
    (copy / "best.pt").unlink()
    shutil.copy(run / "best.pt", copy / "best.pt")  # a good best.pt, lagging by nothing
    before = snapshot(copy)
    code, _, err = resume(capsys, spec, copy)
    assert "its spec does not match the spec_sha256 it records" in refused(code, err)
    assert snapshot(copy) == before


def test_resume_refuses_a_damaged_best_pt_before_changing_anything(
    trained, tmp_path, capsys
):
    _, spec, run = trained
    copy = copy_run(run, tmp_path / "run")
    (copy / "best.pt").unlink()
    (copy / "best.pt").write_bytes((run / "best.pt").read_bytes()[:-40])
    before = snapshot(copy)
    code, _, err = resume(capsys, spec, copy)
    assert str(copy / "best.pt") in refused(code, err)
    assert snapshot(copy) == before


# --- item 6: damaged content, every entry -------------------------------------------------


def _deep(depth: int):
    value: dict = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _save_deep(payload: dict, path: Path) -> None:
    # pickling 20,000 levels needs a deep C stack: a thread with a large one
    def save():
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(100_000)
        try:
            torch.save(payload, path)
        finally:
            sys.setrecursionlimit(limit)

    threading.stack_size(512 * 1024 * 1024)
    try:
        worker = threading.Thread(target=save)
        worker.start()
        worker.join()
    finally:
        threading.stack_size(0)


def _drop(key):
    def damage(payload):
        del payload[key]

    return damage


def _set(path, value):
    def damage(payload):
        target = payload
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value(target[path[-1]]) if callable(value) else value

    return damage


DAMAGES = {
    "no optimizer": (_drop("optimizer"), "it lacks optimizer", "resume"),
    "no rng": (_drop("rng"), "it lacks rng", "resume"),
    "no metrics": (_drop("metrics"), "it lacks metrics", "resume"),
    "no early stopping": (_drop("early_stopping"), "it lacks early_stopping", "resume"),
    "weights of the wrong shape": (
        _set(("model", "fc2.weight"), lambda t: torch.zeros(3, 3)),
        "its weights do not fit its spec (fc2.weight is [3, 3]",
        "both",
    ),
    "weights that are not tensors": (
        _set(("model", "fc2.weight"), "text"),
        "its model is not a mapping of names to tensors",
        "both",
    ),
    "epoch as text": (_set(("epoch",), "2"), "its epoch is '2', not a count", "both"),
    "spec as a list": (
        _set(("spec",), [1, 2]),
        "its spec is not a mapping of plain data",
        "both",
    ),
    "early stopping best as text": (
        _set(("early_stopping", "best"), "low"),
        "its early_stopping.best is 'low'",
        "resume",
    ),
    "rng keys of the wrong shape": (
        _set(("rng", "numpy", "keys"), torch.zeros(3, dtype=torch.int64)),
        "its rng state is not what nnspec saves (numpy)",
        "resume",
    ),
    "optimizer state of the wrong shape": (
        _set(("optimizer", "state", 0, "exp_avg"), torch.zeros(2, 2)),
        "its optimizer state exp_avg of parameter 0 is [2, 2]",
        "resume",
    ),
    "optimizer without param groups": (
        _set(("optimizer", "param_groups"), {}),
        "its optimizer state is not what torch saves",
        "resume",
    ),
    "metrics missing an epoch": (
        _set(("metrics",), lambda rows: rows[:1]),
        "its metrics do not list its 2 epochs",
        "resume",
    ),
    "metrics of text": (
        _set(("metrics",), lambda rows: [dict(rows[0], val_loss="x"), rows[1]]),
        "its metrics row of epoch 1 is not numbers",
        "resume",
    ),
    "spec nested 20,000 deep": (
        _set(("spec", "description"), _deep(20_000)),
        "it nests more than",
        "both",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGES))
def test_damaged_content_is_one_line_for_evaluate_and_resume(
    trained, tmp_path, capsys, case
):
    _, spec, run = trained
    damage, expected, readers = DAMAGES[case]
    copy = copy_run(run, tmp_path / "run")
    payload = read_checkpoint(copy / "last.pt")
    damage(payload)
    _save_deep(payload, copy / "last.pt")
    before = snapshot(copy)
    if readers == "both":
        line = refused(*cli(capsys, "evaluate", copy / "last.pt")[::2])
        assert f"{copy / 'last.pt'} is damaged: {expected}" in line, line
    code, _, err = resume(capsys, spec, copy)
    line = refused(code, err)
    assert f"{copy / 'last.pt'} is damaged: {expected}" in line, line
    assert snapshot(copy) == before


# --- unclear messages: files that are no checkpoint -----------------------------------------


def test_evaluate_says_what_a_file_that_is_no_checkpoint_is(trained, tmp_path, capsys):
    _, _, run = trained
    text = tmp_path / "notes.pt"
    text.write_text("101 reasons\n")
    cases = {
        Path("/dev/zero"): "checkpoint /dev/zero is not a regular file (a character "
        "device), not a torch checkpoint",
        run
        / "curves.png": f"{run / 'curves.png'} is not a loadable nnspec checkpoint: "
        "it is a PNG image, not a torch checkpoint",
        text: f"{text} is not a loadable nnspec checkpoint: it is a text file, not a "
        "torch checkpoint",
    }
    for path, expected in cases.items():
        line = refused(*cli(capsys, "evaluate", path)[::2])
        assert line == f"nnspec evaluate: error: {expected}"


# --- the property: a flipped byte is refused or changes nothing ---------------------------


@pytest.fixture(scope="module")
def original(trained):
    _, spec, run = trained
    good = (run / "last.pt").read_bytes()
    return good, evaluate_checkpoint(run / "last.pt", "val", "cpu"), None


@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_flipped_bytes_are_refused_or_change_nothing(
    trained, original, tmp_path_factory, data
):
    _, spec, run = trained
    good, expected, _ = original
    flips = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, len(good) - 1), st.integers(1, 255)
            ),  # (offset, xor mask)
            min_size=1,
            max_size=3,
        )
    )
    damaged = bytearray(good)
    for offset, mask in flips:
        damaged[offset] ^= mask
    copy = tmp_path_factory.mktemp("flip") / "run"
    shutil.copytree(run, copy)
    (copy / "last.pt").write_bytes(bytes(damaged))
    from runtime.errors import UserError

    try:
        result = evaluate_checkpoint(copy / "last.pt", "val", "cpu")
    except UserError as exc:
        assert "\n" not in str(exc)
        # refused by evaluate, so refused by --resume too, the folder unchanged
        before = snapshot(copy)
        code = main(
            ["train", str(spec), "--out", str(copy), "--quiet", "--resume"]
            + ["--epochs", "2"]
        )
        assert code == 2
        assert snapshot(copy) == before
    else:
        for key in ("loss", "accuracy", "confusion", "epoch"):
            assert result[key] == expected[key], (flips, key)
        # and --resume goes on exactly as from the good file
        assert (
            main(["train", str(spec), "--out", str(copy), "--quiet", "--resume"]) == 0
        )
        resumed = torch.load(copy / "last.pt", weights_only=True)
        reference = torch.load(run / "last.pt", weights_only=True)
        assert resumed["epoch"] == reference["epoch"]
        for name, tensor in reference["model"].items():
            assert torch.equal(resumed["model"][name], tensor), (flips, name)


def test_a_safetensors_file_whose_metadata_nests_too_deep_is_one_line(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "deep.safetensors"
    deep = "[" * 50_000 + "]" * 50_000
    save_file(
        {"fc.weight": torch.zeros(2, 2)},
        str(path),
        metadata={
            "format": "nnspec-safetensors",
            "spec": deep,
            "spec_sha256": "0",
            "epoch": "1",
        },
    )
    done = subprocess.run(
        [sys.executable, "-m", "runtime", "evaluate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "nests too deep" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_flipped_byte_in_an_exported_safetensors_file_is_refused(trained, tmp_path):
    # safetensors checks its header, not the tensor bytes: the export records their sha256
    _, _, run = trained
    exported = tmp_path / "weights.safetensors"
    assert (
        main(
            ["export", str(run / "best.pt"), "--format", "safetensors"]
            + ["--out", str(exported)]
        )
        == 0
    )
    good = evaluate_checkpoint(exported, "val", "cpu")
    assert good["loss"] == evaluate_checkpoint(run / "best.pt", "val", "cpu")["loss"]
    data = bytearray(exported.read_bytes())
    data[-3] ^= 0x40  # an exponent bit of the last weight
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError, match="does not match the weights_sha256 it records"):
        evaluate_checkpoint(bad, "val", "cpu")
