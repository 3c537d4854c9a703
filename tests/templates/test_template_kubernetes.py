"""A template job on Kubernetes' own control plane (the ``kube`` fixture), as a tenant's
notebook server submits it: the template's package in the pod, its data on the tenant's shared
storage, the evaluation report read back through the backend."""

from __future__ import annotations

import json

import pytest
from k8s_testkit import CLAIM, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.commands.grammar import parse_command
from jupyter_cloudml.commands.train_spec import build_train_spec
from jupyter_cloudml.models import JobStatus
from jupyter_cloudml.models.kinds import TEMPLATE_LABEL

pytestmark = pytest.mark.realcluster


def test_a_template_job_runs_on_the_cluster_and_reports(kube, tenant):
    from sklearn.datasets import load_diabetes

    data = tenant.shared / "diabetes.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    load_diabetes(as_frame=True).frame.to_csv(data, index=False)
    ns = parse_command(
        ["train", "--template", "tabular-regression", "--data", str(data), "--target", "target",
         "--seed", "0", "--param", "max_iter=50"]
    )  # fmt: skip
    spec = build_train_spec(ns, cell=None, source_dir=tenant.shared, user_ns=None)
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    try:
        job = backend.submit(spec)
        done = wait_status(backend, job.id, JobStatus.SUCCEEDED, JobStatus.FAILED, timeout=240)
        logs = "\n".join(line.text for line in backend.logs(job.id))
        assert done.status is JobStatus.SUCCEEDED, f"{done.reason}\n{logs}"
        assert done.spec is not None and done.spec.labels[TEMPLATE_LABEL] == "tabular-regression"
        report = json.loads(backend.read_output(job.id, "evaluation.json"))
        assert report["metric"] == "r2" and report["n_test"] == 89
        assert f"r2 = {report['value']:.4f} on 89 held-out rows" in logs
        assert backend.read_output(job.id, "evaluation.png").startswith(b"\x89PNG")
        assert [s.value for s in backend.metrics(job.id).scalars["r2"]] == [report["value"]]
    finally:
        backend.close()
