"""The node agent: registers the Node, keeps its Lease and status, runs the pods bound to it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
from pathlib import Path

from ..kubeapi import ApiError, KubeClient, Obj, informer
from .dns import watch_network
from .logs import serve_logs
from .pod import PodRun
from .sandbox import SA_PATH
from .times import micro_now, now


class NodeAgent:
    """One node: registration, lease, pods, logs, DNS."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name
        self.args = args
        self.workdir = Path(args.workdir)
        self.images: dict[str, str] = json.loads(Path(args.images).read_text())
        self.runs: dict[str, PodRun] = {}
        self.by_name: dict[tuple[str, str], PodRun] = {}
        self.hosts: list[str] = []
        self.free_gpus = list(range(args.gpus))
        self._next_ip = 1
        self._ips_in_use: set[str] = set()
        self.stopping = asyncio.Event()
        self.api: KubeClient

    # --- main ------------------------------------------------------------------------------

    async def run(self) -> None:
        self.api = KubeClient(Path(self.args.kubeconfig))
        Path(SA_PATH).mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        await self.register()
        runner = await serve_logs(self)
        tasks = [
            asyncio.ensure_future(self.keep_lease()),
            asyncio.ensure_future(self.keep_status()),
            asyncio.ensure_future(self.watch_pods()),
        ]
        if self.args.dns_kubeconfig:
            tasks.append(asyncio.ensure_future(watch_network(self)))
        (self.workdir / "ready").write_text(str(os.getpid()))
        await self.stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(run.shutdown() for run in list(self.runs.values())))
        await runner.cleanup()
        await self.api.close()

    # --- the Node --------------------------------------------------------------------------

    def node_status(self) -> Obj:
        a = self.args
        capacity = {
            "cpu": str(a.cpu),
            "memory": a.memory,
            "pods": "110",
            "ephemeral-storage": "100Gi",
        }
        if a.gpus:
            capacity["nvidia.com/gpu"] = str(a.gpus)
        stamp = now()
        conditions = [
            {
                "type": kind,
                "status": "False",
                "reason": f"KubeletHasSufficient{short}",
                "message": f"kubelet has sufficient {short.lower()}",
            }
            for kind, short in (
                ("MemoryPressure", "Memory"),
                ("DiskPressure", "Disk"),
                ("PIDPressure", "PID"),
            )
        ]
        conditions.append(
            {
                "type": "Ready",
                "status": "True",
                "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
            }
        )
        for cond in conditions:
            cond["lastHeartbeatTime"] = stamp
            cond.setdefault("lastTransitionTime", self._started)
        return {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": self.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": a.port}},
            "nodeInfo": {
                "machineID": hashlib.md5(self.name.encode()).hexdigest(),
                "systemUUID": hashlib.md5(self.name.encode()).hexdigest(),
                "bootID": hashlib.md5(self._started.encode()).hexdigest(),
                "kernelVersion": os.uname().release,
                "osImage": "jupyter-cloudml process node",
                "containerRuntimeVersion": "process://1.0",
                "kubeletVersion": a.kubelet_version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        }

    async def register(self) -> None:
        self._started = now()
        labels = {
            "kubernetes.io/hostname": self.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        }
        if self.args.gpus:
            labels |= {
                "nvidia.com/gpu.product": self.args.gpu_product,
                "nvidia.com/gpu.count": str(self.args.gpus),
            }
        taints = [
            dict(zip(("key", "value", "effect"), t.replace("=", ":").split(":"), strict=False))
            for t in self.args.taint
        ]
        node: Obj = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {},
        }
        if taints:
            node["spec"]["taints"] = taints
        for _ in range(100):
            try:
                await self.api.create("/api/v1/nodes", node)
                break
            except ApiError as exc:
                if exc.status == 409:
                    break
                await asyncio.sleep(0.2)
        await self.api.patch(f"/api/v1/nodes/{self.name}/status", {"status": self.node_status()})

    async def keep_status(self) -> None:
        while True:
            await asyncio.sleep(10)
            with contextlib.suppress(ApiError, OSError):
                await self.api.patch(
                    f"/api/v1/nodes/{self.name}/status", {"status": self.node_status()}
                )

    async def keep_lease(self) -> None:
        path = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
        while True:
            spec = {
                "holderIdentity": self.name,
                "leaseDurationSeconds": 40,
                "renewTime": micro_now(),
            }
            try:
                try:
                    await self.api.patch(f"{path}/{self.name}", {"spec": spec})
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    node = await self.api.get(f"/api/v1/nodes/{self.name}")
                    owner = {
                        "apiVersion": "v1",
                        "kind": "Node",
                        "name": self.name,
                        "uid": node["metadata"]["uid"],
                    }
                    await self.api.create(
                        path,
                        {"metadata": {"name": self.name, "ownerReferences": [owner]}, "spec": spec},
                    )
            except (ApiError, OSError):
                pass
            await asyncio.sleep(5)

    # --- pods ------------------------------------------------------------------------------

    async def watch_pods(self) -> None:
        async for kind, obj in informer(
            self.api, "/api/v1/pods", fieldSelector=f"spec.nodeName={self.name}"
        ):
            if kind == "SYNC":
                items = obj["items"]
                seen = {p["metadata"]["uid"] for p in items}
                for uid, run in list(self.runs.items()):
                    if uid not in seen:
                        run.gone()
                for pod in items:
                    self.update(pod)
            elif kind == "DELETED":
                deleted = self.runs.get(obj["metadata"]["uid"])
                if deleted is not None:
                    deleted.gone()
            else:
                self.update(obj)

    def update(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        run = self.runs.get(uid)
        if run is None:
            ended = pod.get("status", {}).get("phase") in ("Succeeded", "Failed")
            if ended and not pod["metadata"].get("deletionTimestamp"):
                return  # ended before this agent started: nothing to run
            run = self.runs[uid] = PodRun(self, pod)
            self.by_name[(run.ns, run.name)] = run
            run.task = asyncio.ensure_future(run.main())
        run.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            run.request_stop(float(pod["metadata"].get("deletionGracePeriodSeconds") or 0))

    def forget(self, run: PodRun) -> None:
        self.runs.pop(run.uid, None)
        if self.by_name.get((run.ns, run.name)) is run:
            del self.by_name[(run.ns, run.name)]
        self._ips_in_use.discard(run.ip)

    def claim_ip(self, ip: str) -> None:
        """Keep a pod's IP (one an earlier agent gave it) out of new allocations."""
        self._ips_in_use.add(ip)

    def allocate_ip(self) -> str:
        block = int(self.args.ip_block)
        for _ in range(65000):
            n, self._next_ip = self._next_ip, self._next_ip % 65000 + 1
            ip = f"127.{block}.{n // 250}.{n % 250 + 1}"
            if ip not in self._ips_in_use:
                self._ips_in_use.add(ip)
                return ip
        raise RuntimeError("no pod IP left")

    def write_cluster_hosts(self) -> None:
        """The cluster's DNS records as one hosts file, for clients outside pods (tests)."""
        path = self.workdir / "cluster-hosts"
        path.with_suffix(".tmp").write_text("".join(line + "\n" for line in self.hosts))
        path.with_suffix(".tmp").replace(path)

    def shim(self, interpreter: str) -> Path:
        """A folder with ``python``/``python3`` scripts running ``interpreter``."""
        folder = self.workdir / "bin" / hashlib.sha256(interpreter.encode()).hexdigest()[:10]
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for name in ("python", "python3"):
                script = folder / name
                script.write_text(f'#!/bin/sh\nexec "{interpreter}" "$@"\n')
                script.chmod(0o755)
        return folder

    async def event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about a pod, as a kubelet reports it (lost if the API refuses)."""
        m = pod["metadata"]
        stamp = now()
        event = {
            "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
            "involvedObject": {
                "kind": "Pod",
                "apiVersion": "v1",
                "namespace": m["namespace"],
                "name": m["name"],
                "uid": m["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": self.name},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": "kubelet",
            "reportingInstance": self.name,
            "eventTime": None,
        }
        with contextlib.suppress(ApiError, OSError):
            await self.api.create(f"/api/v1/namespaces/{m['namespace']}/events", event)
