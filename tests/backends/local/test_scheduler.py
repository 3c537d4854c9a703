"""`jupyter_cloudml.backends.local.scheduler`: CPU and GPU slots, which GPUs a job gets (its
replicas see them as CUDA_VISIBLE_DEVICES), queueing when the machine is full, and what frees
slots (a job ending, a cancel, a dead supervisor reaped).

Real jobs on a real LocalBackend store: each trainer holds its slots until the test releases it
by creating a file, so what runs beside what is decided by the scheduler, not by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cloudml_testkit import wait_for, wait_gone

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.keeper import stop_keeper
from jupyter_cloudml.backends.local.processes import kill_process_group
from jupyter_cloudml.backends.local.scheduler import (
    SUPERVISOR_START_TIMEOUT,
    Settings,
    dispatch,
    reap,
)
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import JobStatus, Replicas, Resources

HELD = """
import os, sys, time
print("gpus", os.environ.get("CUDA_VISIBLE_DEVICES", "unset"), flush=True)
while not os.path.exists({gate!r}):
    time.sleep(0.02)
"""


class Machine:
    """A LocalBackend with given slots, and jobs that run until released."""

    def __init__(self, home: Path, gates: Path, make_spec, **slots) -> None:
        self.backend = LocalBackend(
            home=str(home), retry_backoff_seconds=0.1, cancel_grace_seconds=2.0, **slots
        )
        self.gates = gates
        self.make_spec = make_spec
        self.jobs: list[str] = []

    def submit(self, name: str, replicas: int = 1, **resources) -> str:
        gate = self.gates / name
        spec = self.make_spec(
            HELD.format(gate=str(gate)),
            name=name,
            replicas=Replicas(workers=replicas),
            resources=Resources(**resources),
        )
        job_id = self.backend.submit(spec).id
        self.jobs.append(job_id)
        return job_id

    def release(self, job_id: str) -> None:
        name = self.backend.get(job_id).name
        (self.gates / name).touch()

    def status(self, job_id: str) -> JobStatus:
        return self.backend.get(job_id).status

    def statuses(self, *job_ids: str) -> list[str]:
        return [self.status(j).value for j in job_ids]

    def running(self, job_id: str) -> None:
        """Wait until the job runs and every replica of it has printed its GPUs."""

        def all_printed() -> bool:
            info = self.backend.get(job_id)
            if info.status is not JobStatus.RUNNING:
                return False
            return len(self.gpus(job_id)) == len(info.replicas)

        wait_for(all_printed, 30)

    def gpus(self, job_id: str) -> dict[str, str]:
        """What each replica saw as CUDA_VISIBLE_DEVICES."""
        return {
            line.replica: line.text.split(" ", 1)[1]
            for line in self.backend.logs(job_id)
            if line.text.startswith("gpus ")
        }

    def assigned(self, job_id: str) -> list[int]:
        row = self.backend.store.row(job_id)
        assert row is not None
        return json.loads(row["gpu_ids"])

    def scheduled_message(self, job_id: str) -> str:
        return next(e.message for e in self.backend.events(job_id) if e.reason == "Scheduled")

    def wait_done(self, job_id: str) -> JobStatus:
        return Client(backend=self.backend).wait(job_id, timeout=60, poll=0.05).status

    def finish_all(self) -> None:
        for name in {self.backend.get(j).name for j in self.jobs}:
            (self.gates / name).touch()
        for job_id in self.jobs:
            if not self.status(job_id).terminal:
                self.wait_done(job_id)


@pytest.fixture
def machine(isolated_home, tmp_path, make_spec):
    gates = tmp_path / "gates"
    gates.mkdir()
    made: list[Machine] = []

    def make(**slots) -> Machine:
        m = Machine(isolated_home, gates, make_spec, **slots)
        made.append(m)
        return m

    yield make
    for m in made:
        m.finish_all()


# --- CPU slots ----------------------------------------------------------------------------------


def test_jobs_run_while_cpu_slots_last_then_queue_until_one_ends(machine):
    m = machine(cpu_slots=2, gpu_ids=[])
    a, b, c = m.submit("a"), m.submit("b"), m.submit("c")
    m.running(a)
    m.running(b)
    assert m.status(c) is JobStatus.QUEUED
    time.sleep(0.3)
    assert m.status(c) is JobStatus.QUEUED  # still: nothing freed a slot
    assert m.scheduled_message(a) == "given 1 CPU slot(s)"
    m.release(a)
    assert m.wait_done(a) is JobStatus.SUCCEEDED
    m.running(c)  # the ending job's supervisor started it
    assert m.status(b) is JobStatus.RUNNING


def test_fractional_cpu_asks_share_a_slot(machine):
    m = machine(cpu_slots=1, gpu_ids=[])
    halves = [m.submit(f"half-{i}", cpu=0.5) for i in range(3)]
    m.running(halves[0])
    m.running(halves[1])
    assert m.status(halves[2]) is JobStatus.QUEUED
    assert m.scheduled_message(halves[0]) == "given 0.5 CPU slot(s)"
    m.release(halves[0])
    m.running(halves[2])


def test_a_zero_cpu_job_runs_on_a_full_machine(machine):
    m = machine(cpu_slots=1, gpu_ids=[])
    busy = m.submit("busy", cpu=1)
    m.running(busy)
    free = m.submit("free", cpu=0)  # no slot reserved (a study driver's ask)
    m.running(free)
    assert m.scheduled_message(free) == "given 0 CPU slot(s)"


def test_a_zero_cpu_job_does_not_wait_behind_a_queued_claim(machine):
    m = machine(cpu_slots=1, gpu_ids=[])
    busy = m.submit("busy", cpu=1)
    queued = m.submit("queued", cpu=1)
    m.running(busy)
    free = m.submit("free", cpu=0)
    assert m.status(queued) is JobStatus.QUEUED
    wait_for(lambda: m.status(free) is not JobStatus.QUEUED, timeout=1)


def test_every_replica_takes_its_cpu(machine):
    m = machine(cpu_slots=3, gpu_ids=[])
    pair = m.submit("pair", replicas=2, cpu=1)  # 2 replicas x 1 CPU
    other = m.submit("other", cpu=1.5)
    m.running(pair)
    assert m.scheduled_message(pair) == "given 2 CPU slot(s)"
    assert m.status(other) is JobStatus.QUEUED  # 2 + 1.5 > 3
    m.release(pair)
    m.running(other)


def test_a_job_asking_more_than_the_machine_runs_alone(machine):
    m = machine(cpu_slots=2, gpu_ids=[])
    big = m.submit("big", cpu=8)
    small = m.submit("small", cpu=0.5)
    m.running(big)  # not refused and not stuck: it takes every slot
    assert m.scheduled_message(big) == "given 2 CPU slot(s)"
    assert m.status(small) is JobStatus.QUEUED
    m.release(big)
    m.running(small)


def test_a_waiting_job_keeps_its_claim_so_later_smaller_jobs_do_not_overtake_it(machine):
    m = machine(cpu_slots=2, gpu_ids=[])
    a = m.submit("a", cpu=1)
    wide = m.submit("wide", cpu=2)
    late = m.submit("late", cpu=1)  # would fit beside a, but wide is older
    m.running(a)
    assert m.statuses(wide, late) == ["QUEUED", "QUEUED"]
    m.release(a)
    m.running(wide)
    assert m.status(late) is JobStatus.QUEUED  # wide holds both slots now
    m.release(wide)
    m.running(late)
    started = {j: m.backend.get(j).started for j in (a, wide, late)}
    assert started[a] < started[wide] < started[late]


# --- GPUs ---------------------------------------------------------------------------------------


def test_gpus_are_handed_out_by_id_one_set_per_replica(machine):
    m = machine(cpu_slots=8, gpu_ids=[3, 5, 7, 9, 11])
    pair = m.submit("pair", replicas=2, gpus=2)
    single = m.submit("single", gpus=1)
    cpu_only = m.submit("cpuonly")
    for job in (pair, single, cpu_only):
        m.running(job)
    assert m.assigned(pair) == [3, 5, 7, 9]
    assert m.gpus(pair) == {"worker-0": "3,5", "worker-1": "7,9"}
    assert m.scheduled_message(pair) == "given 2 CPU slot(s) and GPU(s) [3, 5, 7, 9]"
    assert m.assigned(single) == [11] and m.gpus(single) == {"worker-0": "11"}
    # on a machine with GPUs, a job that asked for none sees none
    assert m.assigned(cpu_only) == [] and m.gpus(cpu_only) == {"worker-0": ""}


def test_a_gpu_job_waits_for_gpus_and_gets_the_ones_that_were_freed(machine):
    m = machine(cpu_slots=8, gpu_ids=[0, 1])
    first = m.submit("first", gpus=1)
    second = m.submit("second", gpus=1)
    third = m.submit("third", gpus=1)
    m.running(first)
    m.running(second)
    assert m.status(third) is JobStatus.QUEUED  # CPU to spare, no GPU
    freed = m.assigned(first)
    m.release(first)
    m.running(third)
    assert m.assigned(third) == freed
    assert m.gpus(third) == {"worker-0": ",".join(map(str, freed))}
    assert set(m.assigned(second)) | set(m.assigned(third)) == {0, 1}


def test_a_job_waiting_for_gpus_claims_them_but_not_the_cpu_jobs_behind_it(machine):
    m = machine(cpu_slots=4, gpu_ids=[0, 1])
    holder = m.submit("holder", gpus=1)
    m.running(holder)
    pair = m.submit("pair", gpus=2)  # needs both: waits, and claims the free one
    one = m.submit("one", gpus=1)  # would fit on the free GPU, but pair claimed it
    cpu_job = m.submit("cpujob")  # CPU left: it runs
    m.running(cpu_job)
    assert m.statuses(pair, one) == ["QUEUED", "QUEUED"]
    assert m.gpus(cpu_job) == {"worker-0": ""}
    m.release(holder)
    m.running(pair)
    assert sorted(m.assigned(pair)) == [0, 1] and m.status(one) is JobStatus.QUEUED
    m.release(pair)
    m.running(one)


def test_without_gpus_configured_replicas_keep_the_callers_cuda_visible_devices(
    machine, monkeypatch
):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # inherited by the supervisor
    m = machine(cpu_slots=2, gpu_ids=[])
    job = m.submit("plain")
    m.running(job)
    assert m.gpus(job) == {"worker-0": "7"}


# --- what frees slots ---------------------------------------------------------------------------


def test_a_failed_job_frees_its_slots(machine, make_spec):
    m = machine(cpu_slots=1, gpu_ids=[0])
    crash = m.backend.submit(
        make_spec("import time; time.sleep(0.5); raise SystemExit(3)", resources=Resources(gpus=1))
    ).id
    waiting = m.submit("waiting", gpus=1)
    assert m.status(waiting) is JobStatus.QUEUED
    assert m.wait_done(crash) is JobStatus.FAILED
    m.running(waiting)
    assert m.assigned(waiting) == [0]


def test_cancelling_a_running_job_frees_its_slots(machine):
    m = machine(cpu_slots=1, gpu_ids=[0])
    a = m.submit("a", gpus=1)
    b = m.submit("b", gpus=1)
    m.running(a)
    assert m.status(b) is JobStatus.QUEUED
    assert m.backend.cancel(a).status is JobStatus.CANCELLED
    m.running(b)
    assert m.assigned(b) == [0]


def test_cancelling_a_waiting_job_lets_the_jobs_behind_it_start(machine):
    m = machine(cpu_slots=2, gpu_ids=[])
    a = m.submit("a", cpu=1)
    wide = m.submit("wide", cpu=2)
    late = m.submit("late", cpu=1)
    m.running(a)
    assert m.statuses(wide, late) == ["QUEUED", "QUEUED"]
    assert m.backend.cancel(wide).status is JobStatus.CANCELLED
    # late fits beside a now that wide no longer claims the slots
    wait_for(lambda: m.status(late) is not JobStatus.QUEUED, timeout=1)


def test_a_dead_supervisor_is_reaped_and_its_slots_go_to_the_next_job(machine):
    m = machine(cpu_slots=1, gpu_ids=[0, 1])
    doomed = m.submit("doomed", gpus=2)
    next_job = m.submit("next", gpus=2)
    m.running(doomed)
    stop_keeper(m.backend.home)  # this test runs the pass itself: the keeper would beat it to it
    row = m.backend.store.row(doomed)
    assert row is not None
    replicas = [p.pid for p in psutil.Process(row["supervisor_pid"]).children(recursive=True)]
    os.kill(row["supervisor_pid"], signal.SIGKILL)
    wait_gone(row["supervisor_pid"])
    assert m.status(next_job) is JobStatus.QUEUED  # nobody ran a pass yet
    assert dispatch(m.backend.store, m.backend.settings) == [next_job]
    info = m.backend.get(doomed)
    assert info.status is JobStatus.FAILED
    assert "supervisor process died unexpectedly" in info.reason
    for pid in replicas:
        wait_gone(pid)  # its replicas were stopped with it
    m.running(next_job)
    assert sorted(m.assigned(next_job)) == [0, 1]


def test_dispatch_starts_nothing_when_nothing_fits_and_returns_what_it_started(machine):
    m = machine(cpu_slots=1, gpu_ids=[])
    a = m.submit("a")
    b = m.submit("b")
    m.running(a)
    assert dispatch(m.backend.store, m.backend.settings) == []
    assert m.status(b) is JobStatus.QUEUED


# --- reaping ------------------------------------------------------------------------------------


def test_a_supervisor_that_never_started_fails_the_job_after_the_start_timeout(machine, make_spec):
    """A pass dispatched the job but its supervisor never recorded itself (it could not start):
    the reaper fails the job once SUPERVISOR_START_TIMEOUT has passed, and not before."""
    m = machine(cpu_slots=4, gpu_ids=[])
    recent, stale = (m.backend.submit(make_spec("pass", name=n)).id for n in ("recent", "stale"))
    assert [m.wait_done(recent), m.wait_done(stale)] == [JobStatus.SUCCEEDED] * 2
    store = m.backend.store
    # each record put back as a pass leaves it, before a supervisor records itself
    for job_id, age in ((recent, 5), (stale, SUPERVISOR_START_TIMEOUT + 5)):
        store.update(
            job_id,
            status=JobStatus.STARTING.value,
            supervisor_pid=None,
            supervisor_started=None,
            dispatched=time.time() - age,
            finished=None,
        )
    reap(store, m.backend.settings)
    assert m.status(recent) is JobStatus.STARTING  # still within the start timeout
    info = m.backend.get(stale)
    assert (info.status, info.reason) == (JobStatus.FAILED, "the job's supervisor never started")
    assert [e.reason for e in m.backend.events(stale)][-1] == "SupervisorLost"
    store.update(recent, status=JobStatus.SUCCEEDED.value)  # as it really ended


def test_a_dead_supervisor_of_a_job_being_cancelled_ends_it_cancelled(machine):
    m = machine(cpu_slots=1, gpu_ids=[])
    job = m.submit("job")
    m.running(job)
    row = m.backend.store.row(job)
    assert row is not None
    m.backend.store.update(job, cancel_requested=1)
    os.kill(row["supervisor_pid"], signal.SIGKILL)
    wait_gone(row["supervisor_pid"])
    reap(m.backend.store, m.backend.settings)
    info = m.backend.get(job)
    assert (info.status, info.reason) == (JobStatus.CANCELLED, "cancelled by the user")


# --- the pieces ---------------------------------------------------------------------------------


def test_settings_travel_to_supervisors_as_json():
    settings = Settings("/data/home", 3.5, (1, 4), 2.0, 0.5, 30.0)
    assert Settings.from_json(settings.to_json()) == settings
    assert Settings.from_json(settings.to_json()).gpu_ids == (1, 4)
    assert settings.db_path == Path("/data/home/jobs.db")
    assert settings.job_folder("j-1") == Path("/data/home/jobs/j-1")
    assert settings.job_dir("j-1", None) == "/data/home/jobs/j-1/job_dir"
    assert settings.job_dir("j-1", "file:///runs/1") == "/runs/1"
    assert settings.job_dir("j-1", "s3://bucket/run") == "s3://bucket/run"
    assert settings.job_dir("j-1", "/runs/2") == "/runs/2"


def test_the_backends_settings_are_what_the_scheduler_uses(isolated_home):
    backend = LocalBackend(home=str(isolated_home), cpu_slots=6, gpu_ids=[2, 0])
    assert backend.settings.cpu_slots == 6.0 and backend.settings.gpu_ids == (2, 0)
    caps = backend.capabilities()
    assert (caps.cpus, caps.gpus) == (6.0, 2)


SLEEPER = "[sys.executable, '-c', 'import time; time.sleep(60)']"
#: A group leader with a child (a supervisor and its replica)
LEADER = f"import subprocess, sys, time; subprocess.Popen({SLEEPER}); time.sleep(60)"
#: A leader that leaves its child behind (a supervisor that died)
QUITTER = f"import subprocess, sys; print(subprocess.Popen({SLEEPER}).pid, flush=True)"


def test_kill_process_group_kills_the_group_but_not_a_reused_pid():
    leader = subprocess.Popen([sys.executable, "-c", LEADER], start_new_session=True)
    try:
        proc = psutil.Process(leader.pid)
        wait_for(lambda: len(proc.children()) == 1, timeout=10)
        child = proc.children()[0].pid
        kill_process_group(leader.pid, proc.create_time() - 100)  # not the process recorded
        time.sleep(0.2)
        assert leader.poll() is None and psutil.pid_exists(child)
        kill_process_group(leader.pid, proc.create_time())
        assert leader.wait(timeout=10) == -signal.SIGKILL
        wait_gone(child)
    finally:
        if leader.poll() is None:
            leader.kill()
            leader.wait()


def test_kill_process_group_of_a_gone_leader_still_kills_its_orphans():
    leader = subprocess.Popen(
        [sys.executable, "-c", QUITTER], start_new_session=True, stdout=subprocess.PIPE, text=True
    )
    started = psutil.Process(leader.pid).create_time()  # (a zombie until waited for)
    assert leader.stdout is not None
    orphan = int(leader.stdout.readline())
    leader.wait(timeout=10)  # the leader is gone; its child lives on in its process group
    assert psutil.pid_exists(orphan)
    try:
        kill_process_group(leader.pid, started)
        wait_gone(orphan)
    finally:
        if psutil.pid_exists(orphan):
            os.kill(orphan, signal.SIGKILL)
