"""What every way of serving a model on Kubernetes shares: names, where the model is (a
job's folder on the shared volume, a PVC, a bucket), the recorded versions, the server command."""

from __future__ import annotations

import dataclasses
import json
import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ....exceptions import InvalidSpec
from ....models import DeploySpec
from ....serving.loaders import FRAMEWORKS
from ....serving.replica import replica_command
from ...base import JOB_ID_RE
from ..manifests.training import SharedVolume
from ..names import dns_label

Manifest = dict[str, Any]


KSERVE_API_VERSION = "serving.kserve.io/v1beta1"


#: KServe's ``modelFormat.name`` of each framework its own runtimes serve.
KSERVE_FORMATS = {f: s.kserve_format for f, s in FRAMEWORKS.items() if s.kserve_format}


#: The container name KServe expects of a custom predictor (it gets the storage initializer).
KSERVE_CONTAINER = "kserve-container"


#: KServe's name for a predictor container's gRPC port (raw deployments).
KSERVE_GRPC_PORT_NAME = "grpc-port"


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


#: The model server's gRPC port (Open Inference Protocol) in a pod and on the Services, and its
#: name; it listens on the pod's IP (`POD_IP`, from the Downward API).
GRPC_PORT = 8081


GRPC_PORT_NAME = "grpc"


POD_IP_ENV = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}


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


def security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def deployment_name(name: str) -> str:
    """The base object name of a deployment: a DNS-1035 label (Services need a letter first)."""
    return dns_label(name, DEPLOYMENT_NAME_MAX, letter_first=True)


def version_name(name: str, version: str) -> str:
    """The plain flavour's Deployment and Service name of one version: ``<name>-<version>``."""
    return dns_label(f"{deployment_name(name)}-{version}", letter_first=True)


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
        "securityContext": security_context(),
    }
    if resources:
        fetch["resources"] = resources
    return ModelSource(
        MODEL_MOUNT,
        ({"name": "model", "emptyDir": {}},),
        ({"name": "model", "mountPath": MODEL_MOUNT, "readOnly": True},),
        (fetch,),
    )


def version_record(spec: DeploySpec, created: float, fingerprint: str = "") -> dict[str, Any]:
    """How a version is remembered in annotations (`fingerprint`: see `common.redeploy`)."""
    record = {
        "version": spec.target_version,
        "model": spec.model,
        "framework": spec.framework.value,
        "created": round(created, 3),
    }
    return {**record, "fingerprint": fingerprint} if fingerprint else record


def server_command(spec: DeploySpec, model_path: str) -> list[str]:
    return replica_command(
        "python",
        name=spec.name,
        version=spec.target_version,
        framework=spec.framework.value,
        model=model_path,
        port=SERVING_PORT,
        host="0.0.0.0",
        predictor=spec.predictor,
        grpc_port=GRPC_PORT,
        grpc_host="$(POD_IP)",
    )


def compact_json(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
