"""gRPC on Kubernetes' own control plane: a plain deployment's pods serve the Open Inference
Protocol over gRPC behind their Service, checked with KServe's own gRPC client and ours."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cloudml_testkit import wait_for
from k8s_testkit import CLAIM, refusals, spec, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import NotFound
from jupyter_cloudml.models import DeploySpec, JobStatus, ModelFramework
from jupyter_cloudml.serving.grpc_client import grpc_predict

CLIENTS = Path(__file__).resolve().parents[2] / "kserve_clients.py"
MODEL_JOB = """
import os, joblib
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
"""


def kserve_grpc(serving_python: str, address: str, rows: list, version: str) -> dict:
    """What KServe's gRPC client saw at `address` (10 calls, one pinned to `version`)."""
    proc = subprocess.run(
        [serving_python, str(CLIENTS), "grpc", address, "iris", json.dumps(rows), "10", version],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def answers_as(address: str, rows: list, version: str) -> bool:
    """Whether the pod behind `address` serves `version` now."""
    try:
        grpc_predict(address, "iris", rows, version=version, retry_seconds=0)
    except NotFound:
        return False
    return True


@pytest.fixture
def backend(kube, tenant):
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    yield backend
    backend.close()
    assert not [r for r in refusals(kube, tenant.user) if r not in tenant.expected]


@pytest.mark.controlplane
def test_plain_deployment_answers_kserve_grpc_clients_through_its_service(
    backend, kube, tenant, serving_python
):
    ns = tenant.namespace
    job = backend.submit(spec(MODEL_JOB))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    client = Client(backend=backend)
    backend._deployments.timeout = 120
    info = client.deploy(DeploySpec("iris", f"job:{job.id}", ModelFramework.SKLEARN, replicas=2))
    assert info.grpc_url == f"iris.{ns}.svc:8081"
    # The Service's address as a pod resolves it (gRPC resolves names in its own C core).
    host, port = info.grpc_url.rsplit(":", 1)
    address = f"{kube.service_hosts()[host]}:{port}"
    rows = [[3.0], [4.0]]
    seen = kserve_grpc(serving_python, address, rows, "v1")
    assert seen["server_ready"] and seen["model_ready"]
    assert seen["predictions"] == pytest.approx([6.0, 8.0])
    assert seen["versions"] == {"v1": 10} and seen["pinned_version"] == "v1"
    assert seen["metadata"] == {"name": "iris", "versions": ["v1"]}
    # The pods' own gRPC servers refuse bad tensors, names and versions.
    assert seen["wrong_shape"] == [
        "INVALID_ARGUMENT",
        "input 'input-0' of shape [2, 1] needs 2 values, got 1",
    ]
    assert seen["wrong_datatype"][0] == seen["contents_of_other_type"][0] == "INVALID_ARGUMENT"
    assert seen["unknown_version"][0] == seen["unknown_model"][0] == "NOT_FOUND"
    assert "this replica serves v1" in seen["unknown_version"][1]
    assert grpc_predict(address, "iris", rows) == pytest.approx([6.0, 8.0])
    with kube.resolving_services():
        assert client.predict("iris", rows) == pytest.approx([6.0, 8.0])
    # A second version takes the main Service's gRPC port too; each version keeps its own.
    client.deploy(DeploySpec("iris", f"job:{job.id}", ModelFramework.SKLEARN, version="v2"))
    wait_for(lambda: answers_as(address, rows, "v2"), 30)  # the Service proxy follows
    assert kserve_grpc(serving_python, address, rows, "v2")["versions"] == {"v2": 10}
    v1_address = f"{kube.service_hosts()[f'iris-v1.{ns}.svc']}:{port}"
    assert kserve_grpc(serving_python, v1_address, rows, "v1")["versions"] == {"v1": 10}
    client.undeploy("iris")
