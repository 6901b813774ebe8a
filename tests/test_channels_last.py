"""Channels-last layout for models with 2-d convolutions (runtime/parallel/layout.py): timed on
copies, kept only when clearly faster, remembered, resumed; the same function in either layout,
checkpoints in torch's default layout."""

import pytest
import torch

from compiler import build_sequential, load_spec
from runtime.errors import UserError
from runtime.parallel import layout
from runtime.parallel import threads as threads_module
from runtime.parallel.layout import LayoutChoice, apply_layout, choose_layout
from runtime.parallel.threads import choose_threads
from runtime.storage.checkpoint import safetensors_bytes
from runtime.training.train import choice_key, train_spec
from tests.test_threads import two_threads  # noqa: F401 (a fixture)
from tests.test_train import rows_without_seconds, synthetic, tiny_mlp

CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv_spec(**training) -> dict:
    """A small CNN on digits, with batch norm and dropout (the timed steps draw random numbers)."""
    return {
        "name": "TinyConv",
        "input": [1, 8, 8],
        "layers": [
            {"conv2d": {"out_channels": 6, "kernel_size": 3, "padding": 1}},
            "batchnorm2d",
            "relu",
            {"maxpool2d": 2},
            {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}},
            "relu",
            {"dropout": 0.2},
            "flatten",
            {"linear": 10},
        ],
        "training": {
            "epochs": 2,
            "batch_size": 64,
            "optimizer": {"type": "adam", "lr": 0.01},
            "checkpoint_seconds": 0,
            **training,
        },
    }


def conv_model_and_data(**training):
    spec = load_spec(conv_spec(**training))
    torch.manual_seed(0)
    data = synthetic("classification")  # 72 + 24 samples of 3 classes, as images
    x = torch.randn(96, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    data.x_train, data.x_val = x[:72], x[72:]
    return spec, build_sequential(spec), data


def test_the_layout_is_timed_on_copies_and_remembered():
    spec, model, data = conv_model_and_data()
    training = spec.training_or_default
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    generator = torch.get_rng_state()
    choice = choose_layout(model, data, training, CPU, key="conv")
    assert choice.by == "measured" and set(choice.measured) == set(layout.LAYOUTS)
    faster = choice.measured["channels_last"] <= choice.measured["contiguous"] * (
        1 - layout.FASTER_BY
    )
    assert choice.channels_last == faster
    # nothing of the run changed: its weights (values and layout), torch's generator
    for key, value in model.state_dict().items():
        assert torch.equal(value, weights[key]) and value.is_contiguous()
    assert torch.equal(torch.get_rng_state(), generator)
    again = choose_layout(model, data, training, CPU, key="conv")
    assert (again.by, again.channels_last, again.measured) == (
        "remembered",
        choice.channels_last,
        {name: round(ms, 3) for name, ms in choice.measured.items()},
    )
    assert choose_layout(model, data, training, CPU, key="other").by == "measured"


def test_channels_last_must_win_clearly_to_be_chosen(monkeypatch):
    spec, model, data = conv_model_and_data()
    training = spec.training_or_default
    for (contiguous, channels_last), chosen in (
        ((33.2, 30.3), True),  # 9% faster
        ((33.0, 32.0), False),  # 3%: a tie keeps the default
        ((30.0, 36.0), False),
    ):
        timed = {(1, False): contiguous, (1, True): channels_last}
        monkeypatch.setattr(layout, "time_layouts", lambda *_, m=timed: dict(m))
        choice = choose_layout(model, data, training, CPU, key=f"rule {timed}")
        assert (choice.channels_last, choice.by) == (chosen, "measured")
        assert choice.timed == {1: channels_last if chosen else contiguous}


@pytest.mark.usefixtures("busy_rule")
def test_a_layout_timed_on_a_busy_machine_is_used_but_not_remembered(monkeypatch):
    spec, model, data = conv_model_and_data()
    training = spec.training_or_default
    for waited, by in ((0.5, "measured"), (0.01, "remembered")):
        timed = threads_module.Estimates({(1, False): 30.0, (1, True): 24.0}, waited)
        monkeypatch.setattr(layout, "time_layouts", lambda *_, t=timed: t)
        choice = choose_layout(model, data, training, CPU, key=f"busy {waited}")
        assert (choice.channels_last, choice.by, choice.waited) == (
            True,
            "measured",
            waited,
        )
        assert choice.timed.waited == waited  # handed on to the thread choice
        assert ("machine busy" in choice.describe()) == (waited == 0.5)
        assert choice.summary()["waited_for_cpu"] == waited
        again = choose_layout(model, data, training, CPU, key=f"busy {waited}")
        assert (again.channels_last, again.by, again.waited) == (True, by, waited)


@pytest.mark.usefixtures("two_threads")
def test_the_layout_is_timed_at_each_thread_count_and_the_counts_are_kept(monkeypatch):
    spec, model, data = conv_model_and_data()
    training = spec.training_or_default
    # channels last is faster at one thread only, by more than the default is at two
    timed = {(2, False): 40.0, (2, True): 41.0, (1, False): 45.0, (1, True): 36.0}
    asked = []

    def time_layouts(_model, _data, _training, counts):
        asked.append(counts)
        return {k: v for k, v in timed.items() if k[0] in counts}

    monkeypatch.setattr(layout, "time_layouts", time_layouts)
    choice = choose_layout(model, data, training, CPU, key="joint", counts=(1, 2))
    assert asked == [(1, 2)]
    assert choice.channels_last and choice.measured == {
        "contiguous": 40.0,
        "channels_last": 36.0,
    }
    threads = choose_threads(
        model, data, training, CPU, key="joint cl", timed=choice.timed
    )
    assert (threads.chosen, threads.measured) == (1, {1: 36.0, 2: 41.0})
    # each layout is compared at the count it would train at, not its fastest: channels last
    # is fastest at one thread, but not by the 10% one thread needs, so it would train at two
    timed = {(2, False): 40.0, (2, True): 42.0, (1, False): 44.0, (1, True): 38.0}
    choice = choose_layout(model, data, training, CPU, key="rule", counts=(1, 2))
    assert not choice.channels_last and choice.measured == {
        "contiguous": 40.0,
        "channels_last": 42.0,
    }
    assert choice.timed == {2: 40.0, 1: 44.0}
    # a choice made at a pinned count is not what a run that may choose its count reuses
    pinned = choose_layout(model, data, training, CPU, key="pinned", counts=(1,))
    assert pinned.by == "measured" and asked[-1] == (1,)
    free = choose_layout(model, data, training, CPU, key="pinned", counts=(1, 2))
    assert free.by == "measured" and asked[-1] == (1, 2)
    # the real timing: every (count, layout) pair, estimates in ms per epoch
    real = layout.time_layouts(model, data, training, (1, 2))
    assert set(real) == set(timed) and all(ms > 0 for ms in real.values())
    assert torch.get_num_threads() == 2


@pytest.mark.usefixtures("two_threads")
def test_a_long_step_times_both_layouts_at_torchs_count_only(monkeypatch):
    monkeypatch.setattr(threads_module, "LONG_STEP_SECONDS", 0.0)
    spec, model, data = conv_model_and_data()
    timed = layout.time_layouts(model, data, spec.training_or_default, (1, 2))
    assert set(timed) == {(2, False), (2, True)}
    assert (timed.waited is not None) == (threads_module.run_queue_delays() is not None)


def test_nothing_is_timed_where_the_model_the_setting_a_resume_or_the_device_decides(
    monkeypatch,
):
    monkeypatch.setattr(layout, "time_layouts", None)  # calling it would raise
    spec, model, data = conv_model_and_data()
    training = spec.training_or_default
    mlp = build_sequential(load_spec(tiny_mlp(64, 10)))
    assert choose_layout(mlp, data, training, CPU, key="k") == LayoutChoice(
        False, "no conv2d"
    )
    assert choose_layout(mlp, data, training, CPU, key="k").describe() == ""
    for setting in (True, False):
        pinned = training.model_copy(update={"channels_last": setting})
        assert choose_layout(model, data, pinned, CPU, key="k") == LayoutChoice(
            setting, "setting"
        )
        # the setting wins over the checkpoint's layout (values do not depend on it)
        assert choose_layout(
            model, data, pinned, CPU, key="k", resumed=not setting
        ) == LayoutChoice(setting, "setting")
    assert choose_layout(model, data, training, CPU, key="k", resumed=True) == (
        LayoutChoice(True, "resumed")
    )
    cuda = choose_layout(model, data, training, torch.device("cuda"), key="k")
    assert (cuda.channels_last, cuda.by) == (False, "device")
    ddp = choose_layout(model, data, training, CPU, key="k", distributed=True)
    assert (ddp.channels_last, ddp.by) == (False, "distributed")
    assert "training.channels_last" in LayoutChoice(False, "setting").describe()


def test_a_model_in_channels_last_is_the_same_function():
    spec, model, data = conv_model_and_data()
    other = build_sequential(spec)
    other.load_state_dict(model.state_dict())
    apply_layout(other, LayoutChoice(True, "setting"))
    # the second convolution (6 channels in: with one channel both layouts are alike)
    conv = [m for m in other.modules() if isinstance(m, torch.nn.Conv2d)][1]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()  # the layout did change
    x = data.x_train[:16]
    model.eval()
    other.eval()
    assert torch.allclose(model(x), other(x), atol=1e-5)
    # the same gradients, to rounding (in eval mode: a dropout mask over a channels-last
    # tensor is drawn in memory order, so one seed drops other units in each layout)
    for net in (model, other):
        net(x).logsumexp(1).sum().backward()
    for (name, a), b in zip(model.named_parameters(), other.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5), name


def test_a_channels_last_run_checkpoints_in_the_default_layout_and_resumes_exactly(
    tmp_path,
):
    spec = load_spec(conv_spec(epochs=3, channels_last=True))
    whole = train_spec(spec, out_dir=tmp_path / "whole", quiet=True)
    assert whole["channels_last"] == {"chosen": True, "by": "setting", "measured": {}}
    assert "channels last: set by training.channels_last" in whole["device"]
    payload = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    assert payload["channels_last"] is True
    assert all(value.is_contiguous() for value in payload["model"].values())
    assert safetensors_bytes(payload)  # safetensors takes contiguous tensors only
    # interrupted after epoch 2 and resumed without the setting: the checkpoint's layout
    train_spec(
        load_spec(conv_spec(epochs=2, channels_last=True)),
        out_dir=tmp_path / "split",
        quiet=True,
    )
    resumed = train_spec(
        load_spec(conv_spec(epochs=3)),
        out_dir=tmp_path / "split",
        resume=True,
        quiet=True,
    )
    assert resumed["channels_last"]["by"] == "resumed"
    assert resumed["channels_last"]["chosen"] is True
    assert rows_without_seconds(tmp_path / "split" / "metrics.csv") == (
        rows_without_seconds(tmp_path / "whole" / "metrics.csv")
    )
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_before_the_setting_resumes_in_the_default_layout(tmp_path):
    out = tmp_path / "run"
    train_spec(load_spec(conv_spec(epochs=1)), out_dir=out, quiet=True)
    payload = torch.load(out / "last.pt", weights_only=True)
    del payload["channels_last"]  # as an earlier nnspec wrote it
    torch.save(payload, out / "last.pt")
    resumed = train_spec(
        load_spec(conv_spec(epochs=2)), out_dir=out, resume=True, quiet=True
    )
    assert resumed["channels_last"] == {
        "chosen": False,
        "by": "resumed",
        "measured": {},
    }


def test_a_model_without_convolutions_records_no_layout(tmp_path):
    summary = train_spec(
        load_spec(tiny_mlp(64, 10, epochs=1)), out_dir=tmp_path / "r", quiet=True
    )
    assert summary["channels_last"] is None and "channels" not in summary["device"]
    assert "channels_last" not in torch.load(
        tmp_path / "r" / "last.pt", weights_only=True
    )


@pytest.mark.usefixtures("two_threads")
def test_a_model_whose_steps_fail_is_not_timed_and_fit_says_why(tmp_path):
    # scores for 3 classes on labels of 10: the timed steps fail; the run's own check explains
    bad = conv_spec(epochs=1)
    bad["layers"][-1] = {"linear": 3}
    spec, _, data = conv_model_and_data()
    model = build_sequential(load_spec(bad))
    data.y_train = data.y_train + 7  # labels 7..9
    untimed = choose_layout(model, data, spec.training_or_default, CPU, key="bad")
    assert untimed == LayoutChoice(False, "untimed")
    assert choose_threads(model, data, spec.training_or_default, CPU, key="bad").by == (
        "untimed"
    )
    with pytest.raises(UserError, match="class"):
        train_spec(load_spec(bad), out_dir=tmp_path / "r", quiet=True)


def test_choices_are_remembered_by_what_a_spec_trains_not_how():
    base = conv_spec()
    how = conv_spec(
        epochs=9,
        threads=1,
        channels_last=False,
        compile=True,
        checkpoint_seconds=3,
        loading={"mode": "stream"},
    )
    assert choice_key(load_spec(base)) == choice_key(load_spec(how))
    other = conv_spec(optimizer={"type": "adam", "lr": 0.02})
    assert choice_key(load_spec(base)) != choice_key(load_spec(other))


@pytest.mark.usefixtures("two_threads")
def test_a_thread_count_timed_on_its_own_is_timed_in_the_layout_it_trains_in(
    monkeypatch,
):
    # one input channel: its channels-last weight is also "contiguous" by strides, so the
    # layout is the one the run says, not one read off the weights
    spec, model, data = conv_model_and_data()
    apply_layout(model, LayoutChoice(True, "setting"))
    asked = []

    def time_epochs(_model, _data, _training, settings):
        asked.append(settings)
        return {setting: 10.0 for setting in settings}

    monkeypatch.setattr(threads_module, "time_epochs", time_epochs)
    training = spec.training_or_default
    choose_threads(model, data, training, CPU, key="cl", channels_last=True)
    choose_threads(model, data, training, CPU, key="default")
    assert asked == [[(2, True), (1, True)], [(2, False), (1, False)]]
