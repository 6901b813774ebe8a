"""The `training` section of a spec: data, task, optimizer, regularization, early stopping."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .layers.base import Bool, NonNegInt, PosInt

NonNegFloat = Annotated[float, Field(ge=0.0, strict=True)]
PosFloat = Annotated[float, Field(gt=0.0, strict=True)]
Fraction = Annotated[float, Field(gt=0.0, lt=1.0, strict=True)]
Text = Annotated[str, Field(strict=True, min_length=1, max_length=4096)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DataConfig(_Section):
    """Where the samples come from and how they are split."""

    dataset: Literal["digits", "mnist", "fashion_mnist", "cifar10", "csv", "npz"] = (
        "digits"
    )
    val_fraction: Fraction = (
        0.2  # share of the training samples held out for validation
    )
    data_dir: Text = "data"  # torchvision data sets are downloaded here on first use
    download: Bool = True  # torchvision: download when the files are missing
    path: Text | None = None  # csv / npz: the file
    target: Text | NonNegInt | None = None  # csv: the label column (name or index)
    features: list[Text] | None = None  # csv: feature columns (default: all but target)
    x_key: Text = "x"  # npz: the array of samples
    y_key: Text = "y"  # npz: the array of labels
    test_fraction: Annotated[float, Field(ge=0.0, lt=1.0, strict=True)] = (
        0.0  # csv/npz/digits
    )
    # std of the Gaussian noise added to each training input (never to targets or validation):
    # a denoising autoencoder with task reconstruction; 0 adds none
    noise: Annotated[float, Field(ge=0.0, le=1e6, strict=True)] = 0.0

    @model_validator(mode="after")
    def _needs_path(self) -> "DataConfig":
        if self.dataset in ("csv", "npz") and self.path is None:
            raise ValueError(f"dataset '{self.dataset}' needs `path`: the file to read")
        return self


class OptimizerConfig(_Section):
    """The optimizer and its settings (torch.optim names)."""

    type: Literal["sgd", "adam", "adamw"] = "adam"
    lr: PosFloat = 0.001
    weight_decay: NonNegFloat = 0.0  # decoupled in adamw, L2-in-gradient in sgd/adam
    momentum: NonNegFloat = 0.0  # sgd only
    nesterov: Bool = False  # sgd only, needs momentum > 0
    betas: Annotated[
        list[Annotated[float, Field(ge=0.0, lt=1.0, strict=True)]],
        Field(min_length=2, max_length=2),
    ] = [
        0.9,
        0.999,
    ]  # adam/adamw

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> "OptimizerConfig":
        if self.nesterov and (self.type != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov needs type 'sgd' and momentum > 0")
        return self


class RegularizationConfig(_Section):
    """Penalties added to the loss over weights (not biases, not norm parameters)."""

    l1: NonNegFloat = 0.0  # l1 * sum |w|
    l2: NonNegFloat = 0.0  # l2 * sum w^2 (apart from the optimizer's weight_decay)


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
        if self.mode is not None:
            return self.mode
        return "max" if self.monitor.endswith("accuracy") else "min"


class SchedulerConfig(_Section):
    """A learning-rate schedule, stepped once per epoch."""

    type: Literal["step", "cosine", "plateau"]
    step_size: PosInt = 30  # step
    gamma: PosFloat = 0.1  # step
    t_max: PosInt | None = None  # cosine; default: epochs
    eta_min: NonNegFloat = 0.0  # cosine
    factor: Annotated[float, Field(gt=0.0, lt=1.0, strict=True)] = 0.1  # plateau
    patience: NonNegInt = 5  # plateau, on the early-stopping monitor


class TrainingConfig(_Section):
    """What `nnspec train` does with the model."""

    data: DataConfig = DataConfig()
    # reconstruction: the target is the input itself (autoencoders); the data set's labels,
    # if it has any, are not read
    task: Literal["classification", "binary", "regression", "reconstruction"] = (
        "classification"
    )
    epochs: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 200
    batch_size: Annotated[int, Field(gt=0, le=1_000_000, strict=True)] = 64
    optimizer: OptimizerConfig = OptimizerConfig()
    regularization: RegularizationConfig = RegularizationConfig()
    early_stopping: EarlyStoppingConfig | None = (
        EarlyStoppingConfig()
    )  # null: never stop early
    scheduler: SchedulerConfig | None = None
    seed: Annotated[int, Field(ge=0, lt=2**63, strict=True)] = 0
    device: Annotated[
        str, Field(strict=True, pattern=r"^(auto|cpu|mps|cuda(:[0-9]{1,2})?)$")
    ] = "auto"
    amp: Bool = False  # bf16 autocast on cuda

    @model_validator(mode="after")
    def _task_fits(self) -> "TrainingConfig":
        if (
            self.data.dataset == "csv"
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
        return self


NO_ACCURACY = (
    "regression",
    "reconstruction",
)  # tasks measured by a loss and MAE, not accuracy


def _refuse(loc: tuple, message: str) -> None:
    """Raise a validation error located at `loc` inside the training section (not at its top)."""
    error = PydanticCustomError("value_error", "{error}", {"error": message})
    raise ValidationError.from_exception_data(
        "TrainingConfig", [InitErrorDetails(type=error, loc=loc, input=None)]
    )


class LintConfig(_Section):
    """Settings of `nnspec lint` kept with the spec."""

    ignore: list[Annotated[str, Field(strict=True, pattern=r"^NS[0-9]{3}$")]] = []
