"""`training.amp` (runtime/parallel/device.py): bf16 autocast on cuda and on CPUs with bf16
instructions, float32 elsewhere; recorded in the checkpoints, so that a resume trains as its run
began and an evaluation measures as it trained."""

import math

import pytest
import torch

import runtime.parallel.device as device_module
import runtime.training.train
from compiler import load_spec
from runtime.cli.main import main
from runtime.errors import UserError
from runtime.parallel.device import cpu_has_bf16, uses_autocast
from runtime.parallel.threads import time_epochs
from runtime.storage.checkpoint import read_weights
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.loop import fit
from runtime.training.train import train_spec
from tests.test_channels_last import conv_model_and_data, conv_spec
from tests.test_train import rows_without_seconds

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

needs_bf16 = pytest.mark.skipif(
    not cpu_has_bf16(), reason="this CPU has no bf16 instructions (AVX512-BF16, AMX)"
)


def test_where_amp_applies(monkeypatch):
    cuda, mps = torch.device("cuda"), torch.device("mps")
    for has_bf16 in (True, False):
        monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: has_bf16)
        assert uses_autocast(CPU, True) is has_bf16
        assert uses_autocast(cuda, True) and not uses_autocast(mps, True)
        assert not any(uses_autocast(d, False) for d in (CPU, cuda, mps))
        # a resume trains as its checkpoint says, whatever this CPU has
        assert uses_autocast(CPU, True, {"autocast": "bfloat16"})
        assert not uses_autocast(CPU, True, {"autocast": None})
        assert not uses_autocast(cuda, True, {"autocast": None})
        # a checkpoint from before the entry: amp applied on cuda only
        assert not uses_autocast(CPU, True, {"epoch": 3})
        assert uses_autocast(cuda, True, {"epoch": 3})


def first_conv_dtypes(model, seen=None) -> list[tuple[bool, torch.dtype]]:
    """Return the list (`seen`, or a new one) that (training, output dtype) of each call of
    model[0] is added to."""
    seen = [] if seen is None else seen
    model[0].register_forward_hook(
        lambda module, inputs, output: seen.append((module.training, output.dtype))
    )
    return seen


def watch_built_models(monkeypatch) -> list[tuple[bool, torch.dtype]]:
    """Return the list first_conv_dtypes fills for every model train_spec builds."""
    seen = []
    build = runtime.training.train.build_model

    def watched(*args, **kwargs):
        model = build(*args, **kwargs)
        first_conv_dtypes(model, seen)
        return model

    monkeypatch.setattr(runtime.training.train, "build_model", watched)
    return seen


@needs_bf16
@pytest.mark.parametrize("amp", [True, False])
def test_amp_trains_and_validates_in_bf16_on_a_cpu_with_bf16(amp):
    spec, model, data = conv_model_and_data(amp=amp, epochs=1)
    seen = first_conv_dtypes(model)
    fit(model, data, spec.training_or_default, device=CPU, quiet=True)
    dtype = torch.bfloat16 if amp else torch.float32
    assert {training for training, _ in seen} == {True, False}  # steps and validation
    assert {d for _, d in seen} == {dtype}
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_amp_trains_in_float32_on_a_cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: False)
    spec, model, data = conv_model_and_data(amp=True, epochs=1)
    seen = first_conv_dtypes(model)
    fit(model, data, spec.training_or_default, device=CPU, quiet=True)
    assert seen and {d for _, d in seen} == {torch.float32}


@needs_bf16
def test_the_thread_and_layout_probes_time_what_the_run_trains():
    spec, model, data = conv_model_and_data(amp=True)
    seen = first_conv_dtypes(model)  # the probes' copies keep the hook
    estimates = time_epochs(model, data, spec.training_or_default, [(1, False)])
    assert estimates[(1, False)] > 0
    assert {training for training, _ in seen} == {True, False}
    assert {d for _, d in seen} == {torch.bfloat16}


@needs_bf16
def test_an_amp_run_records_autocast_resumes_exactly_and_evaluates_as_it_trained(
    tmp_path,
):
    whole = train_spec(
        load_spec(conv_spec(epochs=3, amp=True)), out_dir=tmp_path / "a", quiet=True
    )
    assert whole["autocast"] == "bfloat16"
    assert whole["device"].endswith(", bf16 autocast")
    for name in ("last.pt", "best.pt"):
        payload = torch.load(tmp_path / "a" / name, weights_only=True)
        assert payload["autocast"] == "bfloat16"
    # stopped after epoch 2 and resumed: the same epochs, the same weights
    train_spec(
        load_spec(conv_spec(epochs=2, amp=True)), out_dir=tmp_path / "b", quiet=True
    )
    resumed = train_spec(
        load_spec(conv_spec(epochs=3, amp=True)),
        out_dir=tmp_path / "b",
        resume=True,
        quiet=True,
    )
    assert resumed["autocast"] == "bfloat16"
    assert rows_without_seconds(tmp_path / "b" / "metrics.csv") == (
        rows_without_seconds(tmp_path / "a" / "metrics.csv")
    )
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    # measured under autocast, as the run measured its val_loss
    result = evaluate_checkpoint(tmp_path / "a" / "best.pt", split="val", device="cpu")
    assert result["device"].endswith(", bf16 autocast")
    assert math.isclose(
        result["loss"], whole["best_metrics"]["val_loss"], rel_tol=1e-6
    ), (result["loss"], whole["best_metrics"]["val_loss"])


@needs_bf16
def test_a_safetensors_export_of_an_amp_run_evaluates_as_it_trained(tmp_path, capsys):
    out = tmp_path / "run"
    train_spec(load_spec(conv_spec(epochs=1, amp=True)), out_dir=out, quiet=True)
    exported = out / "best.safetensors"
    args = ["export", str(out / "best.pt"), "--format", "safetensors"]
    assert main([*args, "--out", str(exported)]) == 0
    capsys.readouterr()
    assert read_weights(exported)["autocast"] == "bfloat16"
    # the same bf16 arithmetic as the checkpoint, not float32 (which differs in the loss)
    from_export = evaluate_checkpoint(exported, split="val", device="cpu")
    from_checkpoint = evaluate_checkpoint(out / "best.pt", split="val", device="cpu")
    assert from_export["loss"] == from_checkpoint["loss"]


def test_a_run_without_amp_records_no_autocast(tmp_path):
    summary = train_spec(
        load_spec(conv_spec(epochs=1)), out_dir=tmp_path / "run", quiet=True
    )
    assert summary["autocast"] is None and "autocast" not in summary["device"]
    payload = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert payload["autocast"] is None


@needs_bf16
def test_an_amp_run_from_before_cpu_autocast_resumes_in_float32(tmp_path, monkeypatch):
    # an earlier nnspec trained amp: true in float32 on the CPU and wrote no entry
    seen = watch_built_models(monkeypatch)
    out = tmp_path / "run"
    train_spec(load_spec(conv_spec(epochs=1, amp=True)), out_dir=out, quiet=True)
    assert {d for _, d in seen} == {torch.bfloat16}
    payload = torch.load(out / "last.pt", weights_only=True)
    del payload["autocast"]
    torch.save(payload, out / "last.pt")
    seen.clear()
    resumed = train_spec(
        load_spec(conv_spec(epochs=2, amp=True)), out_dir=out, resume=True, quiet=True
    )
    assert seen and {d for _, d in seen} == {torch.float32}
    assert resumed["autocast"] is None and "autocast" not in resumed["device"]
    assert torch.load(out / "last.pt", weights_only=True)["autocast"] is None


def test_a_checkpoint_with_another_autocast_is_damaged(tmp_path):
    out = tmp_path / "run"
    train_spec(load_spec(conv_spec(epochs=1)), out_dir=out, quiet=True)
    payload = torch.load(out / "last.pt", weights_only=True)
    payload["autocast"] = "float16"
    torch.save(payload, out / "last.pt")
    with pytest.raises(UserError, match="its autocast is 'float16'"):
        train_spec(load_spec(conv_spec(epochs=2)), out_dir=out, resume=True, quiet=True)
