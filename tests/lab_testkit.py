"""A real JupyterLab for the browser tests: its own homes, a token, Chromium's flags, and opening
the lab in a Playwright page."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.processes import free_ports
from jupyter_cloudml.client import Client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
TOKEN = "cloudml-ui-test"
SCREENSHOTS = os.environ.get("CLOUDML_SCREENSHOTS")  # a folder: save the README screenshots


def free_port() -> int:
    return free_ports(1)[0]


class Lab:
    """A running `jupyter lab` on loopback with its own homes, and a Client on its backend."""

    def __init__(self, root: Path, port: int, home: Path) -> None:
        self.root, self.port, self.home = root, port, home
        self.url = f"http://127.0.0.1:{port}"
        self.client = Client(backend=LocalBackend(home=str(home)))

    def page_url(self, path: str) -> str:
        return f"{self.url}/{path}?token={TOKEN}"

    def notebook(self, name: str, *cells: str) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        nbformat.write(nb, self.root / name)
        return name


@contextlib.contextmanager
def running_lab(base: Path, serving_python: str, **env_extra: str) -> Iterator[Lab]:
    """`jupyter lab` on loopback with its own homes under `base` (and `env_extra` set)."""
    root, home = base / "notebooks", base / "cloudml-home"
    root.mkdir()
    env = dict(os.environ, CLOUDML_HOME=str(home), CLOUDML_SERVING_PYTHON=serving_python)
    for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[var] = str(base / var.lower())
    env.pop("CLOUDML_BACKEND", None)
    env.update(env_extra)
    # No "get Jupyter news?" toast over the page (and no request for it).
    settings = base / "jupyter_config_dir" / "lab" / "user-settings" / "@jupyterlab"
    (settings / "apputils-extension").mkdir(parents=True)
    (settings / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port = free_port()
    log = open(base / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--expose-app-in-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={root}",
            f"--IdentityProvider.token={TOKEN}",
            "--FileContentsManager.delete_to_trash=False",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    the_lab = Lab(root, port, home)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{the_lab.url}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "jupyter lab did not start: " + (base / "server.log").read_text()[-2000:]
                    ) from None
                time.sleep(0.2)
        yield the_lab
    finally:
        if env.get("CLOUDML_BACKEND", "local") == "local":
            for job in the_lab.client.list().jobs:
                if not job.status.terminal:
                    the_lab.client.cancel(job.id)
            for board in the_lab.client.tensorboards():
                the_lab.client.stop_tensorboard(board.id)
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def open_lab(page, lab: Lab, path: str = "lab") -> None:
    page.goto(lab.page_url(path) + "&reset")  # no tabs restored from an earlier test
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started", timeout=60_000)
    page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
