"""ResourceQuota: the admission plugin that refuses what would exceed a namespace's quota, and
the controller that keeps every quota's ``status.hard``/``status.used`` (a subset of
kube-apiserver's ResourceQuota plugin and kube-controller-manager's quota controller).

Counted: for Pods not yet Succeeded/Failed, ``pods``, ``cpu``/``requests.cpu``,
``memory``/``requests.memory``, ``limits.cpu``, ``limits.memory``, ephemeral storage and
``requests.<extended resource>`` (``requests.nvidia.com/gpu``; a request defaults to the limit);
for every kind, ``count/<resource>[.<group>]`` and the legacy ``configmaps``, ``secrets``,
``services``, ``persistentvolumeclaims``, ``resourcequotas``. A quota naming cpu or memory makes
every container say how much it asks (``failed quota: q: must specify requests.cpu for: main``).

Not emulated: quota scopes and scope selectors, ``requests.storage``, hugepages, service
sub-counts, updates (only creates are admitted), and the ``status unknown for quota`` refusal:
usage is computed from the stored objects on every admission, so a brand-new quota applies at
once while its status is written a moment later.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .base import Context, Controller
from .common import Obj, forbidden, parse_time
from .quantity import ZERO, Quantity, canonical
from .resources import ResourceType
from .store import Store

_COMPUTE = ("cpu", "memory", "ephemeral-storage")
#: Quota keys a Pod's containers must each ask for explicitly (a historical API wart).
MUST_SPECIFY = frozenset(
    {"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"}
)
_POD_KEYS = frozenset(
    {"pods", *_COMPUTE, *(f"{kind}.{name}" for kind in ("requests", "limits") for name in _COMPUTE)}
)
#: Core kinds also counted under their bare plural.
_LEGACY_COUNTS = frozenset(
    {"configmaps", "secrets", "services", "persistentvolumeclaims", "resourcequotas"}
)


def _extended(name: str) -> bool:
    """An extended resource (``nvidia.com/gpu``): a domain-prefixed name outside kubernetes.io."""
    return "/" in name and "kubernetes.io/" not in name and not name.startswith("requests.")


def tracked(key: str) -> bool:
    """Whether the quota system counts usage for this quota key."""
    if key in _POD_KEYS or key in _LEGACY_COUNTS or key.startswith("count/"):
        return True
    return key.startswith("requests.") and _extended(key.removeprefix("requests."))


def _add(total: dict[str, Quantity], more: dict[str, Quantity]) -> dict[str, Quantity]:
    out = dict(total)
    for key, value in more.items():
        out[key] = out.get(key, ZERO) + value
    return out


def _amounts(container: Obj, field: str) -> dict[str, Quantity]:
    resources = container.get("resources") or {}
    return {k: Quantity.parse(v) for k, v in (resources.get(field) or {}).items()}


def _pod_total(pod: Obj, field: str) -> dict[str, Quantity]:
    """A pod's effective requests or limits: its containers and sidecars together, or its
    largest init container (with the sidecars started before it) if that is more."""
    spec = pod.get("spec") or {}
    running: dict[str, Quantity] = {}
    for container in spec.get("containers") or []:
        running = _add(running, _amounts(container, field))
    sidecars: dict[str, Quantity] = {}
    init_peak: dict[str, Quantity] = {}
    for container in spec.get("initContainers") or []:
        if container.get("restartPolicy") == "Always":
            sidecars = _add(sidecars, _amounts(container, field))
            continue
        for key, value in _add(sidecars, _amounts(container, field)).items():
            if value.value > init_peak.get(key, ZERO).value:
                init_peak[key] = value
    total = _add(running, sidecars)
    for key, value in init_peak.items():
        if value.value > total.get(key, ZERO).value:
            total[key] = value
    return total


def compute_usage(
    requests: dict[str, Quantity], limits: dict[str, Quantity]
) -> dict[str, Quantity]:
    """The quota keys some requests and limits count against (with ``pods``: one)."""
    usage = {"pods": Quantity.parse(1)}
    for name in _COMPUTE:
        if name in requests:
            usage[name] = usage[f"requests.{name}"] = requests[name]
        if name in limits:
            usage[f"limits.{name}"] = limits[name]
    for name, amount in requests.items():
        if _extended(name):
            usage[f"requests.{name}"] = amount
    return usage


def _counts_compute(pod: Obj) -> bool:
    """Pods count against compute quota until they end (or their deletion grace is over)."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    m = pod.get("metadata") or {}
    deleted, grace = parse_time(m.get("deletionTimestamp")), m.get("deletionGracePeriodSeconds")
    return not (deleted is not None and grace is not None and time.time() > deleted + grace)


def usage(rt: ResourceType, obj: Obj) -> dict[str, Quantity]:
    """What one stored object counts against quota."""
    one = Quantity.parse(1)
    found = {f"count/{rt.qualified}": one}
    if not rt.group and rt.plural in _LEGACY_COUNTS:
        found[rt.plural] = one
    if rt.kind == "Pod" and _counts_compute(obj):
        found |= compute_usage(_pod_total(obj, "requests"), _pod_total(obj, "limits"))
    return found


def missing_requests(pod: Obj, keys: Iterable[str]) -> str:
    """``requests.cpu for: a,b; limits.memory for: a`` when containers leave out amounts that
    these quota keys constrain; empty if none is missing."""
    required = MUST_SPECIFY.intersection(keys)
    missing: dict[str, set[str]] = {}
    spec = pod.get("spec") or {}
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        has = compute_usage(_amounts(container, "requests"), _amounts(container, "limits"))
        for key in required - set(has):
            missing.setdefault(key, set()).add(container["name"])
    return "; ".join(f"{key} for: {','.join(sorted(missing[key]))}" for key in sorted(missing))


def _pretty(amounts: dict[str, Quantity], keys: list[str]) -> str:
    return ",".join(f"{key}={amounts[key]}" for key in keys if key in amounts)


def _hard(quota: Obj) -> dict[str, Quantity]:
    return {k: Quantity.parse(v) for k, v in ((quota.get("spec") or {}).get("hard") or {}).items()}


class QuotaAdmission:
    """The validating admission plugin: refuses a create that would go over a quota."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rt = store.registry.by_plural("resourcequotas")

    def namespace_usage(self, namespace: str) -> dict[str, Quantity]:
        """Everything the namespace's stored objects count against quota."""
        total: dict[str, Quantity] = {}
        for rt, obj in self.store.live():
            if rt.namespaced and obj["metadata"].get("namespace") == namespace:
                total = _add(total, usage(rt, obj))
        return total

    def __call__(self, rt: ResourceType, obj: Obj) -> None:
        namespace = obj["metadata"].get("namespace")
        if not rt.namespaced or not namespace:
            return
        quotas, _ = self.store.list(self.rt, namespace)
        if not quotas:
            return
        name = obj["metadata"]["name"]
        if rt.kind == "Pod":
            for quota in quotas:
                missing = missing_requests(obj, _hard(quota))
                if missing:
                    why = f"failed quota: {quota['metadata']['name']}: must specify {missing}"
                    raise forbidden(rt.group, rt.plural, name, why)
        asked = {k: v for k, v in usage(rt, obj).items() if v.value}
        used: dict[str, Quantity] | None = None
        for quota in quotas:
            hard = _hard(quota)
            requested = {k: v for k, v in asked.items() if k in hard}
            if not requested:
                continue
            used = self.namespace_usage(namespace) if used is None else used
            over = sorted(
                k for k, v in requested.items() if (used.get(k, ZERO) + v).value > hard[k].value
            )
            if over:
                counted = {k: used.get(k, ZERO) for k in over}
                why = (
                    f"exceeded quota: {quota['metadata']['name']}, "
                    f"requested: {_pretty(requested, over)}, used: {_pretty(counted, over)}, "
                    f"limited: {_pretty(hard, over)}"
                )
                raise forbidden(rt.group, rt.plural, name, why)


class QuotaController(Controller):
    """Writes every ResourceQuota's ``status.hard`` (its spec, canonical) and ``status.used``."""

    tick = 1.0

    def __init__(self, ctx: Context, admission: QuotaAdmission) -> None:
        super().__init__(ctx)
        self.admission = admission
        self.rt = admission.rt

    def on_change(self, rt: ResourceType, kind: str, obj: Obj, old: Obj | None) -> None:
        """Any stored object may count against a quota (events are left to the tick)."""
        if rt.kind != "Event":
            self.wake()

    def reconcile(self) -> None:
        """Recount the namespaces that have quotas."""
        quotas, _ = self.store.list(self.rt)
        counted: dict[str, dict[str, Quantity]] = {}
        for quota in quotas:
            namespace = quota["metadata"]["namespace"]
            if namespace not in counted:
                counted[namespace] = self.admission.namespace_usage(namespace)
            hard = (quota.get("spec") or {}).get("hard") or {}
            status = {
                "hard": {k: canonical(v) for k, v in hard.items()},
                "used": {k: str(counted[namespace].get(k, ZERO)) for k in hard if tracked(k)},
            }
            if quota.get("status") != status:

                def write(q: Obj, status: Obj = status) -> None:
                    q["status"] = status

                self.store.update_obj(self.rt, quota, write)
