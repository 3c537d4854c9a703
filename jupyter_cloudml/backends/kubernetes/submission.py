"""Submitting a job to the cluster: its manifests (also as a preview), the quota check, the
code package, and creating the objects so that a retried request counts once."""

from __future__ import annotations

import builtins
import contextlib
import copy
import secrets
import time
from pathlib import Path

from ...exceptions import Conflict, InvalidSpec, NotFound
from ...models import (
    DeploySpec,
    JobInfo,
    Preview,
    TrainSpec,
    is_study_driver,
    spec_to_json,
)
from . import quota, rbac
from .connection import ClusterConnection
from .labels import (
    CREATED_ANNOTATION,
    JOB_ID_ANNOTATION,
    SPEC_ANNOTATION,
)
from .manifests.deploy_preview import PREVIEW_CLAIM, deployment_preview
from .manifests.training import (
    PACKAGE_KEY,
    PodOptions,
    SharedVolume,
    hide_secret_values,
    owned_by,
    training_manifests,
)
from .status import Obj


class Submission(ClusterConnection):
    """`submit` and `preview` of the Kubernetes backend."""

    def submit(self, spec: TrainSpec) -> JobInfo:
        if spec.python:
            raise InvalidSpec(
                "--python picks an interpreter on this machine; on Kubernetes give an image "
                "with --image"
            )
        if spec.max_wait is not None:
            raise InvalidSpec(
                "a maximum wait (maxWaitTime) is not honoured on Kubernetes yet: the Job waits "
                "for its quota as long as it takes; remove it, or run on the local backend"
            )
        if spec.notify is not None:
            raise InvalidSpec(
                "--notify is not honoured for single jobs on Kubernetes yet: they end in the "
                "cluster, where nothing of this product watches them (a study's driver does "
                "notify); remove it, or run on the local backend"
            )
        is_study = is_study_driver(spec.labels)
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
        return Preview("kubernetes", tuple(hide_secret_values(manifests)))

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
        is_study = is_study_driver(spec.labels)
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
        plural = {
            "Job": "jobs",
            "ConfigMap": "configmaps",
            "Secret": "secrets",
            "Service": "services",
        }[kind]
        try:
            return self.api.create(self.api.path(plural), manifest)
        except Conflict:
            if kind == "Secret":
                # Ours from an earlier try of this request: its name carries this job's fresh
                # id, and the identity may create Secrets but not read them back.
                return manifest
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
