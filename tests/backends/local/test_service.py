"""The home's keeper as a systemd user service: the unit `cloudml local service install` writes
is read back, and its `ExecStart=` run as systemd would run it (its own environment, in the
foreground): it takes the home's lock, dispatches queued jobs with nobody reading, stays while
idle, waits for the lock instead of leaving, and exits 0 on SIGTERM.

Progress is read from the job database directly (`JobStore`), as in test_keeper.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from cloudml_testkit import wait_for
from fault_testkit import keepers

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.keeper import ensure_keeper, keeper_record, keeper_running
from jupyter_cloudml.backends.local.store import JobStore
from jupyter_cloudml.cli import main
from jupyter_cloudml.models import JobStatus, Resources

SLEEPER = "import time\ntime.sleep(120)\n"
QUICK = "print('done')\n"


@pytest.fixture(autouse=True)
def no_user_manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Units go under the test's own XDG_CONFIG_HOME, and `systemctl --user` finds no user
    manager (an empty runtime dir, no session bus), as on a machine without systemd."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    return runtime


def install(*argv: str) -> Path:
    """`cloudml local service install ARGV`; the unit file it wrote."""
    assert main(["local", "service", "install", *argv, "-o", "json"]) == 0
    (unit,) = (Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user").glob("*.service")
    return unit


def read_unit(path: Path) -> dict[str, list[str]]:
    """`Section.Key` -> its values, in order (a key may repeat, as Environment= does)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key}", []).append(value)
    return entries


def words(value: str, command: bool = True) -> list[str]:
    """A unit's value split as systemd splits it: quotes, C escapes, `%%` and (in commands)
    `$$` for a literal `%` and `$`."""
    found = [w.replace("%%", "%") for w in shlex.split(value)]
    return [w.replace("$$", "$") for w in found] if command else found


def service_command(unit: Path) -> tuple[list[str], dict[str, str]]:
    """The unit's command line and the environment systemd gives it: the user manager's few
    variables, then the unit's `Environment=`."""
    entries = read_unit(unit)
    (exec_start,) = entries["Service.ExecStart"]
    env = {"HOME": os.environ["HOME"], "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for value in entries["Service.Environment"]:
        key, _, val = words(value, command=False)[0].partition("=")
        env[key] = val
    return words(exec_start), env


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator:
    """Start a unit's command as systemd would (output to a log, as to the journal); every one
    started is stopped afterwards."""
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start(unit: Path) -> tuple[subprocess.Popen[bytes], Path]:
        argv, env = service_command(unit)
        log = tmp_path / f"service-{len(started)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        started.append((proc, log))
        return proc, log

    yield start
    for proc, _ in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)


def status(home: Path, job_id: str) -> JobStatus:
    row = JobStore(home / "jobs.db").row(job_id)
    assert row is not None
    return JobStatus(row["status"])


def holder(home: Path) -> int | None:
    """The pid of the keeper that watches the home, if it runs as a service."""
    record = keeper_record(home)
    return record["pid"] if record and record.get("service") else None


def write_config(**traits: object) -> None:
    folder = Path(os.environ["JUPYTER_CONFIG_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "jupyter_cloudml_config.json").write_text(json.dumps({"LocalBackend": traits}))


def test_the_units_command_keeps_the_home_and_stays_while_idle(
    isolated_home: Path, make_spec, start_service
) -> None:
    write_config(keeper_idle_seconds=1.0, cpu_slots=7)  # read by the service when it starts
    unit = install()
    argv, env = service_command(unit)
    assert argv[0] == sys.executable
    assert env["CLOUDML_HOME"] == str(isolated_home)

    service, log = start_service(unit)
    wait_for(lambda: holder(isolated_home) == service.pid, timeout=30)
    assert keeper_running(isolated_home)
    assert "7 CPU slot(s)" in log.read_text()  # its settings come from the configuration

    backend = LocalBackend(home=str(isolated_home), cpu_slots=1.0, gpu_ids=[])
    running = backend.submit(make_spec(SLEEPER, name="running", resources=Resources(cpu=1)))
    queued = backend.submit(make_spec(QUICK, name="queued", resources=Resources(cpu=1)))
    wait_for(lambda: status(isolated_home, running.id) is JobStatus.RUNNING, timeout=30)
    assert status(isolated_home, queued.id) is JobStatus.QUEUED
    row = JobStore(isolated_home / "jobs.db").row(running.id)
    psutil.Process(row["supervisor_pid"]).kill()  # only the keeper watches now
    wait_for(lambda: status(isolated_home, running.id) is JobStatus.FAILED, timeout=15)
    wait_for(lambda: status(isolated_home, queued.id) is JobStatus.SUCCEEDED, timeout=60)
    assert keepers(isolated_home) == []  # the service's keeper did it all

    time.sleep(3.0)  # three times keeper_idle_seconds with nothing to watch
    assert service.poll() is None
    assert holder(isolated_home) == service.pid

    service.send_signal(signal.SIGTERM)
    assert service.wait(15) == 0
    assert not keeper_running(isolated_home)
    assert log.read_text().splitlines()[-1] == f"keeper of {isolated_home}: stopped"


def test_the_service_waits_for_the_lock_and_takes_over_from_a_keeper_on_demand(
    isolated_home: Path, start_service
) -> None:
    ensure_keeper(LocalBackend(home=str(isolated_home), keeper_idle_seconds=300.0).settings)
    wait_for(lambda: keeper_record(isolated_home) is not None, timeout=30)
    on_demand = psutil.Process(keeper_record(isolated_home)["pid"])
    unit = install()

    first, _ = start_service(unit)
    wait_for(lambda: holder(isolated_home) == first.pid, timeout=30)
    on_demand.wait(10)  # asked to leave, it left

    second, log = start_service(unit)  # e.g. run by hand while the unit runs
    wait_for(lambda: "waiting" in log.read_text(), timeout=30)
    time.sleep(1.0)
    assert second.poll() is None and holder(isolated_home) == first.pid

    third, log3 = start_service(unit)
    wait_for(lambda: "waiting" in log3.read_text(), timeout=30)
    third.send_signal(signal.SIGTERM)  # a waiting one stops cleanly too
    assert third.wait(15) == 0
    assert "stopped before it watched" in log3.read_text()

    first.send_signal(signal.SIGTERM)
    assert first.wait(15) == 0
    wait_for(lambda: holder(isolated_home) == second.pid, timeout=15)
    second.send_signal(signal.SIGTERM)
    assert second.wait(15) == 0


def test_the_unit_file(tmp_path: Path) -> None:
    home = tmp_path / 'a home with 100% of $HOME\'s "quotes"'
    unit = install("--home", str(home))
    entries = read_unit(unit)
    argv, env = service_command(unit)
    assert argv[1:] == ["-m", "jupyter_cloudml.backends.local.service", "--home", str(home)]
    assert env["CLOUDML_HOME"] == str(home)
    if "PYTHONPATH" in os.environ:  # the code it runs is the code that installed it
        assert env["PYTHONPATH"] == os.environ["PYTHONPATH"]
    assert entries["Service.Type"] == ["simple"]
    assert entries["Service.Restart"] == ["on-failure"]
    assert entries["Service.KillMode"] == ["process"]  # the jobs it starts outlive it
    assert entries["Install.WantedBy"] == ["default.target"]
    assert unit.name.startswith("jupyter-cloudml-keeper-")  # not the default home
    for path in (unit, unit.parent, unit.parent.parent):
        assert path.stat().st_mode & 0o022 == 0  # writable by its owner only


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed: the unit is only read back by the tests above",
)
def test_systemd_accepts_the_unit(tmp_path: Path, no_user_manager: Path) -> None:
    home = tmp_path / 'a home with 100% of $HOME\'s "quotes"'
    unit = install("--home", str(home))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--user", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_RUNTIME_DIR": str(no_user_manager)},
    )
    assert done.returncode == 0, done.stderr
    assert unit.name not in done.stderr, done.stderr
