"""A cluster of one's own (kind, k3s, a cloud) for the ``realcluster`` tier: the tests' admin
helpers over the identity of ``$CLOUDML_TEST_KUBECONFIG``, through the project's own API door.

What only the built-in control plane offers is absent and the tests that need it are skipped:
restarting components, process nodes (a GPU node, killing a node agent), the audit log (no
refusal is read from it) and resolving Services from the test process.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from jupyter_cloudml.backends.kubernetes.api import ApiError, KubeApi
from jupyter_cloudml.exceptions import Conflict, NotFound, QuotaExceeded

from .admin import AdminClient, ClusterError, Obj

MERGE_PATCH = "application/merge-patch+json"


class ExternalCluster(AdminClient):
    """The cluster a kubeconfig names, as the admin helpers see it."""

    def __init__(self, kubeconfig: Path) -> None:
        self.api = KubeApi(kubeconfig=str(kubeconfig))
        self.admin_kubeconfig = Path(kubeconfig)
        self.workdir = Path(tempfile.mkdtemp(prefix="cloudml-realcluster-"))
        ca = self.api.client.configuration.ssl_ca_cert
        self._ca = Path(ca) if ca else self.workdir / "no-ca"

    @property
    def server_url(self) -> str:
        return self.api.host

    @property
    def ca_file(self) -> Path:
        return self._ca

    def request(self, method: str, path: str, body: Obj | None = None, **query: Any) -> Obj:
        content = MERGE_PATCH if method == "PATCH" else None
        try:
            return self.api.request(method, path, query=query, body=body, content_type=content)
        except NotFound as exc:
            raise ClusterError(404, {"message": str(exc)}) from None
        except Conflict as exc:
            raise ClusterError(409, {"message": str(exc)}) from None
        except QuotaExceeded as exc:
            raise ClusterError(403, {"message": str(exc)}) from None
        except ApiError as exc:
            raise ClusterError(exc.status, {"message": str(exc), "reason": exc.reason}) from None

    def stop(self) -> None:
        self.api.client.close()
