"""Pure parts of the Kubernetes backend: status from Jobs and pods, log lines, watch events,
API errors. No cluster: plain dicts shaped as the API server sends them."""

from __future__ import annotations

import json

import pytest

from jupyter_cloudml.backends.kubernetes.api import ApiError, error_for
from jupyter_cloudml.backends.kubernetes.labels import (
    CANCELLED_ANNOTATION,
    COMPLETION_INDEX_KEY,
    CREATED_ANNOTATION,
    JOB_ID_ANNOTATION,
    JOB_KEY,
    ROLE_KEY,
    SPEC_ANNOTATION,
)
from jupyter_cloudml.backends.kubernetes.podlogs import parse_line
from jupyter_cloudml.backends.kubernetes.status import job_info, pod_events, timestamp
from jupyter_cloudml.backends.kubernetes.watch import Expired, decode_event
from jupyter_cloudml.exceptions import (
    BackendUnavailable,
    CloudMLError,
    Conflict,
    NotFound,
    QuotaExceeded,
)
from jupyter_cloudml.models import (
    CodePackage,
    Framework,
    JobStatus,
    Replicas,
    ReplicaStatus,
    TrainSpec,
    spec_to_json,
)

SPEC = TrainSpec(
    name="mnist",
    package=CodePackage(archive=b"x", module="train"),
    replicas=Replicas(workers=2, ps=1),
    framework=Framework.TENSORFLOW,
)


def job(role: str, *, record: bool = False, **status: object) -> dict:
    notes = {JOB_ID_ANNOTATION: "mnist-abc123"}
    if record:
        notes |= {SPEC_ANNOTATION: spec_to_json(SPEC), CREATED_ANNOTATION: "1700000000.5"}
    return {
        "metadata": {
            "name": f"mnist-abc123-{role}",
            "labels": {JOB_KEY: "mnist-abc123", ROLE_KEY: role},
            "annotations": notes,
            "creationTimestamp": "2026-11-24T10:00:00Z",
        },
        "spec": {},
        "status": dict(status),
    }


def pod(role: str, index: int, phase: str, created: str = "2026-11-24T10:00:01Z", **extra):
    status = {"phase": phase, **extra}
    if phase == "Running":
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    return {
        "metadata": {
            "name": f"mnist-abc123-{role}-{index}-{created[-3:-1]}",
            "namespace": "team-a",
            "labels": {JOB_KEY: "mnist-abc123", ROLE_KEY: role, COMPLETION_INDEX_KEY: str(index)},
            "creationTimestamp": created,
        },
        "status": status,
    }


def terminated(code: int) -> list[dict]:
    return [
        {"state": {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed"}}}
    ]


def test_all_replicas_ready_is_running_and_record_carries_spec() -> None:
    pods = [pod("worker", 0, "Running"), pod("worker", 1, "Running"), pod("ps", 0, "Running")]
    info = job_info(job("worker", record=True), [job("worker", record=True), job("ps")], pods)
    assert info.id == "mnist-abc123" and info.name == "mnist"
    assert info.status is JobStatus.RUNNING
    assert info.created == 1700000000.5
    assert [r.name for r in info.replicas] == ["worker-0", "worker-1", "ps-0"]
    assert {r.status for r in info.replicas} == {ReplicaStatus.RUNNING}
    assert info.spec is not None and info.spec.replicas.ps == 1


def test_unschedulable_pod_keeps_job_queued_with_the_schedulers_words() -> None:
    message = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    waiting = pod(
        "worker",
        1,
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    )
    record = job("worker", record=True)
    info = job_info(record, [record], [pod("worker", 0, "Running"), waiting])
    assert info.status is JobStatus.QUEUED
    assert "worker-1 waiting: Unschedulable" in info.reason and "nvidia.com/gpu" in info.reason
    events = pod_events([waiting])
    assert any(e.reason == "Unschedulable" and e.type == "Warning" for e in events)


def test_image_pull_error_is_the_reason() -> None:
    waiting = pod(
        "worker",
        0,
        "Pending",
        containerStatuses=[
            {
                "image": "nope:1",
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "nope:1"',
                    }
                },
            }
        ],
    )
    record = job("worker", record=True)
    info = job_info(record, [record], [waiting])
    assert info.status is JobStatus.QUEUED and "ImagePullBackOff" in info.reason


def test_failures_being_retried_and_final_failure_with_exit_codes() -> None:
    record = job("worker", record=True, failed=1, active=2)
    retrying = job_info(
        record, [record], [pod("worker", 0, "Failed", containerStatuses=terminated(3))]
    )
    assert retrying.status is JobStatus.RETRYING and retrying.attempt == 2
    failed = job("worker", record=True, failed=2)
    failed["status"]["conditions"] = [
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
         "message": "Job has reached the specified backoff limit",
         "lastTransitionTime": "2026-11-24T10:05:00Z"}
    ]  # fmt: skip
    info = job_info(failed, [failed], [pod("worker", 0, "Failed", containerStatuses=terminated(3))])
    assert info.status is JobStatus.FAILED
    assert "BackoffLimitExceeded" in info.reason and "worker-0 exited with 3" in info.reason
    assert info.finished == timestamp("2026-11-24T10:05:00Z")
    assert info.replicas[0].exit_code == 3


def test_primary_complete_is_success_and_cancelled_wins() -> None:
    record = job("worker", record=True, completionTime="2026-11-24T10:09:00Z")
    record["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert job_info(record, [record, job("ps", active=1)], []).status is JobStatus.SUCCEEDED
    cancelled = job("worker", record=True)
    cancelled["metadata"]["annotations"][CANCELLED_ANNOTATION] = "1700000100"
    info = job_info(cancelled, [cancelled], [pod("worker", 0, "Running")])
    assert info.status is JobStatus.CANCELLED and info.finished == 1700000100
    assert [r.status for r in info.replicas] == [ReplicaStatus.CANCELLED] * 3


def test_replica_words_once_the_job_ended() -> None:
    """A parameter server stopped at the end is STOPPED, a cancelled job's replicas CANCELLED
    (not FAILED 143), and a replica that failed by itself stays FAILED."""
    record = job("worker", record=True, completionTime="2026-11-24T10:09:00Z")
    record["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    done = [pod("worker", i, "Succeeded", containerStatuses=terminated(0)) for i in (0, 1)]
    ps = pod("ps", 0, "Failed", containerStatuses=terminated(143))
    info = job_info(record, [record, job("ps")], [*done, ps])
    states = {r.name: r.status for r in info.replicas}
    assert states == {
        "worker-0": ReplicaStatus.SUCCEEDED,
        "worker-1": ReplicaStatus.SUCCEEDED,
        "ps-0": ReplicaStatus.STOPPED,
    }
    gone = job_info(record, [record], done)  # the ps pod deleted with its Job
    assert gone.replicas[2].status is ReplicaStatus.STOPPED
    cancelled = job("worker", record=True)
    cancelled["metadata"]["annotations"][CANCELLED_ANNOTATION] = "1700000100"
    pods = [
        pod("worker", 0, "Failed", containerStatuses=terminated(143)),
        pod("worker", 1, "Failed", containerStatuses=terminated(2)),
    ]
    info = job_info(cancelled, [cancelled], pods)
    assert [r.status for r in info.replicas] == [
        ReplicaStatus.CANCELLED,
        ReplicaStatus.FAILED,
        ReplicaStatus.CANCELLED,
    ]


def test_a_suspended_record_is_still_being_submitted() -> None:
    record = job("worker", record=True)
    record["spec"]["suspend"] = True
    assert job_info(record, [record], []).status is JobStatus.QUEUED


def test_newest_pod_of_a_retried_replica_counts() -> None:
    record = job("worker", record=True, failed=1)
    old = pod("worker", 0, "Failed", "2026-11-24T10:00:01Z", containerStatuses=terminated(1))
    new = pod("worker", 0, "Running", "2026-11-24T10:00:09Z")
    info = job_info(
        record, [record], [new, old, pod("worker", 1, "Running"), pod("ps", 0, "Running")]
    )
    assert info.replicas[0].status is ReplicaStatus.RUNNING
    assert info.status is JobStatus.RUNNING


def test_timestamps_with_nanoseconds_and_log_lines() -> None:
    assert timestamp("2026-11-24T10:00:00.123456789Z") == pytest.approx(
        timestamp("2026-11-24T10:00:00Z") + 0.123456, abs=1e-6
    )
    line = parse_line(b"2026-11-24T10:00:00.500000000Z loss=0.3 step 1", "worker-1")
    assert line.replica == "worker-1" and line.text == "loss=0.3 step 1"
    assert line.time == timestamp("2026-11-24T10:00:00.5Z")
    bare = parse_line(b"no stamp here", "ps-0")
    assert bare.text == "no stamp here"


def test_watch_events_decode_and_410_is_expired() -> None:
    kind, obj = decode_event(b'{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}')
    assert kind == "MODIFIED" and obj["metadata"]["name"] == "a"
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
    with pytest.raises(Expired):
        decode_event(json.dumps(gone).encode())
    with pytest.raises(CloudMLError, match="forbidden"):
        decode_event(b'{"type":"ERROR","object":{"code":403,"message":"forbidden"}}')


def status_body(code: int, message: str, reason: str = "") -> bytes:
    return json.dumps(
        {"kind": "Status", "code": code, "message": message, "reason": reason}
    ).encode()


def test_api_errors_become_the_projects_errors() -> None:
    quota = (
        'jobs "x" is forbidden: exceeded quota: team-a-quota, requested: '
        "requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=3, "
        "limited: requests.nvidia.com/gpu=4"
    )
    err = error_for(403, status_body(403, quota, "Forbidden"), "https://k8s:6443")
    assert isinstance(err, QuotaExceeded)
    assert str(err) == (
        "requests.nvidia.com/gpu: asks 2, over quota 'team-a-quota' of the namespace by 1 "
        "(it allows 4, 3 in use)"
    )
    assert isinstance(error_for(404, status_body(404, "jobs x not found"), "h"), NotFound)
    assert isinstance(error_for(409, status_body(409, "exists"), "h"), Conflict)
    unavailable = error_for(503, b"upstream down", "https://k8s:6443")
    assert isinstance(unavailable, BackendUnavailable) and "https://k8s:6443" in str(unavailable)
    other = error_for(422, status_body(422, "spec.x: Invalid value", "Invalid"), "h")
    assert isinstance(other, ApiError) and other.status == 422 and "Invalid value" in str(other)
