"""`nnspec sweep`: train every combination of a grid of spec changes, resumably, into one folder.

A sweep folder holds `runs/<variant id>/` (one `nnspec train` run folder per variant, kept),
`results.csv`, `complexity.png` and `best.yaml`. A variant id is made of its values
(`fc1.out_features=32,drop1.p=0.3`), so the same grid finds its finished runs again: a run whose
summary.json says it finished, for the variant's exact spec (same sha256), is not trained again; a
run cut short resumes from its last.pt.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from compiler import Spec, SpecError, spec_digest
from runtime.errors import UserError
from runtime.storage.atomic import write_text_atomically
from runtime.sweep.complexity_plot import Point, write_complexity_plot
from runtime.sweep.overrides import (
    load_spec_with_overrides,
    parse_assignment,
    parse_value,
)
from runtime.sweep.results import (
    best_index,
    best_yaml,
    result_row,
    short_path,
    training_error,
    validation_error,
    write_results,
)
from runtime.tasks import has_accuracy
from runtime.training import train as training

FINISHED = ("max_epochs", "early_stopping", "not_finite")  # not "interrupted"
MAX_VARIANTS = 10_000
MAX_ID_LENGTH = 100
_LIST_PUNCTUATION = re.compile(r"[\[\]{}\s'\"]")


@dataclass(frozen=True)
class Axis:
    """One `--vary PATH=V1,V2,...`: a dotted path and the values it takes, as written and parsed."""

    path: str
    texts: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Variant:
    """One point of the grid: its id, the `PATH=VALUE` assignments and the values by path."""

    id: str
    assignments: tuple[str, ...]
    values: dict[str, Any] = field(hash=False)

    @property
    def label(self) -> str:
        """Return the values as `fc1.out_features=32, drop1.p=0.3` for messages and tables."""
        return ", ".join(
            f"{short_path(path)}={text}"
            for path, text in (a.split("=", 1) for a in self.assignments)
        )


def split_values(text: str) -> list[str]:
    """Return the comma-separated values of `text`; commas inside [], {} or quotes do not split."""
    values, depth, quote, current = [], 0, None, ""
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(current.strip())
            current = ""
            continue
        current += char
    values.append(current.strip())
    return values


def parse_vary(text: str) -> Axis:
    """Return the Axis of `PATH=V1,V2,...`; raise UserError for a malformed one."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    example = "e.g. --vary layers.fc1.out_features=16,64,256"
    if not sep or not path:
        raise UserError(f"--vary {text}: expected PATH=V1,V2,..., {example}")
    parse_assignment(f"{path}=0")  # the same path rules as --set (empty steps ...)
    texts = split_values(raw)
    if any(not t for t in texts):
        raise UserError(
            f"--vary {text}: an empty value; list values separated by commas, {example}"
        )
    values = [parse_value(t, f"{path}={t}") for t in texts]
    seen: dict[str, str] = {}
    for written, value in zip(texts, values):
        key = json.dumps(value, sort_keys=True, default=str)
        if key in seen:
            raise UserError(
                f"--vary {text}: {written} is the same value as {seen[key]}; list each once"
            )
        seen[key] = written
    return Axis(path, tuple(texts), tuple(values))


def expand_grid(axes: list[Axis]) -> list[Variant]:
    """Return every combination of the axes' values, the first axis varying slowest."""
    paths = [axis.path for axis in axes]
    if len(set(paths)) != len(paths):
        twice = next(p for p in paths if paths.count(p) > 1)
        raise UserError(
            f"--vary {twice} is given twice; list all its values in one --vary"
        )
    count = 1
    for axis in axes:
        count *= len(axis.texts)
    if count > MAX_VARIANTS:
        raise UserError(
            f"the grid has {count:,} variants, more than {MAX_VARIANTS:,}; vary fewer values"
        )
    variants, used = [], set()
    for combo in itertools.product(*(range(len(axis.texts)) for axis in axes)):
        assignments = tuple(
            f"{axis.path}={axis.texts[i]}" for axis, i in zip(axes, combo)
        )
        variant_id = _variant_id(assignments, used)
        used.add(variant_id)
        values = {axis.path: axis.values[i] for axis, i in zip(axes, combo)}
        variants.append(Variant(variant_id, assignments, values))
    return variants


def _variant_id(assignments: tuple[str, ...], used: set[str]) -> str:
    """Return a folder name made of the values, safe on every file system, unique in `used`."""
    parts = []
    for assignment in assignments:
        path, _, value = assignment.partition("=")
        # `[2, 2]` becomes `2x2`, so commas only ever separate the axes
        value = _LIST_PUNCTUATION.sub("", value).replace(",", "x")
        parts.append(f"{short_path(path)}={value}")
    text = ",".join(parts) or "base"
    safe = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", text).strip("._") or "variant"
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    if len(safe) > MAX_ID_LENGTH:
        safe = f"{safe[:MAX_ID_LENGTH - 9]}-{digest}"
    if safe in used:  # two spellings that the file system cannot tell apart
        safe = f"{safe}-{digest}"
    return safe


def variant_specs(
    spec_path: str, sets: list[str], variants: list[Variant]
) -> list[Spec]:
    """Return each variant's validated spec; raise UserError naming the first invalid variant."""
    specs = []
    for variant in variants:
        try:
            specs.append(
                load_spec_with_overrides(
                    spec_path, list(sets) + list(variant.assignments)
                )
            )
        except SpecError as exc:
            raise UserError(
                f"variant {variant.label} makes an invalid spec:\n"
                f"{_as_vary(str(exc), variant)}"
            ) from None
        except UserError as exc:
            raise UserError(
                f"variant {variant.label}: {_as_vary(str(exc), variant)}"
            ) from None
    return specs


def _as_vary(message: str, variant: Variant) -> str:
    """Return an overrides message with `--set PATH=V` said as `--vary PATH=V` for the variant's values."""
    for assignment in variant.assignments:
        message = message.replace(f"--set {assignment}", f"--vary {assignment}")
    return message


@dataclass
class VariantRun:
    """What happened to one variant in this sweep: its spec, summary and how it got it."""

    variant: Variant
    spec: Spec
    summary: dict[str, Any] | None = None
    action: str = (
        "pending"  # skipped (finished before) | resumed | trained | interrupted
    )


def planned_action(run_dir: Path, spec: Spec, force: bool) -> str:
    """Return `skip`, `resume` or `train` for a variant's run folder; raise UserError on a conflict.

    A finished run of the same spec is kept even with `force` (training is seeded, it would come
    out the same); any other run is replaced with `force`, and without it a run of another spec
    (the spec file or --set changed since) is an error and a run cut short is resumed.
    """
    summary = read_summary(run_dir / "summary.json")
    same_spec = summary is not None and summary.get("spec_sha256") == spec_digest(spec)
    if same_spec and summary.get("stop_reason") in FINISHED:
        return "skip"
    if force:
        return "train"
    if summary is not None and not same_spec:
        raise UserError(
            f"{run_dir} holds a run of another spec (the spec file or --set changed "
            "since it ran); use another --out, or --force to train it again"
        )
    if (run_dir / "last.pt").is_file():
        return "resume"  # train_spec checks that last.pt is of this spec
    return "train"


def read_summary(path: Path) -> dict[str, Any] | None:
    """Return a run's summary.json, or None when it is missing or unreadable (then it reruns)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


Train = Callable[..., dict]


def run_variants(
    runs: list[VariantRun],
    out: Path,
    *,
    spec_path: str,
    device: str | None,
    quiet: bool,
    force: bool,
    train: Train | None = None,
) -> bool:
    """Train (or skip, or resume) every variant in turn; return False when one was interrupted."""
    if train is None:
        train = training.train_spec  # looked up now, so a test can replace it
    plans = [planned_action(out / "runs" / r.variant.id, r.spec, force) for r in runs]
    for number, (run, plan) in enumerate(zip(runs, plans), start=1):
        run_dir = out / "runs" / run.variant.id
        head = f"[{number}/{len(runs)}] {run.variant.label}"
        if plan == "skip":
            run.summary, run.action = read_summary(run_dir / "summary.json"), "skipped"
            _say(quiet, f"{head}: finished before, skipped")
            continue
        _say(
            quiet,
            f"{head}: {'resuming' if plan == 'resume' else 'training'} in {run_dir}",
        )
        try:
            run.summary = train(
                run.spec,
                out_dir=run_dir,
                spec_path=spec_path,
                device=device,
                resume=plan == "resume",
                quiet=quiet,
                force=plan == "train",
            )
        except UserError as exc:
            raise UserError(f"variant {run.variant.label}: {exc}") from None
        run.action = "resumed" if plan == "resume" else "trained"
        if run.summary.get("stop_reason") == "interrupted":
            run.action = "interrupted"
            return False
    return True


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


@dataclass
class SweepOutcome:
    """The end of a sweep: the runs, their rows, the best row's index, whether all finished."""

    runs: list[VariantRun]
    rows: list[dict[str, Any]]
    paths: list[str]
    task: str
    best: int | None
    finished: bool


def run_sweep(
    spec_path: str,
    varies: list[str],
    sets: list[str],
    out: Path,
    *,
    device: str | None = None,
    quiet: bool = False,
    force: bool = False,
    train: Train | None = None,
) -> SweepOutcome:
    """Train the grid of `varies` over the spec with `sets`; write results.csv, complexity.png and
    best.yaml into `out` (results so far after an interruption) and return the outcome.
    """

    axes = [parse_vary(text) for text in varies]
    if not axes:
        raise UserError("nothing to vary: give at least one --vary PATH=V1,V2,...")
    load_spec_with_overrides(
        spec_path, sets
    )  # a missing file or a bad --set is not a variant's fault
    variants = expand_grid(axes)
    specs = variant_specs(
        spec_path, sets, variants
    )  # every variant valid before any training
    runs = [VariantRun(variant, spec) for variant, spec in zip(variants, specs)]
    _say(quiet, f"sweep: {len(runs)} variant{'s' if len(runs) != 1 else ''} into {out}")
    finished = run_variants(
        runs,
        out,
        spec_path=spec_path,
        device=device,
        quiet=quiet,
        force=force,
        train=train,
    )
    done = [
        run for run in runs if run.summary is not None and run.action != "interrupted"
    ]
    paths = [axis.path for axis in axes]
    task = specs[0].training_or_default.task
    rows = [result_row(run, paths) for run in done]
    best = best_index(rows, task)
    write_results(out, rows, paths)
    if finished:
        write_sweep_figures(
            out, done, rows=rows, best=best, task=task, spec_path=spec_path
        )
    return SweepOutcome(done, rows, paths, task, best, finished)


def write_sweep_figures(
    out: Path,
    runs: list[VariantRun],
    *,
    rows: list[dict[str, Any]],
    best: int | None,
    task: str,
    spec_path: str,
) -> None:
    """Write complexity.png and (when a variant won) best.yaml."""

    points = [
        Point(
            run.variant.label,
            row["params"],
            training_error(row, task),
            validation_error(row, task),
        )
        for run, row in zip(runs, rows)
    ]
    regression = not has_accuracy(
        task
    )  # ranked by the loss: regression, reconstruction
    write_complexity_plot(
        out / "complexity.png",
        points,
        best,
        title=f"{runs[0].spec.name}: training and validation error of {len(runs)} variants",
        error_label=(
            "loss (mean squared error)" if regression else "error (1 - accuracy)"
        ),
    )
    if best is not None:
        winner = runs[best]
        write_text_atomically(
            out / "best.yaml",
            best_yaml(
                winner.spec,
                label=winner.variant.label,
                source=spec_path,
                error=validation_error(rows[best], task),
                task=task,
                path=str(out / "best.yaml"),
            ),
        )
