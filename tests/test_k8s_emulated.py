"""What the real control plane cannot do on demand, on the emulated cluster (`fakecluster`):
bursts of 429 and 5xx answers, expired and dropped watches.
"""

from __future__ import annotations

import sys

import pytest
from cloudml_testkit import wait_for
from fakecluster import FakeCluster

from jupyter_cloudml.backends.kubernetes import KubernetesBackend, rbac
from jupyter_cloudml.exceptions import QuotaExceeded
from jupyter_cloudml.hub.tenant import NOTEBOOK_ACCOUNT
from jupyter_cloudml.models import (
    JobStatus,
    TrainSpec,
)
from jupyter_cloudml.packaging import package_files

IMAGE = "jupyter-cloudml/trainer:latest"
SERVING_IMAGE = "jupyter-cloudml/serving:latest"
CLAIM = "cloudml-shared"
GPU = "NVIDIA-A100-SXM4-80GB"


@pytest.fixture
def cluster(tmp_path):
    with FakeCluster(
        tmp_path / "cluster", namespace="team-a", gpus=2, gpu_product=GPU,
        images={IMAGE: sys.executable, SERVING_IMAGE: sys.executable},
    ) as fake:  # fmt: skip
        yield fake
        assert not fake.errors, fake.errors  # the emulated cluster itself stayed sound


@pytest.fixture
def shared(cluster, tmp_path):
    folder = tmp_path / "shared"
    folder.mkdir()
    cluster.pvc_dirs[CLAIM] = str(folder)
    return folder


def tenant_kubeconfig(cluster: FakeCluster, namespace: str = "team-a") -> str:
    """A kubeconfig of a tenant's notebook server: its identity holds exactly the Roles the
    hub gives tenants (``rbac.NOTEBOOK_RULES``, and the study driver's), and nothing else."""
    objects = [
        *rbac.identity_objects(NOTEBOOK_ACCOUNT, namespace, rbac.NOTEBOOK_RULES),
        *rbac.study_driver_objects(namespace),
    ]
    for obj in objects:
        cluster.create(obj["kind"].lower() + "s", obj, namespace)
    return str(cluster.kubeconfig_for(namespace, NOTEBOOK_ACCOUNT))


@pytest.fixture
def backend(cluster, shared):
    backend = KubernetesBackend(
        kubeconfig=tenant_kubeconfig(cluster), shared_claim=CLAIM, shared_mount=str(shared)
    )
    yield backend
    backend.close()
    assert not cluster.denied, cluster.denied  # the tenant's Role allowed all the magics did


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


def objects_of(cluster, job_id):
    key = f"cloudml.io/job={job_id}"
    return {
        (plural, o["metadata"]["name"])
        for plural in ("jobs", "pods", "configmaps", "services")
        for o in cluster.objects(plural)
        if key.split("=")[1] == (o["metadata"].get("labels") or {}).get("cloudml.io/job")
    }


TRAINER = """
import os, jupyter_cloudml
print("replica", os.environ["CLOUDML_REPLICA"], "of", os.environ["CLOUDML_JOB_ID"], flush=True)
for step in range(3):
    jupyter_cloudml.report(step=step, loss=1.0 / (step + 1))
print("done", flush=True)
"""


def test_429_and_5xx_are_retried_and_quota_is_explained(backend, cluster):
    backend.list()
    cluster.fail("POST", r"/jobs$", 429, times=2, retry_after=0.1)
    cluster.fail("PATCH", r"/jobs/", 500, times=1)
    job = backend.submit(spec("print(1)"))
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED
    quota = (
        'jobs.batch "x" is forbidden: exceeded quota: gpu-quota, requested: '
        "requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=3, "
        "limited: requests.nvidia.com/gpu=4"
    )
    cluster.fail("POST", r"/jobs$", 403, message=quota, reason="Forbidden")
    refusal = r"asks 2, over quota 'gpu-quota' of the namespace by 1 \(it allows 4, 3 in use\)"
    with pytest.raises(QuotaExceeded, match=refusal):
        backend.submit(spec("print(1)"))


def test_watch_expiry_and_drops_miss_no_transition(backend, cluster):
    job = backend.submit(spec("import time\ntime.sleep(1.5)\nprint('ok')"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    jobs_informer = backend.index.informers[0]
    relists = jobs_informer.relists
    cluster.expire_watches()
    wait_for(lambda: jobs_informer.relists > relists, timeout=10)
    cluster.drop_watches()
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED
