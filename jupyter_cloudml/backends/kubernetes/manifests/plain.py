"""A deployment without KServe: one Deployment and Service per version, and a main Service that
selects the version given all traffic."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ....exceptions import InvalidSpec, Unsupported
from ....models import DeploySpec
from ..labels import (
    TRAFFIC_ANNOTATION,
    VERSION_INFO_ANNOTATION,
    deployment_labels,
)
from ..manifests.training import GPU_RESOURCE, gpu_placement, resources_for
from .serving import (
    DEFAULT_SERVING_IMAGE,
    GRPC_PORT,
    GRPC_PORT_NAME,
    LIVE_PATH,
    POD_IP_ENV,
    PORT_NAME,
    READY_PATH,
    SERVER_CONTAINER,
    SERVICE_PORT,
    SERVING_PORT,
    Manifest,
    compact_json,
    deployment_name,
    model_source,
    security_context,
    server_command,
    version_name,
    version_record,
)


def plain_manifests(
    spec: DeploySpec,
    namespace: str,
    *,
    storage_uri: str,
    serving_image: str = DEFAULT_SERVING_IMAGE,
    deployed_versions: Collection[str] = (),
    service_account: str | None = None,
    created: float = 0.0,
    fingerprint: str = "",
) -> list[Manifest]:
    """The new version's Deployment and Service, then the main Service ``<name>``.

    The main Service selects the version given all traffic (by default the new one): while
    another version serves, apply it once the new version's pods are ready, or requests find
    no pod in between. ``deployed_versions`` are the versions the deployment has already.
    """
    target = plain_target_version(spec.target_version, spec.traffic, deployed_versions)
    return [
        version_deployment(
            spec,
            namespace,
            storage_uri=storage_uri,
            serving_image=serving_image,
            service_account=service_account,
            created=created,
            fingerprint=fingerprint,
        ),
        version_service(spec.name, spec.target_version, namespace),
        main_service(spec.name, namespace, target),
    ]


def plain_target_version(
    version: str, traffic: Mapping[str, int], deployed_versions: Collection[str] = ()
) -> str:
    """The version that gets every unversioned request; a split that is not 0/100 is refused."""
    shares = [v for v, p in (dict(traffic) or {version: 100}).items() if p > 0]
    if len(shares) != 1:
        split = ",".join(f"{v}={p}" for v, p in traffic.items())
        raise Unsupported(
            f"--traffic {split} needs a weighted split, which plain Deployments cannot do: "
            "install KServe (with Knative) and deploy with --engine kserve, or send all "
            f"traffic to one version (e.g. --traffic {version}=100); each version stays "
            "reachable on its own Service"
        )
    target = shares[0]
    if target != version and target not in deployed_versions:
        deployed = ", ".join(deployed_versions) or "none yet"
        raise InvalidSpec(f"--traffic names {target}, which is not deployed ({deployed})")
    return target


def version_deployment(
    spec: DeploySpec,
    namespace: str,
    *,
    storage_uri: str,
    serving_image: str = DEFAULT_SERVING_IMAGE,
    service_account: str | None = None,
    created: float = 0.0,
    fingerprint: str = "",
) -> Manifest:
    """The Deployment ``<name>-<version>``: ``spec.replicas`` pods of our model server."""
    base = deployment_name(spec.name)
    labels = deployment_labels(base, spec.target_version)
    resources = resources_for(spec.resources)
    no_gpus = {
        kind: {k: v for k, v in amounts.items() if k != GPU_RESOURCE}
        for kind, amounts in resources.items()
    }
    fetch_resources = {kind: amounts for kind, amounts in no_gpus.items() if amounts}
    source = model_source(storage_uri, image=serving_image, resources=fetch_resources)
    http = {"port": PORT_NAME, "scheme": "HTTP"}
    container: dict[str, Any] = {
        "name": SERVER_CONTAINER,
        "image": serving_image,
        "command": server_command(spec, source.path),
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}, POD_IP_ENV],
        "ports": [
            {"name": PORT_NAME, "containerPort": SERVING_PORT, "protocol": "TCP"},
            {"name": GRPC_PORT_NAME, "containerPort": GRPC_PORT, "protocol": "TCP"},
        ],
        # The model is loaded before the server listens: allow up to 10 minutes for that.
        "startupProbe": {
            "httpGet": {"path": LIVE_PATH, **http},
            "periodSeconds": 5,
            "failureThreshold": 120,
        },
        "readinessProbe": {
            "httpGet": {"path": READY_PATH.format(name=spec.name), **http},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, **http},
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
        "volumeMounts": list(source.mounts),
        "securityContext": security_context(),
    }
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": list(source.volumes),
        **gpu_placement(spec.resources),
    }
    if source.init_containers:
        pod_spec["initContainers"] = list(source.init_containers)
    if service_account:
        pod_spec["serviceAccountName"] = service_account
    annotations = {
        VERSION_INFO_ANNOTATION: compact_json(version_record(spec, created, fingerprint))
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": version_name(spec.name, spec.target_version),
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": annotations,
        },
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 2,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def version_service(name: str, version: str, namespace: str) -> Manifest:
    """The Service ``<name>-<version>``: one version, whatever the split."""
    base = deployment_name(name)
    return _service(version_name(name, version), namespace, deployment_labels(base, version))


def main_service(name: str, namespace: str, version: str) -> Manifest:
    """The Service ``<name>``: every unversioned request goes to ``version``."""
    base = deployment_name(name)
    service = _service(base, namespace, deployment_labels(base, version))
    service["metadata"]["labels"] = deployment_labels(base)
    service["metadata"]["annotations"] = {TRAFFIC_ANNOTATION: compact_json({version: 100})}
    return service


def _service(name: str, namespace: str, selector: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [
                {
                    "name": PORT_NAME,
                    "port": SERVICE_PORT,
                    "targetPort": PORT_NAME,
                    "protocol": "TCP",
                },
                {
                    "name": GRPC_PORT_NAME,
                    "port": GRPC_PORT,
                    "targetPort": GRPC_PORT_NAME,
                    "protocol": "TCP",
                    "appProtocol": "kubernetes.io/h2c",
                },
            ],
        },
    }
