"""Metric figures for the widgets: small matplotlib figures, and the same as PNG bytes.

No pyplot: each call builds its own `Figure` on an Agg canvas, so nothing leaks into (or depends
on) the user's matplotlib state or backend. The `*_figure` builders are what tests inspect.
"""

from __future__ import annotations

import io
import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from ..models import Scalar, TrialInfo

DPI = 90
WIDTH = 6.0
ROW_HEIGHT = 2.5
MULTI_ROW_HEIGHT = 2.0
MAX_PANELS = 6
#: Points per line drawn; longer series are thinned evenly (the last point is always kept).
MAX_POINTS = 2000
#: Trials named in a study chart's legend at most.
LEGEND_MAX = 12
_TAB20 = [
    "#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728", "#ff9896",
    "#9467bd", "#c5b0d5", "#8c564b", "#c49c94", "#e377c2", "#f7b6d2", "#7f7f7f", "#c7c7c7",
    "#bcbd22", "#dbdb8d", "#17becf", "#9edae5",
]  # fmt: skip

BEST_COLOR = "#d62728"
LINE_COLOR = "#1f77b4"
FAINT_COLOR = "#7f7f7f"
_PLAIN_DOT: dict[str, Any] = {"s": 12, "color": LINE_COLOR, "alpha": 0.6, "linewidths": 0}
_BEST_DOT: dict[str, Any] = {
    "s": 40,
    "color": BEST_COLOR,
    "edgecolors": "black",
    "linewidths": 0.6,
    "zorder": 3,
}


def thin(points: Sequence[Scalar], limit: int = MAX_POINTS) -> Sequence[Scalar]:
    """At most about `limit` evenly spaced points of a series, always with its last point."""
    if len(points) <= limit:
        return points
    stride = math.ceil(len(points) / limit)
    kept = list(points[::stride])
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def metric_curves_png(scalars: Mapping[str, Sequence[Scalar]], *, title: str = "") -> bytes:
    """`metric_curves_figure` as PNG bytes."""
    return png(metric_curves_figure(scalars, title=title))


def study_curves_png(
    curves: Mapping[int, Sequence[Scalar]], *, metric: str, best: int | None
) -> bytes:
    """`study_curves_figure` as PNG bytes."""
    return png(study_curves_figure(curves, metric=metric, best=best))


def param_scatter_png(
    trials: Sequence[TrialInfo],
    *,
    metric: str,
    best: int | None,
    log_params: Collection[str] = (),
) -> bytes:
    """`param_scatter_figure` as PNG bytes."""
    return png(param_scatter_figure(trials, metric=metric, best=best, log_params=log_params))


def metric_curves_figure(scalars: Mapping[str, Sequence[Scalar]], *, title: str = "") -> Figure:
    """One panel per tag (the first `MAX_PANELS`, in the given order), value against step."""
    tags = [tag for tag, points in scalars.items() if points]
    shown = tags[:MAX_PANELS]
    more = f"  (+{len(tags) - len(shown)} more)" if len(tags) > len(shown) else ""
    fig, axes = _panels(len(shown), cols=4 if len(shown) <= 4 else 3, title=bool(title or more))
    for ax, tag in zip(axes, shown, strict=True):
        points = thin(scalars[tag])
        ax.plot([p.step for p in points], [p.value for p in points], color=LINE_COLOR, lw=1.2)
        if len(points) == 1:
            ax.plot([points[0].step], [points[0].value], "o", color=LINE_COLOR, ms=3)
        ax.set_title(tag, fontsize=8)
        ax.xaxis.set_major_formatter(FuncFormatter(_compact))
    if not shown:
        _empty(fig, "no metrics yet")
    if title or more:
        fig.suptitle(title + more, fontsize=9)
    return fig


def study_curves_figure(
    curves: Mapping[int, Sequence[Scalar]], *, metric: str, best: int | None
) -> Figure:
    """Every trial's `metric` against step, a color per trial (named in the legend), the best
    one thicker on top. Trials that each reported one value are points by trial number instead
    (`final_values_figure`): a step chart of one dot says nothing."""
    series = {number: thin(points) for number, points in sorted(curves.items()) if points}
    if series and all(len(points) == 1 for points in series.values()):
        return final_values_figure(
            {number: points[0].value for number, points in series.items()},
            metric=metric,
            best=best,
        )
    legend = len(series) > 1
    fig, (ax,) = _panels(1, cols=1, legend=legend)
    for index, (number, points) in enumerate(series.items()):
        is_best = number == best
        ax.plot(
            [p.step for p in points],
            [p.value for p in points],
            color=BEST_COLOR if is_best else _trial_color(index),
            lw=2.2 if is_best else 1.0,
            alpha=1.0 if is_best else 0.8,
            zorder=3 if is_best else 2,
            label=f"trial {number}" + (" (best)" if is_best else ""),
        )
    if best is not None and best in series:
        ax.set_title(f"best: trial {best}", color=BEST_COLOR, fontsize=8, loc="left")
    if not series:
        ax.set_visible(False)
        _empty(fig, f"no trial has reported {metric!r} yet")
        return fig
    if legend:
        _legend(ax)
    ax.margins(x=0.02, y=0.08)
    ax.xaxis.set_major_formatter(FuncFormatter(_compact))
    ax.set_xlabel("step", fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    return fig


def final_values_figure(values: Mapping[int, float], *, metric: str, best: int | None) -> Figure:
    """One point per trial: its `metric` against its number, the best in color (never cut off
    by the edge, and the axis spans something sensible even when every value is the same)."""
    fig, (ax,) = _panels(1, cols=1)
    shown = {n: v for n, v in values.items() if math.isfinite(v)}
    for is_best, style in ((False, _PLAIN_DOT), (True, _BEST_DOT)):
        picked = [(n, v) for n, v in shown.items() if (n == best) is is_best]
        ax.scatter([n for n, _ in picked], [v for _, v in picked], clip_on=False, **style)
    if not shown:
        ax.set_visible(False)
        _empty(fig, f"no trial has reported {metric!r} yet")
        return fig
    numbers, ys = list(shown), list(shown.values())
    ax.set_xlim(min(numbers) - 0.5, max(numbers) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
    low, high = min(ys), max(ys)
    pad = (high - low) * 0.12 or max(abs(low) * 0.05, 1e-9)
    ax.set_ylim(low - pad, high + pad)
    if best is not None and best in shown:
        ax.set_title(
            f"best: trial {best} ({shown[best]:.4g})", color=BEST_COLOR, fontsize=8, loc="left"
        )
    ax.set_xlabel("trial", fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    return fig


def param_scatter_figure(
    trials: Sequence[TrialInfo],
    *,
    metric: str,
    best: int | None,
    log_params: Collection[str] = (),
) -> Figure:
    """One panel per parameter: each trial's `metric` against its value, the best in color.

    Parameters searched on a log scale (`log_params`), and numbers spanning more than two
    decades, get a log axis (when all > 0); strings and booleans are categories, one tick each.
    """
    scored = [(t, t.value) for t in trials if t.value is not None and math.isfinite(t.value)]
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    fig, axes = _panels(len(names), cols=4, sharey=True)
    for ax, name in zip(axes, names, strict=True):
        having = [(t, value) for t, value in scored if name in t.params]
        params = [t.params[name] for t, _ in having]
        if _categorical(params):
            labels = sorted({str(v) for v in params})
            xs: list[float] = [labels.index(str(v)) for v in params]
            ax.set_xticks(range(len(labels)), labels, fontsize=7)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        else:
            xs = [float(v) for v in params]
            if (name in log_params and xs and min(xs) > 0) or _spans_decades(xs):
                _log_x(ax)
        for is_best, style in ((False, _PLAIN_DOT), (True, _BEST_DOT)):
            picked = [
                (x, value)
                for x, (t, value) in zip(xs, having, strict=True)
                if (t.number == best) is is_best
            ]
            ax.scatter([x for x, _ in picked], [y for _, y in picked], clip_on=False, **style)
        ax.margins(0.08)
        ax.set_xlabel(name, fontsize=8)
    if axes:
        axes[0].set_ylabel(metric, fontsize=8)
    if not scored:
        _empty(fig, f"no trial has reported {metric!r} yet")
    return fig


def _compact(x: float, _pos: object = None) -> str:
    """A step count in few characters: 950, 1.5k, 20k, 1.2M."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _categorical(values: Sequence[object]) -> bool:
    return any(isinstance(v, (str, bool)) for v in values)


def _spans_decades(xs: Sequence[float], decades: float = 2.0) -> bool:
    finite = [x for x in xs if math.isfinite(x)]
    if len(finite) < 2 or min(finite) <= 0:
        return False
    return math.log10(max(finite) / min(finite)) > decades


def _trial_color(index: int) -> str:
    """A trial's line color: tab20's colors in turn, leaving out the best trial's red."""
    colors = [c for c in _TAB20 if c not in ("#d62728", "#ff9896")]
    return colors[index % len(colors)]


def _legend(ax: Axes) -> None:
    """The trials' legend beside the axes (never over the curves): the best trial first, then
    the others up to `LEGEND_MAX` entries, and how many more there are."""
    handles, labels = ax.get_legend_handles_labels()
    entries = sorted(zip(handles, labels, strict=True), key=lambda e: not e[1].endswith("(best)"))
    if len(entries) > LEGEND_MAX:
        more = len(entries) - (LEGEND_MAX - 1)
        entries = [*entries[: LEGEND_MAX - 1], (Line2D([], [], color="none"), f"+{more} more")]
    ax.legend(
        [h for h, _ in entries], [label for _, label in entries], loc="upper left",
        bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False, borderaxespad=0.0,
        handlelength=1.2,
    )  # fmt: skip


def _panels(
    count: int, *, cols: int, title: bool = False, sharey: bool = False, legend: bool = False
) -> tuple[Figure, list[Axes]]:
    """A figure with `count` small axes, `cols` to a row at most (one empty row for none);
    `legend` keeps room on the right for one.

    Few ticks and no minor ones: tick labels are most of what a small figure costs to draw.
    """
    cols = max(min(count, cols), 1)
    rows = max(math.ceil(count / cols), 1)
    height = ROW_HEIGHT if rows == 1 else MULTI_ROW_HEIGHT * rows
    fig = Figure(figsize=(WIDTH, height), dpi=DPI)
    FigureCanvasAgg(fig)
    top = 0.3 + (0.2 if title else 0.0)
    fig.subplots_adjust(
        left=0.65 / WIDTH, right=0.8 if legend else 0.98, bottom=0.45 / height,
        top=1 - top / height,
        wspace=0.15 if sharey else 0.4, hspace=0.7,
    )  # fmt: skip
    if not count:
        return fig, []
    axes = list(fig.subplots(rows, cols, squeeze=False, sharey=sharey).flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    for ax in axes[:count]:
        ax.xaxis.set_major_locator(MaxNLocator(3 if cols > 2 else 6))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.tick_params(labelsize=7)
        ax.grid(True, lw=0.3, alpha=0.5)
    return fig, axes[:count]


def _log_x(ax: Axes) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())


def _empty(fig: Figure, message: str) -> None:
    fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=9, color=FAINT_COLOR)


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
