"""What the hub adds to a spawn, side by side with plain KubeSpawner.

1. Pod manifest: CloudMLSpawner applying a GPU profile and building the notebook pod (plus the
   tenant's objects), against KubeSpawner applying the same profile and building its pod.
2. Setting up a tenant namespace on Kubernetes' own control plane (`tests/cluster`), as the
   hub's ServiceAccount with exactly `cloudml hub rbac`: the wall time and API requests (the
   API server's audit log) of the first spawn (everything created) and of a repeated spawn
   (everything read, nothing written), with the quota check; against KubeSpawner's own
   namespace step (one create).

Run: .venv/bin/python bench/bench_hub.py [--rounds 200] [--smoke]
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

from cloudml_testkit import TRAINER_IMAGE  # noqa: E402
from k8s_testkit import service_account  # noqa: E402
from traitlets.config import Config  # noqa: E402

from jupyter_cloudml.backends.kubernetes.api import KubeApi  # noqa: E402
from jupyter_cloudml.hub.manifests import offline_spawner  # noqa: E402
from jupyter_cloudml.hub.tenant import HUB_ACCOUNT, hub_rbac_objects, tenant_objects  # noqa: E402


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
    from cluster import Cluster

    rows = []
    with tempfile.TemporaryDirectory() as tmp, Cluster(Path(tmp), {TRAINER_IMAGE: ""}) as cluster:
        hub_ns = cluster.namespace("cloudml-hub")
        cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": HUB_ACCOUNT, "namespace": hub_ns}})  # fmt: skip
        for obj in hub_rbac_objects(hub_ns):
            cluster.apply(obj)
        kubeconfig = cluster.service_account_kubeconfig(hub_ns, HUB_ACCOUNT)
        hub = service_account(hub_ns, HUB_ACCOUNT)

        def requests() -> int:
            time.sleep(1.0)  # the audit log is written asynchronously
            return sum(e["user"]["username"] == hub for e in cluster.audit_events())

        config = Config()
        config.CloudMLSpawner.cluster_kubeconfig = str(kubeconfig)
        for label in ("first spawn (creates 9 objects)", "repeated spawn"):
            spawner = offline_spawner(config, "alice.smith")
            before = requests()
            start = time.perf_counter()
            spawner.prepare_tenant({}, "server")
            elapsed = (time.perf_counter() - start) * 1e3
            rows.append((label, elapsed, requests() - before))
        api = KubeApi(kubeconfig=str(kubeconfig))
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cloudml-bob"}}
        before = requests()
        start = time.perf_counter()
        api.create("/api/v1/namespaces", body)
        elapsed = (time.perf_counter() - start) * 1e3
        rows.append(("KubeSpawner's namespace step", elapsed, requests() - before))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it still runs")
    args = parser.parse_args()
    if args.smoke:
        args.rounds = 5
    ours, reference = asyncio.run(time_manifests(args.rounds))
    print("| notebook pod manifest (gpu-a100-1) | ms per spawn | ratio |")
    print("|---|---|---|")
    print(f"| CloudMLSpawner (+ tenant objects) | {ours:.2f} | {ours / reference:.2f} |")
    print(f"| KubeSpawner, same profile | {reference:.2f} | 1.00 |")
    rows = time_setup()
    print("\n| tenant namespace setup (real control plane) | ms | API requests |")
    print("|---|---|---|")
    for label, elapsed, requests in rows:
        print(f"| {label} | {elapsed:.1f} | {requests} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
