"""Model deployments on a cluster: a KServe InferenceService where the CRD exists, else a
Deployment and Service per version behind one Service (see ``serving`` for the manifests).

Deploying waits, by polling that one object, until the new version is ready or says why it
is not (a model that does not load is ``InvalidSpec``). State lives in the objects' labels and
annotations only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from typing import Any

from ...exceptions import BackendUnavailable, Conflict, InvalidSpec, NotFound, Unsupported
from ...models import (
    DeploymentInfo,
    DeploymentStatus,
    DeploySpec,
    ModelFramework,
    ServingReplicaInfo,
    ServingReplicaStatus,
    VersionInfo,
    check_replicas,
    check_traffic,
)
from ..common.redeploy import fingerprint, plan_deploy
from .api import API_ROOTS, KubeApi
from .labels import (
    DEPLOYMENT_KEY,
    MANAGED_BY,
    MANAGED_BY_KEY,
    TRAFFIC_ANNOTATION,
    VERSION_INFO_ANNOTATION,
    VERSION_KEY,
    VERSIONS_ANNOTATION,
)
from .manifests.kserve import inference_service, kserve_grpc_url
from .manifests.plain import main_service, plain_manifests
from .manifests.serving import (
    GRPC_PORT,
    GRPC_PORT_NAME,
    SERVICE_PORT,
    deployment_name,
    version_name,
)
from .status import Obj, annotations_of, condition, labels_of, timestamp

#: Conditions reasons of a predictor that will not get ready by waiting.
LOAD_FAILURES = ("ModelLoadFailed", "RevisionFailed", "InvalidSpec", "ContainerCreationFailed")


class ClusterDeployments:
    """Deploy, inspect, split traffic and undeploy models in one namespace."""

    def __init__(self, api: KubeApi, serving_image: str, timeout: float = 600.0) -> None:
        self.api = api
        self.serving_image = serving_image
        self.timeout = timeout
        self._kserve: bool | None = None

    @property
    def ns(self) -> str:
        return self.api.namespace

    def kserve(self) -> bool:
        """Whether the cluster serves InferenceServices (asked once)."""
        if self._kserve is None:
            try:
                self.api.get(API_ROOTS["inferenceservices"])
                self._kserve = True
            except NotFound:
                self._kserve = False
        return self._kserve

    def _isvc(self, base: str) -> Obj | None:
        """The deployment's InferenceService, when KServe is there and it has one."""
        if not self.kserve():
            return None
        return self._get_or_none(self.api.path("inferenceservices", base))

    # --- deploy ---------------------------------------------------------------------------------

    def deploy(
        self, spec: DeploySpec, storage_uri: str, local_path: str | None = None
    ) -> DeploymentInfo:
        """Serve the model at `storage_uri` (`local_path`: where this host reads it, if it
        can) as the version `plan_deploy` picks, or say it is served already."""
        digest = fingerprint(spec, local_path, storage_uri)
        try:
            current: DeploymentInfo | None = self.get(spec.name)
        except NotFound:
            current = None
        plan = plan_deploy(spec, current, digest)
        if plan.unchanged:
            assert current is not None
            return dataclasses.replace(current, outcome=plan.message)
        spec = dataclasses.replace(spec, version=plan.version)
        if self.kserve():
            self._deploy_kserve(spec, storage_uri, digest)
        else:
            self._deploy_plain(spec, storage_uri, digest)
        info = self._wait_ready(spec.name, plan.version)
        for old in plan.retire:
            self.undeploy(spec.name, old)
        if plan.retire:
            info = self.get(spec.name)
        return dataclasses.replace(info, outcome=plan.message)

    def _deploy_kserve(self, spec: DeploySpec, storage_uri: str, digest: str) -> None:
        base = deployment_name(spec.name)
        previous = self._isvc(base)
        manifest = inference_service(
            spec, self.ns, storage_uri=storage_uri, previous=previous,
            serving_image=self.serving_image, created=time.time(), fingerprint=digest,
        )  # fmt: skip
        if previous is None:
            self.api.create(self.api.path("inferenceservices"), manifest)
        else:
            manifest["metadata"]["resourceVersion"] = previous["metadata"].get("resourceVersion")
            self.api.request("PUT", self.api.path("inferenceservices", base), body=manifest)

    def _deploy_plain(self, spec: DeploySpec, storage_uri: str, digest: str) -> None:
        deployed = [v.version for v in self._plain_versions(spec.name)]
        deployment, service, main = plain_manifests(
            spec, self.ns, storage_uri=storage_uri, serving_image=self.serving_image,
            deployed_versions=deployed, created=time.time(), fingerprint=digest,
        )  # fmt: skip
        self.api.create(self.api.path("deployments"), deployment)
        self.api.create(self.api.path("services"), service)
        self._wait_ready(spec.name, spec.target_version)
        self._put_main_service(main)

    def _put_main_service(self, main: Obj) -> None:
        name = main["metadata"]["name"]
        existing = self._get_or_none(self.api.path("services", name))
        if existing is None:
            self.api.create(self.api.path("services"), main)
        else:
            self.api.patch(
                self.api.path("services", name),
                {"metadata": {"annotations": main["metadata"]["annotations"]},
                 "spec": {"selector": main["spec"]["selector"]}},
            )  # fmt: skip

    def _wait_ready(self, name: str, version: str) -> DeploymentInfo:
        deadline = time.monotonic() + self.timeout
        while True:
            info = self.get(name)
            mine = next((v for v in info.versions if v.version == version), None)
            replicas = mine.replicas if mine is not None else ()
            if info.status is DeploymentStatus.FAILED or any(
                r.status is ServingReplicaStatus.FAILED for r in replicas
            ):
                raise InvalidSpec(f"{name} {version} did not start: {info.reason or 'failed'}")
            if replicas and all(r.status is ServingReplicaStatus.READY for r in replicas):
                return info
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"{name} {version} was not ready after {self.timeout:.0f} s: {info.reason}"
                )
            time.sleep(0.25)

    # --- read -----------------------------------------------------------------------------------

    def all(self) -> list[DeploymentInfo]:
        names: set[str] = set()
        if self.kserve():
            listing = self.api.get(
                self.api.path("inferenceservices"), labelSelector=f"{MANAGED_BY_KEY}={MANAGED_BY}"
            )
            names |= {labels_of(o).get(DEPLOYMENT_KEY, "") for o in listing.get("items", [])}
        listing = self.api.get(self.api.path("deployments"), labelSelector=DEPLOYMENT_KEY)
        names |= {labels_of(o).get(DEPLOYMENT_KEY, "") for o in listing.get("items", [])}
        return [self.get(n) for n in sorted(names - {""})]

    def get(self, name: str) -> DeploymentInfo:
        isvc = self._isvc(deployment_name(name))
        return _kserve_info(name, isvc) if isvc is not None else self._plain_info(name)

    def _plain_deployments(self, name: str) -> list[Obj]:
        """The version Deployments of a plain deployment, oldest first."""
        base = deployment_name(name)
        listing = self.api.get(
            self.api.path("deployments"), labelSelector=f"{DEPLOYMENT_KEY}={base}"
        )
        return sorted(listing.get("items", []), key=_record_created)

    def _plain_versions(self, name: str) -> list[VersionInfo]:
        main = self._get_or_none(self.api.path("services", deployment_name(name)))
        serving = (main or {}).get("spec", {}).get("selector", {}).get(VERSION_KEY)
        return [_plain_version(d, serving) for d in self._plain_deployments(name)]

    def _plain_info(self, name: str) -> DeploymentInfo:
        deployments = self._plain_deployments(name)
        main = self._get_or_none(self.api.path("services", deployment_name(name)))
        serving = (main or {}).get("spec", {}).get("selector", {}).get(VERSION_KEY)
        versions = [_plain_version(d, serving) for d in deployments]
        if not versions:
            raise NotFound(f"no deployment {name!r} in namespace {self.ns}")
        serving = [v for v in versions if v.traffic]
        ready = all(
            any(r.status is ServingReplicaStatus.READY for r in v.replicas) for v in serving
        )
        status = DeploymentStatus.READY if serving and ready else DeploymentStatus.STARTING
        url = f"http://{deployment_name(name)}.{self.ns}.svc:{SERVICE_PORT}"
        created = _record_created(deployments[0])
        ports = (main or {}).get("spec", {}).get("ports") or []
        grpc = any(p.get("name") == GRPC_PORT_NAME for p in ports)  # not on older Services
        grpc_url = f"{deployment_name(name)}.{self.ns}.svc:{GRPC_PORT}" if grpc else None
        return DeploymentInfo(
            name, status, url, tuple(versions), created=created, grpc_url=grpc_url
        )

    def _get_or_none(self, path: str) -> Obj | None:
        try:
            return self.api.get(path)
        except NotFound:
            return None

    # --- change ---------------------------------------------------------------------------------

    def set_traffic(self, name: str, traffic: dict[str, int]) -> DeploymentInfo:
        check_traffic(traffic)
        info = self.get(name)
        known = [v.version for v in info.versions]
        for version in traffic:
            if version not in known:
                raise NotFound(f"{name} has no version {version!r} ({', '.join(known)})")
        base = deployment_name(name)
        if (
            self.kserve()
            and self._get_or_none(self.api.path("inferenceservices", base)) is not None
        ):
            self._kserve_traffic(base, known, traffic)
        else:
            shares = {v: p for v, p in traffic.items() if p}
            if len(shares) != 1:
                raise Unsupported(
                    "without KServe one version serves all requests: use --traffic VERSION=100"
                    " (or install KServe for weighted splits)"
                )
            (version,) = shares
            self._put_main_service(main_service(name, self.ns, version))
        return self.get(name)

    def _kserve_traffic(self, base: str, known: list[str], traffic: dict[str, int]) -> None:
        latest, previous = known[-1], known[-2] if len(known) > 1 else None
        shares = {v: p for v, p in traffic.items() if p}
        allowed = {latest, previous}
        if not set(shares) <= allowed:
            raise InvalidSpec(
                f"KServe routes to the newest version ({latest}) and the one rolled out before "
                f"it ({previous or 'none'}) only: redeploy "
                f"{', '.join(sorted(set(shares) - allowed))} as a new version instead"
            )
        canary: int | None = shares.get(latest, 0)
        if canary == 100:
            canary = None
        patch: dict[str, Any] = {
            "metadata": {"annotations": {TRAFFIC_ANNOTATION: json.dumps(shares)}},
            "spec": {"predictor": {"canaryTrafficPercent": canary}},
        }
        self.api.patch(self.api.path("inferenceservices", base), patch)

    def undeploy(self, name: str, version: str | None = None) -> None:
        info = self.get(name)
        base = deployment_name(name)
        kserve = (
            self.kserve()
            and self._get_or_none(self.api.path("inferenceservices", base)) is not None
        )
        if version is None:
            if kserve:
                self.api.delete(
                    self.api.path("inferenceservices", base), propagationPolicy="Background"
                )
            for v in info.versions:
                self._delete_plain_version(name, v.version)
            if not kserve:
                self._delete(self.api.path("services", base))
            return
        mine = next((v for v in info.versions if v.version == version), None)
        if mine is None:
            raise NotFound(f"{name} has no version {version!r}")
        if mine.traffic:
            raise Conflict(f"{name} {version} still gets {mine.traffic}% of the traffic")
        if kserve:
            isvc = self.api.get(self.api.path("inferenceservices", base))
            records = [r for r in _records(isvc) if r.get("version") != version]
            note = {VERSIONS_ANNOTATION: json.dumps(records)}
            self.api.patch(
                self.api.path("inferenceservices", base), {"metadata": {"annotations": note}}
            )
        else:
            self._delete_plain_version(name, version)

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        """Serve `version` with `replicas` pods: its Deployment's replicas, or with KServe the
        predictor's min and max replicas (the newest version's only: KServe keeps an older
        revision as it was rolled out)."""
        check_replicas(replicas)
        info = self.get(name)
        known = [v.version for v in info.versions]
        if version not in known:
            raise NotFound(f"{name} has no version {version!r} ({', '.join(known)})")
        base = deployment_name(name)
        if self._isvc(base) is not None:
            if version != known[-1]:
                raise Unsupported(
                    f"KServe scales the newest version of {name} ({known[-1]}) only; "
                    f"{version} keeps the replicas it was rolled out with"
                )
            predictor = {"minReplicas": replicas, "maxReplicas": replicas}
            self.api.patch(
                self.api.path("inferenceservices", base), {"spec": {"predictor": predictor}}
            )
            if not info.versions[-1].traffic:  # KServe shows no replicas of a version it idles
                return self.get(name)
        else:
            path = self.api.path("deployments", version_name(name, version))
            self.api.patch(path, {"spec": {"replicas": replicas}})
        return self._wait_ready(name, version)

    def _delete_plain_version(self, name: str, version: str) -> None:
        target = version_name(name, version)
        self._delete(self.api.path("deployments", target))
        self._delete(self.api.path("services", target))

    def _delete(self, path: str) -> None:
        with contextlib.suppress(NotFound):
            self.api.delete(path, propagationPolicy="Background")


def _records(isvc: Obj) -> list[dict[str, Any]]:
    records = json.loads(annotations_of(isvc).get(VERSIONS_ANNOTATION) or "[]")
    return [r for r in records if isinstance(r, dict)]


def _versions(isvc: Obj) -> list[str]:
    return [str(r.get("version")) for r in _records(isvc)]


def _traffic(isvc: Obj) -> dict[str, int]:
    traffic = json.loads(annotations_of(isvc).get(TRAFFIC_ANNOTATION) or "{}")
    return {str(k): int(v) for k, v in traffic.items()}


def _kserve_info(name: str, isvc: Obj) -> DeploymentInfo:
    traffic = _traffic(isvc)
    status = isvc.get("status") or {}
    ready = condition(isvc, "Ready")
    failed = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("status") == "False" and c.get("reason") in LOAD_FAILURES
        ),
        None,
    )
    if failed is not None:
        state, reason = DeploymentStatus.FAILED, f"{failed['reason']}: {failed.get('message', '')}"
    elif ready is not None:
        state, reason = DeploymentStatus.READY, ""
    else:
        state, reason = DeploymentStatus.STARTING, "waiting for KServe to report Ready"
    replicas = isvc.get("spec", {}).get("predictor", {}).get("minReplicas", 1)
    versions = []
    for record in _records(isvc):
        share = traffic.get(str(record.get("version")), 0)
        replica_status = {
            DeploymentStatus.READY: ServingReplicaStatus.READY,
            DeploymentStatus.FAILED: ServingReplicaStatus.FAILED,
        }.get(state, ServingReplicaStatus.STARTING)
        shown = tuple(
            ServingReplicaInfo(f"{record.get('version')}-{i}", replica_status, reason=reason)
            for i in range(replicas)
        ) if share else ()  # fmt: skip
        versions.append(
            VersionInfo(
                version=str(record.get("version")),
                model=str(record.get("model", "")),
                framework=ModelFramework(record.get("framework", "custom")),
                traffic=share,
                replicas=shown,
                fingerprint=str(record.get("fingerprint", "")),
            )
        )
    url = status.get("url") or (status.get("address") or {}).get("url") or ""
    created = timestamp(isvc.get("metadata", {}).get("creationTimestamp")) or 0.0
    namespace = isvc.get("metadata", {}).get("namespace", "")
    return DeploymentInfo(
        name, state, url, tuple(versions), reason=reason, created=created,
        grpc_url=kserve_grpc_url(isvc, namespace),
    )  # fmt: skip


def _plain_version(deployment: Obj, serving: str | None) -> VersionInfo:
    record = json.loads(annotations_of(deployment).get(VERSION_INFO_ANNOTATION) or "{}")
    version = labels_of(deployment).get(VERSION_KEY, str(record.get("version", "")))
    wanted = int(deployment.get("spec", {}).get("replicas") or 0)
    ready = int(deployment.get("status", {}).get("readyReplicas") or 0)
    replicas = tuple(
        ServingReplicaInfo(
            f"{version}-{i}",
            ServingReplicaStatus.READY if i < ready else ServingReplicaStatus.STARTING,
        )
        for i in range(wanted)
    )
    return VersionInfo(
        version=version,
        model=str(record.get("model", "")),
        framework=ModelFramework(record.get("framework", "custom")),
        traffic=100 if version == serving else 0,
        replicas=replicas,
        predictor=record.get("predictor"),
        fingerprint=str(record.get("fingerprint", "")),
    )


def _record_created(deployment: Obj) -> float:
    record = json.loads(annotations_of(deployment).get(VERSION_INFO_ANNOTATION) or "{}")
    return float(record.get("created") or 0.0)
