"""`JobView`: a live job display that only renders the data handed to it (no Client inside).

The `render_*` functions are pure (job in, HTML out) so they can be tested as strings.
"""

from __future__ import annotations

import collections
import html
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets
from traitlets import Int, observe

from ..models import JobInfo, JobStatus, LogLine
from ..render import format_duration, format_log_line

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

DEFAULT_MAX_LINES = 200

_BADGE = "background:{};color:#fff;border-radius:3px;padding:1px 6px;font-size:0.85em"
_LOG_BOX = (
    "max-height:20em;overflow-y:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #ddd;padding:2px 4px"
)
# The box scrolls, not the <pre>: JupyterLab gives <pre> overflow:auto, which would let it shrink
# inside the flex box and scroll on its own from the top, hiding the newest lines.
_LOG_PRE = "margin:0;flex-shrink:0;overflow:visible"


def render_badge(status: JobStatus) -> str:
    """The status as a colored pill."""
    return f'<span style="{_BADGE.format(STATUS_COLORS[status])}">{status.value}</span>'


def render_header(job: JobInfo) -> str:
    """Job id, name, status badge and the reason when there is one."""
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


class JobView(ipywidgets.VBox):
    """Status, replicas and log tail of one job; fed by `update` (usually from a `JobWatcher`).

    Children (each an `HTML` widget whose `value` is the state): `header`, `summary`,
    `replicas`, `error`, `log_tail`.
    """

    max_lines = Int(DEFAULT_MAX_LINES, help="How many of the newest log lines the tail keeps.")

    def __init__(self, **kwargs: Any) -> None:
        self.header = ipywidgets.HTML()
        self.summary = ipywidgets.HTML()
        self.replicas = ipywidgets.HTML()
        self.error = ipywidgets.HTML()
        self.log_tail = ipywidgets.HTML()
        self._lines: collections.deque[str] = collections.deque(maxlen=DEFAULT_MAX_LINES)
        self._lock = threading.RLock()
        #: The watcher feeding this view, if `job_widget` started one (`view.watcher.stop()`).
        self.watcher: JobWatcher | None = None
        super().__init__(
            children=[self.header, self.summary, self.replicas, self.error, self.log_tail], **kwargs
        )

    def update(self, job: JobInfo, new_lines: Sequence[LogLine] = ()) -> None:
        """Show `job`'s state and append `new_lines` to the tail (one value change per call)."""
        with self._lock:
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
            self.error.value = (
                f'<span style="color:{STATUS_COLORS[JobStatus.FAILED]}">'
                f"{html.escape(message)}</span>"
            )

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
