"""ResourceQuota arithmetic: what pods ask for, and by how much that exceeds a namespace's quota.

Kubernetes refuses a pod over quota only when it is created: for a Job that is after the job was
accepted, so the notebook would see a job that never starts. Checking first lets the magics and
the hub's spawn form say which quota and by how much, in the words of the quota itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ...exceptions import MissingExtra, QuotaExceeded
from ...models import QuotaInfo, QuotaItem

GPU_QUOTA = "requests.nvidia.com/gpu"
#: The quota keys compared (others, e.g. object counts, are left to the API server).
CHECKED = ("requests.cpu", "requests.memory", GPU_QUOTA, "limits.cpu", "limits.memory", "pods")
_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}
#: The API server's refusal: "exceeded quota: team-a, requested: requests.nvidia.com/gpu=2,
#: used: requests.nvidia.com/gpu=3, limited: requests.nvidia.com/gpu=4"
QUOTA_RE = re.compile(
    r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>.*?), used: (?P<used>.*?), "
    r"limited: (?P<limited>[^\s]*)"
)


def quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity (``500m``, ``4Gi``, ``2``) as a number."""
    try:
        from kubernetes.utils import parse_quantity
    except ModuleNotFoundError as exc:
        raise MissingExtra("reading Kubernetes quotas", exc.name, "kubernetes") from None

    try:
        return Decimal(parse_quantity(text))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 4Gi, 2)") from exc


def pod_asks(pod_spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """What one pod counts against quota: its containers' requests and limits, and one pod.

    Extended resources (GPUs) are requested by their limit when no request is given, as
    Kubernetes does; init containers are ignored (they run before, not beside, the others).
    """
    asks: dict[str, Decimal] = {"pods": Decimal(1)}
    for container in pod_spec.get("containers") or []:
        resources = container.get("resources") or {}
        requests = dict(resources.get("requests") or {})
        limits = resources.get("limits") or {}
        for name, amount in limits.items():
            if "/" in name:
                requests.setdefault(name, amount)
        for kind, amounts in (("requests", requests), ("limits", limits)):
            for name, amount in amounts.items():
                key = f"{kind}.{name}"
                asks[key] = asks.get(key, Decimal(0)) + quantity(amount)
    return asks


def total(asks: Iterable[Mapping[str, Decimal]]) -> dict[str, Decimal]:
    """The sum of several pods' asks."""
    out: dict[str, Decimal] = {}
    for one in asks:
        for key, amount in one.items():
            out[key] = out.get(key, Decimal(0)) + amount
    return out


def job_asks(job: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a Job counts against quota while all its pods run (``parallelism`` of them)."""
    one = pod_asks(job["spec"]["template"]["spec"])
    pods = int(job["spec"].get("parallelism") or 1)
    return {key: amount * pods for key, amount in one.items()}


@dataclass(frozen=True)
class Shortfall:
    """One resource of one quota that an ask does not fit in."""

    quota: str
    #: None when not known (the API server's refusal does not name it)
    namespace: str | None
    resource: str
    asks: Decimal
    hard: Decimal
    used: Decimal
    #: Whether what is in use counts (the ask must fit now), or only the hard limit (ever).
    now: bool = True

    @property
    def over(self) -> Decimal:
        """By how much the ask exceeds what is left (``now``) or the limit itself."""
        return self.asks - (self.hard - self.used if self.now else self.hard)

    def describe(self) -> str:
        where = f"namespace {self.namespace}" if self.namespace else "the namespace"
        return (
            f"{self.resource}: asks {_fmt(self.asks)}, over quota {self.quota!r} of {where} "
            f"by {_fmt(self.over)} (it allows {_fmt(self.hard)}, {_fmt(self.used)} in use)"
        )


def shortfalls(
    asks: Mapping[str, Decimal], quotas: Iterable[Mapping[str, Any]], *, now: bool = True
) -> list[Shortfall]:
    """Every resource of every quota object that ``asks`` exceeds: what is left of it
    (``now``), or the hard limit itself (whether the ask could ever fit)."""
    found = []
    for quota in quotas:
        meta = quota.get("metadata") or {}
        status = quota.get("status") or {}
        hard = _normalised(status.get("hard") or quota["spec"].get("hard") or {})
        used = _normalised(status.get("used") or {})
        for resource in CHECKED:
            if resource not in hard or not asks.get(resource):
                continue
            shortfall = Shortfall(
                meta.get("name", "?"),
                meta.get("namespace", "?"),
                resource,
                asks[resource],
                hard[resource],
                used.get(resource, Decimal(0)),
                now,
            )
            if shortfall.over > 0:
                found.append(shortfall)
    return found


def check(
    what: str,
    asks: Mapping[str, Decimal],
    quotas: Iterable[Mapping[str, Any]],
    *,
    now: bool = True,
    advice: str = "",
) -> None:
    """Raise ``QuotaExceeded`` naming every quota and resource ``asks`` does not fit in."""
    found = shortfalls(asks, quotas, now=now)
    if found:
        details = "; ".join(s.describe() for s in found)
        raise QuotaExceeded(f"{what} does not fit: {details}" + (f". {advice}" if advice else ""))


def refusal_message(refusal: re.Match[str]) -> str:
    """The API server's quota refusal (a ``QUOTA_RE`` match) in the words of ``Shortfall``."""
    requested, used, limited = (_amounts(refusal[k]) for k in ("requested", "used", "limited"))
    try:
        found = [
            Shortfall(
                refusal["quota"],
                None,
                name,
                quantity(amount),
                quantity(limited[name]),
                quantity(used.get(name, "0")),
            )
            for name, amount in requested.items()
            if name in limited
        ]
    except ValueError:
        found = []
    return "; ".join(s.describe() for s in found) or refusal.group(0)


def _amounts(text: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in text.split(",") if "=" in p)


def _normalised(amounts: Mapping[str, Any]) -> dict[str, Decimal]:
    return {_ALIASES.get(k, k): quantity(v) for k, v in amounts.items()}


def _fmt(amount: Decimal) -> str:
    """A number as people write it: ``4``, ``0.5``, ``17179869184`` bytes as ``16Gi``."""
    if amount >= 1024**2 and amount % 1024**2 == 0:
        for unit, size in (("Ti", 1024**4), ("Gi", 1024**3), ("Mi", 1024**2)):
            if amount % size == 0:
                return f"{amount // size}{unit}"
    return format(amount.normalize(), "f")


def quota_info(
    namespace: str, quotas: Iterable[Mapping[str, Any]] | None, running: int, queued: int
) -> QuotaInfo:
    """The namespace's ResourceQuotas as used / hard, one item per quota and resource (None:
    this identity may not read them)."""
    items = tuple(
        QuotaItem(resource, str(used.get(resource, "0")), str(amount), q["metadata"]["name"])
        for q in quotas or ()
        for used in [(q.get("status") or {}).get("used") or {}]
        for resource, amount in sorted(((q.get("status") or {}).get("hard") or {}).items())
    )
    if quotas is None:
        note = f"this identity may not read the ResourceQuotas of {namespace}"
    elif not items:
        note = f"no ResourceQuota in {namespace}: only the cluster's capacity limits jobs"
    else:
        note = ""
    return QuotaInfo(f"namespace {namespace}", items, running=running, queued=queued, note=note)
