"""What a job leaves: its pods' logs (followed until it ends), its metrics, outputs and code
package on the shared volume."""

from __future__ import annotations

import base64
import builtins
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ...exceptions import NotFound
from ...models import (
    LogLine,
    MetricsUpdate,
)
from ..base import check_output_name
from ..common.job_metrics import read_job_metrics
from ..common.loglines import merge_lines
from . import podlogs
from .connection import ClusterConnection
from .manifests.training import PACKAGE_KEY
from .status import Obj, pod_replica


class JobOutputs(ClusterConnection):
    """`logs`, `metrics`, `read_output` and `read_code` of the Kubernetes backend."""

    def logs(
        self,
        job_id: str,
        replica: str | None = None,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[LogLine]:
        key = self._check_id(job_id)
        self._known(job_id)
        pods = self._job_pods(key, replica)
        per_pod = {p["metadata"]["name"]: podlogs.read_pod(self.api, p) for p in pods}
        first = merge_lines(per_pod.values(), since, tail)
        if not follow:
            return iter(first)
        seen = {name: len(lines) for name, lines in per_pod.items()}
        return self._follow(job_id, key, replica, first, seen, stop or threading.Event())

    def _follow(
        self,
        job_id: str,
        key: str,
        replica: str | None,
        first: builtins.list[LogLine],
        seen: dict[str, int],
        stop: threading.Event,
    ) -> Iterator[LogLine]:
        yield from first
        index = self.index
        yield from podlogs.follow_pods(
            self.api,
            lambda: self._job_pods(key, replica),
            lambda: self._ended(job_id),
            index.wait_change,
            seen,
            stop,
        )

    def _ended(self, job_id: str) -> bool:
        try:
            return self._known(job_id).status.terminal
        except NotFound:
            return True

    def _job_pods(self, key: str, replica: str | None) -> builtins.list[Obj]:
        pods = sorted(
            self.index.pods(key), key=lambda p: p["metadata"].get("creationTimestamp", "")
        )
        return [p for p in pods if replica is None or pod_replica(p) == replica]

    def metrics(self, job_id: str, cursor: str | None = None) -> MetricsUpdate:
        info = self._known(job_id)
        assert info.spec is not None
        job_dir = info.spec.job_dir or self._folder(job_id, "job_dir")
        return read_job_metrics(job_dir, self._folder(job_id, "outputs"), cursor)

    def read_output(self, job_id: str, name: str) -> bytes:
        self._known(job_id)
        check_output_name(name)
        outputs = self._folder(job_id, "outputs")
        if outputs is None:
            raise NotFound(
                f"job {job_id}'s outputs stayed in its pod: configure shared storage "
                "(c.KubernetesBackend.shared_claim) to read them back"
            )
        try:
            return (Path(outputs) / name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"job {job_id} left no output named {name!r}") from None

    def read_code(self, job_id: str) -> bytes:
        key = self._check_id(job_id)
        self._known(job_id)
        stored = self._folder(job_id, PACKAGE_KEY)
        if stored and os.path.isfile(stored):
            return Path(stored).read_bytes()
        try:
            configmap = self.api.get(self.api.path("configmaps", f"{key}-code"))
        except NotFound:
            raise NotFound(f"job {job_id} has no code package left") from None
        return base64.b64decode(configmap.get("binaryData", {}).get(PACKAGE_KEY, ""))
