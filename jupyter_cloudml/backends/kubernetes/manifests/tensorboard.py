"""Pure manifest builders for a TensorBoard over jobs: a Deployment and a ClusterIP Service.

The Jupyter server reaches the Service (``http://<id>.<namespace>.svc:6006``) and proxies it
to the browser, so TensorBoard serves at ``/`` (no path prefix). Event files are read from the
shared volume, mounted read-only, or from object storage URIs TensorBoard reads itself.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ....exceptions import InvalidSpec
from ...common.tensorboards import tensorboard_id
from ..labels import JOBS_ANNOTATION, tensorboard_labels
from ..names import dns_label

__all__ = ["TENSORBOARD_PORT", "tensorboard_id", "tensorboard_manifests", "tensorboard_name"]

Manifest = dict[str, Any]

TENSORBOARD_PORT = 6006
PORT_NAME = "http"
CONTAINER_NAME = "tensorboard"
#: Requests and limits of a TensorBoard: little CPU, memory for many event files.
RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "2Gi"},
}


def tensorboard_name(tb_id: str) -> str:
    """The Deployment and Service name of a TensorBoard (ids ``tb-<hex>`` are kept)."""
    return dns_label(tb_id, letter_first=True)


def logdir_spec(logdirs: Mapping[str, str]) -> str:
    """TensorBoard's ``--logdir_spec``: ``name:path,...``, sorted by name."""
    if not logdirs:
        raise InvalidSpec("TensorBoard needs at least one job")
    for name, path in logdirs.items():
        if not name or not path or any(c in f"{name}{path}" for c in ",\n") or ":" in name:
            raise InvalidSpec(f"cannot hand {name}={path!r} to TensorBoard (',' or ':')")
    return ",".join(f"{name}:{path}" for name, path in sorted(logdirs.items()))


def tensorboard_manifests(
    tb_id: str,
    logdirs: Mapping[str, str],
    namespace: str,
    *,
    image: str,
    claim: str | None,
    mount_path: str = "/mnt/cloudml",
    jobs: Sequence[str] | None = None,
    service_account: str | None = None,
) -> list[Manifest]:
    """The Deployment then the Service of TensorBoard ``tb_id`` over ``logdirs`` ({run: path}).

    Paths are as pods see them: under ``mount_path`` when ``claim`` (the shared PVC, mounted
    read-only) is given. ``jobs`` (default: the run names) go in the ``cloudml.io/jobs``
    annotation.
    """
    name = tensorboard_name(tb_id)
    labels = tensorboard_labels(name)
    job_ids = sorted(set(jobs if jobs is not None else logdirs))

    def metadata() -> dict[str, Any]:
        annotations = {JOBS_ANNOTATION: json.dumps(job_ids, separators=(",", ":"))}
        return {
            "name": name,
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": annotations,
        }

    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image,
        "command": [
            "tensorboard",
            "--logdir_spec",
            logdir_spec(logdirs),
            "--bind_all",
            "--port",
            str(TENSORBOARD_PORT),
            "--path_prefix=",
        ],
        "ports": [{"name": PORT_NAME, "containerPort": TENSORBOARD_PORT, "protocol": "TCP"}],
        "readinessProbe": {
            "httpGet": {"path": "/", "port": PORT_NAME, "scheme": "HTTP"},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "resources": copy.deepcopy(RESOURCES),
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    pod_spec: dict[str, Any] = {"enableServiceLinks": False, "containers": [container]}
    if claim:
        pod_spec["volumes"] = [
            {"name": "shared", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        ]
        container["volumeMounts"] = [{"name": "shared", "mountPath": mount_path, "readOnly": True}]
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(labels),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": TENSORBOARD_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }
    return [deployment, service]
