"""KServe on the test cluster: KServe's own InferenceService CRD (from its Go module, see
``build.sh``) installed into the real API server, which validates every InferenceService against
its schema, and a small stand-in for KServe's controller (``python -m cluster.kserve``).

KServe's controller is not run: its runtimes are container images (``kserve/sklearnserver`` ...)
that cannot be had here. The stand-in does what the backend reads of it, through the API as its
own identity: every change of ``spec.predictor`` (other than ``canaryTrafficPercent``) makes a
revision ``<name>-predictor-0000N`` that is ready after ``--ready-delay`` seconds unless its
``storageUri`` starts with ``fail://`` (then ``ModelLoadFailed``); with ``canaryTrafficPercent``
the latest ready revision gets that share and the previous one the rest; it writes conditions,
traffic, URLs and model status to ``inferenceservices/status``. No pods are made.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .kubeapi import ApiError, KubeClient, Obj, informer

CRD_FILE = "crds/serving.kserve.io_inferenceservices.yaml"
USER = "cloudml-test:kserve-controller"
PATH = "/apis/serving.kserve.io/v1beta1"
CONDITIONS = (
    "IngressReady",
    "PredictorConfigurationReady",
    "PredictorReady",
    "PredictorRouteReady",
    "Ready",
)
ROLE: Obj = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": USER},
    "rules": [
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["serving.kserve.io"],
            "resources": ["inferenceservices/status"],
            "verbs": ["get", "update", "patch"],
        },
    ],
}


@dataclasses.dataclass
class Revision:
    """One predictor revision and whether it has become ready."""

    name: str
    digest: str
    created: float
    uri: str
    ready: bool = False

    @property
    def failed(self) -> bool:
        return self.uri.startswith("fail://")


def storage_uri(predictor: Any) -> str:
    """The first ``storageUri`` anywhere in the predictor spec ("" when none)."""
    if isinstance(predictor, dict):
        if isinstance(predictor.get("storageUri"), str):
            return str(predictor["storageUri"])
        values: Any = predictor.values()
    elif isinstance(predictor, list):
        values = predictor
    else:
        return ""
    return next((found for v in values if (found := storage_uri(v))), "")


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": kind, "status": status, "lastTransitionTime": _now()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class InferenceServiceStandIn:
    """Revisions, traffic split, URLs and conditions of every InferenceService."""

    def __init__(self, api: KubeClient, ready_delay: float, domain: str = "example.com") -> None:
        self.api = api
        self.ready_delay = ready_delay
        self.domain = domain
        self.revisions: dict[str, list[Revision]] = {}
        self.live: dict[str, Obj] = {}

    async def run(self) -> None:
        async def tick() -> None:
            while True:
                await asyncio.sleep(0.1)
                for isvc in list(self.live.values()):
                    await self.sync(isvc)

        ticker = asyncio.ensure_future(tick())
        try:
            async for kind, obj in informer(self.api, f"{PATH}/inferenceservices"):
                if kind == "SYNC":
                    self.live = {o["metadata"]["uid"]: o for o in obj["items"]}
                elif kind == "DELETED":
                    self.live.pop(obj["metadata"]["uid"], None)
                    self.revisions.pop(obj["metadata"]["uid"], None)
                else:
                    self.live[obj["metadata"]["uid"]] = obj
        finally:
            ticker.cancel()

    async def sync(self, isvc: Obj) -> None:
        m = isvc["metadata"]
        if m.get("deletionTimestamp"):
            return
        status = self.status(isvc)
        if {k: v for k, v in (isvc.get("status") or {}).items()} == status:
            return
        path = f"{PATH}/namespaces/{m['namespace']}/inferenceservices/{m['name']}/status"
        try:
            updated = await self.api.patch(path, {"status": status})
            self.live[m["uid"]] = updated
        except (ApiError, OSError):
            pass

    def status(self, isvc: Obj) -> Obj:
        """The status KServe would report now."""
        m = isvc["metadata"]
        name, ns = m["name"], m["namespace"]
        predictor = dict((isvc.get("spec") or {}).get("predictor") or {})
        canary = predictor.pop("canaryTrafficPercent", None)
        digest = json.dumps(predictor, sort_keys=True)
        revisions = self.revisions.setdefault(m["uid"], [])
        if not revisions or revisions[-1].digest != digest:
            number = f"{len(revisions) + 1:05d}"
            uri = storage_uri(predictor)
            revisions.append(Revision(f"{name}-predictor-{number}", digest, time.time(), uri))
        latest = revisions[-1]
        if not latest.failed and time.time() - latest.created >= self.ready_delay:
            latest.ready = True
        previous = next((r for r in reversed(revisions[:-1]) if r.ready), None)
        traffic: list[Obj] = []
        if latest.ready and canary is not None and previous is not None:
            traffic = [
                {"revisionName": latest.name, "percent": int(canary), "latestRevision": True,
                 "tag": "latest"},
                {"revisionName": previous.name, "percent": 100 - int(canary),
                 "latestRevision": False, "tag": "prev"},
            ]  # fmt: skip
        elif latest.ready:
            traffic = [{"revisionName": latest.name, "percent": 100, "latestRevision": True}]
        elif previous is not None:
            traffic = [{"revisionName": previous.name, "percent": 100, "latestRevision": False}]
        old = {c["type"]: c for c in (isvc.get("status") or {}).get("conditions") or []}
        if latest.ready:
            wanted = [_condition(kind, "True") for kind in CONDITIONS]
        elif latest.failed:
            message = f"failed to load the model from {latest.uri}: no such model"
            wanted = [
                _condition(kind, "False", "ModelLoadFailed", message)
                for kind in ("PredictorConfigurationReady", "PredictorReady", "Ready")
            ]
        else:
            message = f"Configuration {name}-predictor is waiting for a Revision to become ready."
            wanted = [
                _condition(kind, "Unknown", "RevisionMissing", message)
                for kind in ("PredictorReady", "Ready")
            ]
        conditions = []
        for cond in wanted:  # a condition that did not change keeps its transition time
            before = old.get(cond["type"])
            same = before and all(before.get(k) == cond.get(k) for k in ("status", "reason"))
            conditions.append(before if same else cond)
        ready_revision = latest if latest.ready else previous
        component: Obj = {
            "latestCreatedRevision": latest.name,
            "traffic": traffic,
            "url": f"http://{name}-predictor.{ns}.{self.domain}",
        }
        if ready_revision is not None:
            component["latestReadyRevision"] = ready_revision.name
            component["latestRolledoutRevision"] = ready_revision.name
        if previous is not None and latest.ready:
            component["previousRolledoutRevision"] = previous.name
        status: Obj = {
            "conditions": conditions,
            "observedGeneration": m.get("generation", 1),
            "components": {"predictor": component},
        }
        if ready_revision is not None:
            status["url"] = f"http://{name}.{ns}.{self.domain}"
            status["address"] = {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}
        if latest.failed:
            status["modelStatus"] = {
                "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {"reason": "ModelLoadFailed",
                                    "message": f"failed to load {latest.uri}"},
            }  # fmt: skip
        elif latest.ready:
            status["modelStatus"] = {
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate",
            }
        return status


async def _main(kubeconfig: Path, ready_delay: float) -> None:
    api = KubeClient(kubeconfig)
    try:
        await InferenceServiceStandIn(api, ready_delay).run()
    finally:
        await api.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--ready-delay", type=float, default=0.2)
    args = parser.parse_args()
    asyncio.run(_main(args.kubeconfig, args.ready_delay))


if __name__ == "__main__":
    main()
