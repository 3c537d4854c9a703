"""The keeper: one detached process per home that watches while there is work.

Every `INTERVAL` seconds it runs a scheduling pass (`scheduler.dispatch`): jobs whose supervisor
died are recorded as ended with the reason, and queued jobs that fit the freed slots start. It
also brings back endpoint processes of live deployments that died. It leaves by itself once the
home has had no queued or running job and no deployment for `Settings.keeper_idle_seconds`
(`c.LocalBackend.keeper_idle_seconds`), or at once when its home is removed, and comes back
the next time anyone touches the home (`ensure_keeper`: every `LocalBackend`, so any CLI call,
the server extension and a kernel's first `%cloudml` command). A lock in the home keeps it to
one.

    python -m jupyter_cloudml.backends.local.keeper SETTINGS_JSON
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

import psutil

from .processes import private_open, spawn_detached, wait_ended, write_json
from .scheduler import Settings, dispatch
from .store import ACTIVE, QUEUED, JobStore

#: Seconds between two passes: a dead supervisor is found, and freed slots reused, this fast.
INTERVAL = 0.5
MODULE = "jupyter_cloudml.backends.local.keeper"
LOCK_FILE = "keeper.lock"
LOG_FILE = "keeper.log"
#: The running keeper's pid and start time, written once it holds the lock.
PROCESS_FILE = "keeper.json"


def _try_lock(home: str | Path) -> IO[str] | None:
    """The home's keeper lock, taken, or None when a keeper holds it."""
    handle = private_open(Path(home) / LOCK_FILE, "a")  # held for the keeper's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def keeper_running(home: str | Path) -> bool:
    """Whether a keeper watches this home now."""
    handle = _try_lock(home)
    if handle is None:
        return True
    handle.close()  # closing releases the probe's lock
    return False


def ensure_keeper(settings: Settings) -> None:
    """Start the home's keeper unless one runs. Two starters racing start two processes, and
    the one that loses the lock leaves at once."""
    if keeper_running(settings.home):
        return
    argv = [sys.executable, "-m", MODULE, settings.to_json()]
    spawn_detached(argv, Path(settings.home) / LOG_FILE, Path(settings.home))


def stop_keeper(home: str | Path, timeout: float = 10.0) -> bool:
    """Ask the home's keeper to leave and wait until it has; whether one was running. Every
    keeper process of the home is asked, so one still starting (not yet holding the lock or
    recorded) does not stay behind."""
    procs = _keeper_processes(home)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    for proc in procs:
        wait_ended(proc, timeout)
    return bool(procs)


def _keeper_processes(home: str | Path) -> list[psutil.Process]:
    """The running keepers of `home`, told by their command line."""
    home = os.path.abspath(home)
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if argv[1:3] != ["-m", MODULE] or len(argv) < 4:
            continue
        with contextlib.suppress(ValueError, TypeError, KeyError, psutil.NoSuchProcess):
            if Settings.from_json(argv[3]).home == home and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
    return found


def has_work(store: JobStore, home: str | Path) -> bool:
    """Queued or running jobs, or deployments whose endpoints must be kept up."""
    if store.rows_with_status([*ACTIVE, QUEUED], limit=1):
        return True
    return any((Path(home) / "deployments").glob("*/desired.json"))


class Keeper:
    """The watch loop of one home (see the module's docstring)."""

    def __init__(self, settings: Settings, lock: IO[str]) -> None:
        from .deployments import LocalDeployments

        self.settings = settings
        self.lock = lock
        self.store = JobStore(settings.db_path)
        self.endpoints = LocalDeployments(Path(settings.home) / "deployments", None)
        self.stopping = False

    def run(self) -> None:
        idle_since: float | None = None
        while not self.stopping and self.home_is_there():
            self.pass_once()
            now = time.monotonic()
            if has_work(self.store, self.settings.home):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= self.settings.keeper_idle_seconds:
                return
            time.sleep(INTERVAL)

    def home_is_there(self) -> bool:
        """Whether the home is still the one this keeper locked: not removed, nor replaced by
        a new home at the same path (which has its own keeper)."""
        try:
            there = os.stat(Path(self.settings.home) / LOCK_FILE)
        except OSError:
            return False
        mine = os.fstat(self.lock.fileno())
        return (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino)

    def pass_once(self) -> None:
        """One round: record dead supervisors, start what fits, revive dead endpoints."""
        try:
            dispatch(self.store, self.settings)
            self.endpoints.revive_all()
        except Exception as exc:  # a failing pass must not end the watch; say why and go on
            print(f"keeper pass failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    settings = Settings.from_json(argv[1])
    lock = _try_lock(settings.home)
    if lock is None:
        return 0  # another keeper watches this home
    keeper = Keeper(settings, lock)
    me = psutil.Process()
    write_json(Path(settings.home) / PROCESS_FILE, {"pid": me.pid, "started": me.create_time()})

    def stop(signum: int, frame: object) -> None:
        keeper.stopping = True

    signal.signal(signal.SIGTERM, stop)
    with contextlib.closing(lock):
        keeper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
