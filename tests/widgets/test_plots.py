"""The metric figures: valid PNGs of the expected size, what each figure shows, no pyplot."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest

from jupyter_cloudml.models import Scalar, TrialInfo, TrialStatus
from jupyter_cloudml.widgets.plots import (
    BEST_COLOR,
    DPI,
    MAX_PANELS,
    metric_curves_figure,
    metric_curves_png,
    param_scatter_figure,
    param_scatter_png,
    study_curves_figure,
    study_curves_png,
    thin,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def series(n: int, start: float = 1.0, slope: float = -0.01) -> list[Scalar]:
    return [Scalar(step=10 * i, wall_time=float(i), value=start + slope * i) for i in range(n)]


def decode(data: bytes) -> tuple[int, int]:
    """(width, height) of PNG bytes, decoded for real."""
    assert data.startswith(PNG_MAGIC)
    image = matplotlib.image.imread(io.BytesIO(data), format="png")
    return image.shape[1], image.shape[0]


def trial(number: int, value: float | None, **params: float | int | str) -> TrialInfo:
    status = TrialStatus.RUNNING if value is None else TrialStatus.SUCCEEDED
    return TrialInfo(number, status, params, value=value, job_id=f"job-{number}")


TRIALS = [
    trial(0, 0.71, lr=1e-4, layers=1, opt="adam"),
    trial(1, 0.93, lr=3e-3, layers=3, opt="sgd"),
    trial(2, 0.85, lr=0.09, layers=2, opt="adam"),
    trial(3, None, lr=0.02, layers=4, opt="sgd"),
]


def values(data: object) -> list[Any]:
    """Array data an artist holds, as plain lists."""
    return list(np.asarray(data).tolist())


def same_color(a: object, b: str) -> bool:
    return matplotlib.colors.to_hex(a) == matplotlib.colors.to_hex(b)  # type: ignore[arg-type]


# --- PNG bytes --------------------------------------------------------------------------------


def test_metric_curves_png_is_a_small_png_that_follows_the_data() -> None:
    first = metric_curves_png({"loss": series(50), "accuracy": series(50, 0.1, 0.01)})
    assert decode(first) == (6 * DPI, int(2.5 * DPI))
    grown = metric_curves_png({"loss": series(60), "accuracy": series(60, 0.1, 0.01)})
    assert grown != first
    assert metric_curves_png({"loss": series(50), "accuracy": series(50, 0.1, 0.01)}) == first


def test_study_curves_png_follows_the_data_and_the_best() -> None:
    curves = {0: series(30), 1: series(30, 0.5, 0.02), 2: series(10)}
    first = study_curves_png(curves, metric="accuracy", best=1)
    assert decode(first) == (6 * DPI, int(2.5 * DPI))
    assert study_curves_png({**curves, 3: series(5)}, metric="accuracy", best=1) != first
    assert study_curves_png(curves, metric="accuracy", best=0) != first


def test_param_scatter_png_follows_the_data() -> None:
    first = param_scatter_png(TRIALS, metric="accuracy", best=1)
    assert decode(first)[0] == 6 * DPI
    scored = [*TRIALS[:3], trial(3, 0.5, lr=0.02, layers=4, opt="sgd")]
    assert param_scatter_png(scored, metric="accuracy", best=1) != first


@pytest.mark.parametrize(
    "draw",
    [
        lambda: metric_curves_png({}),
        lambda: metric_curves_png({"loss": []}),
        lambda: study_curves_png({}, metric="accuracy", best=None),
        lambda: study_curves_png({4: []}, metric="accuracy", best=4),
        lambda: param_scatter_png([], metric="accuracy", best=None),
        lambda: param_scatter_png([trial(0, None, lr=0.1)], metric="accuracy", best=None),
    ],
)
def test_no_data_yet_is_still_a_picture(draw: object) -> None:
    width, height = decode(draw())  # type: ignore[operator]
    assert width > 0 and height > 0


def test_a_single_point_and_odd_values_draw() -> None:
    odd = [Scalar(0, 0.0, 1.0), Scalar(1, 1.0, float("inf")), Scalar(2, 2.0, float("nan"))]
    assert decode(metric_curves_png({"loss": [Scalar(5, 0.0, 0.3)], "odd": odd}))
    assert decode(study_curves_png({1: [Scalar(5, 0.0, 0.3)]}, metric="loss", best=1))
    nan_trial = trial(5, float("nan"), lr=0.1, layers=1, opt="adam")
    assert decode(param_scatter_png([*TRIALS, nan_trial], metric="accuracy", best=None))


# --- what the figures show --------------------------------------------------------------------


def test_one_panel_per_tag_with_the_extra_tags_counted() -> None:
    fig = metric_curves_figure({"loss": series(20), "accuracy": series(20)}, title="mnist")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert fig.get_suptitle() == "mnist"
    many = {f"tag{i}": series(5) for i in range(MAX_PANELS + 2)}
    fig = metric_curves_figure(many)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [f"tag{i}" for i in range(MAX_PANELS)]
    assert "+2 more" in fig.get_suptitle()


def test_curves_plot_value_against_step() -> None:
    fig = metric_curves_figure({"loss": series(20)})
    (line,) = fig.axes[0].get_lines()
    assert values(line.get_xdata())[:3] == [0, 10, 20]
    assert values(line.get_ydata())[:2] == [1.0, 0.99]


def test_study_curves_give_each_trial_a_color_and_a_legend_the_best_on_top() -> None:
    curves = {0: series(30), 1: series(30, 0.5, 0.02), 2: series(10)}
    ax = study_curves_figure(curves, metric="accuracy", best=1).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"trial 0", "trial 1 (best)", "trial 2"}
    best = lines["trial 1 (best)"]
    assert same_color(best.get_color(), BEST_COLOR) and best.get_zorder() > 2
    assert values(best.get_ydata())[:2] == [0.5, 0.52]
    colors = {matplotlib.colors.to_hex(line.get_color()) for line in lines.values()}
    assert len(colors) == 3  # one color per trial
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "trial 1 (best)" and set(legend) == set(lines)
    assert "trial 1" in ax.get_title(loc="left")
    assert ax.get_ylabel() == "accuracy" and ax.get_xlabel() == "step"


def test_a_legend_of_many_trials_names_the_best_and_counts_the_rest() -> None:
    curves = {n: series(5, 1.0 - n / 100) for n in range(30)}
    ax = study_curves_figure(curves, metric="loss", best=29).axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "trial 29 (best)" and texts[-1] == "+19 more" and len(texts) == 12


def test_trials_with_one_final_value_are_points_by_trial_on_a_sensible_axis() -> None:
    curves = {n: [Scalar(step=0, wall_time=0.0, value=0.8 + n / 100)] for n in range(5)}
    ax = study_curves_figure(curves, metric="accuracy", best=4).axes[0]
    plain, best = ax.collections
    assert np.allclose(plain.get_offsets(), [[0, 0.8], [1, 0.81], [2, 0.82], [3, 0.83]])
    assert np.allclose(best.get_offsets(), [[4, 0.84]]) and not best.get_clip_on()
    assert ax.get_xlabel() == "trial" and "trial 4" in ax.get_title(loc="left")
    low, high = ax.get_ylim()
    assert low < 0.8 and high > 0.84 and high - low < 0.1
    one = {0: [Scalar(step=0, wall_time=0.0, value=0.5)]}
    low, high = study_curves_figure(one, metric="accuracy", best=0).axes[0].get_ylim()
    assert low < 0.5 < high and 0.01 < high - low < 0.1


def test_scatter_has_a_log_axis_for_a_loguniform_param_and_categories_for_strings() -> None:
    fig = param_scatter_figure(TRIALS, metric="accuracy", best=1)
    lr, layers, opt = fig.axes
    assert [ax.get_xlabel() for ax in fig.axes] == ["lr", "layers", "opt"]
    assert lr.get_xscale() == "log"  # 1e-4 .. 0.09: nearly three decades
    assert layers.get_xscale() == "linear"
    assert [t.get_text() for t in opt.get_xticklabels()] == ["adam", "sgd"]
    narrow = [trial(i, 0.5 + i / 10, lr=0.01 * (i + 1)) for i in range(4)]  # 0.01 .. 0.04
    assert param_scatter_figure(narrow, metric="accuracy", best=None).axes[0].get_xscale() == (
        "linear"
    )
    searched_on_a_log_scale = param_scatter_figure(
        narrow, metric="accuracy", best=None, log_params={"lr"}
    )
    assert searched_on_a_log_scale.axes[0].get_xscale() == "log"


def test_scatter_plots_scored_trials_with_the_best_highlighted() -> None:
    fig = param_scatter_figure(TRIALS, metric="accuracy", best=1)
    plain, best = fig.axes[0].collections
    assert len(values(plain.get_offsets())) == 2  # trial 3 has no value yet
    assert values(best.get_offsets()) == [[3e-3, 0.93]]
    assert same_color(best.get_facecolor()[0], BEST_COLOR) and not best.get_clip_on()
    assert fig.axes[0].get_ylabel() == "accuracy"


def test_thin_keeps_long_series_bounded_with_the_last_point() -> None:
    points = series(10_001)
    thinned = thin(points, limit=1000)
    assert len(thinned) <= 1001 and thinned[0] is points[0] and thinned[-1] is points[-1]
    short = series(10)
    assert thin(short, limit=1000) is short


def test_drawing_leaves_pyplot_alone() -> None:
    code = (
        "import sys; from jupyter_cloudml.widgets import plots; from jupyter_cloudml.models "
        "import Scalar; plots.metric_curves_png({'a': [Scalar(0, 0.0, 1.0)]}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
