"""The job widget: pure renderers, `JobView` state through `get_state()`, the live watcher."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cloudml_testkit import wait_for

from jupyter_cloudml.exceptions import BackendUnavailable
from jupyter_cloudml.models import (
    CodePackage,
    JobInfo,
    JobStatus,
    LogLine,
    MetricsUpdate,
    ReplicaInfo,
    ReplicaStatus,
    Scalar,
    TrainSpec,
)
from jupyter_cloudml.widgets import JobView, JobWatcher, job_widget
from jupyter_cloudml.widgets.job import (
    STATUS_COLORS,
    ScalarSeries,
    render_header,
    render_replicas,
    render_summary,
)
from jupyter_cloudml.widgets.watch import LogCursor

SPEC = TrainSpec(name="mnist", package=CodePackage(archive=b"", module="main"), retries=3)


def make_job(status: JobStatus = JobStatus.RUNNING, **kw: object) -> JobInfo:
    fields: dict[str, object] = {"id": "mnist-abc123", "name": "mnist", "status": status}
    fields.update(kw)
    return JobInfo(**fields)  # type: ignore[arg-type]


def value(widget: Any) -> str:
    """The synced `value` of a child widget, as the frontend would receive it."""
    return str(widget.get_state()["value"])


class FakeClient:
    """Serves `get`/`logs` from a job and a list of lines the test mutates; can be made to fail."""

    def __init__(self, job: JobInfo) -> None:
        self.job = job
        self.lines: list[LogLine] = []
        self.error: Exception | None = None
        self.calls: list[tuple[float | None, int | None]] = []
        self.get_threads: list[str] = []
        self.lock = threading.Lock()

    def get(self, job_id: str) -> JobInfo:
        with self.lock:
            self.get_threads.append(threading.current_thread().name)
            if self.error is not None:
                raise self.error
            assert job_id == self.job.id
            return self.job

    def logs(
        self, job_id: str, *, since: float | None = None, tail: int | None = None
    ) -> Iterator[LogLine]:
        with self.lock:
            self.calls.append((since, tail))
            lines = [ln for ln in self.lines if since is None or ln.time >= since]
            return iter(lines[-tail:] if tail else lines)

    def set(self, job: JobInfo | None = None, *lines: LogLine) -> None:
        with self.lock:
            self.job = job or self.job
            self.lines.extend(lines)


# --- pure renderers ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(JobStatus))
def test_header_has_id_name_and_colored_badge(status: JobStatus) -> None:
    html = render_header(make_job(status))
    assert "mnist-abc123" in html and "mnist" in html
    assert f">{status.value}</span>" in html
    assert STATUS_COLORS[status] in html


def test_badge_colors_follow_the_status_families() -> None:
    assert STATUS_COLORS[JobStatus.QUEUED] == STATUS_COLORS[JobStatus.STARTING]
    distinct = {
        STATUS_COLORS[s]
        for s in (
            JobStatus.QUEUED,
            JobStatus.RUNNING,
            JobStatus.RETRYING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
        )
    }
    assert len(distinct) == 6


def test_header_shows_the_reason_escaped() -> None:
    html = render_header(make_job(JobStatus.FAILED, reason="worker-1 exited <1>"))
    assert "worker-1 exited &lt;1&gt;" in html
    assert "<i>" not in render_header(make_job(JobStatus.RUNNING))


def test_summary_elapsed_and_attempt() -> None:
    assert render_summary(make_job(JobStatus.QUEUED)) == "not started"
    running = make_job(started=100.0, spec=SPEC, attempt=2)
    assert render_summary(running, now=165.0) == "elapsed 1m 05s · attempt 2 of 4"
    done = make_job(JobStatus.SUCCEEDED, started=100.0, finished=142.0)
    assert render_summary(done, now=10_000.0) == "elapsed 42s"
    no_retries = dataclasses.replace(SPEC, retries=0)
    assert "attempt" not in render_summary(make_job(started=1.0, spec=no_retries), now=2.0)


def test_replica_table_has_states_exit_codes_and_gpus() -> None:
    job = make_job(
        JobStatus.FAILED,
        replicas=(
            ReplicaInfo("worker-0", ReplicaStatus.SUCCEEDED, exit_code=0, gpus=(0,)),
            ReplicaInfo("worker-1", ReplicaStatus.FAILED, exit_code=137, gpus=(1, 2)),
            ReplicaInfo("ps-0", ReplicaStatus.PENDING),
        ),
    )
    html = render_replicas(job)
    assert html.startswith("<table") and html.count("<tr>") == 4
    assert "<td>worker-0</td><td>SUCCEEDED</td><td>0</td><td>0</td>" in html
    assert "137</span></td><td>1, 2</td>" in html
    assert "<td>ps-0</td><td>PENDING</td><td></td><td>-</td>" in html
    assert render_replicas(make_job()) == ""


# --- JobView ----------------------------------------------------------------------------------


def test_view_state_shows_the_job() -> None:
    view = JobView()
    job = make_job(
        JobStatus.RETRYING,
        reason="worker-0 failed",
        started=1.0,
        spec=SPEC,
        attempt=2,
        replicas=(ReplicaInfo("worker-0", ReplicaStatus.FAILED, exit_code=1),),
    )
    view.update(job)
    assert len(view.get_state()["children"]) == 7
    assert "RETRYING" in value(view.header) and "worker-0 failed" in value(view.header)
    assert "attempt 2 of 4" in value(view.summary)
    assert "<table" in value(view.replicas)
    assert value(view.log_tail) == ""


def test_log_tail_prefixes_escapes_and_trims() -> None:
    view = JobView(max_lines=3)
    lines = [LogLine(float(i), f"worker-{i % 2}", f"step {i}\n") for i in range(4)]
    view.update(make_job(), [*lines, LogLine(5.0, "worker-1", "<script>alert(1)</script>")])
    assert view.lines == [
        "[worker-0] step 2",
        "[worker-1] step 3",
        "[worker-1] <script>alert(1)</script>",
    ]
    html = value(view.log_tail)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[worker-0] step 2\n[worker-1] step 3" in html and "step 1" not in html
    assert "<pre" in html and "overflow-y:auto" in html
    view.max_lines = 1
    assert view.lines == ["[worker-1] <script>alert(1)</script>"]
    assert "step 3" not in value(view.log_tail)


def test_log_updates_are_batched() -> None:
    view = JobView()
    changes: list[str] = []
    view.log_tail.observe(lambda change: changes.append(change["new"]), "value")
    view.update(make_job(), [LogLine(float(i), "worker-0", f"line {i}") for i in range(50)])
    assert len(changes) == 1
    view.update(make_job())  # no new lines: the tail is not re-sent
    assert len(changes) == 1
    view.update(make_job(), [LogLine(60.0, "worker-0", "a"), LogLine(61.0, "worker-0", "b")])
    assert len(changes) == 2 and changes[-1].count("line ") == 50


def test_error_is_shown_and_cleared_by_the_next_update() -> None:
    view = JobView()
    view.show_error("backend <down>")
    assert "backend &lt;down&gt;" in value(view.error)
    view.update(make_job())
    assert value(view.error) == ""


# --- LogCursor --------------------------------------------------------------------------------


def test_cursor_skips_lines_already_seen_at_the_boundary() -> None:
    cursor = LogCursor()
    a, b, b2 = LogLine(1.0, "w-0", "a"), LogLine(2.0, "w-0", "b"), LogLine(2.0, "w-1", "b")
    assert cursor.take([a, b]) == [a, b] and cursor.since == 2.0
    assert cursor.take([b, b2]) == [b2]  # `since` is inclusive: b comes back once more
    c = LogLine(3.0, "w-0", "c")
    assert cursor.take([b, b2, c]) == [c]
    assert cursor.take([c, c]) == [c]  # a second, identical line in the same instant
    assert cursor.take([LogLine(0.5, "w-0", "old")]) == []


# --- JobWatcher and job_widget ----------------------------------------------------------------


def test_watcher_follows_a_job_to_the_end_and_stops() -> None:
    client = FakeClient(make_job(JobStatus.RUNNING, started=0.0))
    client.set(None, LogLine(1.0, "worker-0", "epoch 1"))
    view = JobView()
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01).start()
    wait_for(lambda: view.lines == ["[worker-0] epoch 1"])
    assert watcher.running and "RUNNING" in value(view.header)

    client.set(None, LogLine(1.0, "worker-1", "epoch 1"), LogLine(2.0, "worker-0", "epoch 2"))
    wait_for(lambda: len(view.lines) == 3)
    # the last lines are written just before the job is marked done: the final drain gets them
    client.set(
        make_job(JobStatus.SUCCEEDED, started=0.0, finished=3.0),
        LogLine(3.0, "worker-0", "saved model"),
    )
    watcher.join(5)
    assert not watcher.running
    assert "SUCCEEDED" in value(view.header)
    assert view.lines == [
        "[worker-0] epoch 1",
        "[worker-1] epoch 1",
        "[worker-0] epoch 2",
        "[worker-0] saved model",
    ]
    assert client.calls[0] == (None, 200)  # first read is a tail, then incremental
    assert all(since is not None and tail is None for since, tail in client.calls[1:])


def test_watcher_shows_client_errors_and_recovers() -> None:
    client = FakeClient(make_job())
    client.error = BackendUnavailable("cannot open the job database")
    view = JobView()
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01, retries=50).start()
    try:
        wait_for(lambda: "cannot open the job database" in value(view.error))
        assert "retrying" in value(view.error) and watcher.running
        client.error = None
        client.set(None, LogLine(1.0, "worker-0", "back"))
        wait_for(lambda: view.lines == ["[worker-0] back"])
        assert value(view.error) == ""
        assert "RUNNING" in value(view.header)
    finally:
        watcher.stop()
        watcher.join(5)
    assert not watcher.running


def test_watcher_gives_up_after_retries_with_the_message_shown() -> None:
    client = FakeClient(make_job())
    client.error = RuntimeError("boom")
    view = JobView()
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.001, retries=2).start()
    watcher.join(5)
    assert not watcher.running
    message = value(view.error)
    assert "RuntimeError: boom" in message and "gave up after 3 tries" in message


def test_watcher_stops_when_the_view_is_closed() -> None:
    client = FakeClient(make_job())
    view = JobView()
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01).start()
    wait_for(lambda: "RUNNING" in value(view.header))
    view.close()
    watcher.join(5)
    assert not watcher.running


def test_job_widget_fills_synchronously_then_follows() -> None:
    client = FakeClient(make_job(JobStatus.RUNNING, started=0.0))
    client.set(None, LogLine(1.0, "worker-0", "hello"))
    view = job_widget(client, "mnist-abc123", interval=0.01)
    assert client.get_threads[0] == threading.current_thread().name
    assert "RUNNING" in value(view.header) and "hello" in value(view.log_tail)
    assert view.watcher is not None and view.watcher.running
    client.set(make_job(JobStatus.SUCCEEDED, started=0.0, finished=2.0))
    view.watcher.join(5)
    assert not view.watcher.running and "SUCCEEDED" in value(view.header)


def test_job_widget_of_a_finished_job_starts_no_thread() -> None:
    client = FakeClient(make_job(JobStatus.CANCELLED, reason="cancelled by user"))
    view = job_widget(client, "mnist-abc123")
    assert "CANCELLED" in value(view.header) and "cancelled by user" in value(view.header)
    assert view.watcher is not None and not view.watcher.running


def test_job_widget_shows_an_error_instead_of_raising() -> None:
    client = FakeClient(make_job())
    client.error = BackendUnavailable("no backend")
    view = job_widget(client, "mnist-abc123", interval=0.01)
    assert "no backend" in value(view.error)
    assert view.watcher is not None
    view.watcher.stop()
    view.watcher.join(5)


# --- metric curves: JobView.update_metrics, ScalarSeries, JobWatcher reading metrics -----------

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def scalars(tag: str, *steps: int) -> dict[str, tuple[Scalar, ...]]:
    return {tag: tuple(Scalar(step, float(step), 1.0 / (step + 1)) for step in steps)}


class Clock:
    """A settable stand-in for `time.monotonic`."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MetricsClient(FakeClient):
    """A `FakeClient` that also serves scalars by cursor (the index of the next one to send)."""

    def __init__(self, job: JobInfo) -> None:
        super().__init__(job)
        self.scalars: list[tuple[str, Scalar]] = []
        self.metric_calls: list[tuple[str, str | None]] = []
        self.returned: list[str] = []  # the cursor each successful call gave back
        self.metrics_error: Exception | None = None

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        with self.lock:
            self.metric_calls.append((job_id, cursor))
            if self.metrics_error is not None:
                raise self.metrics_error
            start = int(cursor) if cursor else 0
            new: dict[str, list[Scalar]] = {}
            for tag, point in self.scalars[start:]:
                new.setdefault(tag, []).append(point)
            self.returned.append(str(len(self.scalars)))
            return MetricsUpdate({t: tuple(p) for t, p in new.items()}, self.returned[-1])

    def report(self, job: JobInfo | None = None, **values: float) -> None:
        """Append one step of `values` (and optionally change the job), atomically."""
        with self.lock:
            step = len(self.scalars)
            self.scalars.extend((tag, Scalar(step, float(step), v)) for tag, v in values.items())
            self.job = job or self.job


def image_value(view: JobView) -> bytes:
    return bytes(view.metrics.get_state()["value"])


def test_metrics_area_is_hidden_until_a_scalar_arrives() -> None:
    view = JobView()
    assert view.metrics.layout.display == "none" and image_value(view) == b""
    view.update_metrics(MetricsUpdate({}, "c0"))
    view.update_metrics(MetricsUpdate({"loss": ()}, "c0"))
    assert view.metrics.layout.display == "none" and view.metrics.renders == 0
    view.update_metrics(MetricsUpdate({**scalars("loss", 0, 1), **scalars("acc", 0)}, "c1"))
    assert view.metrics.layout.display is None and view.metrics.renders == 1
    assert image_value(view).startswith(PNG_MAGIC)
    assert list(view.scalars) == ["loss", "acc"] and len(view.scalars["loss"]) == 2
    assert value(view.metrics_note) == ""


def test_metric_redraws_are_throttled_and_skip_updates_without_news() -> None:
    view = JobView()
    clock = Clock()
    view.metrics.clock = clock
    sent: list[object] = []
    view.metrics.observe(lambda change: sent.append(change["new"]), "value")

    def feed(at: float, *steps: int) -> int:
        clock.now = 100.0 + at
        view.update_metrics(MetricsUpdate(scalars("loss", *steps) if steps else {}, ""))
        return view.metrics.renders

    assert feed(0.0, 0) == 1
    assert feed(0.5, 1, 2) == 1  # too soon: held back
    assert feed(0.9) == 1
    assert feed(1.1) == 2  # the held-back points are drawn by the next call after a second
    assert feed(1.2) == 2 and feed(9.0) == 2  # nothing new: nothing drawn
    assert feed(9.1, 3) == 3
    assert feed(9.2, 4) == 3
    view.flush_metrics()  # e.g. once the job has ended
    assert view.metrics.renders == 4 and len(sent) == 4
    view.flush_metrics()
    assert view.metrics.renders == 4
    assert [p.step for p in view.scalars["loss"]] == [0, 1, 2, 3, 4]


def test_a_plot_that_cannot_be_drawn_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyter_cloudml.widgets import plots

    def broken(*args: object, **kwargs: object) -> bytes:
        raise ValueError("no fonts")

    monkeypatch.setattr(plots, "metric_curves_png", broken)
    view = JobView()
    view.update_metrics(MetricsUpdate(scalars("loss", 0), "c"))
    assert "cannot draw the plot: ValueError: no fonts" in value(view.metrics_note)
    assert view.metrics.layout.display == "none"
    monkeypatch.undo()
    view.metrics.clock = lambda: 1e12  # past the interval
    view.update_metrics(MetricsUpdate({}, "c"))
    assert view.metrics.renders == 1 and value(view.metrics_note) == ""


def test_series_stay_bounded_evenly_spaced_and_end_with_the_newest_point() -> None:
    series = ScalarSeries(limit=100)
    for start in range(0, 10_001, 7):
        series.extend(Scalar(s, 0.0, 0.0) for s in range(start, min(start + 7, 10_001)))
    points = series.points
    assert series.count == 10_001
    assert len(points) <= 202 and points[0].step == 0 and points[-1].step == 10_000
    gaps = {b.step - a.step for a, b in itertools.pairwise(points[:-1])}
    assert len(gaps) == 1  # one spacing throughout, however the points came in


def test_watcher_reads_metrics_with_the_returned_cursor_until_the_end() -> None:
    client = MetricsClient(make_job(JobStatus.RUNNING, started=0.0))
    client.report(loss=1.0, acc=0.1)
    view = JobView()
    view.metrics.interval = 0.0
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01).start()
    wait_for(lambda: len(view.scalars.get("loss", ())) == 1)
    client.report(loss=0.5, acc=0.6)
    wait_for(lambda: len(view.scalars["loss"]) == 2)
    # the last scalars are written just before the job is marked done: the final poll gets them
    client.report(make_job(JobStatus.SUCCEEDED, started=0.0, finished=3.0), loss=0.2, acc=0.9)
    watcher.join(5)
    assert not watcher.running
    assert [p.value for p in view.scalars["loss"]] == [1.0, 0.5, 0.2]
    assert [p.value for p in view.scalars["acc"]] == [0.1, 0.6, 0.9]
    cursors = [cursor for _, cursor in client.metric_calls]
    assert cursors == [None, *client.returned[:-1]]  # each call passes the previous one's cursor
    assert watcher.metrics.cursors == {"mnist-abc123": "6"}
    assert {job_id for job_id, _ in client.metric_calls} == {"mnist-abc123"}
    assert image_value(view).startswith(PNG_MAGIC) and value(view.metrics_note) == ""


def test_a_failing_metrics_call_is_shown_once_and_spares_status_and_logs() -> None:
    client = MetricsClient(make_job(JobStatus.RUNNING, started=0.0))
    client.metrics_error = OSError("event file unreadable")
    view = JobView()
    notes: list[str] = []
    view.metrics_note.observe(lambda change: notes.append(change["new"]), "value")
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01).start()
    try:
        client.set(None, LogLine(1.0, "worker-0", "epoch 1"))
        wait_for(lambda: view.lines == ["[worker-0] epoch 1"] and len(client.metric_calls) > 5)
        assert watcher.running and "RUNNING" in value(view.header) and value(view.error) == ""
        assert len(notes) == 1 and "OSError: event file unreadable" in notes[0]
        assert "mnist-abc123" in notes[0]
        client.metrics_error = None  # it comes back: curves show, the note goes
        client.report(loss=1.0)
        wait_for(lambda: view.metrics.renders == 1)
        wait_for(lambda: value(view.metrics_note) == "")
    finally:
        watcher.stop()
        watcher.join(5)


def test_a_backend_without_metrics_is_asked_once() -> None:
    client = MetricsClient(make_job(JobStatus.RUNNING))
    client.metrics_error = NotImplementedError()
    view = JobView()
    watcher = JobWatcher(client, "mnist-abc123", view, interval=0.01)
    for _ in range(3):
        watcher.poll()
    assert len(client.metric_calls) == 1
    assert "not available" in value(view.metrics_note) and "RUNNING" in value(view.header)


def test_a_client_without_a_metrics_method_just_shows_no_curves() -> None:
    client = FakeClient(make_job(JobStatus.SUCCEEDED, started=0.0, finished=1.0))
    view = job_widget(client, "mnist-abc123")
    assert "SUCCEEDED" in value(view.header)
    assert view.metrics.layout.display == "none" and value(view.metrics_note) == ""
