"""Helpers of the fault-injection tests (`tests/backends/local/test_faults.py`): the processes
working for a home, the files of a home others could read, the queue's waits read back from the
job records, a real Jupyter server and a reader of its REST API, and the submitter program those
tests run several of at once.

    python tests/fault_testkit.py SCRIPT_DIR IDS_FILE PLAN_JSON

runs the submitter: each job of the plan goes through the real `cloudml` CLI (`cli.main`, in
this process), and the id it printed is appended to IDS_FILE before the next job.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

#: The training script every submitted job runs: `job.py KIND [SECONDS]`.
JOB_SCRIPT = """
import os, sys, time
kind = sys.argv[1]
if kind == "sleep":
    time.sleep(float(sys.argv[2]))
elif kind == "fail":
    sys.exit(3)
elif kind == "flaky":  # fails its first attempt only
    sys.exit(3 if os.environ["CLOUDML_ATTEMPT"] == "1" else 0)
print("done", kind)
"""


def home_processes(home: Path) -> list[psutil.Process]:
    """Every live process working for `home` (not this one): its name in the command line or
    the working directory, or `CLOUDML_HOME` pointing at it (replicas, model servers)."""
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd", "status"]):
        if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            ours = (
                str(home) in " ".join(proc.info["cmdline"] or ())
                or str(proc.info["cwd"] or "").startswith(str(home))
                or proc.environ().get("CLOUDML_HOME") == str(home)
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if ours:
            found.append(proc)
    return found


def keepers(home: Path) -> list[psutil.Process]:
    """The keeper processes started on demand for `home` (not a service's keeper)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if "jupyter_cloudml.backends.local.keeper" in cmdline and str(home) in cmdline:
            found.append(proc)
    return found


def describe(procs: list[psutil.Process]) -> list[str]:
    """`pid: command line` of each process, for a failure message."""
    lines = []
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            lines.append(f"{proc.pid}: {' '.join(proc.cmdline())[:200]}")
    return lines


def exposed(home: Path) -> list[str]:
    """Every file and folder of `home` that a group or other user could read, enter or write,
    as `MODE PATH`."""
    found = []
    for root, dirs, files in os.walk(home):
        for name in [*dirs, *files]:
            path = Path(root) / name
            with contextlib.suppress(FileNotFoundError):  # a temp file replaced meanwhile
                mode = path.lstat().st_mode
                if stat.S_ISLNK(mode) or stat.S_ISSOCK(mode):
                    continue
                if stat.S_IMODE(mode) & 0o077:
                    found.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(home)}")
    return found


def tracebacks(paths: list[Path]) -> dict[str, str]:
    """The files among `paths` that hold a Python traceback (or a failed keeper pass), each
    with its last lines."""
    found = {}
    for path in paths:
        text = path.read_text(errors="replace") if path.is_file() else ""
        if "Traceback (most recent call last)" in text or "keeper pass failed" in text:
            found[str(path)] = "\n".join(text.splitlines()[-12:])
    return found


def queue_stalls(rows: list[Any], cpu_slots: float) -> list[tuple[float, float, str]]:
    """Where the oldest queued job could have started but had not, from the job records
    (`created`, `dispatched`, `finished`, `cpu_demand`): (from, seconds, job id) of each such
    stretch. Jobs wait in order (the oldest claims the slots first), so only the head of the
    queue counts; a job held back on purpose (`not_before`) is not counted."""
    queued = []  # (from, until, demand, id)
    running = []  # (from, until, demand)
    now = time.time()
    for row in rows:
        demand = min(row["cpu_demand"], cpu_slots)
        start = row["dispatched"]
        end = row["finished"] if row["finished"] is not None else now
        if row["not_before"]:
            continue
        queued.append((row["created"], start if start is not None else end, demand, row["id"]))
        if start is not None:
            running.append((start, end, demand))
    edges = sorted({t for q in queued for t in q[:2]} | {t for r in running for t in r[:2]})
    stalls: list[tuple[float, float, str]] = []
    open_since: tuple[float, str] | None = None
    for t0, t1 in itertools.pairwise(edges):
        mid = (t0 + t1) / 2
        used = sum(d for s, e, d in running if s <= mid < e)
        waiting = sorted((q for q in queued if q[0] <= mid < q[1]), key=lambda q: q[0])
        fits = bool(waiting) and waiting[0][2] <= cpu_slots - used + 1e-9
        if fits and open_since is None:
            open_since = (t0, waiting[0][3])
        elif not fits and open_since is not None:
            stalls.append((open_since[0], t0 - open_since[0], open_since[1]))
            open_since = None
    if open_since is not None:
        stalls.append((open_since[0], edges[-1] - open_since[0], open_since[1]))
    return stalls


# --- the REST API under faults -------------------------------------------------------------------


class JupyterServer:
    """A real Jupyter server with the extension on a loopback port, its output in `log`."""

    def __init__(self, log: Path, root: Path) -> None:
        from jupyter_cloudml.backends.local.processes import free_ports

        self.log, self.root = log, root
        (self.port,) = free_ports(1)
        self.token = secrets.token_hex(8)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> JupyterServer:
        argv = [
            sys.executable,
            "-m",
            "jupyter_server",
            "--allow-root",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            "--ServerApp.jpserver_extensions={'jupyter_cloudml': True}",
        ]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while self.call("GET", "/capabilities")[0] != 200:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the Jupyter server did not start in 60 s"
            time.sleep(0.1)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 60
    ) -> tuple[int, Any]:
        """(status, JSON answer) of `/cloudml/api{path}`; 0 when the server does not answer."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/cloudml/api{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, e.read()[:500].decode(errors="replace")
        except OSError as e:
            return 0, repr(e)


class RestReader:
    """A thread that asks the REST API about everything in a loop (`paths()` gives the GETs,
    `posts()` the POSTs of the moment) and keeps every answer that was not 200."""

    def __init__(
        self,
        server: JupyterServer,
        paths: Callable[[], list[str]],
        posts: Callable[[], list[tuple[str, Any]]] = list,
    ) -> None:
        self.server, self.paths, self.posts = server, paths, posts
        self.answers = 0
        self.bad: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stop.is_set():
            calls = [("GET", path, None) for path in self.paths()]
            calls += [("POST", path, body) for path, body in self.posts()]
            for method, path, body in calls:
                status, answer = self.server.call(method, path, body)
                self.answers += 1
                if status != 200:
                    self.bad.append(f"{method} {path}: {status} {answer}")
            self.stop.wait(0.2)

    def __enter__(self) -> RestReader:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(120)


# --- the submitter program -----------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str]:
    from jupyter_cloudml.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def submit_all(script_dir: Path, ids_file: Path, plan: list[dict[str, Any]]) -> int:
    """Submit each job of `plan` (`name`, `flags`, `args`, `cancel_after`) with `cloudml train`,
    recording its id; cancel those with `cancel_after` seconds with `cloudml jobs cancel`."""
    os.chdir(script_dir)
    failures = 0
    for job in plan:
        argv = ["train", "job.py", "--name", job["name"], "--output", "json", *job["flags"]]
        code, out = _cli([*argv, "--", *job["args"]])
        if code != 0:
            print(f"submitter: cloudml {' '.join(argv)} exited {code}", file=sys.stderr)
            failures += 1
            continue
        job_id = json.loads(out)["id"]
        with open(ids_file, "a") as ids:
            ids.write(job_id + "\n")
        if job.get("cancel_after") is not None:
            time.sleep(job["cancel_after"])
            code, _ = _cli(["jobs", "cancel", job_id])
            if code != 0:
                print(f"submitter: cloudml jobs cancel {job_id} exited {code}", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(submit_all(Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])))
