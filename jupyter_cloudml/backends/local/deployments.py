"""Deployments of the local backend: records under `<home>/deployments/<name>/`.

The backend writes the desired state (`desired.json`) and starts the deployment's endpoint
process (`endpoint.py`), which makes it so and reports in `status.json`. Records outlive
kernels and servers; an endpoint whose process is gone is started again when it is looked at.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import json
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from ...exceptions import BackendUnavailable, Conflict, InvalidSpec, NotFound
from ...models import (
    DeploymentInfo,
    DeploymentStatus,
    DeploySpec,
    ModelFramework,
    ServingReplicaInfo,
    ServingReplicaStatus,
    VersionInfo,
    check_name,
    check_replicas,
    check_traffic,
)
from ..common.redeploy import fingerprint, plan_deploy
from .endpoint import DESIRED_FILE, STATUS_FILE
from .processes import (
    DIR_MODE,
    file_lock,
    free_ports,
    kill_process_group,
    private_dir,
    process_alive,
    spawn_detached,
    wait_ended,
    write_json,
)

PROCESS_FILE = "endpoint.json"
READY_TIMEOUT = 180.0
#: An endpoint process that died is started again after a pause that doubles with each recent
#: restart (within RESPAWN_WINDOW s), from RESPAWN_BACKOFF up to RESPAWN_BACKOFF_MAX seconds.
RESPAWN_BACKOFF = 1.0
RESPAWN_BACKOFF_MAX = 60.0
RESPAWN_WINDOW = 600.0


class LocalDeployments:
    """Deploy, inspect, re-route and remove the deployments kept in `folder`."""

    def __init__(self, folder: Path, serving_python: Callable[[], str] | None) -> None:
        """`serving_python` makes the model servers' interpreter for new deployments; without it
        (the keeper) endpoints are only brought back, with the interpreter they had."""
        self.folder = folder
        self.serving_python = serving_python

    # --- commands --------------------------------------------------------------------------

    def deploy(self, spec: DeploySpec, model: str) -> DeploymentInfo:
        """Serve `model` (a resolved path) as a version of `spec.name` (`plan_deploy` says
        which, or that it serves it already); returns once its replicas are ready and the
        traffic moved, or raises with the reason they are not."""
        folder = self.folder / spec.name
        private_dir(self.folder, parents=True)
        digest = fingerprint(spec, model)
        with self._lock(spec.name):
            desired = self._desired(spec.name)
            current = None
            if desired is not None:
                if spec.port is not None and spec.port != desired["port"]:
                    raise Conflict(
                        f"{spec.name} is served on port {desired['port']}, not {spec.port}"
                    )
                current = _info(desired, self._status(spec.name), self._running(spec.name))
            plan = plan_deploy(spec, current, digest)
            if plan.unchanged:
                return dataclasses.replace(self.get(spec.name), outcome=plan.message)
            spec = dataclasses.replace(spec, version=plan.version)
            version = plan.version
            new = desired is None
            if desired is None:
                port = spec.port or free_ports(1)[0]
                _check_port(port)
                grpc_port = next(p for p in free_ports(2) if p != port)
                if folder.exists():
                    shutil.rmtree(folder)
                folder.mkdir(mode=DIR_MODE)
                desired = {
                    "name": spec.name,
                    "port": port,
                    "grpc_port": grpc_port,
                    "created": time.time(),
                    "generation": 0,
                    "versions": {},
                    "traffic": {},
                }
            desired["versions"][version] = {
                "model": model,
                "framework": spec.framework.value,
                "predictor": spec.predictor,
                "replicas": spec.replicas,
                "added": time.time(),
                "fingerprint": digest,
            }
            if new:
                desired["traffic"] = dict(spec.traffic) or {version: 100}
            self._write(desired)
            if new or not self._running(spec.name):
                self._spawn(spec.name)
            try:
                self._await_version(spec.name, version, spec.replicas)
            except InvalidSpec:
                self._forget_version(spec.name, version, drop_all=new)
                raise
            if not new:
                traffic = dict(spec.traffic) or {v: 0 for v in desired["versions"]}
                if not spec.traffic:
                    traffic[version] = 100
                self._set_traffic(desired, traffic)
            for old in plan.retire:
                self._forget_version(spec.name, old, drop_all=False)
        return dataclasses.replace(self.get(spec.name), outcome=plan.message)

    def set_traffic(self, name: str, traffic: Mapping[str, int]) -> DeploymentInfo:
        """Split the unversioned requests: `{version: percent}` summing to 100."""
        check_traffic(traffic)
        if not traffic:
            raise InvalidSpec("give the split, e.g. --traffic v1=90,v2=10")
        with self._lock(name):
            desired = self._require(name)
            unknown = sorted(set(traffic) - set(desired["versions"]))
            if unknown:
                known = ", ".join(desired["versions"])
                raise NotFound(f"{name} has no version {', '.join(unknown)} (versions: {known})")
            full = {v: traffic.get(v, 0) for v in desired["versions"]}
            self._set_traffic(desired, full)
        return self.get(name)

    def undeploy(self, name: str, version: str | None = None) -> None:
        """Remove one version (it must carry no traffic), or the whole deployment."""
        with self._lock(name):
            desired = self._require(name)
            if version is not None:
                if version not in desired["versions"]:
                    raise NotFound(f"{name} has no version {version!r}")
                if desired["traffic"].get(version, 0) > 0:
                    raise Conflict(
                        f"version {version} of {name} still gets {desired['traffic'][version]}% "
                        "of the traffic: move it first (models update NAME --traffic ...)"
                    )
                self._forget_version(name, version, drop_all=False)
                return
            self._stop(name)
            with contextlib.suppress(OSError, ValueError):  # replicas a dead endpoint left
                self._stop_orphans(json.loads((self.folder / name / PROCESS_FILE).read_text()))
            shutil.rmtree(self.folder / name, ignore_errors=True)

    def scale(self, name: str, version: str, replicas: int) -> DeploymentInfo:
        """Serve `version` with `replicas` model-server processes; returns once as many are
        ready (fewer: once the endpoint has retired the rest)."""
        check_replicas(replicas)
        with self._lock(name):
            desired = self._require(name)
            if version not in desired["versions"]:
                known = ", ".join(desired["versions"])
                raise NotFound(f"{name} has no version {version!r} (versions: {known})")
            desired["versions"][version]["replicas"] = replicas
            generation = self._write(desired)
            if not self._running(name):
                self._spawn(name)

            def scaled(status: dict[str, Any]) -> bool:
                mine = status.get("versions", {}).get(version, [])
                failed = [r for r in mine if r["status"] == "FAILED"]
                if failed:
                    raise InvalidSpec(f"{name} {version} cannot be served: {failed[0]['reason']}")
                ready = sum(r["status"] == "READY" for r in mine)
                return status.get("generation", 0) >= generation and ready >= replicas

            self._await(name, scaled, f"{replicas} ready replica(s) of {version}")
        return self.get(name)

    # --- reading ---------------------------------------------------------------------------

    def get(self, name: str) -> DeploymentInfo:
        desired = self._require(name)
        if not self._running(name):
            self._respawn(name)
        return _info(desired, self._status(name), self._running(name))

    def revive_all(self) -> None:
        """Bring back every deployment's endpoint whose process is gone (the keeper's round)."""
        for desired in self.folder.glob(f"*/{DESIRED_FILE}"):
            name = desired.parent.name
            if not self._running(name):
                with contextlib.suppress(NotFound, InvalidSpec):
                    self._respawn(name)

    def list(self) -> list[DeploymentInfo]:
        names = sorted(p.parent.name for p in self.folder.glob(f"*/{DESIRED_FILE}"))
        found = []
        for name in names:
            with contextlib.suppress(NotFound):
                found.append(self.get(name))
        return found

    # --- records and processes -------------------------------------------------------------

    def _lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        check_name(name, "deployment name")
        private_dir(self.folder, parents=True)
        return file_lock(self.folder / f".{name}.lock")

    def _desired(self, name: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((self.folder / name / DESIRED_FILE).read_text())
        except (FileNotFoundError, NotADirectoryError):
            return None
        return data

    def _require(self, name: str) -> dict[str, Any]:
        check_name(name, "deployment name")
        desired = self._desired(name)
        if desired is None:
            raise NotFound(f"no deployment {name!r} (see `cloudml models list`)")
        return desired

    def _write(self, desired: dict[str, Any]) -> int:
        desired["generation"] = desired.get("generation", 0) + 1
        write_json(self.folder / desired["name"] / DESIRED_FILE, desired)
        return int(desired["generation"])

    def _status(self, name: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.folder / name / STATUS_FILE).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data

    def _process(self, name: str) -> psutil.Process | None:
        """The deployment's endpoint process, if the one recorded still runs: one stopped by a
        signal (SIGSTOP) serves nobody, and counts as gone, so that it is replaced."""
        try:
            record = json.loads((self.folder / name / PROCESS_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not process_alive(record.get("pid"), record.get("started")):
            return None
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(record["pid"])
            if proc.status() != psutil.STATUS_STOPPED:
                return proc
        return None

    def _running(self, name: str) -> bool:
        return self._process(name) is not None

    def _spawn(
        self, name: str, respawns: builtins.list[float] | None = None, python: str | None = None
    ) -> None:
        folder = self.folder / name
        (folder / STATUS_FILE).unlink(missing_ok=True)
        if python is None:
            if self.serving_python is None:
                raise InvalidSpec(f"no model-serving interpreter recorded for {name}")
            python = self.serving_python()
        argv = [sys.executable, "-m", "jupyter_cloudml.backends.local.endpoint"]
        pid, started = spawn_detached([*argv, str(folder), python], folder / "endpoint.log", folder)
        record = {"pid": pid, "started": started, "respawns": respawns or [], "python": python}
        write_json(folder / PROCESS_FILE, record)

    def _respawn(self, name: str) -> None:
        """Bring back the endpoint of a deployment whose process is gone (a reboot, a kill)."""
        with self._lock(name):
            try:
                record = json.loads((self.folder / name / PROCESS_FILE).read_text())
            except (OSError, ValueError):
                record = {}
            now = time.time()
            recent = [t for t in record.get("respawns", []) if now - t < RESPAWN_WINDOW]
            pause = min(RESPAWN_BACKOFF * 2 ** max(len(recent) - 1, 0), RESPAWN_BACKOFF_MAX)
            if self._running(name) or (recent and now - recent[-1] < pause):
                return
            desired = self._require(name)
            self._stop_orphans(record)
            with contextlib.suppress(Conflict):
                _check_port(desired["port"])
                self._spawn(name, [*recent, now], record.get("python"))

    def _stop_orphans(self, record: Mapping[str, Any]) -> None:
        """Kill what is left of a dead endpoint's process group: its model-server replicas."""
        if record.get("pid"):
            kill_process_group(record["pid"], record.get("started"))

    def _stop(self, name: str) -> None:
        proc = self._process(name)
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        if not wait_ended(proc, 30):
            proc.kill()

    def _await(self, name: str, done: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            status = self._status(name)
            if status.get("status") == "FAILED":  # the endpoint itself could not start
                raise Conflict(f"deployment {name}: {status.get('reason', 'endpoint failed')}")
            if status and done(status):
                return
            if not self._running(name):
                log = (self.folder / name / "endpoint.log").read_text(errors="replace")
                raise BackendUnavailable(
                    f"the endpoint of {name} exited: {' | '.join(log.splitlines()[-3:])}"
                )
            time.sleep(0.1)
        raise BackendUnavailable(f"{name}: {what} not within {READY_TIMEOUT:.0f} s")

    def _await_version(self, name: str, version: str, replicas: int) -> None:
        def ready(status: dict[str, Any]) -> bool:
            mine = status.get("versions", {}).get(version, [])
            failed = [r for r in mine if r["status"] == "FAILED"]
            if failed:
                raise InvalidSpec(f"{name} {version} cannot be served: {failed[0]['reason']}")
            return sum(r["status"] == "READY" for r in mine) >= replicas

        self._await(name, ready, f"{replicas} ready replica(s) of {version}")

    def _set_traffic(self, desired: dict[str, Any], traffic: dict[str, int]) -> None:
        desired["traffic"] = traffic
        generation = self._write(desired)
        self._await(
            desired["name"], lambda s: s.get("generation", 0) >= generation, "traffic switch"
        )

    def _forget_version(self, name: str, version: str, drop_all: bool) -> None:
        if drop_all:
            self._stop(name)
            shutil.rmtree(self.folder / name, ignore_errors=True)
            return
        desired = self._require(name)
        desired["versions"].pop(version, None)
        desired["traffic"].pop(version, None)
        self._write(desired)


def _check_port(port: int) -> None:
    """`Conflict` when another process listens on `port` (connections of an endpoint that died,
    left in TIME_WAIT, do not count: the endpoint binds with SO_REUSEADDR too)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            raise Conflict(f"port {port} is in use ({e.strerror}): choose another --port") from None


def _info(desired: Mapping[str, Any], status: Mapping[str, Any], running: bool) -> DeploymentInfo:
    # Without its endpoint process no replica serves, whatever the last status said.
    replicas = status.get("versions", {}) if running else {}
    versions = tuple(
        VersionInfo(
            version=version,
            model=spec["model"],
            framework=ModelFramework(spec["framework"]),
            traffic=int(desired["traffic"].get(version, 0)),
            predictor=spec.get("predictor"),
            fingerprint=spec.get("fingerprint", ""),
            replicas=tuple(
                ServingReplicaInfo(
                    name=r["name"],
                    status=ServingReplicaStatus(r["status"]),
                    restarts=r["restarts"],
                    reason=r["reason"],
                )
                for r in replicas.get(version, [])
            ),
        )
        for version, spec in desired["versions"].items()
    )
    if running:
        state, reason = DeploymentStatus(status.get("status", "STARTING")), status.get("reason", "")
    else:
        state, reason = DeploymentStatus.STOPPED, "the endpoint process is not running"
    return DeploymentInfo(
        name=desired["name"],
        status=state,
        url=f"http://127.0.0.1:{desired['port']}",
        grpc_url=f"127.0.0.1:{desired['grpc_port']}" if desired.get("grpc_port") else None,
        versions=versions,
        reason=reason,
        created=desired["created"],
    )
