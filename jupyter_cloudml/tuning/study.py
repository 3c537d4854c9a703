"""Studies as the rest of the system sees them: a driver job plus the summary it keeps.

A study is submitted as an ordinary job whose entry module is the study driver
(`jupyter_cloudml.tuning.driver`), so every backend runs it detached, survives kernel restarts
and restarts it after a crash. The tuning spec travels in the driver's environment, the trial
template in its code package; the driver writes `study.json` into its outputs as trials progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidSpec, NotFound
from ..models import (
    JobInfo,
    JobQuery,
    JobStatus,
    Resources,
    StudyInfo,
    TrainSpec,
    TrialInfo,
    TuningSpec,
    from_dict,
    to_dict,
)

if TYPE_CHECKING:
    import pandas

    from ..client import Client

KIND_LABEL = "cloudml.io/kind"
STUDY_LABEL = "cloudml.io/study"
TRIAL_LABEL = "cloudml.io/trial"
TUNING_ENV = "CLOUDML_TUNING"
TRIAL_SPEC_FILE = "trial_spec.json"
SUMMARY_FILE = "study.json"
DRIVER_MODULE = "jupyter_cloudml.tuning.driver"
#: A killed or crashed driver is restarted this many times; it resumes from durable storage.
DRIVER_RETRIES = 3


def driver_spec(trial: TrainSpec, tuning: TuningSpec) -> TrainSpec:
    """The job that runs the study: the driver module, with the trial template as its input."""
    from ..packaging import package_files

    package = package_files({TRIAL_SPEC_FILE: json.dumps(to_dict(trial)).encode()}, DRIVER_MODULE)
    return TrainSpec(
        name=trial.name,
        package=package,
        env={TUNING_ENV: json.dumps(to_dict(tuning))},
        resources=Resources(cpu=0),  # mostly waits on trials: it takes no trial's CPU slot
        retries=DRIVER_RETRIES,
        python=trial.python,
        image=trial.image,
        labels={**trial.labels, KIND_LABEL: "study"},
    )


def is_study(job: JobInfo) -> bool:
    return job.spec is not None and job.spec.labels.get(KIND_LABEL) == "study"


#: What a listing can be narrowed to: standalone jobs (no drivers, no trials), or anything.
JOB_KINDS = ("job", "any")


def job_kind(job: JobInfo) -> tuple[str, str | None]:
    """("study", None), ("trial", study id) or ("job", None)."""
    labels = job.spec.labels if job.spec is not None else {}
    if labels.get(KIND_LABEL) == "study":
        return "study", None
    if STUDY_LABEL in labels:
        return "trial", labels[STUDY_LABEL]
    return "job", None


def narrow_query(query: JobQuery, kind: str = "any", study: str | None = None) -> JobQuery:
    """`query` limited to one kind of job (see `JOB_KINDS`) and/or the trials of one study."""
    labels = dict(query.labels)
    without = list(query.without_labels)
    if kind == "job":
        without += [KIND_LABEL, STUDY_LABEL]
    elif kind != "any":
        raise InvalidSpec(f"kind must be one of {', '.join(JOB_KINDS)}, got {kind!r}")
    if study is not None:
        labels[STUDY_LABEL] = study
    return dataclasses.replace(query, labels=labels, without_labels=tuple(without))


def trial_job_ids(client: Client, study_id: str) -> list[str]:
    """The jobs of every trial the study has started so far."""
    page = client.list(JobQuery(labels={STUDY_LABEL: study_id}, limit=10_000))
    return [job.id for job in page.jobs]


def study_info(client: Client, job: JobInfo) -> StudyInfo:
    """Combine the driver job's state with the summary the driver wrote."""
    if job.spec is None or not is_study(job):
        raise NotFound(f"no study {job.id!r}: it is a training job (see `cloudml jobs describe`)")
    tuning = _parse_tuning(job.spec.env[TUNING_ENV])
    raw = b"{}"
    with contextlib.suppress(NotFound):  # until the driver has written one
        raw = client.backend.read_output(job.id, SUMMARY_FILE)
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


def page_studies(client: Client, query: JobQuery | None = None) -> tuple[list[StudyInfo], int]:
    """One page of studies matching `query`, and how many match in all."""
    query = query or JobQuery()
    labels = {**query.labels, KIND_LABEL: "study"}
    page = client.list(dataclasses.replace(query, labels=labels))
    return [study_info(client, job) for job in page.jobs], page.total


class Study:
    """A handle on one study for Python code: `study.best_trial`, `study.trials_dataframe()`."""

    def __init__(self, client: Client, study_id: str) -> None:
        self.client = client
        self.id = study_id

    @property
    def info(self) -> StudyInfo:
        return self.client.get_study(self.id)

    @property
    def trials(self) -> tuple[TrialInfo, ...]:
        return self.info.trials

    @property
    def best_trial(self) -> TrialInfo | None:
        return self.info.best_trial

    def wait(self, timeout: float | None = None) -> StudyInfo:
        self.client.wait(self.id, timeout=timeout)
        return self.info

    def cancel(self) -> StudyInfo:
        self.client.cancel(self.id)
        return self.info

    def trials_dataframe(self) -> pandas.DataFrame:
        """One row per trial: number, status, value, params (as `params_NAME`), job, times."""
        import pandas

        info = self.info
        rows = []
        for t in info.trials:
            row = {
                "number": t.number,
                "status": t.status.value,
                "value": t.value,
                "steps": t.steps,
                "job_id": t.job_id,
                "started": t.started,
                "finished": t.finished,
                "reason": t.reason,
            }
            row.update({f"params_{k}": v for k, v in t.params.items()})
            rows.append(row)
        columns = [
            "number",
            "status",
            "value",
            *(f"params_{p.name}" for p in info.tuning.params),
            "steps",
            "job_id",
            "started",
            "finished",
            "reason",
        ]
        return pandas.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        return f"<Study {self.id}>"
