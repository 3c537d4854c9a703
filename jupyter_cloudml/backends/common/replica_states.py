"""How a replica reads once its job ended: one rule for every backend, so the CLI, the REST API
and the widgets show the same word (CANCELLED, not `FAILED -15`; a parameter server stopped at
the end of a job is STOPPED)."""

from __future__ import annotations

import dataclasses

from ...models import JobStatus, ReplicaInfo, ReplicaStatus

#: Exit codes of a process ended by SIGTERM or SIGKILL: as Python reports them (-15, -9) and
#: as a shell or a container runtime does (128 + signal).
SIGNAL_EXITS = frozenset({-15, -9, 143, 137})


def stopped_by_signal(exit_code: int | None) -> bool:
    """Whether a replica ended because it was stopped, not by an error of its own."""
    return exit_code is None or exit_code in SIGNAL_EXITS


def settled(job: JobStatus, replica: ReplicaInfo) -> ReplicaInfo:
    """`replica` as it reads once the job is `job`: of a CANCELLED job, every replica that was
    stopped (or never ran) is CANCELLED; of a job that ended otherwise, one still PENDING or
    RUNNING, or stopped by a signal once the job SUCCEEDED (a parameter server), is STOPPED.
    A replica that exited with an error of its own stays FAILED."""
    if not job.terminal or replica.status is ReplicaStatus.SUCCEEDED:
        return replica
    status = replica.status
    stopped = status is not ReplicaStatus.FAILED or stopped_by_signal(replica.exit_code)
    unfinished = status in (ReplicaStatus.PENDING, ReplicaStatus.RUNNING)
    if job is JobStatus.CANCELLED and stopped:
        status = ReplicaStatus.CANCELLED
    elif job is not JobStatus.CANCELLED and (
        unfinished or (job is JobStatus.SUCCEEDED and stopped)
    ):
        status = ReplicaStatus.STOPPED
    return replica if status is replica.status else dataclasses.replace(replica, status=status)


def settle_all(job: JobStatus, replicas: tuple[ReplicaInfo, ...]) -> tuple[ReplicaInfo, ...]:
    return tuple(settled(job, r) for r in replicas)
