"""Least-privilege identities of the pods that use ``KubernetesBackend`` in a namespace.

A study's driver starts, watches and stops its trials' Jobs (``JOB_RULES``); a tenant's notebook
server does everything the magics do (``NOTEBOOK_RULES``: jobs, their pods, logs and events,
model services, TensorBoards). Both Roles are namespaced: they reach nothing outside it.
"""

from __future__ import annotations

from typing import Any

from .labels import MANAGED_BY, MANAGED_BY_KEY

STUDY_DRIVER = "cloudml-study-driver"


def _rule(group: str, resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


_JOBS = _rule("batch", ["jobs"], ["create", "get", "list", "watch", "patch", "delete"])
_POD_STATUS = _rule("", ["pods", "events"], ["get", "list", "watch"])
_POD_LOGS = _rule("", ["pods/log"], ["get"])
_QUOTAS = _rule("", ["resourcequotas"], ["list"])
#: A job's `--secret` values: created with it (and deleted with it, as it owns them), never read.
_SECRETS = _rule("", ["secrets"], ["create"])

#: What submitting, watching, reading the logs of and cancelling jobs needs.
JOB_RULES: list[dict[str, Any]] = [
    _JOBS,
    _POD_STATUS,
    _POD_LOGS,
    _rule("", ["configmaps", "services"], ["create", "get"]),
    _SECRETS,
    _QUOTAS,
]

#: What the magics need: jobs as above, model services (Deployments and Services, or KServe
#: InferenceServices), TensorBoards, and checking that the study driver's identity exists.
NOTEBOOK_RULES: list[dict[str, Any]] = [
    _JOBS,
    _POD_STATUS,
    _POD_LOGS,
    _QUOTAS,
    _rule("", ["configmaps"], ["create", "get"]),
    _SECRETS,
    _rule("", ["services"], ["create", "get", "patch", "delete"]),
    _rule("apps", ["deployments"], ["create", "get", "list", "patch", "delete"]),
    _rule(
        "serving.kserve.io",
        ["inferenceservices"],
        ["create", "get", "list", "update", "patch", "delete"],
    ),
    _rule("", ["serviceaccounts"], ["get"]),
    _rule("rbac.authorization.k8s.io", ["roles", "rolebindings"], ["get"]),
]


def study_driver_objects(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of study drivers in ``namespace``."""
    return identity_objects(STUDY_DRIVER, namespace, JOB_RULES)


def identity_objects(
    name: str,
    namespace: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A ServiceAccount ``name`` in ``namespace`` and a Role (with ``rules``) bound to it there."""
    metadata = {"namespace": namespace, "labels": {**(labels or {}), MANAGED_BY_KEY: MANAGED_BY}}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": name, **metadata},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, **metadata},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, **metadata},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
        },
    ]


def collection_path(manifest: dict[str, Any], namespace: str | None) -> str:
    """The URL path objects of this manifest's kind are created at (``namespace`` None: a
    cluster-scoped kind such as Namespace)."""
    group, _, version = manifest["apiVersion"].rpartition("/")
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    plural = manifest["kind"].lower() + "s"
    return f"{root}/namespaces/{namespace}/{plural}" if namespace else f"{root}/{plural}"


def object_path(manifest: dict[str, Any]) -> str:
    """The URL path of the object a manifest describes (in its ``metadata.namespace``)."""
    meta = manifest["metadata"]
    return f"{collection_path(manifest, meta.get('namespace'))}/{meta['name']}"
