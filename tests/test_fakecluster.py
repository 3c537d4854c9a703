"""The fake cluster itself, exercised through the official ``kubernetes`` client over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from fakecluster import FakeCluster
from fakecluster.quantity import Quantity
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from jupyter_cloudml.backends.kubernetes.quota import QUOTA_RE

NS = "team-a"
IMAGE = "python:3.11-slim"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (.*)$")
ISVC = ("serving.kserve.io", "v1beta1", "inferenceservices")
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[FakeCluster]:
    crds = ("serving.kserve.io/v1beta1/inferenceservices",)
    with FakeCluster(
        tmp_path, namespace=NS, gpus=4, images={IMAGE: sys.executable}, crds=crds
    ) as c:
        yield c
        assert c.errors == []


@pytest.fixture
def api(cluster: FakeCluster) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


def job_manifest(name: str, code: str, **spec: Any) -> dict[str, Any]:
    """An Indexed Job running ``python -c code`` (one completion unless told)."""
    completions = spec.pop("completions", 1)
    container = {
        "name": "trainer",
        "image": spec.pop("image", IMAGE),
        "command": ["python", "-c", code],
    }
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "completionMode": "Indexed",
            "completions": completions,
            "parallelism": spec.pop("parallelism", completions),
            "backoffLimit": spec.pop("backoffLimit", 0),
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    **spec.pop("pod", {}),
                },
            },
            **spec,
        },
    }


def condition(obj: dict[str, Any] | None, kind: str, status: str = "True") -> dict[str, Any] | None:
    """The object's condition of that type and status, if any."""
    for cond in (obj or {}).get("status", {}).get("conditions") or []:
        if cond["type"] == kind and cond["status"] == status:
            return dict(cond)
    return None


def job_pods(cluster: FakeCluster, job: str) -> list[dict[str, Any]]:
    """The pods of a Job (by the ``job-name`` label Kubernetes gives them)."""
    return [
        p
        for p in cluster.objects("pods", NS)
        if (p["metadata"].get("labels") or {}).get("job-name") == job
    ]


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


# --- API server semantics ------------------------------------------------------------------------


def test_create_get_list_patch_delete(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    for name, labels in [("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {})]:
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": name, "labels": labels}, "data": {"k": name}}
        )
    a = core.read_namespaced_config_map("a", NS)
    assert a.metadata.namespace == NS and len(a.metadata.uid) == 36
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        cluster.get("configmaps", "a")["metadata"]["creationTimestamp"],
    )

    def names(selector: str) -> list[str]:
        return [
            i.metadata.name
            for i in core.list_namespaced_config_map(NS, label_selector=selector).items
        ]

    assert names("tier=web") == ["a"]
    assert names("tier!=web") == ["b", "c"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c"]
    assert names("tier in (db, web),env notin (dev)") == ["a", "b"]
    assert names("tier notin (web)") == ["b", "c"]
    by_field = core.list_namespaced_config_map(NS, field_selector="metadata.name=b")
    assert [i.metadata.name for i in by_field.items] == ["b"]
    listing = json.loads(core.list_namespaced_config_map(NS, _preload_content=False).data)
    assert listing["kind"] == "ConfigMapList" and listing["apiVersion"] == "v1"
    assert int(listing["metadata"]["resourceVersion"]) >= int(a.metadata.resource_version)
    with pytest.raises(ApiException) as bad:
        core.list_namespaced_config_map(NS, label_selector="a in b")
    assert bad.value.status == 400

    before = int(a.metadata.resource_version)
    patched = core.patch_namespaced_config_map(
        "a", NS, {"metadata": {"labels": {"env": None}}, "data": {"x": "1"}}
    )
    assert patched.metadata.labels == {"tier": "web"} and patched.data == {"k": "a", "x": "1"}
    assert int(patched.metadata.resource_version) > before
    assert cluster.request_headers[-1]["Content-Type"] == "application/strategic-merge-patch+json"
    json_patched = core.patch_namespaced_config_map(
        "a", NS, [{"op": "replace", "path": "/data/x", "value": "2"}]
    )
    assert json_patched.data["x"] == "2"
    assert cluster.request_headers[-1]["Content-Type"] == "application/json-patch+json"

    stale = {"metadata": {"name": "a", "resourceVersion": str(before)}, "data": {}}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("a", NS, stale)
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "a"}})
    assert exists.value.status == 409 and json.loads(exists.value.body)["reason"] == "AlreadyExists"

    core.delete_namespaced_config_map("b", NS)
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_config_map("b", NS)
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'configmaps "b" not found'
    core.delete_collection_namespaced_config_map(NS, label_selector="tier=web")
    assert [o["metadata"]["name"] for o in cluster.objects("configmaps", NS)] == ["c"]
    with pytest.raises(ApiException) as nowhere:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "z"}})
    assert nowhere.value.status == 404


def test_generate_name_validation_and_status_subresource(
    cluster: FakeCluster, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    body = job_manifest("ignored", "pass", suspend=True)
    body["metadata"] = {"generateName": "train-"}
    job = batch.create_namespaced_job(NS, body)
    assert re.fullmatch(r"train-[a-z0-9]{5}", job.metadata.name)
    assert job.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": job.metadata.uid
    }
    assert job.spec.template.metadata.labels["job-name"] == job.metadata.name
    labelled = batch.patch_namespaced_job(
        job.metadata.name, NS, {"metadata": {"labels": {"x": "y"}}}
    )
    assert labelled.metadata.labels["x"] == "y" and labelled.metadata.generation == 1
    resized = batch.patch_namespaced_job(job.metadata.name, NS, {"spec": {"parallelism": 2}})
    assert resized.metadata.generation == 2
    with pytest.raises(ApiException) as invalid:
        batch.create_namespaced_job(NS, job_manifest("Bad_Name", "pass"))
    assert invalid.value.status == 422

    service = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
    core.create_namespaced_service(NS, service)
    lb = {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}
    ignored = core.patch_namespaced_service("svc", NS, lb)
    assert not (
        ignored.status and ignored.status.load_balancer and ignored.status.load_balancer.ingress
    )
    core.patch_namespaced_service_status("svc", NS, lb)
    assert cluster.get("services", "svc")["status"] == lb["status"]  # type: ignore[index]


def test_watch_with_and_without_resource_version(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    core.create_namespaced_config_map(NS, {"metadata": {"name": "one", "labels": {"w": "y"}}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "other"}})
    listing = core.list_namespaced_config_map(NS, label_selector="w=y")
    version = listing.metadata.resource_version
    core.patch_namespaced_config_map("one", NS, {"data": {"a": "1"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "two", "labels": {"w": "y"}}})
    core.patch_namespaced_config_map("other", NS, {"data": {"a": "1"}})
    core.delete_namespaced_config_map("one", NS)

    fresh = watch.Watch().stream(
        core.list_namespaced_config_map, NS, label_selector="w=y", timeout_seconds=1
    )
    assert [(e["type"], e["object"].metadata.name) for e in fresh] == [("ADDED", "two")]

    resumed = watch.Watch().stream(
        core.list_namespaced_config_map,
        NS,
        label_selector="w=y",
        resource_version=version,
        timeout_seconds=1,
    )
    events = [
        (e["type"], e["object"].metadata.name, int(e["object"].metadata.resource_version))
        for e in resumed
    ]
    assert [e[:2] for e in events] == [("MODIFIED", "one"), ("ADDED", "two"), ("DELETED", "one")]
    assert [e[2] for e in events] == sorted(e[2] for e in events) and events[0][2] > int(version)


def test_expired_and_dropped_watches(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, {"metadata": {"name": "cm"}})
    version = core.list_namespaced_config_map(NS).metadata.resource_version
    stream = core.list_namespaced_config_map(
        NS, watch=True, resource_version=version, _preload_content=False
    )
    core.patch_namespaced_config_map("cm", NS, {"data": {"a": "1"}})
    cluster.wait_for(lambda: cluster.store.watchers, what="the watch to be open")
    cluster.expire_watches()
    lines = [json.loads(line) for line in stream.read().splitlines()]
    assert lines[0]["type"] == "MODIFIED"
    assert lines[1]["type"] == "ERROR" and lines[1]["object"]["code"] == 410
    assert lines[1]["object"]["reason"] == "Expired"
    assert lines[1]["object"]["message"].startswith("too old resource version: ")
    with pytest.raises(
        ApiException
    ) as gone:  # the client retries once from its version, then gives up
        list(watch.Watch().stream(core.list_namespaced_config_map, NS, resource_version=version))
    assert gone.value.status == 410

    stream = core.list_namespaced_config_map(NS, watch=True, _preload_content=False)
    assert json.loads(stream.readline())["type"] == "ADDED"
    cluster.drop_watches()
    with pytest.raises(urllib3.exceptions.HTTPError):
        while stream.read(1024):
            pass


def test_garbage_collection_by_owner_references(
    cluster: FakeCluster, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    owners = {}
    for name in ("bg", "orphan", "fg"):
        owners[name] = batch.create_namespaced_job(NS, job_manifest(name, "pass", suspend=True))
        ref = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": name,
            "uid": owners[name].metadata.uid,
        }
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": f"{name}-cm", "ownerReferences": [ref]}}
        )
        grandchild = {"apiVersion": "v1", "kind": "ConfigMap", "name": f"{name}-cm"}
        grandchild["uid"] = cluster.get("configmaps", f"{name}-cm")["metadata"]["uid"]
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": f"{name}-cm2", "ownerReferences": [grandchild]}}
        )

    batch.delete_namespaced_job("bg", NS, propagation_policy="Background")
    cluster.wait_for(
        lambda: not cluster.get("configmaps", "bg-cm") and not cluster.get("configmaps", "bg-cm2")
    )

    _, _, headers = batch.delete_namespaced_job_with_http_info("orphan", NS)
    assert "child pods are preserved by default" in headers["Warning"]  # the default for Jobs
    deletes = [
        i
        for i, r in enumerate(cluster.requests)
        if r == ("DELETE", f"/apis/batch/v1/namespaces/{NS}/jobs/orphan")
    ]
    assert "propagationPolicy" not in cluster.request_params[deletes[0]]  # the client sends none
    cluster.wait_for(lambda: cluster.get("jobs", "orphan") is None)
    time.sleep(0.3)
    orphan = cluster.get("configmaps", "orphan-cm")
    assert orphan is not None and "ownerReferences" not in orphan["metadata"]

    deleting = batch.delete_namespaced_job("fg", NS, propagation_policy="Foreground")
    assert "foregroundDeletion" in deleting["metadata"]["finalizers"]
    cluster.wait_for(lambda: cluster.get("jobs", "fg") is None)
    assert (
        cluster.get("configmaps", "fg-cm") is None and cluster.get("configmaps", "fg-cm2") is None
    )


def test_namespace_deletion_removes_its_objects(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    core.create_namespace({"metadata": {"name": "scratch"}})
    core.create_namespaced_config_map("scratch", {"metadata": {"name": "inside"}})
    assert core.read_namespace("scratch").status.phase == "Active"
    assert core.delete_namespace("scratch")["status"]["phase"] == "Terminating"
    cluster.wait_for(lambda: cluster.get("namespaces", "scratch") is None)
    assert cluster.objects("configmaps", "scratch") == []


def test_discovery(cluster: FakeCluster, api: client.ApiClient, tmp_path: Path) -> None:
    groups = client.ApisApi(api).get_api_versions()
    names = {g.name for g in groups.groups}
    assert {"batch", "apps", "serving.kserve.io"} <= names
    resources = client.BatchV1Api(api).get_api_resources()
    assert "jobs" in {r.name for r in resources.resources}
    assert "pods/status" in {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    with FakeCluster(tmp_path / "plain", namespace=NS) as plain:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=str(plain.kubeconfig), client_configuration=configuration
        )
        with client.ApiClient(configuration) as other:
            with pytest.raises(ApiException) as missing:
                client.CustomObjectsApi(other).get_api_resources("serving.kserve.io", "v1beta1")
            assert missing.value.status == 404
            listed = {g.name for g in client.ApisApi(other).get_api_versions().groups}
            assert "serving.kserve.io" not in listed


# --- jobs and the kubelet ----------------------------------------------------------------------


def test_indexed_job_runs_pods_for_real(
    cluster: FakeCluster, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    code = "print('hi from', __import__('os').environ['JOB_COMPLETION_INDEX'])"
    manifest = job_manifest("hello", code, completions=2, pod={"subdomain": "hello-svc"})
    batch.create_namespaced_job(NS, manifest)
    job = cluster.wait_for(
        lambda: condition(cluster.get("jobs", "hello"), "Complete") and cluster.get("jobs", "hello")
    )
    status = job["status"]
    assert (
        status["succeeded"] == 2 and status["completedIndexes"] == "0-1" and "failed" not in status
    )
    assert status["startTime"] and status["completionTime"]
    pods = sorted(job_pods(cluster, "hello"), key=lambda p: p["metadata"]["name"])
    assert [p["status"]["phase"] for p in pods] == ["Succeeded", "Succeeded"]
    for index, pod in enumerate(pods):
        meta, spec = pod["metadata"], pod["spec"]
        assert re.fullmatch(rf"hello-{index}-[a-z0-9]{{5}}", meta["name"])
        assert meta["labels"]["batch.kubernetes.io/job-completion-index"] == str(index)
        assert meta["annotations"]["batch.kubernetes.io/job-completion-index"] == str(index)
        assert meta["labels"]["job-name"] == "hello" and meta["labels"]["app"] == "hello"
        assert meta["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
        assert meta["ownerReferences"][0]["controller"] is True
        assert spec["hostname"] == f"hello-{index}" and spec["subdomain"] == "hello-svc"
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
        log = core.read_namespaced_pod_log(meta["name"], NS, timestamps=True, container="trainer")
        stamped = STAMPED.match(log.splitlines()[0])
        assert stamped and stamped[1] == f"hi from {index}"
        assert core.read_namespaced_pod_log(meta["name"], NS) == f"hi from {index}\n"
    reasons = {e["reason"] for e in cluster.events()}
    assert {"SuccessfulCreate", "Scheduled", "Started", "Completed"} <= reasons
    # the typed client decodes what the fake serves
    typed = batch.read_namespaced_job("hello", NS)
    assert [c.type for c in typed.status.conditions] == ["SuccessCriteriaMet", "Complete"]
    listed = core.list_namespaced_pod(NS, label_selector="job-name=hello").items
    assert {p.status.container_statuses[0].state.terminated.exit_code for p in listed} == {0}
    events = core.list_namespaced_event(NS, field_selector="involvedObject.name=hello").items
    assert {e.reason for e in events} == {"SuccessfulCreate", "Completed"}
    assert all(e.involved_object.uid == typed.metadata.uid and e.count >= 1 for e in events)


def test_logs_follow_tail_and_errors(
    cluster: FakeCluster, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    code = "import time\nfor i in range(4):\n    print('line', i)\n    time.sleep(0.3)"
    batch.create_namespaced_job(NS, job_manifest("talk", code))
    pod = cluster.wait_for(
        lambda: [p for p in job_pods(cluster, "talk") if p["status"]["phase"] == "Running"]
    )[0]
    name = pod["metadata"]["name"]
    stream = core.read_namespaced_pod_log(
        name, NS, follow=True, timestamps=True, _preload_content=False, _request_timeout=20
    )
    arrivals = []
    for line in stream.stream(1024):
        arrivals.extend((time.monotonic(), piece) for piece in line.decode().splitlines())
    texts = [STAMPED.match(piece)[1] for _, piece in arrivals]  # type: ignore[index]
    assert texts == [f"line {i}" for i in range(4)]
    assert arrivals[-1][0] - arrivals[0][0] > 0.3  # streamed as written, not at the end
    assert core.read_namespaced_pod_log(name, NS, tail_lines=1) == "line 3\n"
    assert core.read_namespaced_pod_log(name, NS, since_seconds=600).count("\n") == 4
    with pytest.raises(ApiException) as unknown:
        core.read_namespaced_pod_log("nope", NS)
    assert unknown.value.status == 404


def test_backoff_limit(
    cluster: FakeCluster, batch: client.BatchV1Api, core: client.CoreV1Api
) -> None:
    batch.create_namespaced_job(
        NS, job_manifest("flaky", "import sys; sys.exit(1)", backoffLimit=1)
    )
    job = cluster.wait_for(
        lambda: condition(cluster.get("jobs", "flaky"), "Failed") and cluster.get("jobs", "flaky")
    )
    assert condition(job, "Failed")["reason"] == "BackoffLimitExceeded"  # type: ignore[index]
    assert job["status"]["failed"] == 2
    pods = job_pods(cluster, "flaky")
    assert len(pods) == 2 and {p["status"]["phase"] for p in pods} == {"Failed"}
    assert all(
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "0" for p in pods
    )
    assert {
        p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] for p in pods
    } == {1}
    # every state the pods went through decodes with the typed client, in version order
    history = watch.Watch().stream(
        core.list_namespaced_pod, NS, resource_version="1", timeout_seconds=1
    )
    phases = [(e["type"], e["object"].status.phase) for e in history]
    assert phases[0] == ("ADDED", "Pending") and ("MODIFIED", "Running") in phases
    assert phases.count(("MODIFIED", "Failed")) == 2


def test_pod_failure_policy_fails_at_once(cluster: FakeCluster, batch: client.BatchV1Api) -> None:
    policy = {
        "rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2, 126, 127]}}]
    }
    batch.create_namespaced_job(
        NS, job_manifest("usage", "raise SystemExit(2)", backoffLimit=5, podFailurePolicy=policy)
    )
    job = cluster.wait_for(
        lambda: condition(cluster.get("jobs", "usage"), "Failed") and cluster.get("jobs", "usage")
    )
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "PodFailurePolicy"
    assert "failed with exit code 2 matching FailJob rule at index 0" in failed["message"]
    assert len(job_pods(cluster, "usage")) == 1


def test_suspend_kills_and_resume_restarts(cluster: FakeCluster, batch: client.BatchV1Api) -> None:
    batch.create_namespaced_job(NS, job_manifest("sleepy", "import time; time.sleep(60)"))
    cluster.wait_for(
        lambda: [p for p in job_pods(cluster, "sleepy") if p["status"]["phase"] == "Running"]
    )
    pids = list(cluster.pids)
    assert pids and all(alive(pid) for pid in pids)
    batch.patch_namespaced_job("sleepy", NS, {"spec": {"suspend": True}})
    job = cluster.wait_for(
        lambda: (
            condition(cluster.get("jobs", "sleepy"), "Suspended")
            and not job_pods(cluster, "sleepy")
            and cluster.get("jobs", "sleepy")
        )
    )
    assert not any(alive(pid) for pid in pids)
    assert "failed" not in job["status"] and "active" not in job["status"]
    batch.patch_namespaced_job("sleepy", NS, {"spec": {"suspend": False}})
    cluster.wait_for(
        lambda: [p for p in job_pods(cluster, "sleepy") if p["status"]["phase"] == "Running"]
    )
    resumed = cluster.get("jobs", "sleepy")
    conditions = resumed["status"]["conditions"]  # type: ignore[index]
    suspended = next(c for c in conditions if c["type"] == "Suspended")
    assert suspended["status"] == "False" and suspended["reason"] == "JobResumed"


def test_active_deadline(cluster: FakeCluster, batch: client.BatchV1Api) -> None:
    batch.create_namespaced_job(
        NS, job_manifest("slow", "import time; time.sleep(60)", activeDeadlineSeconds=1)
    )
    job = cluster.wait_for(
        lambda: condition(cluster.get("jobs", "slow"), "Failed") and cluster.get("jobs", "slow")
    )
    assert condition(job, "Failed")["reason"] == "DeadlineExceeded"  # type: ignore[index]
    assert not job_pods(cluster, "slow") and not any(alive(pid) for pid in cluster.pids)


def test_delete_pod_terminates_gracefully(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    code = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    print('got SIGTERM'); time.sleep(1); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready'); time.sleep(60)"
    )
    pod = {
        "metadata": {"name": "solo"},
        "spec": {
            "containers": [{"name": "main", "image": IMAGE, "command": ["python", "-c", code]}]
        },
    }
    core.create_namespaced_pod(NS, pod)
    cluster.wait_for(lambda: "ready" in cluster.logs("solo"))
    seen: list[str] = []
    deleted = core.delete_namespaced_pod("solo", NS)
    assert deleted.metadata.deletion_timestamp is not None
    start = time.monotonic()
    cluster.wait_for(
        lambda: seen.append(cluster.logs("solo")) or cluster.get("pods", "solo") is None
    )
    assert any("got SIGTERM" in text for text in seen)
    assert 0.9 < time.monotonic() - start < 4
    assert not any(alive(pid) for pid in cluster.pids)


def test_volumes_env_and_api_access_from_pods(
    cluster: FakeCluster, core: client.CoreV1Api, batch: client.BatchV1Api, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    cluster.pvc_dirs["data"] = shared
    code = (
        "import os, pathlib\n"
        "from kubernetes import client, config\n"
        "config.load_kube_config()\n"
        "pkg = pathlib.Path(os.environ['PKG'])\n"
        "out = pathlib.Path(os.environ['OUT']) / 'result.txt'\n"
        "blob = (pathlib.Path('/opt/code') / 'blob.bin').read_bytes()\n"
        "out.write_text(pkg.read_text() + blob.hex())\n"
        "client.CoreV1Api().create_namespaced_config_map(os.environ['POD_NAMESPACE'], "
        "{'metadata': {'name': 'from-' + os.environ['POD_NAME'].split('-')[0]}})\n"
        "print(os.getcwd(), os.environ['HOSTNAME'])"
    )
    container = {
        "command": ["python", "-c", code],
        "workingDir": "/work",
        "env": [
            {"name": "PKG", "value": "/opt/code/hello.txt"},
            {"name": "OUT", "value": "/mnt/shared"},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "volumeMounts": [
            {"name": "code", "mountPath": "/opt/code"},
            {"name": "shared", "mountPath": "/mnt/shared"},
            {"name": "work", "mountPath": "/work"},
        ],
    }
    volumes = [
        {"name": "code", "configMap": {"name": "code"}},
        {"name": "shared", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "work", "emptyDir": {}},
    ]
    batch.create_namespaced_job(
        NS, job_manifest("vols", code, container=container, pod={"volumes": volumes})
    )
    pod = cluster.wait_for(lambda: job_pods(cluster, "vols"))[0]
    cluster.wait_for(
        lambda: any(e["reason"] == "FailedMount" for e in cluster.events(pod["metadata"]["name"]))
    )
    core.create_namespaced_config_map(
        NS,
        {
            "metadata": {"name": "code"},
            "data": {"hello.txt": "hi:"},
            "binaryData": {"blob.bin": "AAE="},
        },
    )
    cluster.wait_for(
        lambda: condition(cluster.get("jobs", "vols"), "Complete"), what="the job to complete"
    )
    assert (shared / "result.txt").read_text() == "hi:0001"
    assert cluster.get("configmaps", "from-vols") is not None
    cwd, hostname = cluster.logs(pod["metadata"]["name"]).split()
    assert Path(cwd).is_relative_to(cluster.workdir) and hostname == "vols-0"


# --- scheduling and images ----------------------------------------------------------------------


def test_gpu_capacity_and_node_selector(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    def pod(name: str, gpus: int, selector: dict[str, str] | None = None) -> dict[str, Any]:
        container = {
            "name": "main",
            "image": IMAGE,
            "command": ["python", "-c", "import time; time.sleep(60)"],
        }
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
        return {
            "metadata": {"name": name},
            "spec": {"containers": [container], "nodeSelector": selector or {}},
        }

    core.create_namespaced_pod(NS, pod("big", 3))
    core.create_namespaced_pod(NS, pod("more", 2))
    core.create_namespaced_pod(
        NS, pod("h100", 1, {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"})
    )
    core.create_namespaced_pod(
        NS,
        pod(
            "a100",
            1,
            {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "kubernetes.io/os": "linux"},
        ),
    )
    cluster.wait_for(lambda: cluster.get("pods", "a100")["status"].get("phase") == "Running")  # type: ignore[index]
    more = cluster.wait_for(lambda: condition(cluster.get("pods", "more"), "PodScheduled", "False"))
    assert more["reason"] == "Unschedulable"
    assert more["message"] == "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    h100 = cluster.wait_for(lambda: condition(cluster.get("pods", "h100"), "PodScheduled", "False"))
    assert (
        h100["message"]
        == "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
    )
    node = core.read_node("fake-node")
    assert node.status.capacity["nvidia.com/gpu"] == "4"
    assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-80GB"
    assert core.read_namespaced_pod("more", NS).status.conditions[0].reason == "Unschedulable"
    warnings = {(e["reason"], e["type"]) for e in cluster.events("more")}
    assert ("FailedScheduling", "Warning") in warnings
    core.delete_namespaced_pod("big", NS, grace_period_seconds=0)
    cluster.wait_for(lambda: cluster.get("pods", "more")["spec"].get("nodeName") == "fake-node")  # type: ignore[index]


def test_unknown_image(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    body = {
        "metadata": {"name": "ghost"},
        "spec": {"containers": [{"name": "trainer", "image": "nope/nope:1"}]},
    }
    core.create_namespaced_pod(NS, body)

    def waiting() -> dict[str, Any] | None:
        pod = cluster.get("pods", "ghost") or {}
        statuses = pod.get("status", {}).get("containerStatuses") or [{}]
        return statuses[0].get("state", {}).get("waiting")

    backoff = cluster.wait_for(lambda: (w := waiting()) and w["reason"] == "ImagePullBackOff" and w)
    assert backoff["message"] == 'Back-off pulling image "nope/nope:1"'
    assert cluster.get("pods", "ghost")["status"]["phase"] == "Pending"  # type: ignore[index]
    warnings = [e["message"] for e in cluster.events("ghost") if e["type"] == "Warning"]
    assert any(m.startswith('Failed to pull image "nope/nope:1": ') for m in warnings)
    assert "Error: ErrImagePull" in warnings and "Error: ImagePullBackOff" in warnings
    with pytest.raises(ApiException) as early:
        core.read_namespaced_pod_log("ghost", NS)
    assert early.value.status == 400
    assert "is waiting to start" in json.loads(early.value.body)["message"]


def test_log_of_pod_not_started_yet(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    volumes = [{"name": "code", "configMap": {"name": "absent"}}]
    container = {"name": "trainer", "image": IMAGE, "command": ["python", "-c", "pass"]}
    container["volumeMounts"] = [{"name": "code", "mountPath": "/code"}]
    core.create_namespaced_pod(
        NS, {"metadata": {"name": "early"}, "spec": {"containers": [container], "volumes": volumes}}
    )
    cluster.wait_for(lambda: cluster.get("pods", "early")["status"].get("containerStatuses"))  # type: ignore[index]
    with pytest.raises(ApiException) as early:
        core.read_namespaced_pod_log("early", NS)
    message = json.loads(early.value.body)["message"]
    assert message == 'container "trainer" in pod "early" is waiting to start: ContainerCreating'


# --- faults and the API server's availability ---------------------------------------------------


def test_fault_injection(
    cluster: FakeCluster, core: client.CoreV1Api, batch: client.BatchV1Api
) -> None:
    # urllib3 (under the client) retries a 429 carrying Retry-After by itself, 3 times
    cluster.fail("GET", r"/configmaps$", 429, times=4, retry_after=0)
    with pytest.raises(ApiException) as busy:
        core.list_namespaced_config_map(NS)
    assert busy.value.status == 429 and busy.value.headers["Retry-After"] == "0"
    assert json.loads(busy.value.body)["reason"] == "TooManyRequests"
    assert core.list_namespaced_config_map(NS).items == []
    gets = [r for r in cluster.requests if r == ("GET", f"/api/v1/namespaces/{NS}/configmaps")]
    assert len(gets) == 5
    cluster.fail("GET", r"/pods$", 503, retry_after=2.5)
    with pytest.raises(urllib.error.HTTPError) as unavailable:  # no retries here
        urllib.request.urlopen(f"{cluster.url}/api/v1/namespaces/{NS}/pods")
    assert unavailable.value.code == 503 and unavailable.value.headers["Retry-After"] == "2"
    assert json.loads(unavailable.value.read())["reason"] == "ServiceUnavailable"
    cluster.fail("*", r"/configmaps", 500)
    with pytest.raises(ApiException) as broken:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "x"}})
    assert broken.value.status == 500
    cluster.fail("POST", r"/jobs$", 409)
    with pytest.raises(ApiException) as clash:
        batch.create_namespaced_job(NS, job_manifest("j", "pass"))
    assert clash.value.status == 409
    cluster.fail("POST", r"/jobs$", 403)
    with pytest.raises(ApiException) as quota:
        batch.create_namespaced_job(NS, job_manifest("j", "pass"))
    body = json.loads(quota.value.body)
    assert quota.value.status == 403 and body["reason"] == "Forbidden"
    assert re.search(
        r'jobs "j" is forbidden: exceeded quota: [^,]+, requested: .+, used: .+, limited: ',
        body["message"],
    )
    assert cluster.get("jobs", "j") is None


def test_stop_and_start_apiserver(cluster: FakeCluster, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(NS, {"metadata": {"name": "kept"}})
    url = cluster.url
    cluster.stop_apiserver()
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        core.read_namespaced_config_map("kept", NS, _request_timeout=2)
    cluster.start_apiserver()
    assert cluster.url == url
    assert core.read_namespaced_config_map("kept", NS).metadata.name == "kept"


# --- other controllers --------------------------------------------------------------------------


def test_deployment(cluster: FakeCluster, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "srv", "image": IMAGE}]},
            },
        },
    }
    apps.create_namespaced_deployment(NS, body)

    def status() -> dict[str, Any]:
        return cluster.get("deployments", "web")["status"]  # type: ignore[index]

    cluster.wait_for(
        lambda: status().get("readyReplicas") == 2 and status().get("availableReplicas") == 2
    )
    assert status()["observedGeneration"] == 1 and status()["updatedReplicas"] == 2
    typed = apps.read_namespaced_deployment("web", NS)
    assert typed.status.ready_replicas == 2 and {c.type for c in typed.status.conditions} == {
        "Available",
        "Progressing",
    }
    ready_pods = client.CoreV1Api(api).list_namespaced_pod(NS, label_selector="app=web").items
    assert all(
        p.status.phase == "Running" and p.status.container_statuses[0].ready for p in ready_pods
    )
    assert condition(cluster.get("deployments", "web"), "Available")
    pods = cluster.objects("pods", NS)
    assert len(pods) == 2 and all(
        p["metadata"]["ownerReferences"][0]["kind"] == "Deployment" for p in pods
    )
    assert cluster.pids == []  # deployments' pods do not run processes
    apps.patch_namespaced_deployment("web", NS, {"spec": {"replicas": 3}})
    cluster.wait_for(lambda: status().get("readyReplicas") == 3)
    old = {p["metadata"]["name"] for p in cluster.objects("pods", NS)}
    apps.patch_namespaced_deployment(
        "web",
        NS,
        {"spec": {"template": {"spec": {"containers": [{"name": "srv", "image": "python:3.12"}]}}}},
    )
    cluster.wait_for(
        lambda: status().get("observedGeneration") == 3 and status().get("updatedReplicas") == 3
    )
    assert old <= {
        p["metadata"]["name"] for p in cluster.objects("pods", NS)
    }  # the new image never pulls
    assert status()["readyReplicas"] == 3
    apps.delete_namespaced_deployment("web", NS)
    cluster.wait_for(lambda: not cluster.objects("pods", NS))
    body["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as mismatch:
        apps.create_namespaced_deployment(NS, body)
    assert mismatch.value.status == 422


def test_inference_service(cluster: FakeCluster, api: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(api)
    body = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "iris"},
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "pvc://models/v1"}
            }
        },
    }
    custom.create_namespaced_custom_object(*ISVC[:2], NS, ISVC[2], body)

    def isvc() -> dict[str, Any]:
        return cluster.get("inferenceservices", "iris")  # type: ignore[return-value]

    cluster.wait_for(lambda: condition(isvc(), "Ready"))
    status = isvc()["status"]
    assert status["url"] == f"http://iris.{NS}.example.com" and status["address"]["url"]
    assert condition(isvc(), "PredictorReady")
    assert status["components"]["predictor"]["traffic"] == [
        {"revisionName": "iris-predictor-00001", "percent": 100, "latestRevision": True}
    ]
    patch = {
        "spec": {
            "predictor": {"canaryTrafficPercent": 20, "model": {"storageUri": "pvc://models/v2"}}
        }
    }
    custom.patch_namespaced_custom_object(*ISVC[:2], NS, ISVC[2], "iris", patch)
    assert cluster.request_headers[-1]["Content-Type"] == "application/merge-patch+json"

    def traffic() -> list[dict[str, Any]]:
        return isvc()["status"]["components"]["predictor"]["traffic"]

    cluster.wait_for(lambda: len(traffic()) == 2)
    assert {(t["revisionName"], t["percent"], t["latestRevision"]) for t in traffic()} == {
        ("iris-predictor-00002", 20, True),
        ("iris-predictor-00001", 80, False),
    }
    broken = dict(body, metadata={"name": "bad"})
    broken["spec"] = {"predictor": {"model": {"storageUri": "fail://nothing"}}}
    custom.create_namespaced_custom_object(*ISVC[:2], NS, ISVC[2], broken)
    ready = cluster.wait_for(
        lambda: condition(cluster.get("inferenceservices", "bad"), "Ready", "False")
    )
    assert ready["reason"] == "ModelLoadFailed" and "fail://nothing" in ready["message"]


def test_job_ttl_after_finished(cluster: FakeCluster, batch: client.BatchV1Api) -> None:
    batch.create_namespaced_job(NS, job_manifest("brief", "pass", ttlSecondsAfterFinished=0))
    cluster.wait_for(
        lambda: cluster.get("jobs", "brief") is None and not job_pods(cluster, "brief")
    )
    assert [e["reason"] for e in cluster.events("brief") if e["reason"] == "Completed"] == [
        "Completed"
    ]


def test_no_process_survives_the_cluster(tmp_path: Path) -> None:
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True); time.sleep(60)"
    )
    with FakeCluster(tmp_path, namespace=NS, images={IMAGE: sys.executable}) as cluster:
        cluster.create("jobs", job_manifest("lingering", code))
        pod = cluster.wait_for(
            lambda: [
                p
                for p in job_pods(cluster, "lingering")
                if cluster.logs(p["metadata"]["name"]).strip()
            ]
        )[0]
        grandchild = int(cluster.logs(pod["metadata"]["name"]).split()[0])
        pids = [*cluster.pids, grandchild]
        assert all(alive(pid) for pid in pids)
    assert not any(alive(pid) for pid in pids)


# --- identities, RBAC, quota and limit ranges ---------------------------------------------------

SA_USER = f"system:serviceaccount:{NS}:runner"


@contextlib.contextmanager
def as_service_account(
    cluster: FakeCluster, namespace: str, name: str
) -> Iterator[client.ApiClient]:
    """An API client authenticated as the service account (from ``kubeconfig_for``)."""
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(cluster.kubeconfig_for(namespace, name)),
        client_configuration=configuration,
    )
    with client.ApiClient(configuration) as api_client:
        yield api_client


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    """The HTTP status and ``Status`` body of a call that must fail."""
    with pytest.raises(ApiException) as failure:
        call(*args, **kwargs)
    return failure.value.status, json.loads(failure.value.body)


def rule(group: str, resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs, **extra}


def bind(
    rbac: client.RbacAuthorizationV1Api,
    name: str,
    role: tuple[str, str],
    subject: dict[str, str],
    namespace: str | None = None,
) -> None:
    """A RoleBinding in ``namespace`` (a ClusterRoleBinding without one) of ``role``
    (kind, name) to one subject."""
    body = {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role[0], "name": role[1]},
        "subjects": [subject],
    }
    if namespace is None:
        rbac.create_cluster_role_binding(body)
    else:
        rbac.create_namespaced_role_binding(namespace, body)


def sa(name: str, namespace: str = NS) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


def sleeper(name: str, **resources: dict[str, str]) -> dict[str, Any]:
    """A pod that sleeps, with the given ``requests``/``limits``."""
    container = {
        "name": "main",
        "image": IMAGE,
        "command": ["python", "-c", "import time; time.sleep(60)"],
    }
    if resources:
        container["resources"] = resources
    return {"metadata": {"name": name}, "spec": {"containers": [container]}}


def test_rbac_allows_what_a_role_grants_and_refuses_the_rest(
    cluster: FakeCluster, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rules = [
        rule("batch", ["jobs"], ["create", "get", "list"]),
        rule("", ["pods"], ["get", "list", "watch"]),
        rule("", ["pods/log"], ["get"]),
        rule("", ["configmaps"], ["list"]),
        rule("", ["configmaps"], ["get"], resourceNames=["settings"]),
    ]
    rbac.create_namespaced_role(NS, {"metadata": {"name": "runner"}, "rules": rules})
    bind(rbac, "runner", ("Role", "runner"), sa("runner"), NS)
    core.create_namespaced_config_map(NS, {"metadata": {"name": "settings"}})
    core.create_namespaced_config_map(NS, {"metadata": {"name": "other"}})
    code = "print('hello')"
    talker = sleeper("talker")
    talker["spec"]["containers"][0]["command"] = ["python", "-c", code]
    talker["spec"]["restartPolicy"] = "Never"
    core.create_namespaced_pod(NS, talker)
    cluster.wait_for(lambda: "hello" in cluster.logs("talker"))

    with as_service_account(cluster, NS, "runner") as api_sa:
        batch_sa, core_sa = client.BatchV1Api(api_sa), client.CoreV1Api(api_sa)
        batch_sa.create_namespaced_job(NS, job_manifest("j", "pass", suspend=True))
        assert [j.metadata.name for j in batch_sa.list_namespaced_job(NS).items] == ["j"]
        assert core_sa.read_namespaced_pod_log("talker", NS) == "hello\n"
        assert core_sa.read_namespaced_config_map("settings", NS).metadata.name == "settings"
        assert len(core_sa.list_namespaced_config_map(NS).items) == 2
        assert "batch" in {g.name for g in client.ApisApi(api_sa).get_api_versions().groups}
        assert client.CoreApi(api_sa).get_api_versions().versions == ["v1"]

        status, body = refused(batch_sa.delete_namespaced_job, "j", NS)
        assert status == 403 and body["reason"] == "Forbidden" and body["code"] == 403
        assert body["message"] == (
            f'jobs.batch "j" is forbidden: User "{SA_USER}" cannot delete resource "jobs" '
            f'in API group "batch" in the namespace "{NS}"'
        )
        assert body["details"] == {"name": "j", "group": "batch", "kind": "jobs"}
        _, body = refused(core_sa.create_namespaced_config_map, NS, {"metadata": {"name": "x"}})
        assert body["message"] == (  # a create names no object: the URL has none
            f'configmaps is forbidden: User "{SA_USER}" cannot create resource "configmaps" '
            f'in API group "" in the namespace "{NS}"'
        )
        assert body["details"] == {"kind": "configmaps"}
        _, body = refused(core_sa.read_namespaced_config_map, "other", NS)
        assert body["message"].startswith(
            f'configmaps "other" is forbidden: User "{SA_USER}" cannot get resource "configmaps"'
        )
        status, body = refused(
            lambda: list(
                watch.Watch().stream(core_sa.list_namespaced_config_map, NS, timeout_seconds=1)
            )
        )
        assert (
            status == 403
            and 'cannot watch resource "configmaps" in API group ""' in (body["message"])
        )
        _, body = refused(core_sa.delete_collection_namespaced_config_map, NS)
        assert 'cannot deletecollection resource "configmaps"' in body["message"]
        _, body = refused(core_sa.list_namespace)
        assert body["message"] == (
            f'namespaces is forbidden: User "{SA_USER}" cannot list resource "namespaces" '
            'in API group "" at the cluster scope'
        )
        _, body = refused(core_sa.read_namespace, NS)  # a namespace is in itself
        assert body["message"] == (
            f'namespaces "{NS}" is forbidden: User "{SA_USER}" cannot get resource '
            f'"namespaces" in API group "" in the namespace "{NS}"'
        )
        _, body = refused(core_sa.list_namespaced_pod, "default")
        assert body["message"].endswith('in the namespace "default"')
        _, body = refused(core_sa.list_pod_for_all_namespaces)
        assert body["message"].endswith("at the cluster scope")
        _, body = refused(core_sa.patch_namespaced_pod, "talker", NS, {"metadata": {}})
        assert 'cannot patch resource "pods"' in body["message"]
    assert cluster.get("jobs", "j") is not None and cluster.get("configmaps", "x") is None
    assert [(d.verb, d.group, d.resource, d.namespace, d.name) for d in cluster.denied] == [
        ("delete", "batch", "jobs", NS, "j"),
        ("create", "", "configmaps", NS, ""),
        ("get", "", "configmaps", NS, "other"),
        ("watch", "", "configmaps", NS, ""),
        ("deletecollection", "", "configmaps", NS, ""),
        ("list", "", "namespaces", "", ""),
        ("get", "", "namespaces", NS, NS),
        ("list", "", "pods", "default", ""),
        ("list", "", "pods", "", ""),
        ("patch", "", "pods", NS, "talker"),
    ]
    assert {d.user for d in cluster.denied} == {SA_USER}

    rbac.create_namespaced_role(
        NS, {"metadata": {"name": "pod-reader"}, "rules": [rule("", ["pods"], ["get"])]}
    )
    bind(rbac, "peeker", ("Role", "pod-reader"), sa("peeker"), NS)
    with as_service_account(cluster, NS, "peeker") as api_peeker:
        core_peeker = client.CoreV1Api(api_peeker)
        assert core_peeker.read_namespaced_pod("talker", NS).metadata.name == "talker"
        _, body = refused(core_peeker.read_namespaced_pod_log, "talker", NS)
        assert body["message"] == (
            f'pods "talker" is forbidden: User "system:serviceaccount:{NS}:peeker" cannot get '
            f'resource "pods/log" in API group "" in the namespace "{NS}"'
        )
        assert body["details"] == {"name": "talker", "kind": "pods"}
    # the admin (the cluster's own kubeconfig) is never refused
    assert {n.metadata.name for n in core.list_namespace().items} >= {NS, "default"}
    assert len(cluster.denied) == 11


def test_rbac_binding_scopes_and_authentication(
    cluster: FakeCluster, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    core.create_namespace({"metadata": {"name": "team-b"}})
    for ns in (NS, "team-b"):
        core.create_namespaced_secret(ns, {"metadata": {"name": f"s-{ns}"}})
    reader = rule("", ["configmaps"], ["get", "list"])
    rbac.create_cluster_role({"metadata": {"name": "cm-reader"}, "rules": [reader]})
    rbac.create_cluster_role(
        {"metadata": {"name": "secret-lister"}, "rules": [rule("", ["secrets"], ["list"])]}
    )
    bind(rbac, "elsewhere", ("ClusterRole", "cm-reader"), sa("runner"), "team-b")
    group = {"kind": "Group", "name": f"system:serviceaccounts:{NS}"}
    bind(rbac, "team-a-secrets", ("ClusterRole", "secret-lister"), group)
    bind(rbac, "broken", ("Role", "ghost"), sa("runner"), NS)
    with as_service_account(cluster, NS, "runner") as api_sa:
        core_sa = client.CoreV1Api(api_sa)
        assert core_sa.list_namespaced_config_map("team-b").items == []
        _, body = refused(core_sa.list_namespaced_config_map, NS)  # granted in team-b only
        assert body["message"] == (
            f'configmaps is forbidden: User "{SA_USER}" cannot list resource "configmaps" in '
            f'API group "" in the namespace "{NS}": RBAC: role.rbac.authorization.k8s.io '
            '"ghost" not found'
        )
        everywhere = core_sa.list_secret_for_all_namespaces().items
        assert {s.metadata.name for s in everywhere} == {f"s-{NS}", "s-team-b"}
        assert [s.metadata.name for s in core_sa.list_namespaced_secret("team-b").items] == [
            "s-team-b"
        ]
        _, body = refused(core_sa.read_namespaced_secret, f"s-{NS}", NS)
        assert 'cannot get resource "secrets"' in body["message"]
    with as_service_account(cluster, "team-b", "runner") as api_other:
        _, body = refused(client.CoreV1Api(api_other).list_namespaced_secret, NS)
        assert 'User "system:serviceaccount:team-b:runner" cannot list' in body["message"]
    assert cluster.objects("clusterroles") and cluster.get("clusterroles", "cluster-admin")

    request = urllib.request.Request(
        f"{cluster.url}/api/v1/namespaces/{NS}/pods", headers={"Authorization": "Bearer nope"}
    )
    with pytest.raises(urllib.error.HTTPError) as unknown:
        urllib.request.urlopen(request)
    assert unknown.value.code == 401
    assert json.loads(unknown.value.read()) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("1000m", "1"),
        ("1.5", "1500m"),
        ("0.5Gi", "512Mi"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1500000", "1500k"),
        ("2", "2"),
        (4, "4"),
        ("0", "0"),
    ],
)
def test_quantities_print_as_the_api_server_writes_them(written: object, canonical: str) -> None:
    assert str(Quantity.parse(written)) == canonical


def test_quota_refuses_pods_over_it_and_reports_usage(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    hard = {"requests.nvidia.com/gpu": "2", "pods": "3", "count/configmaps": "1"}
    core.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "gpu-quota"}, "spec": {"hard": hard}}
    )
    status, body = refused(
        core.create_namespaced_pod, NS, sleeper("big", limits={"nvidia.com/gpu": "4"})
    )
    message = (
        'pods "big" is forbidden: exceeded quota: gpu-quota, requested: '
        "requests.nvidia.com/gpu=4, used: requests.nvidia.com/gpu=0, "
        "limited: requests.nvidia.com/gpu=2"
    )
    assert status == 403 and body["reason"] == "Forbidden" and body["message"] == message
    assert body["details"] == {"name": "big", "kind": "pods"}
    quota = QUOTA_RE.search(body["message"])  # what the backend parses
    assert (
        quota and quota["quota"] == "gpu-quota" and quota["limited"] == "requests.nvidia.com/gpu=2"
    )

    core.create_namespaced_pod(NS, sleeper("one", limits={"nvidia.com/gpu": "1"}))

    def used() -> dict[str, str]:
        return core.read_namespaced_resource_quota("gpu-quota", NS).status.used or {}

    expected = {"requests.nvidia.com/gpu": "1", "pods": "1", "count/configmaps": "0"}
    cluster.wait_for(lambda: used() == expected, what="the quota's usage")
    typed = core.read_namespaced_resource_quota("gpu-quota", NS)
    assert typed.status.hard == hard
    _, body = refused(
        core.create_namespaced_pod, NS, sleeper("two", limits={"nvidia.com/gpu": "2"})
    )
    assert (
        "requested: requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=1, "
        in (body["message"])
    )
    core.create_namespaced_config_map(NS, {"metadata": {"name": "first"}})
    _, body = refused(core.create_namespaced_config_map, NS, {"metadata": {"name": "second"}})
    assert body["message"] == (
        'configmaps "second" is forbidden: exceeded quota: gpu-quota, requested: '
        "count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1"
    )
    core.delete_namespaced_pod("one", NS, grace_period_seconds=0)
    cluster.wait_for(lambda: used().get("pods") == "0" and used()["requests.nvidia.com/gpu"] == "0")
    core.create_namespaced_pod(NS, sleeper("two", limits={"nvidia.com/gpu": "2"}))
    assert cluster.get("pods", "big") is None and cluster.get("configmaps", "second") is None


def test_limit_range_defaults_then_quota_on_cpu_and_memory(
    cluster: FakeCluster, core: client.CoreV1Api
) -> None:
    hard = {"requests.cpu": "1", "limits.memory": "1Gi"}
    core.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "compute"}, "spec": {"hard": hard}}
    )
    _, body = refused(core.create_namespaced_pod, NS, sleeper("bare"))
    assert body["message"] == (
        'pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: main; '
        "requests.cpu for: main"
    )
    limits = {
        "type": "Container",
        "default": {"cpu": "500m", "memory": "512Mi"},
        "defaultRequest": {"cpu": "250m"},
        "max": {"cpu": "1"},
    }
    core.create_namespaced_limit_range(
        NS, {"metadata": {"name": "defaults"}, "spec": {"limits": [limits]}}
    )
    stored = core.read_namespaced_limit_range("defaults", NS).spec.limits[0]
    assert stored.default_request == {"cpu": "250m", "memory": "512Mi"}  # request <- limit
    pod = core.create_namespaced_pod(NS, sleeper("bare"))
    resources = pod.spec.containers[0].resources
    assert resources.requests == {"cpu": "250m", "memory": "512Mi"}
    assert resources.limits == {"cpu": "500m", "memory": "512Mi"}
    assert pod.metadata.annotations["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container main; "
        "cpu, memory limit for container main"
    )
    assert pod.status.qos_class == "Burstable"
    own = core.create_namespaced_pod(NS, sleeper("own", requests={"cpu": "100m"}))
    assert own.spec.containers[0].resources.requests == {"cpu": "100m", "memory": "512Mi"}
    _, body = refused(core.create_namespaced_pod, NS, sleeper("third"))
    assert body["message"] == (
        'pods "third" is forbidden: exceeded quota: compute, requested: limits.memory=512Mi, '
        "used: limits.memory=1Gi, limited: limits.memory=1Gi"
    )
    _, body = refused(core.create_namespaced_pod, NS, sleeper("huge", limits={"cpu": "2"}))
    assert body["message"] == (
        'pods "huge" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    )
    quota = cluster.wait_for(
        lambda: (q := cluster.get("resourcequotas", "compute")) and q.get("status", {}).get("used")
    )
    assert quota == {"requests.cpu": "350m", "limits.memory": "1Gi"}


def test_job_over_quota_records_failed_create_and_runs_once_quota_frees(
    cluster: FakeCluster, core: client.CoreV1Api, batch: client.BatchV1Api
) -> None:
    hard = {"requests.nvidia.com/gpu": "1"}
    core.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "gpus"}, "spec": {"hard": hard}}
    )
    core.create_namespaced_pod(NS, sleeper("hog", limits={"nvidia.com/gpu": "1"}))
    container = {"resources": {"limits": {"nvidia.com/gpu": "1"}}}
    batch.create_namespaced_job(NS, job_manifest("gated", "print('ran')", container=container))

    def failed_creates() -> list[dict[str, Any]]:
        return [e for e in cluster.events("gated") if e["reason"] == "FailedCreate"]

    event = cluster.wait_for(failed_creates, what="a FailedCreate event")[0]
    assert event["type"] == "Warning" and event["source"] == {"component": "job-controller"}
    assert re.fullmatch(
        r'Error creating: pods "gated-0-[a-z0-9]{5}" is forbidden: exceeded quota: gpus, '
        r"requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=1, "
        r"limited: requests.nvidia.com/gpu=1",
        event["message"],
    )
    assert not job_pods(cluster, "gated")
    assert "active" not in cluster.get("jobs", "gated")["status"]  # type: ignore[index]
    core.delete_namespaced_pod("hog", NS, grace_period_seconds=0)
    cluster.wait_for(
        lambda: condition(cluster.get("jobs", "gated"), "Complete"), timeout=20, what="the job"
    )
    assert cluster.logs(job_pods(cluster, "gated")[0]["metadata"]["name"]) == "ran\n"


def test_deployment_over_quota_reports_replica_failure(
    cluster: FakeCluster, api: client.ApiClient, core: client.CoreV1Api
) -> None:
    core.create_namespaced_resource_quota(
        NS, {"metadata": {"name": "pods"}, "spec": {"hard": {"pods": "1"}}}
    )
    labels = {"app": "web"}
    body = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "srv", "image": IMAGE}]},
            },
        },
    }
    client.AppsV1Api(api).create_namespaced_deployment(NS, body)
    failure = cluster.wait_for(
        lambda: condition(cluster.get("deployments", "web"), "ReplicaFailure"),
        what="the ReplicaFailure condition",
    )
    assert failure["reason"] == "FailedCreate"
    assert re.fullmatch(
        r'pods "web-[a-z0-9]+-[a-z0-9]{5}" is forbidden: exceeded quota: pods, '
        r"requested: pods=1, used: pods=1, limited: pods=1",
        failure["message"],
    )
    warnings = [e for e in cluster.events("web") if e["reason"] == "FailedCreate"]
    assert warnings and warnings[0]["message"] == f"Error creating: {failure['message']}"
    assert len(cluster.objects("pods", NS)) == 1
    core.patch_namespaced_resource_quota("pods", NS, {"spec": {"hard": {"pods": "2"}}})
    cluster.wait_for(
        lambda: cluster.get("deployments", "web")["status"].get("readyReplicas") == 2,  # type: ignore[index]
        timeout=20,
    )
    assert not condition(cluster.get("deployments", "web"), "ReplicaFailure")
