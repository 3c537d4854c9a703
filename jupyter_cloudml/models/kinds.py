"""Which kind of job a job is: standalone, a study's driver, or one of a study's trials.

A study is made of ordinary jobs marked by labels that every backend stores with the spec, so
any listing can tell them apart or narrow itself to one kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ..exceptions import InvalidSpec
from .jobs import JobInfo, JobQuery

#: The labels that mark a job as a study's driver (`KIND_LABEL: "study"`) or as one of its
#: trials (`STUDY_LABEL: study id`, `TRIAL_LABEL: trial number`).
KIND_LABEL = "cloudml.io/kind"
STUDY_LABEL = "cloudml.io/study"
TRIAL_LABEL = "cloudml.io/trial"
#: The label of a job (or a study's trials) that runs a template: the template's name.
TEMPLATE_LABEL = "cloudml.io/template"


def is_study_driver(labels: Mapping[str, str]) -> bool:
    """Whether a job with these labels is a study's driver."""
    return labels.get(KIND_LABEL) == "study"


def is_study(job: JobInfo) -> bool:
    return job.spec is not None and is_study_driver(job.spec.labels)


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
