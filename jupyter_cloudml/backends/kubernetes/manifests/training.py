"""Pure manifest builders for a training job: TrainSpec in, plain dicts out, in apply order.

A job becomes:

1. a ConfigMap ``<job>-code`` holding the code package (when small; otherwise the package is
   read from ``package_uri``, shared storage any fsspec filesystem can open);
2. a headless Service ``<job>`` giving replicas stable DNS names, when they need each other;
3. one Indexed ``batch/v1`` Job per replica group (chief, worker, ps), named ``<job>-<role>``.
   Kubernetes names each pod's host ``<job>-<role>-<index>``; under the Service's subdomain
   that is ``<job>-<role>-<index>.<job>.<namespace>.svc``, from which the in-pod entrypoint
   derives TF_CONFIG or MASTER_ADDR/RANK/WORLD_SIZE (see ``entrypoint``).

Ownership: every object carries ``app.kubernetes.io/managed-by`` and ``cloudml.io/job``
labels (so ``kubectl delete all,cm -l cloudml.io/job=ID`` removes a job by hand). Owner
references need the owner's uid, which exists only once it is created, so the builders cannot
set them: the backend creates the primary Job (the first Job of the list: chief, else
worker) first, then applies ``owned_by(...)`` to the ConfigMap, the Service and the other
Jobs. Deleting the primary Job (by hand, or by its TTL once finished) then removes
everything, including parameter servers, which never finish by themselves.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from ....exceptions import InvalidSpec
from ....models import LABEL_VALUE_RE, ROLES, Framework, Resources, TrainSpec
from ...common.cluster import needs_addresses
from ...common.launch import google_job_env
from ..labels import JOB_ID_ANNOTATION, job_labels, job_match_labels
from ..names import job_name

Manifest = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class SharedVolume:
    """A ReadWriteMany PVC mounted at the same path in every pod (and the notebook server's):
    job dirs, outputs, large code packages and study journals live there."""

    claim: str
    mount_path: str = "/mnt/cloudml"

    def job_folder(self, job_id: str) -> str:
        return f"{self.mount_path.rstrip('/')}/jobs/{job_id}"


@dataclasses.dataclass(frozen=True)
class PodOptions:
    """Where a job's pods keep their files and under which identity they run."""

    shared: SharedVolume | None = None
    #: ``CLOUDML_JOB_DIR`` when the spec gives none (the job's folder on the shared volume).
    job_dir: str | None = None
    #: ``CLOUDML_OUTPUT_DIR``: where the primary replica leaves returned values and files.
    output_dir: str | None = None
    service_account: str | None = None
    #: Set in every container after the user's variables (e.g. the backend's own settings).
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)


ENTRYPOINT_MODULE = "jupyter_cloudml.backends.kubernetes.entrypoint"
CONTAINER_NAME = "trainer"
PACKAGE_KEY = "package.tar.gz"
PACKAGE_MOUNT = "/opt/cloudml/package"
WORK_MOUNT = "/opt/cloudml/work"
PORT_NAME = "rendezvous"
#: What a dry run shows in place of a secret value.
HIDDEN = "(hidden)"
#: Rendezvous port per framework: TensorFlow's gRPC servers and torch.distributed's store.
PORTS = {Framework.TENSORFLOW: 2222, Framework.PYTORCH: 29500, Framework.GENERIC: 2222}

GPU_RESOURCE = "nvidia.com/gpu"
#: Node label written by NVIDIA GPU feature discovery (GPU operator) with the GPU's product.
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
#: Short GPU names (``--gpu-type a100``, also ``nvidia-tesla-a100``) -> ``gpu.product`` values.
#: Names not in the table are used as the label value as given.
GPU_PRODUCTS = {
    "k80": "Tesla-K80",
    "p4": "Tesla-P4",
    "p100": "Tesla-P100-PCIE-16GB",
    "v100": "Tesla-V100-SXM2-16GB",
    "t4": "Tesla-T4",
    "a10g": "NVIDIA-A10G",
    "a100": "NVIDIA-A100-SXM4-80GB",
    "a100-40gb": "NVIDIA-A100-SXM4-40GB",
    "a100-80gb": "NVIDIA-A100-SXM4-80GB",
    "l4": "NVIDIA-L4",
    "l40s": "NVIDIA-L40S",
    "h100": "NVIDIA-H100-80GB-HBM3",
}
#: Exit codes that mean the command itself is wrong (usage error, not executable, not found):
#: retrying cannot help, so the Job fails at once instead of using up its backoffLimit.
USAGE_EXIT_CODES = [2, 126, 127]


def training_manifests(
    spec: TrainSpec,
    job_id: str,
    namespace: str,
    *,
    image_default: str = "python:3.11-slim",
    ttl_seconds: int = 3600,
    package_in_configmap_max: int = 900_000,
    package_uri: str | None = None,
    pods: PodOptions = PodOptions(),
) -> list[Manifest]:
    """Every object of a training job, in apply order: ConfigMap, Secret (of `--secret`
    values), Service, one Job per role."""
    name = job_name(job_id)
    manifests: list[Manifest] = []
    if package_uri is None:
        size = len(spec.package.archive)
        if size > package_in_configmap_max:
            raise InvalidSpec(
                f"the code package is {size} bytes, more than a ConfigMap holds "
                f"({package_in_configmap_max}); give shared storage for it (a package URI)"
            )
        manifests.append(code_configmap(spec, job_id, namespace))
        package = f"{PACKAGE_MOUNT}/{PACKAGE_KEY}"
    else:
        package = package_uri
    if spec.secrets:
        manifests.append(secret_env(spec, job_id, namespace))
    service = name if needs_service(spec) else None
    if service is not None:
        manifests.append(headless_service(spec, job_id, namespace))
    for role, count in replica_groups(spec):
        manifests.append(
            replica_job(
                spec,
                job_id,
                namespace,
                role,
                count,
                package=package,
                service=service,
                image_default=image_default,
                ttl_seconds=ttl_seconds,
                pods=pods,
            )
        )
    return manifests


def needs_service(spec: TrainSpec) -> bool:
    """Whether replicas need stable DNS names: several of them, or a framework that dials peers."""
    return spec.replicas.total > 1 or needs_addresses(spec.framework)


def replica_groups(spec: TrainSpec) -> list[tuple[str, int]]:
    """(role, count) of each non-empty replica group, the primary role first."""
    return [(role, spec.replicas.count(role)) for role in ROLES if spec.replicas.count(role)]


def code_configmap(spec: TrainSpec, job_id: str, namespace: str) -> Manifest:
    """An immutable ConfigMap ``<job>-code`` holding the gzipped package."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(f"{job_name(job_id)}-code", job_id, namespace, spec),
        "immutable": True,
        "binaryData": {PACKAGE_KEY: base64.b64encode(spec.package.archive).decode("ascii")},
    }


def secret_env(spec: TrainSpec, job_id: str, namespace: str) -> Manifest:
    """An immutable Secret ``<job>-env`` holding the job's secret environment values (its
    replicas read them through ``secretKeyRef``; the job's record keeps the names only)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(secret_name(job_id), job_id, namespace, spec),
        "type": "Opaque",
        "immutable": True,
        "stringData": dict(spec.secrets),
    }


def secret_name(job_id: str) -> str:
    return f"{job_name(job_id)}-env"


def hide_secret_values(manifests: list[Manifest]) -> list[Manifest]:
    """The manifests as a dry run shows them: every Secret's values replaced by a mark."""
    shown = []
    for manifest in manifests:
        if manifest["kind"] == "Secret":
            manifest = copy.deepcopy(manifest)
            manifest["stringData"] = dict.fromkeys(manifest["stringData"], HIDDEN)
        shown.append(manifest)
    return shown


def headless_service(spec: TrainSpec, job_id: str, namespace: str) -> Manifest:
    """A headless Service ``<job>``: DNS for every replica pod, ready or not."""
    port = PORTS[spec.framework]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(job_name(job_id), job_id, namespace, spec),
        "spec": {
            "clusterIP": "None",
            "selector": job_match_labels(job_id),
            "publishNotReadyAddresses": True,
            "ports": [{"name": PORT_NAME, "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


def replica_job(
    spec: TrainSpec,
    job_id: str,
    namespace: str,
    role: str,
    count: int,
    *,
    package: str,
    service: str | None,
    image_default: str = "python:3.11-slim",
    ttl_seconds: int = 3600,
    pods: PodOptions = PodOptions(),
) -> Manifest:
    """The Indexed Job ``<job>-<role>`` running ``count`` replicas of one role."""
    metadata = _metadata(f"{job_name(job_id)}-{role}", job_id, namespace, spec, role)
    container = _container(spec, job_id, namespace, role, package, service, image_default, pods)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    account = pods.service_account or spec.service_account  # a study's driver needs its own
    if account:
        pod_spec["serviceAccountName"] = account
    if pods.shared is not None:
        pod_spec["volumes"].append(
            {"name": "shared", "persistentVolumeClaim": {"claimName": pods.shared.claim}}
        )
    if service is not None:
        pod_spec["subdomain"] = service
    if package.startswith(PACKAGE_MOUNT + "/"):
        pod_spec["volumes"].append(
            {"name": "code", "configMap": {"name": f"{job_name(job_id)}-code"}}
        )
    pod_spec.update(gpu_placement(spec.resources_of(role), spec.node_selector))
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": count,
        "backoffLimit": spec.retries,
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"operator": "In", "values": USAGE_EXIT_CODES},
                },
                {
                    "action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
                },
            ]
        },
        "ttlSecondsAfterFinished": ttl_seconds,
        "template": {
            "metadata": {
                "labels": metadata["labels"],
                "annotations": metadata["annotations"],
            },
            "spec": pod_spec,
        },
    }
    if spec.timeout is not None:
        job_spec["activeDeadlineSeconds"] = math.ceil(spec.timeout)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}


def gpu_placement(res: Resources, node_selector: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Pod spec fields for a pod's GPUs: a node selector on the GPU product (from
    ``--gpu-type``, merged with the user's ``node_selector``, which wins) and a toleration of
    GPU nodes' taint."""
    out: dict[str, Any] = {}
    selector = {GPU_PRODUCT_LABEL: gpu_product(res.gpu_type)} if res.gpu_type else {}
    selector.update(node_selector or {})
    if selector:
        out["nodeSelector"] = selector
    if res.gpus:
        out["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return out


def gpu_product(gpu_type: str) -> str:
    """The ``nvidia.com/gpu.product`` node label value of a GPU type name."""
    key = gpu_type.lower()
    for prefix in ("nvidia-tesla-", "nvidia-"):
        key = key.removeprefix(prefix)
    product = GPU_PRODUCTS.get(key, gpu_type)
    if not LABEL_VALUE_RE.match(product) or not product:
        raise InvalidSpec(f"--gpu-type {gpu_type!r} is not a valid node label value (e.g. a100)")
    return product


def resources_for(res: Resources) -> dict[str, dict[str, str]]:
    """Container requests and limits: cpu (none when 0), memory, ``nvidia.com/gpu``."""
    amounts: dict[str, str] = {}
    if res.cpu > 0:
        amounts["cpu"] = _cpu_quantity(res.cpu)
    if res.memory:
        amounts["memory"] = res.memory
    limits = dict(amounts)
    if res.gpus:
        limits[GPU_RESOURCE] = str(res.gpus)
    out: dict[str, dict[str, str]] = {}
    if amounts:
        out["requests"] = amounts
    if limits:
        out["limits"] = limits
    return out


def owned_by(
    manifest: Manifest,
    owner_name: str,
    owner_kind: str,
    owner_uid: str,
    *,
    owner_api_version: str = "batch/v1",
) -> Manifest:
    """A copy of ``manifest`` owned by an existing object, so deleting that object removes it."""
    owned = copy.deepcopy(manifest)
    owned["metadata"]["ownerReferences"] = [
        {
            "apiVersion": owner_api_version,
            "kind": owner_kind,
            "name": owner_name,
            "uid": owner_uid,
        }
    ]
    return owned


def _container(
    spec: TrainSpec,
    job_id: str,
    namespace: str,
    role: str,
    package: str,
    service: str | None,
    image_default: str,
    pods: PodOptions,
) -> dict[str, Any]:
    port = PORTS[spec.framework]
    env = _env(spec, job_id, namespace, role, package, service, pods)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": spec.image_of(role) or image_default,
        "command": ["python", "-m", ENTRYPOINT_MODULE],
        "env": [{"name": k, "value": v} for k, v in env.items()]
        + [
            {"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(job_id), "key": k}}}
            for k in spec.secrets
        ],
        "ports": [{"name": PORT_NAME, "containerPort": port, "protocol": "TCP"}],
        "volumeMounts": [{"name": "work", "mountPath": WORK_MOUNT}],
    }
    if package.startswith(PACKAGE_MOUNT + "/"):
        container["volumeMounts"].append(
            {"name": "code", "mountPath": PACKAGE_MOUNT, "readOnly": True}
        )
    if pods.shared is not None:
        container["volumeMounts"].append({"name": "shared", "mountPath": pods.shared.mount_path})
    resources = resources_for(spec.resources_of(role))
    if resources:
        container["resources"] = resources
    return container


def _env(
    spec: TrainSpec,
    job_id: str,
    namespace: str,
    role: str,
    package: str,
    service: str | None,
    pods: PodOptions,
) -> dict[str, str]:
    """The user's env, then what the entrypoint reads (which wins)."""
    replicas = spec.replicas
    ours = {
        "CLOUDML_BACKEND": "kubernetes",
        "CLOUDML_JOB_ID": job_id,
        "CLOUDML_JOB_NAME": job_name(job_id),
        "CLOUDML_ROLE": role,
        "CLOUDML_FRAMEWORK": spec.framework.value,
        "CLOUDML_REPLICAS": json.dumps({role: replicas.count(role) for role in ROLES}),
        "CLOUDML_TF_CHIEF": spec.tf_chief_name,
        "CLOUDML_PRIMARY": spec.primary_replica,
        "CLOUDML_SERVICE": service or "",
        "CLOUDML_NAMESPACE": namespace,
        "CLOUDML_PORT": str(PORTS[spec.framework]),
        "CLOUDML_MODULE": spec.package.module,
        "CLOUDML_ARGS": json.dumps(list(spec.args)),
        "CLOUDML_REQUIREMENTS": json.dumps(list(spec.package.requirements)),
        "CLOUDML_PACKAGE": package,
        "CLOUDML_WORKDIR": WORK_MOUNT,
        "CLOUDML_JOB_DIR": spec.job_dir or pods.job_dir or "",
        "CLOUDML_OUTPUT_DIR": pods.output_dir or "",
        "CLOUDML_PRE_COMMAND": spec.pre_command or "",
        "CLOUDML_POST_COMMAND": spec.post_command or "",
    }
    return {**spec.env, **pods.env, **google_job_env(job_id, spec.labels), **ours}


def _metadata(
    name: str, job_id: str, namespace: str, spec: TrainSpec, role: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": job_labels(job_id, role, spec.labels),
        "annotations": {JOB_ID_ANNOTATION: job_id},
    }


def _cpu_quantity(cpu: float) -> str:
    """A CPU count as a Kubernetes quantity: ``2`` or millicores ``500m``."""
    milli = max(1, round(cpu * 1000))
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
