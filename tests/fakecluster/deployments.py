"""The Deployment controller (apps/v1): ``replicas`` pods of the current template, old-template
pods replaced once the new ones are ready, and the Deployment's status and conditions.

Simplification: pods are owned by the Deployment itself (no ReplicaSet in between); their
names still look like ``<deployment>-<pod-template-hash>-<random>``. A pod creation the API
refuses (quota...) is retried with an exponential backoff; the ``FailedCreate`` warning a real
ReplicaSet controller records on the ReplicaSet goes on the Deployment here (from
``replicaset-controller``), and the Deployment gets the ``ReplicaFailure`` condition real ones
copy from their ReplicaSet.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

from .base import Context, Controller
from .common import ApiError, Obj, controller_uid, owner_ref, set_condition
from .resources import ResourceType

HASH_LABEL = "pod-template-hash"
COMPONENT = "deployment-controller"
REPLICASET_COMPONENT = "replicaset-controller"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Obj) -> str:
    """A stable short hash of a pod template, in the alphabet Kubernetes uses for it."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def _ready(pod: Obj) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )


@dataclasses.dataclass
class Refusal:
    """Pod creations of one Deployment refused in a row, the last error and the next try."""

    count: int = 0
    message: str = ""
    retry: float = 0.0


class DeploymentController(Controller):
    """Keeps every Deployment's pods and status."""

    kinds = frozenset({"Deployment", "Pod"})
    tick = 0.2

    def __init__(self, ctx: Context, create_backoff: float = 1.0) -> None:
        super().__init__(ctx)
        self.deploy_rt: ResourceType = ctx.rt("deployments")
        self.pods_rt: ResourceType = ctx.rt("pods")
        self.create_backoff = create_backoff
        #: Deployment uid -> (template hash, when that template was first seen).
        self.progress: dict[str, tuple[str, float]] = {}
        self.refusals: dict[str, Refusal] = {}

    def reconcile(self) -> None:
        """Sync every Deployment with its pods."""
        pods: dict[str, list[Obj]] = {}
        deployments = []
        for rt, obj in self.store.live():
            if rt == self.deploy_rt:
                deployments.append(obj)
            elif rt == self.pods_rt and (owner := controller_uid(obj)):
                pods.setdefault(owner, []).append(obj)
        for deployment in deployments:
            if not deployment["metadata"].get("deletionTimestamp"):
                self._sync(deployment, pods.get(deployment["metadata"]["uid"], []))

    def _sync(self, deployment: Obj, pods: list[Obj]) -> None:
        m, spec = deployment["metadata"], deployment["spec"]
        replicas = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        current_hash = template_hash(template)
        rs_name = f"{m['name']}-{current_hash}"
        seen_hash, since = self.progress.get(m["uid"], ("", 0.0))
        if seen_hash != current_hash:
            self.progress[m["uid"]] = (current_hash, time.time())
            since = time.time()
        alive = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        current = [
            p for p in alive if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == current_hash
        ]
        old = [p for p in alive if p not in current]
        refusal = self.refusals.setdefault(m["uid"], Refusal())
        if len(current) < replicas and time.time() >= refusal.retry:
            if not refusal.count:
                self.ctx.events.record(
                    deployment,
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled up replica set {rs_name} from {len(current)} to {replicas}",
                    COMPONENT,
                )
            current += self._create(deployment, template, current_hash, replicas - len(current))
        elif len(current) > replicas:
            extra = sorted(current, key=lambda p: p["metadata"]["creationTimestamp"])[replicas:]
            self._delete(extra)
            current = [p for p in current if p not in extra]
            self.ctx.events.record(
                deployment,
                "Normal",
                "ScalingReplicaSet",
                f"Scaled down replica set {rs_name} from {len(current) + len(extra)} to {replicas}",
                COMPONENT,
            )
        ready_current = [p for p in current if _ready(p)]
        if old and len(ready_current) >= replicas:
            self._delete(old)
            old = []
        ready = [p for p in current + old if _ready(p)]
        status = dict(deployment.get("status") or {})
        status.update(
            observedGeneration=m.get("generation", 1),
            replicas=len(current) + len(old),
            updatedReplicas=len(current),
            readyReplicas=len(ready),
            availableReplicas=len(ready),
            unavailableReplicas=max(0, replicas - len(ready)),
        )
        for field in (
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "replicas",
            "updatedReplicas",
        ):
            if not status[field]:
                status.pop(field)
        conditions = [dict(c) for c in status.get("conditions") or []]
        if len(ready) >= replicas:
            set_condition(
                conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            set_condition(
                conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        if refusal.count:
            set_condition(conditions, "ReplicaFailure", "True", "FailedCreate", refusal.message)
        else:
            conditions = [c for c in conditions if c.get("type") != "ReplicaFailure"]
        deadline = float(spec.get("progressDeadlineSeconds", 600))
        if len(ready_current) >= replicas and not old:
            progress = (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{rs_name}" has successfully progressed.',
            )
        elif time.time() - since > deadline:
            progress = (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs_name}" has timed out progressing.',
            )
        else:
            progress = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        set_condition(conditions, "Progressing", *progress)
        for cond in conditions:
            cond.setdefault("lastUpdateTime", cond.get("lastTransitionTime"))
        status["conditions"] = conditions

        def write(d: Obj) -> None:
            d["status"] = status

        self.store.update_obj(self.deploy_rt, deployment, write)

    def _create(self, deployment: Obj, template: Obj, current_hash: str, count: int) -> list[Obj]:
        """Up to ``count`` new pods; a refusal is recorded and retried after a backoff."""
        refusal = self.refusals[deployment["metadata"]["uid"]]
        created = []
        for _ in range(count):
            try:
                created.append(self._pod(deployment, template, current_hash))
            except ApiError as exc:
                self.ctx.events.record(
                    deployment,
                    "Warning",
                    "FailedCreate",
                    f"Error creating: {exc.message}",
                    REPLICASET_COMPONENT,
                )
                refusal.count += 1
                refusal.message = exc.message
                refusal.retry = time.time() + self.create_backoff * min(
                    2 ** (refusal.count - 1), 60
                )
                return created
        refusal.count = 0
        return created

    def _pod(self, deployment: Obj, template: Obj, current_hash: str) -> Obj:
        tmeta = template.get("metadata") or {}
        labels = {**(tmeta.get("labels") or {}), HASH_LABEL: current_hash}
        body = {
            "metadata": {
                "generateName": f"{deployment['metadata']['name']}-{current_hash}-",
                "labels": labels,
                "annotations": dict(tmeta.get("annotations") or {}),
                "ownerReferences": [owner_ref(deployment)],
            },
            "spec": json.loads(json.dumps(template.get("spec") or {})),
        }
        return self.store.create(self.pods_rt, deployment["metadata"]["namespace"], body)

    def _delete(self, pods: list[Obj]) -> None:
        for pod in pods:
            self.store.delete_obj(self.pods_rt, pod)
