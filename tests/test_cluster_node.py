"""The process node keeps a kubelet's contract with the real API server: pod logs through
``pods/log`` (tail, timestamps, byte limits, follow, the previous container), ConfigMaps and
Secrets as files and variables, the downward API, and an in-cluster identity that is the pod's
own ServiceAccount token."""

from __future__ import annotations

import datetime
import uuid

import pytest
from cloudml_testkit import TRAINER_IMAGE, wait_for

pytestmark = pytest.mark.controlplane

SCRIPT = """
import os, sys, time
for i in range(5):
    print("line", i, flush=True)
print("oops", file=sys.stderr, flush=True)
print("env", os.environ["FROM_SECRET"], os.environ["POD_NAME"], flush=True)
print("file", open("/etc/app/setting").read().strip(), flush=True)
from kubernetes import client, config
config.load_incluster_config()
me = client.CoreV1Api().read_namespaced_pod(os.environ["POD_NAME"], os.environ["POD_NS"])
print("in-cluster", me.spec.service_account_name, flush=True)
"""


@pytest.fixture
def namespace(kube):
    ns = kube.namespace(f"n-{uuid.uuid4().hex[:8]}")
    yield ns
    kube.request("DELETE", f"/api/v1/namespaces/{ns}")


def pod(name: str, ns: str, script: str, restart: str = "Never") -> dict:
    env = [
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "app", "key": "token"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]
    container = {
        "name": "main", "image": TRAINER_IMAGE, "command": ["python", "-c", script], "env": env,
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/app"}],
    }  # fmt: skip
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "restartPolicy": restart,
            "serviceAccountName": "reader",
            "containers": [container],
            "volumes": [{"name": "settings", "configMap": {"name": "app"}}],
        },
    }


def setup(kube, ns: str) -> None:
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "app", "namespace": ns},
            "data": {"setting": "blue"},
        }
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app", "namespace": ns},
            "stringData": {"token": "s3cret"},
        }
    )
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "reader", "namespace": ns},
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "reader", "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "reader", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        }
    )


def phase(kube, ns: str, name: str) -> str:
    return ((kube.get_object("pods", name, ns) or {}).get("status") or {}).get("phase", "")


def test_logs_files_variables_and_in_cluster_identity(kube, namespace):
    setup(kube, namespace)
    kube.apply(pod("p", namespace, SCRIPT))
    wait_for(lambda: phase(kube, namespace, "p") in ("Succeeded", "Failed"), timeout=60)
    text = kube.pod_log(namespace, "p")
    assert phase(kube, namespace, "p") == "Succeeded", text
    lines = text.splitlines()
    assert lines[:5] == [f"line {i}" for i in range(5)] and "oops" in lines
    assert "env s3cret p" in lines and "file blue" in lines and "in-cluster reader" in lines
    assert kube.pod_log(namespace, "p", tailLines=2).splitlines() == lines[-2:]
    stamped = kube.pod_log(namespace, "p", timestamps="true", tailLines=1).split(" ", 1)
    when = datetime.datetime.fromisoformat(stamped[0].replace("Z", "+00:00"))
    assert stamped[1].strip() == lines[-1] and abs(when.timestamp() - _now()) < 120
    assert kube.pod_log(namespace, "p", limitBytes=7) == "line 0\n"


def test_follow_and_the_previous_container(kube, namespace):
    setup(kube, namespace)
    code = (
        "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.3)\n"
    )
    code += "raise SystemExit(1)"
    kube.apply(pod("r", namespace, code, restart="OnFailure"))
    wait_for(lambda: phase(kube, namespace, "r") == "Running", timeout=60)
    followed = kube.pod_log(namespace, "r", follow="true")
    ticks = [ln for ln in followed.splitlines() if ln.startswith("tick")]
    assert ticks == ["tick 0", "tick 1", "tick 2"]

    def restarted() -> bool:
        statuses = (kube.get_object("pods", "r", namespace) or {}).get("status", {})
        return any(c.get("restartCount", 0) >= 1 for c in statuses.get("containerStatuses") or [])

    wait_for(restarted, timeout=60)
    assert "tick 2" in kube.pod_log(namespace, "r", previous="true")


def _now() -> float:
    return datetime.datetime.now(datetime.timezone.utc).timestamp()
