"""One pod's life on the node: its containers as processes, restarts, probes, status."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from ..kubeapi import ApiError, Obj
from .logs import pump
from .sandbox import ConfigError, PodSandbox
from .times import now

if TYPE_CHECKING:
    from .agent import NodeAgent

_MOUNT_SCRIPT = (
    'set -e; hostname "$1"; shift; '
    'while [ "$1" != "--" ]; do mount --bind "$1" "$2"; shift 2; done; shift; exec "$@"'
)


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
        state: Obj = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": now(),
            "containerID": self.status().get("containerID", ""),
        }
        if message:
            state["message"] = message
        self.state = {"terminated": state}
        self.ready = False
        self.started = False
        self.finished_instance = self.restarts


class PodRun(PodSandbox):
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
        self.failed = False  # stopped (or never started) before it could end by itself
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
            killpg(box.proc)
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
                killpg(box.proc)
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
        if self._started_before() and await self._recover():
            return
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
        self.ip = self.ip or self.node.allocate_ip()
        self.write_hosts()
        await self.push()
        for box in self.inits:
            ok = await self._run_to_end(box)
            if not ok:
                self.failed = self.failed or self.stopping.is_set()
                await self._finish()
                return
        self.initialized = True
        await self.push()
        await asyncio.gather(*(self._keep_running(box) for box in self.mains))
        await self._finish()

    def _started_before(self) -> bool:
        """Whether an earlier agent of this node started the pod's containers."""
        statuses = (self.pod.get("status") or {}).get("containerStatuses") or []
        return any("waiting" not in (c.get("state") or {"waiting": {}}) for c in statuses)

    async def _recover(self) -> bool:
        """After the node agent was killed: its containers are gone (their leftovers are
        killed), each reported terminated with ``ContainerStatusUnknown`` as a kubelet does when
        it cannot find a container; whether the pod ends here (``restartPolicy: Never``)."""
        for pid_file in self.dir.glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError, PermissionError, OSError):
                os.killpg(int(pid_file.read_text()), signal.SIGKILL)
            pid_file.unlink(missing_ok=True)
        status = self.pod.get("status") or {}
        self.ip = status.get("podIP") or ""
        if self.ip:
            self.node.claim_ip(self.ip)
        before = {c["name"]: c for c in status.get("containerStatuses") or []}
        for box in self.mains:
            old = before.get(box.name) or {}
            box.restarts = int(old.get("restartCount", 0))
            started = ((old.get("state") or {}).get("running") or {}).get("startedAt", now())
            box.terminated(
                137, "ContainerStatusUnknown", started,
                "The container could not be located when the node agent restarted",
            )  # fmt: skip
        self.initialized = True
        if self.pod["spec"].get("restartPolicy", "Always") != "Never":
            for box in self.mains:
                box.last_state, box.restarts = box.state, box.restarts + 1
            return False
        await self._finish()
        return True

    async def _end_pending(self) -> None:
        for box in self.containers.values():
            if "waiting" in box.state:
                box.state = {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the pod was terminated",
                        "startedAt": None,
                        "finishedAt": now(),
                    }
                }
        self.failed = True
        await self.push()

    async def _finish(self) -> None:
        """Everything ended (or was stopped): the final status; wait for the pod's deletion."""
        await self.push()
        await self.stopping.wait()
        if self.phase in ("Pending", "Running"):
            self.failed = True
            await self.push()

    @property
    def phase(self) -> str:
        """The pod's phase, as a kubelet derives it from its containers."""
        if self.failed:
            return "Failed"
        states = [b.state for b in self.mains]
        if not self.initialized:
            init_failed = any(
                "terminated" in b.state and b.state["terminated"]["exitCode"] != 0
                for b in self.inits
            )
            policy = self.pod["spec"].get("restartPolicy", "Always")
            return "Failed" if init_failed and policy == "Never" else "Pending"
        if states and all("terminated" in s for s in states):
            succeeded = all(s["terminated"]["exitCode"] == 0 for s in states)
            policy = self.pod["spec"].get("restartPolicy", "Always")
            restarting = policy == "Always" or (policy == "OnFailure" and not succeeded)
            if restarting and not self.stopping.is_set():
                return "Running"
            return "Succeeded" if succeeded else "Failed"
        if any("running" in s for s in states) or any(b.restarts for b in self.mains):
            return "Running"
        return "Pending"

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
        box.state = {
            "waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off {delay:g}s restarting failed container={box.name} "
                f"pod={self.name}_{self.ns}({self.uid})",
            }
        }
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
        await self.node.event(
            self.pod, "Normal", "Pulled", f'Container image "{image}" already present on machine'
        )
        await self.node.event(self.pod, "Normal", "Created", f"Created container: {box.name}")
        log = box.log_path(box.restarts)
        log.parent.mkdir(parents=True, exist_ok=True)
        started = now()
        wrapped = [
            "unshare",
            "--mount",
            "--uts",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            _MOUNT_SCRIPT,
            "sh",
            self.hostname,
        ]
        for host, target in [*self.binds, (str(self.hosts_file), "/etc/hosts")]:
            wrapped += [host, target]
        try:
            box.proc = await asyncio.create_subprocess_exec(
                *wrapped,
                "--",
                *argv,
                cwd=cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            message = f'exec: "{argv[0]}": {exc.strerror}'
            box.terminated(128, "StartError", started, message)
            await self.node.event(self.pod, "Warning", "Failed", f"Error: {message}")
            await self.push()
            return 128
        pid_file = self.dir / f"{box.name}.pid"
        pid_file.write_text(str(box.proc.pid))
        try:
            return await self._supervise(box, started, log)
        finally:
            pid_file.unlink(missing_ok=True)

    async def _supervise(self, box: ContainerBox, started: str, log: Path) -> int:
        """Until the container's process ends (or the pod stops): its exit code."""
        assert box.proc is not None
        with open(log, "a", encoding="utf-8") as out:
            pumps = [
                asyncio.ensure_future(pump(box.proc.stdout, out, "stdout")),
                asyncio.ensure_future(pump(box.proc.stderr, out, "stderr")),
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
                await self.node.event(
                    self.pod, "Normal", "Killing", f"Stopping container {box.name}"
                )
                await self._terminate(box, waiter)
            code = box.proc.returncode or 0
            killpg(box.proc)  # what the main process left behind dies with the container
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pumps), 2.0)
        exit_code = 128 - code if code < 0 else code
        box.terminated(exit_code, "Completed" if exit_code == 0 else "Error", started)
        await self.push()
        return exit_code

    async def _terminate(self, box: ContainerBox, waiter: asyncio.Future[int]) -> None:
        assert box.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(box.proc.pid, signal.SIGTERM if self.grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.grace)
        except asyncio.TimeoutError:
            killpg(box.proc)
            await waiter

    async def _image_missing(self, box: ContainerBox, image: str) -> None:
        pull = (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to '
            f'pull and unpack image "{image}": not found'
        )
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
        failures, successes = (
            int(probe.get("failureThreshold", 3)),
            int(probe.get("successThreshold", 1)),
        )
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
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), timeout
                )
                writer.write(
                    f"GET {get.get('path', '/')} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode()
                )
                await writer.drain()
                head = await asyncio.wait_for(reader.readline(), timeout)
                writer.close()
                parts = head.split()
                return len(parts) > 1 and 200 <= int(parts[1]) < 400
            if "tcpSocket" in probe:
                port = ports.get(probe["tcpSocket"]["port"], probe["tcpSocket"]["port"])
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.ip, int(port)), timeout
                )
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
        why: dict[str, str] = {}
        if self.phase in ("Succeeded", "Failed"):
            why = {"reason": "PodCompleted" if self.phase == "Succeeded" else "PodFailed"}
        elif not ready:
            unready = " ".join(not_ready)
            why = {
                "reason": "ContainersNotReady",
                "message": f"containers with unready status: [{unready}]",
            }
        conditions: list[Obj] = [
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
        body = {
            "status": {**status, "startTime": self.pod.get("status", {}).get("startTime") or stamp}
        }
        try:
            await self.node.api.patch(f"/api/v1/namespaces/{self.ns}/pods/{self.name}/status", body)
        except ApiError as exc:
            if exc.status == 404:
                self.gone()
        except OSError:
            self._pushed = None


def killpg(proc: asyncio.subprocess.Process | None) -> None:
    if proc is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
