"""The study widget: `StudyView` state through `get_state()`, `StudyWatcher`, `study_widget`."""

from __future__ import annotations

import dataclasses
import re
import threading
from typing import Any

import pytest
from cloudml_testkit import wait_for

from jupyter_cloudml.exceptions import BackendUnavailable
from jupyter_cloudml.models import (
    Goal,
    JobStatus,
    MetricsUpdate,
    ParamSpec,
    ParamType,
    Scalar,
    Scale,
    StudyInfo,
    TrialInfo,
    TrialStatus,
    TuningSpec,
)
from jupyter_cloudml.widgets import StudyView, StudyWatcher, study_widget
from jupyter_cloudml.widgets.study import BEST_ROW, render_trials

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

TUNING = TuningSpec(
    params=(
        ParamSpec("lr", ParamType.DOUBLE, 1e-4, 1e-1, scale=Scale.LOG),
        ParamSpec("opt", ParamType.CATEGORICAL, values=("adam", "sgd")),
    ),
    metric="accuracy",
    goal=Goal.MAXIMIZE,
    max_trials=6,
    parallel_trials=2,
)


def make_trial(
    number: int, status: TrialStatus, value: float | None = None, **kw: Any
) -> TrialInfo:
    params = {"lr": 10.0 ** -(number + 1), "opt": "adam" if number % 2 else "sgd"}
    fields: dict[str, Any] = {"params": params, "job_id": f"tune-t{number}", "steps": 10 * number}
    fields.update(kw)
    return TrialInfo(number, status, value=value, **fields)


TRIALS = (
    make_trial(0, TrialStatus.SUCCEEDED, 0.81),
    make_trial(1, TrialStatus.PRUNED, 0.42, reason="below the median <at> step 3"),
    make_trial(2, TrialStatus.SUCCEEDED, 0.93),
    make_trial(3, TrialStatus.FAILED, reason="worker-0 exited with 1"),
    make_trial(4, TrialStatus.RUNNING),
)


def make_study(
    status: JobStatus = JobStatus.RUNNING, trials: tuple[TrialInfo, ...] = TRIALS, **kw: Any
) -> StudyInfo:
    scored = [t for t in trials if t.value is not None and t.status is TrialStatus.SUCCEEDED]
    best = max(scored, key=lambda t: t.value or 0.0, default=None)
    fields: dict[str, Any] = {"id": "tune-x1", "name": "tune", "status": status}
    fields.update(tuning=TUNING, trials=trials, best_trial=best)
    fields.update(kw)
    return StudyInfo(**fields)


def value(widget: Any) -> Any:
    return widget.get_state()["value"]


def row_numbers(table_html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<tr[^>]*><td>(\d+)", table_html)]


def curve(*values: float) -> list[Scalar]:
    return [Scalar(step, float(step), v) for step, v in enumerate(values)]


# --- StudyView --------------------------------------------------------------------------------


def test_header_progress_and_counts() -> None:
    view = StudyView()
    view.update(make_study(reason="3 of 6 trials left"), {})
    header = value(view.header)
    assert "tune-x1" in header and "tune" in header and ">RUNNING</span>" in header
    assert "3 of 6 trials left" in header and "maximize accuracy" in header
    progress = view.progress.get_state()
    assert (progress["value"], progress["max"], progress["bar_style"]) == (4, 6, "info")
    assert value(view.counts) == "4/6 done: 2 succeeded, 1 pruned, 1 failed · 1 running"
    view.update(make_study(JobStatus.SUCCEEDED), {})
    assert view.progress.get_state()["bar_style"] == "success"


def test_table_rows_follow_the_sort_choice() -> None:
    view = StudyView()
    view.update(make_study(), {})
    assert view.sort.get_state()["_options_labels"] == (
        "metric (best first)",
        "trial number",
        "status",
    )
    assert row_numbers(value(view.table)) == [2, 0, 1, 3, 4]  # best first, unscored by number
    view.sort.value = "number"
    assert row_numbers(value(view.table)) == [0, 1, 2, 3, 4]
    view.sort.value = "status"
    assert row_numbers(value(view.table)) == [4, 0, 2, 1, 3]  # running, succeeded, pruned, failed
    view.update(make_study(), {})  # a later update keeps the chosen order
    assert row_numbers(value(view.table)) == [4, 0, 2, 1, 3]


def test_minimize_sorts_the_lowest_value_first() -> None:
    study = make_study(tuning=dataclasses.replace(TUNING, goal=Goal.MINIMIZE, metric="loss"))
    html = render_trials(study, "metric")
    assert row_numbers(html) == [0, 2, 1, 3, 4] and "loss &darr;" in html  # completed first


def test_the_best_row_is_highlighted_and_cells_are_escaped() -> None:
    view = StudyView()
    view.update(make_study(), {})
    html = value(view.table)
    highlighted = re.findall(rf'<tr style="{BEST_ROW}"[^>]*><td>(\d+) &#9733;', html)
    assert highlighted == ["2"] and html.count(BEST_ROW) == 1
    for header in ("<th>#</th>", "<th>status</th>", "<th>lr</th>", "<th>opt</th>"):
        assert header in html
    assert "<th>accuracy &uarr;</th>" in html and "<th>steps</th><th>job</th>" in html
    row = re.search(r"<tr[^>]*><td>2 &#9733;</td>(.*?)</tr>", html)
    assert row is not None
    assert "SUCCEEDED" in row.group(1) and "<td>0.001</td><td>sgd</td>" in row.group(1)
    assert "<td>0.93</td><td>20</td><td>tune-t2</td>" in row.group(1)
    assert 'title="below the median &lt;at&gt; step 3"' in html
    assert "<td>-</td>" in html  # trial 3 has no value


def test_plots_are_present_and_redrawn_only_when_their_data_changes() -> None:
    view = StudyView()
    assert view.curves.layout.display == "none" and view.scatter.layout.display == "none"
    view.curves.interval = view.scatter.interval = 0.0
    curves = {0: curve(0.1, 0.5, 0.81), 2: curve(0.2, 0.7, 0.93), 4: curve(0.1)}
    view.update(make_study(), curves)
    for image in (view.curves, view.scatter):
        assert bytes(value(image)).startswith(PNG_MAGIC) and image.layout.display is None
    assert (view.curves.renders, view.scatter.renders) == (1, 1)
    view.update(make_study(), dict(curves))
    assert (view.curves.renders, view.scatter.renders) == (1, 1)
    view.update(make_study(), {**curves, 4: curve(0.1, 0.3)})  # a running trial moved on
    assert (view.curves.renders, view.scatter.renders) == (2, 1)
    finished = make_trial(4, TrialStatus.SUCCEEDED, 0.5)
    view.update(make_study(trials=(*TRIALS[:4], finished)), {**curves, 4: curve(0.1, 0.3)})
    assert (view.curves.renders, view.scatter.renders) == (2, 2)
    assert value(view.note) == ""


def test_plot_redraws_are_throttled_but_the_end_is_always_drawn() -> None:
    view = StudyView()
    view.update(make_study(), {0: curve(0.1)})
    view.update(make_study(), {0: curve(0.1, 0.2)})  # within a second of the first drawing
    assert view.curves.renders == 1
    view.update(make_study(JobStatus.SUCCEEDED), {0: curve(0.1, 0.2, 0.3)})
    assert view.curves.renders == 2


def test_errors_show_and_clear() -> None:
    view = StudyView()
    view.show_error("study store <locked>")
    assert "study store &lt;locked&gt;" in value(view.error)
    view.show_metrics_error("metrics of tune-t1: OSError")
    view.update(make_study(), {})
    assert value(view.error) == "" and "metrics of tune-t1: OSError" in value(view.note)
    view.show_metrics_error("")
    assert value(view.note) == ""


# --- StudyWatcher and study_widget ------------------------------------------------------------


class FakeStudyClient:
    """Serves a study the test replaces, and each job's scalars by cursor (an index)."""

    def __init__(self, study: StudyInfo) -> None:
        self.study = study
        self.scalars: dict[str, list[tuple[str, Scalar]]] = {}
        self.metric_calls: list[tuple[str, str | None]] = []
        self.failing_jobs: set[str] = set()
        self.error: Exception | None = None
        self.get_threads: list[str] = []
        self.lock = threading.Lock()

    def get_study(self, study_id: str) -> StudyInfo:
        with self.lock:
            self.get_threads.append(threading.current_thread().name)
            if self.error is not None:
                raise self.error
            assert study_id == self.study.id
            return self.study

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        with self.lock:
            self.metric_calls.append((job_id, cursor))
            if job_id in self.failing_jobs:
                raise OSError(f"cannot read {job_id}")
            points = self.scalars.get(job_id, [])
            new: dict[str, list[Scalar]] = {}
            for tag, point in points[int(cursor or 0) :]:
                new.setdefault(tag, []).append(point)
            return MetricsUpdate({t: tuple(p) for t, p in new.items()}, str(len(points)))

    def report(self, job_id: str, accuracy: float, study: StudyInfo | None = None) -> None:
        """One step of a trial's job (its metric and a loss), optionally with a new study state."""
        with self.lock:
            points = self.scalars.setdefault(job_id, [])
            step = len(points) // 2
            points += [
                ("accuracy", Scalar(step, 0.0, accuracy)),
                ("loss", Scalar(step, 0.0, 1 - accuracy)),
            ]
            self.study = study or self.study

    def calls_for(self, job_id: str) -> int:
        with self.lock:
            return sum(1 for job, _ in self.metric_calls if job == job_id)


def test_watcher_follows_a_study_from_running_to_succeeded_and_stops() -> None:
    running = (make_trial(0, TrialStatus.RUNNING), make_trial(1, TrialStatus.RUNNING))
    client = FakeStudyClient(make_study(trials=running))
    client.report("tune-t0", 0.2)
    view = StudyView()
    watcher = StudyWatcher(client, "tune-x1", view, interval=0.01).start()
    wait_for(lambda: 0 in watcher.curves and watcher.curves[0].count == 1)
    assert watcher.running and "RUNNING" in value(view.header)

    first_done = (make_trial(0, TrialStatus.SUCCEEDED, 0.6), running[1])
    client.report("tune-t0", 0.6, make_study(trials=first_done))
    client.report("tune-t1", 0.3)
    wait_for(lambda: value(view.counts) == "1/6 done: 1 succeeded · 1 running")
    wait_for(lambda: watcher.curves[0].count == 2 and 1 in watcher.curves)
    calls = client.calls_for("tune-t0")
    wait_for(lambda: client.calls_for("tune-t1") > 3)
    assert client.calls_for("tune-t0") == calls  # a finished trial is read no more

    # the last point is written just before the study is marked done: the final poll gets it
    both_done = (first_done[0], make_trial(1, TrialStatus.SUCCEEDED, 0.9))
    client.report("tune-t1", 0.9, make_study(JobStatus.SUCCEEDED, trials=both_done))
    watcher.join(5)
    assert not watcher.running
    assert "SUCCEEDED" in value(view.header) and value(view.counts).startswith("2/6 done")
    assert [p.value for p in watcher.curves[0].points] == [0.2, 0.6]
    assert [p.value for p in watcher.curves[1].points] == [0.3, 0.9]  # only the study's metric
    assert watcher.metrics.cursors == {"tune-t0": "4", "tune-t1": "4"}
    assert row_numbers(value(view.table)) == [1, 0]
    assert bytes(value(view.curves)).startswith(PNG_MAGIC)
    assert bytes(value(view.scatter)).startswith(PNG_MAGIC)


def test_one_trial_whose_metrics_fail_is_shown_and_the_rest_goes_on() -> None:
    trials = (make_trial(0, TrialStatus.RUNNING), make_trial(1, TrialStatus.RUNNING))
    client = FakeStudyClient(make_study(trials=trials))
    client.failing_jobs.add("tune-t1")
    client.report("tune-t0", 0.4)
    view = StudyView()
    watcher = StudyWatcher(client, "tune-x1", view)
    watcher.poll()
    watcher.poll()
    assert "metrics of tune-t1: OSError: cannot read tune-t1" in value(view.note)
    assert value(view.error) == "" and [p.value for p in watcher.curves[0].points] == [0.4]
    client.failing_jobs.clear()
    watcher.poll()
    assert value(view.note) == ""


def test_watcher_shows_study_errors_and_recovers() -> None:
    client = FakeStudyClient(make_study())
    client.error = BackendUnavailable("study store is locked")
    view = StudyView()
    watcher = StudyWatcher(client, "tune-x1", view, interval=0.01, retries=50).start()
    try:
        wait_for(lambda: "study store is locked" in value(view.error))
        assert "retrying" in value(view.error) and watcher.running
        client.error = None
        wait_for(lambda: value(view.error) == "" and "RUNNING" in value(view.header))
    finally:
        watcher.stop()
        watcher.join(5)
    assert not watcher.running


def test_study_widget_fills_synchronously_then_follows() -> None:
    client = FakeStudyClient(make_study())
    view = study_widget(client, "tune-x1", interval=0.01)
    assert client.get_threads[0] == threading.current_thread().name
    assert "RUNNING" in value(view.header) and row_numbers(value(view.table))
    assert view.watcher is not None and view.watcher.running
    with client.lock:
        client.study = make_study(JobStatus.SUCCEEDED)
    view.watcher.join(5)
    assert not view.watcher.running and "SUCCEEDED" in value(view.header)


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_study_widget_of_a_finished_study_starts_no_thread(status: JobStatus) -> None:
    view = study_widget(FakeStudyClient(make_study(status)), "tune-x1")
    assert status.value in value(view.header)
    assert view.watcher is not None and not view.watcher.running


def test_study_widget_shows_an_error_instead_of_raising() -> None:
    client = FakeStudyClient(make_study())
    client.error = BackendUnavailable("no backend")
    view = study_widget(client, "tune-x1", interval=0.01)
    assert "no backend" in value(view.error)
    assert view.watcher is not None
    view.watcher.stop()
    view.watcher.join(5)
