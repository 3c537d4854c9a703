"""A tenant's namespace objects: quota, container defaults and the identities its pods run as.

Pure builders (settings in, manifests out). The notebook server runs as ``cloudml-notebook``,
whose Role allows exactly what the magics do (``rbac.NOTEBOOK_RULES``) in this namespace only;
the study driver's identity is made here too, so tenants never need rights over RBAC objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..backends.kubernetes import rbac
from ..backends.kubernetes.labels import MANAGED_BY, MANAGED_BY_KEY
from ..backends.kubernetes.names import is_dns_label
from ..backends.kubernetes.quota import quantity
from ..exceptions import InvalidSpec

NOTEBOOK_ACCOUNT = "cloudml-notebook"
QUOTA_NAME = "cloudml-quota"
LIMITS_NAME = "cloudml-limits"
SHARED_CLAIM_NAME = "cloudml-shared"
#: Label on every tenant object: the tenant's namespace (a valid label value, unlike usernames).
TENANT_KEY = "cloudml.io/tenant"
#: Annotation on the namespace: the JupyterHub username exactly.
USER_ANNOTATION = "cloudml.io/user"
#: Zero to JupyterHub's access label: with ``hub.networkPolicy.interNamespaceAccessLabels:
#: accept``, pods in namespaces labelled so (and labelled so themselves) may reach the hub.
HUB_ACCESS_LABEL = "hub.jupyter.org/network-access-hub"
HUB_ACCOUNT = "hub"


def hub_rbac_objects(hub_namespace: str) -> list[dict[str, Any]]:
    """The ClusterRole and ClusterRoleBinding the hub (Zero to JupyterHub's ``hub`` service
    account) needs for tenant namespaces: KubeSpawner's user pods, events and home claims in
    any namespace, the tenant objects, and every right the tenants' Roles grant (Kubernetes
    lets a Role be made only by someone holding its rights)."""
    name = "cloudml-hub"
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in [*rbac.NOTEBOOK_RULES, *rbac.JOB_RULES, *_HUB_RULES]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    rules = [
        {"apiGroups": [group], "resources": [resource], "verbs": sorted(verbs)}
        for (group, resource), verbs in sorted(granted.items())
    ]
    labels = {MANAGED_BY_KEY: MANAGED_BY}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": HUB_ACCOUNT, "namespace": hub_namespace}
            ],
        },
    ]


_ENSURE = ["get", "list", "create", "update"]
#: What the hub itself does in tenant namespaces (KubeSpawner's and ``ensure``'s requests).
_HUB_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "create", "update"]},
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "create", "delete"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["persistentvolumeclaims"],
        "verbs": ["get", "create", "delete"],
    },
    {
        "apiGroups": [""],
        "resources": ["resourcequotas", "limitranges", "serviceaccounts"],
        "verbs": _ENSURE,
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": _ENSURE,
    },
]


@dataclass(frozen=True)
class SharedStorage:
    """The tenant's ReadWriteMany volume for job outputs, event files and study journals."""

    storage_class: str
    size: str = "50Gi"


@dataclass(frozen=True)
class Tenant:
    """One JupyterHub user's share of the cluster."""

    user: str
    namespace: str
    quota: Mapping[str, str]
    limits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    shared: SharedStorage | None = None

    def __post_init__(self) -> None:
        if not self.user:
            raise InvalidSpec("a tenant needs a username")
        if not is_dns_label(self.namespace):
            raise InvalidSpec(
                f"namespace {self.namespace!r} of user {self.user!r} is not a valid Kubernetes "
                "name (DNS-1123 label); check c.CloudMLSpawner.user_namespace_template"
            )
        for name, amount in {**self.quota, **_flat(self.limits)}.items():
            try:
                quantity(amount)
            except ValueError as exc:
                raise InvalidSpec(f"{name}: {exc}") from None


def merged_quota(
    default: Mapping[str, str], group_quotas: Mapping[str, Mapping[str, str]], groups: Iterable[str]
) -> dict[str, str]:
    """The default quota raised by each of the user's groups' overrides (the largest wins)."""
    quota = dict(default)
    for group in sorted(groups):
        for name, amount in (group_quotas.get(group) or {}).items():
            if name not in quota or quantity(amount) > quantity(quota[name]):
                quota[name] = str(amount)
    return quota


def _labels(tenant: Tenant) -> dict[str, str]:
    return {MANAGED_BY_KEY: MANAGED_BY, TENANT_KEY: tenant.namespace}


def _meta(tenant: Tenant, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": tenant.namespace, "labels": _labels(tenant)}


def quota_object(tenant: Tenant) -> dict[str, Any]:
    """The tenant's ResourceQuota."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta(tenant, QUOTA_NAME),
        "spec": {"hard": {k: str(v) for k, v in sorted(tenant.quota.items())}},
    }


def tenant_objects(tenant: Tenant) -> list[dict[str, Any]]:
    """The Namespace first, then everything in it: ResourceQuota, LimitRange, the notebook's
    and the study driver's ServiceAccount, Role and RoleBinding, and the shared claim."""
    ns = tenant.namespace
    labels = _labels(tenant)

    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {**labels, HUB_ACCESS_LABEL: "true"},
                "annotations": {USER_ANNOTATION: tenant.user},
            },
        },
        quota_object(tenant),
    ]
    if tenant.limits:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "LimitRange",
                "metadata": _meta(tenant, LIMITS_NAME),
                "spec": {"limits": [{"type": "Container", **_strings(tenant.limits)}]},
            }
        )
    objects += rbac.identity_objects(NOTEBOOK_ACCOUNT, ns, rbac.NOTEBOOK_RULES, labels)
    objects += rbac.identity_objects(rbac.STUDY_DRIVER, ns, rbac.JOB_RULES, labels)
    if tenant.shared is not None:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": _meta(tenant, SHARED_CLAIM_NAME),
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": tenant.shared.storage_class,
                    "resources": {"requests": {"storage": tenant.shared.size}},
                },
            }
        )
    return objects


def _strings(limits: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {kind: {k: str(v) for k, v in amounts.items()} for kind, amounts in limits.items()}


def _flat(limits: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    return {f"{kind}.{k}": str(v) for kind, amounts in limits.items() for k, v in amounts.items()}
