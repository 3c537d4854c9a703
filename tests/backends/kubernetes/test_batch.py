"""Batch prediction on Kubernetes' own control plane: the same job as on the local backend, its
shards the completion indexes of one Indexed Job, reading inputs and the model and writing
results on the tenant's shared claim (mounted at the same path in the notebook and the pods)."""

from __future__ import annotations

import json

import pytest
from k8s_testkit import CLAIM, refusals, spec, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.client import Client
from jupyter_cloudml.exceptions import InvalidSpec
from jupyter_cloudml.models import BatchPredictionSpec, JobStatus, ModelFramework

pytestmark = pytest.mark.realcluster

MODEL_JOB = """
import os, joblib
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
joblib.dump(model, os.path.join(os.environ["CLOUDML_JOB_DIR"], "model.joblib"))
"""


@pytest.fixture
def backend(kube, tenant):
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    yield backend
    backend.close()
    assert not [r for r in refusals(kube, tenant.user) if r not in tenant.expected]


def test_a_batch_prediction_is_an_indexed_job_over_the_shared_claim(backend, kube, tenant):
    trained = backend.submit(spec(MODEL_JOB, name="linear"))
    wait_status(backend, trained.id, JobStatus.SUCCEEDED, timeout=120)
    inputs = tenant.shared / "inputs"
    inputs.mkdir()
    for i in range(2):
        rows = [[float(i)], [float(i) + 0.5]] + ([[1.0, 2.0]] if i else [])
        (inputs / f"in-{i}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tenant.shared / "out"
    client = Client(backend=backend)
    job = client.submit_batch_prediction(
        BatchPredictionSpec(
            name="score",
            model=f"job:{trained.id}/model.joblib",
            input_paths=(str(inputs / "in-*.json"),),
            output_path=str(out),
            framework=ModelFramework.SKLEARN,
            workers=2,
        )
    )
    jobs = kube.objects("jobs", tenant.namespace, labelSelector=f"cloudml.io/job={job.id}")
    assert len(jobs) == 1
    assert jobs[0]["spec"]["completionMode"] == "Indexed"
    assert (jobs[0]["spec"]["completions"], jobs[0]["spec"]["parallelism"]) == (2, 2)
    done = wait_status(backend, job.id, JobStatus.SUCCEEDED, timeout=180)
    assert sorted(r.name for r in done.replicas) == ["worker-0", "worker-1"]
    results = client.prediction_results(job.id)
    assert results["prediction"].tolist() == pytest.approx([0.0, 1.0, 2.0, 3.0])
    errors = client.prediction_results(job.id, errors=True)
    assert errors[["input_file", "line"]].values.tolist() == [[str(inputs / "in-1.json"), 3]]
    info = client.batch_prediction(job.id)
    assert (info.shards_done, info.results, info.errors) == (2, 4, 1)
    assert (info.rows_done, info.rows_total) == (5, 5)  # the pods' reports on the claim
    logs = {line.text for line in client.logs(job.id)}
    assert "shard 1 of 2 done: 2 predicted, 1 error(s)" in logs


def test_paths_the_pods_cannot_reach_are_refused_before_submitting(backend, tenant, tmp_path):
    client = Client(backend=backend)
    model = tenant.shared / "model.joblib"
    model.write_bytes(b"")
    elsewhere = tmp_path / "model.joblib"
    elsewhere.write_bytes(b"")
    shared_in, local_in = tenant.shared / "in.json", tmp_path / "in.json"
    for path in (shared_in, local_in):
        path.write_text("[1.0]\n")

    def submit(model, inputs, out):
        spec = BatchPredictionSpec(
            name="score", model=str(model), input_paths=(str(inputs),), output_path=str(out),
            framework=ModelFramework.SKLEARN,
        )  # fmt: skip
        client.submit_batch_prediction(spec)

    with pytest.raises(InvalidSpec, match="is a path the cluster cannot read"):
        submit(elsewhere, shared_in, tenant.shared / "out")
    with pytest.raises(InvalidSpec, match=f"{local_in} is a path the cluster's pods cannot reach"):
        submit(model, local_in, tenant.shared / "out")
    with pytest.raises(InvalidSpec, match=f"put it under {tenant.shared} or give a URI"):
        submit(model, shared_in, tmp_path / "out")
    assert backend.list().jobs == ()
