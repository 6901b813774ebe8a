"""`training.data`, `.optimizer` and `.scheduler` are tagged unions: each data set, optimizer and
schedule takes only the arguments it reads, and any other is a located error naming those it takes.

The variants are read from the models, so a new data set, optimizer or schedule is tested at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import jsonschema
import pytest
import yaml
from spec_folder import SPEC_FILES

from compiler import SpecError, load_spec
from compiler.load import read_document
from compiler.schema import json_schema
from compiler.training import (
    AdamOptimizer,
    DigitsData,
    OptimizerConfig,
    TrainingConfig,
)

ROOT = Path(__file__).resolve().parent.parent
SPECS = SPEC_FILES

TAG_KEYS = {"data": "dataset", "optimizer": "type", "scheduler": "type"}

# What the flat sections of before gave every argument when it was left out: every variant keeps
# these defaults, so a spec means what it meant.
FORMER_DEFAULTS = {
    "val_fraction": 0.2,
    "data_dir": "data",
    "download": True,
    "path": None,
    "val_path": None,
    "test_path": None,
    "target": None,
    "features": None,
    "x_key": "x",
    "y_key": "y",
    "test_fraction": 0.0,
    "noise": 0.0,
    # new with csv standardization (issue 17), on by default: a csv spec's features now train
    # standardized, as the issue asks
    "standardize": True,
    "lr": 0.001,
    "weight_decay": 0.0,
    "momentum": 0.0,
    "nesterov": False,
    "betas": [0.9, 0.999],
    "step_size": 30,
    "gamma": 0.1,
    "t_max": None,
    "eta_min": 0.0,
    "factor": 0.1,
    "patience": 5,
    "max_lr": None,
    "pct_start": 0.3,
    "anneal_strategy": "cos",
    "div_factor": 25.0,
    "final_div_factor": 1e4,
}

# A valid value, other than the default, of each argument (a new argument needs one here).
OTHER_VALUES = {
    "val_fraction": 0.25,
    "data_dir": "elsewhere",
    "download": False,
    "path": "data/own.file",
    "val_path": "data/own.val",
    "test_path": "data/own.test",
    "target": "label",
    "features": ["a", "b"],
    "x_key": "samples",
    "y_key": "labels",
    "test_fraction": 0.1,
    "noise": 0.5,
    "standardize": False,
    "lr": 0.05,
    "weight_decay": 0.01,
    "momentum": 0.8,
    "nesterov": True,
    "betas": [0.5, 0.99],
    "step_size": 3,
    "gamma": 0.5,
    "t_max": 7,
    "eta_min": 0.0001,
    "factor": 0.5,
    "patience": 2,
    "max_lr": 0.05,
    "pct_start": 0.25,
    "anneal_strategy": "linear",
    "div_factor": 10.0,
    "final_div_factor": 100.0,
}


def models_in(annotation: Any) -> list[type]:
    """Return the pydantic models an annotation names (through Optional and Annotated)."""
    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return [annotation]
    return [m for arg in get_args(annotation) for m in models_in(arg)]


def variants(section: str) -> list[tuple[str, type]]:
    """Return (tag, model) of every variant of a training section, read from TrainingConfig."""
    key = TAG_KEYS[section]
    return [
        (tag, model)
        for model in models_in(TrainingConfig.model_fields[section].annotation)
        for tag in get_args(model.model_fields[key].annotation)
    ]


VARIANTS = [(section, *pair) for section in TAG_KEYS for pair in variants(section)]
VARIANT_IDS = [f"{section}-{tag}" for section, tag, _ in VARIANTS]


def arguments(section: str, model: type) -> list[str]:
    """Return the arguments of a variant in order, its tag left out."""
    return [k for k in model.model_fields if k != TAG_KEYS[section]]


def smallest(section: str, tag: str, model: type) -> dict:
    """Return the smallest valid body of a variant: its tag and what it needs (a file's path,
    a csv file's target)."""
    body: dict[str, Any] = {TAG_KEYS[section]: tag}
    for needed in ("path", "target"):
        if needed in model.model_fields:
            body[needed] = OTHER_VALUES[needed]
    return body


def inapplicable(section: str, model: type) -> str:
    """Return an argument that another variant of the section takes and this one does not."""
    own = set(model.model_fields)
    others = [
        arg
        for _, other in variants(section)
        for arg in arguments(section, other)
        if arg not in own
    ]
    assert others, f"every argument of {section} applies to {model.__name__}"
    return others[0]


def spec_text(section: str, body: dict) -> str:
    """Return a YAML spec whose training section holds `body` as `section`, one key a line."""
    spec = {
        "name": "M",
        "input": [1, 8, 8],
        "layers": ["flatten", {"linear": 10}],
        "training": {"epochs": 2, section: body},
    }
    return yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)


def line_of(text: str, key: str) -> int:
    return next(
        i
        for i, line in enumerate(text.splitlines(), 1)
        if line.strip().startswith(f"{key}:")
    )


# -- refused: an argument the variant does not read -------------------------------------------------


@pytest.mark.parametrize("section,tag,model", VARIANTS, ids=VARIANT_IDS)
def test_an_inapplicable_argument_is_a_located_error_naming_the_arguments_that_apply(
    section, tag, model, tmp_path
):
    wrong = inapplicable(section, model)
    text = spec_text(
        section, {**smallest(section, tag, model), wrong: OTHER_VALUES[wrong]}
    )
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    expected = (
        f"{tag} takes no {wrong}; its arguments are "
        f"{', '.join(arguments(section, model))}"
    )
    assert str(caught.value) == (
        f"{path}:{line_of(text, wrong)}: training.{section}.{wrong}: {expected}"
    )


@pytest.mark.parametrize(
    "section,body,expected",
    [
        (
            "optimizer",
            {"momentum": 0.9},
            "training.optimizer.momentum: adam (the default type) takes no momentum; its "
            "arguments are lr, weight_decay, betas",
        ),
        (
            "data",
            {"x_key": "a"},
            "training.data.x_key: digits (the default dataset) takes no x_key; its "
            "arguments are val_fraction, test_fraction, noise",
        ),
    ],
)
def test_with_the_tag_left_out_the_message_says_which_variant_was_taken(
    section, body, expected
):
    with pytest.raises(SpecError) as caught:
        load_spec(yaml.safe_load(spec_text(section, body)))
    (problem,) = caught.value.problems
    assert f"{problem.path}: {problem.message}" == expected


def test_a_misspelled_argument_gets_a_did_you_mean_among_the_variants_arguments():
    with pytest.raises(SpecError) as caught:
        load_spec(yaml.safe_load(spec_text("optimizer", {"type": "sgd", "mom": 0.9})))
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == (
        "training.optimizer.mom",
        "sgd takes no mom (did you mean 'momentum'?); its arguments are lr, "
        "weight_decay, momentum, nesterov",
    )


@pytest.mark.parametrize("section", TAG_KEYS)
def test_an_unknown_tag_says_what_it_can_be_with_a_did_you_mean(section):
    tags = [tag for tag, _ in variants(section)]
    typo = tags[0][:-1] + tags[0][-1] * 2  # adam -> adamm
    key = TAG_KEYS[section]
    with pytest.raises(SpecError) as caught:
        load_spec(yaml.safe_load(spec_text(section, {key: typo})))
    (problem,) = caught.value.problems
    listed = ", ".join(f"'{t}'" for t in tags[:-1]) + f" or '{tags[-1]}'"
    assert (problem.path, problem.message) == (
        f"training.{section}.{key}",
        f"must be one of {listed}, got '{typo}' (did you mean '{tags[0]}'?)",
    )


def test_a_scheduler_without_its_type_lists_the_types():
    with pytest.raises(SpecError) as caught:
        load_spec(yaml.safe_load(spec_text("scheduler", {"t_max": 3})))
    (problem,) = caught.value.problems
    assert (problem.path, problem.message) == (
        "training.scheduler.type",
        "required, but missing; one of 'step', 'cosine', 'plateau', 'one_cycle'",
    )


def test_a_misspelled_tag_key_is_named_as_the_misspelling():
    with pytest.raises(SpecError) as caught:
        load_spec(yaml.safe_load(spec_text("scheduler", {"typ": "cosine"})))
    (problem,) = caught.value.problems
    assert problem.path == "training.scheduler.typ"
    assert problem.message.startswith("unknown key 'typ' (did you mean 'type'?)")


def test_sgd_nesterov_still_needs_momentum():
    with pytest.raises(SpecError) as caught:
        load_spec(
            yaml.safe_load(spec_text("optimizer", {"type": "sgd", "nesterov": True}))
        )
    assert [(p.path, p.message) for p in caught.value.problems] == [
        ("training.optimizer", "nesterov needs momentum > 0")
    ]


# -- kept: every valid form, with the values and defaults it had ------------------------------------


@pytest.mark.parametrize("section,tag,model", VARIANTS, ids=VARIANT_IDS)
def test_each_variant_loads_with_the_former_defaults(section, tag, model):
    body = smallest(section, tag, model)
    training = load_spec(yaml.safe_load(spec_text(section, body))).training
    loaded = getattr(training, section)
    assert type(loaded) is model and getattr(loaded, TAG_KEYS[section]) == tag
    for arg in arguments(section, model):
        expected = body.get(arg, FORMER_DEFAULTS[arg])
        assert getattr(loaded, arg) == expected, arg


@pytest.mark.parametrize("section,tag,model", VARIANTS, ids=VARIANT_IDS)
def test_each_variant_keeps_every_argument_it_is_given(section, tag, model):
    body = {
        **smallest(section, tag, model),
        **{arg: OTHER_VALUES[arg] for arg in arguments(section, model)},
    }
    # an image folder's val_path / test_path replace the fractions (both given: refused)
    for path_arg, fraction in (
        ("val_path", "val_fraction"),
        ("test_path", "test_fraction"),
    ):
        if path_arg in body:
            body.pop(fraction)
    loaded = getattr(
        load_spec(yaml.safe_load(spec_text(section, body))).training, section
    )
    for arg, value in body.items():
        assert getattr(loaded, arg) == value, arg


def test_tags_left_out_are_the_former_defaults():
    assert TrainingConfig().data == DigitsData()
    assert TrainingConfig().optimizer == AdamOptimizer()
    assert TrainingConfig().scheduler is None
    training = TrainingConfig.model_validate(
        {"data": {"val_fraction": 0.1}, "optimizer": {"lr": 0.01}}
    )
    assert (training.data.dataset, training.data.val_fraction) == ("digits", 0.1)
    assert (training.optimizer.type, training.optimizer.lr) == ("adam", 0.01)


def test_a_section_is_still_built_by_its_former_name():
    sgd = OptimizerConfig(type="sgd", lr=0.05, momentum=0.9, nesterov=True)
    assert (sgd.type, sgd.lr, sgd.momentum, sgd.nesterov) == ("sgd", 0.05, 0.9, True)
    assert OptimizerConfig() == AdamOptimizer()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_every_example_spec_keeps_what_its_training_section_says(path):
    written = read_document(path).data.get("training") or {}
    training = load_spec(path).training_or_default
    for section in TAG_KEYS:
        for arg, value in (written.get(section) or {}).items():
            assert getattr(getattr(training, section), arg) == value, (section, arg)


# -- the JSON Schema says the same ----------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> dict:
    return json_schema()


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("section,tag,model", VARIANTS, ids=VARIANT_IDS)
def test_the_schema_accepts_each_variant_and_refuses_an_inapplicable_argument(
    section, tag, model, validator
):
    body = smallest(section, tag, model)
    full = {
        **body,
        **{arg: OTHER_VALUES[arg] for arg in arguments(section, model)},
    }
    wrong = inapplicable(section, model)
    assert validator.is_valid(yaml.safe_load(spec_text(section, body)))
    assert validator.is_valid(yaml.safe_load(spec_text(section, full)))
    assert not validator.is_valid(
        yaml.safe_load(spec_text(section, {**body, wrong: OTHER_VALUES[wrong]}))
    )


@pytest.mark.parametrize("section,tag,model", VARIANTS, ids=VARIANT_IDS)
def test_the_schema_holds_each_variant_with_only_its_own_properties(
    section, tag, model, schema
):
    definition = schema["$defs"][model.__name__]
    assert list(definition["properties"]) == list(model.model_fields)
    assert definition["properties"][TAG_KEYS[section]]["const"] == tag
    assert definition["additionalProperties"] is False


def test_the_schema_accepts_the_sections_with_their_tags_left_out(validator):
    assert validator.is_valid(yaml.safe_load(spec_text("optimizer", {"lr": 0.01})))
    assert validator.is_valid(yaml.safe_load(spec_text("data", {"noise": 0.1})))
    assert not validator.is_valid(yaml.safe_load(spec_text("scheduler", {"t_max": 3})))


# -- the CLI ----------------------------------------------------------------------------------------


def test_nnspec_validate_exits_2_with_the_messages_and_no_traceback(tmp_path):
    path = tmp_path / "x.yaml"
    text = (
        "name: M\ninput: [1, 8, 8]\nlayers: [flatten, {linear: 10}]\ntraining:\n"
        "  data: {dataset: digits, x_key: a}\n"
        "  optimizer:\n    type: adam\n    momentum: 0.9\n"
        "  scheduler: {type: cosine, step_size: 3}\n"
    )
    path.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "runtime", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert (result.stdout + result.stderr).splitlines() == [
        f"{path}:5: training.data.x_key: digits takes no x_key; its arguments are "
        "val_fraction, test_fraction, noise",
        f"{path}:8: training.optimizer.momentum: adam takes no momentum; its arguments are "
        "lr, weight_decay, betas",
        f"{path}:9: training.scheduler.step_size: cosine takes no step_size; its "
        "arguments are t_max, eta_min",
    ]


# -- the runtime reads every argument a variant takes ------------------------------------------------


@pytest.mark.parametrize(
    "section,tag,model",
    [v for v in VARIANTS if v[0] == "optimizer"],
    ids=[i for i in VARIANT_IDS if i.startswith("optimizer")],
)
def test_every_optimizer_argument_reaches_torch(section, tag, model):
    from torch import nn

    from runtime.training.optim import build_optimizer

    settings = {arg: OTHER_VALUES[arg] for arg in arguments(section, model)}
    optimizer = build_optimizer(nn.Linear(2, 2), model(type=tag, **settings))
    group = optimizer.param_groups[0]
    for arg, value in settings.items():
        got = group[arg]
        assert (list(got) if isinstance(got, tuple) else got) == value, arg


SCHEDULER_ATTRIBUTES = {  # the torch attribute of each scheduler argument
    "step_size": "step_size",
    "gamma": "gamma",
    "t_max": "T_max",
    "eta_min": "eta_min",
    "factor": "factor",
    "patience": "patience",
    # one_cycle keeps its rates in the optimizer's param group and its phases' ends
    "max_lr": lambda s: s.optimizer.param_groups[0]["max_lr"],
    "pct_start": lambda s: (s._schedule_phases[0]["end_step"] + 1) / s.total_steps,
    "anneal_strategy": "_anneal_func_type",
    "div_factor": lambda s: s.optimizer.param_groups[0]["max_lr"]
    / s.optimizer.param_groups[0]["initial_lr"],
    "final_div_factor": lambda s: s.optimizer.param_groups[0]["initial_lr"]
    / s.optimizer.param_groups[0]["min_lr"],
}


@pytest.mark.parametrize(
    "section,tag,model",
    [v for v in VARIANTS if v[0] == "scheduler"],
    ids=[i for i in VARIANT_IDS if i.startswith("scheduler")],
)
def test_every_scheduler_argument_reaches_torch(section, tag, model):
    import torch

    from runtime.training.optim import build_scheduler

    settings = {arg: OTHER_VALUES[arg] for arg in arguments(section, model)}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build_scheduler(optimizer, model(type=tag, **settings), 10, "min")
    for arg, value in settings.items():
        where = SCHEDULER_ATTRIBUTES[arg]
        got = getattr(scheduler, where) if isinstance(where, str) else where(scheduler)
        assert got == (pytest.approx(value) if isinstance(value, float) else value), arg


class _Read(Exception):
    """Raised by a stand-in reader with what it was given."""


READERS = {  # where each data set is read: the module and function load_data calls
    "digits": ("runtime.data.digits", "read_digits"),
    "mnist": ("runtime.data.vision", "read_torchvision"),
    "fashion_mnist": ("runtime.data.vision", "read_torchvision"),
    "cifar10": ("runtime.data.vision", "read_torchvision"),
    "csv": ("runtime.data.csv_file", "read_csv"),
    "npz": ("runtime.data.npz_file", "read_npz"),
    "image_folder": ("runtime.data.image_folder", "read_image_folder"),
}
SPLIT_ARGUMENTS = (
    "val_fraction",
    "test_fraction",
    "noise",
    "standardize",
)  # read by the split, the loop and runtime.data.preprocess


@pytest.mark.parametrize(
    "section,tag,model",
    [v for v in VARIANTS if v[0] == "data"],
    ids=[i for i in VARIANT_IDS if i.startswith("data")],
)
def test_every_data_set_argument_reaches_its_reader(section, tag, model, monkeypatch):
    import importlib

    from runtime.data.load import load_data

    def reader(*args, **kwargs):
        raise _Read(args, kwargs)

    module, name = READERS[tag]
    monkeypatch.setattr(importlib.import_module(module), name, reader)
    own = [arg for arg in arguments(section, model) if arg not in SPLIT_ARGUMENTS]
    body = {
        **smallest(section, tag, model),
        **{arg: OTHER_VALUES[arg] for arg in own},
    }
    training = TrainingConfig.model_validate({"data": body})
    with pytest.raises(_Read) as caught:
        load_data(training, [1, 8, 8])
    given, named = caught.value.args
    passed = [*given, *named.values()]
    for arg in own:
        assert OTHER_VALUES[arg] in passed, arg
