"""`JobWatcher`: a daemon thread that polls a job and its new log lines into a `JobView`."""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterable, Iterator
from typing import Protocol

from ..exceptions import CloudMLError
from ..models import JobInfo, LogLine
from .job import JobView

log = logging.getLogger(__name__)


class JobSource(Protocol):
    """The part of `Client` a watcher needs."""

    def get(self, job_id: str) -> JobInfo: ...

    def logs(
        self, job_id: str, *, since: float | None = None, tail: int | None = None
    ) -> Iterator[LogLine]: ...


def describe_error(exc: BaseException) -> str:
    """One line for the user: a domain error's own message, else its type and message."""
    if isinstance(exc, CloudMLError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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


class JobWatcher:
    """Polls `client` every `interval` seconds and feeds `view` until the job ends.

    Client errors are shown in the view, retried with exponential backoff (`retries` times in
    a row at most), and never raised from the thread.
    """

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
        self.client = client
        self.job_id = job_id
        self.view = view
        self.interval = interval
        self.retries = retries
        self.max_backoff = max_backoff
        self.cursor = LogCursor()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> JobInfo:
        """Fetch the job, then its new lines (a full drain once it is terminal); show both."""
        job = self.client.get(self.job_id)
        if self.cursor.since is None:
            lines = self.client.logs(self.job_id, tail=self.view.max_lines)
        else:
            lines = self.client.logs(self.job_id, since=self.cursor.since)
        self.view.update(job, self.cursor.take(lines))
        return job

    def start(self) -> JobWatcher:
        """Start polling in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"cloudml-watch-{self.job_id}", daemon=True
            )
            self._thread.start()
        return self

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
        while not self._stop.is_set() and self.view.comm is not None:
            try:
                job = self.poll()
            except Exception as exc:
                failures += 1
                message = f"{self.job_id}: {describe_error(exc)}"
                if failures > self.retries:
                    self._show_error(f"{message} (gave up after {failures} tries)")
                    return
                delay = min(self.interval * 2**failures, self.max_backoff)
                self._show_error(f"{message} (retrying in {delay:.1f}s)")
                self._stop.wait(delay)
                continue
            failures = 0
            if job.status.terminal:
                return
            self._stop.wait(self.interval)

    def _show_error(self, message: str) -> None:
        try:
            self.view.show_error(message)
        except Exception:  # the view itself is broken: nothing left to show it in
            log.exception("cannot show %r", message)


def job_widget(client: JobSource, job_id: str, *, interval: float = 0.5) -> JobView:
    """A `JobView` of `job_id`, filled once right away, then kept live by a `JobWatcher`."""
    view = JobView()
    watcher = JobWatcher(client, job_id, view, interval=interval)
    view.watcher = watcher
    try:
        done = watcher.poll().status.terminal
    except Exception as exc:
        view.show_error(f"{job_id}: {describe_error(exc)}")
        done = False
    if not done:
        watcher.start()
    return view
