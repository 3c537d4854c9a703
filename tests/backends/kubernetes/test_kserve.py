"""InferenceServices on a real control plane with KServe's own CRD installed: the API server
checks every InferenceService the backend writes against KServe's schema; a stand-in for
KServe's controller (``cluster/kserve.py``) reports revisions, traffic and readiness.

A cluster of its own: with the CRD served, every backend deploys through KServe.
"""

from __future__ import annotations

import json
import sys

import pytest
from cloudml_testkit import TRAINER_IMAGE, wait_for
from k8s_testkit import CLAIM, make_tenant, refusals, spec, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import JobStatus


@pytest.fixture(scope="module")
def kserve_cluster(tmp_path_factory):
    from cluster import Cluster

    with Cluster(tmp_path_factory.mktemp("kserve"), {TRAINER_IMAGE: sys.executable}) as cluster:
        cluster.add_node("node-0")
        cluster.install_kserve()
        yield cluster


@pytest.fixture
def kserve_backend(kserve_cluster, tmp_path):
    tenant = make_tenant(kserve_cluster, tmp_path / "shared")
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    yield backend, kserve_cluster, tenant.namespace
    backend.close()
    assert not refusals(kserve_cluster, tenant.user)
    kserve_cluster.request("DELETE", f"/api/v1/namespaces/{tenant.namespace}")


MODEL_JOB = """
import os, pathlib
pathlib.Path(os.environ["CLOUDML_JOB_DIR"], "model.joblib").write_bytes(b"model")
"""


def test_kserve_inference_service_with_canary_split_and_rollback(kserve_backend, monkeypatch):
    from jupyter_cloudml.backends.kubernetes.manifests import serving
    from jupyter_cloudml.backends.kubernetes.manifests.kserve import inference_service
    from jupyter_cloudml.backends.kubernetes.manifests.serving import STORAGE_SCHEMES
    from jupyter_cloudml.exceptions import InvalidSpec, Unsupported
    from jupyter_cloudml.models import DeploymentStatus, DeploySpec, ModelFramework

    backend, cluster, ns = kserve_backend
    client = Client(backend=backend)
    job = backend.submit(spec(MODEL_JOB))
    wait_status(backend, job.id, JobStatus.SUCCEEDED)
    model = f"job:{job.id}/model.joblib"
    first = client.deploy(DeploySpec("churn", model, ModelFramework.XGBOOST))
    assert first.status is DeploymentStatus.READY and first.url.startswith("http://churn.")
    isvc = cluster.get_object("inferenceservices", "churn", ns)
    storage = isvc["spec"]["predictor"]["model"]["storageUri"]
    assert storage == f"pvc://{CLAIM}/jobs/{job.id}/job_dir/model.joblib"
    sent = inference_service(
        DeploySpec("churn", model, ModelFramework.XGBOOST), ns, storage_uri=storage
    )
    assert isvc["spec"]["predictor"] == sent["spec"]["predictor"]  # KServe's schema kept it all
    canary = client.deploy(
        DeploySpec(
            "churn", model, ModelFramework.XGBOOST, version="v2", traffic={"v2": 10, "v1": 90}
        )
    )
    assert {v.version: v.traffic for v in canary.versions} == {"v1": 90, "v2": 10}
    predictor = cluster.get_object("inferenceservices", "churn", ns)["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10
    promoted = client.set_traffic("churn", {"v2": 100})
    assert {v.version: v.traffic for v in promoted.versions} == {"v1": 0, "v2": 100}
    predictor = cluster.get_object("inferenceservices", "churn", ns)["spec"]["predictor"]
    assert "canaryTrafficPercent" not in predictor
    scaled = client.scale("churn", "v2", 3)  # the predictor (the newest version) scales
    assert [len(v.replicas) for v in scaled.versions] == [0, 3]
    predictor = cluster.get_object("inferenceservices", "churn", ns)["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (3, 3)
    with pytest.raises(Unsupported, match="newest version of churn"):
        client.scale("churn", "v1", 2)
    rolled = client.rollback("churn")
    assert {v.version: v.traffic for v in rolled.versions} == {"v1": 100, "v2": 0}
    same = client.deploy(DeploySpec("churn", model, ModelFramework.XGBOOST))  # as a rerun does
    assert same.outcome.startswith("churn v1 already serves this model")
    notes = cluster.get_object("inferenceservices", "churn", ns)["metadata"]["annotations"]
    records = json.loads(notes["cloudml.io/versions"])
    assert [len(r["fingerprint"]) for r in records] == [32, 32]  # what reruns compare
    monkeypatch.setattr(serving, "STORAGE_SCHEMES", (*STORAGE_SCHEMES, "fail"))
    with pytest.raises(InvalidSpec, match="ModelLoadFailed"):
        client.deploy(DeploySpec("broken", "fail://no/model", ModelFramework.SKLEARN))
    client.undeploy("churn")
    wait_for(lambda: cluster.get_object("inferenceservices", "churn", ns) is None, timeout=30)
