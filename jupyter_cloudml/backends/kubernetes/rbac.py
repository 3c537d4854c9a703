"""Least-privilege identities for pods that drive other pods (the study driver).

A study's driver runs in the namespace and starts, watches and stops its trials' Jobs there;
its Role allows exactly what ``KubernetesBackend`` does for that, in that namespace only.
"""

from __future__ import annotations

from typing import Any

from .labels import MANAGED_BY, MANAGED_BY_KEY

STUDY_DRIVER = "cloudml-study-driver"

#: What submitting, watching, reading the logs of and cancelling jobs needs.
JOB_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["batch"],
        "resources": ["jobs"],
        "verbs": ["create", "get", "list", "watch", "patch", "delete"],
    },
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps", "services"], "verbs": ["create", "get"]},
]


def study_driver_objects(namespace: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of study drivers in ``namespace``."""
    metadata = {"namespace": namespace, "labels": {MANAGED_BY_KEY: MANAGED_BY}}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": STUDY_DRIVER, **metadata},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": STUDY_DRIVER, **metadata},
            "rules": JOB_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": STUDY_DRIVER, **metadata},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": STUDY_DRIVER,
            },
            "subjects": [{"kind": "ServiceAccount", "name": STUDY_DRIVER, "namespace": namespace}],
        },
    ]


def collection_path(manifest: dict[str, Any], namespace: str) -> str:
    """The URL path objects of this manifest's kind are created at."""
    group, _, version = manifest["apiVersion"].rpartition("/")
    root = f"/apis/{group}/{version}" if group else f"/api/{version}"
    plural = manifest["kind"].lower() + "s"
    return f"{root}/namespaces/{namespace}/{plural}"
