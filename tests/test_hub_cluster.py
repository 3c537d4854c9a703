"""The hub's spawns against the emulated cluster (real HTTP, RBAC and quota admission): the
tenant's namespace set up idempotently, foreign objects left alone, quota refusals on the spawn
form and from the magics, and a tenant's notebook identity doing everything the magics do in
its namespace and nothing outside it."""

from __future__ import annotations

import sys

import pytest
from cloudml_testkit import wait_for
from fakecluster import FakeCluster
from traitlets.config import Config

from jupyter_cloudml.backends.kubernetes import KubernetesBackend
from jupyter_cloudml.backends.kubernetes.api import ApiError
from jupyter_cloudml.exceptions import QuotaExceeded
from jupyter_cloudml.hub.ensure import CREATED, FOREIGN, UNCHANGED, UPDATED
from jupyter_cloudml.hub.manifests import offline_spawner
from jupyter_cloudml.hub.tenant import hub_rbac_objects
from jupyter_cloudml.models import JobStatus, Replicas, Resources, TrainSpec
from jupyter_cloudml.packaging import package_files

IMAGE = "jupyter-cloudml/trainer:latest"
GPU = "NVIDIA-A100-SXM4-80GB"
HUB_NS = "cloudml-hub"


@pytest.fixture
def cluster(tmp_path):
    with FakeCluster(
        tmp_path / "cluster", namespace=HUB_NS, gpus=4, gpu_product=GPU,
        images={IMAGE: sys.executable},
    ) as fake:  # fmt: skip
        for obj in hub_rbac_objects(HUB_NS):  # the hub runs with exactly `cloudml hub rbac`
            fake.create(obj["kind"].lower() + "s", obj)
        yield fake
        assert not fake.errors, fake.errors


def hub_config(cluster, **settings) -> Config:
    config = Config()
    config.CloudMLSpawner.cluster_kubeconfig = str(cluster.kubeconfig_for(HUB_NS, "hub"))
    for key, value in settings.items():
        setattr(config.CloudMLSpawner, key, value)
    return config


def kinds_by_action(outcomes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for outcome in outcomes:
        found.setdefault(outcome.action, []).append(f"{outcome.kind}/{outcome.name}")
    return found


@pytest.mark.asyncio
async def test_spawning_sets_up_the_tenant_namespace_once_and_follows_config(cluster):
    spawner = offline_spawner(hub_config(cluster), "alice.smith")
    ns = spawner.namespace
    await spawner.load_user_options()
    assert cluster.get("namespaces", ns)["metadata"]["annotations"] == {
        "cloudml.io/user": "alice.smith"
    }
    quota = cluster.get("resourcequotas", "cloudml-quota", ns)
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    assert cluster.get("roles", "cloudml-notebook", ns)["rules"]
    assert cluster.get("rolebindings", "cloudml-study-driver", ns)
    assert cluster.get("limitranges", "cloudml-limits", ns)

    again = offline_spawner(hub_config(cluster), "alice.smith")
    outcomes = again.prepare_tenant({}, "server")
    assert set(kinds_by_action(outcomes)) == {UNCHANGED}

    raised = offline_spawner(
        hub_config(cluster, quota={"requests.nvidia.com/gpu": "8", "pods": "50"}), "alice.smith"
    )
    actions = kinds_by_action(raised.prepare_tenant({}, "server"))
    assert actions[UPDATED] == ["ResourceQuota/cloudml-quota"]
    assert cluster.get("resourcequotas", "cloudml-quota", ns)["spec"]["hard"] == {
        "pods": "50",
        "requests.nvidia.com/gpu": "8",
    }
    assert not cluster.denied


@pytest.mark.asyncio
async def test_foreign_objects_are_left_untouched_and_reported(cluster):
    spawner = offline_spawner(hub_config(cluster), "bob")
    ns = spawner.namespace
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    cluster.create("namespaces", namespace)
    theirs = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "cloudml-quota", "namespace": ns},
        "spec": {"hard": {"pods": "3"}},
    }
    cluster.create("resourcequotas", theirs, ns)
    outcomes = spawner.prepare_tenant({}, "server")
    actions = kinds_by_action(outcomes)
    assert actions[FOREIGN] == [f"Namespace/{ns}", "ResourceQuota/cloudml-quota"]
    assert "Role/cloudml-notebook" in actions[CREATED]
    assert cluster.get("resourcequotas", "cloudml-quota", ns)["spec"]["hard"] == {"pods": "3"}
    assert cluster.get("namespaces", ns)["metadata"]["labels"] == {
        "kubernetes.io/metadata.name": ns  # what the API server sets; nothing of ours
    }
    notices = [event["message"] async for event in _first(spawner.progress(), 2)]
    assert notices == [
        f"Namespace {ns} exists and was not created by jupyter-cloudml: left untouched",
        f"ResourceQuota cloudml-quota in namespace {ns} exists and was not created by "
        "jupyter-cloudml: left untouched",
    ]


async def _first(events, n):
    count = 0
    async for event in events:
        yield event
        count += 1
        if count == n:
            return


@pytest.mark.asyncio
async def test_spawn_form_refuses_a_profile_the_quota_cannot_fit_now(cluster):
    config = hub_config(cluster, quota={"requests.nvidia.com/gpu": "2"})
    spawner = offline_spawner(config, "carol")
    spawner.prepare_tenant({}, "server")
    ns = spawner.namespace
    gpu_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "busy", "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": ["python", "-c", "import time; time.sleep(60)"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }
    cluster.create("pods", gpu_pod, ns)
    wait_for(
        lambda: (
            (cluster.get("resourcequotas", "cloudml-quota", ns).get("status") or {})
            .get("used", {})
            .get("requests.nvidia.com/gpu")
            == "1"
        ),
        timeout=10,
    )
    with pytest.raises(QuotaExceeded) as caught:
        await spawner.run_options_from_form({"profile": ["gpu-a100-2"]})
    assert str(caught.value).startswith(
        "profile '2 x A100' does not fit: requests.nvidia.com/gpu: asks 2, over quota "
        f"'cloudml-quota' of namespace {ns} by 1 (it allows 2, 1 in use)"
    )
    assert await spawner.run_options_from_form({"profile": ["gpu-a100-1"]}) == {
        "profile": "gpu-a100-1"
    }


def job(name: str, **fields) -> TrainSpec:
    code = b"import sys, time\nprint('hello from', __name__)\nif sys.argv[1:]: time.sleep(4)\n"
    return TrainSpec(name=name, package=package_files({"main.py": code}, "main"), **fields)


def test_the_notebook_identity_runs_the_magics_in_its_namespace_only(cluster):
    spawner = offline_spawner(hub_config(cluster, quota={"requests.nvidia.com/gpu": "2"}), "dave")
    ns = spawner.namespace
    spawner.prepare_tenant({}, "server")
    notebook = KubernetesBackend(
        kubeconfig=str(cluster.kubeconfig_for(ns, "cloudml-notebook")), namespace=ns, image=IMAGE
    )
    try:
        submitted = notebook.submit(job("hello"))
        wait_for(lambda: notebook.get(submitted.id).status.terminal, timeout=60)
        assert notebook.get(submitted.id).status is JobStatus.SUCCEEDED
        assert any("hello from" in line.text for line in notebook.logs(submitted.id))
        assert [j.id for j in notebook.list().jobs] == [submitted.id]
        notebook.events(submitted.id)
        notebook.delete(submitted.id)

        with pytest.raises(QuotaExceeded) as caught:
            notebook.submit(job("big", replicas=Replicas(workers=2), resources=Resources(gpus=2)))
        assert "requests.nvidia.com/gpu: asks 4, over quota 'cloudml-quota'" in str(caught.value)
        assert "by 2 (it allows 2," in str(caught.value)

        busy = notebook.submit(job("busy", resources=Resources(gpus=1), args=("--sleep",)))
        wait_for(lambda: notebook.get(busy.id).status is JobStatus.RUNNING, timeout=30)
        waits = notebook.submit(job("waits", resources=Resources(gpus=2)))  # fits, not now

        def waiting_for_quota() -> bool:
            return any("waiting for quota" in e.message for e in notebook.events(waits.id))

        wait_for(waiting_for_quota, timeout=30)
        (event,) = [e for e in notebook.events(waits.id) if "waiting" in e.message][:1]
        assert event.message.endswith(
            "waiting for quota: requests.nvidia.com/gpu: asks 2, over quota 'cloudml-quota' "
            "of the namespace by 1 (it allows 2, 1 in use)"
        )
        wait_for(lambda: notebook.get(waits.id).status is JobStatus.SUCCEEDED, timeout=60)
        assert not cluster.denied, cluster.denied
    finally:
        notebook.close()

    elsewhere = KubernetesBackend(
        kubeconfig=str(cluster.kubeconfig_for(ns, "cloudml-notebook")),
        namespace=HUB_NS,
        image=IMAGE,
    )
    try:
        with pytest.raises(ApiError) as refused:
            elsewhere.submit(job("escape"))
        assert refused.value.status == 403
        assert f'User "system:serviceaccount:{ns}:cloudml-notebook" cannot' in str(refused.value)
        assert f'in the namespace "{HUB_NS}"' in str(refused.value)
    finally:
        elsewhere.close()
