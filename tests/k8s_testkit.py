"""Shared pieces of the Kubernetes tests on the real control plane: tenants set up as the hub
sets them up, refusals read from the API server's audit log, jobs from code, waiting on status."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cloudml_testkit import wait_for

from jupyter_cloudml.backends.kubernetes import rbac
from jupyter_cloudml.hub.tenant import NOTEBOOK_ACCOUNT
from jupyter_cloudml.models import TrainSpec
from jupyter_cloudml.packaging import package_files

CLAIM = "cloudml-shared"


@dataclass
class Tenant:
    """A tenant namespace: its notebook identity's kubeconfig and the shared folder."""

    namespace: str
    kubeconfig: Path
    shared: Path
    #: Refusals a test provoked on purpose (the others fail it).
    expected: list[str] = field(default_factory=list)

    @property
    def user(self) -> str:
        return service_account(self.namespace, NOTEBOOK_ACCOUNT)


def service_account(namespace: str, name: str) -> str:
    """A ServiceAccount's user name, as RBAC and the audit log know it."""
    return f"system:serviceaccount:{namespace}:{name}"


def apply_quota(kube, namespace: str, name: str, hard: dict[str, str]) -> None:
    """A ResourceQuota, once the quota controller has filled in what admission enforces."""
    kube.apply(
        {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": name, "namespace": namespace}, "spec": {"hard": hard}}
    )  # fmt: skip
    wait_for(
        lambda: ((kube.get_object("resourcequotas", name, namespace) or {}).get("status") or {})
        .get("hard"),
        timeout=20,
    )  # fmt: skip


def make_tenant(kube, folder: Path) -> Tenant:
    """A namespace set up as the hub sets up a tenant's: the notebook's and the study driver's
    ServiceAccounts and Roles, and a shared claim (bound to ``folder``)."""
    ns = kube.namespace(f"t-{uuid.uuid4().hex[:8]}")
    for obj in [
        *rbac.identity_objects(NOTEBOOK_ACCOUNT, ns, rbac.NOTEBOOK_RULES),
        *rbac.study_driver_objects(ns),
    ]:
        kube.apply(obj, ns)
    kube.shared_volume(ns, CLAIM, folder)
    return Tenant(ns, kube.service_account_kubeconfig(ns, NOTEBOOK_ACCOUNT), folder)


def refusals(kube, user: str) -> list[str]:
    """Requests of ``user`` the API server refused with 403 (from its audit log)."""
    return [
        f"{e['verb']} {e['requestURI']}"
        for e in kube.audit_events()
        if e.get("user", {}).get("username") == user
        and e.get("responseStatus", {}).get("code") == 403
    ]


def spec(code: str, name: str = "train", **fields) -> TrainSpec:
    return TrainSpec(name=name, package=package_files({"main.py": code.encode()}, "main"), **fields)


def wait_status(backend, job_id, *statuses, timeout=60.0):
    """Wait for one of `statuses`; a job that ends in another one fails the test at once."""

    def reached():
        info = backend.get(job_id)
        if info.status.terminal and info.status not in statuses:
            raise AssertionError(f"job ended {info.status.value}: {info.reason}")
        return info.status in statuses

    wait_for(reached, timeout=timeout)
    return backend.get(job_id)
