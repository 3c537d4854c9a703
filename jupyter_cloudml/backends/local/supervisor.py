"""A job's supervisor: a detached process (own session) that runs one job to its end.

It prepares the code, starts every replica with its distributed environment, tees their output
into per-replica log files, decides success by the framework's convention, applies retries with
backoff and the timeout, honours cancel (SIGTERM, grace period, then SIGKILL) and records every
transition. Run as `python -m jupyter_cloudml.backends.local.supervisor SETTINGS_JSON JOB_ID`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import selectors
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import psutil

from ...models import JobStatus, ReplicaStatus, TrainSpec, from_dict
from ...packaging.built import BUILT_FOLDER
from ..common.cluster import distributed_env, needs_addresses, success_replicas
from ..common.launch import google_job_env, replica_command, replica_env
from .disk import full_disk_reason, hold_reserve, is_disk_full, release_reserve
from .job_secrets import forget_secrets, load_secrets
from .logfiles import LineWriter
from .notifications import notify_end
from .processes import free_ports
from .scheduler import Settings, dispatch
from .store import JobStore

POLL_SECONDS = 0.2
#: After reading output, wait this long before the next read so that lines printed one by one
#: are handled in groups (a supervisor wake per line costs more CPU than the replica's print).
COALESCE_SECONDS = 0.03
READ_SIZE = 65536
SETUP_LOG = "setup"


@dataclasses.dataclass
class Outcome:
    """How an attempt (or the job) ended."""

    status: JobStatus
    reason: str = ""
    retryable: bool = False


@dataclasses.dataclass
class Replica:
    """One running replica process and where its output goes."""

    name: str
    proc: subprocess.Popen[bytes]
    writer: LineWriter
    gpus: list[int]
    status: ReplicaStatus = ReplicaStatus.RUNNING
    exit_code: int | None = None
    open_pipe: bool = True

    def as_record(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status.value,
            "exit_code": self.exit_code,
            "gpus": self.gpus,
        }


def terminate_tree(pids: list[int], grace: float) -> None:
    """SIGTERM these processes and their descendants; SIGKILL whatever outlives `grace`.

    Descendants in a session of their own are left alone: they detached on purpose (the job
    supervisors of a study's trials, a TensorBoard, an endpoint) and have their own lifecycle.
    """
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            parent = psutil.Process(pid)
            session = os.getsid(pid)
            procs.append(parent)
            for child in parent.children(recursive=True):
                with contextlib.suppress(OSError):
                    if os.getsid(child.pid) == session:
                        procs.append(child)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=2)


def _set_parent_death_signal() -> None:
    """In a replica child: die if the supervisor dies (Linux), so no replica is orphaned."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Supervisor:
    """Runs one job: attempts, replicas, logs, status."""

    def __init__(self, settings: Settings, job_id: str) -> None:
        self.settings = settings
        self.job_id = job_id
        self.store = JobStore(settings.db_path)
        self.folder = settings.job_folder(job_id)
        row = self.store.row(job_id)
        if row is None:
            raise SystemExit(f"no job {job_id}")
        self.spec: TrainSpec = from_dict(TrainSpec, json.loads(row["spec"]))
        self.python: str = row["python"]
        self.role_pythons: dict[str, str] = json.loads(row["role_pythons"])
        self.gpu_ids: list[int] = json.loads(row["gpu_ids"])
        self.started: float | None = row["started"]
        self.cancelled = False
        self.replicas: list[Replica] = []
        self.env_dir: Path | None = None  # where the package's requirements are installed
        self.secrets: dict[str, str] = {}  # the values of the spec's secrets, read at start

    # --- the job -------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        self.store.update(
            self.job_id,
            supervisor_pid=os.getpid(),
            supervisor_started=psutil.Process().create_time(),
        )
        try:
            hold_reserve(self.folder)
            outcome = self._run()
        except Exception as exc:
            if is_disk_full(exc):
                outcome = Outcome(JobStatus.FAILED, full_disk_reason(exc, "recording the job"))
            else:  # a supervisor bug must still end the job with a reason
                traceback.print_exc()
                outcome = Outcome(
                    JobStatus.FAILED,
                    "internal error in the job supervisor: "
                    + traceback.format_exc(limit=1).strip().splitlines()[-1],
                )
        finally:
            self._stop_replicas()
        release_reserve(self.folder)  # room to record the end, should the disk be full
        self._finish(outcome)
        dispatch(self.store, self.settings)

    def _run(self) -> Outcome:
        if self._cancel_requested():
            return Outcome(JobStatus.CANCELLED, "cancelled before it started")
        secrets = load_secrets(self.folder, list(self.spec.secrets))
        if secrets is None:
            return Outcome(
                JobStatus.FAILED,
                f"the values of its secrets ({', '.join(self.spec.secrets)}) are no longer kept",
            )
        self.secrets = secrets
        self._prepare()
        setup = self._install_requirements()
        if setup is not None:
            return setup
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(attempt)
            if not outcome.retryable or attempt > self.spec.retries:
                return outcome
            delay = min(
                self.settings.backoff_seconds * 2 ** (attempt - 1),
                self.settings.backoff_max_seconds,
            )
            message = (
                f"attempt {attempt} failed ({outcome.reason}); retrying in {delay:g}s "
                f"(attempt {attempt + 1} of {self.spec.retries + 1})"
            )
            self.store.update(self.job_id, status=JobStatus.RETRYING.value, reason=outcome.reason)
            self.store.add_event(self.job_id, "Retrying", message, "Warning")
            end = time.monotonic() + delay
            while time.monotonic() < end:
                if self.cancelled or self._cancel_requested():
                    return Outcome(JobStatus.CANCELLED, "cancelled by the user")
                if self._timed_out():
                    return self._timeout_outcome()
                time.sleep(min(POLL_SECONDS, max(0.0, end - time.monotonic())))

    def _prepare(self) -> None:
        from ...packaging import unpack

        code = self.folder / "code"
        if not code.exists():
            tmp = self.folder / "code.tmp"
            unpack((self.folder / "package.tar.gz").read_bytes(), tmp)
            tmp.rename(code)
        for sub in ("logs", "outputs"):
            (self.folder / sub).mkdir(exist_ok=True)
        if "://" not in self.job_dir:  # remote URIs are the trainer's to write
            Path(self.job_dir).mkdir(parents=True, exist_ok=True)

    @property
    def job_dir(self) -> str:
        return self.settings.job_dir(self.job_id, self.spec.job_dir)

    def _install_requirements(self) -> Outcome | None:
        """pip-install the package's requirements into a cached folder shared by jobs."""
        reqs = sorted(self.spec.package.requirements)
        if not reqs:
            return None
        code_dir = self.folder / "code"
        built = [  # built packages (--packages) are named by path: their content is the key
            hashlib.sha256((code_dir / req).read_bytes()).hexdigest()
            for req in reqs
            if req.startswith(BUILT_FOLDER + "/")
        ]
        key = hashlib.sha256(json.dumps([self.python, reqs, built]).encode()).hexdigest()[:16]
        target = Path(self.settings.home) / "envs" / key
        target.parent.mkdir(parents=True, exist_ok=True)
        self.env_dir = target
        with open(str(target) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / ".complete").exists():
                return None
            self.store.add_event(self.job_id, "Installing", "pip install " + " ".join(reqs))
            writer = LineWriter(self.folder / "logs" / f"{SETUP_LOG}.log")
            proc = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "pip",
                    "install",
                    "--no-input",
                    "--disable-pip-version-check",
                    "--target",
                    str(target),
                    *reqs,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=code_dir,  # where the built packages' paths start
            )
            stdout = proc.stdout
            assert stdout is not None
            for chunk in iter(lambda: os.read(stdout.fileno(), 65536), b""):
                writer.feed(chunk)
                if self.cancelled:
                    proc.kill()
            code = proc.wait()
            writer.close()
            if self.cancelled:
                return Outcome(JobStatus.CANCELLED, "cancelled by the user")
            if code != 0:
                return Outcome(
                    JobStatus.FAILED,
                    f"installing the requirements failed (pip exit "
                    f"code {code}); see the '{SETUP_LOG}' log",
                )
            (target / ".complete").touch()
        return None

    # --- one attempt ---------------------------------------------------------------------------

    def _attempt(self, attempt: int) -> Outcome:
        spec = self.spec
        names = spec.replicas.names()
        self.store.update(
            self.job_id,
            status=JobStatus.STARTING.value,
            attempt=attempt,
            replicas=[{"name": n, "status": ReplicaStatus.PENDING.value} for n in names],
        )
        addresses = {}
        if needs_addresses(spec.framework):
            addresses = {
                n: f"127.0.0.1:{p}" for n, p in zip(names, free_ports(len(names)), strict=True)
            }
        sel = selectors.DefaultSelector()
        self.replicas = []
        free_gpus = list(self.gpu_ids)  # handed out in launch order, each role its own count
        for name in names:
            wanted = spec.resources_of(name.rsplit("-", 1)[0]).gpus
            gpus, free_gpus = free_gpus[:wanted], free_gpus[wanted:]
            replica = self._launch(name, attempt, addresses, gpus)
            assert replica.proc.stdout is not None
            os.set_blocking(replica.proc.stdout.fileno(), False)
            sel.register(replica.proc.stdout, selectors.EVENT_READ, replica)
            self.replicas.append(replica)
        now = time.time()
        if self.started is None:
            self.started = now
            self.store.update(self.job_id, started=now)
        self.store.update(
            self.job_id,
            status=JobStatus.RUNNING.value,
            reason="",
            replicas=[r.as_record() for r in self.replicas],
        )
        self.store.add_event(
            self.job_id, "Started", f"attempt {attempt}: started {len(names)} replica(s)"
        )
        try:
            return self._watch(sel)
        finally:
            self._stop_replicas()
            sel.close()
            for r in self.replicas:
                r.writer.close()
            self.store.update(self.job_id, replicas=[r.as_record() for r in self.replicas])

    def _launch(
        self, name: str, attempt: int, addresses: dict[str, str], gpus: list[int]
    ) -> Replica:
        spec = self.spec
        python = self.role_pythons.get(name.rsplit("-", 1)[0], self.python)
        argv, wrapper_env = replica_command(
            python, spec.package.module, spec.args, spec.pre_command, spec.post_command
        )
        env = dict(os.environ)
        if env.get("MPLBACKEND", "").startswith("module://"):
            env["MPLBACKEND"] = "Agg"  # the kernel's inline backend means nothing in a replica
        env.update(spec.env)
        env.update(self.secrets)
        env.update(wrapper_env)
        # Jobs started from inside a job (a study's trials) go to this same backend.
        env.update(CLOUDML_BACKEND="local", CLOUDML_HOME=self.settings.home)
        env.update(
            replica_env(
                self.job_id,
                name,
                spec.primary_replica,
                attempt,
                self.job_dir,
                str(self.folder / "outputs"),
            )
        )
        google = google_job_env(self.job_id, spec.labels)
        env.update(google)
        env.update(
            distributed_env(
                spec.framework,
                spec.replicas,
                name,
                addresses,
                self.job_id,
                list(spec.args),
                chief_name=spec.tf_chief_name,
                trial=google.get("CLOUD_ML_TRIAL_ID", ""),
            )
        )
        code = str(self.folder / "code")
        paths = [code] + ([str(self.env_dir)] if self.env_dir else [])
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
        if self.settings.gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
        writer = LineWriter(self.folder / "logs" / f"{name}.log")
        if attempt > 1:
            writer.note(f"----- attempt {attempt} -----")
        proc = subprocess.Popen(
            argv,
            cwd=code,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_set_parent_death_signal,
        )
        return Replica(name, proc, writer, gpus)

    def _watch(self, sel: selectors.BaseSelector) -> Outcome:
        spec = self.spec
        needed = set(success_replicas(spec.framework, spec.replicas))
        last_cancel_check = time.monotonic()
        while True:
            ready = sel.select(timeout=POLL_SECONDS)
            full = False
            for key, _ in ready:
                full = self._read(sel, key.data) or full
            if ready and not full:
                time.sleep(COALESCE_SECONDS)
            changed = False
            for r in self.replicas:
                if r.exit_code is None and (code := r.proc.poll()) is not None:
                    self._drain(sel, r)
                    r.exit_code = code
                    r.status = ReplicaStatus.SUCCEEDED if code == 0 else ReplicaStatus.FAILED
                    changed = True
                r.writer.flush_partial()
            if changed:
                self.store.update(self.job_id, replicas=[r.as_record() for r in self.replicas])
            if time.monotonic() - last_cancel_check > 1.0:
                last_cancel_check = time.monotonic()
                self.cancelled = self.cancelled or self._cancel_requested()
            if self.cancelled:
                return Outcome(JobStatus.CANCELLED, "cancelled by the user")
            if self._timed_out():
                return self._timeout_outcome()
            failed = [r for r in self.replicas if r.status is ReplicaStatus.FAILED]
            if failed:
                first = failed[0]
                return Outcome(
                    JobStatus.FAILED,
                    f"replica {first.name} exited with code {first.exit_code}",
                    retryable=True,
                )
            done = {r.name for r in self.replicas if r.status is ReplicaStatus.SUCCEEDED}
            if needed <= done:
                return Outcome(JobStatus.SUCCEEDED)

    def _read(self, sel: selectors.BaseSelector, replica: Replica) -> bool:
        """Tee what the replica printed; True if more may be waiting (a full read)."""
        stdout = replica.proc.stdout
        assert stdout is not None
        try:
            chunk = os.read(stdout.fileno(), READ_SIZE)
        except BlockingIOError:
            return False
        if chunk:
            replica.writer.feed(chunk)
        else:
            sel.unregister(stdout)
            replica.open_pipe = False
        return len(chunk) == READ_SIZE

    def _drain(self, sel: selectors.BaseSelector, replica: Replica, wait: float = 0.5) -> None:
        """Read what an exited replica left in its pipe (children may hold it open: bounded)."""
        end = time.monotonic() + wait
        while replica.open_pipe and time.monotonic() < end:
            for key, _ in sel.select(timeout=0.05):
                self._read(sel, key.data)

    def _stop_replicas(self) -> None:
        running = [r for r in self.replicas if r.exit_code is None]
        if not running:
            return
        terminate_tree([r.proc.pid for r in running], self.settings.grace_seconds)
        for r in running:
            r.exit_code = r.proc.wait()
            r.status = ReplicaStatus.STOPPED

    # --- state ---------------------------------------------------------------------------------

    def _on_term(self, signum: int, frame: object) -> None:
        self.cancelled = True

    def _cancel_requested(self) -> bool:
        row = self.store.row(self.job_id)
        return bool(row is None or row["cancel_requested"])

    def _timed_out(self) -> bool:
        return bool(
            self.spec.timeout and self.started and time.time() - self.started > self.spec.timeout
        )

    def _timeout_outcome(self) -> Outcome:
        return Outcome(JobStatus.FAILED, f"timed out after {self.spec.timeout:g}s")

    def _finish(self, outcome: Outcome) -> None:
        replicas = {"replicas": [r.as_record() for r in self.replicas]} if self.replicas else {}
        message = outcome.status.value.lower() + (f": {outcome.reason}" if outcome.reason else "")
        with self.store.transaction() as db:
            self.store.finish(
                db,
                self.job_id,
                outcome.status,
                outcome.reason,
                event=outcome.status.value.capitalize(),
                message=message,
                type="Normal" if outcome.status is JobStatus.SUCCEEDED else "Warning",
                **replicas,
            )
        forget_secrets(self.folder)
        if self.spec.notify:
            notify_end(self.store, self.job_id, self.spec.notify)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    settings, job_id = Settings.from_json(args[0]), args[1]
    Supervisor(settings, job_id).run()


if __name__ == "__main__":
    main()
