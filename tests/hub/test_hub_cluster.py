"""The hub's spawns on Kubernetes' own control plane (the ``kube`` fixture): the tenant's
namespace set up idempotently, foreign objects left alone, quota refusals on the spawn form and
from the magics, a tenant's notebook identity doing everything the magics do in its namespace
and nothing outside it, and KubeSpawner's notebook pod admitted and scheduled.

Every identity is the production one. The hub is the ``hub`` ServiceAccount of its own
namespace, holding exactly ``cloudml hub rbac`` (``hub_rbac_objects``); the notebook server is
the tenant's ``cloudml-notebook`` ServiceAccount, holding only the Roles the spawner made. Each
test has its own hub namespace and usernames, and deletes every namespace it made; refusals are
read from the API server's audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cloudml_testkit import GPU_PRODUCT, TRAINER_IMAGE, wait_for
from k8s_testkit import refusals, service_account
from traitlets.config import Config

from jupyter_cloudml.backends.kubernetes import KubernetesBackend, rbac
from jupyter_cloudml.backends.kubernetes.api import ApiError
from jupyter_cloudml.backends.kubernetes.labels import MANAGED_BY, MANAGED_BY_KEY
from jupyter_cloudml.backends.kubernetes.quota import GPU_QUOTA
from jupyter_cloudml.exceptions import QuotaExceeded
from jupyter_cloudml.hub.ensure import CREATED, FOREIGN, UNCHANGED, UPDATED
from jupyter_cloudml.hub.manifests import offline_spawner
from jupyter_cloudml.hub.spawner import DEFAULT_LIMITS, CloudMLSpawner
from jupyter_cloudml.hub.tenant import (
    HUB_ACCESS_LABEL,
    HUB_ACCOUNT,
    NOTEBOOK_ACCOUNT,
    TENANT_KEY,
    hub_rbac_objects,
)
from jupyter_cloudml.models import JobStatus, Replicas, Resources, TrainSpec
from jupyter_cloudml.packaging import package_files

pytestmark = pytest.mark.controlplane

RBAC_API = "/apis/rbac.authorization.k8s.io/v1"


def wait_allowed(kube, user: str, namespace: str, verb: str, group: str, resource: str) -> None:
    """Until the API server's authorizer lets ``user`` do ``verb`` (RBAC objects made just now
    reach it through its informers, a moment later)."""
    ns_of_account = user.split(":")[2]
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": [
                "system:serviceaccounts",
                f"system:serviceaccounts:{ns_of_account}",
                "system:authenticated",
            ],
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
            },
        },
    }

    def allowed() -> bool:
        answer = kube.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
        return bool(answer["status"].get("allowed"))

    kube.wait(allowed, f"{user} may {verb} {resource}", 20)


@dataclass
class Hub:
    """One hub, as Zero to JupyterHub runs it: its namespace and its ServiceAccount's token."""

    kube: Any
    namespace: str
    kubeconfig: Path
    suffix: str
    #: Tenant namespaces the test's spawners made (deleted after the test).
    tenants: list[str] = field(default_factory=list)

    @property
    def user(self) -> str:
        return service_account(self.namespace, HUB_ACCOUNT)

    def username(self, name: str) -> str:
        """A JupyterHub username unique to this test (the session's cluster is shared)."""
        return f"{name}-{self.suffix}"

    def config(self, **settings: Any) -> Config:
        config = Config()
        config.CloudMLSpawner.cluster_kubeconfig = str(self.kubeconfig)
        for key, value in settings.items():
            setattr(config.CloudMLSpawner, key, value)
        return config

    def spawner(self, username: str, **settings: Any) -> CloudMLSpawner:
        spawner = offline_spawner(self.config(**settings), username)
        if spawner.namespace not in self.tenants:
            self.tenants.append(spawner.namespace)
        return spawner

    def notebook_kubeconfig(self, namespace: str) -> Path:
        """The tenant's notebook identity, once the Roles the spawner made are in force."""
        wait_allowed(
            self.kube,
            service_account(namespace, NOTEBOOK_ACCOUNT),
            namespace,
            "create",
            "batch",
            "jobs",
        )
        return Path(self.kube.service_account_kubeconfig(namespace, NOTEBOOK_ACCOUNT))


@pytest.fixture
def hub(kube) -> Iterator[Hub]:
    suffix = uuid.uuid4().hex[:6]
    ns = kube.namespace(f"cloudml-hub-{suffix}")
    kube.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": HUB_ACCOUNT, "namespace": ns}}
    )  # fmt: skip
    granted = hub_rbac_objects(ns)  # the hub holds exactly `cloudml hub rbac`, nothing more
    for obj in granted:
        kube.request("POST", f"{RBAC_API}/{obj['kind'].lower()}s", obj)
    user = service_account(ns, HUB_ACCOUNT)
    wait_allowed(kube, user, "", "create", "", "namespaces")
    hub = Hub(kube, ns, Path(kube.service_account_kubeconfig(ns, HUB_ACCOUNT)), suffix)
    try:
        yield hub
    finally:
        for namespace in [*hub.tenants, ns]:
            with contextlib.suppress(Exception):
                kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
        for obj in reversed(granted):
            kube.request("DELETE", f"{RBAC_API}/{obj['kind'].lower()}s/{obj['metadata']['name']}")
    assert not refusals(kube, hub.user)  # `cloudml hub rbac` allowed all the hub did


def kinds_by_action(outcomes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for outcome in outcomes:
        found.setdefault(outcome.action, []).append(f"{outcome.kind}/{outcome.name}")
    return found


@pytest.mark.asyncio
async def test_spawning_sets_up_the_tenant_namespace_once_and_follows_config(kube, hub):
    user = hub.username("alice.smith")
    spawner = hub.spawner(user)
    ns = spawner.namespace
    await spawner.load_user_options()
    namespace = kube.get_object("namespaces", ns)
    assert namespace["metadata"]["annotations"] == {"cloudml.io/user": user}
    assert namespace["metadata"]["labels"] == {
        MANAGED_BY_KEY: MANAGED_BY,
        TENANT_KEY: ns,
        HUB_ACCESS_LABEL: "true",
        "kubernetes.io/metadata.name": ns,  # the API server's own
    }
    quota = kube.get_object("resourcequotas", "cloudml-quota", ns)
    assert quota["spec"]["hard"][GPU_QUOTA] == "4"
    nothing = {key: "0" for key in quota["spec"]["hard"]}
    wait_for(lambda: quota_used(kube, ns) == nothing, timeout=20)  # the quota controller's count
    assert kube.get_object("roles", NOTEBOOK_ACCOUNT, ns)["rules"] == rbac.NOTEBOOK_RULES
    assert kube.get_object("roles", rbac.STUDY_DRIVER, ns)["rules"] == rbac.JOB_RULES
    binding = kube.get_object("rolebindings", rbac.STUDY_DRIVER, ns)
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": rbac.STUDY_DRIVER, "namespace": ns}
    ]
    assert kube.get_object("serviceaccounts", NOTEBOOK_ACCOUNT, ns) is not None
    limits = kube.get_object("limitranges", "cloudml-limits", ns)
    assert limits["spec"] == {"limits": [{"type": "Container", **DEFAULT_LIMITS}]}

    again = hub.spawner(user)
    outcomes = again.prepare_tenant({}, "server")
    assert set(kinds_by_action(outcomes)) == {UNCHANGED}

    raised = hub.spawner(user, quota={"requests.nvidia.com/gpu": "8", "pods": "50"})
    actions = kinds_by_action(raised.prepare_tenant({}, "server"))
    assert actions[UPDATED] == ["ResourceQuota/cloudml-quota"]
    assert kube.get_object("resourcequotas", "cloudml-quota", ns)["spec"]["hard"] == {
        "pods": "50",
        "requests.nvidia.com/gpu": "8",
    }

    # Settings the API server stores in its own words: quantities in canonical form, and a
    # LimitRange's defaultRequest defaulted from its default. Set up once, then unchanged.
    worded = {
        "quota": {"requests.cpu": "0.5", "requests.memory": "1024Mi", "pods": "50"},
        "limit_range": {"default": {"memory": "8Gi"}},
    }
    actions = kinds_by_action(hub.spawner(user, **worded).prepare_tenant({}, "server"))
    assert actions[UPDATED] == ["ResourceQuota/cloudml-quota", "LimitRange/cloudml-limits"]
    assert kube.get_object("resourcequotas", "cloudml-quota", ns)["spec"]["hard"] == {
        "pods": "50",
        "requests.cpu": "500m",
        "requests.memory": "1Gi",
    }
    assert kube.get_object("limitranges", "cloudml-limits", ns)["spec"]["limits"] == [
        {"type": "Container", "default": {"memory": "8Gi"}, "defaultRequest": {"memory": "8Gi"}}
    ]
    ours = [("resourcequotas", "cloudml-quota"), ("limitranges", "cloudml-limits")]

    def versions() -> list[str]:
        return [kube.get_object(p, name, ns)["metadata"]["resourceVersion"] for p, name in ours]

    before = versions()
    outcomes = hub.spawner(user, **worded).prepare_tenant({}, "server")
    assert set(kinds_by_action(outcomes)) == {UNCHANGED}
    assert versions() == before  # nothing was written


@pytest.mark.asyncio
async def test_foreign_objects_are_left_untouched_and_reported(kube, hub):
    spawner = hub.spawner(hub.username("bob"))
    ns = spawner.namespace
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    theirs = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "cloudml-quota", "namespace": ns},
        "spec": {"hard": {"pods": "3"}},
    }
    kube.apply(theirs, ns)
    outcomes = spawner.prepare_tenant({}, "server")
    actions = kinds_by_action(outcomes)
    assert actions[FOREIGN] == [f"Namespace/{ns}", "ResourceQuota/cloudml-quota"]
    assert actions[CREATED] == [
        "LimitRange/cloudml-limits",
        f"ServiceAccount/{NOTEBOOK_ACCOUNT}",
        f"Role/{NOTEBOOK_ACCOUNT}",
        f"RoleBinding/{NOTEBOOK_ACCOUNT}",
        f"ServiceAccount/{rbac.STUDY_DRIVER}",
        f"Role/{rbac.STUDY_DRIVER}",
        f"RoleBinding/{rbac.STUDY_DRIVER}",
    ]
    assert kube.get_object("resourcequotas", "cloudml-quota", ns)["spec"]["hard"] == {"pods": "3"}
    namespace = kube.get_object("namespaces", ns)["metadata"]
    assert namespace["labels"] == {
        "kubernetes.io/metadata.name": ns  # what the API server sets; nothing of ours
    }
    assert "annotations" not in namespace
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


def quota_used(kube, ns: str) -> dict[str, str]:
    """What the quota controller counts as used of the tenant's quota (empty until it has)."""
    quota = kube.get_object("resourcequotas", "cloudml-quota", ns) or {}
    return dict((quota.get("status") or {}).get("used") or {})


@pytest.mark.asyncio
async def test_spawn_form_refuses_a_profile_the_quota_cannot_fit_now(kube, hub):
    spawner = hub.spawner(hub.username("carol"), quota={"requests.nvidia.com/gpu": "2"})
    spawner.prepare_tenant({}, "server")
    ns = spawner.namespace
    gpu_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "busy", "namespace": ns},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "containers": [
                {
                    "name": "main",
                    "image": TRAINER_IMAGE,
                    "command": ["python", "-c", "import time; time.sleep(60)"],
                    "resources": {"limits": {"nvidia.com/gpu": "1"}},
                }
            ],
        },
    }
    kube.apply(gpu_pod, ns)
    wait_for(lambda: quota_used(kube, ns).get(GPU_QUOTA) == "1", timeout=20)
    pod = kube.get_object("pods", "busy", ns)
    assert pod["spec"]["nodeName"] == "gpu-node-0"  # it holds one of the node's two GPUs
    with pytest.raises(QuotaExceeded) as caught:
        await spawner.run_options_from_form({"profile": ["gpu-a100-2"]})
    assert str(caught.value).startswith(
        "profile '2 x A100' does not fit: requests.nvidia.com/gpu: asks 2, over quota "
        f"'cloudml-quota' of namespace {ns} by 1 (it allows 2, 1 in use)"
    )
    assert await spawner.run_options_from_form({"profile": ["gpu-a100-1"]}) == {
        "profile": "gpu-a100-1"
    }
    kube.request("DELETE", f"/api/v1/namespaces/{ns}/pods/busy", gracePeriodSeconds=0)


def job(name: str, **fields) -> TrainSpec:
    code = b"import sys, time\nprint('hello from', __name__)\nif sys.argv[1:]: time.sleep(4)\n"
    return TrainSpec(name=name, package=package_files({"main.py": code}, "main"), **fields)


def test_the_notebook_identity_runs_the_magics_in_its_namespace_only(kube, hub):
    spawner = hub.spawner(hub.username("dave"), quota={"requests.nvidia.com/gpu": "2"})
    ns = spawner.namespace
    spawner.prepare_tenant({}, "server")
    kubeconfig = str(hub.notebook_kubeconfig(ns))
    notebook = KubernetesBackend(kubeconfig=kubeconfig, namespace=ns, image=TRAINER_IMAGE)
    try:
        submitted = notebook.submit(job("hello"))
        wait_for(lambda: notebook.get(submitted.id).status.terminal, timeout=60)
        assert notebook.get(submitted.id).status is JobStatus.SUCCEEDED
        assert any("hello from" in line.text for line in notebook.logs(submitted.id))
        assert [j.id for j in notebook.list().jobs] == [submitted.id]
        assert "Scheduled" in [e.reason for e in notebook.events(submitted.id)]
        notebook.delete(submitted.id)

        with pytest.raises(QuotaExceeded) as caught:
            notebook.submit(job("big", replicas=Replicas(workers=2), resources=Resources(gpus=2)))
        assert "requests.nvidia.com/gpu: asks 4, over quota 'cloudml-quota'" in str(caught.value)
        assert "by 2 (it allows 2," in str(caught.value)

        busy = notebook.submit(job("busy", resources=Resources(gpus=1), args=("--sleep",)))
        wait_for(lambda: notebook.get(busy.id).status is JobStatus.RUNNING, timeout=30)
        # The quota controller counts the running pod on its own time: slower under load.
        wait_for(lambda: quota_used(kube, ns).get(GPU_QUOTA) == "1", timeout=60)
        waits = notebook.submit(job("waits", resources=Resources(gpus=2)))  # fits, not now

        def waiting_for_quota() -> bool:
            return any("waiting for quota" in e.message for e in notebook.events(waits.id))

        wait_for(waiting_for_quota, timeout=30)
        (event,) = [e for e in notebook.events(waits.id) if "waiting" in e.message][:1]
        assert event.message.endswith(
            "waiting for quota: requests.nvidia.com/gpu: asks 2, over quota 'cloudml-quota' "
            "of the namespace by 1 (it allows 2, 1 in use)"
        )
        wait_for(lambda: notebook.get(waits.id).status is JobStatus.SUCCEEDED, timeout=90)
        pods = kube.objects("pods", ns, labelSelector=f"cloudml.io/job={waits.id}")
        assert {p["spec"]["nodeName"] for p in pods} == {"gpu-node-0"}
        (pod,) = pods  # the tenant's LimitRange filled in the memory the job did not set
        assert pod["spec"]["containers"][0]["resources"] == {
            "limits": {"cpu": "1", "memory": "8Gi", "nvidia.com/gpu": "2"},
            "requests": {"cpu": "1", "memory": "512Mi", "nvidia.com/gpu": "2"},
        }
        assert pod["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
            "LimitRanger plugin set: memory request for container trainer; "
            "memory limit for container trainer"
        )
    finally:
        notebook.close()
    user = service_account(ns, NOTEBOOK_ACCOUNT)
    assert not refusals(kube, user)  # the Roles the spawner made allowed all the magics did

    elsewhere = KubernetesBackend(
        kubeconfig=kubeconfig, namespace=hub.namespace, image=TRAINER_IMAGE
    )
    try:
        with pytest.raises(ApiError) as refused:
            elsewhere.submit(job("escape"))
        assert refused.value.status == 403
        assert f'User "{user}" cannot' in str(refused.value)
        assert f'in the namespace "{hub.namespace}"' in str(refused.value)
    finally:
        elsewhere.close()
    assert [r.split("?")[0] for r in refusals(kube, user)] == [  # the quota check, then the Job
        f"list /api/v1/namespaces/{hub.namespace}/resourcequotas",
        f"create /apis/batch/v1/namespaces/{hub.namespace}/jobs",
    ]


@pytest.fixture
def kubernetes_asyncio_default():
    """KubeSpawner's client configuration is process-wide: put it back after the test."""
    from kubernetes_asyncio.client import Configuration

    before = Configuration.get_default_copy()
    yield
    Configuration.set_default(before)


@pytest.mark.asyncio
async def test_kubespawner_creates_a_gpu_notebook_pod_the_server_admits_and_schedules(
    kube, hub, kubernetes_asyncio_default
):
    from kubernetes_asyncio import config as kubernetes_config
    from kubespawner.clients import shared_client

    # KubeSpawner's own client as the hub's ServiceAccount (in the hub pod: in-cluster config)
    await kubernetes_config.load_kube_config(config_file=str(hub.kubeconfig))
    spawner = hub.spawner(hub.username("erin"))
    spawner.api = shared_client("CoreV1Api")
    ns = spawner.namespace
    spawner.prepare_tenant({}, "server")
    # A cluster that enforces Pod Security's baseline level on every tenant namespace.
    kube.request(
        "PATCH",
        f"/api/v1/namespaces/{ns}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}},
    )
    spawner.user_options = {"profile": "gpu-a100-1"}
    started = spawner.start()
    messages: list[str] = []
    try:

        async def until_backoff() -> None:
            async for event in spawner.progress():
                messages.append(event["message"])
                if "Back-off pulling image" in event["message"]:
                    return

        await asyncio.wait_for(until_backoff(), timeout=60)
        assert not started.done(), started.exception()  # still waiting for the server to start
        pod = kube.get_object("pods", spawner.pod_name, ns)
        assert pod["spec"]["nodeName"] == "gpu-node-0"
        assert pod["spec"]["serviceAccountName"] == NOTEBOOK_ACCOUNT
        assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": GPU_PRODUCT}
        (container,) = pod["spec"]["containers"]
        assert container["image"] == "jupyter-cloudml/notebook:latest"
        memory = str(24 * 1024**3)  # gpu_mem_guarantee "24G" per GPU, a JupyterHub GiB
        assert container["resources"] == {
            "limits": {"memory": memory, "nvidia.com/gpu": "1"},
            "requests": {"cpu": "4", "memory": memory, "nvidia.com/gpu": "1"},
        }
        (status,) = pod["status"]["containerStatuses"]
        assert status["state"]["waiting"]["reason"] == "ImagePullBackOff"
        # The quota controller counts the running pod on its own time: slower under load.
        wait_for(lambda: quota_used(kube, ns).get(GPU_QUOTA) == "1", timeout=60)
        assert quota_used(kube, ns)["pods"] == "1"
        assert any(
            f"Successfully assigned {ns}/{spawner.pod_name} to gpu-node-0" in m for m in messages
        )
        assert any(
            'Back-off pulling image "jupyter-cloudml/notebook:latest"' in m for m in messages
        )
        await spawner.stop(now=True)
        assert kube.get_object("pods", spawner.pod_name, ns) is None
    finally:
        started.cancel()
        with contextlib.suppress(BaseException):
            await started
        await CloudMLSpawner._stop_all_reflectors()
