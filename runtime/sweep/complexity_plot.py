"""complexity.png: training and validation error against model size, the best variant marked.

Left of the best variant the models are too simple (underfitting: both errors high), right of it
too complex (overfitting: the training error keeps falling, the validation error does not). When
every variant has the same parameter count (a sweep over dropout or the learning rate), the x-axis
lists the variants in grid order instead.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

from runtime.storage.atomic import write_bytes_atomically


@dataclass(frozen=True)
class Point:
    """One variant on the plot."""

    label: str
    params: int
    train_error: float | None
    val_error: float | None


def _finite(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else float("nan")


def write_complexity_plot(
    path: str | os.PathLike,
    points: list[Point],
    best: int | None,
    *,
    title: str,
    error_label: str,
) -> None:
    """Write the plot as a PNG (atomically); `best` indexes `points`."""
    # Figure + Agg canvas directly: no pyplot, so no global backend or window is involved.

    figure = Figure(figsize=(8, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    by_size = len({p.params for p in points}) > 1
    if by_size:
        xs = [float(p.params) for p in points]
        axes.set_xscale("log")

        axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        axes.xaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        axes.set_xlabel("trainable parameters (log scale)")
    else:
        xs = [float(i) for i in range(len(points))]
        axes.set_xticks(
            xs, [p.label for p in points], rotation=30, ha="right", fontsize="small"
        )
        axes.set_xlabel(
            f"variant (all {points[0].params:,} parameters)" if points else "variant"
        )
    _draw_curves(axes, points, xs, best, by_size)
    if best is not None:
        _mark_best(axes, points, xs, best, by_size)
    axes.set_ylabel(error_label + _scale_y(axes, points))
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize="small", loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomically(path, buffer.getvalue())


def _draw_curves(
    axes, points: list[Point], xs: list[float], best: int | None, by_size: bool
) -> None:
    """Draw every variant as dots, and lines through the best variant of each size."""
    train = [_finite(p.train_error) for p in points]
    val = [_finite(p.val_error) for p in points]
    axes.scatter(xs, train, color="tab:blue", s=18, alpha=0.5, zorder=2)
    axes.scatter(xs, val, color="tab:orange", s=18, alpha=0.5, zorder=2)
    # Several variants of one size (a grid over size and dropout): the line follows the one with
    # the lowest validation error at each size, which is what a choice of size would give.
    chosen: dict[float, int] = {}
    for index, x in enumerate(xs):
        if index not in chosen.values():
            current = chosen.get(x)
            if current is None or _better(val[index], val[current]):
                chosen[x] = index
    order = (
        sorted(chosen.values(), key=lambda i: xs[i])
        if by_size
        else list(range(len(points)))
    )
    axes.plot(
        [xs[i] for i in order],
        [train[i] for i in order],
        "-o",
        color="tab:blue",
        label="training error",
        zorder=3,
    )
    axes.plot(
        [xs[i] for i in order],
        [val[i] for i in order],
        "-o",
        color="tab:orange",
        label="validation error",
        zorder=3,
    )


def _scale_y(axes, points: list[Point]) -> str:
    """Return a label suffix; errors spanning decades get a symmetric-log axis.

    The small errors of the good models are what the choice is about; on a linear axis the
    underfit models squash them flat. symlog stays linear near 0, so an error of 0 still shows.
    """
    values = [
        v
        for p in points
        for v in (p.train_error, p.val_error)
        if v is not None and math.isfinite(v)
    ]
    positive = [v for v in values if v > 0]
    if not positive or max(positive) / min(positive) < 20:
        return ""

    linear_below = 10 ** math.floor(math.log10(min(positive)))
    axes.set_yscale("symlog", linthresh=linear_below, linscale=0.5)
    axes.set_ylim(0, max(positive) * 3)  # headroom for the legend
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    return " (log scale)"


def _better(value: float, other: float) -> bool:
    return not math.isnan(value) and (math.isnan(other) or value < other)


def _mark_best(
    axes, points: list[Point], xs: list[float], best: int, by_size: bool
) -> None:
    """Star the best variant; by size, shade its too-simple and too-complex sides."""
    x, y = xs[best], _finite(points[best].val_error)
    axes.scatter(
        [x],
        [y],
        marker="*",
        s=260,
        color="tab:red",
        zorder=5,
        label=f"best (lowest validation error): {points[best].label}",
    )
    axes.axvline(x, color="tab:red", linestyle="--", alpha=0.6)
    if not by_size:  # grid order is not an order of complexity
        return
    left, right = min(xs), max(xs)
    pad = (right / left) ** 0.05
    low, high = left / pad, right * pad
    axes.set_xlim(low, high)
    if x > left:
        axes.axvspan(low, x, color="tab:blue", alpha=0.07)
        axes.text(
            0.02,
            0.03,
            "\u2190 underfitting\n(too simple: both errors high)",
            transform=axes.transAxes,
            fontsize="small",
            color="tab:blue",
            va="bottom",
        )
    if x < right:
        axes.axvspan(x, high, color="tab:red", alpha=0.07)
        axes.text(
            0.98,
            0.03,
            "overfitting \u2192\n(too complex: validation error\nstops falling "
            "or rises)",
            transform=axes.transAxes,
            fontsize="small",
            color="tab:red",
            va="bottom",
            ha="right",
        )
