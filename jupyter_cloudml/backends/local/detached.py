"""Processes that outlive their starter (job supervisors, TensorBoards, endpoints) and the
file locks that keep two starters from racing."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil


def spawn_detached(
    argv: Sequence[str], log: Path, cwd: Path | None = None
) -> tuple[int, float | None]:
    """Start `argv` in a session of its own, output appended to `log`; its pid and creation
    time (to tell it from a later process that reuses the pid)."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    try:
        return proc.pid, psutil.Process(proc.pid).create_time()
    except psutil.NoSuchProcess:
        return proc.pid, None


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes, held for the `with` block."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
