"""A deployment as a KServe InferenceService: the newest version as its predictor, the one
before as the canary's other side, the versions recorded in annotations."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ....exceptions import Conflict, InvalidSpec, Unsupported
from ....models import DeploySpec, ModelFramework
from ..labels import (
    MANAGED_BY,
    MANAGED_BY_KEY,
    TRAFFIC_ANNOTATION,
    VERSIONS_ANNOTATION,
    deployment_labels,
)
from ..manifests.training import gpu_placement, resources_for
from .serving import (
    DEFAULT_SERVING_IMAGE,
    DEPLOYMENT_MODE_ANNOTATION,
    GRPC_PORT,
    KSERVE_API_VERSION,
    KSERVE_CONTAINER,
    KSERVE_FORMATS,
    KSERVE_GRPC_PORT_NAME,
    KSERVE_MODEL_DIR,
    MAX_RECORDED_VERSIONS,
    POD_IP_ENV,
    RAW_DEPLOYMENT,
    SERVING_PORT,
    Manifest,
    compact_json,
    deployment_name,
    security_context,
    server_command,
    version_record,
)


def inference_service(
    spec: DeploySpec,
    namespace: str,
    *,
    storage_uri: str,
    previous: Mapping[str, Any] | None = None,
    serving_image: str = DEFAULT_SERVING_IMAGE,
    own_server_for: Collection[ModelFramework] = (),
    deployment_mode: str | None = None,
    service_account: str | None = None,
    created: float = 0.0,
    fingerprint: str = "",
) -> Manifest:
    """The InferenceService serving ``spec`` as its newest revision.

    ``previous`` is the deployment's InferenceService as the cluster has it (None for a first
    version): its annotations say which versions exist and which serves now. A split may name
    the new version and the version rolled out before it only (KServe keeps no other revision
    routable). ``deployment_mode`` (e.g. ``RawDeployment``) becomes KServe's annotation; splits
    need Serverless mode.
    """
    base = deployment_name(spec.name)
    records, old_traffic = _history(previous, base)
    canary, traffic = kserve_split(spec.target_version, spec.traffic, records, old_traffic)
    if canary is not None and deployment_mode == RAW_DEPLOYMENT:
        raise Unsupported(
            f"KServe splits traffic in Serverless mode only, and {base} runs as "
            f"{RAW_DEPLOYMENT}: deploy {spec.target_version} with all traffic (no --traffic), "
            "or install KServe with Knative"
        )
    kept = [r for r in records if r.get("version") != spec.target_version]
    records = [*kept, version_record(spec, created, fingerprint)][-MAX_RECORDED_VERSIONS:]
    annotations = {
        VERSIONS_ANNOTATION: compact_json(records),
        TRAFFIC_ANNOTATION: compact_json(traffic),
    }
    if deployment_mode:
        annotations[DEPLOYMENT_MODE_ANNOTATION] = deployment_mode
    predictor: dict[str, Any] = {
        "minReplicas": spec.replicas,
        "maxReplicas": spec.replicas,
        "labels": deployment_labels(base, spec.target_version),
    }
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    predictor.update(gpu_placement(spec.resources))
    if service_account:
        predictor["serviceAccountName"] = service_account
    resources = resources_for(spec.resources)
    if spec.framework is ModelFramework.CUSTOM or spec.framework in own_server_for:
        container: dict[str, Any] = {
            "name": KSERVE_CONTAINER,
            "image": serving_image,
            "command": server_command(spec, KSERVE_MODEL_DIR),
            "env": [{"name": "STORAGE_URI", "value": storage_uri}, POD_IP_ENV],
            "ports": kserve_ports(deployment_mode),
            "securityContext": security_context(),
        }
        if resources:
            container["resources"] = resources
        predictor["containers"] = [container]
    else:
        model_format = KSERVE_FORMATS.get(spec.framework)
        if model_format is None:
            raise InvalidSpec(
                f"KServe has no runtime here for framework {spec.framework.value!r}: use "
                "--framework custom with --predictor MODULE:CLASS, or --engine plain"
            )
        model: dict[str, Any] = {"modelFormat": {"name": model_format}, "storageUri": storage_uri}
        if resources:
            model["resources"] = resources
        predictor["model"] = model
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": base,
            "namespace": namespace,
            "labels": deployment_labels(base),
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


def kserve_ports(deployment_mode: str | None) -> list[Manifest]:
    """Our model server's ports in an InferenceService: HTTP, and gRPC (KServe's port name
    `grpc-port`) in RawDeployment mode; Knative (Serverless mode) routes one port only."""
    ports = [{"name": "http1", "containerPort": SERVING_PORT, "protocol": "TCP"}]
    if deployment_mode == RAW_DEPLOYMENT:
        ports.append({"name": KSERVE_GRPC_PORT_NAME, "containerPort": GRPC_PORT, "protocol": "TCP"})
    return ports


def kserve_grpc_url(isvc: Mapping[str, Any], namespace: str) -> str | None:
    """The gRPC address of an InferenceService whose predictor is our model server with a
    gRPC port (RawDeployment: KServe's Service ``<name>-predictor`` has each container port)."""
    containers = isvc.get("spec", {}).get("predictor", {}).get("containers") or []
    ports = [p for c in containers for p in c.get("ports") or []]
    if not any(p.get("name") == KSERVE_GRPC_PORT_NAME for p in ports):
        return None
    return f"{isvc['metadata']['name']}-predictor.{namespace}.svc:{GRPC_PORT}"


def kserve_split(
    version: str,
    traffic: Mapping[str, int],
    records: Sequence[Mapping[str, Any]],
    old_traffic: Mapping[str, int],
) -> tuple[int | None, dict[str, int]]:
    """``canaryTrafficPercent`` (None: the new revision takes all) and the new split.

    ``records`` are the deployed versions, oldest first (the last is the latest revision);
    ``old_traffic`` is the split in force. KServe routes to the latest revision and to the one
    rolled out before it: the version with all the traffic, or during a canary the other one.
    """
    known = [str(r.get("version")) for r in records]
    serving = {v: p for v, p in old_traffic.items() if p > 0}
    rolled_out: str | None = None
    if len(serving) == 1:
        rolled_out = next(iter(serving))
    elif serving:
        others = [v for v in serving if not known or v != known[-1]]
        rolled_out = max(others or serving, key=lambda v: serving[v])
    wanted = dict(traffic) or {version: 100}
    shares = {v: p for v, p in wanted.items() if p > 0}
    if len(shares) > 2:
        split = ",".join(f"{v}={p}" for v, p in shares.items())
        raise InvalidSpec(
            f"--traffic {split} splits between {len(shares)} versions at once; KServe splits "
            f"between the version being deployed and the one serving before it only (e.g. "
            f"--traffic {version}=10,{rolled_out or 'v1'}=90)"
        )
    for other in shares:
        if other != version and other not in known:
            deployed = ", ".join(known) or "none yet"
            raise InvalidSpec(f"--traffic names {other}, which is not deployed ({deployed})")
    others = [v for v in shares if v != version]
    if others and others[0] != rolled_out:
        other = others[0]
        pair = (
            f"{version} and {rolled_out}, the version rolled out before it,"
            if rolled_out
            else (f"{version} and the version serving now, and none does,")
        )
        raise InvalidSpec(
            f"KServe splits traffic between {pair} only, so {other} cannot get a share: "
            f"first send all traffic to {other} (cloudml models update NAME --traffic "
            f"{other}=100), then deploy {version} with --traffic {version}=P,{other}=100-P"
        )
    share = wanted.get(version, 0)
    if share >= 100 or rolled_out is None:
        return None, {version: 100}
    return share, {version: share, rolled_out: 100 - share}


def _history(
    previous: Mapping[str, Any] | None, base: str
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The version records and the split of an existing InferenceService."""
    if previous is None:
        return [], {}
    metadata = previous.get("metadata") or {}
    if (metadata.get("labels") or {}).get(MANAGED_BY_KEY) != MANAGED_BY:
        raise Conflict(
            f"an InferenceService {base} exists that jupyter-cloudml does not manage: "
            "choose another deployment name, or remove it"
        )
    annotations = metadata.get("annotations") or {}
    try:
        records = json.loads(annotations.get(VERSIONS_ANNOTATION) or "[]")
        traffic = json.loads(annotations.get(TRAFFIC_ANNOTATION) or "{}")
        ok = isinstance(records, list) and all(isinstance(r, dict) for r in records)
        ok = ok and isinstance(traffic, dict)
        ok = ok and all(isinstance(p, int) for p in traffic.values())
    except ValueError:
        ok = False
    if not ok:
        raise Conflict(
            f"InferenceService {base} has unreadable {VERSIONS_ANNOTATION} or "
            f"{TRAFFIC_ANNOTATION} annotations: fix or remove them"
        )
    return records, traffic
