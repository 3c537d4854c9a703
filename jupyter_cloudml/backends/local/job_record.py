"""What a submit writes: the job's folder (its code package and secrets) and its record."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path

from ...exceptions import BackendUnavailable
from ...models import JobStatus, ReplicaStatus, TrainSpec, spec_to_json
from .job_secrets import keep_secrets
from .processes import DIR_MODE, private_open
from .scheduler import Settings
from .store import JobStore


def record_job(
    store: JobStore, settings: Settings, spec: TrainSpec, python: str, role_pythons: dict[str, str]
) -> str:
    """Write a submitted job's folder (code, secrets) and its database row, with its first
    event; its id. Nothing is left of it when any of that fails."""
    cpu_demand, gpu_demand = spec.demand()
    job_id, folder = _new_job_folder(settings, spec.name)
    try:
        with private_open(folder / "package.tar.gz", "wb") as out:
            out.write(spec.package.archive)
        keep_secrets(folder, spec.secrets)
        names = spec.replicas.names()
        with store.transaction() as db:  # the job and its first event, or neither
            store.insert(
                {
                    "id": job_id,
                    "name": spec.name,
                    "status": JobStatus.QUEUED.value,
                    "created": time.time(),
                    "spec": spec_to_json(spec),
                    "replicas": json.dumps(
                        [{"name": n, "status": ReplicaStatus.PENDING.value} for n in names]
                    ),
                    "cpu_demand": cpu_demand,
                    "gpu_demand": gpu_demand,
                    "python": python,
                    "role_pythons": json.dumps(role_pythons),
                    "machine": settings.machine(),
                },
                spec.labels,
                db,
            )
            message = f"{len(names)} replica(s): {', '.join(names)}"
            store.add_event(job_id, "Queued", message, db=db)
            if spec.service_account:
                message = f"ServiceAccount {spec.service_account}: jobs here run as you"
                store.add_event(job_id, "Identity", message, "Warning", db=db)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return job_id


def _new_job_folder(settings: Settings, name: str) -> tuple[str, Path]:
    """A fresh id (name + random suffix) and its folder, created exclusively."""
    for _ in range(100):
        job_id = f"{name}-{secrets.token_hex(3)}"
        folder = settings.job_folder(job_id)
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        return job_id, folder
    raise BackendUnavailable(f"could not allocate a job id under {settings.home}")
