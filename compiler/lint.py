"""`nnspec lint`'s rules: the course's advice on a spec, checked statically, in pure Python.

Each rule reads the resolved layers (types, arguments, shapes, parameter counts) and the training
section, and returns `LintWarning`s with a stable code (NS1xx), the layer path, the reason and the
fix. Rules about training (NS104 to NS108, NS111) apply only to specs with a `training` section: a
spec without one describes a model, not how it is trained. Nothing here imports torch.
"""

from __future__ import annotations

import ast
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .api import output_shape, resolved_layers
from .data_paths import resolve_data_path, spec_folder
from .errors import format_path
from .formatting import format_shape
from .layers import REGISTRY
from .load import read_document, validate_document
from .shapes import ResolvedLayer
from .spec import Spec


@dataclass(frozen=True)
class Rule:
    """One lint rule as docs/lint.md describes it: its code, a title and why it matters."""

    code: str
    title: str
    why: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "NS100",
            "unknown code in lint.ignore",
            "a typo in lint.ignore silently ignores nothing",
        ),
        Rule(
            "NS101",
            "dropout on a convolutional feature map",
            "neighbouring pixels are correlated, so dropping single values barely regularizes; "
            "dropout2d/dropout1d drop whole channels",
        ),
        Rule(
            "NS102",
            "dropout rate outside 0.2 to 0.5",
            "below 0.2 dropout hardly regularizes; above 0.5 it throws away most of the signal",
        ),
        Rule(
            "NS103",
            "dropout after the output layer",
            "dropout belongs after hidden layers; on the outputs it randomly zeroes predictions",
        ),
        Rule(
            "NS104",
            "softmax/logsoftmax before cross-entropy",
            "cross-entropy applies log-softmax to the logits itself",
        ),
        Rule(
            "NS105",
            "sigmoid before binary cross-entropy",
            "the binary task's loss (BCE with logits) applies the sigmoid itself",
        ),
        Rule(
            "NS106",
            "no early stopping",
            "without it training runs every epoch and keeps the last, often overfit, model",
        ),
        Rule(
            "NS107",
            "early stopping on the training loss",
            "the training loss keeps falling while the model overfits; validation error decides",
        ),
        Rule(
            "NS108",
            "many parameters, few samples, no regularization",
            "a model with many more parameters than training samples memorizes them",
        ),
        Rule(
            "NS109",
            "linear on a feature map without flatten",
            "linear acts on the last dimension only, so it mixes one row of each channel",
        ),
        Rule(
            "NS110",
            "batch norm right after dropout",
            "dropout changes the variance between training and evaluation, so batch norm's "
            "running statistics are wrong at evaluation",
        ),
        Rule(
            "NS111",
            "output size does not match the task",
            "the loss needs one logit per class (classification; at each position for labels "
            "per position) or one value (binary)",
        ),
    )
}

# The roles the rules need, read from the registry (each layer type declares its group and
# whether it makes a feature map), so a new layer type needs no edit here.
ACTIVATIONS = frozenset(
    {t for t, c in REGISTRY.items() if c.group == "activations"} | {"identity"}
)  # shape kept, nothing learned but a slope: they neither end nor start a feature map
DROPOUTS = frozenset(t for t, c in REGISTRY.items() if c.group == "dropout")
SHAPE_KEEPING = (
    ACTIVATIONS
    | DROPOUTS
    | {t for t, c in REGISTRY.items() if c.group == "normalization"}
)
FEATURE_MAP_MAKERS = frozenset(t for t, c in REGISTRY.items() if c.feature_map)
DATASET_CLASSES = {"digits": 10, "mnist": 10, "fashion_mnist": 10, "cifar10": 10}
DATASET_SAMPLES = {
    "digits": 1797,
    "mnist": 60000,
    "fashion_mnist": 60000,
    "cifar10": 50000,
}
DROPOUT_RANGE = (0.2, 0.5)
PARAMS_PER_SAMPLE_LIMIT = 10  # above this, an unregularized model is likely to memorize
CSV_COUNT_LIMIT = (
    64 * 1024 * 1024
)  # bytes; larger files are not counted (lint stays fast)

LineOf = Callable[[tuple], "int | None"]


@dataclass(frozen=True)
class LintWarning:
    """One finding: where (path, line), which rule (code), what is wrong and how to fix it."""

    code: str
    path: str
    message: str
    fix: str
    line: int | None = None

    def format(self, source: str) -> str:
        """Return the warning as `FILE:LINE: PATH: NSxxx message (fix: ...)`."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.code} {self.message} (fix: {self.fix})"

    def as_dict(self, source: str) -> dict:
        """Return the warning as plain data for `--format json`."""
        return {
            "file": source,
            "line": self.line,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
        }


def lint_file(
    path: str | os.PathLike, ignore: Iterable[str] = ()
) -> tuple[Spec, list[LintWarning]]:
    """Return a spec file's Spec and its warnings (minus `ignore`); raise SpecError if invalid."""
    document = read_document(path)
    spec = validate_document(document, str(path))
    return spec, lint_spec(spec, document.line_of, ignore)


def lint_spec(
    spec: Spec, line_of: LineOf | None = None, ignore: Iterable[str] = ()
) -> list[LintWarning]:
    """Return the warnings of a validated spec, in file order, minus `ignore` and `spec.lint.ignore`.

    `line_of` maps a document path such as ("training", "early_stopping") to its source line.
    """

    line_of = line_of or (lambda path: None)
    layers = resolved_layers(spec)
    found = list(_layer_rules(spec, layers))
    if spec.training is not None:
        found += _training_rules(spec, layers, line_of)
    written = list(spec.lint.ignore) if spec.lint is not None else []
    for index, code in enumerate(written):
        if code not in RULES:
            found.append(
                LintWarning(
                    "NS100",
                    f"lint.ignore[{index}]",
                    f"lint.ignore lists {code}, which is not a lint code",
                    f"use one of {', '.join(sorted(c for c in RULES if c != 'NS100'))}",
                    line_of(("lint", "ignore", index)),
                )
            )
    skip = set(ignore) | set(written)
    seen: set[tuple] = set()
    kept = []
    for warning in found:
        # a layer of a block is one place in the file, however many uses run it: warn once
        key = (warning.code, warning.path, warning.line)
        if warning.code not in skip and key not in seen:
            seen.add(key)
            kept.append(warning)
    return sorted(kept, key=lambda w: (w.line if w.line is not None else 0, w.code))


# -- rules about the layers --------------------------------------------------------------------


def _path(layer: ResolvedLayer) -> str:
    """Return where a layer was written: `layers[3]`, `layers[2].residual.layers[0]`, or the
    block definition's `blocks.BasicBlock.layers[1]` (one place for every use of the block).
    """
    return layer.path or format_path(("layers", layer.index))


def _where(layer: ResolvedLayer) -> str:
    """Return a layer as a message names it: where it was written and its module path."""
    return f"{_path(layer)} ({layer.qualname or layer.name})"


def _layer_rules(
    spec: Spec, layers: tuple[ResolvedLayer, ...]
) -> Iterator[LintWarning]:
    """Yield the warnings that the layer sequence alone decides (NS101-NS103, NS109, NS110)."""
    map_maker: ResolvedLayer | None = (
        None  # the conv/pool layer whose feature map flows here
    )
    for position, layer in enumerate(layers):
        path = _path(layer)
        rank = len(layer.input_shape)
        if layer.type == "dropout" and map_maker is not None and rank in (2, 3):
            better = "dropout2d" if rank == 3 else "dropout1d"
            yield LintWarning(
                "NS101",
                path,
                f"dropout on the feature map {format_shape(layer.input_shape)} of {_where(map_maker)} drops "
                f"single values, which their neighbours carry anyway",
                f"use `{better}: {layer.kwargs['p']}`, which drops whole channels",
                layer.line,
            )
        if layer.type in DROPOUTS:
            p = layer.kwargs["p"]
            low, high = DROPOUT_RANGE
            if not low <= p <= high:
                side = "below" if p < low else "above"
                yield LintWarning(
                    "NS102",
                    path,
                    f"dropout rate {p:g} is {side} the usual {low:g} to {high:g}",
                    f"set p between {low:g} and {high:g}, higher for wider or deeper models"
                    + ("; p 0 does nothing, so remove the layer" if p == 0 else ""),
                    layer.line,
                )
            if all(
                later.type in ACTIVATIONS | DROPOUTS for later in layers[position + 1 :]
            ):
                yield LintWarning(
                    "NS103",
                    path,
                    f"{layer.type} after the output layer zeroes predictions at random",
                    "move it before the output layer, after a hidden layer's activation",
                    layer.line,
                )
        if layer.type == "linear" and (
            rank == 3 or (rank == 2 and map_maker is not None)
        ):
            origin = f" of {_where(map_maker)}" if map_maker is not None else ""
            yield LintWarning(
                "NS109",
                path,
                f"linear on the feature map {format_shape(layer.input_shape)}{origin} acts on its last "
                f"dimension only and gives {format_shape(layer.output_shape)}",
                "add `flatten` before it",
                layer.line,
            )
        if layer.type in ("batchnorm1d", "batchnorm2d"):
            before = _previous_skipping(layers, position, ACTIVATIONS)
            if before is not None and before.type in DROPOUTS:
                yield LintWarning(
                    "NS110",
                    path,
                    f"{layer.type} right after {before.type} {_where(before)}: dropout shifts the "
                    "variance between training and evaluation, so the running statistics are off",
                    "put the dropout after the batch norm (conv, batch norm, activation, dropout)",
                    layer.line,
                )
        if layer.type in FEATURE_MAP_MAKERS:
            map_maker = layer
        elif layer.type not in SHAPE_KEEPING:
            map_maker = None


def _previous_skipping(
    layers: tuple[ResolvedLayer, ...], position: int, skip: frozenset
) -> ResolvedLayer | None:
    """Return the nearest layer before `position` whose type is not in `skip`, or None."""
    for layer in reversed(layers[:position]):
        if layer.type not in skip:
            return layer
    return None


# -- rules about training ----------------------------------------------------------------------


def _training_rules(
    spec: Spec, layers: tuple[ResolvedLayer, ...], line_of: LineOf
) -> list[LintWarning]:
    """Return the warnings that need the training section (NS104-NS108, NS111)."""
    training = spec.training
    task = training.task
    found: list[LintWarning] = []
    final = _previous_skipping(layers, len(layers), DROPOUTS | {"identity"})
    if final is not None:
        path = _path(final)
        if task == "classification" and final.type in ("softmax", "logsoftmax"):
            effect = (
                "it does nothing but cost time"
                if final.type == "logsoftmax"
                else "squashing the logits first shrinks the gradients and slows or stalls training"
            )
            found.append(
                LintWarning(
                    "NS104",
                    path,
                    f"final {final.type} with task classification: cross-entropy already "
                    f"applies log-softmax, so {effect}",
                    f"remove the {final.type} layer; apply softmax to the outputs when you need probabilities",
                    final.line,
                )
            )
        if task == "binary" and final.type == "sigmoid":
            found.append(
                LintWarning(
                    "NS105",
                    path,
                    "final sigmoid with task binary: the loss (BCE with logits) already "
                    "applies the sigmoid, so it is applied twice",
                    "remove the sigmoid layer; apply it to the outputs when you need probabilities",
                    final.line,
                )
            )
    found += _early_stopping_rules(training, line_of)
    found += _size_rules(spec, layers, line_of)
    return found


def _early_stopping_rules(training, line_of: LineOf) -> list[LintWarning]:
    """Return NS106 (no early stopping, patience 0) and NS107 (monitor train_loss)."""
    stopping = training.early_stopping
    path = ("training", "early_stopping")
    if stopping is None:
        return [
            LintWarning(
                "NS106",
                format_path(path),
                f"no early stopping: training runs all {training.epochs} epochs "
                "and keeps the last model, however much it has overfit",
                "set `early_stopping: {monitor: val_loss, patience: 10}`",
                line_of(path),
            )
        ]
    if stopping.patience == 0:
        return [
            LintWarning(
                "NS106",
                format_path(path + ("patience",)),
                "patience 0 stops at the first epoch without "
                "improvement, and the validation loss is noisy",
                "set patience to 5-20 epochs",
                line_of(path + ("patience",)),
            )
        ]
    if stopping.monitor == "train_loss":
        return [
            LintWarning(
                "NS107",
                format_path(path + ("monitor",)),
                "early stopping monitors train_loss, which "
                "keeps falling while the model overfits",
                "monitor val_loss"
                + (
                    " (or val_accuracy)"
                    if training.task in ("classification", "binary")
                    else ""
                ),
                line_of(path + ("monitor",)),
            )
        ]
    return []


def _size_rules(
    spec: Spec, layers: tuple[ResolvedLayer, ...], line_of: LineOf
) -> list[LintWarning]:
    """Return NS111 (output size vs task and data set) and NS108 (parameters per sample)."""
    training = spec.training
    found: list[LintWarning] = []
    last = _previous_skipping(layers, len(layers), DROPOUTS | ACTIVATIONS) or layers[-1]

    out = output_shape(spec)  # the model's output, which need not be its last layer's
    classes = DATASET_CLASSES.get(training.data.dataset) or image_folder_classes(spec)
    expected = size = None
    positions = (
        label_positions(training.data, spec_folder(spec.source))
        if training.task == "classification"
        else ()
    )
    if (
        positions
    ):  # one class per position (segmentation, tagging): scores [C, *positions]
        if len(out) != len(positions) + 1 or out[1:] != positions:
            found.append(
                LintWarning(
                    "NS111",
                    _path(last),
                    f"the model's output is {format_shape(out)} but the labels in {training.data.path} hold "
                    f"one class per position {format_shape(positions)}, so task classification expects "
                    f"[classes, {format_shape(positions)[1:-1]}] (the scores of each position along the first "
                    "dimension)",
                    f"end with a layer that gives [classes, {format_shape(positions)[1:-1]}], e.g. a 1x1 "
                    "convolution with out_channels = classes",
                    last.line,
                )
            )
    elif (
        training.task == "classification"
        and positions is not None
        and (len(out) != 1 or (classes and out[0] != classes))
    ):
        size = str(classes) if classes else "NUMBER_OF_CLASSES"
        expected = (
            f"[{classes}] (one logit per class of {training.data.dataset})"
            if classes
            else "[classes] (one logit per class)"
        )
    elif training.task == "binary" and out != (1,):
        size, expected = "1", "[1] (one logit)"
    if expected is not None:
        found.append(
            LintWarning(
                "NS111",
                _path(last),
                f"the model's output is {format_shape(out)} but task {training.task} expects {expected}",
                f"end with `linear: {size}`"
                + ("" if len(out) == 1 else " after a `flatten`"),
                last.line,
            )
        )

    samples = training_sample_count(training, spec_folder(spec.source))
    params = sum(layer.params for layer in layers)
    regularized = (
        any(layer.type in DROPOUTS for layer in layers)
        or training.regularization.l1 > 0
        or training.regularization.l2 > 0
        or training.optimizer.weight_decay > 0
        or training.data.noise > 0  # input noise regularizes (a denoising autoencoder)
        or _augments(training.augment)
    )
    if samples and not regularized and params > PARAMS_PER_SAMPLE_LIMIT * samples:
        found.append(
            LintWarning(
                "NS108",
                "layers",
                f"{params:,} parameters for {samples:,} training samples ({params / samples:,.0f} per "
                "sample) with no dropout, weight decay or l1/l2: the model can memorize the training set",
                "add dropout after hidden layers (0.2-0.5), set regularization.l2 or "
                "optimizer.weight_decay, or use fewer units",
                line_of(("layers",)),
            )
        )
    return found


def _augments(augment) -> bool:
    """Return whether `training.augment` changes training samples (crops or flips them)."""
    return augment is not None and bool(
        (augment.random_crop and augment.random_crop.padding) or augment.horizontal_flip
    )


def label_positions(data, folder: Path | None = None) -> tuple[int, ...] | None:
    """Return the positions each sample's labels cover: () for one label per sample, (8, 8) for
    labels of shape (N, 8, 8) in an npz file, or None when unknown (an npz file not read).
    """
    if data.dataset != "npz":
        return ()  # torchvision, digits and csv files have one label per sample
    # a relative path is read from the spec's folder, as training reads it
    shape = npz_array_shape(resolve_data_path(data.path, folder), data.y_key)
    return tuple(shape[1:]) if shape else None


def npz_array_shape(path: str | None, key: str) -> tuple[int, ...] | None:
    """Return the shape of array `key` of an .npz file from its header alone, or None.

    Reads a few bytes (the .npy header is a Python literal) without numpy, so lint stays fast.
    """

    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
            magic = member.read(8)
            if magic[:6] != b"\x93NUMPY":
                return None
            size_bytes = 2 if magic[6] == 1 else 4
            length = int.from_bytes(member.read(size_bytes), "little")
            header = ast.literal_eval(member.read(min(length, 65536)).decode("latin1"))
    except (OSError, KeyError, ValueError, SyntaxError, TypeError, zipfile.BadZipFile):
        return None
    shape = header.get("shape") if isinstance(header, dict) else None
    if isinstance(shape, tuple) and shape and all(isinstance(d, int) for d in shape):
        return shape
    return None


def image_folder_classes(spec: Spec) -> int | None:
    """Return the class folders of an image_folder data set (sub-folders not starting with
    "."), None when it is another data set or the folder is not there; relative paths are read
    from the spec's folder, as training reads them."""
    data = spec.training.data
    if data.dataset != "image_folder":
        return None
    folder = resolve_data_path(data.path, spec_folder(spec.source))
    try:
        count = sum(
            1
            for entry in os.scandir(folder)
            if entry.is_dir() and entry.name[:1] != "."
        )
    except OSError:
        return None
    return count or None


def training_sample_count(training, folder: Path | None = None) -> int | None:
    """Return the number of training samples after the splits, or None when unknown statically."""
    data = training.data
    total = DATASET_SAMPLES.get(data.dataset)
    test_share = data.test_fraction if data.dataset == "digits" else 0.0
    if data.dataset == "csv":
        total = _csv_rows(resolve_data_path(data.path, folder))
        test_share = data.test_fraction
    if not total:
        return None
    # the same rounding as the runtime's split (rounded up, as scikit-learn does)
    n_test = _ceil_share(total, test_share)
    return total - n_test - _ceil_share(total - n_test, data.val_fraction)


def _ceil_share(count: int, fraction: float) -> int:
    return math.ceil(count * fraction - 1e-9) if fraction > 0 else 0


def _csv_rows(path: str | None) -> int | None:
    """Return the data rows of a csv file (non-empty lines after the header), or None."""
    try:
        file = Path(path)
        if not file.is_file() or file.stat().st_size > CSV_COUNT_LIMIT:
            return None
        with file.open("rb") as f:
            lines = sum(1 for line in f if line.strip())
    except OSError:
        return None
    return max(lines - 1, 0) or None
