"""The Jupyter server on the Kubernetes backend, on the real control plane: a TensorBoard that
runs as a Deployment in the tenant's namespace is reached through the server (its own route for
TensorBoards on other hosts, with the server's authentication), as a browser reaches it."""

from __future__ import annotations

import asyncio
import json

import pytest
import tornado.httpclient
from k8s_testkit import CLAIM, spec, wait_status

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.models import JobStatus

pytestmark = pytest.mark.controlplane

# (as in test_handlers.py; only modules collected after tests/labextension/ may load it, or the
# lab tests would get pytest-jupyter's autouse event loop)
pytest_plugins = ["pytest_jupyter.jupyter_server"]

TRAINER = "import jupyter_cloudml\njupyter_cloudml.report(step=0, acc=0.5)\n"


@pytest.fixture
def jp_server_config(tenant):
    return {
        "ServerApp": {
            "jpserver_extensions": {"jupyter_cloudml": True, "jupyter_server_proxy": True}
        },
        "CloudML": {"backend": "kubernetes"},
        "KubernetesBackend": {
            "kubeconfig": str(tenant.kubeconfig),
            "shared_claim": CLAIM,
            "shared_mount": str(tenant.shared),
        },
    }


async def test_a_cluster_tensorboard_is_reached_through_the_server(
    jp_fetch, jp_base_url, jp_http_port, kube, tenant
):
    backend = KubernetesBackend(
        kubeconfig=str(tenant.kubeconfig), shared_claim=CLAIM, shared_mount=str(tenant.shared)
    )
    try:
        job = backend.submit(spec(TRAINER))
        wait_status(backend, job.id, JobStatus.SUCCEEDED)
    finally:
        backend.close()
    answer = await jp_fetch("cloudml", "api", "tensorboards", method="POST",
                            body=json.dumps({"jobs": [job.id]}))  # fmt: skip
    board = json.loads(answer.body)
    assert board["url"] == f"cloudml/tensorboards/{board['id']}/"
    for _ in range(600):  # its pod becomes Ready when TensorBoard answers the probe
        deployment = kube.get_object("deployments", board["id"], tenant.namespace) or {}
        if (deployment.get("status") or {}).get("readyReplicas"):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the TensorBoard Deployment never became ready")
    with kube.resolving_services():  # the server resolves the Service as a pod would
        runs = await jp_fetch(*board["url"].rstrip("/").split("/"), "data", "runs")
        assert runs.code == 200 and any(r.startswith(job.id) for r in json.loads(runs.body))
        page = await jp_fetch(*board["url"].rstrip("/").split("/"), "")
        assert b"TensorBoard" in page.body or b"tensorboard" in page.body
        # its fonts from where the page is, inside the proxy, not from the host's root
        assert b"url(font-roboto/" in page.body and b"url(/font-roboto/" not in page.body
    with pytest.raises(tornado.httpclient.HTTPClientError) as unknown:
        await jp_fetch("cloudml", "tensorboards", "tb-000000000000", "data", "runs")
    assert unknown.value.code == 404
    anonymous = tornado.httpclient.AsyncHTTPClient()
    url = f"http://localhost:{jp_http_port}{jp_base_url}{board['url']}data/runs"
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await anonymous.fetch(url, follow_redirects=False)
    assert refused.value.code in (302, 403)  # no token: to the login page, never to TensorBoard
    await jp_fetch("cloudml", "api", "tensorboards", board["id"], method="DELETE")
