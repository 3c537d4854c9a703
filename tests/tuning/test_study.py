"""Tuning studies end to end: a real driver job running real trial jobs on the LocalBackend."""

from __future__ import annotations

import dataclasses
import os
import signal
import time

import psutil
import pytest

from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import InvalidSpec, NotFound
from jupyter_cloudml.models import (
    Algorithm,
    EarlyStopping,
    Goal,
    JobQuery,
    JobStatus,
    ParamSpec,
    ParamType,
    TrialStatus,
    TuningSpec,
)

pytestmark = pytest.mark.slow

QUADRATIC = """
import sys
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
assert f"--x={p['x']!r}" in sys.argv or f"--x={p['x']}" in sys.argv, sys.argv
for step in range(3):
    jupyter_cloudml.report(step=step, score=-(p["x"] - 0.3) ** 2 - 1.0 / (step + 1))
"""

X = ParamSpec("x", ParamType.DOUBLE, -1.0, 1.0)


@pytest.fixture
def client(backend):
    return Client(backend=backend)


def wait_study(client, study_id, timeout=240):
    client.wait(study_id, timeout=timeout, poll=0.1)
    return client.get_study(study_id)


def overlap(trials):
    """The most trials whose [started, finished] intervals overlap at one moment."""
    points = sorted([(t.started, 1) for t in trials] + [(t.finished, -1) for t in trials])
    most = now = 0
    for _, delta in points:
        now += delta
        most = max(most, now)
    return most


def test_study_runs_trials_in_parallel_and_records_the_best(client, make_spec):
    tuning = TuningSpec(params=(X,), metric="score", max_trials=6, parallel_trials=2, seed=1)
    study = client.submit_study(make_spec(QUADRATIC, name="quad"), tuning)
    assert study.status in (JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING)
    done = wait_study(client, study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.number for t in done.trials] == list(range(6))
    assert all(t.status is TrialStatus.SUCCEEDED for t in done.trials), done.trials
    for t in done.trials:
        assert t.value == pytest.approx(-((t.params["x"] - 0.3) ** 2) - 1 / 3)
        assert t.steps == 3 and t.job_id
    best = max(done.trials, key=lambda t: t.value)
    assert done.best_trial == best
    assert 1 <= overlap(done.trials) <= 2
    trial_jobs = client.list(JobQuery(labels={"cloudml.io/study": study.id})).jobs
    assert sorted(j.id for j in trial_jobs) == sorted(t.job_id for t in done.trials)
    assert [s.id for s in client.list_studies()] == [study.id]
    frame = client.study(study.id).trials_dataframe()
    assert list(frame["number"]) == list(range(6)) and "params_x" in frame.columns


def test_minimize_with_grid_search_covers_the_grid_once(client, make_spec):
    code = """
import jupyter_cloudml
p = jupyter_cloudml.params()
jupyter_cloudml.report(step=0, loss=abs(p["n"] - 3) + (0 if p["opt"] == "sgd" else 10))
"""
    tuning = TuningSpec(
        params=(
            ParamSpec("n", ParamType.INTEGER, 1, 4),
            ParamSpec("opt", ParamType.CATEGORICAL, values=("adam", "sgd")),
        ),
        metric="loss",
        goal=Goal.MINIMIZE,
        max_trials=50,
        parallel_trials=2,
        algorithm=Algorithm.GRID,
    )
    done = wait_study(client, client.submit_study(make_spec(code, name="grid"), tuning).id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    combos = {(t.params["n"], t.params["opt"]) for t in done.trials}
    assert len(done.trials) == 8 == len(combos)
    assert done.best_trial is not None and done.best_trial.params == {"n": 3, "opt": "sgd"}


def test_metric_never_reported_fails_the_study_clearly(client, make_spec):
    code = "import jupyter_cloudml\njupyter_cloudml.report(step=0, loss=1.0)"
    tuning = TuningSpec(params=(X,), metric="accuracy", max_trials=10, parallel_trials=2)
    done = wait_study(client, client.submit_study(make_spec(code, name="nometric"), tuning).id)
    assert done.status is JobStatus.FAILED
    assert "first 3 trial(s) all failed" in done.reason
    assert "metric 'accuracy' was never reported (reported: loss)" in done.reason
    assert len(done.trials) < 10
    assert all(t.status in (TrialStatus.FAILED, TrialStatus.CANCELLED) for t in done.trials)


def test_max_failed_trials_counts_crashing_trials(client, make_spec):
    code = "import jupyter_cloudml\np = jupyter_cloudml.params()\nraise SystemExit(3)"
    tuning = TuningSpec(
        params=(X,), metric="score", max_trials=10, parallel_trials=1, max_failed_trials=2
    )
    done = wait_study(client, client.submit_study(make_spec(code, name="crash"), tuning).id)
    assert done.status is JobStatus.FAILED
    assert done.reason.startswith("2 trials failed (maxFailedTrials 2)")
    assert "exited with code 3" in done.reason


def test_median_early_stopping_prunes_lagging_trials(client, make_spec):
    code = """
import time
import jupyter_cloudml
p = jupyter_cloudml.params()
for step in range(12):
    jupyter_cloudml.report(step=step, acc=p["quality"] * (1 - 0.5 ** (step + 1)))
    time.sleep(0.15)
"""
    tuning = TuningSpec(
        params=(ParamSpec("quality", ParamType.DISCRETE, values=(0.1, 0.2, 0.9, 1.0)),),
        metric="acc",
        max_trials=8,
        parallel_trials=2,
        seed=3,
        early_stopping=EarlyStopping.MEDIAN,
    )
    done = wait_study(client, client.submit_study(make_spec(code, name="prune"), tuning).id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    pruned = [t for t in done.trials if t.status is TrialStatus.PRUNED]
    assert pruned, [(t.params, t.status, t.steps) for t in done.trials]
    assert all(t.params["quality"] < 0.9 and t.steps < 12 for t in pruned)
    assert done.best_trial is not None and done.best_trial.params["quality"] == 1.0


def test_killed_driver_resumes_without_repeating_trials(client, backend, make_spec):
    code = """
import time
import jupyter_cloudml
p = jupyter_cloudml.params()
time.sleep(0.8)
jupyter_cloudml.report(step=0, score=p["x"])
"""
    tuning = TuningSpec(params=(X,), metric="score", max_trials=6, parallel_trials=2, seed=5)
    study = client.submit_study(make_spec(code, name="resume"), tuning)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = client.get_study(study.id)
        if sum(t.status is TrialStatus.SUCCEEDED for t in info.trials) >= 2:
            break
        time.sleep(0.1)
    supervisor = psutil.Process(backend.store.row(study.id)["supervisor_pid"])
    (driver,) = [
        p for p in supervisor.children() if "jupyter_cloudml._study_main" in " ".join(p.cmdline())
    ]
    os.kill(driver.pid, signal.SIGKILL)
    done = wait_study(client, study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.number for t in done.trials] == list(range(6))
    assert len({t.job_id for t in done.trials}) == 6
    assert all(t.status is TrialStatus.SUCCEEDED for t in done.trials), done.trials
    assert client.get(study.id).attempt == 2  # the driver was restarted once
    assert backend.list(JobQuery(labels={"cloudml.io/study": study.id})).total == 6


def test_cancel_study_stops_driver_and_trials(client, make_spec):
    code = "import time, jupyter_cloudml\np = jupyter_cloudml.params()\ntime.sleep(60)"
    tuning = TuningSpec(params=(X,), metric="score", max_trials=4, parallel_trials=2)
    study = client.submit_study(make_spec(code, name="stopme"), tuning)
    deadline = time.monotonic() + 60
    while len(client.get_study(study.id).trials) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    done = client.cancel_study(study.id)
    assert done.status is JobStatus.CANCELLED
    jobs = client.list(JobQuery(labels={"cloudml.io/study": study.id})).jobs
    assert jobs and all(j.status is JobStatus.CANCELLED for j in jobs)


def test_a_plain_job_is_not_a_study(client, make_spec, backend):
    job = backend.submit(make_spec("pass"))
    with pytest.raises(NotFound, match="is a training job"):
        client.get_study(job.id)


SLOW_TRIAL = """
import time
import jupyter_cloudml
p = jupyter_cloudml.params()
time.sleep(1.5)
jupyter_cloudml.report(step=0, score=p["x"])
"""


def succeeded(client, study_id):
    return sum(t.status is TrialStatus.SUCCEEDED for t in client.get_study(study_id).trials)


def wait_until(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_killed_driver_supervisor_is_restarted_and_adopts_its_trials(client, backend, make_spec):
    """No reader: the keeper finds the dead supervisor, queues the driver again after a pause,
    and the new driver re-attaches to the trials still running."""
    tuning = TuningSpec(params=(X,), metric="score", max_trials=6, parallel_trials=2, seed=3)
    study = client.submit_study(make_spec(SLOW_TRIAL, name="orphaned"), tuning)
    wait_until(lambda: len(client.get_study(study.id).trials) >= 2)
    before = backend.store.row(study.id)["supervisor_pid"]
    psutil.Process(before).kill()
    wait_until(lambda: backend.store.row(study.id)["restarts"] == 1, timeout=20)
    done = wait_study(client, study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.number for t in done.trials] == list(range(6))
    assert len({t.job_id for t in done.trials}) == 6
    assert all(t.status is TrialStatus.SUCCEEDED for t in done.trials), done.trials
    assert backend.list(JobQuery(labels={"cloudml.io/study": study.id})).total == 6
    reasons = [e.reason for e in client.events(study.id)]
    assert "Restarting" in reasons


def test_a_fourth_driver_crash_does_not_fail_the_study(client, backend, make_spec):
    tuning = TuningSpec(params=(X,), metric="score", max_trials=5, parallel_trials=1, seed=4)
    study = client.submit_study(make_spec(SLOW_TRIAL, name="crashy"), tuning)
    for kill in range(4):
        wait_until(lambda k=kill: succeeded(client, study.id) >= k and _driver(backend, study.id))
        os.kill(_driver(backend, study.id).pid, signal.SIGKILL)
        wait_until(lambda k=kill: client.get(study.id).attempt >= k + 2)
    done = wait_study(client, study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.number for t in done.trials] == list(range(5))
    assert len({t.job_id for t in done.trials}) == 5


def _driver(backend, study_id):
    """The study's driver process, once its supervisor started it."""
    pid = backend.store.row(study_id)["supervisor_pid"]
    try:
        children = psutil.Process(pid).children() if pid else []
    except psutil.NoSuchProcess:
        return None
    found = [p for p in children if "jupyter_cloudml._study_main" in " ".join(p.cmdline())]
    return found[0] if found else None


def test_a_trial_submitted_but_not_recorded_is_adopted(client, backend, make_spec, tmp_path):
    """A driver that died between submitting a trial's job and recording it: the next one
    finds the job by its labels instead of failing the trial and running another."""
    import json

    from jupyter_cloudml.models import KIND_LABEL, STUDY_LABEL, TRIAL_LABEL
    from jupyter_cloudml.tuning.driver import Driver
    from jupyter_cloudml.tuning.params import PARAMS_ENV

    tuning = TuningSpec(params=(X,), metric="score", max_trials=1, parallel_trials=1, seed=1)
    template = make_spec(SLOW_TRIAL, name="adopt")
    (tmp_path / "out").mkdir()  # as the driver job's supervisor makes it
    first = Driver(backend, "adopt-study", tuning, template, tmp_path / "dir", tmp_path / "out")
    trial = first.study.ask()
    labels = {KIND_LABEL: "trial", STUDY_LABEL: "adopt-study", TRIAL_LABEL: str(trial.number)}
    env = {PARAMS_ENV: json.dumps({"x": 0.25})}
    orphan = backend.submit(dataclasses.replace(template, labels=labels, env=env))
    del first  # it stops here, its trial's launch never recorded

    second = Driver(backend, "adopt-study", tuning, template, tmp_path / "dir", tmp_path / "out")
    second.run()
    (only,) = second.trial_infos()
    assert only.job_id == orphan.id and only.status is TrialStatus.SUCCEEDED
    assert only.value == 0.25
    assert backend.list(JobQuery(labels={STUDY_LABEL: "adopt-study"})).total == 1


def test_cancel_works_on_a_study_that_failed(client, backend, make_spec):
    """A driver that ended the study (too many failures) while a trial still ran: cancelling
    the study stops that trial."""
    code = """
import os, time
if os.environ["CLOUD_ML_TRIAL_ID"] == "1":  # the first trial fails, the second one sleeps
    raise SystemExit(3)
time.sleep(60)
"""
    tuning = TuningSpec(params=(X,), metric="score", max_trials=2, parallel_trials=2, seed=2)
    study = client.submit_study(make_spec(code, name="half"), tuning)
    wait_until(lambda: len(client.get_study(study.id).trials) == 2)
    driver = backend.store.row(study.id)["supervisor_pid"]
    psutil.Process(driver).kill()  # the driver's record ends while a trial still runs
    backend.store.update(study.id, status=JobStatus.FAILED.value, reason="killed for the test")
    # Trial 1 sleeps; trial 0 fails by itself, maybe before the cancel.
    sleepers = [t.job_id for t in client.get_study(study.id).trials if t.number == 1]
    assert sleepers and all(job_id is not None for job_id in sleepers)
    client.cancel_study(study.id)
    for job_id in sleepers:
        assert client.get(str(job_id)).status is JobStatus.CANCELLED


GOOGLE_TRIAL = """
import os
import jupyter_cloudml
p = jupyter_cloudml.params(x=0.0)
trial = int(os.environ.get("CLOUD_ML_TRIAL_ID", 0))  # as Google trainers read it
print("google", os.environ["CLOUD_ML_JOB_ID"], trial, flush=True)
jupyter_cloudml.report(step=1, score=float(trial))
"""


def test_trials_see_googles_job_and_trial_ids(client, make_spec):
    tuning = TuningSpec(params=(X,), metric="score", max_trials=3, parallel_trials=3, seed=1)
    study = client.submit_study(make_spec(GOOGLE_TRIAL, name="google"), tuning)
    done = wait_study(client, study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    for trial in done.trials:
        assert trial.value == trial.number + 1  # Google numbers trials from 1
        assert trial.job_id is not None
        lines = [line.text for line in client.logs(trial.job_id)]
        assert f"google {study.id} {trial.number + 1}" in lines


def test_a_study_continues_a_finished_one_and_runs_only_the_missing_trials(client, make_spec):
    first = TuningSpec(params=(X,), metric="score", max_trials=2, parallel_trials=2, seed=1)
    before = wait_study(client, client.submit_study(make_spec(QUADRATIC, name="quad"), first).id)
    assert before.status is JobStatus.SUCCEEDED, before.reason
    more = dataclasses.replace(first, max_trials=3, resume_from=before.id)
    after = wait_study(client, client.submit_study(make_spec(QUADRATIC, name="quad2"), more).id)
    assert after.status is JobStatus.SUCCEEDED, after.reason
    assert [t.number for t in after.trials] == [0, 1, 2]
    old = {t.number: (t.params, t.value, t.job_id) for t in before.trials}
    assert {t.number: (t.params, t.value, t.job_id) for t in after.trials[:2]} == old
    own = client.list(JobQuery(labels={"cloudml.io/study": after.id})).jobs
    assert len(own) == 1  # only the missing trial ran
    assert after.best_trial == max(after.trials, key=lambda t: t.value)


def test_continuing_needs_a_finished_study_over_the_same_parameters(client, make_spec):
    first = TuningSpec(params=(X,), metric="score", max_trials=1, seed=1)
    done = wait_study(client, client.submit_study(make_spec(QUADRATIC, name="q"), first).id)
    y = ParamSpec("y", ParamType.DOUBLE, 0.0, 1.0)
    for tuning, message in [
        (dataclasses.replace(first, resume_from=done.id), "already ran 1 trials"),
        (
            dataclasses.replace(first, params=(y,), max_trials=2, resume_from=done.id),
            "tuned x; this one tunes y",
        ),
    ]:
        with pytest.raises(InvalidSpec, match=message):
            client.submit_study(make_spec(QUADRATIC, name="q2"), tuning)
    with pytest.raises(NotFound):
        client.submit_study(
            make_spec(QUADRATIC), dataclasses.replace(first, max_trials=2, resume_from="nope-123")
        )
