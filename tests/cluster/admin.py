"""What the tests do as a cluster's admin, on the built-in control plane or on a cluster of
one's own: create objects, read them, make namespaces, ServiceAccount tokens and shared claims."""

from __future__ import annotations

import abc
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

Obj = dict[str, Any]


class ClusterError(Exception):
    """An admin request the API server refused."""

    def __init__(self, status: int, body: Obj) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body.get('message', body)}")


class AdminClient(abc.ABC):
    """Helpers over ``request()``; subclasses say where the server is and how to reach it."""

    workdir: Path
    #: Whether the API server's audit log can be read (``audit_events``).
    audited = False
    #: Whether this is the built-in control plane (restartable, process nodes, local DNS).
    controlplane = False

    @property
    @abc.abstractmethod
    def server_url(self) -> str:
        """The API server's URL."""

    @property
    @abc.abstractmethod
    def ca_file(self) -> Path:
        """The CA that signed the API server's certificate."""

    @abc.abstractmethod
    def request(self, method: str, path: str, body: Obj | None = None, **query: Any) -> Obj:
        """One request as the admin; ``ClusterError`` on a refusal."""

    def audit_events(self) -> list[Obj]:
        """Audited requests (none where the audit log cannot be read)."""
        return []

    def _wait(self, ready: Callable[[], object], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"{what} not ready after {timeout:g} s")

    def apply(self, obj: Obj, namespace: str | None = None) -> Obj:
        """Create ``obj`` as the admin (an existing one is left as it is)."""
        from jupyter_cloudml.backends.kubernetes.rbac import collection_path

        ns = namespace or obj["metadata"].get("namespace")
        try:
            return self.request("POST", collection_path(obj, ns), obj)
        except ClusterError as exc:
            if exc.status != 409:
                raise
            return obj

    def objects(self, plural: str, namespace: str | None = None, **query: Any) -> list[Obj]:
        """Every object of a kind (in ``namespace``, or everywhere)."""
        path = _api(plural) + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}"
        return list(self.request("GET", path, **query)["items"])

    def get_object(self, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        path = (
            _api(plural) + (f"/namespaces/{namespace}" if namespace else "") + f"/{plural}/{name}"
        )
        try:
            return self.request("GET", path)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def namespace(self, name: str) -> str:
        """A namespace, ready for pods (its ``default`` ServiceAccount exists)."""
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        self._wait(
            lambda: self.get_object("serviceaccounts", "default", name) is not None,
            f"the default ServiceAccount of {name}",
            30,
        )
        return name

    def service_account_kubeconfig(self, namespace: str, account: str, hours: int = 24) -> Path:
        """A kubeconfig holding a bound token of ServiceAccount ``account`` (it must exist)."""
        token = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": hours * 3600},
            },
        )["status"]["token"]
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": self.server_url,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [
                {
                    "name": account,
                    "context": {"cluster": "test", "user": account, "namespace": namespace},
                }
            ],
            "current-context": account,
        }
        path = self.workdir / f"sa-{namespace}-{account}.kubeconfig"
        path.write_text(json.dumps(doc))
        path.chmod(0o600)
        return path

    def shared_volume(self, namespace: str, claim: str, folder: Path, size: str = "10Gi") -> None:
        """A ReadWriteMany claim bound (by the real binder) to a hostPath volume at ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        pv_name = f"{namespace}-{claim}"
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv_name},
                "spec": {
                    "capacity": {"storage": size},
                    "accessModes": ["ReadWriteMany"],
                    "hostPath": {"path": str(folder)},
                    "storageClassName": "",
                    "persistentVolumeReclaimPolicy": "Retain",
                    "claimRef": {"namespace": namespace, "name": claim},
                },
            }
        )
        self.apply(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": "",
                    "volumeName": pv_name,
                    "resources": {"requests": {"storage": size}},
                },
            }
        )

        def bound() -> bool:
            pvc = self.get_object("persistentvolumeclaims", claim, namespace) or {}
            return pvc.get("status", {}).get("phase") == "Bound"

        self._wait(bound, f"claim {claim}", 30)

    def wait(self, predicate: Any, what: str, timeout: float = 30) -> None:
        """Until ``predicate()`` holds (the control plane's processes checked as it waits)."""
        self._wait(predicate, what, timeout)


def _api(plural: str) -> str:
    groups = {
        "jobs": "/apis/batch/v1",
        "deployments": "/apis/apps/v1",
        "replicasets": "/apis/apps/v1",
        "roles": "/apis/rbac.authorization.k8s.io/v1",
        "rolebindings": "/apis/rbac.authorization.k8s.io/v1",
        "endpointslices": "/apis/discovery.k8s.io/v1",
        "leases": "/apis/coordination.k8s.io/v1",
        "inferenceservices": "/apis/serving.kserve.io/v1beta1",
        "customresourcedefinitions": "/apis/apiextensions.k8s.io/v1",
    }
    return groups.get(plural, "/api/v1")
