"""A real JupyterHub on loopback set up by `jupyter_cloudml.hub.configure`, with a local spawner
in place of the Kubernetes one: a user's server loads our server and lab extensions, the idle
culler that `configure` adds runs and stops servers by the idle limit recorded in their state,
and stopping the hub stops everything it started."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil
import pytest

from jupyter_cloudml.backends.local.processes import free_ports
from jupyter_cloudml.hub import culler

pytestmark = pytest.mark.timeout(180)

BIN = Path(sys.executable).parent
TOKEN = "smoke-" + "0123456789abcdef" * 2
#: What the test's service may do through the REST API.
SMOKE_SCOPES = [
    "admin:users",
    "admin:servers",
    "admin:server_state",
    "tokens",
    "list:services",
    "read:services",
]
CPU, GPU = "cpu-user", "gpu-user"
GPU_IDLE_TIMEOUT = 1

# The hub's config file. `LocalCloudMLSpawner` runs servers as local processes and records in
# their state what CloudMLSpawner records (`get_state`): the GPU count and the idle limit that
# goes with it, so the culler's arbiter sees the same state as on Kubernetes.
HUB_CONFIG = """\
from traitlets import Int

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyter_cloudml.hub import configure
from jupyter_cloudml.hub.culler import DEFAULT_IDLE_TIMEOUT, STATE_KEY

c = get_config()
configure(c, cull_every=1)


class LocalCloudMLSpawner(SimpleLocalProcessSpawner):
    gpus = Int(0)
    idle_timeout = Int(DEFAULT_IDLE_TIMEOUT, config=True)
    gpu_idle_timeout = Int({gpu_idle_timeout}, config=True)

    def get_state(self):
        state = super().get_state()
        limit = self.gpu_idle_timeout if self.gpus else self.idle_timeout
        state[STATE_KEY] = {{"gpus": self.gpus, "idle_timeout": limit}}
        return state


c.JupyterHub.spawner_class = LocalCloudMLSpawner
c.LocalCloudMLSpawner.apply_user_options = {{"gpus": "gpus"}}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {proxy_pid!r}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_secret!r}
c.JupyterHub.services.append({{"name": "smoke", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "smoke", "scopes": {scopes!r}, "services": ["smoke"]}}
)
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = {args!r}
c.Spawner.ip = "127.0.0.1"
c.Spawner.default_url = "/lab"
c.Spawner.environment = {environment!r}
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
c.SimpleLocalProcessSpawner.home_dir_template = {home_template!r}
"""


def wait_until(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    """Poll `check` until it returns something truthy; fail with the hub's log tail if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s; hub log tail:\n{tail(log)}")
        time.sleep(0.1)


def tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:]


def since(stamp: str) -> float:
    """Seconds from a hub timestamp (ISO 8601, UTC) until now."""
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (datetime.now(timezone.utc) - then).total_seconds()


class Hub:
    """A running JupyterHub: its process, log, public URL and REST API as the `smoke` service."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def request(
        self, method: str, path: str, body: Any = None, token: str = TOKEN
    ) -> tuple[int, bytes]:
        """Status and body of a request to the public URL (through the proxy)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {token}"} if token else {},
        )
        try:
            with urllib.request.urlopen(req, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200,)) -> Any:
        """The hub's REST API; fails the test on an unexpected status."""
        status, raw = self.request(method, "/hub/api" + path, body)
        if status not in ok:
            pytest.fail(f"{method} {path}: HTTP {status} {raw[:500]!r}\n{tail(self.log)}")
        return json.loads(raw) if raw else None

    def server(self, user: str) -> dict[str, Any] | None:
        """The user's default server model (with its state), or None when it is not running."""
        return self.api("GET", f"/users/{user}")["servers"].get("")

    def start(self, user: str, **options: Any) -> None:
        """Create `user` if needed and start their default server with `options`."""
        if self.has_user(user):
            if self.server(user):
                return
        else:
            self.api("POST", f"/users/{user}", ok=(201,))
        self.api("POST", f"/users/{user}/server", options, ok=(201, 202))

    def has_user(self, user: str) -> bool:
        return self.request("GET", f"/hub/api/users/{user}")[0] == 200

    def wait_ready(self, user: str, timeout: float = 45) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            server = self.server(user)
            return server if server and server["ready"] else None

        return wait_until(f"{user}'s server ready", ready, timeout, self.log)

    def running(self, user: str, **options: Any) -> dict[str, Any]:
        """`user`'s ready server model, started (with `options`) if not running yet."""
        self.start(user, **options)
        return self.wait_ready(user)

    def user_token(self, user: str) -> str:
        return self.api("POST", f"/users/{user}/tokens", {"note": "smoke"}, ok=(200, 201))["token"]

    def stop(self) -> list[psutil.Process]:
        """Stop the hub (its own cleanup stops servers, services and proxy); return leftovers."""
        try:
            started = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            started = []
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        _, alive = psutil.wait_procs(started, timeout=10)
        return alive


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    base = tmp_path_factory.mktemp("hub")
    port, hub_port, proxy_api_port = free_ports(3)
    # User servers get isolated Jupyter dirs like every test (conftest); the server extension's
    # config and the lab extension live under sys.prefix, which Jupyter searches regardless.
    environment = {
        "CLOUDML_HOME": str(base / "cloudml-home"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(base / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "IPYTHONDIR": str(base / "ipython"),
    }
    config = base / "jupyterhub_config.py"
    config.write_text(
        HUB_CONFIG.format(
            gpu_idle_timeout=GPU_IDLE_TIMEOUT,
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            proxy=str(BIN / "configurable-http-proxy"),
            proxy_pid=str(base / "proxy.pid"),
            db_url=f"sqlite:///{base / 'jupyterhub.sqlite'}",
            cookie_secret=str(base / "cookie_secret"),
            token=TOKEN,
            scopes=SMOKE_SCOPES,
            singleuser=str(BIN / "jupyterhub-singleuser"),
            args=["--allow-root"] if os.geteuid() == 0 else [],
            environment=environment,
            home_template=str(base / "homes" / "{username}"),
        )
    )
    env = dict(os.environ, **environment)
    env.pop("CLOUDML_BACKEND", None)
    log = base / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=base,
            env=env,
            stdin=subprocess.DEVNULL,  # servers see no tty, so SIGINT stops them at once
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    the_hub = Hub(proc, f"http://127.0.0.1:{port}", log)
    try:

        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"the hub exited ({proc.returncode}):\n{tail(log)}")
            try:
                return the_hub.request("GET", "/hub/api/", token="")[0] == 200
            except OSError:
                return False

        wait_until("the hub answering through the proxy", answers, 40, log)
        yield the_hub
    finally:
        for leftover in the_hub.stop():
            leftover.kill()


def test_a_users_server_loads_the_cloudml_server_and_lab_extensions(hub: Hub):
    hub.running(CPU)
    token = hub.user_token(CPU)

    status, body = hub.request("GET", f"/user/{CPU}/cloudml/api/capabilities", token=token)
    assert status == 200, body[:500]
    assert json.loads(body)["backend"] == "local"
    status, body = hub.request("GET", f"/user/{CPU}/cloudml/api/jobs", token=token)
    assert status == 200, body[:500]
    assert json.loads(body)["jobs"] == []
    # Without the user's token the API stays closed (hub auth guards the extension's routes).
    status, _ = hub.request("GET", f"/user/{CPU}/cloudml/api/jobs", token="")
    assert status in (302, 401, 403)

    status, body = hub.request("GET", f"/user/{CPU}/lab", token=token)
    assert status == 200, body[:500]
    found = re.search(
        rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S
    )
    assert found, "no page config in the lab page"
    page_config = json.loads(found.group(1))
    names = [ext["name"] for ext in page_config["federated_extensions"]]
    assert "jupyter-cloudml" in names


def test_the_idle_culler_stops_servers_by_their_own_idle_limit(hub: Hub):
    services = hub.api("GET", "/services")  # name -> model
    culler_model = services[culler.SERVICE_NAME]
    assert culler_model["pid"], culler_model
    process = psutil.Process(culler_model["pid"])
    assert process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    assert "jupyterhub_idle_culler" in process.cmdline()
    assert f"--config={culler.CONFIG_FILE}" in process.cmdline()
    assert f"Starting service {culler.SERVICE_NAME!r}" in hub.log.read_text()

    cpu = hub.running(CPU)
    assert cpu["state"][culler.STATE_KEY] == {"gpus": 0, "idle_timeout": 3600}
    # A GPU server's limit is 1 s: the culler (every 1 s) stops it soon after it is ready,
    # although the culler's own --timeout is an hour, so only our arbiter can have decided.
    hub.start(GPU, gpus=1)
    culled = f"Culling server {GPU} "

    def gpu_culled() -> bool:
        return culled in hub.log.read_text() and hub.server(GPU) is None

    wait_until(f"the culler stopping {GPU}'s server", gpu_culled, 45, hub.log)
    log = hub.log.read_text()
    assert re.search(rf"User {GPU} took [\d.]+ seconds to start", log), tail(hub.log)
    assert re.search(rf"DELETE /hub/api/users/{GPU}/server .*{culler.SERVICE_NAME}", log)

    # The CPU server has been idle past the GPU limit for a few culls and still runs.
    def idle_past_gpu_limit() -> dict[str, Any] | None:
        server = hub.server(CPU)
        assert server and server["ready"], f"{CPU}'s server stopped:\n{tail(hub.log)}"
        last = server["last_activity"] or server["started"]
        return server if since(last) > GPU_IDLE_TIMEOUT + 3 else None

    wait_until(f"{CPU}'s server idle for a few culls", idle_past_gpu_limit, 20, hub.log)
    time.sleep(1.5)  # one more cull at least
    assert hub.server(CPU), tail(hub.log)
    assert f"Culling server {CPU} " not in hub.log.read_text()


def test_stopping_the_hub_stops_everything_it_started(hub: Hub):
    hub.running(CPU)
    started = psutil.Process(hub.proc.pid).children(recursive=True)
    commands = [" ".join(p.cmdline()) for p in started]
    assert any("configurable-http-proxy" in c for c in commands), commands
    assert any("jupyterhub_idle_culler" in c for c in commands), commands
    assert any("jupyterhub-singleuser" in c for c in commands), commands

    leftovers = hub.stop()
    assert hub.proc.returncode is not None
    assert not leftovers, [" ".join(p.cmdline()) for p in leftovers]
    for pid in (p.pid for p in started):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
