"""The distributed environment of each replica, as every backend sets it.

Pure functions: given the job's replicas and their addresses, the variables one replica sees.
TensorFlow gets `TF_CONFIG` exactly as Google Cloud ML Engine writes it; PyTorch gets the
variables `torch.distributed.init_process_group(init_method="env://")` and torchrun use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ...models import Framework, Replicas

#: The roles TF_CONFIG's cluster lists: evaluators are never in it (as on Google), they only
#: read the checkpoints the cluster writes.
TF_CLUSTER_ROLES = ("chief", "worker", "ps")


def needs_addresses(framework: Framework) -> bool:
    """Whether replicas must know each other's host:port."""
    return framework in (Framework.TENSORFLOW, Framework.PYTORCH)


def tf_config(
    addresses: Mapping[str, str],
    replica: str,
    job_id: str,
    job_args: list[str] | None = None,
    *,
    chief_name: str = "chief",
    trial: str = "",
) -> str:
    """TF_CONFIG for `replica` ("worker-1") given every replica's "host:port", as Google
    writes it: the chief named `chief_name` ("master" in Google's legacy jobs), evaluators
    outside the cluster, the trial's number (1, 2, ...) in a study."""
    cluster: dict[str, list[str]] = {}
    for role in TF_CLUSTER_ROLES:
        members = sorted(
            (int(name.rsplit("-", 1)[1]), addr)
            for name, addr in addresses.items()
            if name.rsplit("-", 1)[0] == role
        )
        if members:
            cluster[chief_name if role == "chief" else role] = [addr for _, addr in members]
    role, index = replica.rsplit("-", 1)
    return json.dumps(
        {
            "cluster": cluster,
            "task": {
                "type": chief_name if role == "chief" else role,
                "index": int(index),
                "trial": trial,
            },
            "job": {"job_name": job_id, "args": job_args or []},
            "environment": "cloud",
        }
    )


def torch_env(master_addr: str, master_port: int, replica: str, world_size: int) -> dict[str, str]:
    """torch.distributed env:// variables for worker `replica` on one node."""
    rank = replica.rsplit("-", 1)[1]
    return {
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "RANK": rank,
        "WORLD_SIZE": str(world_size),
        "LOCAL_RANK": rank,
        "LOCAL_WORLD_SIZE": str(world_size),
        "GROUP_RANK": "0",
        "NODE_RANK": "0",
    }


def distributed_env(
    framework: Framework,
    replicas: Replicas,
    replica: str,
    addresses: Mapping[str, str],
    job_id: str,
    job_args: list[str] | None = None,
    *,
    chief_name: str = "chief",
    trial: str = "",
) -> dict[str, str]:
    """The framework's variables for one replica; `addresses` maps replica name to host:port."""
    if framework is Framework.TENSORFLOW:
        config = tf_config(addresses, replica, job_id, job_args, chief_name=chief_name, trial=trial)
        return {"TF_CONFIG": config}
    if framework is Framework.PYTORCH:
        host, port = addresses["worker-0"].rsplit(":", 1)
        return torch_env(host, int(port), replica, replicas.workers)
    return {}


def success_replicas(framework: Framework, replicas: Replicas) -> list[str]:
    """Replicas whose success makes the job's: the chief if there is one, else every worker.

    Parameter servers never exit by themselves, and evaluators follow checkpoints until the
    cluster stops writing them: both are stopped once the job is decided.
    """
    if framework is Framework.TENSORFLOW and replicas.chief:
        return ["chief-0"]
    return [f"worker-{i}" for i in range(replicas.workers)]
