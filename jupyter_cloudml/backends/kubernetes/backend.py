"""`KubernetesBackend`: jobs run as Indexed Jobs in one namespace of a cluster.

The cluster is the only store: a job's record is annotations on its primary Job, its state is
what the Jobs and pods say (read through one watch per kind, see ``watch.Informer``), its
outputs and event files are on a shared volume (a ReadWriteMany PVC) that the notebook server
mounts at the same path as the pods. ``kubectl get jobs -l app.kubernetes.io/managed-by=
jupyter-cloudml`` shows the same truth as the sidebar.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import copy
import dataclasses
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from traitlets import Int, Unicode, default

from ...exceptions import BackendUnavailable, Conflict, InvalidSpec, NotFound
from ...models import (
    KIND_LABEL,
    Capabilities,
    DeploymentInfo,
    DeploySpec,
    Event,
    JobInfo,
    JobPage,
    JobQuery,
    JobStatus,
    LogLine,
    MetricsUpdate,
    Preview,
    TensorBoardInfo,
    TrainSpec,
    spec_to_json,
)
from ..base import JOB_ID_RE, Backend, check_output_name
from ..common.job_metrics import read_job_metrics
from ..common.loglines import merge_lines
from . import podlogs, quota, rbac
from .api import ApiError, KubeApi
from .deploy_preview import PREVIEW_CLAIM, deployment_preview
from .deployments import ClusterDeployments
from .index import JobIndex
from .labels import (
    CANCELLED_ANNOTATION,
    CREATED_ANNOTATION,
    JOB_ID_ANNOTATION,
    SPEC_ANNOTATION,
    managed_selector,
)
from .names import job_name
from .serving import model_storage_uri
from .status import Obj, cluster_event, condition, pod_events, pod_replica
from .tensorboards import ClusterTensorBoards
from .training import PACKAGE_KEY, PodOptions, SharedVolume, owned_by, training_manifests
from .watch import Informer

NAMESPACE_ENV = "CLOUDML_NAMESPACE"
IMAGE_ENV = "CLOUDML_IMAGE"
SERVING_IMAGE_ENV = "CLOUDML_SERVING_IMAGE"
SHARED_CLAIM_ENV = "CLOUDML_SHARED_CLAIM"
SHARED_MOUNT_ENV = "CLOUDML_SHARED_MOUNT"
#: Seconds the namespace's quotas are taken as read (their hard limits rarely change).
QUOTA_TTL = 300.0


class KubernetesBackend(Backend):
    """Runs jobs on a Kubernetes cluster, in one namespace."""

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

    # --- connection -----------------------------------------------------------------------------

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

    # --- submit ---------------------------------------------------------------------------------

    def submit(self, spec: TrainSpec) -> JobInfo:
        if spec.python:
            raise InvalidSpec(
                "--python picks an interpreter on this machine; on Kubernetes give an image "
                "with --image"
            )
        is_study = spec.labels.get(KIND_LABEL) == "study"
        if is_study and self.shared is None:
            raise InvalidSpec(
                "a study keeps its state on shared storage, and none is configured: set "
                "c.KubernetesBackend.shared_claim to a ReadWriteMany PVC"
            )
        if is_study:
            self._ensure_study_rbac()
        job_id = f"{spec.name}-{secrets.token_hex(3)}"
        package_uri = None
        if len(spec.package.archive) > self.package_in_configmap_max:
            package_uri = self._store_package(job_id, spec.package.archive)
        manifests = self._training_manifests(spec, job_id, self.ns, package_uri)
        self._check_quota(job_id, [m for m in manifests if m["kind"] == "Job"])
        record = self._apply(spec, job_id, manifests)
        self.index.on_job("ADDED", record)
        return self._known(job_id)

    def preview(self, spec: TrainSpec) -> Preview:
        """The manifests `submit` would apply, built from this backend's settings without
        asking the cluster (the namespace is the configured one, else `default`)."""
        job_id = f"{spec.name}-dryrun"
        package_uri = None
        if len(spec.package.archive) > self.package_in_configmap_max:
            package_uri = self._package_path(job_id, len(spec.package.archive))
        namespace = self.namespace or "default"
        manifests = self._training_manifests(spec, job_id, namespace, package_uri)
        return Preview("kubernetes", tuple(manifests))

    def preview_deployment(self, spec: DeploySpec, engine: str | None = None) -> Preview:
        """The manifests `deploy` would apply with `engine` kserve (the default: an
        InferenceService) or plain (Deployment + Services), without asking the cluster: see
        `deployment_preview` for what is assumed."""
        shared = self.shared or SharedVolume(PREVIEW_CLAIM, self.shared_mount)
        manifests = deployment_preview(
            spec,
            self.namespace or "default",
            shared=shared,
            serving_image=self.serving_image,
            engine=engine or "kserve",
        )
        return Preview("kubernetes", tuple(manifests))

    def _training_manifests(
        self, spec: TrainSpec, job_id: str, namespace: str, package_uri: str | None
    ) -> builtins.list[Obj]:
        is_study = spec.labels.get(KIND_LABEL) == "study"
        return training_manifests(
            spec,
            job_id,
            namespace,
            image_default=self.image,
            ttl_seconds=self.ttl_seconds,
            package_in_configmap_max=self.package_in_configmap_max,
            package_uri=package_uri,
            pods=self._pod_options(job_id, is_study, namespace),
        )

    def _check_quota(self, job_id: str, jobs: builtins.list[Obj]) -> None:
        """Refuse a job that could never fit the namespace's quotas, naming the quota and by
        how much; one that fits once running work ends is left to wait for it (Kubernetes
        creates its pods when the quota allows)."""
        asks = quota.total(quota.job_asks(job) for job in jobs)
        quota.check(
            f"job {job_id}",
            asks,
            self._quotas(),
            now=False,
            advice="Ask for fewer replicas, GPUs, CPUs or memory, or for a larger quota",
        )

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

    def _pod_options(self, job_id: str, is_study: bool, namespace: str) -> PodOptions:
        shared = self.shared
        folder = shared.job_folder(job_id) if shared is not None else None
        return PodOptions(
            shared=shared,
            job_dir=f"{folder}/job_dir" if folder else None,
            output_dir=f"{folder}/outputs" if folder else None,
            service_account=rbac.STUDY_DRIVER if is_study else None,
            env=self.pod_settings(namespace),
        )

    def _store_package(self, job_id: str, archive: bytes) -> str:
        path = Path(self._package_path(job_id, len(archive)))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(archive)
        return str(path)

    def _package_path(self, job_id: str, size: int) -> str:
        """Where a code package too large for a ConfigMap goes on the shared volume."""
        shared = self.shared
        if shared is None:
            raise InvalidSpec(
                f"the code package is {size} bytes, more than a ConfigMap holds "
                f"({self.package_in_configmap_max}): configure shared storage "
                "(c.KubernetesBackend.shared_claim) or ship less (--exclude)"
            )
        return str(Path(shared.job_folder(job_id)) / PACKAGE_KEY)

    def _apply(self, spec: TrainSpec, job_id: str, manifests: list[Obj]) -> Obj:
        """Create the objects: the primary Job (suspended) first, owning the rest, then start it.

        Calls: 1 per object + 1 to unsuspend. A create answered 409 for an object that carries
        this job's id is one an earlier attempt made (the request was retried): it counts.
        """
        jobs = [m for m in manifests if m["kind"] == "Job"]
        primary = copy.deepcopy(jobs[0])
        notes = primary["metadata"]["annotations"]
        notes[SPEC_ANNOTATION] = spec_to_json(spec)
        notes[CREATED_ANNOTATION] = f"{time.time():.6f}"
        primary["spec"]["suspend"] = True
        record = self._create(primary, job_id)
        uid = record["metadata"].get("uid", "")
        try:
            for manifest in manifests:
                if manifest is jobs[0]:
                    continue
                owned = owned_by(manifest, primary["metadata"]["name"], "Job", uid)
                self._create(owned, job_id)
            return self.api.patch(self.api.path("jobs", primary["metadata"]["name"]),
                                  {"spec": {"suspend": False}})  # fmt: skip
        except BaseException:
            with contextlib.suppress(Exception):
                self._delete_job_objects(job_id, primary["metadata"]["name"])
            raise

    def _create(self, manifest: Obj, job_id: str) -> Obj:
        kind = manifest["kind"]
        plural = {"Job": "jobs", "ConfigMap": "configmaps", "Service": "services"}[kind]
        try:
            return self.api.create(self.api.path(plural), manifest)
        except Conflict:
            existing = self.api.get(self.api.path(plural, manifest["metadata"]["name"]))
            if (existing["metadata"].get("annotations") or {}).get(JOB_ID_ANNOTATION) != job_id:
                raise Conflict(
                    f"{kind} {manifest['metadata']['name']} already exists in namespace "
                    f"{self.ns} and is not this job's"
                ) from None
            return existing

    def _ensure_study_rbac(self) -> None:
        """The study driver's ServiceAccount, Role and RoleBinding (made once, idempotently)."""
        if self._rbac_ready:
            return
        for manifest in rbac.study_driver_objects(self.ns):
            try:  # read first: a tenant's notebook may read but not create them (the hub did)
                self.api.get(rbac.object_path(manifest))
            except NotFound:
                with contextlib.suppress(Conflict):
                    self.api.create(rbac.collection_path(manifest, self.ns), manifest)
        self._rbac_ready = True

    # --- read -----------------------------------------------------------------------------------

    def _check_id(self, job_id: str) -> str:
        if not JOB_ID_RE.match(job_id or ""):
            raise NotFound(f"no job {job_id!r} (see `cloudml jobs list`)")
        return job_name(job_id)

    def get(self, job_id: str) -> JobInfo:
        info = self._known(job_id)
        key = job_name(job_id)
        if info.status is JobStatus.QUEUED and not info.reason and not self.index.pods(key):
            refusal = self._pod_refusal(key)  # only while stuck: one request
            if refusal:
                info = dataclasses.replace(info, reason=refusal)
        return info

    def _known(self, job_id: str) -> JobInfo:
        """The job as the watches know it (no request); its stragglers stopped once it ended."""
        key = self._check_id(job_id)
        info = self.index.info(key)
        if info is None or info.id != job_id:
            raise NotFound(f"no job {job_id!r} in namespace {self.ns} (see `cloudml jobs list`)")
        if info.status.terminal:
            self._stop_stragglers(key)
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

    def logs(
        self,
        job_id: str,
        replica: str | None = None,
        follow: bool = False,
        since: float | None = None,
        tail: int | None = None,
    ) -> Iterator[LogLine]:
        key = self._check_id(job_id)
        self._known(job_id)
        pods = self._job_pods(key, replica)
        per_pod = {p["metadata"]["name"]: podlogs.read_pod(self.api, p) for p in pods}
        first = merge_lines(per_pod.values(), since, tail)
        if not follow:
            return iter(first)
        seen = {name: len(lines) for name, lines in per_pod.items()}
        return self._follow(job_id, key, replica, first, seen)

    def _follow(
        self,
        job_id: str,
        key: str,
        replica: str | None,
        first: builtins.list[LogLine],
        seen: dict[str, int],
    ) -> Iterator[LogLine]:
        yield from first
        index = self.index
        yield from podlogs.follow_pods(
            self.api,
            lambda: self._job_pods(key, replica),
            lambda: self._ended(job_id),
            index.wait_change,
            seen,
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

    def _folder(self, job_id: str, sub: str) -> str | None:
        shared = self.shared
        return f"{shared.job_folder(job_id)}/{sub}" if shared is not None else None

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

    def capabilities(self) -> Capabilities:
        return Capabilities(backend="kubernetes", images=True, tensorboard=True, deployments=True)

    # --- TensorBoard ----------------------------------------------------------------------------

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

    # --- serving --------------------------------------------------------------------------------

    @property
    def _deployments(self) -> ClusterDeployments:
        if self._serving is None:
            self._serving = ClusterDeployments(self.api, self.serving_image)
        return self._serving

    def deploy(self, spec: DeploySpec) -> DeploymentInfo:
        job_dir = None
        if spec.model.startswith("job:"):
            job_id = spec.model[len("job:") :].partition("/")[0]
            job = self._known(job_id)
            job_dir = job.spec.job_dir if job.spec else None
        uri = model_storage_uri(spec.model, shared=self.shared, job_dir=job_dir)
        return self._deployments.deploy(spec, uri)

    def deployments(self) -> builtins.list[DeploymentInfo]:
        return self._deployments.all()

    def get_deployment(self, name: str) -> DeploymentInfo:
        return self._deployments.get(name)

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        return self._deployments.set_traffic(name, traffic)

    def undeploy(self, name: str, version: str | None = None) -> None:
        self._deployments.undeploy(name, version)

    # --- change ---------------------------------------------------------------------------------

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


def _matches(info: JobInfo, query: JobQuery) -> bool:
    if query.status and info.status not in query.status:
        return False
    if query.name and query.name.lower() not in f"{info.name}\n{info.id}".lower():
        return False
    labels = info.spec.labels if info.spec is not None else {}
    if any(labels.get(k) != v for k, v in query.labels.items()):
        return False
    return not any(k in labels for k in query.without_labels)
