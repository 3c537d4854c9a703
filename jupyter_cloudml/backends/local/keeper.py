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

`serve` is the other way to run it, for a service manager (`service.py`, the systemd user unit of
`cloudml local service install`): in the foreground, never leaving while idle, and waiting for
the lock instead of leaving when another keeper holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psutil

from .processes import (
    private_dir,
    private_open,
    process_alive,
    spawn_detached,
    wait_ended,
    write_json,
)
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


def keeper_record(home: str | Path) -> dict[str, Any] | None:
    """What the keeper watching this home now recorded of itself (`pid`, `started`, `service`:
    whether it runs as a service), or None when none runs or it has not recorded itself yet."""
    try:
        record = json.loads((Path(home) / PROCESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not keeper_running(home) or not process_alive(record.get("pid"), record.get("started")):
        return None
    return dict(record)


def stop_keeper(home: str | Path, timeout: float = 10.0) -> bool:
    """Ask the home's keeper to leave and wait until it has; whether one was running. The
    keeper that recorded itself (a service's too) and every keeper process started on demand
    for the home are asked, so one still starting (not yet holding the lock nor recorded) does
    not stay behind."""
    procs = _keeper_processes(home)
    record = keeper_record(home)
    if record is not None and record["pid"] not in {proc.pid for proc in procs}:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(record["pid"]))
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

    def __init__(self, settings: Settings, lock: IO[str], stay: bool = False) -> None:
        from .deployments import LocalDeployments

        self.settings = settings
        self.lock = lock  # held while it watches: `home_is_there` compares it with the home's
        self.stay = stay  # a service's keeper: it never leaves for lack of work
        self.store = JobStore(settings.db_path)
        self.endpoints = LocalDeployments(Path(settings.home) / "deployments", None)
        self.stopping = False

    def run(self) -> None:
        idle_since: float | None = None
        while not self.stopping and self.home_is_there():
            self.pass_once()
            now = time.monotonic()
            if self.stay or has_work(self.store, self.settings.home):
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


def _record_myself(home: str | Path, service: bool) -> None:
    me = psutil.Process()
    record = {"pid": me.pid, "started": me.create_time(), "service": service}
    write_json(Path(home) / PROCESS_FILE, record)


def main(argv: list[str]) -> int:
    """The keeper started on demand (`ensure_keeper`): it leaves at once when another holds the
    lock, and by itself once idle."""
    settings = Settings.from_json(argv[1])
    lock = _try_lock(settings.home)
    if lock is None:
        return 0  # another keeper watches this home
    keeper = Keeper(settings, lock)
    _record_myself(settings.home, service=False)

    def stop(signum: int, frame: object) -> None:
        keeper.stopping = True

    signal.signal(signal.SIGTERM, stop)
    with contextlib.closing(lock):
        keeper.run()
    return 0


def _say(text: str) -> None:
    print(text, flush=True)  # a service's output goes to its manager's journal


class _Stop:
    """SIGTERM and SIGINT, as a flag the waiting and the watching look at."""

    def __init__(self) -> None:
        self.requested = False
        self.keeper: Keeper | None = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self)

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.keeper is not None:
            self.keeper.stopping = True


def _wait_for_lock(home: str | Path, stop: _Stop) -> IO[str] | None:
    """The home's lock, once this process holds it; None if asked to stop first. A keeper
    started on demand that holds it is asked to leave (the service takes over its watch);
    another service's keeper is waited for."""
    asked: set[int] = set()
    said = ""
    while not stop.requested:
        lock = _try_lock(home)
        if lock is not None:
            return lock
        holder = keeper_record(home)
        if holder is None:
            news = "another keeper holds the home's lock: waiting for it"
        elif holder.get("service"):
            news = f"the keeper of another service (pid {holder['pid']}) watches: waiting for it"
        else:
            news = f"a keeper started on demand (pid {holder['pid']}) watches: taking over"
            if holder["pid"] not in asked:
                asked.add(holder["pid"])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(holder["pid"], signal.SIGTERM)
        if news != said:
            _say(f"keeper of {home}: {news}")
            said = news
        time.sleep(INTERVAL)
    return None


def serve(home: str | Path, load_settings: Callable[[], Settings]) -> int:
    """The home's keeper for a service manager (systemd `Type=simple`): in the foreground,
    saying what it does on stdout and stderr, never leaving while idle, exiting 0 on SIGTERM or
    SIGINT. While another keeper holds the home's lock it waits (see `_wait_for_lock`) rather
    than leaving, so the service stays up and watches once that one leaves. `load_settings` is
    called once the lock is held: building them touches the home, which would otherwise start
    a keeper on demand."""
    stop = _Stop()
    try:
        private_dir(Path(home), parents=True)
    except OSError as e:
        print(f"keeper of {home}: cannot create the home: {e}", file=sys.stderr, flush=True)
        return 1
    lock = _wait_for_lock(home, stop)
    if lock is None:
        _say(f"keeper of {home}: stopped before it watched")
        return 0
    with contextlib.closing(lock):
        settings = load_settings()
        stop.keeper = keeper = Keeper(settings, lock, stay=True)
        keeper.stopping = stop.requested
        _record_myself(home, service=True)
        gpus = ", ".join(map(str, settings.gpu_ids)) or "none"
        _say(
            f"keeper of {home}: watching (pid {os.getpid()}; {settings.cpu_slots:g} CPU "
            f"slot(s), GPUs {gpus}); it stays while idle and leaves on SIGTERM"
        )
        keeper.run()
    _say(f"keeper of {home}: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
