"""Cluster DNS for pods: ``/etc/hosts`` records of headless Services, from Services and Pods."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..kubeapi import KubeClient, Obj, informer

if TYPE_CHECKING:
    from .agent import NodeAgent


async def watch_dns(agent: NodeAgent) -> None:
    """Keep ``agent.hosts`` (and every pod's hosts file) in step with Services and Pods."""
    client = KubeClient(Path(agent.args.dns_kubeconfig))
    known: dict[str, dict[str, Obj]] = {"services": {}, "pods": {}}

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
            hosts = hosts_entries(known["services"].values(), known["pods"].values())
            if hosts != agent.hosts:
                agent.hosts = hosts
                for run in list(agent.runs.values()):
                    run.write_hosts()

    try:
        await asyncio.gather(follow("services"), follow("pods"))
    finally:
        await client.close()


def hosts_entries(services: Any, pods: Any) -> list[str]:
    """``/etc/hosts`` lines for headless Services, as cluster DNS answers for them: the pods a
    Service selects (ready ones, or all with ``publishNotReadyAddresses``) under
    ``<service>.<namespace>.svc``, and ``<hostname>.<service>.<namespace>.svc`` for pods whose
    ``subdomain`` is the Service. (Built from Pods: EndpointSlices refuse loopback pod IPs.)"""
    by_namespace: dict[str, list[Obj]] = {}
    for pod in pods:
        if (pod.get("status") or {}).get("podIP") and not pod["metadata"].get("deletionTimestamp"):
            by_namespace.setdefault(pod["metadata"]["namespace"], []).append(pod)
    lines = []
    for service in services:
        spec = service.get("spec") or {}
        selector = spec.get("selector") or {}
        if spec.get("clusterIP") != "None" or not selector:
            continue
        name, ns = service["metadata"]["name"], service["metadata"]["namespace"]
        for pod in by_namespace.get(ns, []):
            labels = pod["metadata"].get("labels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            if not spec.get("publishNotReadyAddresses") and not _ready(pod):
                continue
            names = [f"{name}.{ns}.svc.cluster.local", f"{name}.{ns}.svc"]
            hostname = pod["spec"].get("hostname")
            if hostname and pod["spec"].get("subdomain") == name:
                host = f"{hostname}.{name}.{ns}.svc"
                names = [f"{host}.cluster.local", host, *names]
            lines.append(f"{pod['status']['podIP']}\t{' '.join(names)}")
    return sorted(lines)


def _ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
