"""Pure manifest builders for serving a model version: DeploySpec in, plain dicts out.

Two flavours:

* KServe (``inference_service``): one ``serving.kserve.io/v1beta1`` InferenceService per
  deployment. Frameworks with a ``kserve_format`` (``serving.loaders.FRAMEWORKS``) go to
  KServe's own runtimes (``modelFormat``; KServe serves pytorch with TorchServe, which wants a
  ``.mar`` model store: name such frameworks in ``own_server_for`` to run our model server
  instead); ``custom`` runs our model server (``jupyter_cloudml.serving.replica``) in
  ``kserve-container``, where KServe's storage initializer has put the model in
  ``/mnt/models``. Each deploy is a new revision, and KServe splits traffic between the latest
  revision and the one rolled out before it only (``canaryTrafficPercent``, Serverless mode):
  the versions and the split live in the ``cloudml.io/versions`` and ``cloudml.io/traffic``
  annotations.
* Plain (``plain_manifests``), without the KServe CRD: per version a Deployment and a Service
  ``<name>-<version>`` running our model server, and one Service ``<name>`` selecting the
  version that gets every unversioned request (a weighted split needs KServe).

Models are storage URIs: ``pvc://CLAIM/path``, ``gs://``, ``s3://``, ``https://``
(``model_storage_uri`` maps ``job:ID/path`` and paths on the shared volume to ``pvc://``).
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ...exceptions import Conflict, InvalidSpec, Unsupported
from ...models import DeploySpec, ModelFramework
from ...serving.loaders import FRAMEWORKS
from ...serving.replica import replica_command
from ..base import JOB_ID_RE
from .labels import (
    MANAGED_BY,
    MANAGED_BY_KEY,
    TRAFFIC_ANNOTATION,
    VERSION_INFO_ANNOTATION,
    VERSIONS_ANNOTATION,
    deployment_labels,
)
from .names import dns_label
from .training import GPU_RESOURCE, SharedVolume, gpu_placement, resources_for

Manifest = dict[str, Any]

KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
#: KServe's ``modelFormat.name`` of each framework its own runtimes serve.
KSERVE_FORMATS = {f: s.kserve_format for f, s in FRAMEWORKS.items() if s.kserve_format}
#: The container name KServe expects of a custom predictor (it gets the storage initializer).
KSERVE_CONTAINER = "kserve-container"
#: Where KServe's storage initializer leaves the model of ``STORAGE_URI``.
KSERVE_MODEL_DIR = "/mnt/models"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
RAW_DEPLOYMENT = "RawDeployment"
#: Versions kept in ``cloudml.io/versions`` (the newest; an annotation holds 256 KiB in all).
MAX_RECORDED_VERSIONS = 20

DEFAULT_SERVING_IMAGE = "jupyter-cloudml/serving:latest"
SERVER_CONTAINER = "model-server"
#: The model server's port in a pod, the port name, and the Services' port.
SERVING_PORT = 8080
PORT_NAME = "http"
SERVICE_PORT = 80
#: Where the plain flavour mounts (or downloads) the model.
MODEL_MOUNT = "/mnt/models"
READY_PATH = "/v2/models/{name}/ready"
LIVE_PATH = "/v2/health/live"
#: Longest base name: KServe and Knative add suffixes and the namespace to it in host names.
DEPLOYMENT_NAME_MAX = 40

STORAGE_SCHEMES = ("pvc", "gs", "s3", "https")
_PVC_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
#: Run in the plain flavour's init container: copy a model from any fsspec URI to a folder.
_FETCH_SCRIPT = (
    "import sys, fsspec; fs, src = fsspec.core.url_to_fs(sys.argv[1]); dst = sys.argv[2]; "
    "fs.get(src.rstrip('/') + '/', dst + '/', recursive=True) if fs.isdir(src) "
    "else fs.get(src, dst + '/' + src.rstrip('/').rsplit('/', 1)[-1])"
)


def _security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


# --- names ------------------------------------------------------------------------------------


def deployment_name(name: str) -> str:
    """The base object name of a deployment: a DNS-1035 label (Services need a letter first)."""
    return dns_label(name, DEPLOYMENT_NAME_MAX, letter_first=True)


def version_name(name: str, version: str) -> str:
    """The plain flavour's Deployment and Service name of one version: ``<name>-<version>``."""
    return dns_label(f"{deployment_name(name)}-{version}", letter_first=True)


# --- where the model is -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PvcLocation:
    """``pvc://claim/sub/path``: a path inside a PersistentVolumeClaim ('' for its root)."""

    claim: str
    sub_path: str


def parse_pvc_uri(uri: str) -> PvcLocation:
    """The claim and path of a ``pvc://`` URI, checked (no ``..``, a valid claim name)."""
    rest = uri.removeprefix("pvc://")
    claim, _, sub = rest.partition("/")
    if not _PVC_NAME_RE.match(claim) or len(claim) > 253:
        raise InvalidSpec(f"{uri!r}: {claim!r} is not a PersistentVolumeClaim name")
    sub = sub.strip("/")
    if sub and any(part in ("", ".", "..") for part in sub.split("/")):
        raise InvalidSpec(f"{uri!r}: the path in the claim must not hold '.', '..' or '//'")
    return PvcLocation(claim, sub)


def model_storage_uri(
    model: str, *, shared: SharedVolume | None, job_dir: str | None = None
) -> str:
    """Where a pod finds ``model`` (a DeploySpec's), as a storage URI.

    ``job:ID[/path]`` is inside the job's job dir: ``job_dir`` when the job had one (a URI, or
    a path on the shared volume), else ``<shared>/jobs/ID/job_dir``. ``ID`` must already be a
    job id (``Client.deploy`` resolves names). A path on the shared volume becomes
    ``pvc://CLAIM/path``; URIs (pvc, gs, s3, https) are kept; other paths are refused.
    """
    if model.startswith("job:"):
        job_id, _, sub = model[len("job:") :].partition("/")
        if not JOB_ID_RE.match(job_id):
            raise InvalidSpec(f"model {model!r}: give job:JOB_ID[/path] (e.g. job:iris-3f9a1c)")
        if job_dir is None:
            if shared is None:
                raise InvalidSpec(
                    f"model {model!r} is in a job's folder on shared storage, and none is "
                    "configured (c.KubernetesBackend.shared_claim)"
                )
            job_dir = f"{shared.job_folder(job_id)}/job_dir"
        parts = [part for part in sub.split("/") if part]
        if any(part in ("..", ".") for part in parts):
            raise InvalidSpec(f"model {model!r} points outside the job's job dir")
        sub = "/".join(parts)
        base = model_storage_uri(job_dir, shared=shared)
        return f"{base.rstrip('/')}/{sub}" if sub else base
    scheme, sep, _ = model.partition("://")
    if sep:
        if scheme not in STORAGE_SCHEMES:
            accepted = ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
            raise InvalidSpec(f"model {model!r}: a cluster reads models from {accepted} or job:ID")
        if scheme == "pvc":
            parse_pvc_uri(model)
        return model
    if shared is not None and model.startswith("/"):
        path = posixpath.normpath(model)
        root = shared.mount_path.rstrip("/")
        if path == root or path.startswith(root + "/"):
            return f"pvc://{shared.claim}/{path[len(root) :].strip('/')}".rstrip("/")
    raise InvalidSpec(
        f"model {model!r} is a path the cluster cannot read: put it on the shared volume "
        "or object storage, or give job:JOB_ID[/path], pvc://, gs://, s3:// or https://"
    )


@dataclasses.dataclass(frozen=True)
class ModelSource:
    """What a plain serving pod needs for its model: ``path`` is the model server's --model."""

    path: str
    volumes: tuple[Manifest, ...]
    mounts: tuple[Manifest, ...]
    init_containers: tuple[Manifest, ...] = ()


def model_source(
    storage_uri: str, *, image: str, resources: Mapping[str, Any] | None = None
) -> ModelSource:
    """The volume, mount (and download) giving a pod the model at ``storage_uri``.

    ``pvc://claim/sub`` is the claim mounted read-only with ``subPath: sub`` at
    ``/mnt/models/<last part of sub>``; any other URI is copied by an init container (fsspec,
    and the filesystem's driver such as gcsfs or s3fs, must be in ``image``) into an emptyDir.
    """
    if storage_uri.startswith("pvc://"):
        location = parse_pvc_uri(storage_uri)
        volume = {
            "name": "model",
            "persistentVolumeClaim": {"claimName": location.claim, "readOnly": True},
        }
        path = MODEL_MOUNT
        mount: Manifest = {"name": "model", "mountPath": path, "readOnly": True}
        if location.sub_path:
            path = f"{MODEL_MOUNT}/{location.sub_path.rsplit('/', 1)[-1]}"
            mount = {**mount, "mountPath": path, "subPath": location.sub_path}
        return ModelSource(path, (volume,), (mount,))
    fetch: Manifest = {
        "name": "fetch-model",
        "image": image,
        "command": ["python", "-c", _FETCH_SCRIPT, storage_uri, MODEL_MOUNT],
        "volumeMounts": [{"name": "model", "mountPath": MODEL_MOUNT}],
        "securityContext": _security_context(),
    }
    if resources:
        fetch["resources"] = resources
    return ModelSource(
        MODEL_MOUNT,
        ({"name": "model", "emptyDir": {}},),
        ({"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True},),
        (fetch,),
    )


# --- shared pieces ----------------------------------------------------------------------------


def version_record(spec: DeploySpec, created: float) -> dict[str, Any]:
    """How a version is remembered in annotations."""
    return {
        "version": spec.version,
        "model": spec.model,
        "framework": spec.framework.value,
        "created": round(created, 3),
    }


def _server_command(spec: DeploySpec, model_path: str) -> list[str]:
    return replica_command(
        "python",
        name=spec.name,
        version=spec.version,
        framework=spec.framework.value,
        model=model_path,
        port=SERVING_PORT,
        host="0.0.0.0",
        predictor=spec.predictor,
    )


def _json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


# --- KServe -----------------------------------------------------------------------------------


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
    canary, traffic = kserve_split(spec.version, spec.traffic, records, old_traffic)
    if canary is not None and deployment_mode == RAW_DEPLOYMENT:
        raise Unsupported(
            f"KServe splits traffic in Serverless mode only, and {base} runs as "
            f"{RAW_DEPLOYMENT}: deploy {spec.version} with all traffic (no --traffic), "
            "or install KServe with Knative"
        )
    kept = [r for r in records if r.get("version") != spec.version]
    records = [*kept, version_record(spec, created)][-MAX_RECORDED_VERSIONS:]
    annotations = {VERSIONS_ANNOTATION: _json(records), TRAFFIC_ANNOTATION: _json(traffic)}
    if deployment_mode:
        annotations[DEPLOYMENT_MODE_ANNOTATION] = deployment_mode
    predictor: dict[str, Any] = {
        "minReplicas": spec.replicas,
        "maxReplicas": spec.replicas,
        "labels": deployment_labels(base, spec.version),
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
            "command": _server_command(spec, KSERVE_MODEL_DIR),
            "env": [{"name": "STORAGE_URI", "value": storage_uri}],
            "ports": [{"name": "http1", "containerPort": SERVING_PORT, "protocol": "TCP"}],
            "securityContext": _security_context(),
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


# --- plain Deployments and Services -----------------------------------------------------------


def plain_manifests(
    spec: DeploySpec,
    namespace: str,
    *,
    storage_uri: str,
    serving_image: str = DEFAULT_SERVING_IMAGE,
    deployed_versions: Collection[str] = (),
    service_account: str | None = None,
    created: float = 0.0,
) -> list[Manifest]:
    """The new version's Deployment and Service, then the main Service ``<name>``.

    The main Service selects the version given all traffic (by default the new one): while
    another version serves, apply it once the new version's pods are ready, or requests find
    no pod in between. ``deployed_versions`` are the versions the deployment has already.
    """
    target = plain_target_version(spec.version, spec.traffic, deployed_versions)
    return [
        version_deployment(
            spec,
            namespace,
            storage_uri=storage_uri,
            serving_image=serving_image,
            service_account=service_account,
            created=created,
        ),
        version_service(spec.name, spec.version, namespace),
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
) -> Manifest:
    """The Deployment ``<name>-<version>``: ``spec.replicas`` pods of our model server."""
    base = deployment_name(spec.name)
    labels = deployment_labels(base, spec.version)
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
        "command": _server_command(spec, source.path),
        "env": [{"name": "PYTHONUNBUFFERED", "value": "1"}],
        "ports": [{"name": PORT_NAME, "containerPort": SERVING_PORT, "protocol": "TCP"}],
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
        "securityContext": _security_context(),
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
    annotations = {VERSION_INFO_ANNOTATION: _json(version_record(spec, created))}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": version_name(spec.name, spec.version),
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
    service["metadata"]["annotations"] = {TRAFFIC_ANNOTATION: _json({version: 100})}
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
                }
            ],
        },
    }
