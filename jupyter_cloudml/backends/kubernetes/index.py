"""The namespace's Jobs and pods grouped by the job they belong to, with each job's JobInfo.

Fed by the informers' events; a job's JobInfo is derived again only when one of its Jobs or
pods changed, so listing a thousand jobs costs a dict walk, not a thousand derivations.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from ...models import JobInfo
from .labels import JOB_KEY
from .status import Obj, is_record, job_info, labels_of


class JobIndex:
    """Jobs and pods by job key (the ``cloudml.io/job`` label), and their derived JobInfo."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._jobs: dict[str, dict[str, Obj]] = defaultdict(dict)
        self._pods: dict[str, dict[str, Obj]] = defaultdict(dict)
        self._infos: dict[str, JobInfo | None] = {}
        self._generation: dict[str, int] = defaultdict(int)
        self._forgotten: set[str] = set()
        #: The informers feeding this index (kept to stop them).
        self.informers: tuple[Any, ...] = ()

    # --- feeding --------------------------------------------------------------------------------

    def on_job(self, kind: str, obj: Obj) -> None:
        self._apply(self._jobs, kind, obj)

    def on_pod(self, kind: str, obj: Obj) -> None:
        self._apply(self._pods, kind, obj)

    def _apply(self, table: dict[str, dict[str, Obj]], kind: str, obj: Obj) -> None:
        key = labels_of(obj).get(JOB_KEY)
        if not key:
            return
        name = obj["metadata"]["name"]
        with self._changed:
            if kind == "DELETED":
                table[key].pop(name, None)
            else:
                if key in self._forgotten:
                    return  # deleted by us; late events of its objects are not a new job
                old = table[key].get(name)
                if old is not None and _newer(old, obj):
                    return  # an event older than what a create/patch answer already gave
                table[key][name] = obj
            self._infos.pop(key, None)
            self._generation[key] += 1
            self._changed.notify_all()

    def forget(self, key: str) -> None:
        """Drop a deleted job at once (its DELETED events may come later)."""
        with self._changed:
            self._jobs.pop(key, None)
            self._pods.pop(key, None)
            self._infos.pop(key, None)
            self._forgotten.add(key)
            self._changed.notify_all()

    def wait_change(self, timeout: float) -> None:
        with self._changed:
            self._changed.wait(timeout)

    # --- reading --------------------------------------------------------------------------------

    def jobs(self, key: str) -> list[Obj]:
        with self._lock:
            return list(self._jobs.get(key, {}).values())

    def pods(self, key: str) -> list[Obj]:
        with self._lock:
            return list(self._pods.get(key, {}).values())

    def record(self, key: str) -> Obj | None:
        with self._lock:
            return next((j for j in self._jobs.get(key, {}).values() if is_record(j)), None)

    def info(self, key: str) -> JobInfo | None:
        with self._lock:
            if key in self._infos:
                return self._infos[key]
            jobs = list(self._jobs.get(key, {}).values())
            pods = list(self._pods.get(key, {}).values())
            generation = self._generation[key]
        record = next((j for j in jobs if is_record(j)), None)
        info = job_info(record, jobs, pods) if record is not None else None
        with self._lock:
            if self._generation[key] == generation:  # nothing changed while deriving
                self._infos[key] = info
        return info

    def infos(self) -> list[JobInfo]:
        with self._lock:
            keys = [k for k, jobs in self._jobs.items() if jobs]
        return [info for key in keys if (info := self.info(key)) is not None]


def _newer(old: Obj, new: Obj) -> bool:
    """Whether ``old`` is a later version than ``new`` (numeric resourceVersions only)."""
    a = old["metadata"].get("resourceVersion", "")
    b = new["metadata"].get("resourceVersion", "")
    return a.isdigit() and b.isdigit() and int(a) > int(b)
