"""The process node: a node agent that does a kubelet's job for the test cluster, as an ordinary
client of the real API server with the node's own identity (``system:node:<name>``, so the Node
authorizer and NodeRestriction judge every request it makes).

- Registers its Node (cpu, memory, pods and ``nvidia.com/gpu`` capacity, the GPU product label,
  optional taints), keeps its Lease in ``kube-node-lease`` and its Ready condition fresh.
- Runs the pods the scheduler binds to it as local processes: an image maps to a local Python
  interpreter (``python`` in a command runs it; a ``python`` shim leads the PATH), an unknown
  image waits in ``ErrImagePull``/``ImagePullBackOff``. Init containers run in order, then every
  container; restarts follow ``restartPolicy`` with CrashLoopBackOff delays.
- Each container runs in its own mount and UTS namespace (``unshare``): its hostname is the
  pod's, ``/etc/hosts`` is the pod's (see DNS below), and the pod's service-account volume is
  bind-mounted at ``/var/run/secrets/kubernetes.io/serviceaccount`` with a token made by
  TokenRequest, so in-cluster clients work unchanged. Other volumes (ConfigMaps, Secrets,
  projected and downward API files, emptyDirs, claims bound to hostPath/local volumes) are host
  folders; their container paths in the command, args and env are rewritten to them.
- Each pod gets its own loopback address (``127.<block>.x.y``) as its pod IP.
- Reports pod phases, conditions and container states (exit codes, reasons) through
  ``pods/status``, and events; a deleted pod's containers get SIGTERM, then SIGKILL after the
  grace period (capped), and the node removes the pod.
- Serves ``/containerLogs/...`` over TLS (client certificates of the cluster CA only), which
  the API server calls for ``pods/log``: ``follow``, ``tailLines``, ``timestamps``,
  ``sinceSeconds``/``sinceTime``, ``limitBytes``, ``previous``. Logs are kept as files in the CRI
  format.
- Readiness probes (``httpGet``, ``tcpSocket``, ``exec``) gate the Ready condition.

DNS: with ``--dns-kubeconfig`` (an identity that may list Services and Pods, as CoreDNS's may)
the agent writes every pod's ``/etc/hosts`` with the records cluster DNS serves for headless
Services: ``<hostname>.<service>.<namespace>.svc[.cluster.local]`` and
``<service>.<namespace>.svc[.cluster.local]`` resolve to pod IPs (see ``hosts_entries``). Traffic never leaves 127.0.0.0/8.

Not done (not needed by the tests): liveness and startup probes, exec/attach/port-forward,
resource enforcement, image pulls.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from .kubeapi import ApiError, KubeClient, Obj, informer

SA_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Mounted in the container's own mount namespace; other mount paths are rewritten to folders.
BIND_PREFIXES = ("/var/run/secrets/",)
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")
_MOUNT_SCRIPT = (
    'set -e; hostname "$1"; shift; '
    'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
)


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def nano_now() -> str:
    t = time.time_ns()
    stamp = datetime.datetime.fromtimestamp(t // 1_000_000_000, datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{t % 1_000_000_000:09d}Z"


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


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
        runner = await self.serve_logs()
        tasks = [
            asyncio.ensure_future(self.keep_lease()),
            asyncio.ensure_future(self.keep_status()),
            asyncio.ensure_future(self.watch_pods()),
        ]
        if self.args.dns_kubeconfig:
            tasks.append(asyncio.ensure_future(self.watch_dns()))
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
        capacity = {"cpu": str(a.cpu), "memory": a.memory, "pods": "110",
                    "ephemeral-storage": "100Gi"}  # fmt: skip
        if a.gpus:
            capacity["nvidia.com/gpu"] = str(a.gpus)
        stamp = now()
        conditions = [
            {"type": kind, "status": "False", "reason": f"KubeletHasSufficient{short}",
             "message": f"kubelet has sufficient {short.lower()}"}
            for kind, short in (("MemoryPressure", "Memory"), ("DiskPressure", "Disk"),
                                ("PIDPressure", "PID"))
        ]  # fmt: skip
        conditions.append(
            {"type": "Ready", "status": "True", "reason": "KubeletReady",
             "message": "kubelet is posting ready status"}
        )  # fmt: skip
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
                "machineID": hashlib.md5(self.name.encode()).hexdigest(),  # noqa: S324
                "systemUUID": hashlib.md5(self.name.encode()).hexdigest(),  # noqa: S324
                "bootID": hashlib.md5(self._started.encode()).hexdigest(),  # noqa: S324
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
            labels |= {"nvidia.com/gpu.product": self.args.gpu_product,
                       "nvidia.com/gpu.count": str(self.args.gpus)}  # fmt: skip
        taints = [
            dict(zip(("key", "value", "effect"), t.replace("=", ":").split(":"), strict=False))
            for t in self.args.taint
        ]
        node: Obj = {"apiVersion": "v1", "kind": "Node",
                     "metadata": {"name": self.name, "labels": labels}, "spec": {}}  # fmt: skip
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
            spec = {"holderIdentity": self.name, "leaseDurationSeconds": 40,
                    "renewTime": micro_now()}  # fmt: skip
            try:
                try:
                    await self.api.patch(f"{path}/{self.name}", {"spec": spec})
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    node = await self.api.get(f"/api/v1/nodes/{self.name}")
                    owner = {"apiVersion": "v1", "kind": "Node", "name": self.name,
                             "uid": node["metadata"]["uid"]}  # fmt: skip
                    await self.api.create(
                        path, {"metadata": {"name": self.name, "ownerReferences": [owner]},
                               "spec": spec},
                    )  # fmt: skip
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
                run = self.runs.get(obj["metadata"]["uid"])
                if run is not None:
                    run.gone()
            else:
                self.update(obj)

    def update(self, pod: Obj) -> None:
        uid = pod["metadata"]["uid"]
        run = self.runs.get(uid)
        if run is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                if not pod["metadata"].get("deletionTimestamp"):
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

    def allocate_ip(self) -> str:
        block = int(self.args.ip_block)
        for _ in range(65000):
            n, self._next_ip = self._next_ip, self._next_ip % 65000 + 1
            ip = f"127.{block}.{n // 250}.{n % 250 + 1}"
            if ip not in self._ips_in_use:
                self._ips_in_use.add(ip)
                return ip
        raise RuntimeError("no pod IP left")

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
        m = pod["metadata"]
        stamp = micro_now()
        event = {
            "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
            "involvedObject": {"kind": "Pod", "apiVersion": "v1", "namespace": m["namespace"],
                               "name": m["name"], "uid": m["uid"]},
            "type": type_, "reason": reason, "message": message,
            "source": {"component": "kubelet", "host": self.name},
            "firstTimestamp": now(), "lastTimestamp": now(), "count": 1,
            "reportingComponent": "kubelet", "reportingInstance": self.name,
            "eventTime": None,
        }  # fmt: skip
        del stamp
        with contextlib.suppress(ApiError, OSError):
            await self.api.create(f"/api/v1/namespaces/{m['namespace']}/events", event)

    # --- DNS -------------------------------------------------------------------------------

    async def watch_dns(self) -> None:
        """Keep ``self.hosts`` (and every pod's hosts file) in step with Services and Pods."""
        client = KubeClient(Path(self.args.dns_kubeconfig))
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
                if hosts != self.hosts:
                    self.hosts = hosts
                    for run in list(self.runs.values()):
                        run.write_hosts()

        try:
            await asyncio.gather(follow("services"), follow("pods"))
        finally:
            await client.close()

    # --- logs ------------------------------------------------------------------------------

    async def serve_logs(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.container_logs)
        app.router.add_get("/healthz", lambda _: web.Response(text="ok"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=self.args.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_cert_chain(self.args.serving_cert, self.args.serving_key)
        await web.TCPSite(runner, "127.0.0.1", self.args.port, ssl_context=ctx).start()
        return runner

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = (request.match_info[k] for k in ("ns", "pod", "container"))
        run = self.by_name.get((ns, pod))
        box = run.containers.get(name) if run else None
        if run is None or box is None:
            raise web.HTTPNotFound(text=f'container "{name}" in pod "{pod}" is not known')
        q = request.query
        previous = q.get("previous") == "true"
        path = box.log_path(box.restarts - 1 if previous else box.restarts)
        if not path.exists():
            what = "previous terminated" if previous else "current"
            raise web.HTTPBadRequest(text=f'{what} container "{name}" in pod "{pod}" not found')
        since = None
        if "sinceSeconds" in q:
            since = time.time() - float(q["sinceSeconds"])
        elif "sinceTime" in q:
            since = parse_time(q["sinceTime"])
        tail = int(q["tailLines"]) if "tailLines" in q else None
        limit = int(q["limitBytes"]) if "limitBytes" in q else None
        stamps = q.get("timestamps") == "true"
        follow = q.get("follow") == "true" and not previous
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = 0

        def render(line: str) -> bytes | None:
            stamp, _, rest = line.partition(" ")
            _stream, _, rest = rest.partition(" ")
            _tag, _, text = rest.partition(" ")
            if since is not None and parse_time(stamp[:26] + "Z") < since:
                return None
            return ((stamp + " " if stamps else "") + text + "\n").encode()

        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines(keepends=True)
            complete = [ln.rstrip("\n") for ln in lines if ln.endswith("\n")]
            pending = "".join(ln for ln in lines if not ln.endswith("\n"))
            if tail is not None:
                complete = complete[-tail:] if tail > 0 else []
            for line in complete:
                out = render(line)
                if out is None:
                    continue
                if limit is not None and sent + len(out) > limit:
                    await response.write(out[: limit - sent])
                    return response
                await response.write(out)
                sent += len(out)
            while follow:
                chunk = f.readline()
                if chunk:
                    pending += chunk
                    if pending.endswith("\n"):
                        out = render(pending.rstrip("\n"))
                        pending = ""
                        if out is not None:
                            await response.write(out)
                    continue
                if box.instance_done(path):
                    break
                await asyncio.sleep(0.05)
        return response


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


class ContainerBox:
    """One container of a pod: its process, state, restarts and log files."""

    def __init__(self, run: PodRun, spec: Obj, init: bool) -> None:
        self.run = run
        self.spec = spec
        self.name: str = spec["name"]
        self.init = init
        self.state: Obj = {"waiting": {"reason": "ContainerCreating"}}
        self.last_state: Obj = {}
        self.restarts = 0
        self.ready = False
        self.started = False
        self.proc: asyncio.subprocess.Process | None = None
        self.gpus: list[int] = []
        self.finished_instance = -1

    def log_path(self, instance: int) -> Path:
        return self.run.dir / "logs" / self.name / f"{instance}.log"

    def instance_done(self, path: Path) -> bool:
        """Whether the container instance writing ``path`` has ended."""
        return int(path.stem) <= self.finished_instance or self.run.finished

    def status(self) -> Obj:
        image = self.spec.get("image", "")
        entry: Obj = {
            "name": self.name,
            "image": image,
            "imageID": f"process://{self.run.node.images[image]}"
            if image in self.run.node.images
            else "",
            "ready": self.ready,
            "restartCount": self.restarts,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if "running" in self.state or "terminated" in self.state:
            entry["containerID"] = f"process://{self.run.uid[:8]}-{self.name}-{self.restarts}"
        return entry

    def terminated(self, code: int, reason: str, started: str, message: str = "") -> None:
        state: Obj = {"exitCode": code, "reason": reason, "startedAt": started,
                      "finishedAt": now(), "containerID": self.status().get("containerID", "")}  # fmt: skip
        if message:
            state["message"] = message
        self.state = {"terminated": state}
        self.ready = False
        self.started = False
        self.finished_instance = self.restarts


class PodRun:
    """One pod's life on the node: volumes, init containers, containers, end, removal."""

    def __init__(self, node: NodeAgent, pod: Obj) -> None:
        self.node = node
        self.pod = pod
        m = pod["metadata"]
        self.uid, self.ns, self.name = m["uid"], m["namespace"], m["name"]
        self.dir = node.workdir / "pods" / f"{self.ns}_{self.name}_{self.uid[:8]}"
        self.stopping = asyncio.Event()
        self.grace = 30.0
        self.is_gone = False
        self.finished = False
        self.task: asyncio.Future[None] | None = None
        self.ip = ""
        self.phase = "Pending"
        self.initialized = False
        self.mounts: list[tuple[str, str]] = []
        self.binds: list[tuple[str, str]] = []
        self.hosts_file = self.dir / "etc-hosts"
        spec = pod["spec"]
        self.inits = [ContainerBox(self, c, True) for c in spec.get("initContainers") or []]
        self.mains = [ContainerBox(self, c, False) for c in spec.get("containers") or []]
        self.containers = {c.name: c for c in [*self.inits, *self.mains]}
        self._pushed: Obj | None = None
        self.hostname = spec.get("hostname") or self.name

    # --- control ---------------------------------------------------------------------------

    def request_stop(self, grace: float) -> None:
        if not self.stopping.is_set() or grace < self.grace:
            self.grace = min(grace, float(self.node.args.grace_cap))
        self.stopping.set()

    def gone(self) -> None:
        self.is_gone = True
        self.request_stop(0.0)

    async def shutdown(self) -> None:
        """The node is going away: kill every process now."""
        for box in self.containers.values():
            _killpg(box.proc)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def _sleep(self, seconds: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    # --- lifecycle -------------------------------------------------------------------------

    async def main(self) -> None:
        try:
            await self._lifecycle()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of the node agent: say it in the pod's events
            await self.node.event(self.pod, "Warning", "NodeAgentError", repr(exc))
            await self.stopping.wait()
        finally:
            self.finished = True
            for box in self.containers.values():
                _killpg(box.proc)
                self.node.free_gpus.extend(box.gpus)
                box.gpus = []
        if not self.is_gone:
            with contextlib.suppress(ApiError, OSError):
                await self.node.api.delete(
                    f"/api/v1/namespaces/{self.ns}/pods/{self.name}",
                    {"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
                )
        self.node.forget(self)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.dir / "volumes")

    async def _lifecycle(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        await self.push()
        reported = ""
        while True:
            problem = await self._prepare()
            if problem is None:
                break
            if problem != reported:
                reported = problem
                await self.node.event(self.pod, "Warning", "FailedMount", problem)
            if await self._sleep(1.0):
                await self._end_pending()
                return
        self.ip = self.node.allocate_ip()
        self.write_hosts()
        await self.push()
        for box in self.inits:
            ok = await self._run_to_end(box)
            if not ok:
                await self._finish()
                return
        self.initialized = True
        await self.push()
        await asyncio.gather(*(self._keep_running(box) for box in self.mains))
        await self._finish()

    async def _end_pending(self) -> None:
        for box in self.containers.values():
            if "waiting" in box.state:
                box.state = {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                             "message": "The container could not be located when the pod was "
                             "terminated", "startedAt": None, "finishedAt": now()}}  # fmt: skip
        self.phase = "Failed"
        await self.push()

    async def _finish(self) -> None:
        """Everything ended (or was stopped): the final status; wait for the pod's deletion."""
        self.phase = self._phase()
        await self.push()
        await self.stopping.wait()
        if self.phase in ("Pending", "Running"):
            self.phase = "Failed"
            await self.push()

    def _phase(self) -> str:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        states = [b.state for b in self.mains]
        if any("terminated" in b.state and b.state["terminated"]["exitCode"] != 0
               for b in self.inits) and policy == "Never":  # fmt: skip
            return "Failed"
        if not self.initialized:
            return "Pending" if not self.stopping.is_set() else "Failed"
        if all("terminated" in s for s in states):
            if all(s["terminated"]["exitCode"] == 0 for s in states):
                return "Succeeded"
            return "Failed"
        return "Running"

    async def _run_to_end(self, box: ContainerBox) -> bool:
        """An init container until it succeeds (restarting per policy); whether it did."""
        policy = self.pod["spec"].get("restartPolicy", "Always")
        while True:
            code = await self._run_once(box)
            if code == 0:
                return True
            if self.stopping.is_set() or policy == "Never" or code is None:
                return False
            if await self._backoff(box):
                return False

    async def _keep_running(self, box: ContainerBox) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        while True:
            code = await self._run_once(box)
            if code is None:
                await self.stopping.wait()
                return
            if self.stopping.is_set() or policy == "Never" or (policy == "OnFailure" and code == 0):
                return
            if await self._backoff(box):
                return

    async def _backoff(self, box: ContainerBox) -> bool:
        delay = min(0.5 * 2**box.restarts, 10.0)
        box.last_state = box.state
        box.restarts += 1
        box.state = {"waiting": {"reason": "CrashLoopBackOff",
                     "message": f"back-off {delay:g}s restarting failed container={box.name} "
                     f"pod={self.name}_{self.ns}({self.uid})"}}  # fmt: skip
        await self.push()
        return await self._sleep(delay)

    async def _run_once(self, box: ContainerBox) -> int | None:
        """Start the container and wait for its end or a stop; its exit code, None when it
        cannot start (an unknown image, a configuration error)."""
        image = box.spec.get("image", "")
        if image not in self.node.images:
            await self._image_missing(box, image)
            return None
        try:
            argv, env, cwd = await self._command(box)
        except ConfigError as exc:
            box.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            await self.node.event(self.pod, "Warning", "Failed", f"Error: {exc}")
            await self.push()
            return None
        await self.node.event(self.pod, "Normal", "Pulled",
                              f'Container image "{image}" already present on machine')  # fmt: skip
        await self.node.event(self.pod, "Normal", "Created", f"Created container: {box.name}")
        log = box.log_path(box.restarts)
        log.parent.mkdir(parents=True, exist_ok=True)
        started = now()
        wrapped = ["unshare", "--mount", "--uts", "--propagation", "private", "/bin/sh", "-c",
                   _MOUNT_SCRIPT, "sh", self.hostname]  # fmt: skip
        for host, target in [*self.binds, (str(self.hosts_file), "/etc/hosts")]:
            wrapped += [host, target]
        try:
            box.proc = await asyncio.create_subprocess_exec(
                *wrapped, "--", *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            message = f'exec: "{argv[0]}": {exc.strerror}'
            box.terminated(128, "StartError", started, message)
            await self.node.event(self.pod, "Warning", "Failed", f"Error: {message}")
            await self.push()
            return 128
        with open(log, "a", encoding="utf-8") as out:
            pumps = [
                asyncio.ensure_future(_pump(box.proc.stdout, out, "stdout")),
                asyncio.ensure_future(_pump(box.proc.stderr, out, "stderr")),
            ]
            box.state = {"running": {"startedAt": started}}
            box.started = True
            box.ready = not box.init and "readinessProbe" not in box.spec
            await self.node.event(self.pod, "Normal", "Started", f"Started container {box.name}")
            await self.push()
            probe = (
                asyncio.ensure_future(self._probe(box))
                if not box.init and "readinessProbe" in box.spec
                else None
            )
            waiter = asyncio.ensure_future(box.proc.wait())
            stop = asyncio.ensure_future(self.stopping.wait())
            await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if probe is not None:
                probe.cancel()
            if not waiter.done():
                await self.node.event(self.pod, "Normal", "Killing",
                                      f"Stopping container {box.name}")  # fmt: skip
                await self._terminate(box, waiter)
            code = box.proc.returncode or 0
            _killpg(box.proc)  # what the main process left behind dies with the container
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pumps), 2.0)
        exit_code = 128 - code if code < 0 else code
        box.terminated(exit_code, "Completed" if exit_code == 0 else "Error", started)
        if box.init or self.pod["spec"].get("restartPolicy") != "Always":
            self.phase = self._phase() if not box.init else self.phase
        await self.push()
        return exit_code

    async def _terminate(self, box: ContainerBox, waiter: asyncio.Future[int]) -> None:
        assert box.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(box.proc.pid, signal.SIGTERM if self.grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.grace)
        except asyncio.TimeoutError:
            _killpg(box.proc)
            await waiter

    async def _image_missing(self, box: ContainerBox, image: str) -> None:
        pull = (f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
                f'pull and unpack image "{image}": not found')  # fmt: skip
        await self.node.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"')
        box.state = {"waiting": {"reason": "ErrImagePull", "message": pull}}
        await self.node.event(self.pod, "Warning", "Failed", pull)
        await self.push()
        if await self._sleep(0.5):
            return
        backoff = f'Back-off pulling image "{image}"'
        box.state = {"waiting": {"reason": "ImagePullBackOff", "message": backoff}}
        await self.node.event(self.pod, "Normal", "BackOff", backoff)
        await self.push()
        await self.stopping.wait()

    async def _probe(self, box: ContainerBox) -> None:
        probe = box.spec["readinessProbe"]
        period = float(probe.get("periodSeconds", 10))
        failures, successes = int(probe.get("failureThreshold", 3)), int(probe.get("successThreshold", 1))
        await asyncio.sleep(float(probe.get("initialDelaySeconds", 0)))
        ok_count = bad_count = 0
        while True:
            ok = await self._probe_once(box, probe)
            ok_count, bad_count = (ok_count + 1, 0) if ok else (0, bad_count + 1)
            ready = box.ready
            if ok_count >= successes:
                ready = True
            elif bad_count >= failures:
                ready = False
            if ready != box.ready:
                box.ready = ready
                await self.push()
            await asyncio.sleep(period if box.ready else min(period, 1.0))

    async def _probe_once(self, box: ContainerBox, probe: Obj) -> bool:
        timeout = float(probe.get("timeoutSeconds", 1))
        ports = {p.get("name"): p["containerPort"] for p in box.spec.get("ports") or []}
        try:
            if "httpGet" in probe:
                get = probe["httpGet"]
                port = ports.get(get["port"], get["port"])
                host = get.get("host") or self.ip
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout)
                writer.write(f"GET {get.get('path', '/')} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readline(), timeout)
                writer.close()
                parts = head.split()
                return len(parts) > 1 and 200 <= int(parts[1]) < 400
            if "tcpSocket" in probe:
                port = ports.get(probe["tcpSocket"]["port"], probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(asyncio.open_connection(self.ip, int(port)), timeout)
                writer.close()
                return True
            if "exec" in probe:
                proc = await asyncio.create_subprocess_exec(*probe["exec"]["command"])
                return await asyncio.wait_for(proc.wait(), timeout) == 0
        except (OSError, asyncio.TimeoutError, ValueError):
            return False
        return False

    # --- status ----------------------------------------------------------------------------

    async def push(self) -> None:
        """PATCH ``pods/status`` with the pod's state now (nothing when unchanged)."""
        if self.is_gone:
            return
        mains = [b.status() for b in self.mains]
        inits = [b.status() for b in self.inits]
        ready = self.initialized and all(b.ready for b in self.mains)
        if self.phase in ("Succeeded", "Failed"):
            ready = False
        sandbox = bool(self.ip)
        not_ready = [b.name for b in self.mains if not b.ready]
        why = {} if ready else {"reason": "PodCompleted" if self.phase == "Succeeded" else
                                "ContainersNotReady",
                                "message": f"containers with unready status: [{' '.join(not_ready)}]"}  # fmt: skip
        if self.phase in ("Succeeded", "Failed"):
            why = {"reason": "PodCompleted" if self.phase == "Succeeded" else "PodFailed"}
        conditions = [
            {"type": "PodReadyToStartContainers", "status": str(sandbox)},
            {"type": "Initialized", "status": str(self.initialized or not self.inits)},
            {"type": "ContainersReady", "status": str(ready), **why},
            {"type": "Ready", "status": str(ready), **why},
            {"type": "PodScheduled", "status": "True"},
        ]
        status: Obj = {
            "phase": self.phase,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "containerStatuses": mains,
            "conditions": conditions,
        }
        if inits:
            status["initContainerStatuses"] = inits
        if sandbox:
            status["podIP"] = self.ip
            status["podIPs"] = [{"ip": self.ip}]
        if status == self._pushed:
            return
        previous = {c["type"]: c for c in (self._pushed or {}).get("conditions", [])}
        stamp = now()
        for cond in conditions:
            old = previous.get(cond["type"])
            cond["lastTransitionTime"] = (
                old["lastTransitionTime"] if old and old["status"] == cond["status"] else stamp
            )
            cond["lastProbeTime"] = None
        self._pushed = status
        body = {"status": {**status, "startTime": self.pod.get("status", {}).get("startTime") or stamp}}
        try:
            await self.node.api.patch(f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", body)
        except ApiError as exc:
            if exc.status == 404:
                self.gone()
        except OSError:
            self._pushed = None

    # --- volumes and the command -----------------------------------------------------------

    async def _prepare(self) -> str | None:
        """The pod's volumes as folders; a FailedMount message while one cannot be made."""
        folders: dict[str, str] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            try:
                folders[name] = await self._volume(volume, target)
            except ConfigError as exc:
                return f'MountVolume.SetUp failed for volume "{name}" : {exc}'
        mounts, binds = [], []
        boxes = [*self.inits, *self.mains]
        for mount in [m for b in boxes for m in b.spec.get("volumeMounts") or []]:
            host = folders.get(mount["name"])
            if host is None or mount["mountPath"] in ("", "/"):
                continue
            if mount.get("subPath"):
                host = os.path.join(host, mount["subPath"])
                os.makedirs(host, exist_ok=True)
            path = mount["mountPath"].rstrip("/")
            if path.startswith(BIND_PREFIXES):
                Path(path).mkdir(parents=True, exist_ok=True)
                binds.append((host, path))
            else:
                mounts.append((path, host))
        self.mounts = sorted(set(mounts), key=lambda pair: -len(pair[0]))
        self.binds = sorted(set(binds))
        return None

    async def _volume(self, volume: Obj, target: Path) -> str:
        if "persistentVolumeClaim" in volume:
            return await self._claim_folder(volume["persistentVolumeClaim"]["claimName"])
        if "hostPath" in volume:
            return str(volume["hostPath"]["path"])
        files: dict[str, bytes] = {}
        if "configMap" in volume or "secret" in volume:
            kind = "configMap" if "configMap" in volume else "secret"
            files = await self._source(kind, volume[kind])
        elif "projected" in volume:
            for source in volume["projected"].get("sources") or []:
                if "serviceAccountToken" in source:
                    token = source["serviceAccountToken"]
                    files[token["path"]] = (await self._token(token)).encode()
                elif "downwardAPI" in source:
                    files |= self._downward(source["downwardAPI"])
                else:
                    for kind in ("configMap", "secret"):
                        if kind in source:
                            files |= await self._source(kind, source[kind])
        elif "downwardAPI" in volume:
            files = self._downward(volume["downwardAPI"])
        target.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            out = target / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        return str(target)

    async def _claim_folder(self, claim: str) -> str:
        try:
            pvc = await self.node.api.get(
                f"/api/v1/namespaces/{self.ns}/persistentvolumeclaims/{claim}"
            )
        except ApiError as exc:
            raise ConfigError(f'persistentvolumeclaim "{claim}" not found') from exc
        volume = pvc.get("spec", {}).get("volumeName")
        if not volume or pvc.get("status", {}).get("phase") != "Bound":
            raise ConfigError(f'persistentvolumeclaim "{claim}" is not bound')
        pv = await self.node.api.get(f"/api/v1/persistentvolumes/{volume}")
        source = pv["spec"].get("hostPath") or pv["spec"].get("local")
        if not source:
            raise ConfigError(f'persistentvolume "{volume}" is neither hostPath nor local')
        Path(source["path"]).mkdir(parents=True, exist_ok=True)
        return str(source["path"])

    async def _source(self, kind: str, source: Obj) -> dict[str, bytes]:
        plural, key = ("configmaps", "name") if kind == "configMap" else ("secrets", "secretName")
        name = source.get(key) or source.get("name")
        try:
            obj = await self.node.api.get(f"/api/v1/namespaces/{self.ns}/{plural}/{name}")
        except ApiError as exc:
            if source.get("optional"):
                return {}
            raise ConfigError(f'{kind.lower()} "{name}" not found') from exc
        files = source_files(obj, kind)
        if source.get("items"):
            files = {i["path"]: files[i["key"]] for i in source["items"] if i["key"] in files}
        return files

    async def _token(self, source: Obj) -> str:
        account = self.pod["spec"].get("serviceAccountName") or "default"
        request: Obj = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": int(source.get("expirationSeconds", 3607)),
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name,
                                   "uid": self.uid},
            },
        }  # fmt: skip
        if source.get("audience"):
            request["spec"]["audiences"] = [source["audience"]]
        try:
            answer = await self.node.api.create(
                f"/api/v1/namespaces/{self.ns}/serviceaccounts/{account}/token", request
            )
        except ApiError as exc:
            raise ConfigError(f"failed to fetch token: {exc}") from exc
        return str(answer["status"]["token"])

    def _downward(self, source: Obj) -> dict[str, bytes]:
        return {
            item["path"]: str(self.field(item["fieldRef"]["fieldPath"])).encode()
            for item in source.get("items") or []
            if "fieldRef" in item
        }

    def field(self, path: str) -> str:
        m = self.pod["metadata"]
        if keyed := _FIELD_KEY.match(path):
            return str((m.get(keyed[1]) or {}).get(keyed[2], ""))
        if path in ("metadata.labels", "metadata.annotations"):
            values = m.get(path.split(".")[1]) or {}
            return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
        return {
            "metadata.name": self.name,
            "metadata.namespace": self.ns,
            "metadata.uid": self.uid,
            "spec.nodeName": self.node.name,
            "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", "default"),
            "status.podIP": self.ip,
            "status.podIPs": self.ip,
            "status.hostIP": "127.0.0.1",
            "status.hostIPs": "127.0.0.1",
        }.get(path, "")

    def write_hosts(self) -> None:
        """The pod's ``/etc/hosts``, rewritten in place (it is bind-mounted)."""
        if not self.ip:
            return
        spec = self.pod["spec"]
        own = [self.hostname]
        if spec.get("subdomain"):
            fqdn = f"{self.hostname}.{spec['subdomain']}.{self.ns}.svc"
            own = [f"{fqdn}.cluster.local", fqdn, self.hostname]
        text = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
        text += f"{self.ip}\t{' '.join(own)}\n"
        text += "".join(line + "\n" for line in self.node.hosts if not line.startswith(self.ip + "\t"))
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.hosts_file, "a+") as f:
            f.seek(0)
            if f.read() != text:
                f.seek(0)
                f.truncate()
                f.write(text)

    def remap(self, text: str) -> str:
        """Container paths under a mount -> host folders."""
        for mount, host in self.mounts:
            text = re.sub(rf"(?<![\w.-]){re.escape(mount)}(?=$|[/\s\"',;:)\]}}])", host, text)
        return text

    async def _command(self, box: ContainerBox) -> tuple[list[str], dict[str, str], str]:
        c = box.spec
        interpreter = self.node.images[c.get("image", "")]
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join(
                [str(self.node.shim(interpreter)), os.path.dirname(interpreter),
                 "/usr/local/bin:/usr/bin:/bin"]
            ),
            "HOME": str(home),
            "HOSTNAME": self.hostname,
            "LANG": "C.UTF-8",
            "KUBERNETES_SERVICE_HOST": "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(self.node.args.apiserver_port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.node.args.apiserver_port),
        }  # fmt: skip
        for source in c.get("envFrom") or []:
            for kind in ("configMap", "secret"):
                ref = source.get(f"{kind}Ref")
                if ref is None:
                    continue
                try:
                    files = await self._source(kind, {"name": ref["name"], "optional": ref.get("optional")})
                except ConfigError as exc:
                    raise ConfigError(str(exc)) from exc
                for key, data in files.items():
                    env[source.get("prefix", "") + key] = data.decode("utf-8", "replace")
        for var in c.get("env") or []:
            if "valueFrom" in var:
                value = await self._value_from(box, var["valueFrom"])
                if value is None:
                    continue
            else:
                value = expand(str(var.get("value", "")), env)
            env[var["name"]] = value
        gpus = int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
        if gpus and not box.gpus:
            box.gpus = [self.node.free_gpus.pop(0) for _ in range(min(gpus, len(self.node.free_gpus)))]
        if box.gpus:
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(map(str, box.gpus))
        env = {k: self.remap(v) for k, v in env.items()}
        argv = [self.remap(expand(str(a), env)) for a in [*(c.get("command") or []), *(c.get("args") or [])]]
        if not argv:
            argv = ["python3"]
        if _PYTHON.match(os.path.basename(argv[0])):
            argv[0] = interpreter
        cwd = self.remap(c["workingDir"]) if c.get("workingDir") else str(self.dir / "root")
        os.makedirs(cwd, exist_ok=True)
        return argv, env, cwd

    async def _value_from(self, box: ContainerBox, source: Obj) -> str | None:
        if "fieldRef" in source:
            return self.field(source["fieldRef"]["fieldPath"])
        for kind in ("configMap", "secret"):
            ref = source.get(f"{kind}KeyRef")
            if ref is None:
                continue
            files = await self._source(kind, {"name": ref["name"], "optional": ref.get("optional")})
            if ref["key"] in files:
                return files[ref["key"]].decode("utf-8", "replace")
            if ref.get("optional"):
                return None
            raise ConfigError(f"couldn't find key {ref['key']} in {kind} {self.ns}/{ref['name']}")
        if "resourceFieldRef" in source:
            resources = box.spec.get("resources") or {}
            kind, _, name = source["resourceFieldRef"]["resource"].partition(".")
            return str((resources.get(kind) or {}).get(name, "0"))
        return ""


class ConfigError(Exception):
    """A pod that cannot start yet: a missing ConfigMap, Secret, claim or key."""


def _killpg(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


async def _pump(stream: asyncio.StreamReader | None, out: Any, name: str) -> None:
    """Copy a container's stream into its log file, a CRI line per line."""
    assert stream is not None
    pending = b""
    while chunk := await stream.read(65536):
        *lines, pending = (pending + chunk).split(b"\n")
        stamp = nano_now()
        out.write("".join(f"{stamp} {name} F {ln.decode('utf-8', 'replace').removesuffix(chr(13))}\n"
                          for ln in lines))  # fmt: skip
        out.flush()
    if pending:
        out.write(f"{nano_now()} {name} F {pending.decode('utf-8', 'replace')}\n")
        out.flush()


def source_files(obj: Obj, kind: str) -> dict[str, bytes]:
    """A ConfigMap's (text and binary) or a Secret's (base64) data as file contents."""
    files: dict[str, bytes] = {}
    if kind == "configMap":
        files.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        files.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        files.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
    return files


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` references to earlier variables (unknown ones stay as written)."""
    return _VAR_REF.sub(lambda m: env.get(m[1], m[0]), text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--dns-kubeconfig", default="")
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--port", type=int, required=True, help="the log endpoint's port")
    parser.add_argument("--serving-cert", required=True)
    parser.add_argument("--serving-key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--apiserver-port", type=int, required=True)
    parser.add_argument("--images", required=True, help="a JSON file: image -> interpreter")
    parser.add_argument("--cpu", default="16")
    parser.add_argument("--memory", default="64Gi")
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--gpu-product", default="NVIDIA-A100-SXM4-80GB")
    parser.add_argument("--taint", action="append", default=[], help="key=value:Effect")
    parser.add_argument("--ip-block", type=int, default=10, help="pod IPs are 127.<block>.x.y")
    parser.add_argument("--grace-cap", type=float, default=5.0)
    parser.add_argument("--kubelet-version", default="v1.37.2")
    args = parser.parse_args(argv)
    ipaddress.ip_address(f"127.{args.ip_block}.0.1")  # a valid block
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    asyncio.run(NodeAgent(args).run())


if __name__ == "__main__":
    main()
