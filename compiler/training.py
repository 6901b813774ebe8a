"""The `training` section of a spec: data, task, optimizer, regularization, early stopping.

`data`, `optimizer` and `scheduler` are tagged unions: one model per data set (`dataset`),
optimizer and schedule (`type`), each holding only the arguments that variant reads, so an
argument that would do nothing (`momentum` for adam, `x_key` for digits) is a located error that
names the arguments that do apply, not a setting silently ignored.
"""

import functools
import math
import re
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from .errors import Problem, format_path
from .layers.base import MAX_SIZE, Bool, NonNegInt, PosInt

NonNegFloat = Annotated[float, Field(ge=0.0, strict=True)]
PosFloat = Annotated[float, Field(gt=0.0, strict=True)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0, strict=True)]
ValFraction = Fraction  # share of the training samples held out for validation
Text = Annotated[str, Field(strict=True, min_length=1, max_length=4096)]


def _no_nul(value: str) -> str:
    if "\0" in value:
        raise ValueError(
            f"a path cannot hold a NUL character (\\x00), got {value[:60]!r}; no file is "
            "named so"
        )
    return value


# a file or folder name: no operating system takes one with a NUL in it
PathText = Annotated[Text, AfterValidator(_no_nul)]
# share of the samples carved out first as the test split (digits, csv, npz)
TestFraction = Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]
# std of the Gaussian noise added to each training input (never to targets or validation):
# a denoising autoencoder with task reconstruction; 0 adds none
Noise = Annotated[float, Field(ge=0.0, le=1e6, strict=True)]


# the data section's keys that name files or folders (read from the spec file's folder)
DATA_PATH_KEYS = ("path", "val_path", "test_path")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def _tag_defaults_to(key: str, tag: str):
    """Return a before-validator that writes `key: tag` into a mapping that leaves `key` out."""

    def fill(value: Any) -> Any:
        if isinstance(value, dict) and key not in value:
            return {key: tag, **value}
        return value

    return BeforeValidator(fill)


# -- data -------------------------------------------------------------------------------------------
# Each data set lists its own arguments first, then the split and the noise that every one takes.


class DigitsData(_Section):
    """scikit-learn's 8x8 digits (ships with scikit-learn, needs no download)."""

    dataset: Literal["digits"] = "digits"
    val_fraction: ValFraction = 0.2
    test_fraction: TestFraction = 0.0
    noise: Noise = 0.0


class _TorchvisionData(_Section):
    """A torchvision data set, downloaded to `data_dir` on first use; it has its own test split."""

    dataset: str  # each data set's own name, a Literal in its class below
    data_dir: PathText = "data"
    download: Bool = True  # download when the files are missing
    val_fraction: ValFraction = 0.2
    # the runtime refuses anything but 0 (the data set has its own test split), as before
    test_fraction: TestFraction = 0.0
    noise: Noise = 0.0


class MnistData(_TorchvisionData):
    """torchvision's MNIST."""

    dataset: Literal["mnist"]


class FashionMnistData(_TorchvisionData):
    """torchvision's FashionMNIST."""

    dataset: Literal["fashion_mnist"]


class Cifar10Data(_TorchvisionData):
    """torchvision's CIFAR10."""

    dataset: Literal["cifar10"]


# `path` is required, but left out it gets a message that says what it is (not "required")
_NEEDS_PATH = ConfigDict(json_schema_extra={"required": ["dataset", "path"]})


def _check_path(data: "CsvData | NpzData | ImageFolderData") -> None:
    if data.path is None:
        what = (
            "the folder of class folders"
            if data.dataset == "image_folder"
            else "the file"
        )
        raise ValueError(f"dataset '{data.dataset}' needs `path`: {what} to read")


# several target columns (regression: y of shape (N, k)), each named once
TargetColumns = Annotated[list[Text | NonNegInt], Field(min_length=1, max_length=4096)]


class CsvData(_Section):
    """A csv file: a header row, feature columns (numbers, or names one-hot encoded) and a
    `target` column (or several, for regression)."""

    model_config = _NEEDS_PATH

    dataset: Literal["csv"]
    path: PathText | None = None  # relative: from the spec file's folder
    # the label column (name or index), or a list of columns for a regression of k values
    target: Text | NonNegInt | TargetColumns | None = None
    # feature columns (default: all but target); an empty list would read none
    features: Annotated[list[Text], Field(min_length=1)] | None = None
    # numeric features scaled by the training split's mean and std (kept in the checkpoint)
    standardize: Bool = True
    val_fraction: ValFraction = 0.2
    test_fraction: TestFraction = 0.0
    noise: Noise = 0.0

    @model_validator(mode="after")
    def _needs_path(self) -> "CsvData":
        _check_path(self)
        return self


class NpzData(_Section):
    """A NumPy archive: samples in `x_key`, labels in `y_key`."""

    model_config = _NEEDS_PATH

    dataset: Literal["npz"]
    path: PathText | None = None  # relative: from the spec file's folder
    x_key: Text = "x"  # the array of samples
    y_key: Text = "y"  # the array of labels
    val_fraction: ValFraction = 0.2
    test_fraction: TestFraction = 0.0
    noise: Noise = 0.0

    @model_validator(mode="after")
    def _needs_path(self) -> "NpzData":
        _check_path(self)
        return self


DEFAULT_VAL_FRACTION = 0.2


class ImageFolderData(_Section):
    """A folder of images, one sub-folder per class (torchvision's ImageFolder rules)."""

    model_config = _NEEDS_PATH

    dataset: Literal["image_folder"]
    path: PathText | None = None
    # image folders of the same classes kept apart as the validation / test split; left out,
    # those splits are cut from `path` by val_fraction / test_fraction
    val_path: PathText | None = None
    test_path: PathText | None = None
    val_fraction: ValFraction = DEFAULT_VAL_FRACTION
    test_fraction: TestFraction = 0.0
    noise: Noise = 0.0

    @model_validator(mode="after")
    def _needs_path(self) -> "ImageFolderData":
        _check_path(self)
        # (compared with the default, not "was it written": a checkpoint's spec writes them all)
        if self.val_path is not None and self.val_fraction != DEFAULT_VAL_FRACTION:
            raise ValueError(
                "val_path is the validation split, so val_fraction would do nothing: remove one"
            )
        if self.test_path is not None and self.test_fraction > 0:
            raise ValueError(
                "test_path is the test split, so test_fraction would do nothing: remove one"
            )
        return self


DataVariant = Union[
    DigitsData,
    MnistData,
    FashionMnistData,
    Cifar10Data,
    CsvData,
    NpzData,
    ImageFolderData,
]
Data = Annotated[
    DataVariant,
    Field(discriminator="dataset"),
    _tag_defaults_to("dataset", "digits"),
]

# -- optimizer --------------------------------------------------------------------------------------


class _Optimizer(_Section):
    """What every optimizer takes (torch.optim names)."""

    type: str  # each optimizer's own name, a Literal in its class below
    lr: PosFloat = 0.001
    weight_decay: NonNegFloat = 0.0  # decoupled in adamw, L2-in-gradient in sgd/adam


class SgdOptimizer(_Optimizer):
    """torch.optim.SGD."""

    type: Literal["sgd"]
    momentum: NonNegFloat = 0.0
    nesterov: Bool = False  # needs momentum > 0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "SgdOptimizer":
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov needs momentum > 0")
        return self


Betas = Annotated[
    list[Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]],
    Field(min_length=2, max_length=2),
]


class AdamOptimizer(_Optimizer):
    """torch.optim.Adam (the default optimizer)."""

    type: Literal["adam"] = "adam"
    betas: Betas = [0.9, 0.999]


class AdamWOptimizer(_Optimizer):
    """torch.optim.AdamW."""

    type: Literal["adamw"]
    betas: Betas = [0.9, 0.999]


OptimizerVariant = Union[SgdOptimizer, AdamOptimizer, AdamWOptimizer]
Optimizer = Annotated[
    OptimizerVariant,
    Field(discriminator="type"),
    _tag_defaults_to("type", "adam"),
]

# -- scheduler --------------------------------------------------------------------------------------


class StepScheduler(_Section):
    """torch's StepLR: the rate times `gamma` every `step_size` epochs."""

    type: Literal["step"]
    step_size: PosInt = 30
    gamma: PosFloat = 0.1


class CosineScheduler(_Section):
    """torch's CosineAnnealingLR, from `lr` down to `eta_min` over `t_max` epochs."""

    type: Literal["cosine"]
    t_max: PosInt | None = None  # default: epochs
    eta_min: NonNegFloat = 0.0


class PlateauScheduler(_Section):
    """torch's ReduceLROnPlateau, on the early-stopping monitor in its mode."""

    type: Literal["plateau"]
    factor: Annotated[float, Field(gt=0.0, lt=1.0, strict=True)] = 0.1
    patience: NonNegInt = 5


class OneCycleScheduler(_Section):
    """torch's OneCycleLR, stepped after every batch: up from `max_lr / div_factor` to `max_lr`
    over the first `pct_start` of the run's batches, then down to `max_lr / div_factor /
    final_div_factor` at its last batch."""

    type: Literal["one_cycle"]
    max_lr: PosFloat | None = None  # default: the optimizer's lr
    pct_start: Fraction = 0.3
    anneal_strategy: Literal["cos", "linear"] = "cos"
    div_factor: Annotated[float, Field(ge=1.0, strict=True)] = 25.0
    final_div_factor: Annotated[float, Field(ge=1.0, strict=True)] = 1e4


SchedulerVariant = Union[
    StepScheduler, CosineScheduler, PlateauScheduler, OneCycleScheduler
]
Scheduler = Annotated[
    SchedulerVariant,
    Field(discriminator="type"),
]


# Older code and tests build a section by its old name: `OptimizerConfig(type="sgd", lr=0.1)`.
def DataConfig(**settings: Any) -> DataVariant:  # noqa: N802
    """Return the data-set variant that `settings` name (digits when `dataset` is left out)."""
    return _adapter(Data).validate_python(settings)


def OptimizerConfig(**settings: Any) -> OptimizerVariant:  # noqa: N802
    """Return the optimizer variant that `settings` name (adam when `type` is left out)."""
    return _adapter(Optimizer).validate_python(settings)


def SchedulerConfig(**settings: Any) -> SchedulerVariant:  # noqa: N802
    """Return the schedule variant that `settings` name."""
    return _adapter(Scheduler).validate_python(settings)


def applicable_training(training: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of training-section data in which `data`, `optimizer` and `scheduler` keep only
    the arguments their variant takes.

    Checkpoints of nnspec before these sections were tagged unions carry every argument of the
    flat section (`momentum` beside adam, written with its default and ignored); what this drops
    had no effect on those runs, so they load with the same meaning.
    """
    out = dict(training)
    for key, union, tag, default in (
        ("data", DataVariant, "dataset", "digits"),
        ("optimizer", OptimizerVariant, "type", "adam"),
        ("scheduler", SchedulerVariant, "type", None),
    ):
        section = out.get(key)
        if not isinstance(section, dict):
            continue
        name = section.get(tag, default)
        for variant in typing.get_args(union):
            if name in typing.get_args(variant.model_fields[tag].annotation):
                out[key] = {
                    k: v for k, v in section.items() if k in variant.model_fields
                }
    return out


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


class RegularizationConfig(_Section):
    """Penalties added to the loss over weights (not biases, not norm parameters)."""

    l1: NonNegFloat = 0.0  # l1 * sum |w|
    l2: NonNegFloat = 0.0  # l2 * sum w^2 (apart from the optimizer's weight_decay)


def inferred_mode(monitor: str) -> str:
    """Return `max` for accuracy monitors and `min` for losses (the one rule for both)."""
    return "max" if monitor.endswith("accuracy") else "min"


class EarlyStoppingConfig(_Section):
    """When to stop: `patience` epochs after the best epoch of `monitor`."""

    monitor: Literal["val_loss", "val_accuracy", "train_loss"] = "val_loss"
    mode: Literal["min", "max"] | None = None  # None: max for accuracy, min for losses
    patience: NonNegInt = 10
    min_delta: NonNegFloat = 0.0
    min_delta_mode: Literal["abs", "rel"] = "abs"
    restore_best: Bool = True

    @property
    def resolved_mode(self) -> str:
        """Return the mode, inferred from the monitor when not written."""
        return self.mode if self.mode is not None else inferred_mode(self.monitor)


# -- loading ----------------------------------------------------------------------------------------

# size units: k, kb = 1000; kib = 1024 (and m, g, t alike); b or none = bytes
_UNITS = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgt", start=1):
    _UNITS.update({_letter: 1000**_power, _letter + "b": 1000**_power})
    _UNITS[_letter + "ib"] = 1024**_power
_SIZE = r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt](?:ib|b)?|b)?\s*$"


def _bytes(value: Any) -> Any:
    """Return a size written as "2GiB", "512MB" or "1.5 G" in bytes; other values unchanged."""
    if not isinstance(value, str) or value == "auto":
        return value
    found = re.match(_SIZE, value, flags=re.IGNORECASE)
    if found is None:
        raise ValueError(
            f"memory_budget is auto, a number of bytes, or a size such as 512MiB or 2GiB; "
            f"got {value[:40]!r}"
        )
    number, unit = found.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


MemoryBudget = Annotated[
    Union[Literal["auto"], Annotated[int, Field(ge=0, strict=True)]],
    BeforeValidator(_bytes),
]


class LoadingConfig(_Section):
    """How batches reach the model: from the data set in memory, or streamed from disk."""

    # auto: streamed when the data set takes more than memory_budget in memory; memory: always
    # in memory; stream: always streamed (batches read from disk by a DataLoader)
    mode: Literal["auto", "memory", "stream"] = "auto"
    # bytes the samples may take in memory; auto: half the memory this process may still
    # allocate (cgroup and ulimit -v counted); written as bytes or a size like 2GiB
    memory_budget: MemoryBudget = "auto"
    # DataLoader worker processes of a streamed data set; auto: up to 4 for image files
    # (decoding is the work), 0 for arrays, whose batch is one read
    workers: Union[Literal["auto"], Annotated[int, Field(ge=0, le=64, strict=True)]] = (
        "auto"
    )


class WarmupConfig(_Section):
    """A linear warmup of the learning rate over the first `epochs` or `steps` batches: batch k
    of it trains at the rate the schedule sets times start_factor + (1 - start_factor) * k / n.
    """

    epochs: PosInt | None = None  # the warmup's length in epochs (of batches)
    steps: PosInt | None = None  # or in batches (optimizer steps)
    start_factor: Annotated[float, Field(ge=0.0, lt=1.0, strict=True)] = 0.0

    @model_validator(mode="after")
    def _one_length(self) -> "WarmupConfig":
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(
                "warmup needs its length as `epochs` or as `steps` (batches), one of them"
            )
        return self


# one weight per class, in class order (index 0 first; names sorted, as the labels number them)
ClassWeightList = Annotated[list[PosFloat], Field(min_length=2, max_length=MAX_SIZE)]


class RandomCropConfig(_Section):
    """Pad each side by `padding` (zeros), then crop the input's height x width at random."""

    padding: Annotated[int, Field(ge=0, le=4096, strict=True)] = 4


# one value per channel of the input
ChannelValues = Annotated[
    list[Annotated[float, Field(strict=False)]], Field(min_length=1)
]


class NormalizeStats(_Section):
    """Fixed per-channel statistics: inputs become (x - mean) / std (one value per channel,
    counted against the input's channels where the spec is checked)."""

    mean: ChannelValues
    std: Annotated[
        list[Annotated[float, Field(gt=0.0, strict=False)]], Field(min_length=1)
    ]


def _normalize_kind(value: Any) -> str:
    return "mean-std" if isinstance(value, (dict, NormalizeStats)) else "auto"


# a mapping is checked as statistics, anything else as `auto`: one message, not one per variant
Normalize = Annotated[
    Union[
        Annotated[Literal["auto"], Tag("auto")],
        Annotated[
            NormalizeStats, Tag("mean-std")
        ],  # not an identifier: left out of paths,
    ],
    Discriminator(_normalize_kind),
]


class AugmentConfig(_Section):
    """Image augmentation of training batches, and normalization of every split."""

    random_crop: RandomCropConfig | None = None
    horizontal_flip: Bool = False  # each training sample mirrored with p = 0.5
    # auto: per-channel mean/std of the training split (kept in the checkpoint)
    normalize: Normalize | None = None


class TrainingConfig(_Section):
    """What `nnspec train` does with the model."""

    data: Data = DigitsData()
    # reconstruction: the target is the input itself (autoencoders); the data set's labels,
    # if it has any, are not read
    task: Literal["classification", "binary", "regression", "reconstruction"] = (
        "classification"
    )
    epochs: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 200
    batch_size: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 64
    optimizer: Optimizer = AdamOptimizer()
    regularization: RegularizationConfig = RegularizationConfig()
    early_stopping: EarlyStoppingConfig | None = (
        EarlyStoppingConfig()
    )  # null: never stop early
    scheduler: Scheduler | None = None
    warmup: WarmupConfig | None = None  # with any schedule but one_cycle, or none
    # the gradients' total L2 norm is clipped to this after backward, before each step
    clip_grad_norm: PosFloat | None = None
    # classification only: cross-entropy against targets smoothed by this share
    label_smoothing: Annotated[float, Field(ge=0.0, lt=1.0, strict=True)] = 0.0
    # classification and binary: each sample's loss times its class's weight; `balanced`
    # weighs class c by n_samples / (n_classes * n_c) over the training split (scikit-learn's)
    class_weights: Literal["balanced"] | ClassWeightList | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63, strict=True)] = 0
    device: Annotated[
        str, Field(strict=True, pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$")
    ] = "auto"
    amp: Bool = False  # bf16 autocast on cuda and on CPUs with bf16 instructions
    loading: LoadingConfig = LoadingConfig()
    # image inputs [C, H, W]: random crop and flip of training batches, normalization
    augment: AugmentConfig | None = None
    # last.pt is written at most this often (and after the first and the last epoch); 0: every
    # epoch. A kill -9 loses at most the epochs of these seconds and the one in progress
    checkpoint_seconds: Annotated[float, Field(ge=0.0, le=86_400.0, strict=True)] = 5.0
    # CPU threads: auto estimates an epoch at 1 and at torch's count (a few steps and
    # validation passes timed) and keeps the faster
    threads: Literal["auto"] | Annotated[int, Field(gt=0, le=1024, strict=True)] = (
        "auto"
    )
    compile: Bool = False  # run the model through torch.compile
    # a model with 2-d convolutions in channels-last layout: auto estimates an epoch in
    # both on the CPU, at each thread count `threads` may choose
    channels_last: Literal["auto"] | Bool = "auto"

    @model_validator(mode="after")
    def _task_fits(self) -> "TrainingConfig":
        if (
            isinstance(self.data, CsvData)
            and isinstance(self.data.target, list)
            and self.task != "regression"
        ):
            _refuse(
                ("data", "target"),
                f"a list of target columns is a regression of several values; task "
                f"{self.task} reads one label column: name one",
            )
        if (
            isinstance(self.data, CsvData)
            and self.data.target is None
            and self.task != "reconstruction"
        ):
            _refuse(
                ("data",), "dataset 'csv' needs `target`: the name of the label column"
            )
        stopping = self.early_stopping
        if (
            stopping is not None
            and stopping.monitor == "val_accuracy"
            and self.task in NO_ACCURACY
        ):
            _refuse(
                ("early_stopping", "monitor"),
                f"task {self.task} has no accuracy to monitor; monitor val_loss (its validation "
                f"loss, the mean squared error) or train_loss",
            )
        _check_options_fit(self)
        return self


def _check_options_fit(training: "TrainingConfig") -> None:
    """Refuse the training options that do nothing for the task or schedule they are given
    with, all of them in one error."""
    problems = []
    if training.label_smoothing and training.task != "classification":
        problems.append(
            (
                ("label_smoothing",),
                f"label smoothing applies to task classification (its cross-entropy) only, "
                f"not to task {training.task}; remove label_smoothing",
            )
        )
    weights = training.class_weights
    if weights is not None and training.task not in ("classification", "binary"):
        problems.append(
            (
                ("class_weights",),
                f"class weights apply to tasks classification and binary; task "
                f"{training.task} has no classes, so remove class_weights",
            )
        )
    if isinstance(weights, list) and training.task == "binary" and len(weights) != 2:
        problems.append(
            (
                ("class_weights",),
                f"task binary has 2 classes (0 and 1), so class_weights takes 2 weights, "
                f"got {len(weights)}",
            )
        )
    if training.warmup is not None and isinstance(
        training.scheduler, OneCycleScheduler
    ):
        problems.append(
            (
                ("warmup",),
                "one_cycle warms up by itself (over its first pct_start of the batches); "
                "remove warmup, or use another scheduler type",
            )
        )
    if problems:
        _refuse_all(problems)


NO_ACCURACY = (
    "regression",
    "reconstruction",
)  # tasks measured by a loss and MAE, not accuracy


def _refuse(loc: tuple, message: str) -> None:
    """Raise a validation error located at `loc` inside the training section (not at its top)."""
    _refuse_all([(loc, message)])


def _refuse_all(problems: list[tuple[tuple, str]]) -> None:
    """Raise one validation error holding each (loc, message) of `problems`."""
    raise ValidationError.from_exception_data(
        "TrainingConfig",
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{error}", {"error": message}),
                loc=loc,
                input=None,
            )
            for loc, message in problems
        ],
    )


class LintConfig(_Section):
    """Settings of `nnspec lint` kept with the spec."""

    ignore: list[Annotated[str, Field(strict=True, pattern=r"^NS[0-9]{3}$")]] = []


# -- batches of one sample --------------------------------------------------------------------------

# samples of the built-in data sets before any split (torchvision's training sets; digits whole)
BUILT_IN_SIZES = {
    "digits": 1797,
    "mnist": 60000,
    "fashion_mnist": 60000,
    "cifar10": 50000,
}


def split_sizes(
    count: int, val_fraction: float, test_fraction: float
) -> tuple[int, int, int]:
    """Return (train, validation, test) sample counts of a split of `count` samples.

    Shares are rounded up, as scikit-learn's train_test_split does (1797 digits, 0.2 -> 360 val);
    the epsilon keeps 100 * 0.07 = 7.000000000000001 from becoming 8. The test share is taken
    first, the validation share of what is left.
    """
    n_test = math.ceil(count * test_fraction - 1e-9) if test_fraction > 0 else 0
    n_val = math.ceil((count - n_test) * val_fraction - 1e-9)
    return count - n_test - n_val, n_val, n_test


def one_value_batch_norms(layers) -> list:
    """Return the resolved layers that normalize over the batch and see one value per channel
    per sample (batchnorm on `[F]`, or on a 1x1 map): they cannot train on a batch of one.
    """
    return [
        layer
        for layer in layers
        if layer.torch_class.startswith("BatchNorm")
        and math.prod(layer.input_shape[1:]) == 1
    ]


def single_sample_batch_problems(training: "TrainingConfig", layers, line_of) -> list:
    """Return the problems of a training section whose every batch would hold one sample for
    a model with batch norm over one value per channel (torch refuses to train on that).
    """
    norms = one_value_batch_norms(layers)
    if not norms:
        return []
    first = norms[0]
    where = first.path or f"layers[{first.index}]"
    channels = first.input_shape[0]
    what = (
        f"{where}.{first.type} normalizes each of its {channels} channels over the batch"
        + (f" (and {len(norms) - 1} more batch norm layers)" if len(norms) > 1 else "")
    )
    cure = "or normalize with layernorm, which needs no batch"
    data = training.data
    if training.batch_size == 1:
        path = ("training", "batch_size")
        return [
            Problem(
                format_path(path),
                f"every training batch would be of one sample, but {what}, which needs more "
                f"than one value per channel; set batch_size to 2 or more, {cure}",
                line_of(path),
            )
        ]
    count = BUILT_IN_SIZES.get(data.dataset)
    if count is not None:
        n_train = split_sizes(count, data.val_fraction, data.test_fraction)[0]
        if n_train == 1:
            path = ("training", "data", "val_fraction")
            return [
                Problem(
                    format_path(path),
                    f"the training split of {data.dataset} would be 1 sample, but {what}, "
                    f"which needs more than one value per channel; lower val_fraction, {cure}",
                    line_of(path) or line_of(path[:-1]),
                )
            ]
    return []
