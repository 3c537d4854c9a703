"""Who is asking, and may they: bearer tokens of service accounts, and the RBAC authorizer.

Requests without credentials (the cluster's own kubeconfig, the kubelet's pods) are the cluster
admin and skip authorization, as before. A token from ``FakeCluster.kubeconfig_for`` is the
service account ``system:serviceaccount:<ns>:<name>`` (groups ``system:serviceaccounts``,
``system:serviceaccounts:<ns>``, ``system:authenticated``; the ServiceAccount object need not
exist); any other token is 401. Every request of a service account is authorized as
kube-apiserver's RBAC authorizer does: the request's attributes (verb, API group, resource,
subresource, namespace, name; or a non-resource path) must match a rule of a Role or ClusterRole
bound to it by a RoleBinding in that namespace or a ClusterRoleBinding. Refusals are the real
403 ``Status`` (``... is forbidden: User "..." cannot list resource "jobs" in API group "batch"
in the namespace "ns"``). The bootstrap ClusterRoles ``cluster-admin``, ``system:discovery`` and
``system:public-info-viewer`` and their bindings exist, so discovery works for any identity.

Not emulated: escalation prevention (a service account allowed to write Roles or RoleBindings
may grant itself anything), aggregated ClusterRoles, impersonation, users and groups other
than service accounts, other bootstrap roles (``admin``, ``edit``, ``view``...).
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
from collections.abc import Iterator

from .common import ApiError, Obj, forbidden
from .store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


@dataclasses.dataclass(frozen=True)
class Identity:
    """An authenticated user: its name and groups."""

    user: str
    groups: tuple[str, ...]

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        """The identity a service account's token carries."""
        groups = ("system:serviceaccounts", f"system:serviceaccounts:{namespace}")
        return cls(f"system:serviceaccount:{namespace}:{name}", (*groups, "system:authenticated"))


@dataclasses.dataclass(frozen=True)
class RequestAttributes:
    """What the authorizer decides on (``authorizer.Attributes``)."""

    user: str
    verb: str
    resource_request: bool
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


def request_attributes(
    identity: Identity, method: str, path: str, watch: bool, field_selector: str | None
) -> RequestAttributes:
    """The attributes of a request, parsed from its URL as kube-apiserver's
    ``RequestInfoFactory`` does (a GET without a name is ``list`` or ``watch``; a DELETE
    without one ``deletecollection``; ``/namespaces/x`` is namespace ``x``)."""
    parts = [p for p in path.split("/") if p]
    non_resource = RequestAttributes(identity.user, method.lower(), False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    rest = parts[1:]
    group = ""
    if parts[0] == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    rest = rest[1:]  # the version
    verbs = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch"}
    verb = verbs.get(method, "delete" if method == "DELETE" else "")
    if rest[0] == "watch" and len(rest) > 1:
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource, name, subresource = [*rest, "", "", ""][:3]
    if not name and verb == "get":
        verb = "watch" if watch else "list"
        name = _exact_name(field_selector)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestAttributes(
        identity.user, verb, True, group, resource, subresource, namespace, name, path
    )


def _exact_name(field_selector: str | None) -> str:
    """The name a field selector requires (``metadata.name=x``), if it does."""
    for term in (field_selector or "").split(","):
        key, sep, value = term.partition("=")
        if sep and not key.endswith("!") and key.strip() == "metadata.name":
            return value.removeprefix("=").strip()
    return ""


def rule_allows(rule: Obj, attrs: RequestAttributes) -> bool:
    """Whether one PolicyRule covers the request (``*`` wildcards, ``*/subresource``,
    ``resourceNames``, non-resource URL prefixes ``/apis/*``)."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        return any(
            url in ("*", attrs.path) or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    resources = rule.get("resources") or []
    if not any(
        r in ("*", combined) or (attrs.subresource and r == f"*/{attrs.subresource}")
        for r in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _applies(subject: Obj, identity: Identity, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(name == identity.user)
    if kind == "Group":
        return name in identity.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and identity.user == f"system:serviceaccount:{namespace}:{name}"
    return False


class Authorizer:
    """Service-account tokens and RBAC decisions, keeping every refusal."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._types = {
            kind: store.registry.by_plural(plural)
            for kind, plural in (
                ("Role", "roles"),
                ("RoleBinding", "rolebindings"),
                ("ClusterRole", "clusterroles"),
                ("ClusterRoleBinding", "clusterrolebindings"),
            )
        }
        self._tokens: dict[str, Identity] = {}
        self._lock = threading.Lock()
        self._denied: list[RequestAttributes] = []

    def denied(self) -> list[RequestAttributes]:
        """The attributes of every request refused so far, in order."""
        with self._lock:
            return list(self._denied)

    def issue(self, identity: Identity) -> str:
        """A new bearer token for the identity."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = identity
        return token

    def authenticate(self, authorization: str | None) -> Identity | None:
        """The identity of an ``Authorization`` header; None (the admin) without one."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            identity = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if identity is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return identity

    def authorize(self, identity: Identity, attrs: RequestAttributes) -> None:
        """Nothing if some bound rule allows the request, else the 403 (recorded)."""
        errors: list[str] = []
        for rules in self._rules_for(identity, attrs.namespace, errors):
            if any(rule_allows(rule, attrs) for rule in rules):
                return
        with self._lock:
            self._denied.append(attrs)
        raise _refusal(attrs, errors)

    def _rules_for(
        self, identity: Identity, namespace: str, errors: list[str]
    ) -> Iterator[list[Obj]]:
        """The rules of each role bound to the identity, cluster-wide bindings first; a
        binding to a missing role adds to ``errors``."""
        bindings = [(b, "") for b in self._list("ClusterRoleBinding", None)]
        if namespace:
            bindings += [(b, namespace) for b in self._list("RoleBinding", namespace)]
        for binding, where in bindings:
            if not any(_applies(s, identity, where) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            kind = "Role" if ref.get("kind") == "Role" and where else "ClusterRole"
            role = self.store.get(self._types[kind], where or None, str(ref.get("name")))
            if role is None:
                errors.append(f'{kind.lower()}.{RBAC_GROUP} "{ref.get("name")}" not found')
                continue
            yield role.get("rules") or []

    def _list(self, kind: str, namespace: str | None) -> list[Obj]:
        return self.store.list(self._types[kind], namespace)[0]


def _refusal(attrs: RequestAttributes, errors: list[str]) -> ApiError:
    """The 403 ``Status`` kube-apiserver answers a request no rule allows."""
    user = f'User "{attrs.user}"'
    if not attrs.resource_request:
        return ApiError(
            403, "Forbidden", f'forbidden: {user} cannot {attrs.verb} path "{attrs.path}"', {}
        )
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    why = f'{user} cannot {attrs.verb} resource "{combined}" in API group "{attrs.group}"'
    why += f' in the namespace "{attrs.namespace}"' if attrs.namespace else " at the cluster scope"
    unique = list(dict.fromkeys(errors))
    if unique:
        why += ": RBAC: " + (unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")
    return forbidden(attrs.group, attrs.resource, attrs.name, why)


def _cluster_role(name: str, rules: list[Obj]) -> Obj:
    return {
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        },
        "rules": rules,
    }


def _cluster_binding(name: str, groups: list[str]) -> Obj:
    binding = _cluster_role(name, [])
    del binding["rules"]
    binding["roleRef"] = {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name}
    binding["subjects"] = [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups]
    return binding


def bootstrap_objects() -> list[tuple[str, Obj]]:
    """(plural, object) of the default ClusterRoles and ClusterRoleBindings a cluster has."""
    info = ["/healthz", "/livez", "/readyz", "/version", "/version/"]
    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", *info]
    return [
        (
            "clusterroles",
            _cluster_role(
                "cluster-admin",
                [
                    {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                    {"nonResourceURLs": ["*"], "verbs": ["*"]},
                ],
            ),
        ),
        (
            "clusterroles",
            _cluster_role(
                "system:discovery", [{"nonResourceURLs": sorted(discovery), "verbs": ["get"]}]
            ),
        ),
        (
            "clusterroles",
            _cluster_role(
                "system:public-info-viewer", [{"nonResourceURLs": info, "verbs": ["get"]}]
            ),
        ),
        ("clusterrolebindings", _cluster_binding("cluster-admin", ["system:masters"])),
        ("clusterrolebindings", _cluster_binding("system:discovery", ["system:authenticated"])),
        (
            "clusterrolebindings",
            _cluster_binding(
                "system:public-info-viewer", ["system:authenticated", "system:unauthenticated"]
            ),
        ),
    ]
