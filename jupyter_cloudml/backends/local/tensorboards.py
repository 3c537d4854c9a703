"""TensorBoards of the local backend: one detached process per set of jobs, reused while alive.

Each TensorBoard is a process of its own (`python -m jupyter_cloudml.backends.local.tensorboards`)
in a new session, bound to 127.0.0.1 on a free port. Once it serves, it writes its record
`<home>/tensorboards/<id>.json` (id, jobs, port, pid); it removes the record and exits after
`idle_seconds` without an HTTP request, so a TensorBoard nobody looks at stops by itself.
The id is derived from the set of jobs, so asking again for the same jobs reuses the process.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from ...exceptions import BackendUnavailable, InvalidSpec, NotFound
from ...models import TensorBoardInfo
from ..common.tensorboards import INDEX_PATHS, relative_assets, tensorboard_id
from .processes import (
    PRIVATE_UMASK,
    file_lock,
    private_dir,
    private_open,
    process_alive,
    write_json,
)

STARTUP_TIMEOUT = 60.0
ID_RE = re.compile(r"^tb-[0-9a-f]{12}$")


class LocalTensorBoards:
    """Start, find and stop the TensorBoards whose records live in `folder`."""

    def __init__(self, folder: Path, python: str = sys.executable) -> None:
        self.folder = folder
        self.python = python

    def launch(
        self, logdirs: Mapping[str, str], idle_seconds: float, reload_seconds: float = 5.0
    ) -> TensorBoardInfo:
        """The running TensorBoard over these runs (`{run: event file folder}`), or a new one."""
        if not logdirs:
            raise InvalidSpec("TensorBoard needs at least one job")
        for name, path in logdirs.items():
            if any(c in f"{name}{path}" for c in ",\n") or ":" in name:
                raise InvalidSpec(f"cannot hand {name}={path!r} to TensorBoard (',' or ':')")
        tb_id = tensorboard_id(list(logdirs))
        private_dir(self.folder, parents=True)
        with self._lock(tb_id):
            running = self._alive(tb_id)
            if running is not None:
                return _info(running, reused=True)
            spec = ",".join(f"{name}:{path}" for name, path in sorted(logdirs.items()))
            log = self.folder / f"{tb_id}.log"
            with private_open(log, "wb") as out:
                proc = subprocess.Popen(
                    [
                        self.python,
                        "-m",
                        __name__,
                        f"--id={tb_id}",
                        f"--record={self.folder / f'{tb_id}.json'}",
                        f"--logdir-spec={spec}",
                        f"--idle-seconds={idle_seconds}",
                        f"--reload-seconds={reload_seconds}",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                    umask=PRIVATE_UMASK,
                )
            return _info(self._await_record(tb_id, proc, log), reused=False)

    def list(self) -> list[TensorBoardInfo]:
        """The TensorBoards that are running now, oldest first."""
        found = []
        for path in sorted(self.folder.glob("tb-*.json")):
            record = self._alive(path.stem)
            if record is not None:
                found.append(_info(record, reused=True))
        return sorted(found, key=lambda tb: tb.started)

    def stop(self, tb_id: str) -> None:
        """Stop one TensorBoard; `NotFound` when none with that id runs."""
        record = self._alive(tb_id) if ID_RE.match(tb_id) else None  # no path tricks
        if record is None:
            raise NotFound(f"no running TensorBoard {tb_id!r}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(record["pid"], signal.SIGTERM)
        self._record_path(tb_id).unlink(missing_ok=True)

    # --- records ---------------------------------------------------------------------------

    def _record_path(self, tb_id: str) -> Path:
        return self.folder / f"{tb_id}.json"

    def _lock(self, tb_id: str) -> contextlib.AbstractContextManager[None]:
        """Serialise launches of the same TensorBoard across processes (kernel, server, CLI)."""
        return file_lock(self.folder / f"{tb_id}.lock")

    def _alive(self, tb_id: str) -> dict[str, Any] | None:
        """The record of a TensorBoard that still runs; a stale record is removed."""
        path = self._record_path(tb_id)
        try:
            record: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if process_alive(record.get("pid"), record.get("pid_started")):
            return record
        path.unlink(missing_ok=True)
        return None

    def _await_record(self, tb_id: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            record = self._alive(tb_id)
            if record is not None:
                return record
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                raise BackendUnavailable(
                    f"TensorBoard exited with code {proc.returncode} before serving: "
                    + (" | ".join(tail) or "no output")
                )
            time.sleep(0.1)
        proc.kill()
        raise BackendUnavailable(f"TensorBoard did not start within {STARTUP_TIMEOUT:.0f} s")


def _info(record: Mapping[str, Any], reused: bool) -> TensorBoardInfo:
    return TensorBoardInfo(
        id=record["id"],
        jobs=tuple(record["jobs"]),
        url=f"http://127.0.0.1:{record['port']}/",
        started=record["started"],
        reused=reused,
    )


# --- the TensorBoard process ------------------------------------------------------------------


class _IdleClock:
    """WSGI middleware that notes the time of the last request, and serves TensorBoard's page
    with its assets addressed from the page (`relative_assets`: behind the proxy)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.last = time.monotonic()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        self.last = time.monotonic()
        if environ.get("PATH_INFO") not in INDEX_PATHS:
            return self.app(environ, start_response)
        environ["HTTP_ACCEPT_ENCODING"] = "identity"  # the page is rewritten as text
        answer: list[Any] = []

        def keep(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answer[:] = [status, [h for h in headers if h[0].lower() != "content-length"]]
            return lambda data: None

        body = relative_assets(b"".join(self.app(environ, keep)))
        status, headers = answer
        start_response(status, [*headers, ("Content-Length", str(len(body)))])
        return [body]


def serve(argv: Sequence[str] | None = None) -> None:
    """Run TensorBoard on 127.0.0.1 (free port), publish the record, exit when idle."""
    from tensorboard import program

    parser = argparse.ArgumentParser(prog=__name__)
    for flag in ("--id", "--record", "--logdir-spec"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--idle-seconds", type=float, default=1800.0)
    parser.add_argument("--reload-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    record_path = Path(args.record)
    clock: list[_IdleClock] = []

    def make_server(app: Any, flags: Any) -> Any:
        clock.append(_IdleClock(app))
        server = program.WerkzeugServer(clock[0], flags)
        me = psutil.Process()
        jobs = [entry.split(":", 1)[0] for entry in args.logdir_spec.split(",")]
        record = {
            "id": args.id,
            "jobs": jobs,
            "port": server.server_port,
            "pid": me.pid,
            "pid_started": me.create_time(),
            "started": time.time(),
        }
        write_json(record_path, record)
        return server

    def exit_when_idle() -> None:
        while True:
            time.sleep(min(5.0, args.idle_seconds / 4))
            if clock and time.monotonic() - clock[0].last > args.idle_seconds:
                record_path.unlink(missing_ok=True)
                os._exit(0)

    def on_term(signum: int, frame: Any) -> None:
        record_path.unlink(missing_ok=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    threading.Thread(target=exit_when_idle, daemon=True).start()
    board = program.TensorBoard(server_class=make_server)
    board.configure(
        argv=[
            "tensorboard",
            f"--logdir_spec={args.logdir_spec}",
            "--host=127.0.0.1",
            "--port=0",
            "--load_fast=false",
            f"--reload_interval={args.reload_seconds}",
        ]
    )
    sys.exit(board.main())


if __name__ == "__main__":
    serve()
