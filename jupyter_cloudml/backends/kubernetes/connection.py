"""The Kubernetes backend's settings and its connection: the API client, the namespace, the
shared volume and the watched index of Jobs and pods."""

from __future__ import annotations

import builtins
import contextlib
import os
import threading
import time
from typing import Any

from traitlets import Int, Unicode, default

from ...exceptions import BackendUnavailable, Conflict, NotFound
from ...models import (
    JobInfo,
)
from ..base import JOB_ID_RE, Backend
from .api import ApiError, KubeApi
from .deployments import ClusterDeployments
from .index import JobIndex
from .labels import (
    managed_selector,
)
from .manifests.training import SharedVolume
from .names import job_name
from .status import Obj, condition
from .watch import Informer

NAMESPACE_ENV = "CLOUDML_NAMESPACE"
IMAGE_ENV = "CLOUDML_IMAGE"
SERVING_IMAGE_ENV = "CLOUDML_SERVING_IMAGE"
SHARED_CLAIM_ENV = "CLOUDML_SHARED_CLAIM"
SHARED_MOUNT_ENV = "CLOUDML_SHARED_MOUNT"
#: Seconds the namespace's quotas are taken as read (their hard limits rarely change).
QUOTA_TTL = 300.0


class ClusterConnection(Backend):
    """The settings and connection every part of the Kubernetes backend works through."""

    namespace = Unicode(
        "",
        config=True,
        help="""Namespace for jobs. Default: $CLOUDML_NAMESPACE, else the pod's own namespace
        (in a cluster), else the kubeconfig context's. Example: c.KubernetesBackend.namespace =
        "team-a" """,
    )

    kubeconfig = Unicode(
        "",
        config=True,
        help="""Kubeconfig file used outside a cluster (default $KUBECONFIG, ~/.kube/config).
        Example: c.KubernetesBackend.kubeconfig = "/home/me/.kube/config" """,
    )

    context = Unicode(
        "",
        config=True,
        help="""Kubeconfig context (default: the current one). Example:
        c.KubernetesBackend.context = "gpu-cluster" """,
    )

    image = Unicode(
        "",
        config=True,
        help="""Image of training pods when a job names none (`--image`); it must have
        jupyter-cloudml installed (see images/). Default $CLOUDML_IMAGE, else
        jupyter-cloudml/trainer:latest. Example: c.KubernetesBackend.image =
        "registry.example.com/ml/trainer:2026.11" """,
    )

    shared_claim = Unicode(
        "",
        config=True,
        help="""A ReadWriteMany PersistentVolumeClaim mounted in every pod and in the notebook
        server at `shared_mount`: job dirs, outputs, metrics, large code packages and study
        journals live there. Without it jobs run but their outputs stay in the pod, and
        studies cannot run. Default $CLOUDML_SHARED_CLAIM. Example:
        c.KubernetesBackend.shared_claim = "cloudml-shared" """,
    )

    shared_mount = Unicode(
        "",
        config=True,
        help="""Where `shared_claim` is mounted, in pods and in this server alike. Default
        $CLOUDML_SHARED_MOUNT, else /mnt/cloudml. Example:
        c.KubernetesBackend.shared_mount = "/mnt/cloudml" """,
    )

    ttl_seconds = Int(
        7 * 24 * 3600,
        config=True,
        help="""Finished jobs (their Jobs, pods and records) are removed by Kubernetes after
        this many seconds. Example: c.KubernetesBackend.ttl_seconds = 86400""",
    )

    package_in_configmap_max = Int(
        900_000,
        config=True,
        help="""Code packages up to this many bytes travel in a ConfigMap; larger ones are
        written to the shared volume. Example: c.KubernetesBackend.package_in_configmap_max =
        500000""",
    )

    serving_image = Unicode(
        config=True,
        help="""Image of model servers (the plain flavour and custom predictors); it must have
        jupyter-cloudml and kserve installed (see images/). Default $CLOUDML_SERVING_IMAGE, else
        jupyter-cloudml/serving:latest. Example:
        c.KubernetesBackend.serving_image = "registry.example.com/ml/serving:2026.11" """,
    )

    api_retries = Int(
        5,
        config=True,
        help="""How often a request answered 429/5xx (or not at all) is retried, with backoff.
        Example: c.KubernetesBackend.api_retries = 3""",
    )

    @default("namespace")
    def _namespace_default(self) -> str:
        return os.environ.get(NAMESPACE_ENV, "")

    @default("image")
    def _image_default(self) -> str:
        return os.environ.get(IMAGE_ENV, "jupyter-cloudml/trainer:latest")

    @default("serving_image")
    def _serving_image_default(self) -> str:
        return os.environ.get(SERVING_IMAGE_ENV, "jupyter-cloudml/serving:latest")

    @default("shared_claim")
    def _shared_claim_default(self) -> str:
        return os.environ.get(SHARED_CLAIM_ENV, "")

    @default("shared_mount")
    def _shared_mount_default(self) -> str:
        return os.environ.get(SHARED_MOUNT_ENV, "/mnt/cloudml")

    def pod_settings(self, namespace: str | None = None) -> dict[str, str]:
        """The environment that makes a pod's own `Client()` (a study driver's) use this
        cluster, namespace (default: this backend's), images and shared volume."""
        return pod_environment(
            namespace or self.ns,
            self.image,
            self.serving_image,
            self.shared_claim,
            self.shared_mount,
        )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._api: KubeApi | None = None
        self._index: JobIndex | None = None
        self._rbac_ready = False
        self._quota_cache: tuple[float, builtins.list[Obj]] | None = None
        self._serving: ClusterDeployments | None = None

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            self._api = KubeApi(
                kubeconfig=self.kubeconfig or None,
                context=self.context or None,
                namespace=self.namespace or None,
                retries=self.api_retries,
                log=self.log,
            )
        return self._api

    @property
    def ns(self) -> str:
        return self.api.namespace

    @property
    def shared(self) -> SharedVolume | None:
        return SharedVolume(self.shared_claim, self.shared_mount) if self.shared_claim else None

    @property
    def index(self) -> JobIndex:
        """The watched Jobs and pods of this namespace (started on first use, with a first
        read of the namespace's quotas, so that submitting is not slowed by it)."""
        with self._lock:
            if self._index is None:
                self._quotas()
                index = JobIndex()
                selector = managed_selector()
                jobs = Informer(self.api, self.api.path("jobs"), selector, index.on_job)
                pods = Informer(self.api, self.api.path("pods"), selector, index.on_pod)
                jobs.start()
                pods.start()
                index.informers = (jobs, pods)
                self._index = index
            return self._index

    def close(self) -> None:
        """Stop watching (the backend can be used again; it will list afresh)."""
        with self._lock:
            if self._index is not None:
                for informer in self._index.informers:
                    informer.stop()
                self._index = None

    def _check_id(self, job_id: str) -> str:
        if not JOB_ID_RE.match(job_id or ""):
            raise NotFound(f"no job {job_id!r} (see `cloudml jobs list`)")
        return job_name(job_id)

    def _known(self, job_id: str) -> JobInfo:
        """The job as the watches know it (no request); its stragglers stopped once it ended."""
        key = self._check_id(job_id)
        info = self.index.info(key)
        if info is None or info.id != job_id:
            raise NotFound(f"no job {job_id!r} in namespace {self.ns} (see `cloudml jobs list`)")
        if info.status.terminal:
            self._stop_stragglers(key)
        return info

    def _folder(self, job_id: str, sub: str) -> str | None:
        shared = self.shared
        return f"{shared.job_folder(job_id)}/{sub}" if shared is not None else None

    def _quotas(self) -> builtins.list[Obj]:
        """The namespace's ResourceQuotas, read at most every QUOTA_TTL seconds ([] when this
        identity may not read them: the API server still enforces them)."""
        now = time.monotonic()
        if self._quota_cache is None or now - self._quota_cache[0] > QUOTA_TTL:
            try:
                items = self.api.get(self.api.path("resourcequotas")).get("items") or []
            except ApiError as exc:
                if exc.status != 403:
                    raise
                items = []
            self._quota_cache = (now, items)
        return self._quota_cache[1]

    def _stop_stragglers(self, key: str) -> None:
        """Once a job has ended, replicas that never end by themselves (parameter servers)
        are stopped: their Jobs are suspended, which deletes their pods."""
        for job in self.index.jobs(key):
            done = condition(job, "Complete") or condition(job, "Failed")
            if (
                done
                or job.get("spec", {}).get("suspend")
                or not job.get("status", {}).get("active")
            ):
                continue
            with contextlib.suppress(BackendUnavailable, NotFound, Conflict):
                updated = self.api.patch(
                    self.api.path("jobs", job["metadata"]["name"]), {"spec": {"suspend": True}}
                )
                self.index.on_job("MODIFIED", updated)

    def _delete_job_objects(self, job_id: str, primary: str) -> None:
        """Delete the primary Job; the garbage collector removes what it owns."""
        with contextlib.suppress(NotFound):
            self.api.delete(self.api.path("jobs", primary), propagationPolicy="Background")
        if self._index is not None:
            self._index.forget(job_name(job_id))


def pod_environment(
    namespace: str,
    image: str,
    serving_image: str = "",
    shared_claim: str = "",
    shared_mount: str = "",
) -> dict[str, str]:
    """The environment that makes `Client()` in a pod (a notebook server's, a study driver's)
    use the Kubernetes backend in ``namespace`` with these images and shared volume."""
    env = {"CLOUDML_BACKEND": "kubernetes", NAMESPACE_ENV: namespace, IMAGE_ENV: image}
    if serving_image:
        env[SERVING_IMAGE_ENV] = serving_image
    if shared_claim:
        env |= {SHARED_CLAIM_ENV: shared_claim, SHARED_MOUNT_ENV: shared_mount or "/mnt/cloudml"}
    return env
