"""Studies as the rest of the system sees them: a driver job plus the summary it keeps.

A study is submitted as an ordinary job whose entry module is the study driver's program
(`jupyter_cloudml._study_main`, which runs `tuning.driver.Driver`), so every backend runs it
detached, survives kernel restarts and restarts it after a crash. The tuning spec travels in
the driver's environment, the trial template in its code package; the driver writes
`study.json` into its outputs as trials progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any

from ..exceptions import Conflict, InvalidSpec, NotFound
from ..models import (
    KIND_LABEL,
    STUDY_LABEL,
    JobInfo,
    JobQuery,
    JobStatus,
    Resources,
    StudyInfo,
    TrainSpec,
    TrialInfo,
    TuningSpec,
    from_dict,
    is_study,
    to_dict,
)

if TYPE_CHECKING:
    from ..backends.base import Backend

TUNING_ENV = "CLOUDML_TUNING"
#: The study's `--notify` webhook, for its driver (the trials have none).
NOTIFY_ENV = "CLOUDML_NOTIFY_URL"
TRIAL_SPEC_FILE = "trial_spec.json"
SUMMARY_FILE = "study.json"
DRIVER_MODULE = "jupyter_cloudml._study_main"
#: A crashed driver is restarted this often (with a pause doubling up to the backend's longest
#: retry backoff, a minute by default: over an hour of crashes); it resumes from its journal.
#: One whose supervisor died is started again by the local backend's keeper, without a limit.
DRIVER_RETRIES = 100


def driver_spec(trial: TrainSpec, tuning: TuningSpec) -> TrainSpec:
    """The job that runs the study: the driver module, with the trial template as its input
    (the trials' secrets are the driver's own, so the template needs only their names)."""
    from ..packaging import package_files

    template = dataclasses.replace(trial, notify=None)  # the study notifies, not each trial
    package = package_files(
        {TRIAL_SPEC_FILE: json.dumps(to_dict(template)).encode()}, DRIVER_MODULE
    )
    notify = {NOTIFY_ENV: trial.notify} if trial.notify else {}
    return TrainSpec(
        name=trial.name,
        package=package,
        env={TUNING_ENV: json.dumps(to_dict(tuning)), **notify},
        secrets=trial.secrets,  # the template keeps their names; the driver hands them on
        resources=Resources(cpu=0),  # mostly waits on trials: it takes no trial's CPU slot
        retries=DRIVER_RETRIES,
        python=trial.python,
        image=trial.image,
        labels={**trial.labels, KIND_LABEL: "study"},
    )


def trial_template(backend: Backend, study_id: str) -> TrainSpec:
    """The TrainSpec every trial of the study runs (before its parameters are added)."""
    from ..packaging import read_member

    raw = read_member(backend.read_code(study_id), TRIAL_SPEC_FILE)
    if raw is None:
        raise NotFound(f"study {study_id} has no trial template (is it a study?)")
    return from_dict(TrainSpec, json.loads(raw))


def trial_job_ids(backend: Backend, study_id: str) -> list[str]:
    """The jobs of every trial the study has started so far."""
    page = backend.list(JobQuery(labels={STUDY_LABEL: study_id}, limit=10_000))
    return [job.id for job in page.jobs]


def study_info(backend: Backend, job: JobInfo) -> StudyInfo:
    """Combine the driver job's state with the summary the driver wrote."""
    if job.spec is None or not is_study(job):
        raise NotFound(f"no study {job.id!r}: it is a training job (see `cloudml jobs describe`)")
    tuning = _parse_tuning(job.spec.env[TUNING_ENV])
    raw = b"{}"
    with contextlib.suppress(NotFound):  # until the driver has written one
        raw = backend.read_output(job.id, SUMMARY_FILE)
    trials, best, failed = _parse_summary(raw)
    status, reason = job.status, job.reason
    if failed:  # the driver ended the study on purpose (too many failures...)
        status, reason = JobStatus.FAILED, failed
    return StudyInfo(
        id=job.id,
        name=job.name,
        status=status,
        tuning=tuning,
        reason=reason,
        created=job.created,
        started=job.started,
        finished=job.finished,
        trials=trials,
        best_trial=best,
    )


@functools.lru_cache(maxsize=256)
def _parse_tuning(text: str) -> TuningSpec:
    return from_dict(TuningSpec, json.loads(text))


@functools.lru_cache(maxsize=256)
def _parse_summary(raw: bytes) -> tuple[tuple[TrialInfo, ...], TrialInfo | None, str | None]:
    """Trials, best trial and failure of a driver's summary (cached: lists re-read them often)."""
    summary: dict[str, Any] = json.loads(raw)
    trials = tuple(from_dict(TrialInfo, t) for t in summary.get("trials", ()))
    best = next((t for t in trials if t.number == summary.get("best")), None)
    return trials, best, summary.get("failed")


def page_studies(backend: Backend, query: JobQuery | None = None) -> tuple[list[StudyInfo], int]:
    """One page of studies matching `query`, and how many match in all."""
    query = query or JobQuery()
    labels = {**query.labels, KIND_LABEL: "study"}
    page = backend.list(dataclasses.replace(query, labels=labels))
    return [study_info(backend, job) for job in page.jobs], page.total


def check_resumable(previous: StudyInfo, tuning: TuningSpec) -> None:
    """Refuse to continue `previous` unless it has ended and tuned the same parameters."""
    if not previous.status.terminal:
        raise Conflict(
            f"study {previous.id} is {previous.status.value}: a study continues one that ended"
        )
    before = sorted(p.name for p in previous.tuning.params)
    now = sorted(p.name for p in tuning.params)
    if before != now:
        raise InvalidSpec(
            f"study {previous.id} tuned {', '.join(before)}; this one tunes {', '.join(now)}: "
            "a study continues one over the same parameters"
        )
    if len(previous.trials) >= tuning.max_trials:
        raise InvalidSpec(
            f"study {previous.id} already ran {len(previous.trials)} trials, and this one asks "
            f"for {tuning.max_trials} in all: ask for more trials (--trials N)"
        )
