"""What a spawn would create, without a cluster: the tenant's objects and the notebook pod.

The pod comes from KubeSpawner's own manifest code (through ``CloudMLSpawner``), so what is
reviewed is what the hub sends. KubeSpawner connects to the cluster when constructed; that
connection is replaced by nothing here, as building a manifest never uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from unittest import mock

from ..exceptions import InvalidSpec
from . import profiles
from .tenant import tenant_objects

if TYPE_CHECKING:
    from .spawner import CloudMLSpawner

#: Where Zero to JupyterHub serves the hub to user pods.
HUB_API_URL = "http://hub:8081/hub/api"


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
    return asyncio.run(_preview(normalized_username(user), profile, groups, config_file))


async def _preview(
    username: str, slug: str | None, groups: Sequence[str], config_file: str | None
) -> TenantPreview:
    from .spawner import plain

    spawner = offline_spawner(_load_config(config_file), username, groups)
    profile = profiles.find_profile(spawner.initial_profiles(), slug)
    spawner.check_quota_offline(profile)
    spawner.user_options = {"profile": profile["slug"]}
    await spawner.apply_profile()
    pod = await plain(await spawner.get_pod_manifest())
    pod["metadata"]["namespace"] = spawner.namespace
    objects = [*tenant_objects(spawner.tenant()), pod]
    return TenantPreview(username, spawner.namespace, str(profile["slug"]), objects)


def offline_spawner(config: Any, username: str, groups: Sequence[str] = ()) -> CloudMLSpawner:
    """A ``CloudMLSpawner`` of ``username`` in a hub as Zero to JupyterHub runs it, made without
    the cluster connection KubeSpawner opens on construction (building manifests never uses
    it; reaching the cluster for tenant objects goes through ``CloudMLSpawner.kube``)."""
    from .spawner import CloudMLSpawner

    user = SimpleNamespace(
        name=username,
        id=0,
        url=f"/user/{username}/",
        groups=[SimpleNamespace(name=g) for g in groups],
    )
    hub = SimpleNamespace(
        api_url=HUB_API_URL, base_url="/hub/", public_host="", url="http://hub:8081/hub/"
    )
    with (
        mock.patch("kubespawner.spawner.load_config"),
        mock.patch("kubespawner.spawner.shared_client"),
    ):
        return CloudMLSpawner(config=config, user=user, hub=hub)


def _load_config(config_file: str | None) -> Any:
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    if not config_file:
        return Config()
    try:
        return PyFileConfigLoader(config_file).load_config()
    except ConfigFileNotFound:
        raise InvalidSpec(f"--config {config_file}: no such file") from None
