"""The spawn form's choices: CPU only, and 1/2/4/8 GPUs of each GPU type the cluster has.

Each profile is a KubeSpawner ``profile_list`` entry whose ``kubespawner_override`` sets the
GPU limit, the node selector on the GPU product label and the GPU toleration (the same
placement as training pods, from ``training.gpu_placement``) and CPU/memory guarantees that grow
with the number of GPUs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from ..backends.kubernetes.manifests.training import GPU_RESOURCE, gpu_placement, gpu_product
from ..backends.kubernetes.quota import GPU_QUOTA, quantity
from ..exceptions import InvalidSpec
from ..models import Resources

CPU_PROFILE = "cpu"


def profile_slug(gpu_type: str, count: int) -> str:
    """``gpu-a100-1``: how a GPU profile is chosen (``--profile``, the REST API, the form)."""
    return f"gpu-{gpu_type.lower()}-{count}"


def build_profile_list(
    gpu_types: Sequence[str],
    gpu_counts: Sequence[int],
    cpu_per_gpu: float,
    memory_per_gpu: int,
    cpu_description: str,
) -> list[dict[str, Any]]:
    """The CPU profile (the default, with the spawner's own guarantees), then every GPU count
    of every GPU type; ``memory_per_gpu`` in bytes."""
    profiles: list[dict[str, Any]] = [
        {
            "display_name": "CPU only",
            "slug": CPU_PROFILE,
            "description": cpu_description,
            "default": True,
            "kubespawner_override": {},
        }
    ]
    for gpu_type in gpu_types:
        product = gpu_product(gpu_type)
        for count in gpu_counts:
            if count < 1:
                raise InvalidSpec(f"GPU counts must be at least 1, got {count}")
            placement = gpu_placement(Resources(gpus=count, gpu_type=gpu_type))
            memory = memory_per_gpu * count
            profiles.append(
                {
                    "display_name": f"{count} x {gpu_type.upper()}",
                    "slug": profile_slug(gpu_type, count),
                    "description": (
                        f"{count} {product} GPU{'s' if count > 1 else ''}, "
                        f"{_number(cpu_per_gpu * count)} CPUs and {_gib(memory)} memory"
                    ),
                    "kubespawner_override": {
                        "extra_resource_limits": {GPU_RESOURCE: str(count)},
                        "node_selector": placement["nodeSelector"],
                        "tolerations": placement["tolerations"],
                        "cpu_guarantee": cpu_per_gpu * count,
                        "mem_guarantee": memory,
                        "mem_limit": memory,
                    },
                }
            )
    return profiles


def find_profile(profiles: Sequence[Mapping[str, Any]], slug: str | None) -> Mapping[str, Any]:
    """The profile ``slug`` (the default one when None); a clear error naming the choices."""
    for profile in profiles:
        if (slug is None and profile.get("default")) or profile.get("slug") == slug:
            return profile
    if slug is None and profiles:
        return profiles[0]
    choices = ", ".join(str(p.get("slug")) for p in profiles) or "none configured"
    raise InvalidSpec(f"no profile {slug!r}; choose one of: {choices}")


def profile_gpus(profile: Mapping[str, Any]) -> int:
    """How many GPUs a profile's notebook server gets."""
    override = profile.get("kubespawner_override") or {}
    return int((override.get("extra_resource_limits") or {}).get(GPU_RESOURCE, 0))


def profile_asks(profile: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Decimal]:
    """What a profile's notebook pod counts against quota, from its overrides over ``defaults``
    (the spawner's ``cpu_guarantee``, ``mem_guarantee``, ``cpu_limit``, ``mem_limit``)."""
    settings = {**defaults, **(profile.get("kubespawner_override") or {})}
    asks = {"pods": Decimal(1)}
    for trait, key in (
        ("cpu_guarantee", "requests.cpu"),
        ("mem_guarantee", "requests.memory"),
        ("cpu_limit", "limits.cpu"),
        ("mem_limit", "limits.memory"),
    ):
        if settings.get(trait):
            asks[key] = quantity(settings[trait])
    if gpus := profile_gpus(profile):
        asks[GPU_QUOTA] = Decimal(gpus)
    return asks


def _number(value: float) -> str:
    return f"{value:g}"


def _gib(size: int) -> str:
    return f"{size / 1024**3:g} GiB"
