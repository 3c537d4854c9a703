"""Watchers: daemon threads that poll a client and feed a view until what they watch ends.

`Watcher` holds the loop (retries with backoff, errors shown in the view, stop when the view
closes); `JobWatcher` feeds a `JobView` a job, its new log lines and its new scalars.
"""

from __future__ import annotations

import abc
import collections
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from ..models import JobInfo, JobStatus, LogLine, MetricsUpdate
from .job import JobView, describe_error

log = logging.getLogger(__name__)

__all__ = ["JobWatcher", "LogCursor", "MetricsReader", "Watcher", "describe_error", "job_widget"]


class JobSource(Protocol):
    """The part of `Client` a watcher needs."""

    def get(self, job_id: str) -> JobInfo: ...

    def logs(
        self, job_id: str, *, since: float | None = None, tail: int | None = None
    ) -> Iterator[LogLine]: ...


class MetricsSource(Protocol):
    """The part of `Client` that serves scalars (optional: a client without it shows none)."""

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate: ...


class Watched(Protocol):
    """What a poll returns: a job or a study, whose status says when to stop."""

    @property
    def status(self) -> JobStatus: ...


class ErrorView(Protocol):
    """What a watcher needs of its view besides the data: somewhere to show a problem."""

    comm: Any

    def show_error(self, message: str) -> None: ...


class LogCursor:
    """Where the log has been read up to; drops lines already seen at the boundary time.

    Asking with `since=t` may return again lines stamped exactly `t`; those already taken are
    skipped (counted, so that two identical lines in the same instant both show).
    """

    def __init__(self) -> None:
        self.since: float | None = None
        self._at_since: collections.Counter[tuple[str, str]] = collections.Counter()

    def take(self, lines: Iterable[LogLine]) -> list[LogLine]:
        """The lines not seen before, in order; advances the cursor past them."""
        skip = collections.Counter(self._at_since)
        fresh = []
        for line in lines:
            key = (line.replica, line.text)
            if self.since is not None and line.time < self.since:
                continue
            if line.time == self.since and skip[key] > 0:
                skip[key] -= 1
                continue
            fresh.append(line)
            if self.since is None or line.time > self.since:
                self.since = line.time
                self._at_since.clear()
            self._at_since[key] += 1
        return fresh


class MetricsReader:
    """Reads the new scalars of jobs through `client.metrics`, keeping one cursor per job.

    It never raises: a failed read leaves its message in `error` until that job's next good
    read; a client without `metrics`, or one raising `NotImplementedError`, is not asked again.
    """

    def __init__(self, client: object) -> None:
        self._metrics = getattr(client, "metrics", None)
        self.cursors: dict[str, str] = {}
        self._errors: dict[str, str] = {}

    @property
    def error(self) -> str:
        """The latest problem of a job whose last read failed; empty when none did."""
        return next(reversed(self._errors.values()), "")

    def read(self, job_id: str) -> MetricsUpdate | None:
        """The scalars `job_id` reported since the last read, or None if they cannot be had."""
        if self._metrics is None:
            return None
        try:
            update: MetricsUpdate = self._metrics(job_id, self.cursors.get(job_id))
        except NotImplementedError:
            self._metrics = None
            self._errors[job_id] = "metrics are not available from this backend"
            return None
        except Exception as exc:
            log.debug("metrics of %s failed", job_id, exc_info=True)
            self._errors.pop(job_id, None)  # re-insert: the newest problem shows
            self._errors[job_id] = f"metrics of {job_id}: {describe_error(exc)}"
            return None
        self._errors.pop(job_id, None)
        if update.cursor:
            self.cursors[job_id] = update.cursor
        return update


W = TypeVar("W", bound=Watched)
AnyWatcher = TypeVar("AnyWatcher", bound="Watcher[Any]")


class Watcher(abc.ABC, Generic[W]):
    """Calls `poll` every `interval` seconds in a daemon thread until it returns something
    terminal, the view is closed, or `stop` is called.

    Errors are shown in the view, retried with exponential backoff (`retries` times in a row at
    most), and never raised from the thread.
    """

    def __init__(
        self,
        view: ErrorView,
        name: str,
        *,
        interval: float,
        retries: int = 5,
        max_backoff: float = 10.0,
    ) -> None:
        self.name = name
        self.interval = interval
        self.retries = retries
        self.max_backoff = max_backoff
        self._view = view
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def poll(self) -> W:
        """Fetch once and show it; what it returns says whether to go on."""

    def follow(self) -> None:
        """Poll once in the caller's thread (the view is filled when shown), then keep polling in
        the background unless it has already ended; a first failure is shown, not raised."""
        try:
            done = self.poll().status.terminal
        except Exception as exc:
            self._show_error(f"{self.name}: {describe_error(exc)}")
            done = False
        if not done:
            self.start()

    def start(self: AnyWatcher) -> AnyWatcher:
        """Start polling in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"cloudml-watch-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def settle(self) -> None:
        """Poll once now, in the caller's thread, and stop polling in the background: for a
        caller that knows it has ended (it waited for it), so the view shows the end at once."""
        self.stop()
        try:
            self.poll()
        except Exception as exc:
            self._show_error(f"{self.name}: {describe_error(exc)}")

    def stop(self) -> None:
        """Ask the thread to end (it does so within one poll)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set() and self._view.comm is not None:
            try:
                watched = self.poll()
            except Exception as exc:
                failures += 1
                message = f"{self.name}: {describe_error(exc)}"
                if failures > self.retries:
                    self._show_error(f"{message} (gave up after {failures} tries)")
                    return
                delay = min(self.interval * 2**failures, self.max_backoff)
                self._show_error(f"{message} (retrying in {delay:.1f}s)")
                self._stop.wait(delay)
                continue
            failures = 0
            if watched.status.terminal:
                return
            self._stop.wait(self.interval)

    def _show_error(self, message: str) -> None:
        try:
            self._view.show_error(message)
        except Exception:  # the view itself is broken: nothing left to show it in
            log.exception("cannot show %r", message)


class JobWatcher(Watcher[JobInfo]):
    """Feeds `view` a job's state, new log lines and new scalars every `interval` seconds until
    the job ends (see `Watcher`). A failure reading metrics is shown beside the curves and never
    holds up the status and logs."""

    def __init__(
        self,
        client: JobSource,
        job_id: str,
        view: JobView,
        *,
        interval: float = 0.5,
        retries: int = 5,
        max_backoff: float = 10.0,
    ) -> None:
        super().__init__(view, job_id, interval=interval, retries=retries, max_backoff=max_backoff)
        self.client = client
        self.job_id = job_id
        self.view = view
        self.cursor = LogCursor()
        self.metrics = MetricsReader(client)
        self.reported = False  # a template job's evaluation report is shown once

    def poll(self) -> JobInfo:
        """Fetch the job, then its new lines (a full drain once it is terminal) and scalars."""
        job = self.client.get(self.job_id)
        if self.cursor.since is None:
            lines = self.client.logs(self.job_id, tail=self.view.max_lines)
        else:
            lines = self.client.logs(self.job_id, since=self.cursor.since)
        self.view.update(job, self.cursor.take(lines))
        update = self.metrics.read(self.job_id)
        if update is not None:
            self.view.update_metrics(update)
        if job.status.terminal:
            self.view.flush_metrics()
            if not self.reported:
                self.reported = True
                self.view.children += tuple(evaluation_widgets(self.client, job))
        self.view.show_metrics_error(self.metrics.error)
        self.view.keep()
        return job


def evaluation_widgets(client: Any, job: JobInfo) -> list[Any]:
    """A finished template job's evaluation report (views/templates.py), if it has one."""
    import ipywidgets

    from ..commands.template_flags import evaluation_html

    html = evaluation_html(client, job)
    return [] if html is None else [ipywidgets.HTML(html)]


def job_widget(client: JobSource, job_id: str, *, interval: float = 0.5) -> JobView:
    """A `JobView` of `job_id`, filled once right away, then kept live by a `JobWatcher`."""
    view = JobView()
    view.watcher = JobWatcher(client, job_id, view, interval=interval)
    view.watcher.follow()
    return view
