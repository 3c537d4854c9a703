"""Cluster networking for pods, on loopback: the records cluster DNS serves (as ``/etc/hosts``
lines) and, on the node that runs it, a user-space Service proxy (what kube-proxy does).

A ClusterIP Service ``10.96.c.d`` is reached at ``127.96.c.d`` on its own ports (the ClusterIP
itself is only a number in etcd: nothing may connect to it); a connection is forwarded to a
ready pod the Service selects, on the target port. Headless Services resolve to their pods.
Both are built from Services and Pods (EndpointSlices refuse loopback pod IPs).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..kubeapi import KubeClient, Obj, informer

if TYPE_CHECKING:
    from .agent import NodeAgent


def proxy_address(cluster_ip: str) -> str:
    """The loopback address standing for a ClusterIP (``10.96.c.d`` -> ``127.96.c.d``)."""
    return "127." + cluster_ip.split(".", 1)[1]


async def watch_network(agent: NodeAgent) -> None:
    """Keep ``agent.hosts`` (and every pod's hosts file, and the cluster hosts file) and, with
    ``--service-proxy``, the proxy's listeners in step with Services and Pods."""
    client = KubeClient(Path(agent.args.dns_kubeconfig))
    known: dict[str, dict[str, Obj]] = {"services": {}, "pods": {}}
    proxy = ServiceProxy() if agent.args.service_proxy else None

    async def follow(plural: str) -> None:
        objects = known[plural]
        async for kind, obj in informer(client, f"/api/v1/{plural}"):
            if kind == "SYNC":
                objects.clear()
                objects.update({o["metadata"]["uid"]: o for o in obj["items"]})
            elif kind == "DELETED":
                objects.pop(obj["metadata"]["uid"], None)
            else:
                objects[obj["metadata"]["uid"]] = obj
            services, pods = list(known["services"].values()), list(known["pods"].values())
            if proxy is not None:
                await proxy.update(services, pods)
            hosts = hosts_entries(services, pods)
            if hosts != agent.hosts:
                agent.hosts = hosts
                agent.write_cluster_hosts()
                for run in list(agent.runs.values()):
                    run.write_hosts()

    try:
        await asyncio.gather(follow("services"), follow("pods"))
    finally:
        if proxy is not None:
            await proxy.close()
        await client.close()


def selected_pods(service: Obj, pods: list[Obj], ready_only: bool) -> list[Obj]:
    """The live pods with an IP that a Service's selector picks (ready ones with ``ready_only``)."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector:
        return []
    ns = service["metadata"]["namespace"]
    chosen = []
    for pod in pods:
        meta = pod["metadata"]
        if meta["namespace"] != ns or meta.get("deletionTimestamp"):
            continue
        if not (pod.get("status") or {}).get("podIP"):
            continue
        labels = meta.get("labels") or {}
        if any(labels.get(k) != v for k, v in selector.items()):
            continue
        if ready_only and not _ready(pod):
            continue
        chosen.append(pod)
    return chosen


def hosts_entries(services: list[Obj], pods: list[Obj]) -> list[str]:
    """``/etc/hosts`` lines, as cluster DNS answers: ``<service>.<namespace>.svc`` is the proxy
    address of a ClusterIP Service, or the pods of a headless one (ready ones, or all with
    ``publishNotReadyAddresses``), and ``<hostname>.<service>.<namespace>.svc`` a pod whose
    ``subdomain`` is the (headless) Service."""
    lines = []
    for service in services:
        spec = service.get("spec") or {}
        name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
        names = [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc"]
        cluster_ip = spec.get("clusterIP") or ""
        if cluster_ip and cluster_ip != "None":
            lines.append(f"{proxy_address(cluster_ip)}\t{' '.join(names)}")
            continue
        ready_only = not spec.get("publishNotReadyAddresses")
        for pod in selected_pods(service, pods, ready_only):
            own = list(names)
            hostname = pod["spec"].get("hostname")
            if hostname and pod["spec"].get("subdomain") == name:
                host = f"{hostname}.{name}.{ns}.svc"
                own = [f"{host}.cluster.local", host, *names]
            lines.append(f"{pod['status']['podIP']}\t{' '.join(own)}")
    return sorted(lines)


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class ServiceProxy:
    """Listens on each ClusterIP Service's proxy address and ports; forwards each connection to
    a ready selected pod (round robin), on the port's ``targetPort``."""

    def __init__(self) -> None:
        self.servers: dict[tuple[str, int], asyncio.AbstractServer] = {}
        self.routes: dict[tuple[str, int], tuple[Obj, Any]] = {}
        self.pods: list[Obj] = []
        self._turn = itertools.count()

    async def update(self, services: list[Obj], pods: list[Obj]) -> None:
        self.pods = pods
        wanted: dict[tuple[str, int], tuple[Obj, Any]] = {}
        for service in services:
            spec = service.get("spec") or {}
            cluster_ip = spec.get("clusterIP") or ""
            if not cluster_ip or cluster_ip == "None":
                continue
            for port in spec.get("ports") or []:
                if port.get("protocol", "TCP") == "TCP":
                    key = (proxy_address(cluster_ip), int(port["port"]))
                    wanted[key] = (service, port.get("targetPort", port["port"]))
        self.routes = wanted
        for key in [k for k in self.servers if k not in wanted]:
            self.servers.pop(key).close()
        for key in wanted:
            if key not in self.servers:
                with contextlib.suppress(OSError):
                    self.servers[key] = await asyncio.start_server(
                        functools.partial(self._forward, key), *key
                    )

    async def close(self) -> None:
        for server in self.servers.values():
            server.close()
        self.servers.clear()

    def _backend(self, key: tuple[str, int]) -> tuple[str, int] | None:
        route = self.routes.get(key)
        if route is None:
            return None
        service, target = route
        ready = selected_pods(service, self.pods, ready_only=True)
        if not ready:
            return None
        pod = ready[next(self._turn) % len(ready)]
        if isinstance(target, str) and not target.isdigit():
            ports = {
                p.get("name"): p["containerPort"]
                for c in pod["spec"].get("containers") or []
                for p in c.get("ports") or []
            }
            if target not in ports:
                return None
            target = ports[target]
        return pod["status"]["podIP"], int(target)

    async def _forward(
        self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        backend = self._backend(key)
        if backend is None:  # no ready endpoint: refused, as kube-proxy rejects it
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*backend)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (OSError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()
