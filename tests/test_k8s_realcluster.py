"""Against a live cluster (set KUBECONFIG, and CLOUDML_IMAGE to an image with jupyter-cloudml):
a job runs to the end and its logs come back. Skipped without a cluster."""

from __future__ import annotations

import pytest

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.models import JobStatus, TrainSpec
from jupyter_cloudml.packaging import package_files


@pytest.mark.realcluster
def test_a_job_runs_on_the_live_cluster():
    backend = KubernetesBackend()
    spec = TrainSpec(name="smoke", package=package_files({"main.py": b"print('hi')"}, "main"))
    job = backend.submit(spec)
    try:
        from jupyter_cloudml.client import Client

        done = Client(backend=backend).wait(job.id, timeout=600)
        assert done.status is JobStatus.SUCCEEDED, done.reason
        assert "hi" in [line.text for line in backend.logs(job.id)]
    finally:
        backend.delete(job.id) if backend.get(job.id).status.terminal else backend.cancel(job.id)
