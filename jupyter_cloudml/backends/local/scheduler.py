"""The local scheduler: queues jobs by CPU/GPU slots and starts one detached supervisor each.

Whoever changes what runs (a submit, a supervisor that finishes, a cancel) runs a `dispatch`
pass, and the home's keeper (`keeper.py`) runs one every half second while there is work;
passes serialise on the database's write lock, so a queued job that fits is started by the next
pass. A pass also reaps jobs whose supervisor died. A job is dispatched with the slots of the
backend that queued it (recorded with it), whichever process runs the pass.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from ...exceptions import InvalidSpec
from ...models import JobStatus, QuotaInfo, QuotaItem, ReplicaStatus, is_study_driver
from .disk import disk_note
from .job_secrets import forget_secrets
from .processes import kill_process_group, process_alive, spawn_detached
from .store import ACTIVE, QUEUED, JobStore

#: How long a dispatched job may wait for its supervisor to record itself.
SUPERVISOR_START_TIMEOUT = 60.0
SUPERVISOR_MODULE = "jupyter_cloudml.backends.local.supervisor"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What supervisors need of the backend's configuration (passed to them as JSON)."""

    home: str
    cpu_slots: float
    gpu_ids: tuple[int, ...] = ()
    grace_seconds: float = 10.0
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    keeper_idle_seconds: float = 30.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    def machine(self) -> str:
        """The slots a job queued by this backend is dispatched with (stored with the job)."""
        return json.dumps({"cpu_slots": self.cpu_slots, "gpu_ids": list(self.gpu_ids)})

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["gpu_ids"] = tuple(data["gpu_ids"])
        return cls(**data)

    @property
    def db_path(self) -> Path:
        return Path(self.home) / "jobs.db"

    def job_folder(self, job_id: str) -> Path:
        return Path(self.home) / "jobs" / job_id

    def job_dir(self, job_id: str, given: str | None) -> str:
        """The job dir replicas see: the one the user gave (a path or URI), else the job's own."""
        if given and given.startswith("file://"):
            return given[len("file://") :]
        return given or str(self.job_folder(job_id) / "job_dir")


def default_home() -> str:
    """The home when neither `c.LocalBackend.home` nor `$CLOUDML_HOME` names one: `cloudml` in
    the Jupyter data dir."""
    from jupyter_core.paths import jupyter_data_dir

    return os.path.join(jupyter_data_dir(), "cloudml")


def detect_gpus() -> list[int]:
    """GPU indices on this machine: `$CUDA_VISIBLE_DEVICES` if set, else `nvidia-smi -L`."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [int(g) for g in visible.split(",") if g.strip().isdigit()]
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return list(range(sum(1 for line in out.splitlines() if line.startswith("GPU "))))


def check_job_dir(job_dir: str | None) -> None:
    """An fsspec URI must name a protocol fsspec knows (its driver installed)."""
    if not job_dir or "://" not in job_dir:
        return
    import fsspec

    protocol = job_dir.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except (ValueError, ImportError) as e:
        raise InvalidSpec(f"--job-dir {job_dir!r}: {e}") from e


def dispatch(store: JobStore, settings: Settings) -> list[str]:
    """Start every queued job that fits now, oldest first; returns the ids started. One that
    waits says for what in its reason, and keeps its claim, so later (smaller) jobs cannot
    starve it."""
    reap(store, settings)
    started = []
    with store.transaction() as db:
        used_cpu, used_gpus = _in_use(store.rows_with_status(ACTIVE, db), settings)
        claimed_cpu = 0.0
        claimed_gpus: set[int] = set()
        now = time.time()
        for row in store.rows_with_status([QUEUED], db):
            if row["not_before"] and row["not_before"] > now:
                continue  # restarting after a pause
            cpu_slots, gpu_ids = _slots(row, settings)
            cpu = min(row["cpu_demand"], cpu_slots)
            gpus = row["gpu_demand"]
            free_cpu = max(cpu_slots - used_cpu - claimed_cpu, 0.0)
            free_gpus = [g for g in gpu_ids if g not in used_gpus | claimed_gpus]
            if cpu <= free_cpu + 1e-9 and gpus <= len(free_gpus):
                given = free_gpus[:gpus]
                store.update(
                    row["id"],
                    db,
                    status=JobStatus.STARTING.value,
                    gpu_ids=given,
                    dispatched=now,
                    dispatcher=_me(),
                    reason="",
                )
                message = f"given {cpu:g} CPU slot(s)" + (f" and GPU(s) {given}" if gpus else "")
                store.add_event(row["id"], "Scheduled", message, db=db)
                started.append(row["id"])
                used_cpu += cpu
                used_gpus |= set(given)
                continue
            waiting = _waiting_for(cpu, free_cpu, cpu_slots, gpus, free_gpus, gpu_ids)
            max_wait = json.loads(row["spec"]).get("max_wait")
            if max_wait and now - row["created"] > max_wait:
                reason = f"waited longer than its maximum wait of {max_wait:g}s ({waiting})"
                store.finish(db, row["id"], JobStatus.FAILED, reason, event="WaitedTooLong")
                forget_secrets(settings.job_folder(row["id"]))
                continue
            if row["reason"] != waiting:
                store.update(row["id"], db, reason=waiting)
            claimed_cpu += cpu
            claimed_gpus |= set(free_gpus[:gpus])
    for job_id in started:
        spawn_supervisor(store, settings, job_id)
    return started


def _in_use(active: Sequence[sqlite3.Row], settings: Settings) -> tuple[float, set[int]]:
    """The CPU slots and the GPUs that the dispatched jobs `active` hold."""
    cpu = sum(min(r["cpu_demand"], _slots(r, settings)[0]) for r in active)
    return cpu, {g for r in active for g in json.loads(r["gpu_ids"])}


def usage(store: JobStore, settings: Settings) -> QuotaInfo:
    """The scheduler's slots (this backend's), how many the dispatched jobs hold, and how many
    jobs hold them and wait for them."""
    active, queued = store.rows_with_status(ACTIVE), store.rows_with_status([QUEUED])
    cpu, gpus = _in_use(active, settings)
    items = (
        QuotaItem("cpu slots", f"{cpu:g}", f"{settings.cpu_slots:g}"),
        QuotaItem("gpus", str(len(gpus)), str(len(settings.gpu_ids))),
    )
    waiting = ", ".join(f"{r['id']} ({r['reason']})" if r["reason"] else r["id"] for r in queued)
    return QuotaInfo(
        scope=f"local scheduler of {settings.home}",
        items=items,
        running=len(active),
        queued=len(queued),
        note=f"queued: {waiting}" if waiting else "",
    )


def _slots(row: sqlite3.Row, settings: Settings) -> tuple[float, tuple[int, ...]]:
    """The CPU slots and GPU ids a job is dispatched with: those of the backend that queued it
    (older records, without them: this pass's)."""
    if not row["machine"]:
        return settings.cpu_slots, settings.gpu_ids
    machine = json.loads(row["machine"])
    return float(machine["cpu_slots"]), tuple(machine["gpu_ids"])


def _waiting_for(
    cpu: float,
    free_cpu: float,
    cpu_slots: float,
    gpus: int,
    free_gpus: list[int],
    gpu_ids: tuple[int, ...],
) -> str:
    """What a queued job waits for: `waiting for 1 GPU: 0 of 2 free`."""
    if gpus > len(free_gpus):
        return f"waiting for {gpus} GPU(s): {len(free_gpus)} of {len(gpu_ids)} free"
    return f"waiting for {cpu:g} CPU slot(s): {free_cpu:g} of {cpu_slots:g} free"


def spawn_supervisor(store: JobStore, settings: Settings, job_id: str) -> None:
    """Start the job's supervisor in a new session, detached from the caller (kernel, CLI)."""
    folder = settings.job_folder(job_id)
    argv = [sys.executable, "-m", SUPERVISOR_MODULE]
    pid, created = spawn_detached(
        [*argv, settings.to_json(), job_id], folder / "supervisor.log", folder
    )
    store.update(job_id, supervisor_pid=pid, supervisor_started=created)


def reap(store: JobStore, settings: Settings) -> None:
    """Mark FAILED every running job whose supervisor is gone, and stop its replicas; a study's
    driver is queued again instead (after a pause that doubles with each restart), and resumes
    from its journal."""
    now = time.time()
    for row in store.rows_with_status(ACTIVE):
        pid = row["supervisor_pid"]
        if process_alive(pid, row["supervisor_started"]):
            continue
        if pid is None and _orphaned(row):
            _requeue_undispatched(store, row)
            continue
        if pid is None and now - (row["dispatched"] or now) < SUPERVISOR_START_TIMEOUT:
            continue
        with store.transaction() as db:
            fresh = store.row(row["id"])
            if fresh is None or fresh["status"] not in ACTIVE or fresh["supervisor_pid"] != pid:
                continue
            if pid is not None:
                kill_process_group(pid, row["supervisor_started"])
            if fresh["cancel_requested"]:
                # SIGTERM can reach a supervisor before it installed its handler: still a cancel.
                status, reason, kind = JobStatus.CANCELLED, "cancelled by the user", "Cancelled"
            elif pid is not None and _restarts_itself(fresh):
                _requeue(store, db, fresh, settings, now)
                continue
            elif pid is not None:
                status, kind = JobStatus.FAILED, "SupervisorLost"
                reason = (
                    "the job's supervisor process died unexpectedly; its replicas were stopped"
                    + disk_note(settings.home)
                )
            else:
                status, reason, kind = (
                    JobStatus.FAILED,
                    "the job's supervisor never started",
                    "SupervisorLost",
                )
            replicas = [
                {**r, "status": ReplicaStatus.STOPPED.value}
                if r["status"] in (ReplicaStatus.PENDING.value, ReplicaStatus.RUNNING.value)
                else r
                for r in json.loads(fresh["replicas"])
            ]
            store.finish(db, row["id"], status, reason, event=kind, replicas=replicas)
        forget_secrets(settings.job_folder(row["id"]))


@functools.cache
def _me() -> str:
    """This process, as a job's `dispatcher` records it."""
    me = psutil.Process()
    return json.dumps({"pid": me.pid, "started": me.create_time()})


def _orphaned(row: sqlite3.Row) -> bool:
    """Whether a job dispatched but without a supervisor lost its dispatcher before that one
    started the supervisor (no supervisor process of the job runs)."""
    try:
        dispatcher = json.loads(row["dispatcher"] or "null")
    except ValueError:
        return False
    if not dispatcher or process_alive(dispatcher.get("pid"), dispatcher.get("started")):
        return False
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if SUPERVISOR_MODULE in argv and argv[-1:] == [row["id"]]:
            return False  # started: it records itself in a moment
    return True


def _requeue_undispatched(store: JobStore, row: sqlite3.Row) -> None:
    with store.transaction() as db:
        fresh = store.row(row["id"])
        if fresh is None or fresh["status"] not in ACTIVE or fresh["supervisor_pid"] is not None:
            return
        reason = "its dispatcher died before starting its supervisor: queued again"
        store.update(
            row["id"],
            db,
            status=QUEUED,
            dispatched=None,
            dispatcher=None,
            gpu_ids=[],
            reason=reason,
        )
        store.add_event(row["id"], "Requeued", reason, "Warning", db=db)


def _restarts_itself(row: sqlite3.Row) -> bool:
    """Whether a job that lost its supervisor starts again rather than failing: a study's
    driver, which resumes from its journal without repeating a finished trial."""
    return is_study_driver(json.loads(row["spec"]).get("labels") or {})


def _requeue(
    store: JobStore, db: sqlite3.Connection, row: sqlite3.Row, settings: Settings, now: float
) -> None:
    restarts = row["restarts"] + 1
    pause = min(settings.backoff_seconds * 2 ** (restarts - 1), settings.backoff_max_seconds)
    reason = f"its supervisor died; starting again in {pause:g}s (restart {restarts})"
    store.update(
        row["id"],
        db,
        status=QUEUED,
        reason=reason,
        restarts=restarts,
        not_before=now + pause,
        supervisor_pid=None,
        supervisor_started=None,
        dispatched=None,
        gpu_ids=[],
        replicas=[
            {**r, "status": ReplicaStatus.PENDING.value} for r in json.loads(row["replicas"])
        ],
    )
    store.add_event(row["id"], "Restarting", reason, "Warning", db=db)
