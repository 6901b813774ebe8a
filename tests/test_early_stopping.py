"""Early stopping semantics, tested with tables of values and no model at all."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.training import EarlyStoppingConfig
from runtime.training.early_stopping import EarlyStopping


def run(values, **kwargs) -> tuple[int | None, EarlyStopping]:
    """Return (the epoch at which evaluate says stop, or None) and the stopper after the run."""
    stopper = EarlyStopping(**kwargs)
    for epoch, value in enumerate(values, start=1):
        stop, reason = stopper.evaluate(value)
        assert (reason is not None) == stop
        if stop:
            return epoch, stopper
    return None, stopper


NAN = math.nan

# (values, patience, min_delta, min_delta_mode, monitor, mode, expected stop epoch, expected best epoch)
TABLE = [
    # a plateau: the best is epoch 3, three epochs without improvement stop at 6
    ([1.0, 0.9, 0.8, 0.8, 0.8, 0.8, 0.1], 3, 0.0, "abs", "val_loss", None, 6, 3),
    # keeps improving: never stops
    ([1.0, 0.9, 0.8, 0.7], 2, 0.0, "abs", "val_loss", None, None, 4),
    # ties never improve: best stays the first epoch
    ([0.5, 0.5, 0.5, 0.5], 2, 0.0, "abs", "val_loss", None, 3, 1),
    # a worse value then a new best resets the count
    ([1.0, 1.1, 0.9, 1.2, 1.3, 1.4], 3, 0.0, "abs", "val_loss", None, 6, 3),
    # min_delta abs: 0.75 beats 1.0 by exactly 0.25, which is not MORE than 0.25
    ([1.0, 0.75, 0.5, 0.5], 2, 0.25, "abs", "val_loss", None, None, 3),
    ([1.0, 0.75, 0.75, 0.625], 2, 0.25, "abs", "val_loss", None, 3, 1),
    # min_delta rel: needs to beat best by more than 10% of |best|
    ([1.0, 0.95, 0.91, 0.89, 0.85], 3, 0.1, "rel", "val_loss", None, None, 4),
    ([1.0, 0.95, 0.92, 0.91], 3, 0.1, "rel", "val_loss", None, 4, 1),
    # mode inferred as max for accuracy
    ([0.5, 0.6, 0.7, 0.65, 0.7, 0.69], 3, 0.0, "abs", "val_accuracy", None, 6, 3),
    # mode written out: max on a loss monitor (odd but allowed)
    ([0.5, 0.4, 0.3], 2, 0.0, "abs", "val_loss", "max", 3, 1),
    # rel in max mode
    ([0.5, 0.54, 0.52, 0.6], 2, 0.1, "rel", "val_accuracy", None, 3, 1),
    ([0.5, 0.54, 0.56, 0.6, 0.6, 0.7], 2, 0.1, "rel", "val_accuracy", None, 5, 3),
    # patience 0 stops at the first epoch that does not improve, like patience 1
    ([1.0, 0.9, 0.95], 0, 0.0, "abs", "val_loss", None, 3, 2),
    ([1.0, 0.9, 0.95], 1, 0.0, "abs", "val_loss", None, 3, 2),
    # NaN never improves, and counts as an epoch without improvement
    ([1.0, NAN, NAN], 2, 0.0, "abs", "train_loss", None, 3, 1),
    ([NAN, 1.0, 0.5], 2, 0.0, "abs", "val_loss", None, None, 3),
    # patience None never stops but still tracks the best
    ([1.0, 2.0, 3.0, 4.0, 5.0], None, 0.0, "abs", "val_loss", None, None, 1),
]


@pytest.mark.parametrize(
    "values, patience, min_delta, delta_mode, monitor, mode, stop_epoch, best_epoch",
    TABLE,
)
def test_stop_and_best_epoch_table(
    values, patience, min_delta, delta_mode, monitor, mode, stop_epoch, best_epoch
):
    stopped, stopper = run(
        values,
        monitor=monitor,
        mode=mode,
        patience=patience,
        min_delta=min_delta,
        min_delta_mode=delta_mode,
    )
    assert stopped == stop_epoch
    assert stopper.best_epoch == best_epoch
    assert stopper.best == values[best_epoch - 1]


def test_improved_flag_follows_each_epoch():
    stopper = EarlyStopping(patience=5)
    flags = []
    for value in [1.0, 0.9, 0.95, 0.9, 0.5]:
        stopper.evaluate(value)
        flags.append(stopper.improved)
    assert flags == [True, True, False, False, True]


def test_reason_names_the_monitor_the_wait_and_the_best():
    stopper = EarlyStopping(monitor="val_accuracy", patience=2)
    stopper.evaluate(0.5)
    stopper.evaluate(0.4)
    stop, reason = stopper.evaluate(0.45)
    assert stop
    assert reason == "val_accuracy did not improve for 2 epochs (best 0.5 at epoch 1)"


@settings(max_examples=200, derandomize=True, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=30
    ),
    patience=st.integers(min_value=0, max_value=6),
)
def test_stops_exactly_patience_epochs_after_the_best(values, patience):
    stopped, stopper = run(values, patience=patience)
    if stopped is not None:
        assert stopped == stopper.best_epoch + max(patience, 1)
        assert all(v >= stopper.best for v in values[stopper.best_epoch : stopped])
    else:
        assert len(values) - stopper.best_epoch < max(patience, 1)
    assert stopper.best == min(values[: stopped or len(values)])


@settings(max_examples=100, derandomize=True, deadline=None)
@given(
    values=st.lists(st.floats(min_value=0, max_value=1), min_size=2, max_size=20),
    cut=st.integers(min_value=1, max_value=19),
)
def test_state_dict_round_trip_decides_like_an_uninterrupted_run(values, cut):
    cut = min(cut, len(values) - 1)
    kwargs = dict(
        monitor="val_accuracy", patience=3, min_delta=0.01, min_delta_mode="rel"
    )
    whole = EarlyStopping(**kwargs)
    expected = [whole.evaluate(v) for v in values]
    first = EarlyStopping(**kwargs)
    got = [first.evaluate(v) for v in values[:cut]]
    second = EarlyStopping(**kwargs)
    second.load_state_dict(first.state_dict())
    got += [second.evaluate(v) for v in values[cut:]]
    assert got == expected
    assert second.state_dict() == whole.state_dict()


def test_state_of_another_monitor_is_refused():
    state = EarlyStopping(monitor="val_loss").state_dict()
    with pytest.raises(ValueError, match="monitors val_loss"):
        EarlyStopping(monitor="val_accuracy").load_state_dict(state)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"monitor": "val_acc"},
            "`monitor` can be val_loss, val_accuracy, train_loss; got 'val_acc'",
        ),
        ({"mode": "up"}, "`mode` can be min or max; got 'up'"),
        ({"patience": -1}, "`patience` must be an integer >= 0"),
        ({"patience": 2.5}, "`patience` must be an integer >= 0"),
        ({"patience": True}, "`patience` must be an integer >= 0"),
        ({"min_delta": -0.1}, "`min_delta` must be a number >= 0"),
        ({"min_delta": math.nan}, "`min_delta` must be a number >= 0"),
        ({"min_delta": math.inf}, "`min_delta` must be finite"),
        ({"min_delta_mode": "pct"}, "`min_delta_mode` can be abs or rel; got 'pct'"),
    ],
)
def test_arguments_are_checked_at_construction(kwargs, message):
    with pytest.raises(ValueError) as info:
        EarlyStopping(**kwargs)
    assert message in str(info.value)


def test_from_config_reads_the_spec_section_and_none_never_stops():
    config = EarlyStoppingConfig(
        monitor="val_accuracy", patience=4, min_delta=0.5, min_delta_mode="rel"
    )
    stopper = EarlyStopping.from_config(config)
    assert (
        stopper.monitor,
        stopper.mode,
        stopper.patience,
        stopper.min_delta,
        stopper.min_delta_mode,
    ) == ("val_accuracy", "max", 4, 0.5, "rel")
    never = EarlyStopping.from_config(None)
    assert (never.monitor, never.mode, never.patience) == ("val_loss", "min", None)
    assert run([1.0] * 50, patience=None)[0] is None
