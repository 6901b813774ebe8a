"""`--resume`'s comparison of the checkpoint's spec with the spec now (runtime.training.spec_diff)."""

from __future__ import annotations

from runtime.training.spec_diff import spec_differences


def test_a_changed_value_is_reported_with_both_values():
    assert spec_differences({"a": {"b": 1}}, {"a": {"b": 2}}) == [
        "a.b: 1 in the checkpoint, 2 now"
    ]


def test_a_key_newer_than_the_checkpoint_and_null_is_the_same_spec():
    assert spec_differences({"training": {}}, {"training": {"augment": None}}) == []
    assert spec_differences({"training": {}}, {"training": {"augment": {"x": 1}}}) == [
        "training.augment: absent in the checkpoint, {'x': 1} now"
    ]


def test_a_newer_key_at_what_older_specs_meant_is_the_same_spec():
    older = {"training": {"data": {"dataset": "csv"}}}
    assert (
        spec_differences(
            older, {"training": {"label_smoothing": 0.0, **older["training"]}}
        )
        == []
    )
    assert (
        spec_differences(
            older, {"training": {"data": {"dataset": "csv", "standardize": False}}}
        )
        == []
    )


def test_a_newer_key_that_changes_what_the_run_did_is_reported():
    # csv features were not standardized before `standardize` existed
    older = {"training": {"data": {"dataset": "csv"}}}
    now = {"training": {"data": {"dataset": "csv", "standardize": True}}}
    assert spec_differences(older, now) == [
        "training.data.standardize: absent in the checkpoint (so False), True now"
    ]
    assert spec_differences(
        {"training": {}}, {"training": {"label_smoothing": 0.1}}
    ) == ["training.label_smoothing: absent in the checkpoint (so 0.0), 0.1 now"]


def test_ignored_paths_are_skipped():
    assert spec_differences({"a": 1, "b": 1}, {"a": 2, "b": 1}, ignore={"a"}) == []
