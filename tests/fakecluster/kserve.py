"""A KServe InferenceService controller (serving.kserve.io/v1beta1), when that CRD is served.

Every change of ``spec.predictor`` (other than ``canaryTrafficPercent``) makes a new revision
``<name>-predictor-0000N`` that becomes ready ``ready_delay`` seconds later, unless its
``storageUri`` starts with ``fail://`` (then the service is not Ready: ``ModelLoadFailed``).
With ``canaryTrafficPercent`` the latest ready revision gets that share of the traffic and the
previous ready one the rest. No pods are made.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from .base import Context, Controller
from .common import Obj, set_condition
from .resources import ResourceType

CONDITIONS = (
    "IngressReady",
    "PredictorConfigurationReady",
    "PredictorReady",
    "PredictorRouteReady",
    "Ready",
)


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
        """Whether its model cannot load (a ``fail://`` storage URI)."""
        return self.uri.startswith("fail://")


def storage_uri(predictor: Any) -> str:
    """The first ``storageUri`` anywhere in the predictor spec ("" when none)."""
    if isinstance(predictor, dict):
        if isinstance(predictor.get("storageUri"), str):
            return str(predictor["storageUri"])
        for value in predictor.values():
            if found := storage_uri(value):
                return found
    if isinstance(predictor, list):
        for value in predictor:
            if found := storage_uri(value):
                return found
    return ""


class InferenceServiceController(Controller):
    """Revisions, traffic split, URLs and conditions of InferenceServices."""

    kinds = frozenset({"InferenceService"})
    tick = 0.1

    def __init__(
        self, ctx: Context, rt: ResourceType, ready_delay: float = 0.2, domain: str = "example.com"
    ) -> None:
        super().__init__(ctx)
        self.rt = rt
        self.ready_delay = ready_delay
        self.domain = domain
        self.revisions: dict[str, list[Revision]] = {}

    def reconcile(self) -> None:
        """Sync every InferenceService."""
        live = [obj for rt, obj in self.store.live() if rt == self.rt]
        for isvc in live:
            if not isvc["metadata"].get("deletionTimestamp"):
                self._sync(isvc)
        uids = {obj["metadata"]["uid"] for obj in live}
        for uid in [u for u in self.revisions if u not in uids]:
            del self.revisions[uid]

    def _sync(self, isvc: Obj) -> None:
        m = isvc["metadata"]
        name, ns = m["name"], m["namespace"]
        predictor = dict((isvc.get("spec") or {}).get("predictor") or {})
        canary = predictor.pop("canaryTrafficPercent", None)
        digest = json.dumps(predictor, sort_keys=True)
        revisions = self.revisions.setdefault(m["uid"], [])
        if not revisions or revisions[-1].digest != digest:
            revisions.append(
                Revision(
                    f"{name}-predictor-{len(revisions) + 1:05d}",
                    digest,
                    time.time(),
                    storage_uri(predictor),
                )
            )
        latest = revisions[-1]
        if not latest.failed and time.time() - latest.created >= self.ready_delay:
            latest.ready = True
        previous = next((r for r in reversed(revisions[:-1]) if r.ready), None)
        if latest.ready and canary is not None and previous is not None:
            traffic = [
                {
                    "revisionName": latest.name,
                    "percent": int(canary),
                    "latestRevision": True,
                    "tag": "latest",
                },
                {
                    "revisionName": previous.name,
                    "percent": 100 - int(canary),
                    "latestRevision": False,
                    "tag": "prev",
                },
            ]
        elif latest.ready:
            traffic = [{"revisionName": latest.name, "percent": 100, "latestRevision": True}]
        elif previous is not None:
            traffic = [{"revisionName": previous.name, "percent": 100, "latestRevision": False}]
        else:
            traffic = []
        status = dict(isvc.get("status") or {})
        conditions = [dict(c) for c in status.get("conditions") or []]
        if latest.ready:
            for kind in CONDITIONS:
                set_condition(conditions, kind, "True")
        elif latest.failed:
            message = f"failed to load the model from {latest.uri}: no such model"
            for kind in ("PredictorReady", "PredictorConfigurationReady", "Ready"):
                set_condition(conditions, kind, "False", "ModelLoadFailed", message)
        else:
            for kind in ("PredictorReady", "Ready"):
                set_condition(
                    conditions,
                    kind,
                    "Unknown",
                    "RevisionMissing",
                    f"Configuration {name}-predictor is waiting for a Revision to become ready.",
                )
        for cond in conditions:
            if not cond.get("reason"):
                cond.pop("reason", None)
            if not cond.get("message"):
                cond.pop("message", None)
        predictor_url = f"http://{name}-predictor.{ns}.{self.domain}"
        ready_revision = latest if latest.ready else previous
        component: Obj = {
            "latestCreatedRevision": latest.name,
            "traffic": traffic,
            "url": predictor_url,
        }
        if ready_revision is not None:
            component["latestReadyRevision"] = ready_revision.name
            component["latestRolledoutRevision"] = ready_revision.name
        if previous is not None and latest.ready:
            component["previousRolledoutRevision"] = previous.name
        status.update(
            conditions=conditions,
            observedGeneration=m.get("generation", 1),
            components={"predictor": component},
        )
        if ready_revision is not None:
            status["url"] = f"http://{name}.{ns}.{self.domain}"
            status["address"] = {"url": f"http://{name}-predictor.{ns}.svc.cluster.local"}
        if latest.failed:
            status["modelStatus"] = {
                "states": {"activeModelState": "FailedToLoad", "targetModelState": "FailedToLoad"},
                "transitionStatus": "BlockedByFailedLoad",
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": f"failed to load {latest.uri}",
                },
            }
        elif latest.ready:
            status["modelStatus"] = {
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate",
            }

        def write(obj: Obj) -> None:
            obj["status"] = status

        self.store.update_obj(self.rt, isvc, write)
