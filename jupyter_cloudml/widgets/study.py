"""The study widget: `StudyView` (display only), `StudyWatcher` (polls a client), `study_widget`.

A study's progress, its trials table (sortable, best highlighted), every trial's curve of the
objective metric and the metric against each parameter.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import ipywidgets

from ..models import Goal, JobStatus, Scalar, Scale, StudyInfo, TrialInfo, TrialStatus
from ..views.studies import (
    format_objective,
    format_trial_counts,
    param_names,
    sort_trials,
    trials_done,
)
from ..views.text import NONE, format_number
from .job import (
    PlotImage,
    ScalarSeries,
    load_plots,
    render_badge,
    render_error,
    render_header,
)
from .saved import SavedCopy
from .watch import MetricsReader, MetricsSource, Watcher

#: The table's orders: label shown, then the `render.sort_trials` key.
SORT_CHOICES = (("metric (best first)", "metric"), ("trial number", "number"), ("status", "status"))

#: Points kept per trial curve: a study's many curves are drawn faint, with less detail.
TRIAL_POINTS = 500

BEST_ROW = "background:#fff3cd;font-weight:bold"
_TABLE_BOX = "max-height:18em;overflow-y:auto"
_BAR_STYLES = {
    JobStatus.SUCCEEDED: "success",
    JobStatus.FAILED: "danger",
    JobStatus.CANCELLED: "warning",
}


def render_trials(study: StudyInfo, sort: str = "metric") -> str:
    """The trials as an HTML table: number, status, each parameter, metric, steps, job id;
    the best trial's row highlighted and starred."""
    best = study.best_trial.number if study.best_trial is not None else None
    names = param_names(study)
    arrow = "&uarr;" if study.tuning.goal is Goal.MAXIMIZE else "&darr;"
    head = "".join(
        f"<th>{cell}</th>"
        for cell in (
            "#",
            "status",
            *(html.escape(n) for n in names),
            f"{html.escape(study.tuning.metric)} {arrow}",
            "steps",
            "job",
        )
    )
    rows = []
    for trial in sort_trials(study, sort):
        is_best = trial.number == best
        cells = [
            f"{trial.number}{' &#9733;' if is_best else ''}",
            render_badge(trial.status),
            *(html.escape(format_number(trial.params.get(n))) for n in names),
            html.escape(format_number(trial.value, 6)),
            str(trial.steps),
            html.escape(trial.job_id or NONE),
        ]
        style = f' style="{BEST_ROW}"' if is_best else ""
        title = f' title="{html.escape(trial.reason)}"' if trial.reason else ""
        row = "".join(f"<td>{cell}</td>" for cell in cells)
        rows.append(f"<tr{style}{title}>{row}</tr>")
    table = f'<table class="cloudml-trials"><tr>{head}</tr>{"".join(rows)}</table>'
    return f'<div style="{_TABLE_BOX}">{table}</div>'


def _curves_key(curves: Mapping[int, Sequence[Scalar]], best: int | None) -> object:
    return best, tuple((n, len(p), p[-1] if p else None) for n, p in sorted(curves.items()))


def _scatter_key(trials: Sequence[TrialInfo], best: int | None) -> object:
    return best, tuple(
        (t.number, t.value, tuple(t.params.items())) for t in trials if t.value is not None
    )


class StudyView(SavedCopy, ipywidgets.VBox):
    """Progress, trials table and plots of one study; fed by `update` (usually from a
    `StudyWatcher`).

    Children: `header` (HTML), a row of `progress` (IntProgress: finished of max trials) and
    `counts` (HTML), `error` (HTML), `sort` (Dropdown of `SORT_CHOICES`), `table` (HTML),
    `curves` and `scatter` (`PlotImage`s, hidden until drawn), `note` (problems with them).
    """

    def __init__(self, **kwargs: Any) -> None:
        self.header = ipywidgets.HTML()
        self.progress = ipywidgets.IntProgress(min=0, max=1, value=0)
        self.counts = ipywidgets.HTML()
        self.error = ipywidgets.HTML()
        self.sort = ipywidgets.Dropdown(options=SORT_CHOICES, value="metric", description="Sort")
        self.table = ipywidgets.HTML()
        self.curves = PlotImage(caption="each trial's metric by step")
        self.scatter = PlotImage(caption="the metric by parameter value")
        self.note = ipywidgets.HTML()
        self._study: StudyInfo | None = None
        self._metrics_error = ""
        self._lock = threading.RLock()
        #: The watcher feeding this view, if `study_widget` started one (`view.watcher.stop()`).
        self.watcher: StudyWatcher | None = None
        self.sort.observe(self._sort_changed, "value")
        super().__init__(
            children=[
                self.header,
                ipywidgets.HBox([self.progress, self.counts]),
                self.error,
                self.sort,
                self.table,
                self.curves,
                self.scatter,
                self.note,
            ],
            **kwargs,
        )

    def update(self, study: StudyInfo, curves: Mapping[int, Sequence[Scalar]]) -> None:
        """Show `study` and each trial's curve of its metric (by trial number); the plots are
        redrawn only when their data changed (at most once a second, all of it at the end)."""
        with self._lock:
            self._study = study
            self.header.value = f"{render_header(study)} · {html.escape(format_objective(study))}"
            self.progress.max = max(study.tuning.max_trials, 1)
            self.progress.value = min(trials_done(study), self.progress.max)
            self.progress.bar_style = _BAR_STYLES.get(study.status, "info")
            self.counts.value = html.escape(format_trial_counts(study))
            self.error.value = ""
            self.table.value = render_trials(study, self.sort.value)
            self._plot(study, curves)

    def show_error(self, message: str) -> None:
        """Show a problem fetching the study (cleared by the next successful `update`)."""
        with self._lock:
            self.error.value = render_error(message)

    def show_metrics_error(self, message: str) -> None:
        """Show a problem reading the trials' metrics (`""` clears it)."""
        with self._lock:
            self._metrics_error = message
            self._show_note()

    def _plot(self, study: StudyInfo, curves: Mapping[int, Sequence[Scalar]]) -> None:
        best = study.best_trial.number if study.best_trial is not None else None
        metric, trials = study.tuning.metric, study.trials
        log_params = {p.name for p in study.tuning.params if p.scale is Scale.LOG}
        self.curves.show(
            _curves_key(curves, best),
            lambda: load_plots().study_curves_png(curves, metric=metric, best=best),
        )
        self.scatter.show(
            _scatter_key(trials, best),
            lambda: load_plots().param_scatter_png(
                trials, metric=metric, best=best, log_params=log_params
            ),
        )
        if study.status.terminal:
            self.curves.flush()
            self.scatter.flush()
        self._show_note()

    def _show_note(self) -> None:
        self.note.value = render_error(
            self._metrics_error, self.curves.problem, self.scatter.problem
        )

    def copy_subject(self) -> tuple[str, str, str, bool] | None:
        study = self._study
        if study is None:
            return None
        return "study", study.id, study.status.value, study.status.terminal

    def _sort_changed(self, change: dict[str, Any]) -> None:
        with self._lock:
            if self._study is not None:
                self.table.value = render_trials(self._study, change["new"])


class StudySource(MetricsSource, Protocol):
    """The part of `Client` a study watcher needs."""

    def get_study(self, study_id: str) -> StudyInfo: ...


class StudyWatcher(Watcher[StudyInfo]):
    """Feeds `view` a study and its trials' curves of the study's metric every `interval`
    seconds until the study ends (see `Watcher`).

    Each trial's job is read through `client.metrics` from where the last read stopped, until
    a read after the trial finished; other metric tags are dropped.
    """

    def __init__(
        self,
        client: StudySource,
        study_id: str,
        view: StudyView,
        *,
        interval: float = 1.0,
        retries: int = 5,
        max_backoff: float = 10.0,
    ) -> None:
        super().__init__(
            view, study_id, interval=interval, retries=retries, max_backoff=max_backoff
        )
        self.client = client
        self.study_id = study_id
        self.view = view
        self.metrics = MetricsReader(client)
        self.curves: dict[int, ScalarSeries] = {}
        self._complete: set[int] = set()  # trials whose last scalars are in

    def poll(self) -> StudyInfo:
        """Fetch the study, then the new scalars of every trial still worth reading; show both."""
        study = self.client.get_study(self.study_id)
        for trial in study.trials:
            if trial.job_id is None or trial.number in self._complete:
                continue
            update = self.metrics.read(trial.job_id)
            if update is None:
                continue
            series = self.curves.setdefault(trial.number, ScalarSeries(TRIAL_POINTS))
            series.extend(update.scalars.get(study.tuning.metric, ()))
            if trial.status is not TrialStatus.RUNNING:
                self._complete.add(trial.number)
        self.view.update(study, {number: s.points for number, s in self.curves.items()})
        self.view.show_metrics_error(self.metrics.error)
        self.view.keep()
        return study


def study_widget(client: StudySource, study_id: str, *, interval: float = 1.0) -> StudyView:
    """A `StudyView` of `study_id`, filled once right away, then kept live by a `StudyWatcher`."""
    view = StudyView()
    view.watcher = StudyWatcher(client, study_id, view, interval=interval)
    view.watcher.follow()
    return view
