"""`CloudMLSpawner`: KubeSpawner with GPU profiles and one namespace per tenant, set up on spawn.

Everything pod-related is KubeSpawner's own (profiles, user namespaces, the pod manifest); this
class adds the configuration of profiles and quotas, ensures the tenant's namespace objects
before the pod is created, refuses a profile that does not fit the tenant's quota (on the spawn
form and on spawn, naming the quota and by how much), gives the notebook the environment that
makes its magics use the Kubernetes backend in its namespace, and records in the server's state
how long it may stay idle (read by the idle culler, see ``culler``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from typing import Any

from jupyterhub.traitlets import ByteSpecification
from kubespawner import KubeSpawner
from traitlets import Dict, Float, Int, List, Unicode, default

from ..backends.kubernetes import quota as quotas
from ..backends.kubernetes.api import KubeApi
from ..backends.kubernetes.connection import pod_environment
from ..backends.kubernetes.manifests.training import GPU_RESOURCE
from ..exceptions import CloudMLError, NotFound, QuotaExceeded
from . import profiles
from .culler import DEFAULT_IDLE_TIMEOUT, STATE_KEY
from .ensure import Outcome, ensure_objects, foreign
from .tenant import (
    NOTEBOOK_ACCOUNT,
    QUOTA_NAME,
    SHARED_CLAIM_NAME,
    SharedStorage,
    Tenant,
    merged_quota,
    quota_object,
    tenant_objects,
)

DEFAULT_QUOTA = {
    "requests.nvidia.com/gpu": "4",
    "requests.cpu": "32",
    "requests.memory": "256Gi",
    "pods": "100",
}
DEFAULT_LIMITS = {
    "defaultRequest": {"cpu": "250m", "memory": "512Mi"},
    "default": {"memory": "8Gi"},
}
_SHARED_VOLUME = "cloudml-shared"


class CloudMLSpawner(KubeSpawner):
    """Spawns each user's notebook server in the user's own namespace, on a CPU or GPU profile."""

    gpu_types = List(
        Unicode(),
        ["a100"],
        config=True,
        help="""GPU types the cluster has: short names (a100, h100, l4, t4, ...) or values of
        the nodes' nvidia.com/gpu.product label. Each gets a profile per count in gpu_counts;
        [] offers CPU only. Example: c.CloudMLSpawner.gpu_types = ["a100", "l4"]""",
    )
    gpu_counts = List(
        Int(),
        [1, 2, 4, 8],
        config=True,
        help="Numbers of GPUs offered per GPU type. Example: c.CloudMLSpawner.gpu_counts = [1, 4]",
    )
    gpu_cpu_guarantee = Float(
        4.0,
        config=True,
        help="""CPUs guaranteed per GPU in GPU profiles. Example:
        c.CloudMLSpawner.gpu_cpu_guarantee = 8""",
    )
    gpu_mem_guarantee = ByteSpecification(
        "24G",
        config=True,
        help="""Memory guaranteed (and the limit) per GPU in GPU profiles. Example:
        c.CloudMLSpawner.gpu_mem_guarantee = "64G" """,
    )
    quota = Dict(
        DEFAULT_QUOTA,
        config=True,
        help="""Each tenant namespace's ResourceQuota (spec.hard): GPUs, CPU, memory, pods; the
        notebook server counts too. Example:
        c.CloudMLSpawner.quota = {"requests.nvidia.com/gpu": "2", "requests.cpu": "16"}""",
    )
    group_quotas = Dict(
        config=True,
        help="""Per JupyterHub group, quota entries that raise the default for its members (the
        largest of the user's groups wins). Example:
        c.CloudMLSpawner.group_quotas = {"research": {"requests.nvidia.com/gpu": "16"}}""",
    )
    limit_range = Dict(
        DEFAULT_LIMITS,
        config=True,
        help="""The LimitRange of containers in tenant namespaces: defaultRequest and default
        (limits) for containers that set none, e.g. jobs started without --cpu or --memory.
        Example: c.CloudMLSpawner.limit_range = {"defaultRequest": {"cpu": "1"}}""",
    )
    idle_timeout = Int(
        DEFAULT_IDLE_TIMEOUT,
        config=True,
        help="Seconds a CPU server may stay idle before the idle culler stops it.",
    )
    gpu_idle_timeout = Int(
        1800,
        config=True,
        help="""Seconds a GPU server may stay idle before the idle culler stops it (sooner
        than CPU servers: GPUs are scarce).""",
    )
    trainer_image = Unicode(
        "jupyter-cloudml/trainer:latest",
        config=True,
        help="Image of the tenant's training pods (images/Dockerfile, target trainer).",
    )
    serving_image = Unicode(
        "jupyter-cloudml/serving:latest",
        config=True,
        help="Image of the tenant's model servers (images/Dockerfile, target serving).",
    )
    shared_storage_class = Unicode(
        "",
        config=True,
        help="""A StorageClass with ReadWriteMany volumes (NFS, EFS, Filestore, CephFS): each
        tenant gets a claim of it, mounted by the notebook and every job, for outputs, event
        files and studies. Empty: none (jobs still run; metrics, outputs and studies need it).
        Example: c.CloudMLSpawner.shared_storage_class = "nfs-client" """,
    )
    shared_storage_size = Unicode("50Gi", config=True, help="Size of each tenant's shared claim.")
    shared_mount = Unicode(
        "/mnt/cloudml", config=True, help="Where the shared claim is mounted in every pod."
    )
    cluster_kubeconfig = Unicode(
        "",
        config=True,
        help="""Kubeconfig the hub uses to set up tenant namespaces; empty: the hub pod's
        service account (in-cluster), else $KUBECONFIG.""",
    )

    @default("enable_user_namespaces")
    def _enable_user_namespaces_default(self) -> bool:
        return True

    @default("user_namespace_template")
    def _user_namespace_template_default(self) -> str:
        return "cloudml-{username}"

    @default("service_account")
    def _service_account_default(self) -> str:
        return NOTEBOOK_ACCOUNT

    @default("automount_service_account_token")
    def _automount_default(self) -> bool:
        return True

    @default("image")
    def _image_default(self) -> str:
        return "jupyter-cloudml/notebook:latest"

    @default("cpu_guarantee")
    def _cpu_guarantee_default(self) -> float:
        return 1.0

    @default("mem_guarantee")
    def _mem_guarantee_default(self) -> int:
        return 2 * 1024**3

    @default("mem_limit")
    def _mem_limit_default(self) -> int:
        return 8 * 1024**3

    @default("profile_list")
    def _profile_list_default(self) -> list[dict[str, Any]]:
        return profiles.build_profile_list(
            self.gpu_types,
            self.gpu_counts,
            self.gpu_cpu_guarantee,
            self.gpu_mem_guarantee,
            f"{self.cpu_guarantee:g} CPU and {self.mem_guarantee / 1024**3:g} GiB memory, no GPU",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An empty list (Zero to JupyterHub's default singleuser.profileList) means ours.
        if not self.profile_list:  # type: ignore[has-type]
            self.profile_list = self._profile_list_default()
        self._kube: KubeApi | None = None
        self._stored_gpus = 0
        self._notices: list[str] = []

    # --- the tenant ---------------------------------------------------------------------------

    def tenant(self) -> Tenant:
        """This user's namespace, quota (with group overrides) and shared storage."""
        groups = [g.name for g in getattr(self.user, "groups", None) or []]
        shared = (
            SharedStorage(self.shared_storage_class, self.shared_storage_size)
            if self.shared_storage_class
            else None
        )
        return Tenant(
            user=self.user.name,
            namespace=self.namespace,
            quota=merged_quota(self.quota, self.group_quotas, groups),
            limits=self.limit_range,
            shared=shared,
        )

    def kube(self) -> KubeApi:
        """The hub's connection to the cluster, for the tenant's namespace objects."""
        if self._kube is None:
            self._kube = KubeApi(
                kubeconfig=self.cluster_kubeconfig or None, namespace=self.namespace
            )
        return self._kube

    def prepare_tenant(self, asks: dict[str, Decimal], what: str) -> list[Outcome]:
        """Ensure the tenant's objects, then check that ``asks`` fits its quota (blocking)."""
        outcomes = ensure_objects(self.kube(), tenant_objects(self.tenant()))
        for outcome in foreign(outcomes):
            self.log.warning("Tenant of %s: %s", self.user.name, outcome.describe())
        self._notices = [o.describe() for o in foreign(outcomes)]
        self.check_quota(asks, what)
        return outcomes

    def check_quota(self, asks: dict[str, Decimal], what: str) -> None:
        """Raise ``QuotaExceeded`` unless ``asks`` fits what the tenant's quotas leave free."""
        quotas.check(
            what,
            asks,
            self._live_quotas(),
            advice="Pick a smaller profile, stop jobs or model services, or ask an admin "
            "for a larger quota",
        )

    def check_quota_offline(self, profile: Mapping[str, Any]) -> None:
        """Whether ``profile`` could ever fit the configured quota (no cluster read)."""
        asks = profiles.profile_asks(profile, self._resource_defaults())
        desired = [quota_object(self.tenant())]
        quotas.check(f"profile {profile['display_name']!r}", asks, desired, now=False)

    def _live_quotas(self) -> list[dict[str, Any]]:
        """The namespace's ResourceQuotas as they will be: ours with the configured limits."""
        desired = quota_object(self.tenant())
        try:
            listing = self.kube().get(f"/api/v1/namespaces/{self.namespace}/resourcequotas")
        except NotFound:
            return [desired]
        found = listing.get("items") or []
        ours = [q for q in found if q["metadata"]["name"] == QUOTA_NAME]
        if ours:  # counted with the configured limits, which the next spawn applies
            used = (ours[0].get("status") or {}).get("used") or {}
            ours = [{**ours[0], "spec": desired["spec"], "status": {"used": used}}]
        return [q for q in found if q["metadata"]["name"] != QUOTA_NAME] + (ours or [desired])

    # --- spawning -------------------------------------------------------------------------------

    async def run_options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, Any]:
        """The form's choice, refused (with the quota and by how much) when it cannot fit."""
        options: dict[str, Any] = super().run_options_from_form(form_data)
        choices = self.initial_profiles()
        if choices:
            profile = profiles.find_profile(choices, options.get("profile") or None)
            asks = profiles.profile_asks(profile, self._resource_defaults())
            what = f"profile {profile['display_name']!r}"
            try:
                await asyncio.to_thread(self.check_quota, asks, what)
            except QuotaExceeded:
                raise
            except CloudMLError as exc:  # the spawn checks again, after setting up the tenant
                self.log.warning("Could not check the quota of %s: %s", self.user.name, exc)
        return options

    async def apply_profile(self) -> None:
        """KubeSpawner's loading of the chosen profile, plus the shared volume."""
        await super().load_user_options()
        self._add_shared_volume()

    async def load_user_options(self) -> None:
        """The chosen profile applied, then the tenant's namespace set up and checked."""
        await self.apply_profile()
        asks = quotas.pod_asks((await plain(await self.get_pod_manifest()))["spec"])
        what = f"server of {self.user.name} ({self._profile_name()})"
        await asyncio.to_thread(self.prepare_tenant, asks, what)

    def get_env(self) -> dict[str, str]:
        env: dict[str, str] = super().get_env()
        shared = self.tenant().shared
        env.update(
            pod_environment(
                self.namespace,
                self.trainer_image,
                self.serving_image,
                SHARED_CLAIM_NAME if shared else "",
                self.shared_mount,
            )
        )
        return env

    async def get_pod_manifest(self) -> Any:
        self._add_shared_volume()
        return await super().get_pod_manifest()

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """KubeSpawner's progress events, after what setting up the namespace found."""
        for notice in self._notices:
            yield {"progress": 10, "message": notice}
        async for event in super().progress():
            yield event

    def _add_shared_volume(self) -> None:
        volumes: list[dict[str, Any]] = list(self.volumes)  # type: ignore[has-type]
        if not self.shared_storage_class or any(v.get("name") == _SHARED_VOLUME for v in volumes):
            return
        claim = {"claimName": SHARED_CLAIM_NAME}
        self.volumes = [*volumes, {"name": _SHARED_VOLUME, "persistentVolumeClaim": claim}]
        mounts: list[dict[str, Any]] = list(self.volume_mounts)  # type: ignore[has-type]
        self.volume_mounts = [*mounts, {"name": _SHARED_VOLUME, "mountPath": self.shared_mount}]

    # --- idle culling -------------------------------------------------------------------------

    def gpus(self) -> int:
        """GPUs of the loaded profile (or, after a hub restart, of the running server)."""
        return int(self.extra_resource_limits.get(GPU_RESOURCE, 0) or 0) or self._stored_gpus

    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = super().get_state()
        gpus = self.gpus()
        state[STATE_KEY] = {
            "gpus": gpus,
            "idle_timeout": self.gpu_idle_timeout if gpus else self.idle_timeout,
        }
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._stored_gpus = int((state.get(STATE_KEY) or {}).get("gpus", 0))

    def clear_state(self) -> None:
        super().clear_state()
        self._stored_gpus = 0

    # --- helpers --------------------------------------------------------------------------------

    def initial_profiles(self) -> list[dict[str, Any]]:
        """The profiles as KubeSpawner completes them (slugs, a default); [] for a callable."""
        listed = self.profile_list
        if callable(listed):
            return []  # a callable list is the admin's own: checked on spawn only
        return list(self._get_initialized_profile_list(self._sorted_dict_values(listed)))

    def _resource_defaults(self) -> dict[str, Any]:
        return {
            "cpu_guarantee": self.cpu_guarantee,
            "mem_guarantee": self.mem_guarantee,
            "cpu_limit": self.cpu_limit,
            "mem_limit": self.mem_limit,
        }

    def _profile_name(self) -> str:
        return str((self.user_options or {}).get("profile") or profiles.CPU_PROFILE)


async def plain(obj: Any) -> dict[str, Any]:
    """A kubernetes_asyncio model as the JSON the API server receives."""
    from kubernetes_asyncio.client import ApiClient

    async with ApiClient() as client:
        data: dict[str, Any] = client.sanitize_for_serialization(obj)
    return data
