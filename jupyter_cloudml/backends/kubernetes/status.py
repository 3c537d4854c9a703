"""What a job's Kubernetes objects say about it: pure functions from Jobs and pods to JobInfo.

A training job is one Indexed Job per replica group; the primary one (chief, else worker)
carries the job's record in annotations (spec, submission time, cancellation). Status follows
the Jobs' conditions first (Failed anywhere, Complete on the primary), then the pods: all
replicas running is RUNNING, failures being retried is RETRYING, pods placed but not all up is
STARTING, and pods the scheduler cannot place (no GPU of that type, an image that does not
pull) keep the job QUEUED with the scheduler's or kubelet's own words as its reason.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable
from typing import Any

from ...models import (
    Event,
    JobInfo,
    JobStatus,
    ReplicaInfo,
    ReplicaStatus,
    TrainSpec,
    from_dict,
)
from ..common.cluster import success_replicas
from ..common.replica_states import settled
from .labels import (
    CANCELLED_ANNOTATION,
    COMPLETION_INDEX_KEY,
    CREATED_ANNOTATION,
    JOB_ID_ANNOTATION,
    ROLE_KEY,
    SPEC_ANNOTATION,
)
from .quota import QUOTA_RE, refusal_message

Obj = dict[str, Any]
#: Container waiting reasons that mean the image will not come (not a slow start).
IMAGE_PROBLEMS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
POD_REPLICA_STATUS = {
    "Pending": ReplicaStatus.PENDING,
    "Running": ReplicaStatus.RUNNING,
    "Succeeded": ReplicaStatus.SUCCEEDED,
    "Failed": ReplicaStatus.FAILED,
}


def timestamp(text: str | None) -> float | None:
    """RFC 3339 (``2026-11-24T10:00:00Z``, with or without fractions) -> epoch seconds."""
    if not text:
        return None
    text = text.replace("Z", "+00:00")
    if "." in text:  # Python's parser takes at most microseconds
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    return datetime.datetime.fromisoformat(text).timestamp()


def annotations_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def labels_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def is_record(obj: Obj) -> bool:
    """Whether a Job is a job's primary one, holding its record."""
    return SPEC_ANNOTATION in annotations_of(obj) and JOB_ID_ANNOTATION in annotations_of(obj)


def spec_of(record: Obj) -> TrainSpec:
    data = json.loads(annotations_of(record)[SPEC_ANNOTATION])
    spec: TrainSpec = from_dict(TrainSpec, data)
    return spec


def condition(obj: Obj, kind: str) -> Obj | None:
    """The object's condition of that type when it is "True"."""
    for cond in obj.get("status", {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def pod_index(pod: Obj) -> int:
    meta = pod.get("metadata", {})
    value = (meta.get("labels") or {}).get(COMPLETION_INDEX_KEY) or (
        meta.get("annotations") or {}
    ).get(COMPLETION_INDEX_KEY, "0")
    return int(value)


def pod_replica(pod: Obj) -> str:
    """``worker-1``: the replica a pod runs (role label and completion index)."""
    return f"{labels_of(pod).get(ROLE_KEY, 'worker')}-{pod_index(pod)}"


def pod_exit_code(pod: Obj) -> int | None:
    terminated = pod_termination(pod)
    return None if terminated is None else int(terminated.get("exitCode", 0))


def pod_termination(pod: Obj) -> Obj | None:
    """The first terminated container state of a pod (exit code, reason, message), if any."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated is not None:
            return dict(terminated)
    return None


#: Container end reasons that say nothing beyond the exit code.
_PLAIN_ENDS = frozenset({"", "Error", "Completed"})


def exit_description(name: str, terminated: Obj) -> str:
    """``worker-0 exited with 137 (OOMKilled)``: the code, and the kubelet's reason when it
    says more than the code (OOMKilled, ContainerStatusUnknown, StartError ...)."""
    text = f"{name} exited with {int(terminated.get('exitCode', 0))}"
    reason = str(terminated.get("reason") or "")
    if reason not in _PLAIN_ENDS:
        message = str(terminated.get("message") or "").strip()
        text += f" ({reason}: {message})" if message else f" ({reason})"
    return text


def pod_ready(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and bool(condition(pod, "Ready"))


def pod_waiting_reason(pod: Obj) -> tuple[str, str] | None:
    """Why a pod is not running yet, when Kubernetes says: (reason, message)."""
    status = pod.get("status", {})
    if status.get("phase") != "Pending":
        return None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return cond.get("reason") or "Unschedulable", cond.get("message") or "not scheduled"
    for cstatus in status.get("containerStatuses") or []:
        waiting = (cstatus.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in IMAGE_PROBLEMS:
            return waiting["reason"], waiting.get(
                "message"
            ) or f"cannot pull {cstatus.get('image')}"
    return None


def latest_pods(pods: Iterable[Obj]) -> dict[str, Obj]:
    """The newest pod of each replica (a retried replica has several)."""
    newest: dict[str, Obj] = {}
    for pod in sorted(pods, key=_created):
        newest[pod_replica(pod)] = pod
    return newest


def job_info(record: Obj, jobs: Iterable[Obj], pods: Iterable[Obj]) -> JobInfo:
    """The job ``record`` (its primary Job) stands for, given all its Jobs and pods."""
    spec = spec_of(record)
    jobs, pods = list(jobs), list(pods)
    notes = annotations_of(record)
    cancelled = _float(notes.get(CANCELLED_ANNOTATION))
    newest = latest_pods(pods)
    attempt = 1 + max((int(j.get("status", {}).get("failed") or 0) for j in jobs), default=0)
    started = timestamp(record.get("status", {}).get("startTime"))
    status, reason, finished = _status(record, jobs, newest, spec, cancelled)
    decisive = set(success_replicas(spec.framework, spec.replicas))
    return JobInfo(
        id=notes[JOB_ID_ANNOTATION],
        name=spec.name,
        status=status,
        reason=reason,
        created=_float(notes.get(CREATED_ANNOTATION)) or _created(record),
        started=started,
        finished=finished,
        attempt=attempt,
        replicas=tuple(
            _replica(name, newest.get(name), status, name in decisive)
            for name in spec.replicas.names()
        ),
        spec=spec,
    )


def _status(
    record: Obj, jobs: list[Obj], newest: dict[str, Obj], spec: TrainSpec, cancelled: float | None
) -> tuple[JobStatus, str, float | None]:
    if cancelled is not None:
        return JobStatus.CANCELLED, "cancelled", cancelled
    for job in jobs:
        failed = condition(job, "Failed")
        if failed is not None:
            role = labels_of(job).get(ROLE_KEY, "job")
            reason = _failure_reason(role, failed, newest)
            return JobStatus.FAILED, reason, timestamp(failed.get("lastTransitionTime"))
    complete = condition(record, "Complete")
    if complete is not None:
        finished = timestamp(record.get("status", {}).get("completionTime"))
        return JobStatus.SUCCEEDED, "", finished or timestamp(complete.get("lastTransitionTime"))
    if record.get("spec", {}).get("suspend"):
        return JobStatus.QUEUED, "submitting", None
    expected = spec.replicas.names()
    running = [name for name in expected if name in newest and pod_ready(newest[name])]
    done = [
        name
        for name in expected
        if newest.get(name, {}).get("status", {}).get("phase") == "Succeeded"
    ]
    failures = sum(int(j.get("status", {}).get("failed") or 0) for j in jobs)
    if len(running) + len(done) == len(expected) and running:
        return JobStatus.RUNNING, "", None
    waiting = [(n, w) for n in expected if n in newest and (w := pod_waiting_reason(newest[n]))]
    if failures:
        return JobStatus.RETRYING, f"{failures} replica failure(s); retrying", None
    if waiting:
        name, (why, message) = waiting[0]
        return JobStatus.QUEUED, f"{name} waiting: {why}: {message}", None
    if newest:
        return JobStatus.STARTING, f"{len(running)}/{len(expected)} replicas running", None
    return JobStatus.QUEUED, "", None


def _failure_reason(role: str, failed: Obj, newest: dict[str, Obj]) -> str:
    codes = [
        exit_description(name, ended)
        for name, pod in sorted(newest.items())
        if (ended := pod_termination(pod)) is not None and int(ended.get("exitCode", 0)) != 0
    ]
    why = failed.get("reason") or "Failed"
    message = failed.get("message") or ""
    parts = [f"{role}: {why}" + (f" ({message})" if message else "")]
    return "; ".join(parts + codes[:3])


def _replica(name: str, pod: Obj | None, job_status: JobStatus, decisive: bool) -> ReplicaInfo:
    """A replica from its newest pod; without one (gone with its Job), a replica whose success
    made the job's (`decisive`) SUCCEEDED with it, any other one is settled as never ended."""
    if pod is None:
        done = job_status is JobStatus.SUCCEEDED and decisive
        status = ReplicaStatus.SUCCEEDED if done else ReplicaStatus.PENDING
        return settled(job_status, ReplicaInfo(name=name, status=status))
    phase = pod.get("status", {}).get("phase", "Pending")
    status = POD_REPLICA_STATUS.get(phase, ReplicaStatus.PENDING)
    return settled(job_status, ReplicaInfo(name, status, exit_code=pod_exit_code(pod)))


def pod_events(pods: Iterable[Obj]) -> list[Event]:
    """What the pods' own status tells: placement problems, starts and exits."""
    out: list[Event] = []
    for pod in sorted(pods, key=_created):
        replica, name = pod_replica(pod), pod["metadata"]["name"]
        created = _created(pod)
        out.append(Event(created, "PodCreated", f"{replica}: pod {name}"))
        waiting = pod_waiting_reason(pod)
        if waiting is not None:
            out.append(Event(created, waiting[0], f"{replica}: {waiting[1]}", "Warning"))
        for cstatus in pod.get("status", {}).get("containerStatuses") or []:
            state = cstatus.get("state") or {}
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                out.append(Event(timestamp(started) or created, "Started", f"{replica} started"))
            terminated = state.get("terminated")
            if terminated:
                code = int(terminated.get("exitCode", 0))
                out.append(
                    Event(
                        timestamp(terminated.get("finishedAt")) or created,
                        "Exited",
                        f"{replica} exited with {code}"
                        + (f" ({terminated['reason']})" if terminated.get("reason") else ""),
                        "Normal" if code == 0 else "Warning",
                    )
                )
    return out


def cluster_event(event: Obj) -> Event:
    """A core/v1 Event as the project's Event."""
    involved = event.get("involvedObject") or {}
    when = (
        timestamp(event.get("lastTimestamp"))
        or timestamp(event.get("eventTime"))
        or timestamp(event.get("firstTimestamp"))
        or _created(event)
    )
    subject = f"{involved.get('kind', '')} {involved.get('name', '')}".strip()
    message = str(event.get("message") or "")
    if event.get("reason") == "FailedCreate" and (refusal := QUOTA_RE.search(message)):
        # the job controller retries as the quota frees up: the job waits, it did not fail
        message = f"waiting for quota: {refusal_message(refusal)}"
    return Event(
        when,
        str(event.get("reason") or "Event"),
        f"{subject}: {message}",
        str(event.get("type") or "Normal"),
    )


def _created(obj: Obj) -> float:
    return timestamp(obj.get("metadata", {}).get("creationTimestamp")) or 0.0


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
