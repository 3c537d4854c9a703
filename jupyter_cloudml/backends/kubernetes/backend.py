"""`KubernetesBackend`: jobs run as Indexed Jobs in one namespace of a cluster.

The cluster is the only store: a job's record is annotations on its primary Job, its state is
what the Jobs and pods say (read through one watch per kind, see ``watch.Informer``), its
outputs and event files are on a shared volume (a ReadWriteMany PVC) that the notebook server
mounts at the same path as the pods. ``kubectl get jobs -l app.kubernetes.io/managed-by=
jupyter-cloudml`` shows the same truth as the sidebar.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import posixpath
import shutil
import time
from typing import Any

from ...exceptions import Conflict, InvalidSpec
from ...models import (
    Capabilities,
    DeploymentInfo,
    DeploySpec,
    Event,
    JobInfo,
    JobPage,
    JobQuery,
    JobStatus,
    QuotaInfo,
    TensorBoardInfo,
)
from .api import ApiError
from .deployments import ClusterDeployments
from .labels import (
    CANCELLED_ANNOTATION,
    SPEC_ANNOTATION,
)
from .manifests.serving import model_storage_uri, parse_pvc_uri
from .names import job_name
from .outputs import JobOutputs
from .quota import quota_info
from .status import cluster_event, pod_events
from .submission import Submission
from .tensorboards import ClusterTensorBoards


class KubernetesBackend(Submission, JobOutputs):
    """Runs jobs on a Kubernetes cluster, in one namespace: settings and connection in
    `ClusterConnection`, submitting in `Submission`, logs and files in `JobOutputs`; reading
    state, cancelling and deleting, TensorBoards and model serving here."""

    def get(self, job_id: str) -> JobInfo:
        info = self._known(job_id)
        key = job_name(job_id)
        if info.status is JobStatus.QUEUED and not info.reason and not self.index.pods(key):
            refusal = self._pod_refusal(key)  # only while stuck: one request
            if refusal:
                info = dataclasses.replace(info, reason=refusal)
        return info

    def _pod_refusal(self, key: str) -> str:
        """Why the job controller cannot create a job's pods (admission refused them: a quota,
        PodSecurity, a webhook), from its newest FailedCreate event; "" when there is none."""
        listing = self.api.get(
            self.api.path("events"), fieldSelector="involvedObject.kind=Job,reason=FailedCreate"
        )
        mine = [
            cluster_event(e)
            for e in listing.get("items", [])
            if (e.get("involvedObject") or {}).get("name", "").startswith(f"{key}-")
        ]
        return max(mine, key=lambda e: e.time).message if mine else ""

    def list(self, query: JobQuery | None = None) -> JobPage:
        query = query or JobQuery()
        infos = [i for i in self.index.infos() if _matches(i, query)]
        infos.sort(key=lambda i: i.created, reverse=True)
        return JobPage(tuple(infos[query.offset : query.offset + query.limit]), len(infos))

    def events(self, job_id: str) -> builtins.list[Event]:
        key = self._check_id(job_id)
        info = self._known(job_id)
        submitted = Event(info.created, "Submitted", f"{len(info.replicas)} replica(s)")
        events = pod_events(self.index.pods(key))
        prefix = f"{key}-"
        listing = self.api.get(self.api.path("events"))
        events += [
            cluster_event(e)
            for e in listing.get("items", [])
            if (e.get("involvedObject") or {}).get("name", "").startswith(prefix)
        ]
        if info.status.terminal and info.finished:
            events.append(Event(info.finished, info.status.value.title(), info.reason or ""))
        # Kubernetes stamps whole seconds: what it reports may look older than the submission
        return [submitted, *sorted(events, key=lambda e: e.time)]

    def capabilities(self) -> Capabilities:
        return Capabilities(backend="kubernetes", images=True, tensorboard=True, deployments=True)

    @property
    def _tensorboards(self) -> ClusterTensorBoards:
        return ClusterTensorBoards(self.api, self.image, self.shared)

    def tensorboard(self, job_ids: builtins.list[str]) -> TensorBoardInfo:
        logdirs: dict[str, str] = {}
        for job_id in job_ids:
            spec = self._known(job_id).spec
            job_dir = (spec.job_dir if spec else None) or self._folder(job_id, "job_dir")
            if not job_dir:
                raise InvalidSpec(
                    f"job {job_id} keeps its event files in its pod: TensorBoard needs shared "
                    "storage (c.KubernetesBackend.shared_claim) or a --job-dir it can read"
                )
            logdirs[job_id] = job_dir
        return self._tensorboards.start(logdirs)

    def tensorboards(self) -> builtins.list[TensorBoardInfo]:
        return self._tensorboards.all()

    def stop_tensorboard(self, tensorboard_id: str) -> None:
        self._tensorboards.stop(tensorboard_id)

    @property
    def _deployments(self) -> ClusterDeployments:
        if self._serving is None:
            self._serving = ClusterDeployments(self.api, self.serving_image)
        return self._serving

    def quota(self) -> QuotaInfo:
        try:
            quotas = self.api.get(self.api.path("resourcequotas")).get("items") or []
        except ApiError as exc:
            if exc.status != 403:
                raise
            quotas = None
        queued = JobQuery(status=(JobStatus.QUEUED,), limit=1)
        active = (JobStatus.STARTING, JobStatus.RUNNING, JobStatus.RETRYING)
        running = self.list(JobQuery(status=active, limit=1)).total
        return quota_info(self.api.namespace, quotas, running, self.list(queued).total)

    def deploy(self, spec: DeploySpec) -> DeploymentInfo:
        job_dir = None
        if spec.model.startswith("job:"):
            job_id = spec.model[len("job:") :].partition("/")[0]
            job = self._known(job_id)
            job_dir = job.spec.job_dir if job.spec else None
        uri = model_storage_uri(spec.model, shared=self.shared, job_dir=job_dir)
        return self._deployments.deploy(spec, uri, self._local_model_path(uri))

    def _local_model_path(self, uri: str) -> str | None:
        """Where this host reads a model on the shared volume (None elsewhere), so that
        redeploying compares its content."""
        if self.shared is None or not uri.startswith("pvc://"):
            return None
        location = parse_pvc_uri(uri)
        if location.claim != self.shared.claim:
            return None
        return f"{self.shared.mount_path.rstrip('/')}/{location.sub_path}".rstrip("/")

    def data_location(self, path: str) -> str:
        """Pods reach URIs and the shared volume (mounted at the same path), nothing else."""
        if "://" in path:
            return path
        norm = posixpath.normpath(os.path.abspath(path))
        root = self.shared.mount_path.rstrip("/") if self.shared else None
        if root is None or not (norm == root or norm.startswith(root + "/")):
            where = (
                f"under {root}" if root else "on shared storage (c.KubernetesBackend.shared_claim)"
            )
            raise InvalidSpec(
                f"{path} is a path the cluster's pods cannot reach: put it {where} or give a "
                "URI (gs://, s3://, ...)"
            )
        return norm

    def model_location(self, model: str) -> str:
        """A job's pods read models on the shared volume (mounted at the same path in each) or
        at a URI fsspec opens; a claim they do not mount is refused."""
        job_dir = None
        if model.startswith("job:"):
            job = self._known(model[len("job:") :].partition("/")[0])
            job_dir = job.spec.job_dir if job.spec else None
        uri = model_storage_uri(model, shared=self.shared, job_dir=job_dir)
        if not uri.startswith("pvc://"):
            return uri
        location = parse_pvc_uri(uri)
        if self.shared is None or location.claim != self.shared.claim:
            raise InvalidSpec(
                f"model {model!r} is on the claim {location.claim!r}, which jobs do not mount "
                "(they mount c.KubernetesBackend.shared_claim)"
            )
        return f"{self.shared.mount_path.rstrip('/')}/{location.sub_path}".rstrip("/")

    def deployments(self) -> builtins.list[DeploymentInfo]:
        return self._deployments.all()

    def get_deployment(self, name: str) -> DeploymentInfo:
        return self._deployments.get(name)

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        return self._deployments.set_traffic(name, traffic)

    def undeploy(self, name: str, version: str | None = None) -> None:
        self._deployments.undeploy(name, version)

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        return self._deployments.scale(name, version, replicas)

    def cancel(self, job_id: str) -> JobInfo:
        key = self._check_id(job_id)
        info = self._known(job_id)
        if info.status.terminal:
            return info
        for job in self.index.jobs(key):
            patch: dict[str, Any] = {"spec": {"suspend": True}}
            if SPEC_ANNOTATION in (job["metadata"].get("annotations") or {}):
                patch["metadata"] = {"annotations": {CANCELLED_ANNOTATION: f"{time.time():.6f}"}}
            updated = self.api.patch(self.api.path("jobs", job["metadata"]["name"]), patch)
            self.index.on_job("MODIFIED", updated)
        return self._known(job_id)

    def delete(self, job_id: str) -> None:
        key = self._check_id(job_id)
        info = self._known(job_id)
        if not info.status.terminal:
            raise Conflict(f"job {job_id} is {info.status.value}; cancel it before deleting it")
        record = self.index.record(key)
        assert record is not None
        self._delete_job_objects(job_id, record["metadata"]["name"])
        folder = self._folder(job_id, "")
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def _matches(info: JobInfo, query: JobQuery) -> bool:
    if query.status and info.status not in query.status:
        return False
    if query.name and query.name.lower() not in f"{info.name}\n{info.id}".lower():
        return False
    labels = info.spec.labels if info.spec is not None else {}
    if any(labels.get(k) != v for k, v in query.labels.items()):
        return False
    return not any(k in labels for k in query.without_labels)
