"""The kubelet: runs the node's pods as local processes and reports their status.

An image maps to a local Python interpreter; ``python`` commands run with it (a ``python`` shim
leads the PATH for shells), other commands run as given. Volumes are host directories
(ConfigMap/Secret files, emptyDir, ``pvc_dirs`` for claims) and every container path under a
``mountPath`` in the command, args and env is rewritten to its host directory. Output is kept
with its arrival time for the log endpoint. Deleting a pod sends SIGTERM to its process group,
then SIGKILL after the grace period (capped), then removes the pod. Pods of Deployments (and
ReplicaSets/StatefulSets) are only pretended to run: Running and Ready after ``ready_delay``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import signal
import time
from pathlib import Path

from .base import Context, Controller
from .common import ApiError, Obj, controller_kind, rfc3339, set_condition, within

SIMULATED_OWNERS = frozenset({"Deployment", "ReplicaSet", "StatefulSet"})
_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_FIELD_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class LogBuffer:
    """A container's output lines with their arrival times (ns), and whether it ended."""

    def __init__(self) -> None:
        self.lines: list[tuple[int, bytes]] = []
        self.done = False
        self._changed = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """An event set at the next change (take it before checking ``lines``)."""
        return self._changed

    def append(self, when_ns: int, line: bytes) -> None:
        """Add a line (without its newline) that arrived at ``when_ns``."""
        self.lines.append((when_ns, line))
        self._notify()

    def close(self) -> None:
        """The container ended: followers stop after the last line."""
        self.done = True
        self._notify()

    def text(self) -> str:
        """The whole log as text."""
        return "".join(line.decode("utf-8", "replace") + "\n" for _, line in self.lines)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()


class Kubelet(Controller):
    """Starts a ``PodRun`` for every pod bound to the node and stops it when the pod goes."""

    kinds = frozenset({"Pod", "ConfigMap", "Secret"})
    tick = 0.5

    def __init__(
        self,
        ctx: Context,
        *,
        images: dict[str, str],
        kubeconfig: Path,
        workdir: Path,
        pvc_dirs: dict[str, Path | str],
        grace_cap: float = 5.0,
        ready_delay: float = 0.2,
    ) -> None:
        super().__init__(ctx)
        self.images = images
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.pvc_dirs = pvc_dirs
        self.grace_cap = grace_cap
        self.ready_delay = ready_delay
        self.pods_rt = ctx.rt("pods")
        self.runs: dict[str, PodRun] = {}
        self.logs: dict[tuple[str, str], LogBuffer] = {}
        #: Every process the kubelet started (main processes; their groups are killed too).
        self.pids: list[int] = []

    def log_buffer(self, uid: str, container: str) -> LogBuffer | None:
        """The log of a pod's container (the API server's log source)."""
        return self.logs.get((uid, container))

    def reconcile(self) -> None:
        """Start runs for new pods on the node; stop those of deleted pods."""
        seen = set()
        for rt, pod in self.store.live():
            if rt != self.pods_rt or pod.get("spec", {}).get("nodeName") != self.ctx.node:
                continue
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            run = self.runs.get(uid)
            if run is None:
                run = self.runs[uid] = PodRun(self, pod)
                run.task = asyncio.ensure_future(run.main())
            run.pod = pod
            if pod["metadata"].get("deletionTimestamp"):
                run.request_stop(float(pod["metadata"].get("deletionGracePeriodSeconds") or 0))
        for uid, run in list(self.runs.items()):
            if uid in seen:
                continue
            run.request_stop(0.0, gone=True)
            if run.task is not None and run.task.done():
                del self.runs[uid]
                for key in [k for k in self.logs if k[0] == uid]:
                    del self.logs[key]

    async def shutdown(self) -> None:
        """Kill every process at once (the cluster is going away)."""
        for run in list(self.runs.values()):
            run.kill()
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        for run in list(self.runs.values()):
            if run.proc is not None and run.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    await within(run.proc.wait(), 5)
        await asyncio.gather(*tasks, return_exceptions=True)
        for _ in range(200):  # until every process of every group is gone (zombies aside)
            left = _live_groups(set(self.pids))
            if not left:
                break
            for pgid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
            await asyncio.sleep(0.02)

    def shim(self, interpreter: str) -> Path:
        """A directory with ``python``/``python3`` scripts running ``interpreter``."""
        folder = self.workdir / "bin" / hashlib.sha256(interpreter.encode()).hexdigest()[:10]
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for name in ("python", "python3"):
                script = folder / name
                script.write_text(f'#!/bin/sh\nexec "{interpreter}" "$@"\n')
                script.chmod(0o755)
        return folder


class PodRun:
    """One pod's life on the node: mount, pull, run (or pretend), terminate, remove."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.k = kubelet
        self.pod = pod
        m = pod["metadata"]
        self.uid, self.ns, self.name = m["uid"], m["namespace"], m["name"]
        self.dir = kubelet.workdir / "pods" / f"{self.ns}_{self.name}_{self.uid[:8]}"
        self.stopping = asyncio.Event()
        self.grace = 30.0
        self.gone = False
        self.proc: asyncio.subprocess.Process | None = None
        self.task: asyncio.Future[None] | None = None
        self.restarts = 0
        self.last_state: Obj = {}
        self.mounts: list[tuple[str, str]] = []
        spec = pod["spec"]
        self.container: Obj = (spec.get("containers") or [{}])[0]
        self.buffer = kubelet.logs.setdefault(
            (self.uid, self.container.get("name", "")), LogBuffer()
        )
        self.simulated = controller_kind(pod) in SIMULATED_OWNERS

    # --- control -------------------------------------------------------------------------------

    def request_stop(self, grace: float, gone: bool = False) -> None:
        """Terminate with ``grace`` seconds (capped); ``gone`` when the pod object is gone."""
        if not self.stopping.is_set() or grace < self.grace:
            self.grace = min(grace, self.k.grace_cap)
        self.gone = self.gone or gone
        self.stopping.set()

    def kill(self) -> None:
        """SIGKILL the process group now."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless asked to stop; whether a stop was asked."""
        with contextlib.suppress(TimeoutError):
            await within(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    # --- lifecycle -----------------------------------------------------------------------------

    async def main(self) -> None:
        """The whole run; the pod is removed at the end unless it is already gone."""
        try:
            await self._lifecycle()
        except asyncio.CancelledError:
            self.kill()
            self.buffer.close()
            raise
        except Exception as exc:  # a bug in the fake: keep the pod, report it
            self.k.ctx.errors.append(exc)
            self.kill()
            await self.stopping.wait()
        self.buffer.close()
        if not self.gone:
            self.k.store.remove(self.k.pods_rt, self.ns, self.name, self.uid)

    async def _lifecycle(self) -> None:
        image = self.container.get("image", "")
        self._status("Pending", {"waiting": {"reason": "ContainerCreating"}}, sandbox=False)
        reported = ""
        while True:
            problem = self._prepare()
            if problem is None:
                break
            if problem != reported:
                reported = problem
                self._event("Warning", "FailedMount", problem)
            if await self._sleep(0.2):
                return
        if image not in self.k.images:
            await self._image_missing(image)
            return
        self._event("Normal", "Pulled", f'Container image "{image}" already present on machine')
        if self.simulated:
            await self._pretend()
            return
        while True:
            code = await self._run_once()
            if code is None:
                await self.stopping.wait()
                return
            policy = self.pod["spec"].get("restartPolicy", "Always")
            if self.stopping.is_set() or policy == "Never" or (policy == "OnFailure" and code == 0):
                break
            delay = min(0.2 * 2**self.restarts, 2.0)
            self._status(
                "Running",
                {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off {delay:g}s restarting failed container="
                        f"{self.container.get('name')} pod={self.name}_{self.ns}({self.uid})",
                    }
                },
            )
            if await self._sleep(delay):
                break
            self.restarts += 1
        await self.stopping.wait()

    async def _image_missing(self, image: str) -> None:
        pull = (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
            f'unpack image "{image}": not found'
        )
        self._status("Pending", {"waiting": {"reason": "ErrImagePull", "message": pull}})
        self._event("Normal", "Pulling", f'Pulling image "{image}"')
        self._event("Warning", "Failed", pull)
        self._event("Warning", "Failed", "Error: ErrImagePull")
        if await self._sleep(0.3):
            return
        backoff = f'Back-off pulling image "{image}"'
        self._status("Pending", {"waiting": {"reason": "ImagePullBackOff", "message": backoff}})
        self._event("Normal", "BackOff", backoff)
        self._event("Warning", "Failed", "Error: ImagePullBackOff")
        await self.stopping.wait()

    async def _pretend(self) -> None:
        name = self.container.get("name")
        self._event("Normal", "Created", f"Created container {name}")
        if await self._sleep(self.k.ready_delay):
            return
        started = rfc3339()
        self._event("Normal", "Started", f"Started container {name}")
        self._status("Running", {"running": {"startedAt": started}}, ready=True)
        await self.stopping.wait()
        self._event("Normal", "Killing", f"Stopping container {name}")
        self._terminated(137, "Error", started, "Failed")

    async def _run_once(self) -> int | None:
        """Start the container's process and wait for its end (or a stop); its exit code,
        None when it could not start."""
        name = self.container.get("name")
        try:
            argv, env, cwd = self._command()
        except ApiError as exc:
            self._status(
                "Pending",
                {"waiting": {"reason": "CreateContainerConfigError", "message": exc.message}},
            )
            self._event("Warning", "Failed", f"Error: {exc.message}")
            return None
        self._event("Normal", "Created", f"Created container {name}")
        started = rfc3339()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            message = (
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f'create failed: exec: "{argv[0]}": {exc.strerror}: unknown'
            )
            self._event("Warning", "Failed", f"Error: {message}")
            phase = "Failed" if self.pod["spec"].get("restartPolicy") == "Never" else "Running"
            self._terminated(128, "StartError", started, phase, message)
            return 128
        self.k.pids.append(self.proc.pid)
        if self.buffer.lines or self.buffer.done:  # a restarted container logs afresh
            self.buffer.close()
            self.buffer = LogBuffer()
            self.k.logs[(self.uid, self.container.get("name", ""))] = self.buffer
        pump = asyncio.ensure_future(self._pump(self.proc))
        self._event("Normal", "Started", f"Started container {name}")
        self._status("Running", {"running": {"startedAt": started}}, ready=True)
        waiter = asyncio.ensure_future(self.proc.wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait([waiter, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not waiter.done():
            self._event("Normal", "Killing", f"Stopping container {name}")
            await self._terminate(waiter)
        code = self.proc.returncode or 0
        self.kill()  # whatever the main process left behind dies with the container
        with contextlib.suppress(TimeoutError):
            await within(pump, 2.0)
        self.buffer.close()
        exit_code = 128 - code if code < 0 else code
        policy = self.pod["spec"].get("restartPolicy", "Always")
        if exit_code == 0 and policy != "Always":
            phase = "Succeeded"
        elif policy == "Never" or self.stopping.is_set():
            phase = "Failed"
        else:
            phase = "Running"
        self._terminated(exit_code, "Completed" if exit_code == 0 else "Error", started, phase)
        return exit_code

    async def _terminate(self, waiter: asyncio.Future[int]) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGTERM if self.grace > 0 else signal.SIGKILL)
        try:
            await within(asyncio.shield(waiter), self.grace)
        except TimeoutError:
            self.kill()
            await waiter

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        pending = b""
        while chunk := await proc.stdout.read(65536):
            now = time.time_ns()
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self.buffer.append(now, line.removesuffix(b"\r"))
        if pending:
            self.buffer.append(time.time_ns(), pending)

    # --- preparation ---------------------------------------------------------------------------

    def _prepare(self) -> str | None:
        """Create the pod's volumes; a FailedMount message while one cannot be mounted yet."""
        volumes: dict[str, str] = {}
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.dir / "volumes" / name
            if "persistentVolumeClaim" in volume:
                claim = volume["persistentVolumeClaim"]["claimName"]
                folder = self.k.pvc_dirs.setdefault(claim, self.k.workdir / "pvcs" / claim)
                Path(folder).mkdir(parents=True, exist_ok=True)
                volumes[name] = str(folder)
                continue
            if "hostPath" in volume:
                volumes[name] = volume["hostPath"]["path"]
                continue
            for kind, key in (("configMap", "name"), ("secret", "secretName")):
                if kind in volume:
                    problem = self._write_source(kind, volume[kind], key, target, name)
                    if problem is not None:
                        return problem
                    break
            else:
                target.mkdir(parents=True, exist_ok=True)  # emptyDir, and what is not supported
            volumes[name] = str(target)
        self.mounts = []
        for mount in self.container.get("volumeMounts") or []:
            host = volumes.get(mount["name"])
            if host is None or mount["mountPath"] in ("", "/"):
                continue
            if mount.get("subPath"):
                host = os.path.join(host, mount["subPath"])
                os.makedirs(host, exist_ok=True)
            self.mounts.append((mount["mountPath"].rstrip("/"), host))
        self.mounts.sort(key=lambda pair: -len(pair[0]))
        return None

    def _write_source(
        self, kind: str, source: Obj, key: str, target: Path, volume: str
    ) -> str | None:
        plural = "configmaps" if kind == "configMap" else "secrets"
        obj = self.k.store.get(self.k.ctx.rt(plural), self.ns, source[key])
        if obj is None:
            if source.get("optional"):
                target.mkdir(parents=True, exist_ok=True)
                return None
            return (
                f'MountVolume.SetUp failed for volume "{volume}" : {kind.lower()} '
                f'"{source[key]}" not found'
            )
        files = _source_files(obj, kind)
        items = source.get("items")
        if items:
            files = {item["path"]: files[item["key"]] for item in items if item["key"] in files}
        target.mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            out = target / path
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
        return None

    def remap(self, text: str) -> str:
        """Container paths under a mount -> host paths."""
        for mount, host in self.mounts:
            text = re.sub(rf"(?<![\w.-]){re.escape(mount)}(?=$|[/\s\"',;:)\]}}])", host, text)
        return text

    def _command(self) -> tuple[list[str], dict[str, str], str]:
        """argv, environment and working directory of the main container."""
        c, spec = self.container, self.pod["spec"]
        interpreter = self.k.images[c.get("image", "")]
        shim = self.k.shim(interpreter)
        home = self.dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.pathsep.join(
                [str(shim), os.path.dirname(interpreter), os.environ.get("PATH", "")]
            ),
            "HOME": str(home),
            "HOSTNAME": spec.get("hostname") or self.name,
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "KUBECONFIG": str(self.k.kubeconfig),
        }
        for source in c.get("envFrom") or []:
            for kind, plural in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
                if kind in source:
                    ref = source[kind]
                    obj = self.k.store.get(self.k.ctx.rt(plural), self.ns, ref["name"])
                    if obj is None and not ref.get("optional"):
                        raise ApiError(
                            400,
                            "CreateContainerConfigError",
                            f'{plural[:-1]} "{ref["name"]}" not found',
                        )
                    for key, data in _source_files(
                        obj or {}, "configMap" if plural == "configmaps" else "secret"
                    ).items():
                        env[source.get("prefix", "") + key] = data.decode("utf-8", "replace")
        for var in c.get("env") or []:
            if "valueFrom" in var:
                value = self._value_from(var["valueFrom"])
                if value is None:
                    continue
            else:
                value = _expand(str(var.get("value", "")), env)
            env[var["name"]] = value
        env = {k: self.remap(v) for k, v in env.items()}
        argv = [
            self.remap(_expand(str(a), env))
            for a in [*(c.get("command") or []), *(c.get("args") or [])]
        ]
        if not argv:
            argv = ["python3"]
        if _PYTHON.match(os.path.basename(argv[0])):  # python, python3, /usr/bin/python3.11
            argv[0] = interpreter
        workdir = c.get("workingDir")
        cwd = self.remap(workdir) if workdir else str(self.dir / "root")
        os.makedirs(cwd, exist_ok=True)
        return argv, env, cwd

    def _value_from(self, source: Obj) -> str | None:
        m = self.pod["metadata"]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            if keyed := _FIELD_KEY.match(path):
                return str((m.get(keyed[1]) or {}).get(keyed[2], ""))
            values = {
                "metadata.name": self.name,
                "metadata.namespace": self.ns,
                "metadata.uid": self.uid,
                "spec.nodeName": self.k.ctx.node,
                "spec.serviceAccountName": self.pod["spec"].get("serviceAccountName", "default"),
                "status.podIP": "127.0.0.1",
                "status.podIPs": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
            }
            return values.get(path, "")
        for kind, plural in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
            if kind in source:
                ref = source[kind]
                obj = self.k.store.get(self.k.ctx.rt(plural), self.ns, ref["name"])
                files = _source_files(
                    obj or {}, "configMap" if plural == "configmaps" else "secret"
                )
                if ref["key"] in files:
                    return files[ref["key"]].decode("utf-8", "replace")
                if ref.get("optional"):
                    return None
                what = f'{plural[:-1]} "{ref["name"]}"'
                raise ApiError(
                    400,
                    "CreateContainerConfigError",
                    f"{what} not found"
                    if obj is None
                    else f"couldn't find key {ref['key']} in {what}",
                )
        if "resourceFieldRef" in source:
            res = self.container.get("resources") or {}
            resource = source["resourceFieldRef"]["resource"]
            kind, _, name = resource.partition(".")
            return str((res.get(kind) or {}).get(name, "0"))
        return ""

    # --- status --------------------------------------------------------------------------------

    def _event(self, type_: str, reason: str, message: str) -> None:
        if not self.gone:
            self.k.ctx.events.record(self.pod, type_, reason, message)

    def _status(self, phase: str, state: Obj, *, ready: bool = False, sandbox: bool = True) -> None:
        names = [c.get("name") for c in self.pod["spec"].get("containers") or []]
        image = self.container.get("image", "")
        known = image in self.k.images
        started = "running" in state

        def change(pod: Obj) -> None:
            status = pod.setdefault("status", {})
            status["phase"] = phase
            status.setdefault("startTime", rfc3339())
            status["hostIP"] = "127.0.0.1"
            status["hostIPs"] = [{"ip": "127.0.0.1"}]
            if sandbox:
                status["podIP"] = "127.0.0.1"
                status["podIPs"] = [{"ip": "127.0.0.1"}]
            statuses = []
            for c in self.pod["spec"].get("containers") or []:
                entry: Obj = {
                    "name": c.get("name"),
                    "image": c.get("image"),
                    "imageID": f"docker.io/library/{c.get('image')}@sha256:{'0' * 64}"
                    if known
                    else "",
                    "ready": ready,
                    "restartCount": self.restarts,
                    "started": started,
                    "state": state,
                    "lastState": self.last_state,
                }
                if started or "terminated" in state:
                    entry["containerID"] = f"containerd://{self.uid.replace('-', '')}"
                statuses.append(entry)
            status["containerStatuses"] = statuses
            conditions = status.setdefault("conditions", [])
            set_condition(
                conditions,
                "PodReadyToStartContainers",
                "True" if sandbox else "False",
                lastProbeTime=None,
            )
            set_condition(conditions, "Initialized", "True", lastProbeTime=None)
            if ready:
                why, message = "", ""
            elif phase == "Succeeded":
                why, message = "PodCompleted", ""
            elif phase == "Failed":
                why, message = "PodFailed", ""
            else:
                why, message = (
                    "ContainersNotReady",
                    f"containers with unready status: [{' '.join(map(str, names))}]",
                )
            for kind in ("ContainersReady", "Ready"):
                set_condition(
                    conditions, kind, "True" if ready else "False", why, message, lastProbeTime=None
                )
            for cond in conditions:
                if not cond.get("reason"):
                    cond.pop("reason", None)
                if not cond.get("message"):
                    cond.pop("message", None)

        self.k.store.update(self.k.pods_rt, self.ns, self.name, change, self.uid)

    def _terminated(
        self, code: int, reason: str, started: str, phase: str, message: str = ""
    ) -> None:
        state: Obj = {
            "terminated": {
                "exitCode": code,
                "reason": reason,
                "startedAt": started,
                "finishedAt": rfc3339(),
                "containerID": f"containerd://{self.uid.replace('-', '')}",
            }
        }
        if message:
            state["terminated"]["message"] = message
        self._status(phase, state)
        self.last_state = state


def _live_groups(pgids: set[int]) -> set[int]:
    """Which of these process groups still have a process that is not a zombie (Linux)."""
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(pgrp) in pgids and state != "Z":
            alive.add(int(pgrp))
    return alive


def _source_files(obj: Obj, kind: str) -> dict[str, bytes]:
    """A ConfigMap's (text and binary) or a Secret's (base64) data as file contents."""
    files: dict[str, bytes] = {}
    if kind == "configMap":
        files.update({k: str(v).encode() for k, v in (obj.get("data") or {}).items()})
        files.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    else:
        files.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        files.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
    return files


def _expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` references to earlier variables (unknown ones stay as written)."""
    return _VAR_REF.sub(lambda m: env.get(m[1], m[0]), text)
