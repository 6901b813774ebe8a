"""`training.compile: true`: the training steps run through torch.compile, checkpoints keep plain
keys and evaluate and resume; a platform without a C++ compiler is one message.

Compiling with inductor takes tens of seconds; the first test uses the "aot_eager" backend, which
traces the model as inductor does (dynamo and AOT autograd) but needs no C++ compiler. The second
makes inductor find no C++ compiler, which it finds out before compiling anything."""

import pytest
import torch

from compiler import build_sequential
from runtime.errors import UserError
from runtime.parallel.device import cpu_has_bf16
from runtime.training import compiled
from runtime.training.evaluation import evaluate_checkpoint
from runtime.training.train import train_spec
from tests.test_train import digits_spec, rows_without_seconds

dynamo = pytest.importorskip("torch._dynamo")
pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(
        not dynamo.is_dynamo_supported(),
        reason="torch.compile does not run on this Python and torch",
    ),
]


def test_compiled_training_keeps_plain_keys_resumes_and_evaluates(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    calls = []
    real = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda module, **kw: calls.append(kw) or real(module, **kw)
    )
    out = tmp_path / "run"
    first = train_spec(
        # 3 batches of 479 (the 1,437 training samples): one shape, compiled once
        digits_spec(epochs=1, batch_size=479, compile=True),
        out_dir=out,
        device="cpu",
        quiet=True,
    )
    assert calls == [{"backend": "aot_eager"}]
    last = torch.load(out / "last.pt", weights_only=True)["model"]
    best = torch.load(out / "best.pt", weights_only=True)["model"]
    # the keys of the model itself, not of the compiled wrapper (`_orig_mod.0.weight`)
    assert set(last) == set(best) == set(build_sequential(digits_spec()).state_dict())
    assert first["epochs_run"] == 1
    # compile is how, not what: the run resumes with it off (and on: the same loop)
    resumed = train_spec(
        digits_spec(epochs=2, batch_size=479),
        out_dir=out,
        device="cpu",
        quiet=True,
        resume=True,
    )
    assert resumed["epochs_run"] == 2 and resumed["resumed_from_epoch"] == 1
    evaluated = evaluate_checkpoint(out / "last.pt", "val", "cpu")
    assert evaluated["loss"] == pytest.approx(
        resumed["last_metrics"]["val_loss"], rel=1e-5
    )


def test_no_cxx_compiler_is_one_message(tmp_path, monkeypatch):
    inductor_config = pytest.importorskip("torch._inductor.config")
    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "no-such-c++-compiler"))
    with pytest.raises(UserError) as caught:
        train_spec(
            digits_spec(epochs=1, compile=True),
            out_dir=tmp_path / "run",
            device="cpu",
            quiet=True,
        )
    message = str(caught.value)
    assert message.startswith("training.compile: torch.compile cannot compile")
    assert "C++ compiler" in message and "training.compile: false" in message
    assert "\n" not in message and "TORCHDYNAMO_VERBOSE" not in message


@pytest.mark.skipif(
    not cpu_has_bf16(), reason="this CPU has no bf16 instructions (AVX512-BF16, AMX)"
)
def test_compiled_steps_run_under_bf16_autocast_with_amp(tmp_path, monkeypatch):
    monkeypatch.setattr(compiled, "BACKEND", "aot_eager")
    losses = {}
    for amp in (False, True):
        out = tmp_path / f"amp-{amp}"
        summary = train_spec(
            digits_spec(epochs=1, batch_size=479, compile=True, amp=amp),
            out_dir=out,
            device="cpu",
            quiet=True,
        )
        assert summary["autocast"] == ("bfloat16" if amp else None)
        [row] = rows_without_seconds(out / "metrics.csv")
        losses[amp] = float(row["train_loss"])
    # the training loss comes from the compiled steps alone (validation runs the model itself):
    # the same seed, data and dropout draws, so only bf16 arithmetic in them can move it
    assert losses[True] != losses[False]
    assert losses[True] == pytest.approx(losses[False], rel=0.05)
