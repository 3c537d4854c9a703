"""Fault injection on the self-healing local backend: real processes and real signals on
loopback, with seeded random faults (the seed is printed: `CLOUDML_FAULT_SEED=N` replays it).

- Concurrent `cloudml train` submitters while submitters, supervisors and replicas are
  SIGKILLed at random and the REST API is read: every job ends (SUCCEEDED, FAILED with a
  reason, CANCELLED), none is lost, the queue never stalls 5 s with a free slot, no answer is
  an error, no process or traceback is left.
- A simulated reboot (every process of the home SIGKILLed, the product touched once): the
  dead jobs are recorded, a study's driver starts again, the queue moves, the deployment
  answers again.
- An endpoint and its replicas SIGKILLed and SIGSTOPped at random under concurrent
  `Client.predict` loops and REST calls: no prediction fails, the frozen processes are replaced.
- A study whose driver and driver supervisor are killed at random still runs every trial once.

Each test ends with no process of its home left, no traceback in any log and every file of
its home the owner's only (the umask is 022 meanwhile; no test here makes a serving
environment in the home). Progress is read from the job database directly (`JobStore`) where
the point is that nobody reads: the backend's own reads would do the keeper's work.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from cloudml_testkit import REPO, wait_for
from fault_testkit import (
    JOB_SCRIPT,
    JupyterServer,
    RestReader,
    describe,
    exposed,
    home_processes,
    queue_stalls,
    tracebacks,
)

from jupyter_cloudml.backends.local import LocalBackend
from jupyter_cloudml.backends.local.keeper import keeper_running, stop_keeper
from jupyter_cloudml.backends.local.store import ACTIVE, JobStore
from jupyter_cloudml.client import Client
from jupyter_cloudml.models import (
    STUDY_LABEL,
    DeploySpec,
    JobStatus,
    ParamSpec,
    ParamType,
    Resources,
    TrialStatus,
    TuningSpec,
)
from jupyter_cloudml.serving.client import post_predict

pytestmark = pytest.mark.slow

SUPERVISOR_MODULE = "jupyter_cloudml.backends.local.supervisor"
#: The longest the oldest queued job may wait while a slot is free for it.
QUEUE_BOUND = 5.0
CPU_SLOTS = 2.0
TERMINAL = {s.value for s in JobStatus if s.terminal}


@pytest.fixture
def rng() -> random.Random:
    seed = int(os.environ.get("CLOUDML_FAULT_SEED") or random.SystemRandom().randrange(10**6))
    print(f"fault seed: {seed} (replay with CLOUDML_FAULT_SEED={seed})")
    return random.Random(seed)


@pytest.fixture(autouse=True)
def loose_umask():
    """The most common umask, under which new files are world-readable by default."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def rows(home: Path) -> list:
    return JobStore(home / "jobs.db").rows_with_status([s.value for s in JobStatus])


def row(home: Path, job_id: str):
    found = JobStore(home / "jobs.db").row(job_id)
    assert found is not None, f"job {job_id} is not recorded"
    return found


def wait_status(home: Path, job_id: str, wanted: set[str], timeout: float):
    """Wait until the job's record has one of the `wanted` statuses; its record."""
    deadline = time.monotonic() + timeout
    while (found := row(home, job_id))["status"] not in wanted:
        assert time.monotonic() < deadline, (
            f"{job_id} is {found['status']} ({found['reason']}), not {wanted}, after {timeout} s"
        )
        time.sleep(0.05)
    return found


def wait_all_ended(home: Path, timeout: float) -> None:
    """Wait until every recorded job has ended; fail naming those that have not."""
    deadline = time.monotonic() + timeout
    while left := [f"{r['id']} {r['status']} {r['reason']}" for r in rows(home) if not _ended(r)]:
        assert time.monotonic() < deadline, f"not ended after {timeout} s: {left}"
        time.sleep(0.1)


def _ended(r) -> bool:
    return JobStatus(r["status"]).terminal


def check_outcomes(home: Path) -> None:
    """Every job ended: SUCCEEDED, CANCELLED, or FAILED with the reason."""
    for r in rows(home):
        assert _ended(r), f"{r['id']} is still {r['status']}"
        if r["status"] == JobStatus.FAILED.value:
            assert r["reason"].strip(), f"{r['id']} FAILED without a reason"


def check_queue(home: Path) -> None:
    stalls = [s for s in queue_stalls(rows(home), CPU_SLOTS) if s[1] > QUEUE_BOUND]
    assert stalls == [], f"queued jobs waited over {QUEUE_BOUND} s with a free slot: {stalls}"


def check_clean(home: Path, extra_logs: tuple[Path, ...] = ()) -> None:
    """Once the home's keeper is gone: no process of the home, no traceback in any log, no
    file others could read."""
    stop_keeper(home)
    wait_no_process(home, timeout=15)
    assert tracebacks([*home.rglob("*.log"), *extra_logs]) == {}
    assert exposed(home) == []


def wait_no_process(home: Path, timeout: float) -> None:
    """Wait until no process works for `home`; fail naming those left."""
    deadline = time.monotonic() + timeout
    while (left := home_processes(home)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], "left running:\n" + "\n".join(describe(left))


def kill(pid: int) -> bool:
    """SIGKILL `pid`; whether it was there to kill."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


#: A study's trial: half a second, then the metric.
TRIAL = """
import time
import jupyter_cloudml
p = jupyter_cloudml.params()
time.sleep(0.5)
jupyter_cloudml.report(step=0, score=p["x"])
"""


def trial_jobs(home: Path, study_id: str) -> list[str]:
    """The ids of the study's trial jobs, read from the records."""
    sql = "SELECT job_id FROM labels WHERE key = ? AND value = ?"
    found = JobStore(home / "jobs.db")._conn().execute(sql, (STUDY_LABEL, study_id))
    return [r[0] for r in found]


# --- concurrent submitters under random kills ---------------------------------------------------

#: kind -> (cloudml train flags, trainer args, what it ends as when no fault touches it)
KINDS = {
    "quick": ([], ["quick"], JobStatus.SUCCEEDED),
    "sleep": (["--retries", "1"], ["sleep", "1.5"], JobStatus.SUCCEEDED),
    "fail": ([], ["fail"], JobStatus.FAILED),
    "flaky": (["--retries", "2"], ["flaky"], JobStatus.SUCCEEDED),
    "pair": (["--workers", "2", "--cpu", "0.5"], ["sleep", "1"], JobStatus.SUCCEEDED),
    "cancel": (["--timeout", "6"], ["sleep", "30"], JobStatus.CANCELLED),
}


def plan(rng: random.Random, submitter: int, jobs: int) -> list[dict]:
    chosen = []
    for i in range(jobs):
        kind = rng.choice(sorted(KINDS))
        flags, args, _ = KINDS[kind]
        job = {"name": f"s{submitter}-{i}-{kind}", "flags": flags, "args": args}
        if kind == "cancel":
            job["cancel_after"] = round(rng.uniform(0.2, 1.5), 2)
        chosen.append(job)
    return chosen


class Chaos:
    """SIGKILLs, at random moments, submitters, job supervisors and replicas; remembers which
    jobs it touched."""

    def __init__(self, rng: random.Random, home: Path, submitters: list[subprocess.Popen]):
        self.rng, self.home, self.submitters = rng, home, submitters
        self.killed_submitters: set[int] = set()
        self.touched: set[str] = set()
        self.log: list[str] = []

    def running_jobs(self) -> list[tuple[str, psutil.Process]]:
        found: list[tuple[str, psutil.Process]] = []
        if not (self.home / "jobs.db").exists():  # no submitter got that far yet
            return found
        for r in JobStore(self.home / "jobs.db").rows_with_status(ACTIVE):
            if r["supervisor_pid"] is None:
                continue
            try:
                proc = psutil.Process(r["supervisor_pid"])
                if SUPERVISOR_MODULE in proc.cmdline() and r["id"] in proc.cmdline():
                    found.append((r["id"], proc))
            except psutil.NoSuchProcess:
                continue
        return found

    def strike(self) -> None:
        action = self.rng.choices(["submitter", "supervisor", "replica"], [1, 2, 3])[0]
        alive = [p for p in self.submitters if p.poll() is None]
        if action == "submitter":
            if len(self.killed_submitters) < 2 and len(alive) > 2:
                victim = self.rng.choice(alive)
                if kill(victim.pid):
                    self.killed_submitters.add(victim.pid)
                    self.log.append(f"submitter {victim.pid}")
            return
        jobs = self.running_jobs()
        if not jobs:
            return
        job_id, supervisor = self.rng.choice(jobs)
        if action == "supervisor":
            target = supervisor.pid
        else:
            try:
                replicas = supervisor.children()
            except psutil.NoSuchProcess:
                return
            if not replicas:
                return
            target = self.rng.choice(replicas).pid
        if kill(target):
            self.touched.add(job_id)
            self.log.append(f"{action} {target} of {job_id}")

    def run(self, until: float, submitting: bool) -> None:
        """Strike every few tenths of a second while jobs are submitted (`submitting`) or, after
        that, while jobs run; at most until `until`."""
        while time.monotonic() < until and (
            any(p.poll() is None for p in self.submitters) if submitting else self.running_jobs()
        ):
            time.sleep(self.rng.uniform(0.1, 0.6))
            self.strike()


def told_ids(folder: Path) -> dict[str, int]:
    """The ids the submitters were told so far, each with its submitter's number."""
    return {
        job_id: int(ids.stem.split("-")[1])
        for ids in folder.glob("ids-*.txt")
        for job_id in ids.read_text().split()
    }


def test_concurrent_submitters_under_random_kills(isolated_home, tmp_path, rng):
    home = isolated_home
    config = Path(os.environ["JUPYTER_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_cloudml_config.json").write_text(
        json.dumps(
            {
                "LocalBackend": {
                    "cpu_slots": CPU_SLOTS,
                    "gpu_ids": [],
                    "retry_backoff_seconds": 0.2,
                    "cancel_grace_seconds": 2.0,
                    "keeper_idle_seconds": 1.0,
                }
            }
        )
    )
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "job.py").write_text(JOB_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests")]))
    server = JupyterServer(tmp_path / "server.log", tmp_path)
    submitters, plans = [], {}
    chaos = Chaos(rng, home, submitters)
    picker = random.Random(rng.random())

    def rest_paths() -> list[str]:
        ids = sorted(told_ids(tmp_path))
        some = picker.sample(ids, min(2, len(ids)))
        return ["/jobs", *(f"/jobs/{i}" for i in some), *(f"/jobs/{i}/logs" for i in some)]

    with server:
        try:
            for n in range(8):
                plans[n] = plan(rng, n, 5)
                with open(tmp_path / f"submitter-{n}.err", "wb") as stderr:
                    submitter = [str(scripts), str(tmp_path / f"ids-{n}.txt"), json.dumps(plans[n])]
                    submitters.append(
                        subprocess.Popen(
                            [sys.executable, str(REPO / "tests" / "fault_testkit.py"), *submitter],
                            env=env,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=stderr,
                        )
                    )
            # The REST API is read while the submitters work (they read anyway); then nobody
            # reads, and the keeper alone moves the queue.
            with RestReader(server, rest_paths) as reader:
                chaos.run(until=time.monotonic() + 60, submitting=True)
                for proc in submitters:
                    proc.wait(60)
            chaos.run(until=time.monotonic() + 30, submitting=False)
        finally:
            print("faults:", *chaos.log, sep="\n  ")
            for proc in submitters:  # a failing test must leave no submitter behind either
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    print(f"{reader.answers} REST answers")
    assert reader.bad == []
    assert reader.answers > 20

    # Every job any submitter was told the id of is recorded, and every recorded job ends.
    told = told_ids(tmp_path)
    recorded = {r["id"] for r in rows(home)}
    assert set(told) <= recorded, f"lost jobs: {sorted(set(told) - recorded)}"
    assert len(told) >= 20, "too few jobs were submitted to say anything"
    wait_all_ended(home, timeout=60)
    print("jobs:", *(f"{r['id']} {r['status']} {r['reason']}" for r in rows(home)), sep="\n  ")
    check_outcomes(home)
    check_queue(home)

    # A job no fault touched ends as its kind says; a killed submitter's cancel may not come.
    killed = {n for n, p in enumerate(submitters) if p.pid in chaos.killed_submitters}
    for job_id, n in told.items():
        kind = job_id.split("-")[2]
        if job_id in chaos.touched or (kind == "cancel" and n in killed):
            continue
        r = row(home, job_id)
        assert r["status"] == KINDS[kind][2].value, (job_id, r["status"], r["reason"])
        if kind == "flaky":
            assert r["attempt"] == 2, (job_id, r["attempt"])

    # The submitters that were not killed exited 0 and said nothing on stderr.
    for n, proc in enumerate(submitters):
        if n in killed:
            continue
        err = (tmp_path / f"submitter-{n}.err").read_text()
        assert proc.returncode == 0 and err == "", (n, proc.returncode, err)

    # Nobody reads: the keeper leaves by itself once all is done, and nothing of the home stays.
    wait_for(lambda: not keeper_running(home), timeout=20)
    wait_no_process(home, timeout=10)
    check_clean(home, extra_logs=(tmp_path / "server.log",))


# --- a simulated reboot -------------------------------------------------------------------------


@pytest.fixture
def model_file(tmp_path: Path) -> tuple[Path, list, list]:
    """A scikit-learn model on disk, the rows to ask it about and its answers."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    data = np.random.default_rng(0).normal(size=(200, 4))
    model = LogisticRegression().fit(data, (data[:, 0] + 0.5 * data[:, 1] > 0).astype(int))
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    rows = [[0.5, 0.1, -0.3, 1.0], [-1.0, -0.2, 0.4, 0.0], [2.0, 1.0, 0.0, -1.0]]
    return path, rows, model.predict(rows).tolist()


def test_a_reboot_with_running_and_queued_jobs_and_a_deployment(
    isolated_home, make_spec, model_file, serving_python
):
    home = isolated_home
    path, rows_in, expected = model_file
    backend = LocalBackend(
        home=str(home), cpu_slots=CPU_SLOTS, gpu_ids=[], serving_python=serving_python
    )
    client = Client(backend=backend)
    info = client.deploy(DeploySpec("reborn", str(path), "sklearn", replicas=2))
    assert post_predict(info.url, "reborn", rows_in, retry_seconds=0) == expected
    long_jobs = [
        client.submit(make_spec("import time\ntime.sleep(120)\n", name=f"long{i}", retries=i)).id
        for i in range(2)
    ]
    queued = [
        client.submit(
            make_spec("print('after')\n", name=f"after{i}", resources=Resources(cpu=1))
        ).id
        for i in range(3)
    ]
    tuning = TuningSpec((ParamSpec("x", ParamType.DOUBLE, -1.0, 1.0),), "score", max_trials=2)
    study = client.submit_study(make_spec(TRIAL, name="study"), tuning).id
    for job_id in long_jobs:
        wait_for(lambda j=job_id: row(home, j)["status"] == "RUNNING", timeout=30)
    wait_for(lambda: trial_jobs(home, study) != [], timeout=60)  # queued behind the long jobs
    assert [row(home, j)["status"] for j in queued] == ["QUEUED"] * 3

    victims = home_processes(home)
    assert len(victims) >= 8, describe(victims)  # keeper, 2 supervisors + replicas, endpoint + 2
    for proc in victims:
        kill(proc.pid)
    psutil.wait_procs(victims, timeout=10)
    assert home_processes(home) == [] and not keeper_running(home)

    # Touched once, as after a reboot: `cloudml jobs list`.
    touch = subprocess.run(
        [sys.executable, "-m", "jupyter_cloudml.cli", "jobs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=home.parent,
    )
    assert touch.returncode == 0 and touch.stderr == "", touch.stderr
    for job_id in long_jobs:
        dead = wait_status(home, job_id, TERMINAL, timeout=10)
        assert dead["status"] == "FAILED" and "supervisor" in dead["reason"], dict(dead)
    for job_id in queued:
        wait_status(home, job_id, {"SUCCEEDED"}, timeout=60)
    # The study's driver is queued again rather than failed, and resumes where it was.
    wait_status(home, study, {"SUCCEEDED"}, timeout=90)
    assert row(home, study)["restarts"] == 1
    done = client.get_study(study)
    assert [t.number for t in done.trials] == [0, 1] and len(trial_jobs(home, study)) == 2
    check_outcomes(home)
    check_queue(home)
    # Nobody but the keeper brought the endpoint back: ask it directly, not through the backend.
    assert post_predict(info.url, "reborn", rows_in, retry_seconds=60) == expected
    assert client.predict("reborn", rows_in) == expected
    began = time.monotonic()
    client.undeploy("reborn")  # of an endpoint the keeper started: it once waited 30 s here
    assert time.monotonic() - began < 15
    check_clean(home)


# --- an endpoint under concurrent clients -------------------------------------------------------


class Predictors:
    """Threads that call `Client.predict` in a loop, counting answers and failures."""

    def __init__(self, client: Client, name: str, rows_in: list, expected: list, threads: int):
        self.client, self.name, self.rows, self.expected = client, name, rows_in, expected
        self.ok = 0
        self.failures: list[str] = []
        self.longest = 0.0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.loop, daemon=True) for _ in range(threads)]

    def loop(self) -> None:
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                answer = self.client.predict(self.name, self.rows, timeout=30, retry_seconds=30)
                error = None if answer == self.expected else f"wrong answer {answer}"
            except Exception as e:  # every failure counts, whatever its kind
                error = f"{type(e).__name__}: {e}"
            with self.lock:
                self.longest = max(self.longest, time.monotonic() - began)
                if error is None:
                    self.ok += 1
                else:
                    self.failures.append(error)

    def __enter__(self) -> Predictors:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def endpoint_record(home: Path, name: str) -> dict:
    return json.loads((home / "deployments" / name / "endpoint.json").read_text())


def replicas_of(home: Path, name: str) -> list[psutil.Process]:
    try:
        return psutil.Process(endpoint_record(home, name)["pid"]).children()
    except (psutil.NoSuchProcess, OSError, ValueError):
        return []


def test_endpoint_and_replica_kills_and_freezes_under_concurrent_clients(
    isolated_home, tmp_path, model_file, serving_python, rng
):
    home = isolated_home
    path, rows_in, expected = model_file
    backend = LocalBackend(home=str(home), serving_python=serving_python)
    client = Client(backend=backend)
    client.deploy(DeploySpec("busy", str(path), "sklearn", replicas=2))

    def wait_serving(timeout: float = 90) -> None:
        """Until both replicas are ready again; fail with what the deployment says."""
        deadline = time.monotonic() + timeout
        while True:
            info = client.get_deployment("busy")
            if info.versions[0].ready == 2 and len(replicas_of(home, "busy")) == 2:
                return
            if time.monotonic() > deadline:
                log_file = home / "deployments" / "busy" / "endpoint.log"
                tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
                raise AssertionError(f"not serving again: {info}\n{log}\n{tail}")
            time.sleep(0.1)

    frozen: list[psutil.Process] = []
    log: list[str] = []
    server = JupyterServer(tmp_path / "server.log", tmp_path)
    rest_posts = [("/deployments/busy/predict", {"instances": rows_in})]
    with (
        server,
        RestReader(
            server, lambda: ["/deployments", "/deployments/busy"], lambda: rest_posts
        ) as rest,
        Predictors(client, "busy", rows_in, expected, threads=3) as load,
    ):
        wait_for(lambda: load.ok > 20, 30)
        actions = ["replica-kill", "replica-stop", "endpoint-kill", "endpoint-stop"]
        rng.shuffle(actions)
        actions += rng.choices(["replica-kill", "replica-stop"], k=2)
        for action in actions:
            time.sleep(rng.uniform(0.0, 1.5))
            if action.startswith("endpoint"):
                endpoint = psutil.Process(endpoint_record(home, "busy")["pid"])
                if action == "endpoint-stop":
                    endpoint.suspend()
                    frozen.append(endpoint)
                else:
                    endpoint.kill()
                log.append(f"{action} {endpoint.pid}")
            else:
                replicas = replicas_of(home, "busy")
                if not replicas:
                    log.append(f"{action}: no replica to hit")
                    continue
                victim = rng.choice(replicas)
                if action == "replica-stop":
                    victim.suspend()
                    frozen.append(victim)
                else:
                    victim.kill()
                log.append(f"{action} {victim.pid}")
            if rng.random() < 0.5:  # now and then, let it heal before the next fault
                wait_serving()
        wait_serving()
        before = load.ok
        wait_for(lambda: load.ok > before + 40, 60)
    print("faults:", *log, sep="\n  ")
    print(f"{load.ok} predictions, the longest {load.longest:.2f} s; {rest.answers} REST answers")
    assert load.failures == []
    assert rest.bad == [] and rest.answers > 10
    for proc in frozen:  # a stopped replica or endpoint is killed and replaced, not left behind
        assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE, proc.pid
    client.undeploy("busy")
    check_clean(home, extra_logs=(tmp_path / "server.log",))


# --- a study whose driver and driver supervisor die ----------------------------------------------


def driver_processes(home: Path, study_id: str) -> tuple[psutil.Process | None, list]:
    """The driver's supervisor (if recorded and alive) and its children (the driver)."""
    pid = row(home, study_id)["supervisor_pid"]
    try:
        supervisor = psutil.Process(pid) if pid else None
        return supervisor, supervisor.children() if supervisor else []
    except psutil.NoSuchProcess:
        return None, []


def test_a_study_survives_random_driver_and_driver_supervisor_kills(isolated_home, make_spec, rng):
    home = isolated_home
    backend = LocalBackend(
        home=str(home), cpu_slots=CPU_SLOTS, gpu_ids=[], retry_backoff_seconds=0.1
    )
    client = Client(backend=backend)
    tuning = TuningSpec(
        (ParamSpec("x", ParamType.DOUBLE, -1.0, 1.0),),
        "score",
        max_trials=8,
        parallel_trials=2,
        seed=rng.randrange(1000),
    )
    study = client.submit_study(make_spec(TRIAL, name="hardy"), tuning)
    log = []
    for _ in range(5):
        wait_for(lambda: driver_processes(home, study.id)[1] != [], timeout=60)
        time.sleep(rng.uniform(0.2, 1.5))
        if _ended(row(home, study.id)):
            break
        supervisor, children = driver_processes(home, study.id)
        if supervisor is None or not children:
            continue
        victim = supervisor if rng.random() < 0.5 else rng.choice(children)
        kill(victim.pid)
        log.append(f"{'supervisor' if victim is supervisor else 'driver'} {victim.pid}")
    print("faults:", *log, sep="\n  ")
    wait_for(lambda: _ended(row(home, study.id)), timeout=120)
    done = client.get_study(study.id)
    assert done.status is JobStatus.SUCCEEDED, done.reason
    assert [t.number for t in done.trials] == list(range(8))
    assert all(t.status is TrialStatus.SUCCEEDED for t in done.trials), done.trials
    assert len({t.job_id for t in done.trials}) == 8
    assert len(trial_jobs(home, study.id)) == 8
    check_outcomes(home)
    check_clean(home)
