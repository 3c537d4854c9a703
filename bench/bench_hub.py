"""What the hub adds to a spawn, side by side with plain KubeSpawner.

1. Pod manifest: CloudMLSpawner applying a GPU profile and building the notebook pod (plus the
   tenant's objects), against KubeSpawner applying the same profile and building its pod.
2. Setting up a tenant namespace on an emulated cluster (`tests/fakecluster`, real HTTP): the
   wall time and API requests of the first spawn (everything created) and of a repeated spawn
   (everything read, nothing written), with the quota check; against KubeSpawner's own
   namespace step (one create, answered 409 when it exists).

Run: .venv/bin/python bench/bench_hub.py [--rounds 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakecluster import FakeCluster  # noqa: E402
from traitlets.config import Config  # noqa: E402

from jupyter_cloudml.backends.kubernetes.api import KubeApi  # noqa: E402
from jupyter_cloudml.hub.manifests import offline_spawner  # noqa: E402
from jupyter_cloudml.hub.tenant import tenant_objects  # noqa: E402


def plain_kubespawner(profile: dict) -> object:
    from kubespawner import KubeSpawner

    with (
        mock.patch("kubespawner.spawner.load_config"),
        mock.patch("kubespawner.spawner.shared_client"),
    ):
        spawner = KubeSpawner(_mock=True, profile_list=[profile])
    spawner.user_options = {"profile": profile["slug"]}
    return spawner


async def time_manifests(rounds: int) -> tuple[float, float]:
    ours = offline_spawner(Config(), "alice.smith")
    (profile,) = [p for p in ours.initial_profiles() if p["slug"] == "gpu-a100-1"]
    ours.user_options = {"profile": "gpu-a100-1"}
    reference = plain_kubespawner(profile)

    async def per_call(spawner, extra) -> float:
        await spawner.get_pod_manifest()  # imports and first-use caches are not per spawn
        await spawner.load_user_options() if extra is None else await extra()
        start = time.perf_counter()
        for _ in range(rounds):
            await spawner.load_user_options() if extra is None else await extra()
            await spawner.get_pod_manifest()
        return (time.perf_counter() - start) / rounds * 1e3

    async def ours_step() -> None:
        await ours.apply_profile()
        tenant_objects(ours.tenant())

    return await per_call(ours, ours_step), await per_call(reference, None)


def time_setup() -> list[tuple[str, float, int]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp, FakeCluster(tmp, namespace="cloudml-hub") as cluster:
        config = Config()
        config.CloudMLSpawner.cluster_kubeconfig = str(cluster.kubeconfig)
        for label in ("first spawn (creates 9 objects)", "repeated spawn"):
            spawner = offline_spawner(config, "alice.smith")
            before = len(cluster.requests)
            start = time.perf_counter()
            spawner.prepare_tenant({}, "server")
            elapsed = (time.perf_counter() - start) * 1e3
            rows.append((label, elapsed, len(cluster.requests) - before))
        api = KubeApi(kubeconfig=str(cluster.kubeconfig))
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cloudml-bob"}}
        before = len(cluster.requests)
        start = time.perf_counter()
        api.create("/api/v1/namespaces", body)
        rows.append(
            (
                "KubeSpawner's namespace step",
                (time.perf_counter() - start) * 1e3,
                len(cluster.requests) - before,
            )
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    ours, reference = asyncio.run(time_manifests(args.rounds))
    print("| notebook pod manifest (gpu-a100-1) | ms per spawn | ratio |")
    print("|---|---|---|")
    print(f"| CloudMLSpawner (+ tenant objects) | {ours:.2f} | {ours / reference:.2f} |")
    print(f"| KubeSpawner, same profile | {reference:.2f} | 1.00 |")
    rows = time_setup()
    print("\n| tenant namespace setup (emulated cluster) | ms | API requests |")
    print("|---|---|---|")
    for label, elapsed, requests in rows:
        print(f"| {label} | {elapsed:.1f} | {requests} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
