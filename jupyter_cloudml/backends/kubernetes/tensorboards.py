"""TensorBoards on a cluster: a Deployment and Service per set of jobs, over their event files
on the shared volume, reached by the Jupyter server (which proxies them) at the Service's DNS
name. The same jobs get the same TensorBoard back while it exists."""

from __future__ import annotations

import contextlib
import json
import time

from ...exceptions import BackendUnavailable, Conflict, NotFound
from ...models import TensorBoardInfo
from ..common.tensorboards import tensorboard_id
from .api import KubeApi
from .labels import JOBS_ANNOTATION, TENSORBOARD_KEY
from .manifests.tensorboard import TENSORBOARD_PORT, tensorboard_manifests, tensorboard_name
from .manifests.training import SharedVolume
from .status import Obj, annotations_of, timestamp

TB_ID_PREFIX = "tb-"


class ClusterTensorBoards:
    """Start, find and stop TensorBoards in one namespace."""

    def __init__(self, api: KubeApi, image: str, shared: SharedVolume | None) -> None:
        self.api = api
        self.image = image
        self.shared = shared

    def start(self, logdirs: dict[str, str], timeout: float = 120.0) -> TensorBoardInfo:
        """The TensorBoard over ``logdirs`` ({job id: its job dir}), started if need be."""
        tb_id = tensorboard_id(list(logdirs))
        name = tensorboard_name(tb_id)
        reused = True
        try:
            deployment = self.api.get(self.api.path("deployments", name))
        except NotFound:
            reused = False
            deployment, service = tensorboard_manifests(
                tb_id, logdirs, self.api.namespace, image=self.image,
                claim=self.shared.claim if self.shared else None,
                mount_path=self.shared.mount_path if self.shared else "/mnt/cloudml",
            )  # fmt: skip
            for plural, manifest in (("deployments", deployment), ("services", service)):
                try:
                    self.api.create(self.api.path(plural), manifest)
                except Conflict:
                    reused = True  # another server started it at the same moment
        deadline = time.monotonic() + timeout
        while not (deployment.get("status") or {}).get("readyReplicas"):
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"TensorBoard {tb_id} was not ready after {timeout:.0f} s")
            time.sleep(0.25)
            deployment = self.api.get(self.api.path("deployments", name))
        return self._info(deployment, reused)

    def all(self) -> list[TensorBoardInfo]:
        listing = self.api.get(self.api.path("deployments"), labelSelector=TENSORBOARD_KEY)
        return [self._info(d) for d in listing.get("items", [])]

    def stop(self, tb_id: str) -> None:
        name = tensorboard_name(tb_id) if tb_id.startswith(TB_ID_PREFIX) else ""
        if not name:
            raise NotFound(f"no TensorBoard {tb_id!r}")
        try:
            self.api.delete(self.api.path("deployments", name), propagationPolicy="Background")
        except NotFound:
            raise NotFound(f"no TensorBoard {tb_id!r}") from None
        with contextlib.suppress(NotFound):
            self.api.delete(self.api.path("services", name))

    def _info(self, deployment: Obj, reused: bool = False) -> TensorBoardInfo:
        meta = deployment["metadata"]
        jobs = tuple(json.loads(annotations_of(deployment).get(JOBS_ANNOTATION) or "[]"))
        url = f"http://{meta['name']}.{self.api.namespace}.svc:{TENSORBOARD_PORT}/"
        started = timestamp(meta.get("creationTimestamp")) or 0.0
        return TensorBoardInfo(meta["name"], jobs, url, started, reused)
