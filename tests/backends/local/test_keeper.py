"""The home's keeper: dead supervisors found and queued jobs started while nobody reads, one
keeper per home, back by itself after every process of the home was killed (a reboot), gone
when there is nothing to watch.

Progress is read from the job database directly (`JobStore`), never through the backend,
whose reads would do the keeper's work themselves.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import psutil
from cloudml_testkit import wait_for
from fault_testkit import home_processes, keepers

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.keeper import (
    PROCESS_FILE,
    ensure_keeper,
    keeper_running,
    stop_keeper,
)
from jupyter_cloudml.backends.local.scheduler import dispatch
from jupyter_cloudml.backends.local.store import JobStore
from jupyter_cloudml.models import JobStatus, Resources

SLEEPER = "import time\ntime.sleep(120)\n"
QUICK = "print('done')\n"


def status(home: Path, job_id: str) -> JobStatus:
    row = JobStore(home / "jobs.db").row(job_id)
    assert row is not None
    return JobStatus(row["status"])


def record(home: Path, job_id: str):
    row = JobStore(home / "jobs.db").row(job_id)
    assert row is not None
    return row


def supervisor(home: Path, job_id: str) -> psutil.Process:
    wait_for(lambda: record(home, job_id)["supervisor_pid"] is not None, timeout=30)
    return psutil.Process(record(home, job_id)["supervisor_pid"])


def test_a_dead_supervisor_is_found_and_the_queue_moves_without_readers(isolated_home, make_spec):
    backend = LocalBackend(home=str(isolated_home), cpu_slots=1.0, gpu_ids=[])
    running = backend.submit(make_spec(SLEEPER, name="running", resources=Resources(cpu=1)))
    queued = [
        backend.submit(make_spec(QUICK, name=f"queued{i}", resources=Resources(cpu=1))).id
        for i in range(3)
    ]
    wait_for(lambda: keeper_running(isolated_home), timeout=10)
    wait_for(lambda: status(isolated_home, running.id) is JobStatus.RUNNING, timeout=30)
    assert record(isolated_home, queued[0])["reason"] == ("waiting for 1 CPU slot(s): 0 of 1 free")
    supervisor(isolated_home, running.id).kill()
    wait_for(lambda: status(isolated_home, running.id) is JobStatus.FAILED, timeout=10)
    assert "supervisor" in record(isolated_home, running.id)["reason"]
    for job_id in queued:  # each starts when the one before it frees the slot
        wait_for(lambda j=job_id: status(isolated_home, j) is JobStatus.SUCCEEDED, timeout=60)
        assert record(isolated_home, job_id)["reason"] == ""


def test_one_keeper_per_home_however_many_start_one(isolated_home):
    backend = LocalBackend(home=str(isolated_home), keeper_idle_seconds=30.0)
    starters = [threading.Thread(target=ensure_keeper, args=(backend.settings,)) for _ in range(8)]
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join()
    wait_for(lambda: keeper_running(isolated_home), timeout=10)
    time.sleep(1.0)  # the losers of the lock have left by now
    assert len(keepers(isolated_home)) == 1
    assert stop_keeper(isolated_home)
    wait_for(lambda: keepers(isolated_home) == [], timeout=10)


def test_the_keeper_leaves_when_there_is_nothing_to_watch(isolated_home, make_spec):
    backend = LocalBackend(home=str(isolated_home), keeper_idle_seconds=1.0)
    job = backend.submit(make_spec(QUICK))
    wait_for(lambda: keeper_running(isolated_home), timeout=10)
    wait_for(lambda: status(isolated_home, job.id) is JobStatus.SUCCEEDED, timeout=60)
    wait_for(lambda: not keeper_running(isolated_home), timeout=15)
    wait_for(lambda: keepers(isolated_home) == [], timeout=5)


def test_after_a_reboot_every_job_ends_or_runs_again(isolated_home, make_spec):
    """Kill every process of the home at once, then touch the product once."""
    backend = LocalBackend(home=str(isolated_home), cpu_slots=2.0, gpu_ids=[])
    spec = make_spec(SLEEPER, name="long", resources=Resources(cpu=1))
    long_jobs = [backend.submit(spec).id for _ in range(2)]
    waiting = backend.submit(make_spec(QUICK, name="after", resources=Resources(cpu=1))).id
    for job_id in long_jobs:
        wait_for(lambda j=job_id: status(isolated_home, j) is JobStatus.RUNNING, timeout=30)
    victims = home_processes(isolated_home)
    assert len(victims) >= 5  # the keeper, two supervisors and their replicas
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(victims, timeout=10)
    assert not keeper_running(isolated_home)
    assert status(isolated_home, waiting) is JobStatus.QUEUED

    LocalBackend(home=str(isolated_home), cpu_slots=2.0, gpu_ids=[])  # e.g. `cloudml jobs list`

    for job_id in long_jobs:
        wait_for(lambda j=job_id: status(isolated_home, j) is JobStatus.FAILED, timeout=10)
        assert "supervisor" in record(isolated_home, job_id)["reason"]
    wait_for(lambda: status(isolated_home, waiting) is JobStatus.SUCCEEDED, timeout=60)


def test_a_queued_job_starts_with_the_slots_of_the_backend_that_queued_it(isolated_home, make_spec):
    """A `--gpus 1` job queued where a GPU is seen is started by a scheduling pass that runs
    in a process that sees none."""
    with_gpu = LocalBackend(home=str(isolated_home), cpu_slots=4.0, gpu_ids=[0])
    busy = with_gpu.submit(make_spec(SLEEPER, name="busy", resources=Resources(gpus=1)))
    queued = with_gpu.submit(make_spec(QUICK, name="queued", resources=Resources(gpus=1)))
    assert record(isolated_home, queued.id)["reason"] == "waiting for 1 GPU(s): 0 of 1 free"
    wait_for(lambda: status(isolated_home, busy.id) is JobStatus.RUNNING, timeout=30)
    stop_keeper(isolated_home)
    victim = supervisor(isolated_home, busy.id)
    victim.kill()
    victim.wait(10)
    without_gpu = LocalBackend(home=str(isolated_home), cpu_slots=4.0, gpu_ids=[])
    stop_keeper(isolated_home)
    dispatch(without_gpu.store, without_gpu.settings)
    assert status(isolated_home, busy.id) is JobStatus.FAILED
    assert status(isolated_home, queued.id) is not JobStatus.QUEUED
    wait_for(lambda: status(isolated_home, queued.id) is JobStatus.SUCCEEDED, timeout=60)
    assert record(isolated_home, queued.id)["gpu_ids"] == "[0]"


def test_the_keeper_records_itself_and_answers_sigterm(isolated_home, make_spec):
    backend = LocalBackend(home=str(isolated_home))
    backend.submit(make_spec(SLEEPER))
    wait_for(lambda: (isolated_home / PROCESS_FILE).exists(), timeout=10)
    (proc,) = keepers(isolated_home)
    assert proc.cmdline()[0] == sys.executable
    assert stop_keeper(isolated_home)
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_the_jupyter_server_starting_brings_the_keeper_back(isolated_home, make_spec):
    from jupyter_cloudml.server.app import CloudMLServerApp

    backend = LocalBackend(home=str(isolated_home), cpu_slots=1.0, gpu_ids=[])
    job = backend.submit(make_spec(SLEEPER, resources=Resources(cpu=1)))
    waiting = backend.submit(make_spec(QUICK, name="waiting", resources=Resources(cpu=1)))
    wait_for(lambda: keeper_running(isolated_home), timeout=10)
    stop_keeper(isolated_home)
    supervisor(isolated_home, job.id).kill()  # and a supervisor dies while nothing watches

    app = CloudMLServerApp()
    app.initialize_settings()  # as jupyter-server does when it starts the extension

    wait_for(lambda: keeper_running(isolated_home), timeout=10)
    wait_for(lambda: status(isolated_home, waiting.id) is JobStatus.SUCCEEDED, timeout=60)
    assert status(isolated_home, job.id) is JobStatus.FAILED


def test_a_keeper_whose_home_was_removed_leaves(isolated_home, make_spec):
    """`rm -rf` of a home while its keeper watches: the keeper leaves, rather than keep
    watching the removed home's records (which still have work) beside the keeper of a new home
    made at the same path."""
    backend = LocalBackend(home=str(isolated_home), cpu_slots=1.0, gpu_ids=[])
    running = backend.submit(make_spec(SLEEPER, name="running", resources=Resources(cpu=1)))
    backend.submit(make_spec(QUICK, name="queued", resources=Resources(cpu=1)))
    wait_for(lambda: keeper_running(isolated_home) and len(keepers(isolated_home)) == 1, 10)
    (keeper,) = keepers(isolated_home)
    job = supervisor(isolated_home, running.id)
    removed = isolated_home.parent / "removed"
    try:
        isolated_home.rename(removed)  # at once: processes of the home still write into it
        LocalBackend(home=str(isolated_home))  # a new home in its place
        keeper.wait(10)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the job was left running in the removed home
        shutil.rmtree(removed, ignore_errors=True)


def test_stop_keeper_stops_a_keeper_that_is_still_starting(isolated_home, make_spec):
    """Stopped right after a submit started it (before it recorded itself): it was left
    running, and brought back what a test had just stopped on purpose."""
    backend = LocalBackend(home=str(isolated_home), keeper_idle_seconds=30.0)
    backend.submit(make_spec(QUICK))
    assert stop_keeper(isolated_home)
    assert keepers(isolated_home) == []
    time.sleep(1.0)  # a keeper left behind would have taken the lock by now
    assert not keeper_running(isolated_home)


DIES_WHILE_DISPATCHING = """
import os, sys
from jupyter_cloudml.backends.local import LocalBackend, scheduler
from jupyter_cloudml.models import TrainSpec
from jupyter_cloudml.packaging import package_files

def die(*args):  # killed right after recording the job as dispatched, before its supervisor
    print(backend.list().jobs[0].id, flush=True)
    os._exit(9)

backend = LocalBackend(home=sys.argv[1])
scheduler.spawn_supervisor = die
backend.submit(TrainSpec(name="orphan", package=package_files({"m.py": b"print(1)"}, "m")))
"""


def test_a_job_whose_dispatcher_died_before_starting_it_is_queued_again_at_once(isolated_home):
    import subprocess

    died = subprocess.run(
        [sys.executable, "-c", DIES_WHILE_DISPATCHING, str(isolated_home)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert died.returncode == 9, died.stderr
    job_id = died.stdout.strip()
    assert status(isolated_home, job_id) is JobStatus.STARTING
    assert record(isolated_home, job_id)["supervisor_pid"] is None
    started = time.monotonic()
    LocalBackend(home=str(isolated_home))  # touching the home brings its keeper
    wait_for(lambda: status(isolated_home, job_id) is JobStatus.SUCCEEDED, timeout=30)
    assert time.monotonic() - started < 5  # not SUPERVISOR_START_TIMEOUT (60 s)
    events = JobStore(isolated_home / "jobs.db").events(job_id)
    assert "Requeued" in [e.reason for e in events]
