"""Make a tenant's namespace objects exist as configured, idempotently, touching nothing foreign.

Each object is read first: missing ones are created; ours (labelled managed-by jupyter-cloudml)
are brought up to date when the configuration changed, judged by what the API server would store
(a dry run); an object of the same name that someone else made is left exactly as it is and
reported, like a namespace that existed before the hub.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..backends.kubernetes.api import KubeApi
from ..backends.kubernetes.labels import MANAGED_BY, MANAGED_BY_KEY
from ..backends.kubernetes.rbac import collection_path, object_path
from ..exceptions import Conflict, NotFound

Obj = dict[str, Any]

CREATED, UPDATED, UNCHANGED, FOREIGN = "created", "updated", "unchanged", "foreign"
#: The fields that hold an object's configuration, by kind (its desired state).
_DESIRED = {
    "Namespace": (),
    "ServiceAccount": (),
    "ResourceQuota": ("spec",),
    "LimitRange": ("spec",),
    "Role": ("rules",),
    "RoleBinding": ("subjects",),  # roleRef cannot change
    "PersistentVolumeClaim": (),  # a claim's spec is immutable once bound
}


@dataclass(frozen=True)
class Outcome:
    """What ensuring one object did."""

    kind: str
    name: str
    namespace: str | None
    action: str

    def describe(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        if self.action == FOREIGN:
            return (
                f"{self.kind} {self.name}{where} exists and was not created by jupyter-cloudml: "
                "left untouched"
            )
        return f"{self.kind} {self.name}{where} {self.action}"


def ensure_objects(api: KubeApi, manifests: Iterable[Obj]) -> list[Outcome]:
    """Create or update each manifest in order; what happened to each."""
    return [_ensure(api, manifest) for manifest in manifests]


def foreign(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """The outcomes that found someone else's object in the way."""
    return [o for o in outcomes if o.action == FOREIGN]


def _ensure(api: KubeApi, manifest: Obj) -> Outcome:
    meta = manifest["metadata"]
    kind, name, namespace = manifest["kind"], meta["name"], meta.get("namespace")

    def outcome(action: str) -> Outcome:
        return Outcome(kind, name, namespace, action)

    try:
        existing = api.get(object_path(manifest))
    except NotFound:
        try:
            api.create(collection_path(manifest, namespace), manifest)
            return outcome(CREATED)
        except Conflict:  # made meanwhile (another spawn of the same user): read it again
            existing = api.get(object_path(manifest))
    labels = existing.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY_KEY) != MANAGED_BY:
        return outcome(FOREIGN)
    fields = _DESIRED.get(kind, ("spec",))
    if all(existing.get(f) == manifest.get(f) for f in fields) and _labels_kept(existing, meta):
        return outcome(UNCHANGED)
    updated = copy.deepcopy(existing)
    for f in fields:
        updated[f] = manifest.get(f)
    updated["metadata"]["labels"] = {**labels, **(meta.get("labels") or {})}
    # The API server stores some settings in its own words (canonical quantities such as 500m
    # for 0.5, defaulted fields such as a LimitRange's defaultRequest): what it would store
    # decides whether anything changes, not the configuration's spelling.
    stored = api.request("PUT", object_path(manifest), query={"dryRun": "All"}, body=updated)
    if all(stored.get(f) == existing.get(f) for f in fields) and _labels_kept(existing, meta):
        return outcome(UNCHANGED)
    api.request("PUT", object_path(manifest), body=updated)
    return outcome(UPDATED)


def _labels_kept(existing: Obj, meta: Obj) -> bool:
    have = existing.get("metadata", {}).get("labels") or {}
    return all(have.get(k) == v for k, v in (meta.get("labels") or {}).items())
