"""Faults the real API server cannot be made to produce on demand, injected by a proxy in front
of it (``cluster/faults.py``): 429 and 5xx bursts, watches that expire (410) or drop. The jobs
run on the real control plane all the same."""

from __future__ import annotations

import pytest
from cloudml_testkit import wait_for
from k8s_testkit import CLAIM, refusals, spec, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.models import JobStatus

pytestmark = pytest.mark.realcluster


@pytest.fixture
def proxy(kube):
    from cluster.faults import FaultProxy

    with FaultProxy(kube) as proxy:
        yield proxy


@pytest.fixture
def backend(kube, tenant, proxy):
    backend = KubernetesBackend(
        kubeconfig=str(proxy.kubeconfig(tenant.kubeconfig)),
        shared_claim=CLAIM,
        shared_mount=str(tenant.shared),
    )
    yield backend
    backend.close()
    assert not refusals(kube, tenant.user)


def test_429_and_5xx_bursts_are_retried(backend, proxy):
    backend.list()
    proxy.fail("POST", r"/jobs$", 429, times=2, retry_after=0.1)
    proxy.fail("PATCH", r"/jobs/", 500, times=1)
    job = backend.submit(spec("print(1)"))
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED
    posts = [path for method, path in proxy.requests if method == "POST" and path.endswith("/jobs")]
    assert len(posts) == 3  # two refused, the third passed
    assert all(f.times == 0 for f in proxy.faults)


def test_watch_expiry_and_drops_miss_no_transition(backend, proxy):
    job = backend.submit(spec("import time\ntime.sleep(3)\nprint('ok')"))
    wait_status(backend, job.id, JobStatus.RUNNING)
    jobs_informer = backend.index.informers[0]
    relists = jobs_informer.relists
    proxy.expire_watches()
    wait_for(lambda: jobs_informer.relists > relists, timeout=10)
    proxy.drop_watches()
    assert wait_status(backend, job.id, JobStatus.SUCCEEDED).status is JobStatus.SUCCEEDED
