"""What a spawn would create, without a cluster: the tenant's objects and the notebook pod.

The pod comes from KubeSpawner's own manifest code (through ``CloudMLSpawner``), for a real
JupyterHub user and hub, so what is reviewed is what the hub sends. KubeSpawner's constructor
ends by loading a cluster configuration (in-cluster, else a kubeconfig; it fails without one)
and making its API client; the preview's spawner is built without those two steps, which
building manifests never uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User
from kubespawner import KubeSpawner
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from ..exceptions import InvalidSpec
from . import profiles
from .spawner import CloudMLSpawner, plain
from .tenant import tenant_objects

#: Where user pods reach the hub in Zero to JupyterHub (its ``JupyterHub.hub_connect_url``).
HUB_CONNECT_URL = "http://hub:8081"


@dataclass(frozen=True)
class TenantPreview:
    """A spawn's objects, and how the username and profile were read."""

    user: str
    namespace: str
    profile: str
    objects: list[dict[str, Any]]


def normalized_username(name: str) -> str:
    """The username as JupyterHub stores it (its default Authenticator's normalization)."""
    from jupyterhub.auth import Authenticator

    authenticator = Authenticator()
    normal = str(authenticator.normalize_username(name.strip()))
    if not normal or not authenticator.validate_username(normal) or "/" in normal:
        raise InvalidSpec(f"{name!r} is not a valid JupyterHub username")
    return normal


def preview(
    user: str, profile: str | None, groups: Sequence[str] = (), config_file: str | None = None
) -> TenantPreview:
    """The tenant's namespace objects and its notebook pod on ``profile``, as a spawn makes them."""
    username = normalized_username(user)
    config = _load_config(config_file)

    async def offline() -> TenantPreview:
        return await spawn_preview(offline_spawner(config, username, groups), profile)

    return asyncio.run(offline())


async def spawn_preview(spawner: CloudMLSpawner, slug: str | None) -> TenantPreview:
    """What ``spawner`` creates when its user spawns profile ``slug``: the tenant's objects and
    the notebook pod (refused, as on the spawn form, if the profile can never fit the quota)."""
    profile = profiles.find_profile(spawner.initial_profiles(), slug)
    spawner.check_quota_offline(profile)
    spawner.user_options = {"profile": profile["slug"]}
    await spawner.apply_profile()
    pod = await plain(await spawner.get_pod_manifest())
    pod["metadata"]["namespace"] = spawner.namespace
    objects = [*tenant_objects(spawner.tenant()), pod]
    return TenantPreview(spawner.user.name, spawner.namespace, str(profile["slug"]), objects)


def offline_spawner(config: Any, username: str, groups: Sequence[str] = ()) -> CloudMLSpawner:
    """A ``CloudMLSpawner`` of ``username`` in a hub as Zero to JupyterHub runs it, built without
    KubeSpawner's cluster configuration and client (reaching the cluster for tenant objects goes
    through ``CloudMLSpawner.kube``; starting a server needs ``api``, a KubeSpawner client)."""
    user = hub_user(username, groups)
    return OfflineSpawner(
        config=config, user=user, hub=zero_to_jupyterhub_hub(), orm_spawner=user.orm_spawners[""]
    )


def hub_user(username: str, groups: Sequence[str] = ()) -> User:
    """JupyterHub's user ``username``, member of ``groups``, in a hub database of its own."""
    engine = create_engine("sqlite://")
    orm.Base.metadata.create_all(engine)
    db = Session(engine)
    member_of = [orm.Group(name=name) for name in dict.fromkeys(groups)]
    orm_user = orm.User(name=username, groups=member_of)
    db.add(orm_user)
    db.commit()
    return User(orm_user, db=db)


def zero_to_jupyterhub_hub() -> Hub:
    """The hub as Zero to JupyterHub configures it: /hub/ on port 8081, at ``HUB_CONNECT_URL``."""
    return Hub(base_url="/hub/", port=8081, connect_url=HUB_CONNECT_URL)


class _KubeSpawnerWithoutClient(KubeSpawner):
    """KubeSpawner as its constructor makes it, up to loading a cluster configuration: every
    per-user name is set, there is no ``api`` (tests/test_hub.py compares it with the whole
    constructor)."""

    def __init__(self, **kwargs: Any) -> None:
        super(KubeSpawner, self).__init__(**kwargs)  # JupyterHub's Spawner
        # KubeSpawner.__init__ (kubespawner 7) from here, up to its load_config and shared_client
        if self.enable_user_namespaces:
            self.namespace = self._expand_user_properties(self.user_namespace_template)
        self.pod_name = self._expand_user_properties(self.pod_name_template)
        self.dns_name = self.dns_name_template.format(namespace=self.namespace, name=self.pod_name)
        self.secret_name = self._expand_user_properties(self.secret_name_template)
        self.pvc_name = self._expand_user_properties(self.pvc_name_template)
        self._pvc_exists = False
        if self.working_dir:  # type: ignore[has-type]
            self.working_dir = self._expand_user_properties(self.working_dir)  # type: ignore[has-type]
        if self.port == 0:  # type: ignore[has-type]
            self.port = 8888
        self._start_future = None


class OfflineSpawner(CloudMLSpawner, _KubeSpawnerWithoutClient):
    """``CloudMLSpawner`` on a KubeSpawner without cluster client: the ``super().__init__`` of
    ``CloudMLSpawner.__init__`` is ``_KubeSpawnerWithoutClient``'s, not KubeSpawner's."""


def _load_config(config_file: str | None) -> Any:
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    if not config_file:
        return Config()
    try:
        return PyFileConfigLoader(config_file).load_config()
    except ConfigFileNotFound:
        raise InvalidSpec(f"--config {config_file}: no such file") from None
