"""The process behind one local deployment: its endpoint, its replicas, its versions.

`python -m jupyter_cloudml.backends.local.endpoint FOLDER SERVING_PYTHON` runs detached (new
session) for as long as the deployment lives. It reads the desired state the backend writes
(`desired.json`: versions, replicas, traffic) and makes it so: one model-server replica
process per replica of each version (`jupyter_cloudml.serving.replica`, under the serving
interpreter), restarted when it dies, and replaced when it stops answering its readiness
probe (a frozen or hung process) or is found stopped while it starts; and a proxy on the
endpoint port that speaks KServe v1 and the Open Inference Protocol, load-balances over the
ready replicas of a version, splits unversioned requests by traffic share, and retries a
request whose replica went away, or did not answer within `REQUEST_SECONDS`, on another one
(inference requests are idempotent); the same over gRPC on `grpc_port` (`grpc_proxy.py`).
What it sees goes to `status.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil
from tornado import httpclient, web
from tornado.httpserver import HTTPServer

from ...serving.replica import (
    LOAD_ERROR_EXIT,
    NO_KSERVE_EXIT,
    PACKAGE_PARENT,
    replica_command,
)
from .grpc_proxy import start_grpc_proxy
from .processes import free_ports, write_json
from .protocol_headers import to_client, to_replica

DESIRED_FILE = "desired.json"
FATAL_EXITS = (LOAD_ERROR_EXIT, NO_KSERVE_EXIT)
#: Lines a replica prints on stderr when it cannot start, each with one reason.
REASON_PREFIX = "cloudml-serving: "
STATUS_FILE = "status.json"
TICK_SECONDS = 0.25
RESTART_BACKOFF_MAX = 30.0
#: A replica that ran this long before dying was not crash-looping.
STABLE_SECONDS = 30.0
#: How long a request waits for a replica of its version that is (re)starting.
REPLICA_WAIT_SECONDS = 30.0
DRAIN_SECONDS = 30.0
#: Every ready replica is probed this often; one that misses PROBE_MISSES probes in a row
#: (each given PROBE_TIMEOUT seconds) is taken out of rotation and replaced.
PROBE_SECONDS = 1.0
PROBE_TIMEOUT = 1.0
PROBE_MISSES = 2
#: The longest a replica gets to answer one request before it is tried on another replica.
REQUEST_SECONDS = 60.0


class Replica:
    """One model-server process of a version."""

    def __init__(self, version: str, index: int) -> None:
        self.version, self.index = version, index
        self.name = f"{version}-{index}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = self.grpc_port = 0
        self.status = "STARTING"
        self.restarts = 0
        self.crashes_in_a_row = 0
        self.started_at = 0.0
        self.reason = ""
        self.next_start = 0.0
        self.in_flight = 0
        self.retiring = False
        self.missed = 0  # readiness probes missed in a row
        self.frozen = asyncio.Event()  # set when it stopped answering: its requests go elsewhere

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "restarts": self.restarts,
            "reason": self.reason,
        }


class Endpoint:
    """Reconciles replicas with the desired state and routes requests to them."""

    def __init__(self, folder: Path, serving_python: str) -> None:
        self.folder = folder
        self.serving_python = serving_python
        self.desired: dict[str, Any] = {}
        self.desired_mtime = 0.0
        self.replicas: dict[str, list[Replica]] = {}
        self.logs = folder / "logs"
        self.logs.mkdir(exist_ok=True)
        self.last_status: dict[str, Any] = {}
        self.turn = 0
        self.probed_at = 0.0

    # --- desired state -> processes --------------------------------------------------------

    def read_desired(self) -> None:
        path = self.folder / DESIRED_FILE
        mtime = path.stat().st_mtime
        if mtime != self.desired_mtime:
            self.desired_mtime = mtime
            self.desired = json.loads(path.read_text())

    def reconcile(self) -> None:
        versions: Mapping[str, Any] = self.desired["versions"]
        for version in list(self.replicas):
            if version not in versions:
                for replica in self.replicas.pop(version):
                    self.retire(replica)
        for version, spec in versions.items():
            have = self.replicas.setdefault(version, [])
            while len(have) < spec["replicas"]:
                have.append(Replica(version, len(have)))
            while len(have) > spec["replicas"]:
                self.retire(have.pop())
            for replica in have:
                self.tend(replica, spec)

    def tend(self, replica: Replica, spec: Mapping[str, Any]) -> None:
        """Start, watch and restart one replica."""
        proc = replica.proc
        if proc is not None and proc.poll() is not None:
            code = proc.returncode
            replica.proc = None
            if code in FATAL_EXITS:  # restarting would fail the same way
                replica.status, replica.reason = "FAILED", self.load_error(replica)
                return
            replica.restarts += 1
            why = "stopped answering" if replica.frozen.is_set() else f"exited with code {code}"
            replica.status = "RESTARTING"
            replica.reason = f"{why}; restart {replica.restarts}"
            # Back off for crash loops only: a replica that served a while restarts at once.
            quick = time.monotonic() - replica.started_at < STABLE_SECONDS
            replica.crashes_in_a_row = replica.crashes_in_a_row + 1 if quick else 1
            backoff = 0.5 * 2 ** min(replica.crashes_in_a_row - 1, 6)
            replica.next_start = time.monotonic() + min(RESTART_BACKOFF_MAX, backoff)
        waited = time.monotonic() >= replica.next_start
        if replica.proc is None and replica.status != "FAILED" and waited:
            self.start(replica, spec)

    def start(self, replica: Replica, spec: Mapping[str, Any]) -> None:
        replica.port, replica.grpc_port = free_ports(2)
        command = replica_command(
            self.serving_python,
            name=self.desired["name"],
            version=replica.version,
            framework=spec["framework"],
            model=spec["model"],
            port=replica.port,
            predictor=spec.get("predictor"),
            grpc_port=replica.grpc_port,
        )
        env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT, PYTHONUNBUFFERED="1")
        with open(self.logs / f"{replica.name}.log", "ab") as out:
            replica.proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env
            )
        replica.status = "STARTING" if replica.restarts == 0 else "RESTARTING"
        replica.started_at = time.monotonic()
        replica.missed = 0
        replica.frozen = asyncio.Event()

    def load_error(self, replica: Replica) -> str:
        text = (self.logs / f"{replica.name}.log").read_text(errors="replace")
        lines = [line for line in text.splitlines() if line.startswith(REASON_PREFIX)]
        if lines:
            return lines[-1][len(REASON_PREFIX) :]
        return "the model server exited while loading: " + " | ".join(text.splitlines()[-3:])

    def retire(self, replica: Replica) -> None:
        """Stop routing to a replica; stop it once its requests are done (or after a while)."""
        replica.retiring = True
        asyncio.get_event_loop().create_task(self._stop_when_drained(replica))

    async def _stop_when_drained(self, replica: Replica) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        while replica.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        proc = replica.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            for _ in range(100):  # 5 s grace, without blocking the proxy
                if proc.poll() is not None:
                    return
                await asyncio.sleep(0.05)
            proc.kill()

    async def check_health(self, client: httpclient.AsyncHTTPClient) -> None:
        """Probe every replica at once: starting ones until they are ready, ready ones every
        PROBE_SECONDS (a ready one that stops answering is replaced)."""
        now = time.monotonic()
        probing = {"STARTING", "RESTARTING"}
        if now - self.probed_at >= PROBE_SECONDS:
            self.probed_at = now
            probing.add("READY")
        replicas = [
            replica
            for group in self.replicas.values()
            for replica in group
            if replica.proc is not None and replica.status in probing and not replica.retiring
        ]
        await asyncio.gather(*(self.probe(client, replica) for replica in replicas))

    async def probe(self, client: httpclient.AsyncHTTPClient, replica: Replica) -> None:
        try:
            await client.fetch(f"{replica.url}/v2/health/ready", request_timeout=PROBE_TIMEOUT)
        except (httpclient.HTTPClientError, OSError):
            if replica.status == "READY":
                replica.missed += 1
                if replica.missed >= PROBE_MISSES:
                    self.replace(replica, f"missed {replica.missed} readiness probes in a row")
            elif stopped(replica.proc):  # a starting replica does not answer: is it frozen?
                self.replace(replica, "stopped (SIGSTOP) while starting")
            return
        replica.missed = 0
        replica.status, replica.reason = "READY", ""

    def replace(self, replica: Replica, why: str) -> None:
        """Take a replica that stopped answering out of rotation and kill it: `tend` starts a
        new one, and requests waiting on it are tried on another replica at once."""
        replica.status, replica.reason = "RESTARTING", f"{why}; replacing it"
        replica.frozen.set()
        if replica.proc is not None and replica.proc.poll() is None:
            replica.proc.kill()  # SIGKILL also ends a stopped (SIGSTOP) process

    # --- routing ---------------------------------------------------------------------------

    def ready(self, version: str) -> list[Replica]:
        return [
            r
            for r in self.replicas.get(version, [])
            if r.status == "READY" and not r.retiring and r.proc is not None
        ]

    def pick_version(self) -> str | None:
        traffic = {v: share for v, share in self.desired.get("traffic", {}).items() if share > 0}
        serving = {v: share for v, share in traffic.items() if self.ready(v)}
        if not serving:
            return next(iter(traffic), None)
        return random.choices(list(serving), weights=list(serving.values()))[0]

    def pick_replica(self, version: str, tried: set[str]) -> Replica | None:
        candidates = [r for r in self.ready(version) if r.name not in tried]
        if not candidates:
            return None
        self.turn += 1
        return candidates[self.turn % len(candidates)]

    def recovering(self, version: str) -> bool:
        """Whether a replica of `version` is (re)starting, so that waiting for it makes sense."""
        replicas = self.replicas.get(version, [])
        starting = any(r.status in ("STARTING", "RESTARTING") for r in replicas)
        return starting or any(r.proc is not None and r.proc.poll() is not None for r in replicas)

    async def next_replica(self, version: str, tried: set[str]) -> Replica | None:
        """A ready replica not tried yet; while none is but some are (re)starting, wait for
        them (then every replica may be tried again)."""
        deadline = time.monotonic() + REPLICA_WAIT_SECONDS
        while (replica := self.pick_replica(version, tried)) is None:
            if not self.recovering(version) or time.monotonic() > deadline:
                return None
            await asyncio.sleep(TICK_SECONDS / 5)
            tried.clear()
        return replica

    def status_record(self) -> dict[str, Any]:
        versions = {v: [r.record() for r in reps] for v, reps in self.replicas.items()}
        serving = [v for v, share in self.desired.get("traffic", {}).items() if share > 0]
        if serving and all(self.ready(v) for v in serving):
            status, reason = "READY", ""
        elif any(r["status"] == "FAILED" for reps in versions.values() for r in reps):
            status, reason = "DEGRADED", "a replica cannot load its model"
        else:
            status, reason = "STARTING", ""
        return {
            "pid": os.getpid(),
            "port": self.desired["port"],
            "generation": self.desired.get("generation", 0),
            "status": status,
            "reason": reason,
            "versions": versions,
        }

    def publish(self) -> None:
        record = self.status_record()
        if record != self.last_status:
            self.last_status = record
            write_json(self.folder / STATUS_FILE, record)

    def stop_all(self) -> None:
        for replicas in self.replicas.values():
            for replica in replicas:
                stop_process(replica.proc)


def stopped(proc: subprocess.Popen[bytes] | None) -> bool:
    """Whether the process is stopped by a signal (SIGSTOP, SIGTSTP): it makes no progress."""
    if proc is None:
        return False
    try:
        return psutil.Process(proc.pid).status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def stop_process(proc: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the proxy --------------------------------------------------------------------------------


class ProxyHandler(web.RequestHandler):
    """Forwards one inference-protocol request to a ready replica of the chosen version."""

    def initialize(self, endpoint: Endpoint, client: httpclient.AsyncHTTPClient) -> None:
        self.endpoint = endpoint
        self.client = client

    def check_xsrf_cookie(self) -> None:  # an API for programs, not a browser form
        pass

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    async def get(self, *args: str) -> None:
        await self.forward(*args)

    async def post(self, *args: str) -> None:
        await self.forward(*args)

    async def forward(self, protocol: str, name: str, version: str | None, rest: str) -> None:
        endpoint = self.endpoint
        if name != endpoint.desired["name"]:
            return self.fail(
                404, f"no model {name!r} here (this endpoint serves {endpoint.desired['name']!r})"
            )
        if version is not None and version not in endpoint.desired["versions"]:
            known = ", ".join(endpoint.desired["versions"])
            return self.fail(404, f"model {name!r} has no version {version!r} (versions: {known})")
        chosen = version or endpoint.pick_version()
        if chosen is None:
            return self.fail(503, f"model {name!r} has no version serving traffic")
        path = f"/v1/models/{name}{rest}" if protocol == "v1" else f"/v2/models/{name}{rest}"
        tried: set[str] = set()
        while (replica := await endpoint.next_replica(chosen, tried)) is not None:
            tried.add(replica.name)
            replica.in_flight += 1
            try:
                response = await self.ask(replica, path)
            except (OSError, httpclient.HTTPClientError, asyncio.TimeoutError):
                continue  # the replica went away, froze or took too long: try another one
            finally:
                replica.in_flight -= 1
            if response.code == 599:
                continue
            self.set_status(response.code)
            for header, value in to_client(response.headers, self.request.headers).items():
                self.set_header(header, value)
            if version is None and protocol == "v2":
                self.set_header("X-Model-Version", chosen)
            await self.finish(response.body)
            return
        return self.fail(503, f"no ready replica of {name} version {chosen}; try again soon")

    async def ask(self, replica: Replica, path: str) -> httpclient.HTTPResponse:
        """The replica's answer; `TimeoutError` once it is found frozen or REQUEST_SECONDS
        pass, whichever is first."""
        fetch = asyncio.ensure_future(
            self.client.fetch(
                replica.url + path,
                method=self.request.method,
                body=self.request.body if self.request.method == "POST" else None,
                headers=to_replica(self.request.headers),
                raise_error=False,
                request_timeout=REQUEST_SECONDS,
            )
        )
        frozen = asyncio.ensure_future(replica.frozen.wait())
        either: set[asyncio.Future[Any]] = {fetch, frozen}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            frozen.cancel()
        if not fetch.done():
            fetch.cancel()
            raise asyncio.TimeoutError(f"replica {replica.name} stopped answering")
        return fetch.result()


class HealthHandler(web.RequestHandler):
    def initialize(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    def get(self, what: str) -> None:
        ready = self.endpoint.last_status.get("status") == "READY"
        if what == "ready" and not ready:
            self.set_status(503)
        self.finish({"live": True} if what == "live" else {"ready": ready})


def make_app(endpoint: Endpoint) -> web.Application:
    client = httpclient.AsyncHTTPClient(max_clients=256)
    args = {"endpoint": endpoint, "client": client}
    name = r"([^/:]+)"
    version = r"(?:/versions/([^/:]+))?"
    return web.Application(
        [
            (r"/v2/health/(live|ready)", HealthHandler, {"endpoint": endpoint}),
            (rf"/(v1)/models/{name}{version}((?::predict)?)", ProxyHandler, args),
            (rf"/(v2)/models/{name}{version}((?:/infer|/ready)?)", ProxyHandler, args),
        ]
    )


async def serve(folder: Path, serving_python: str) -> None:
    endpoint = Endpoint(folder, serving_python)
    endpoint.read_desired()
    server = HTTPServer(make_app(endpoint), xheaders=False)
    try:
        server.listen(endpoint.desired["port"], address="127.0.0.1")
        grpc_server = await start_grpc_proxy(endpoint, REQUEST_SECONDS)  # None: no grpc_port
    except OSError as e:
        server.stop()
        write_json(
            folder / STATUS_FILE,
            {
                "pid": os.getpid(),
                "status": "FAILED",
                "reason": f"port {e.filename or endpoint.desired['port']} is in use ({e.strerror})",
            },
        )
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    health = httpclient.AsyncHTTPClient()
    while not stop.is_set():
        with contextlib.suppress(FileNotFoundError):
            endpoint.read_desired()
        endpoint.reconcile()
        await endpoint.check_health(health)
        endpoint.publish()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), TICK_SECONDS)
    server.stop()
    if grpc_server is not None:
        await grpc_server.stop(grace=1.0)
    endpoint.stop_all()
    record = endpoint.status_record()
    record.update(status="STOPPED", reason="undeployed")
    write_json(folder / STATUS_FILE, record)


def main(argv: list[str] | None = None) -> None:
    folder, serving_python = (argv or sys.argv[1:])[:2]
    asyncio.run(serve(Path(folder), serving_python))


if __name__ == "__main__":
    main()
