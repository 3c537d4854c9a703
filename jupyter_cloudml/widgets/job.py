"""`JobView`: a live job display that only renders the data handed to it (no Client inside).

The `render_*` functions are pure (job in, HTML out) so they can be tested as strings; the
building blocks shared with the study view (`PlotImage`, `ScalarSeries`, badges) live here too.
"""

from __future__ import annotations

import collections
import html
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Int, observe

from ..exceptions import CloudMLError
from ..models import JobInfo, JobStatus, LogLine, MetricsUpdate, Scalar, StudyInfo, TrialStatus
from ..views.jobs import format_log_line
from ..views.text import format_duration
from .saved import SavedCopy

if TYPE_CHECKING:
    from .watch import JobWatcher

#: Badge background per status (text is white).
STATUS_COLORS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "#757575",
    JobStatus.STARTING: "#757575",
    JobStatus.RUNNING: "#1976d2",
    JobStatus.RETRYING: "#ef6c00",
    JobStatus.SUCCEEDED: "#2e7d32",
    JobStatus.FAILED: "#c62828",
    JobStatus.CANCELLED: "#424242",
}

#: Trial badges take the job color of the same name; a pruned trial was stopped early on purpose.
TRIAL_COLORS: dict[TrialStatus, str] = {
    **{
        s: STATUS_COLORS[JobStatus(s.value)]
        for s in TrialStatus
        if s.value in JobStatus.__members__
    },
    TrialStatus.PRUNED: "#8d6e63",
}

DEFAULT_MAX_LINES = 200
#: Points a curve keeps per metric (`ScalarSeries`), and the most seconds between two redraws.
MAX_POINTS = 2000
DRAW_INTERVAL = 1.0

log = logging.getLogger(__name__)

#: The style of a status pill (`render_pill`): white text on the color put in for `{}`.
BADGE_STYLE = "background:{};color:#fff;border-radius:3px;padding:1px 6px;font-size:0.85em"
_LOG_BOX = (
    "max-height:20em;overflow-y:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #ddd;padding:2px 4px"
)
# The box scrolls, not the <pre>: JupyterLab gives <pre> overflow:auto, which would let it shrink
# inside the flex box and scroll on its own from the top, hiding the newest lines.
_LOG_PRE = "margin:0;flex-shrink:0;overflow:visible"


def describe_error(exc: BaseException) -> str:
    """One line for the user: a domain error's own message, else its type and message."""
    if isinstance(exc, CloudMLError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def render_pill(text: str, color: str) -> str:
    """`text`, escaped, as a pill of background `color`: the badge every view shows a status
    in (of a job, a study, a trial, a deployment or a serving replica)."""
    return f'<span style="{BADGE_STYLE.format(color)}">{html.escape(text)}</span>'


def render_badge(status: JobStatus | TrialStatus) -> str:
    """The status (of a job, study or trial) as a colored pill."""
    color = TRIAL_COLORS[status] if isinstance(status, TrialStatus) else STATUS_COLORS[status]
    return render_pill(status.value, color)


def render_error(*messages: str) -> str:
    """Problems in red, escaped, one a line; empty when there is none."""
    color = STATUS_COLORS[JobStatus.FAILED]
    lines = [f'<span style="color:{color}">{html.escape(m)}</span>' for m in messages if m]
    return "<br>".join(lines)


def render_header(job: JobInfo | StudyInfo) -> str:
    """Id, name, status badge and the reason when there is one (of a job or a study)."""
    parts = [
        f"<b>{html.escape(job.id)}</b>",
        html.escape(job.name),
        render_badge(job.status),
    ]
    if job.reason:
        parts.append(f"<i>{html.escape(job.reason)}</i>")
    return " ".join(parts)


def render_summary(job: JobInfo, now: float | None = None) -> str:
    """Elapsed time and, for a job that may retry, which attempt this is."""
    if job.started is None:
        parts = ["not started"]
    else:
        end = job.finished if job.finished is not None else (time.time() if now is None else now)
        parts = [f"elapsed {format_duration(end - job.started)}"]
    retries = job.spec.retries if job.spec is not None else 0
    if retries > 0:
        # `attempt` counts from 1; 0 means the first attempt has not been recorded yet.
        parts.append(f"attempt {max(job.attempt, 1)} of {retries + 1}")
    return " · ".join(parts)


def render_replicas(job: JobInfo) -> str:
    """The replicas as an HTML table (name, state, exit code, GPUs); empty without replicas."""
    if not job.replicas:
        return ""
    rows = []
    for replica in job.replicas:
        code = "" if replica.exit_code is None else str(replica.exit_code)
        if replica.exit_code:
            code = f'<span style="color:{STATUS_COLORS[JobStatus.FAILED]}">{code}</span>'
        gpus = ", ".join(str(g) for g in replica.gpus) or "-"
        rows.append(
            f"<tr><td>{html.escape(replica.name)}</td><td>{replica.status.value}</td>"
            f"<td>{code}</td><td>{gpus}</td></tr>"
        )
    head = "<tr><th>replica</th><th>state</th><th>exit code</th><th>GPUs</th></tr>"
    return f'<table class="cloudml-replicas">{head}{"".join(rows)}</table>'


def render_log(lines: Sequence[str]) -> str:
    """Text lines, escaped, in a monospace box that stays scrolled to the newest line."""
    if not lines:
        return ""
    body = "\n".join(html.escape(line) for line in lines)
    return f'<div style="{_LOG_BOX}"><pre style="{_LOG_PRE}">{body}</pre></div>'


def load_plots() -> ModuleType:
    """The `plots` module: matplotlib loads with the first plot drawn, not with the widgets."""
    from . import plots

    return plots


class ScalarSeries:
    """One metric's points as a view keeps them: evenly spaced, at most `2 * limit` plus the newest.

    Past the bound every other point is dropped and later points are taken at the new spacing,
    so a long run costs bounded memory and still draws its whole history.
    """

    def __init__(self, limit: int = MAX_POINTS) -> None:
        self.limit = limit
        self.count = 0  # points received, kept or not
        self._kept: list[Scalar] = []
        self._latest: Scalar | None = None
        self._stride = 1

    def extend(self, new: Iterable[Scalar]) -> None:
        """Take the points that came after the ones already seen."""
        for point in new:
            if self.count % self._stride == 0:
                self._kept.append(point)
                if len(self._kept) > 2 * self.limit:
                    self._kept = self._kept[::2]
                    self._stride *= 2
            self.count += 1
            self._latest = point

    @property
    def points(self) -> list[Scalar]:
        """The kept points, oldest first, always ending with the newest one received."""
        if self._latest is None or (self._kept and self._kept[-1] is self._latest):
            return list(self._kept)
        return [*self._kept, self._latest]


class PlotImage(ipywidgets.Image):
    """A PNG drawn on demand: redrawn only when its data `key` changed, at most once per
    `interval` seconds, and hidden until first drawn.

    A change that comes too soon waits for the next `show` after the interval, or `flush`. A
    drawing failure is kept in `problem` (for the view to show), never raised.
    """

    def __init__(
        self,
        interval: float = DRAW_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        caption: str = "chart",
        **kwargs: Any,
    ) -> None:
        super().__init__(format="png", layout=ipywidgets.Layout(display="none"), **kwargs)
        #: What the plot shows, in words (the alt text of its saved copy).
        self.caption = caption
        self.interval = interval
        self.clock = clock
        self.renders = 0
        self.problem = ""
        self._key: Hashable = None
        self._drawn_at: float | None = None
        self._pending: tuple[Hashable, Callable[[], bytes]] | None = None

    def show(self, key: Hashable, draw: Callable[[], bytes]) -> None:
        """Draw with `draw()` unless `key` is what is shown or the last drawing is too recent."""
        if key == self._key:
            self._pending = None
            return
        now = self.clock()
        if self._drawn_at is not None and now - self._drawn_at < self.interval:
            self._pending = (key, draw)
            return
        self._draw(key, draw, now)

    def flush(self) -> None:
        """Draw the change held back by the interval, if any, now."""
        if self._pending is not None:
            self._draw(*self._pending, self.clock())

    def _draw(self, key: Hashable, draw: Callable[[], bytes], now: float) -> None:
        self._pending = None
        self._drawn_at = now
        try:
            png = draw()
        except Exception as exc:  # a plot must never take the live view down with it
            log.warning("cannot draw a plot", exc_info=True)
            self.problem = f"cannot draw the plot: {describe_error(exc)}"
            return
        self.problem = ""
        self._key = key
        self.value = png
        self.renders += 1
        self.layout.display = None


class JobView(SavedCopy, ipywidgets.VBox):
    """Status, replicas, metric curves and log tail of one job; fed by `update` and
    `update_metrics` (usually from a `JobWatcher`).

    Children: `HTML` widgets `header`, `summary`, `replicas`, `error`, then the curves
    (`metrics`, a `PlotImage`, hidden until the job reports a scalar) and `metrics_note`
    (problems with them), then `log_tail`.
    """

    max_lines = Int(DEFAULT_MAX_LINES, help="How many of the newest log lines the tail keeps.")

    def __init__(self, **kwargs: Any) -> None:
        self.header = ipywidgets.HTML()
        self.summary = ipywidgets.HTML()
        self.replicas = ipywidgets.HTML()
        self.error = ipywidgets.HTML()
        self.metrics = PlotImage(caption="metric curves")
        self.metrics_note = ipywidgets.HTML()
        self.log_tail = ipywidgets.HTML()
        self._lines: collections.deque[str] = collections.deque(maxlen=DEFAULT_MAX_LINES)
        self._series: dict[str, ScalarSeries] = {}
        self._metrics_error = ""
        self._job: JobInfo | None = None
        self._lock = threading.RLock()
        #: The watcher feeding this view, if `job_widget` started one (`view.watcher.stop()`).
        self.watcher: JobWatcher | None = None
        children = [self.header, self.summary, self.replicas, self.error]
        children += [self.metrics, self.metrics_note, self.log_tail]
        super().__init__(children=children, **kwargs)

    def update(self, job: JobInfo, new_lines: Sequence[LogLine] = ()) -> None:
        """Show `job`'s state and append `new_lines` to the tail (one value change per call)."""
        with self._lock:
            self._job = job
            self.header.value = render_header(job)
            self.summary.value = render_summary(job)
            self.replicas.value = render_replicas(job)
            self.error.value = ""
            if new_lines:
                self._lines.extend(format_log_line(line) for line in new_lines)
                self.log_tail.value = render_log(self._lines)

    def show_error(self, message: str) -> None:
        """Show a problem fetching the job (cleared by the next successful `update`)."""
        with self._lock:
            self.error.value = render_error(message)

    def update_metrics(self, update: MetricsUpdate) -> None:
        """Add the scalars of `update` to the curves; redraw them when any came (throttled)."""
        with self._lock:
            for tag, points in update.scalars.items():
                if points:
                    self._series.setdefault(tag, ScalarSeries()).extend(points)
            if self._series:
                received = sum(series.count for series in self._series.values())
                self.metrics.show(received, self._draw_metrics)
            self._show_metrics_note()

    def flush_metrics(self) -> None:
        """Draw now what the throttle held back (the watcher does once the job has ended)."""
        with self._lock:
            self.metrics.flush()
            self._show_metrics_note()

    def show_metrics_error(self, message: str) -> None:
        """Show a problem reading metrics (`""` clears it); the job's own status stays."""
        with self._lock:
            self._metrics_error = message
            self._show_metrics_note()

    @property
    def scalars(self) -> dict[str, list[Scalar]]:
        """The kept points of each metric tag, in the order the tags first came."""
        with self._lock:
            return {tag: series.points for tag, series in self._series.items()}

    def _draw_metrics(self) -> bytes:
        return load_plots().metric_curves_png(self.scalars)

    def _show_metrics_note(self) -> None:
        self.metrics_note.value = render_error(self._metrics_error, self.metrics.problem)

    def copy_subject(self) -> tuple[str, str, str, bool] | None:
        job = self._job
        return None if job is None else ("job", job.id, job.status.value, job.status.terminal)

    @property
    def lines(self) -> list[str]:
        """The tail as plain text lines (`[replica] text`), oldest first."""
        with self._lock:
            return list(self._lines)

    @observe("max_lines")
    def _max_lines_changed(self, change: dict[str, Any]) -> None:
        with self._lock:
            self._lines = collections.deque(self._lines, maxlen=max(change["new"], 0))
            self.log_tail.value = render_log(self._lines)
