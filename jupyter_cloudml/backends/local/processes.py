"""Process plumbing of the local backend: processes that outlive their starter (job supervisors,
TensorBoards, endpoints), telling whether a recorded process still runs, free loopback ports,
the locks that keep two starters from racing, and the small JSON files processes publish.

Everything the backend writes in its home is its owner's only (folders 0700, files 0600),
whatever the umask of the process writing: `private_dir` and `private_open` here, and
`PRIVATE_UMASK` for the processes it starts (and all they start in turn)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import psutil

#: The umask of every process the backend starts, and the modes of what it creates itself.
PRIVATE_UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path, *, parents: bool = False) -> None:
    """Create `path` (if missing) as a folder only its owner may enter."""
    path.mkdir(mode=DIR_MODE, parents=parents, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(DIR_MODE)


def private_open(path: Path, mode: str = "ab") -> IO[Any]:
    """`open(path, mode)` for writing, a new file created 0600 whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, FILE_MODE), mode)


def spawn_detached(
    argv: Sequence[str], log: Path, cwd: Path | None = None
) -> tuple[int, float | None]:
    """Start `argv` in a session of its own, output appended to `log`; its pid and creation
    time (to tell it from a later process that reuses the pid)."""
    with private_open(log) as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            umask=PRIVATE_UMASK,
        )
    try:
        return proc.pid, psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        return proc.pid, None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes, held for the `with` block."""
    with private_open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def process_alive(pid: int | None, started: float | None) -> bool:
    """Whether `pid` is still the process created at `started` (not a reused pid, no zombie)."""
    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return False
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_ended(proc: psutil.Process, timeout: float) -> bool:
    """Wait until `proc` has exited; whether it did within `timeout` seconds. A zombie counts:
    the child of another process (an endpoint the keeper brought back) stays one until that
    process reaps it, and `psutil.Process.wait` would wait for that until its timeout."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(psutil.TimeoutExpired):
            proc.wait(0)  # gone, or a child of ours, reaped
            return True
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def kill_process_group(pid: int, started: float | None) -> None:
    """SIGKILL what is left of a dead supervisor's process group (its orphaned replicas)."""
    try:
        proc = psutil.Process(pid)
        if started is not None and abs(proc.create_time() - started) > 1.0:
            return  # the pid was reused, so its old group is gone already
    except psutil.NoSuchProcess:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def free_ports(count: int) -> list[int]:
    """`count` distinct free TCP ports on loopback (held together, so no two are the same)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_json(path: Path, data: Any) -> None:
    """Replace `path` atomically (readers never see half a file)."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with private_open(tmp, "w") as out:
        out.write(json.dumps(data, indent=1))
    os.replace(tmp, path)
